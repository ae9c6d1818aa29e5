import { expect } from "chai";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { network } from "hardhat";
import { SigningKey, keccak256, toUtf8Bytes, type Signer } from "ethers";
import { deployRegistry } from "../../node/chain/deployments.ts";
import { RegistryClient } from "../../node/chain/registry-client.ts";
import { submitInput, type SubmitInputOptions } from "../../node/client/data-owner-client.ts";
import { ConsortError, isConsortError } from "../../node/errors.ts";
import { encodeProgram } from "../../node/program/program-encoding.ts";
import { totalAndMean } from "../../node/program/standard-programs.ts";

const { ethers } = await network.create();

async function thrown(promise: Promise<unknown>): Promise<ConsortError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ConsortError) return error;
    throw error;
  }
  return expect.fail("expected a ConsortError");
}

/**
 * The data-owner client against a real chain whose blocks a test replaces
 * (evm_snapshot / evm_revert: a reorg as the client sees it). The parties'
 * endpoints are closed ports, so deliveries fail as with parties that are
 * down and the pending submission stays, as it does until every party holds
 * its share.
 */
describe("client/data-owner-client: commitments and reorgs", function () {
  this.timeout(60_000);

  let stateDir: string;
  let registryAddress: string;
  let taskId: bigint;
  let owner: Signer;

  beforeEach(async () => {
    const accounts = await ethers.getSigners();
    stateDir = mkdtempSync(join(tmpdir(), "consort-client-"));
    const deployment = await deployRegistry(accounts[0]!);
    registryAddress = deployment.registry;
    const admin = await RegistryClient.connect(accounts[0]!, registryAddress);
    for (const i of [1, 2, 3]) {
      const key = new SigningKey(keccak256(toUtf8Bytes(`client-test-${i}`))).compressedPublicKey;
      await admin.connectRunner(accounts[i]!).registerParty(key, "http://127.0.0.1:9"); // discard: nothing listens
    }
    taskId = await createTask(1);
    owner = accounts[4]!;
  });

  async function createTask(valuesPerOwner: number): Promise<bigint> {
    const accounts = await ethers.getSigners();
    const admin = await RegistryClient.connect(accounts[7]!, registryAddress);
    const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
    const { taskId: id } = await admin.createTask({
      program: encodeProgram(totalAndMean({ owners: 2, valuesPerOwner, bits: 64 })),
      parties: [1, 2, 3].map((i) => accounts[i]!.address),
      dataOwners: [4, 5].map((i) => accounts[i]!.address),
      threshold: 1,
      inputDeadline: now + 10_000n,
      resultDeadline: now + 20_000n,
    });
    return id;
  }

  afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

  async function submit(extra: Partial<SubmitInputOptions>): Promise<ConsortError> {
    return thrown(
      submitInput({
        registry: await RegistryClient.connect(owner, registryAddress),
        signer: owner,
        taskId,
        stateDir,
        deliveryTimeoutMs: 200,
        ...extra,
      }),
    );
  }

  async function onChainCommitment(): Promise<string> {
    const registry = await RegistryClient.connect(owner, registryAddress);
    return (await registry.inputCommitments(taskId))[0]!.toLowerCase();
  }

  it("commits the same pending shares again when a reorg removed the commitment and no new value is asked", async () => {
    const snapshot = (await ethers.provider.send("evm_snapshot", [])) as string;
    const first = await submit({ values: [1000] });
    expect(first.code).to.equal("PEER_UNREACHABLE");
    const committed = await onChainCommitment();
    expect(committed).to.not.match(/^0x0+$/);

    await ethers.provider.send("evm_revert", [snapshot]);
    expect(await onChainCommitment()).to.match(/^0x0+$/);
    const again = await submit({});
    expect(again.code).to.equal("PEER_UNREACHABLE");
    expect(await onChainCommitment(), "the same commitment is on chain again").to.equal(committed);
  });

  it("commits the same shares again for the same value, and new shares for a new value", async () => {
    const snapshot = (await ethers.provider.send("evm_snapshot", [])) as string;
    await submit({ values: [1000] });
    const committed = await onChainCommitment();

    await ethers.provider.send("evm_revert", [snapshot]);
    const snapshot2 = (await ethers.provider.send("evm_snapshot", [])) as string;
    await submit({ values: ["1000"] });
    expect(await onChainCommitment()).to.equal(committed);

    await ethers.provider.send("evm_revert", [snapshot2]);
    await submit({ values: [5000] });
    const recommitted = await onChainCommitment();
    expect(recommitted).to.not.equal(committed);
    expect(recommitted).to.not.match(/^0x0+$/);
  });

  it("refuses with COMMITMENT_CONFLICT when the chain holds another commitment than the pending one", async () => {
    const snapshot = (await ethers.provider.send("evm_snapshot", [])) as string;
    await submit({ values: [1000] });
    await ethers.provider.send("evm_revert", [snapshot]);
    // On the new chain the owner's key committed something else (another client, another state dir).
    const registry = await RegistryClient.connect(owner, registryAddress);
    const elsewhere = keccak256(toUtf8Bytes("committed elsewhere"));
    await registry.commitInput(taskId, elsewhere);

    const error = await submit({ values: [1000] });
    expect(error.code).to.equal("COMMITMENT_CONFLICT");
    expect(error.retryable).to.equal(false);
    expect(error.details.onChain).to.equal(elsewhere);
    expect(readdirSync(stateDir).some((f) => f.endsWith(".json")), "the pending submission is kept").to.equal(true);
  });

  it("refuses to resume with values other than those committed (DUPLICATE_INPUT), and resumes with none or the same", async () => {
    await submit({ values: [1000] });
    const committed = await onChainCommitment();
    expect((await submit({ values: [5000] })).code).to.equal("DUPLICATE_INPUT");
    expect((await submit({ values: [1000] })).code).to.equal("PEER_UNREACHABLE");
    expect((await submit({})).code).to.equal("PEER_UNREACHABLE");
    expect(await onChainCommitment()).to.equal(committed);
  });

  it("does not commit a pending submission to another task that a reorg gave the same id", async () => {
    const snapshot = (await ethers.provider.send("evm_snapshot", [])) as string;
    taskId = await createTask(1);
    await submit({ values: [1000] });
    await ethers.provider.send("evm_revert", [snapshot]);
    // The id now names a task that takes two values from this owner.
    expect(await createTask(2)).to.equal(taskId);

    const error = await submit({});
    expect(error.code).to.equal("BAD_REQUEST");
    expect(await onChainCommitment()).to.match(/^0x0+$/);
    expect((await submit({ values: [1000, 7] })).code).to.equal("PEER_UNREACHABLE");
    expect(await onChainCommitment()).to.not.match(/^0x0+$/);
  });

  it("asks for values when there is nothing to resume", async () => {
    const error = await submit({});
    expect(isConsortError(error, "BAD_REQUEST")).to.equal(true);
    expect(readdirSync(stateDir)).to.deep.equal([]);
    expect(await onChainCommitment()).to.match(/^0x0+$/);
  });
});
