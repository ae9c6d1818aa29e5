import { expect } from "chai";
import fc from "fast-check";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { network } from "hardhat";
import { JsonRpcProvider, SigningKey, Wallet, ZeroHash, getAddress, hexlify, keccak256, toUtf8Bytes } from "ethers";
import { attestationDigest, recoverAttestationSigner, signAttestation } from "../../node/chain/attestation.ts";
import { deployRegistry, loadDeployment, saveDeployment } from "../../node/chain/deployments.ts";
import type { DeploymentRecord } from "../../node/chain/deployments.ts";
import { ensurePartyRegistered } from "../../node/chain/party-registration.ts";
import { RegistryClient } from "../../node/chain/registry-client.ts";
import type { CreateTaskParams } from "../../node/chain/registry-client.ts";
import { connectProvider, probeChainId } from "../../node/chain/rpc-provider.ts";
import { ConsortError } from "../../node/errors.ts";
import type { ConsortErrorCode } from "../../node/errors.ts";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;
type Account = Awaited<ReturnType<typeof ethers.getSigners>>[number];

/** A port nothing listens on (discard, 9): connections are refused at once. */
const CLOSED_RPC = "http://127.0.0.1:9";

function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no item at index ${index} (length ${items.length})`);
  return item;
}

function encryptionKey(label: string): string {
  return new SigningKey(keccak256(toUtf8Bytes(`registry-client-test:${label}`))).compressedPublicKey;
}

function commitmentOf(label: string): string {
  return keccak256(toUtf8Bytes(`commitment:${label}`));
}

async function rejection(promise: Promise<unknown>, code: ConsortErrorCode): Promise<ConsortError> {
  try {
    await promise;
  } catch (error) {
    expect(error, String(error)).to.be.instanceOf(ConsortError);
    expect((error as ConsortError).code, (error as Error).message).to.equal(code);
    return error as ConsortError;
  }
  return expect.fail(`expected a ${code} rejection`);
}

/** TX_REVERTED naming the decoded custom error and its arguments (as decimal strings / checksummed addresses / hex). */
async function reverted(promise: Promise<unknown>, name: string, args: Record<string, string>): Promise<ConsortError> {
  const error = await rejection(promise, "TX_REVERTED");
  expect(error.details.error).to.equal(name);
  expect(error.details.args).to.deep.equal(args);
  expect(error.retryable).to.equal(false);
  return error;
}

describe("chain/registry-client", function () {
  let accounts: Account[];
  let deployment: DeploymentRecord;
  let client: RegistryClient;
  let chainId: bigint;

  const as = (index: number) => client.connectRunner(at(accounts, index));
  const address = (index: number) => at(accounts, index).address;

  async function now(): Promise<bigint> {
    return BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
  }

  async function taskParams(overrides: Partial<CreateTaskParams> = {}): Promise<CreateTaskParams> {
    const t = await now();
    return {
      program: toUtf8Bytes("program bytes (opaque to the registry)"),
      parties: [1, 2, 3].map(address),
      dataOwners: [4, 5].map(address),
      threshold: 1,
      inputDeadline: t + 1_000n,
      resultDeadline: t + 2_000n,
      ...overrides,
    };
  }

  before(async () => {
    accounts = await ethers.getSigners();
    deployment = await deployRegistry(at(accounts, 0));
    client = await RegistryClient.connect(at(accounts, 0), deployment.registry);
    chainId = (await ethers.provider.getNetwork()).chainId;
    for (const i of [1, 2, 3]) await as(i).registerParty(encryptionKey(`party-${i}`), `http://127.0.0.1:${7000 + i}`);
  });

  describe("connect", () => {
    it("binds to the deployed registry (checksumming the address)", async () => {
      const bound = await RegistryClient.connect(ethers.provider, deployment.registry.toLowerCase());
      expect(bound.address).to.equal(getAddress(deployment.registry));
      expect(await bound.chainId()).to.equal(31337n);
      expect(await bound.taskCount()).to.equal(await client.taskCount());
    });

    it("CONTRACT_NOT_FOUND for an address without code", async () => {
      const error = await rejection(RegistryClient.connect(at(accounts, 0), address(9)), "CONTRACT_NOT_FOUND");
      expect(error.details.address).to.equal(address(9));
    });

    it("CONFIG_INVALID for a malformed address or a runner without a provider", async () => {
      await rejection(RegistryClient.connect(at(accounts, 0), "0x1234"), "CONFIG_INVALID");
      await rejection(RegistryClient.connect(Wallet.createRandom(), deployment.registry), "CONFIG_INVALID");
    });

    it("RPC_UNAVAILABLE (retryable) when the provider's endpoint is down", async () => {
      const down = new JsonRpcProvider(CLOSED_RPC, 31337, { staticNetwork: true });
      try {
        const error = await rejection(RegistryClient.connect(down, deployment.registry), "RPC_UNAVAILABLE");
        expect(error.retryable).to.equal(true);
      } finally {
        down.destroy();
      }
    });
  });

  describe("writes that revert become TX_REVERTED naming the custom error", () => {
    it("registerParty / updateParty", async () => {
      await reverted(as(1).registerParty(encryptionKey("again"), "http://x"), "ConsortPartyAlreadyRegistered", { party: address(1) });
      const uncompressed = new SigningKey(keccak256(toUtf8Bytes("k"))).publicKey; // 65 bytes, 0x04 prefix
      await reverted(as(8).registerParty(uncompressed, "http://x"), "ConsortInvalidEncryptionKey", { encryptionKey: uncompressed });
      await reverted(as(8).registerParty(encryptionKey("8"), ""), "ConsortInvalidEndpoint", { endpoint: "" });
      await reverted(as(8).updateParty(encryptionKey("8"), "http://x"), "ConsortUnknownParty", { party: address(8) });
      expect(await client.isRegistered(address(8))).to.equal(false);
    });

    it("createTask", async () => {
      await reverted(as(6).createTask(await taskParams({ program: new Uint8Array() })), "ConsortEmptyProgram", {});
      await reverted(as(6).createTask(await taskParams({ threshold: 2 })), "ConsortInvalidThreshold", { threshold: "2", partyCount: "3" });
      await reverted(as(6).createTask(await taskParams({ parties: [1, 2, 9].map(address) })), "ConsortUnknownParty", { party: address(9) });
      await reverted(as(6).createTask(await taskParams({ parties: [1, 2, 1].map(address) })), "ConsortDuplicateParty", { party: address(1) });
      await reverted(as(6).createTask(await taskParams({ dataOwners: [4, 4].map(address) })), "ConsortDuplicateDataOwner", { dataOwner: address(4) });
      const before = await now();
      const error = await rejection(as(6).createTask(await taskParams({ inputDeadline: 5n, resultDeadline: 6n })), "TX_REVERTED");
      expect(error.details.error).to.equal("ConsortInvalidDeadlines");
      const args = error.details.args as Record<string, string>;
      expect(args).to.include({ inputDeadline: "5", resultDeadline: "6" });
      expect(BigInt(args.currentTime!)).to.be.at.least(before); // the time of the block the call ran in
    });

    it("commitInput, finalizeTask and expireTask", async () => {
      await reverted(as(4).commitInput(99n, commitmentOf("x")), "ConsortUnknownTask", { taskId: "99" });
      const { taskId } = await as(6).createTask(await taskParams());
      const id = taskId.toString();
      await reverted(as(7).commitInput(taskId, commitmentOf("x")), "ConsortNotADataOwner", { taskId: id, account: address(7) });
      await reverted(as(4).commitInput(taskId, ZeroHash), "ConsortZeroCommitment", { taskId: id, dataOwner: address(4) });
      await as(4).commitInput(taskId, commitmentOf("a"));
      await reverted(as(4).commitInput(taskId, commitmentOf("b")), "ConsortInputAlreadyCommitted", {
        taskId: id,
        dataOwner: address(4),
        commitment: commitmentOf("a"),
      });
      // TaskState ordinals: 1 AwaitingInputs, 2 Computing.
      await reverted(as(6).finalizeTask(taskId, toUtf8Bytes("r"), []), "ConsortInvalidTaskState", { taskId: id, state: "1", expected: "2" });
      await rejection(as(6).expireTask(taskId), "TASK_NOT_EXPIRED");
      await as(5).commitInput(taskId, commitmentOf("c"));

      await reverted(as(6).finalizeTask(taskId, new Uint8Array(), []), "ConsortEmptyResult", { taskId: id });
      await reverted(as(6).finalizeTask(taskId, toUtf8Bytes("r"), []), "ConsortQuorumNotReached", { taskId: id, signatures: "0", required: "2" });
      const result = toUtf8Bytes("result");
      const attestation = {
        taskId,
        programHash: (await client.getTask(taskId)).programHash,
        inputCommitments: await client.inputCommitments(taskId),
        resultHash: keccak256(result),
      };
      const outsider = await signAttestation(at(accounts, 9), chainId, client.address, attestation);
      await reverted(as(6).finalizeTask(taskId, result, [outsider]), "ConsortSignerNotAParty", { taskId: id, signer: address(9) });
      const one = await signAttestation(at(accounts, 1), chainId, client.address, attestation);
      await reverted(as(6).finalizeTask(taskId, result, [one, one]), "ConsortDuplicateSigner", { taskId: id, signer: address(1) });
      await reverted(as(6).finalizeTask(taskId, result, ["0x1234"]), "ConsortInvalidSignature", { taskId: id, index: "0" });
    });

    it("reads that revert are TX_REVERTED too, except a missing task, which is UNKNOWN_TASK naming it", async () => {
      await reverted(client.getParty(address(9)), "ConsortUnknownParty", { party: address(9) });
      for (const [read, id] of [
        [client.getTask(12_345n), "12345"],
        [client.inputCommitments(777n), "777"],
        [client.attestationDigest(0n, ZeroHash), "0"],
      ] as const) {
        const error = await rejection(read, "UNKNOWN_TASK");
        expect(error.retryable).to.equal(false);
        expect(error.details).to.include({ taskId: id, error: "ConsortUnknownTask" });
        expect(error.message).to.include(`has no task ${id}`);
      }
    });
  });

  describe("reads and the task life cycle", () => {
    it("createTask returns the id from its TaskCreated event; getTask, taskState and inputCommitments map the stored task", async () => {
      const before = await client.taskCount();
      const params = await taskParams({ parties: [3, 1, 2].map(address) });
      const first = await as(6).createTask(params);
      const second = await as(7).createTask(await taskParams());
      expect(first.taskId).to.equal(before + 1n);
      expect(second.taskId).to.equal(before + 2n);
      expect(await client.taskCount()).to.equal(second.taskId);
      expect(first.receipt.status).to.equal(1);

      const task = await client.getTask(first.taskId);
      expect(task).to.deep.equal({
        taskId: first.taskId,
        programHash: keccak256(params.program),
        requester: address(6),
        threshold: 1,
        createdAtBlock: BigInt(first.receipt.blockNumber),
        inputDeadline: params.inputDeadline,
        resultDeadline: params.resultDeadline,
        inputsCommitted: 0,
        finalizedAtBlock: 0n,
        expiredAtBlock: 0n,
        resultHash: ZeroHash,
        parties: [3, 1, 2].map(address),
        dataOwners: [4, 5].map(address),
      });
      expect(await client.taskState(first.taskId)).to.equal("AwaitingInputs");
      expect(await client.taskState(0n)).to.equal("None");
      expect(await client.taskState(second.taskId + 1n)).to.equal("None");
      expect(await client.inputCommitments(first.taskId)).to.deep.equal([ZeroHash, ZeroHash]);

      await as(5).commitInput(first.taskId, commitmentOf("five"));
      expect(await client.inputCommitments(first.taskId)).to.deep.equal([ZeroHash, commitmentOf("five")]);
      expect((await client.getTask(first.taskId)).inputsCommitted).to.equal(1);
      await as(4).commitInput(first.taskId, commitmentOf("four"));
      expect(await client.taskState(first.taskId)).to.equal("Computing");

      const result = toUtf8Bytes('{"answer":"42"}');
      const attestation = {
        taskId: first.taskId,
        programHash: task.programHash,
        inputCommitments: await client.inputCommitments(first.taskId),
        resultHash: keccak256(result),
      };
      const signatures = await Promise.all([2, 3].map((i) => signAttestation(at(accounts, i), chainId, client.address, attestation)));
      expect(signatures.map((s) => recoverAttestationSigner(chainId, client.address, attestation, s))).to.deep.equal([2, 3].map(address));
      const receipt = await as(8).finalizeTask(first.taskId, result, signatures);
      expect(await client.taskState(first.taskId)).to.equal("Finalized");
      const finalized = await client.getTask(first.taskId);
      expect(finalized.finalizedAtBlock).to.equal(BigInt(receipt.blockNumber));
      expect(finalized.resultHash).to.equal(keccak256(result));

      // The second task never receives inputs: Expired once the input deadline has passed.
      await time.increaseTo((await client.getTask(second.taskId)).inputDeadline + 1n);
      expect(await client.taskState(second.taskId)).to.equal("Expired");
      const expiry = await as(9).expireTask(second.taskId);
      expect((await client.getTask(second.taskId)).expiredAtBlock).to.equal(BigInt(expiry.blockNumber));
      await rejection(as(9).expireTask(second.taskId), "TASK_ALREADY_EXPIRED");
    });

    it("expireTask: typed refusals naming the deadline that applies and the chain's time, then the expiry", async () => {
      const unknown = await rejection(as(9).expireTask(99_999n), "UNKNOWN_TASK");
      expect(unknown.details.taskId).to.equal("99999");

      const waiting = await as(6).createTask(await taskParams());
      const early = await rejection(as(9).expireTask(waiting.taskId), "TASK_NOT_EXPIRED");
      const task = await client.getTask(waiting.taskId);
      expect(early.retryable).to.equal(false);
      expect(early.details).to.include({ state: "AwaitingInputs", deadline: "input", expirableFrom: (task.inputDeadline + 1n).toString() });
      expect(BigInt(early.details.chainTime as string)).to.equal(await now());
      expect(early.message).to.include(new Date(Number(task.inputDeadline) * 1000).toISOString());

      // Every input committed: the result deadline is the one that applies.
      const computing = await as(6).createTask(await taskParams());
      await as(4).commitInput(computing.taskId, commitmentOf("c4"));
      await as(5).commitInput(computing.taskId, commitmentOf("c5"));
      const busy = await rejection(as(9).expireTask(computing.taskId), "TASK_NOT_EXPIRED");
      const computingTask = await client.getTask(computing.taskId);
      expect(busy.details).to.include({ state: "Computing", deadline: "result", expirableFrom: (computingTask.resultDeadline + 1n).toString() });

      // A deadline that no Date can hold is still named (in seconds), not a crash.
      const far = await as(6).createTask(await taskParams({ resultDeadline: 2n ** 64n - 1n }));
      await as(4).commitInput(far.taskId, commitmentOf("f4"));
      await as(5).commitInput(far.taskId, commitmentOf("f5"));
      const never = await rejection(as(9).expireTask(far.taskId), "TASK_NOT_EXPIRED");
      expect(never.message).to.include(`${2n ** 64n - 1n} (unix seconds)`);

      await time.increaseTo(task.inputDeadline + 1n);
      const receipt = await as(9).expireTask(waiting.taskId);
      expect((await client.getTask(waiting.taskId)).expiredAtBlock).to.equal(BigInt(receipt.blockNumber));
      const again = await rejection(as(8).expireTask(waiting.taskId), "TASK_ALREADY_EXPIRED");
      expect(again.details.expiredAtBlock).to.equal(receipt.blockNumber.toString());

      const finalized = await as(6).createTask(await taskParams());
      await as(4).commitInput(finalized.taskId, commitmentOf("d4"));
      await as(5).commitInput(finalized.taskId, commitmentOf("d5"));
      const result = toUtf8Bytes("done");
      const attestation = {
        taskId: finalized.taskId,
        programHash: (await client.getTask(finalized.taskId)).programHash,
        inputCommitments: await client.inputCommitments(finalized.taskId),
        resultHash: keccak256(result),
      };
      const signatures = await Promise.all([1, 2].map((i) => signAttestation(at(accounts, i), chainId, client.address, attestation)));
      await as(6).finalizeTask(finalized.taskId, result, signatures);
      await time.increaseTo((await client.getTask(finalized.taskId)).resultDeadline + 1n);
      const done = await rejection(as(9).expireTask(finalized.taskId), "TASK_FINALIZED");
      expect(done.details.state).to.equal("Finalized");
    });

    it("findParty / getParty / isRegistered", async () => {
      expect(await client.findParty(address(9))).to.equal(undefined);
      expect(await client.isRegistered(address(9))).to.equal(false);
      expect(await client.isRegistered(address(1))).to.equal(true);
      const party = await client.findParty(address(1).toLowerCase());
      expect(party).to.deep.equal(await client.getParty(address(1)));
      expect(party?.address).to.equal(address(1));
      expect(party?.encryptionKey).to.equal(encryptionKey("party-1"));
      expect(party?.endpoint).to.equal("http://127.0.0.1:7001");
      expect(party?.registeredAt).to.be.greaterThan(0n);
      expect(party?.updatedAt).to.be.at.least(party!.registeredAt);
    });
  });

  describe("ensurePartyRegistered", () => {
    it("registers, leaves an identical record alone, and updates a changed key or endpoint", async () => {
      const account = address(10);
      const registry = as(10);
      const key = SigningKey.computePublicKey(keccak256(toUtf8Bytes("ten")), true);
      const keyBytes = Uint8Array.from(Buffer.from(key.slice(2), "hex"));

      const registered = await ensurePartyRegistered(registry, account, keyBytes, "http://10.0.0.1:7000");
      expect(registered.outcome).to.equal("registered");
      expect(registered.txHash).to.match(/^0x[0-9a-f]{64}$/);
      const unchanged = await ensurePartyRegistered(registry, account, keyBytes, "http://10.0.0.1:7000");
      expect(unchanged).to.deep.equal({ outcome: "unchanged", txHash: undefined });

      const moved = await ensurePartyRegistered(registry, account, keyBytes, "http://10.0.0.2:7000");
      expect(moved.outcome).to.equal("updated");
      expect((await client.getParty(account)).endpoint).to.equal("http://10.0.0.2:7000");

      const rotated = SigningKey.computePublicKey(keccak256(toUtf8Bytes("ten-rotated")), true);
      const rotatedBytes = Uint8Array.from(Buffer.from(rotated.slice(2), "hex"));
      const rekeyed = await ensurePartyRegistered(registry, account, rotatedBytes, "http://10.0.0.2:7000");
      expect(rekeyed.outcome).to.equal("updated");
      expect((await client.getParty(account)).encryptionKey).to.equal(hexlify(rotatedBytes));
      expect((await ensurePartyRegistered(registry, account, rotatedBytes, "http://10.0.0.2:7000")).outcome).to.equal("unchanged");
    });

    it("surfaces the registry's refusal of an invalid key as TX_REVERTED", async () => {
      await reverted(ensurePartyRegistered(as(11), address(11), new Uint8Array(33), "http://x"), "ConsortInvalidEncryptionKey", {
        encryptionKey: hexlify(new Uint8Array(33)),
      });
    });
  });

  describe("RPC endpoints", () => {
    it("probeChainId and connectProvider: RPC_UNAVAILABLE (retryable) for a closed port", async () => {
      const probe = await rejection(probeChainId(CLOSED_RPC, 2_000), "RPC_UNAVAILABLE");
      expect(probe.retryable).to.equal(true);
      expect(probe.details.rpcUrl).to.equal(CLOSED_RPC);
      await rejection(connectProvider(CLOSED_RPC, { timeoutMs: 2_000 }), "RPC_UNAVAILABLE");
    });

    it("talk to a real JSON-RPC server: chain id, deployment, reads and decoded reverts over HTTP", async () => {
      const server = await network.createServer(undefined, "127.0.0.1");
      const { address: host, port } = await server.listen();
      const url = `http://${host}:${port}`;
      const provider = await connectProvider(url, { pollingIntervalMs: 50 });
      try {
        expect(await probeChainId(url)).to.equal(31337n);
        const signer = await provider.getSigner(0);
        const record = await deployRegistry(signer);
        expect(record.chainId).to.equal("31337");
        expect(record.deployer).to.equal(await signer.getAddress());
        const remote = await RegistryClient.connect(signer, record.registry);
        expect(await remote.chainId()).to.equal(31337n);
        expect(await remote.taskState(1n)).to.equal("None");
        await remote.registerParty(encryptionKey("remote"), "http://remote");
        await reverted(remote.registerParty(encryptionKey("remote"), "http://remote"), "ConsortPartyAlreadyRegistered", {
          party: await signer.getAddress(),
        });
        await reverted(remote.commitInput(7n, commitmentOf("x")), "ConsortUnknownTask", { taskId: "7" });
      } finally {
        provider.destroy();
        await server.close();
      }
    });
  });

  describe("deployments", () => {
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "consort-deployments-"))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("deployRegistry records where the registry is; save/load round-trips it by chain id", async () => {
      expect(deployment.chainId).to.equal(chainId.toString());
      expect(deployment.deployer).to.equal(address(0));
      expect(await ethers.provider.getCode(deployment.registry)).to.not.equal("0x");
      const receipt = await ethers.provider.getTransactionReceipt(deployment.txHash);
      expect(receipt?.blockNumber).to.equal(deployment.blockNumber);
      expect(receipt?.contractAddress).to.equal(deployment.registry);

      const file = saveDeployment({ ...deployment, registry: deployment.registry.toLowerCase() }, join(dir, "nested"));
      expect(file).to.equal(join(dir, "nested", `${chainId}.json`));
      expect(loadDeployment(chainId, join(dir, "nested"))).to.deep.equal(deployment);
      expect(loadDeployment(chainId.toString(), join(dir, "nested"))).to.deep.equal(deployment);
      // Saving again replaces the record.
      const redeployed = { ...deployment, blockNumber: deployment.blockNumber + 5 };
      saveDeployment(redeployed, join(dir, "nested"));
      expect(loadDeployment(chainId, join(dir, "nested"))).to.deep.equal(redeployed);
    });

    it("DEPLOYMENT_NOT_FOUND for a chain without a record", async () => {
      saveDeployment(deployment, dir);
      const error = await rejection(Promise.resolve().then(() => loadDeployment(5n, dir)), "DEPLOYMENT_NOT_FOUND");
      expect(error.details.chainId).to.equal("5");
    });

    it("CONFIG_INVALID for a record that is not a deployment", async () => {
      writeFileSync(join(dir, "31337.json"), "{ not json");
      await rejection(Promise.resolve().then(() => loadDeployment(31337n, dir)), "CONFIG_INVALID");
      writeFileSync(join(dir, "31337.json"), JSON.stringify({ ...deployment, registry: "nowhere" }));
      await rejection(Promise.resolve().then(() => loadDeployment(31337n, dir)), "CONFIG_INVALID");
      writeFileSync(join(dir, "31337.json"), "[]");
      await rejection(Promise.resolve().then(() => loadDeployment(31337n, dir)), "CONFIG_INVALID");
      writeFileSync(join(dir, "31337.json"), JSON.stringify({ ...deployment, chainId: "1" }));
      await rejection(Promise.resolve().then(() => loadDeployment(31337n, dir)), "CONFIG_INVALID");
      writeFileSync(join(dir, "31337.json"), JSON.stringify({ ...deployment, blockNumber: "12" }));
      await rejection(Promise.resolve().then(() => loadDeployment(31337n, dir)), "CONFIG_INVALID");
    });
  });

  describe("EIP-712 attestation digest", () => {
    it("the local digest equals the registry's for random tasks, commitments and results", async () => {
      const owners = [12, 13, 14, 15];
      const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => hexlify(b));
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ minLength: 1, maxLength: 300 }),
          fc.integer({ min: 1, max: owners.length }),
          fc.array(fc.option(bytes32, { nil: undefined }), { minLength: owners.length, maxLength: owners.length }),
          bytes32,
          async (program, ownerCount, commitments, resultHash) => {
            const { taskId } = await as(6).createTask(await taskParams({ program, dataOwners: owners.slice(0, ownerCount).map(address) }));
            for (let i = 0; i < ownerCount; i++) {
              const c = commitments[i];
              if (c !== undefined && c !== ZeroHash) await as(at(owners, i)).commitInput(taskId, c);
            }
            const stored = await client.inputCommitments(taskId);
            expect(stored).to.have.length(ownerCount);
            const attestation = { taskId, programHash: keccak256(program), inputCommitments: stored, resultHash };
            const onChain = await client.attestationDigest(taskId, resultHash);
            expect(attestationDigest(chainId, client.address, attestation)).to.equal(onChain);
            // Each bound field matters: another chain, registry, task or result gives another digest.
            expect(attestationDigest(chainId + 1n, client.address, attestation)).to.not.equal(onChain);
            expect(attestationDigest(chainId, address(0), attestation)).to.not.equal(onChain);
            expect(attestationDigest(chainId, client.address, { ...attestation, taskId: taskId + 1n })).to.not.equal(onChain);
            expect(attestationDigest(chainId, client.address, { ...attestation, resultHash: keccak256(resultHash) })).to.not.equal(onChain);
          },
        ),
        { seed: 42, numRuns: 20 },
      );
    });
  });
});
