import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { Wallet, getBytes, hexlify, type HDNodeWallet, type JsonRpcProvider } from "ethers";
import { randomBytes } from "@noble/hashes/utils.js";
import { deployRegistry } from "../../node/chain/deployments.ts";
import { RegistryClient } from "../../node/chain/registry-client.ts";
import { connectProvider } from "../../node/chain/rpc-provider.ts";
import { chainNow } from "../../node/chain/rpc-provider.ts";
import { ConsortNode } from "../../node/daemon/consort-node.ts";
import { getJson } from "../../node/transport/http-client.ts";
import { submitInput } from "../../node/client/data-owner-client.ts";
import { RpcProxy, devWallet, freePort, prepareLocalNode, startLocalChain, startLocalNode, type LocalChain } from "../../node/dev/local-cluster.ts";
import { createLogger } from "../../node/logger.ts";
import { parseNodeConfig } from "../../node/daemon/node-config.ts";
import { registerNodeParty } from "../../node/daemon/register-node-party.ts";
import { ConsortError, isConsortError } from "../../node/errors.ts";
import { commitInputShares, type InputContext } from "../../node/math/commitment.ts";
import { encodeSigned } from "../../node/math/field.ts";
import { splitVector } from "../../node/math/shamir.ts";
import { encodeProgram } from "../../node/program/program-encoding.ts";
import { totalAndMean } from "../../node/program/standard-programs.ts";
import { sealSharePayload, signShareSubmission, type ShareSubmission } from "../../node/transport/share-submission.ts";

async function post(url: string, body: string, contentType = "application/json"): Promise<{ status: number; json: { error?: { code: string; retryable: boolean; details: Record<string, unknown> } } & Record<string, unknown> }> {
  const response = await fetch(url, { method: "POST", headers: { "content-type": contentType }, body });
  return { status: response.status, json: (await response.json()) as never };
}

describe("cli/consort-node: a node under bad input", function () {
  this.timeout(180_000);

  let workDir: string;
  let chain: LocalChain;
  let proxy: RpcProxy;
  let provider: JsonRpcProvider;
  let registryAddress: string;
  let chainId: bigint;
  const nodes: ConsortNode[] = [];
  const partyWallets = [devWallet(11), devWallet(12), devWallet(13)];
  const owners = [devWallet(14), devWallet(15), devWallet(16)];
  const stranger = devWallet(17);
  let taskId: bigint;
  let urls: string[];
  let requester: RegistryClient;

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), "consort-node-test-"));
    chain = await startLocalChain(join(workDir, "chain"));
    proxy = new RpcProxy(await freePort(), Number(new URL(chain.rpcUrl).port));
    await proxy.up();
    const rpcUrl = `http://127.0.0.1:${proxy.port}`;
    provider = await connectProvider(chain.rpcUrl, { pollingIntervalMs: 100 });
    chainId = (await provider.getNetwork()).chainId;
    // Not the requester's key: ethers caches a pending nonce for 250 ms, and the task is created sooner than that.
    const deployment = await deployRegistry(devWallet(19).connect(provider));
    registryAddress = deployment.registry;
    urls = [];
    for (const [i, wallet] of partyWallets.entries()) {
      const spec = { name: `party-${i}`, wallet, rpcUrl, registry: registryAddress, deploymentsDir: join(workDir, "deployments"), workDir };
      const prepared = await prepareLocalNode(spec);
      const registry = await RegistryClient.connect(wallet.connect(provider), registryAddress);
      await registerNodeParty(registry, wallet.address, prepared.dataDir, prepared.url);
      const { config, secrets } = parseNodeConfig(
        {
          rpcUrl,
          registry: registryAddress,
          privateKeyFile: join(workDir, spec.name, "signing-key"),
          dataDir: prepared.dataDir,
          port: prepared.port,
          confirmations: 1,
          pollIntervalMs: 100,
          protocolTimeoutMs: 20_000,
          takeoverDelayMs: 2_000,
          logLevel: "silent",
        },
        workDir,
        {},
      );
      nodes.push(await ConsortNode.start({ config, secrets, logger: createLogger("silent") }));
      urls.push(prepared.url);
    }
    requester = await RegistryClient.connect(devWallet(10).connect(provider), registryAddress);
    taskId = await createTaskSeenByAll();
  });

  /** Creates a total-and-mean task over the three owners and waits until every node has applied it. */
  async function createTaskSeenByAll(inputWindow = 600n): Promise<bigint> {
    const now = await chainNow(provider);
    const { taskId: id } = await requester.createTask({
      program: encodeProgram(totalAndMean({ owners: 3, valuesPerOwner: 1, bits: 64 })),
      parties: partyWallets.map((w) => w.address),
      dataOwners: owners.map((o) => o.address),
      threshold: 1,
      inputDeadline: now + inputWindow,
      resultDeadline: now + inputWindow + 600n,
    });
    for (const node of nodes) {
      while (node.store.getTask(id) === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    return id;
  }

  after(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    provider?.destroy();
    await proxy?.down();
    await chain?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  /** A well-formed submission from `owner` to party `index`, committing `commit` on chain first when asked. */
  async function buildSubmissions(owner: HDNodeWallet, value: bigint, commit: boolean, forTask = taskId): Promise<ShareSubmission[]> {
    const ctx: InputContext = { chainId, registry: getBytes(registryAddress), taskId: forTask, dataOwner: getBytes(owner.address) };
    const shares = splitVector([encodeSigned(value)], { threshold: 1, parties: 3 }, randomBytes);
    const committed = commitInputShares(ctx, shares, randomBytes);
    if (commit) {
      const registry = await RegistryClient.connect(owner.connect(provider), registryAddress);
      await registry.commitInput(forTask, hexlify(committed.commitment));
    }
    return Promise.all(
      partyWallets.map(async (party, i) => {
        const record = await (await RegistryClient.connect(provider, registryAddress)).getParty(party.address);
        const sealed = sealSharePayload(getBytes(record.encryptionKey), committed.salts[i]!, shares[i]!, {
          chainId,
          registry: registryAddress,
          taskId: forTask,
          dataOwner: owner.address,
          party: party.address,
        });
        return signShareSubmission(
          {
            version: 1,
            chainId: chainId.toString(),
            registry: registryAddress,
            taskId: forTask.toString(),
            dataOwner: owner.address,
            party: party.address,
            digests: committed.digests.map((d) => hexlify(d)),
            sealed: hexlify(sealed),
          },
          owner,
        );
      }),
    );
  }

  async function expectAlive(): Promise<void> {
    for (const url of urls) {
      const health = (await (await fetch(`${url}/v1/health`)).json()) as { status: string };
      expect(health.status).to.equal("ok");
    }
  }

  const sharesUrl = (i: number, id = taskId) => `${urls[i]}/v1/tasks/${id}/shares`;

  it("rejects a malformed request body with 400 BAD_REQUEST naming the field", async () => {
    const broken = await post(sharesUrl(0), "{not json");
    expect(broken.status).to.equal(400);
    expect(broken.json.error?.code).to.equal("BAD_REQUEST");
    const missing = await post(sharesUrl(0), JSON.stringify({ version: 1 }));
    expect(missing.status).to.equal(400);
    expect(missing.json.error?.code).to.equal("BAD_REQUEST");
    expect(missing.json.error?.details.field).to.be.a("string");
    await expectAlive();
  });

  it("rejects a share for an unknown task with 404 UNKNOWN_TASK (retryable: it may not be confirmed yet)", async () => {
    const [sub] = await buildSubmissions(owners[0]!, 5n, false);
    const { signature: _unused, ...unsigned } = sub!;
    const resigned = await signShareSubmission({ ...unsigned, taskId: "999" }, owners[0]!);
    const r2 = await post(sharesUrl(0, 999n), JSON.stringify(resigned));
    expect(r2.status).to.equal(404);
    expect(r2.json.error?.code).to.equal("UNKNOWN_TASK");
    expect(r2.json.error?.retryable).to.equal(true);
    await expectAlive();
  });

  it("rejects a share whose signature does not verify with 401 BAD_SIGNATURE", async () => {
    const [sub] = await buildSubmissions(owners[0]!, 5n, false);
    const { signature: _unused, ...unsigned } = sub!;
    // A valid signature, but by a stranger, not by the data owner the submission names.
    const forged = await signShareSubmission({ ...unsigned, dataOwner: stranger.address }, stranger);
    const r = await post(sharesUrl(0), JSON.stringify({ ...sub!, signature: forged.signature }));
    expect(r.status).to.equal(401);
    expect(r.json.error?.code).to.equal("BAD_SIGNATURE");
    await expectAlive();
  });

  it("rejects a share addressed to another party with 403 NOT_A_PARTY, and a stranger's share with 403 NOT_A_DATA_OWNER", async () => {
    const subs = await buildSubmissions(owners[0]!, 5n, false);
    const toB = await post(sharesUrl(0), JSON.stringify(subs[1]));
    expect(toB.status).to.equal(403);
    expect(toB.json.error?.code).to.equal("NOT_A_PARTY");
    const [strangers] = await buildSubmissions(stranger, 5n, false);
    const r = await post(sharesUrl(0), JSON.stringify(strangers));
    expect(r.status).to.equal(403);
    expect(r.json.error?.code).to.equal("NOT_A_DATA_OWNER");
    await expectAlive();
  });

  it("rejects a share before its commitment is on chain (retryable), and one that does not match it (422)", async () => {
    const early = await buildSubmissions(owners[1]!, 7n, false);
    const r = await post(sharesUrl(0), JSON.stringify(early[0]));
    expect(r.status).to.be.oneOf([409, 503]);
    expect(r.json.error?.code).to.equal("COMMITMENT_NOT_FOUND");
    expect(r.json.error?.retryable).to.equal(true);
    // Commit to one sharing, then send shares of another: the digests do not match the commitment.
    await buildSubmissions(owners[1]!, 7n, true);
    const other = await buildSubmissions(owners[1]!, 7n, false);
    const mismatch = await post(sharesUrl(0), JSON.stringify(other[0]));
    expect(mismatch.status).to.equal(422);
    expect(mismatch.json.error?.code).to.equal("COMMITMENT_MISMATCH");
    expect(nodes[0]!.store.getShares(taskId).has(owners[1]!.address)).to.equal(false);
    await expectAlive();
  });

  it("rejects a second submission of the same input with 409 DUPLICATE_INPUT and keeps the first", async () => {
    const subs = await buildSubmissions(owners[0]!, 11n, true);
    const first = await post(sharesUrl(0), JSON.stringify(subs[0]));
    expect(first.status).to.equal(200);
    const kept = nodes[0]!.store.getShares(taskId).get(owners[0]!.address);
    const again = await post(sharesUrl(0), JSON.stringify(subs[0]));
    expect(again.status).to.equal(409);
    expect(again.json.error?.code).to.equal("DUPLICATE_INPUT");
    expect(again.json.error?.details.identical).to.equal(true);
    expect(nodes[0]!.store.getShares(taskId).get(owners[0]!.address)).to.deep.equal(kept);
    // Deliver the rest of this owner's shares so the task can complete later.
    for (const i of [1, 2]) expect((await post(sharesUrl(i), JSON.stringify(subs[i]))).status).to.equal(200);
    await expectAlive();
  });

  it("keeps running while the RPC is down, then finishes the task with nothing lost", async () => {
    // The earlier cases committed owner 1 to a sharing whose shares were then withheld, so that
    // task cannot finish; run the RPC case on a fresh task with the real data-owner client.
    const fresh = await createTaskSeenByAll();
    const values = [1_000n, -250n, 40n];
    const stateDir = join(workDir, "inputs");
    // Two owners submit while the chain is reachable.
    for (const i of [0, 1]) {
      const registry = await RegistryClient.connect(owners[i]!.connect(provider), registryAddress);
      await submitInput({ registry, signer: owners[i]!.connect(provider), taskId: fresh, values: [values[i]!], stateDir });
    }
    // The nodes lose their RPC.
    await proxy.down();
    await new Promise((r) => setTimeout(r, 600));
    await expectAlive();
    for (const node of nodes) expect(node.store.getShares(fresh).size).to.equal(2);
    // The third owner commits directly on chain meanwhile (its own RPC works); the nodes cannot see it yet.
    const registry = await RegistryClient.connect(owners[2]!.connect(provider), registryAddress);
    const submitting = submitInput({ registry, signer: owners[2]!.connect(provider), taskId: fresh, values: [values[2]!], stateDir, deliveryTimeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 1_500));
    await proxy.up();
    await submitting;
    const deadline = Date.now() + 60_000;
    while ((await requester.taskState(fresh)) !== "Finalized") {
      if (Date.now() > deadline) throw new Error("the task was not finalized after the RPC came back");
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const [i, node] of nodes.entries()) {
      while (node.store.getTask(fresh)?.status !== "finalized") await new Promise((r) => setTimeout(r, 100));
      const status = node.store.getTask(fresh)!;
      expect(JSON.parse(new TextDecoder().decode(status.result)).outputs.total).to.equal(String(values.reduce((a, b) => a + b, 0n)));
      // Once its job is deleted the node has let go of the task; what its computation took stays readable.
      while (node.store.getJob(fresh) !== undefined) await new Promise((r) => setTimeout(r, 100));
      const view = (await getJson(urls[i]!, `/v1/tasks/${fresh}`, { timeoutMs: 5_000 })) as { compute: { rounds: number } | null };
      expect(view.compute, `compute stats at node ${i}`).to.not.equal(null);
    }
    await expectAlive();
  });

  it("records on chain, by itself, the expiry of a task whose inputs missed their deadline: one transaction, every store expired", async () => {
    const sent = async () =>
      (await Promise.all(partyWallets.map(async (w) => Number(await provider.send("eth_getTransactionCount", [w.address, "latest"]))))).reduce((a, b) => a + b, 0);
    const before = await sent();
    // One owner commits and delivers; the others never do.
    const late = await createTaskSeenByAll(4n);
    const registry = await RegistryClient.connect(owners[0]!.connect(provider), registryAddress);
    await submitInput({ registry, signer: owners[0]!.connect(provider), taskId: late, values: [5n], stateDir: join(workDir, "late-inputs") });
    for (const node of nodes) {
      while (node.store.getTask(late)?.status !== "expired") await new Promise((r) => setTimeout(r, 100));
    }
    const onChain = await requester.getTask(late);
    expect(onChain.expiredAtBlock > 0n).to.equal(true);
    expect(onChain.inputsCommitted).to.equal(1);
    // Exactly one party sent the expiry; the others found it recorded when their turn came.
    expect((await sent()) - before).to.equal(1);
    for (const node of nodes) expect(node.store.getJob(late)).to.equal(undefined);
    await expectAlive();
  });

  it("refuses to compute a task whose committed program is not a valid program, and says so", async () => {
    const now = await chainNow(provider);
    const { taskId: bogus } = await requester.createTask({
      program: new TextEncoder().encode('{"version":"consort.program/v1","name":"x","gates":"not gates"}'),
      parties: partyWallets.map((w) => w.address),
      dataOwners: owners.map((o) => o.address),
      threshold: 1,
      inputDeadline: now + 600n,
      resultDeadline: now + 1_200n,
    });
    for (const [i, node] of nodes.entries()) {
      while (node.store.getTask(bogus) === undefined) await new Promise((r) => setTimeout(r, 100));
      const status = (await (await fetch(`${urls[i]}/v1/tasks/${bogus}`)).json()) as { status: string; error: string };
      expect(status.status).to.equal("failed");
      expect(status.error).to.match(/^PROGRAM_INVALID: /);
    }
    // It takes no input for it either.
    const [sub] = await buildSubmissions(owners[0]!, 1n, false, bogus);
    const r = await post(`${urls[0]}/v1/tasks/${bogus}/shares`, JSON.stringify(sub));
    expect(r.status).to.equal(409);
    expect(r.json.error?.code).to.equal("TASK_NOT_ACCEPTING");
    await expectAlive();
  });

  it("refuses to start when the RPC is unreachable, with RPC_UNAVAILABLE", async () => {
    const { config, secrets } = parseNodeConfig(
      {
        rpcUrl: `http://127.0.0.1:${await freePort()}`,
        registry: registryAddress,
        privateKeyFile: join(workDir, "party-0", "signing-key"),
        dataDir: join(workDir, "unused"),
        port: 0,
        logLevel: "silent",
      },
      workDir,
      {},
    );
    const error = await ConsortNode.start({ config, secrets, logger: createLogger("silent") }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isConsortError(error, "RPC_UNAVAILABLE")).to.equal(true);
    expect((error as ConsortError).retryable).to.equal(true);
  });

  it("a local cluster does not take another party's node on its port for the node it started", async () => {
    // The node started here cannot listen (party 1 holds the port); party 1 answers the health probe at once.
    const wallet = devWallet(18);
    const spec = { name: "squatter", wallet, rpcUrl: chain.rpcUrl, registry: registryAddress, deploymentsDir: join(workDir, "deployments"), workDir, port: Number(new URL(urls[1]!).port) };
    const prepared = await prepareLocalNode(spec);
    const error = await startLocalNode(spec, prepared).then(
      (node) => node.stop().then(() => undefined),
      (e: unknown) => e,
    );
    expect(isConsortError(error, "INTERNAL")).to.equal(true);
    expect((error as ConsortError).message).to.contain(wallet.address);
    await expectAlive();
  });
});
