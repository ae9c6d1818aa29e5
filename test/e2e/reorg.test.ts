import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import type { JsonRpcProvider } from "ethers";
import { deployRegistry, saveDeployment } from "../../node/chain/deployments.ts";
import { RegistryClient } from "../../node/chain/registry-client.ts";
import { connectProvider } from "../../node/chain/rpc-provider.ts";
import { auditTask } from "../../node/chain/task-audit.ts";
import { chainNow } from "../../node/chain/rpc-provider.ts";
import { submitInput, type SubmitInputResult } from "../../node/client/data-owner-client.ts";
import { registerNodeParty } from "../../node/daemon/register-node-party.ts";
import {
  PROJECT_ROOT,
  devWallet,
  prepareLocalNode,
  startAnvilChain,
  startLocalNode,
  type LocalChain,
  type LocalNode,
  type LocalNodeSpec,
} from "../../node/dev/local-cluster.ts";
import { ProgramBuilder } from "../../node/program/program-builder.ts";
import { encodeProgram, programHash } from "../../node/program/program-encoding.ts";
import type { Program } from "../../node/program/program.ts";
import { int } from "../../node/program/secret-types.ts";
import { totalAndMean } from "../../node/program/standard-programs.ts";
import { getJson } from "../../node/transport/http-client.ts";

const run = promisify(execFile);

/**
 * End to end on anvil: three Consort node processes follow the chain while
 * the test replaces blocks they have already applied (evm_snapshot /
 * evm_revert, then new blocks at the same heights and above). At depth 0 the
 * nodes act on every block at once (anvil mines one per transaction); at
 * depth 2 a miner adds a block every 200 ms and the reorgs replace at least
 * five blocks, deeper than the confirmations.
 */
for (const confirmations of [0, 2]) describe(`e2e: chain reorganisations on anvil (confirmations ${confirmations})`, function () {
  this.timeout(120_000);

  let workDir: string;
  let chain: LocalChain;
  let provider: JsonRpcProvider;
  let registryAddress: string;
  let deploymentsDir: string;
  let requester: RegistryClient;
  const nodes: LocalNode[] = [];
  const owners = [devWallet(4), devWallet(5), devWallet(6)];

  async function rpc<T>(method: string, params: unknown[] = []): Promise<T> {
    return (await provider.send(method, params)) as T;
  }

  async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; logs in ${workDir}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function createTask(program: Program): Promise<bigint> {
    const now = await chainNow(provider);
    const { taskId } = await requester.createTask({
      program: encodeProgram(program),
      parties: nodes.map((n) => n.address),
      dataOwners: owners.map((o) => o.address),
      threshold: 1,
      inputDeadline: now + 600n,
      resultDeadline: now + 1_200n,
    });
    return taskId;
  }

  /** Every node's record of the task (GET /v1/tasks/:id), undefined where the node does not know it. */
  async function nodeViews(taskId: bigint): Promise<({ programHash: string; dataOwners: { address: string; committed: boolean; shareReceived: boolean }[] } | undefined)[]> {
    return Promise.all(
      nodes.map(async (n) => {
        try {
          return (await getJson(n.url, `/v1/tasks/${taskId}`, { timeoutMs: 2_000 })) as never;
        } catch {
          return undefined;
        }
      }),
    );
  }

  async function submit(ownerIndex: number, taskId: bigint, value: bigint, stateDir = "inputs"): Promise<SubmitInputResult> {
    const owner = owners[ownerIndex]!.connect(provider);
    return submitInput({
      registry: await RegistryClient.connect(owner, registryAddress),
      signer: owner,
      taskId,
      values: [value],
      stateDir: join(workDir, stateDir),
      deliveryTimeoutMs: 30_000,
    });
  }

  type LogEntry = { msg?: string; taskId?: string; resultHash?: string; removedTasks?: string[]; removedCommitments?: { taskId: string; dataOwner: string }[] };

  function logEntries(node: LocalNode): LogEntry[] {
    return readFileSync(node.logFile, "utf8")
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as LogEntry);
  }

  /** What each node logged as computed for this task: the result hashes, one per computation. */
  function computedResultHashes(taskId: bigint): string[][] {
    return nodes.map((n) => logEntries(n).filter((e) => e.msg === "result computed" && e.taskId === taskId.toString()).map((e) => e.resultHash!));
  }

  /** The rollbacks each node logged when it found a reorg. */
  function rollbacks(): LogEntry[][] {
    return nodes.map((n) => logEntries(n).filter((e) => e.msg?.startsWith("chain reorganisation detected") === true));
  }

  async function audit(taskId: bigint): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [join(PROJECT_ROOT, "node/cli/consort.ts"), "audit", "--task", taskId.toString()], {
        cwd: workDir,
        env: { ...process.env, CONSORT_RPC_URL: chain.rpcUrl, CONSORT_DEPLOYMENTS_DIR: deploymentsDir },
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { stdout: string; stderr: string; code: number };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  async function finalizedTotal(taskId: bigint): Promise<bigint> {
    await waitFor(`task ${taskId} to be finalized`, async () => (await requester.taskState(taskId)) === "Finalized", 60_000);
    const report = await auditTask(requester, taskId);
    expect(report.passed, JSON.stringify(report.checks.filter((c) => !c.passed))).to.equal(true);
    const cli = await audit(taskId);
    expect(cli.code, cli.stderr).to.equal(0);
    expect(cli.stdout).to.include("audit PASSED");
    const total = report.result?.outputs?.total;
    expect(typeof total, "the audited result has a total").to.equal("string");
    expect(cli.stdout).to.include(String(total));
    return BigInt(total as string);
  }

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), "consort-e2e-reorg-"));
    chain = await startAnvilChain(workDir);
    provider = await connectProvider(chain.rpcUrl, { pollingIntervalMs: 100 });
    // Not the requester's key: ethers caches a pending nonce for 250 ms, and the first task comes sooner.
    const deployment = await deployRegistry(devWallet(9).connect(provider));
    deploymentsDir = join(workDir, "deployments");
    saveDeployment(deployment, deploymentsDir);
    registryAddress = deployment.registry;
    requester = await RegistryClient.connect(devWallet(0).connect(provider), registryAddress);
    const specs: { spec: LocalNodeSpec; prepared: Awaited<ReturnType<typeof prepareLocalNode>> }[] = [];
    for (const i of [0, 1, 2]) {
      const wallet = devWallet(1 + i);
      const spec: LocalNodeSpec = {
        name: `bank-${i}`,
        wallet,
        rpcUrl: chain.rpcUrl,
        registry: registryAddress,
        deploymentsDir,
        workDir,
        config: { confirmations, pollIntervalMs: 100, takeoverDelayMs: 2_000, logLevel: "debug" },
      };
      const prepared = await prepareLocalNode(spec);
      await registerNodeParty(await RegistryClient.connect(wallet.connect(provider), registryAddress), wallet.address, prepared.dataDir, prepared.url);
      specs.push({ spec, prepared });
    }
    nodes.push(...(await Promise.all(specs.map(({ spec, prepared }) => startLocalNode(spec, prepared)))));
    // At depth 2 events are acted on only under two more blocks: keep the chain moving.
    if (confirmations > 0) miner = setInterval(() => void provider.send("evm_mine", []).catch(() => undefined), 200);
  });

  let failed = false;
  let miner: NodeJS.Timeout | undefined;

  /** The block number once it is at least `depth` past `from` (the miner gets it there at depth 2). */
  async function reorgDepthReached(from: number): Promise<void> {
    const depth = confirmations === 0 ? 1 : 5;
    await waitFor(`${depth} blocks above ${from}`, async () => (await provider.getBlockNumber()) >= from + depth);
  }
  afterEach(function () {
    if (this.currentTest?.state === "failed") failed = true;
  });

  after(async () => {
    clearInterval(miner);
    await Promise.allSettled(nodes.map((n) => n.stop()));
    provider?.destroy();
    await chain?.stop();
    // A failure's logs stay for reading (the messages name the folder).
    if (!failed) rmSync(workDir, { recursive: true, force: true });
  });

  it("a removed TaskCreated takes the task with it: the new task under the same id runs its own program on its inputs", async () => {
    // The task the reorg removes opens owner 0's raw value: a function the owners never agreed to.
    const leak = new ProgramBuilder("leak-owner-0");
    const inputs = [0, 1, 2].map((i) => leak.input(`values-${i}`, { owner: i, type: int(64) }));
    leak.output("total", inputs[0]!);
    const leakProgram = leak.build();
    const totalProgram = totalAndMean({ owners: 3, valuesPerOwner: 1, bits: 64 });

    const forkBlock = await provider.getBlockNumber();
    const fork = await rpc<string>("evm_snapshot");
    const removedId = await createTask(leakProgram);
    await rpc("evm_mine");
    await reorgDepthReached(forkBlock);
    await waitFor("every node to hold the task that will be removed", async () =>
      (await nodeViews(removedId)).every((v) => v?.programHash === programHash(encodeProgram(leakProgram))),
    );

    expect(await rpc<boolean>("evm_revert", [fork])).to.equal(true);
    await rpc("evm_mine");
    const taskId = await createTask(totalProgram);
    expect(taskId, "the id is handed out again").to.equal(removedId);
    const values = [1_000n, 2_000n, 3_000n];
    await Promise.all(values.map((v, i) => submit(i, taskId, v)));

    expect(await finalizedTotal(taskId)).to.equal(6_000n);
    const onChain = await requester.getTask(taskId);
    for (const view of await nodeViews(taskId)) expect(view?.programHash).to.equal(onChain.programHash);
    // Each node computed once, and that was the result finalized: never the removed program.
    expect(computedResultHashes(taskId)).to.deep.equal(nodes.map(() => [onChain.resultHash]));
    for (const logged of rollbacks()) expect(logged.some((e) => e.removedTasks?.includes(taskId.toString()))).to.equal(true);
  });

  it("a removed InputCommitted does not count: the owner's new value is accepted and finalized", async () => {
    const taskId = await createTask(totalAndMean({ owners: 3, valuesPerOwner: 1, bits: 64 }));
    await waitFor("every node to hold the task", async () => (await nodeViews(taskId)).every((v) => v !== undefined));
    const forkBlock = await provider.getBlockNumber();
    const fork = await rpc<string>("evm_snapshot");
    const first = await submit(0, taskId, 1_000n);
    expect(first.deliveries.map((d) => d.status)).to.deep.equal(["accepted", "accepted", "accepted"]);
    await waitFor("every node to apply the commitment to 1000", async () =>
      (await nodeViews(taskId)).every((v) => v?.dataOwners[0]?.committed === true && v.dataOwners[0].shareReceived),
    );
    await reorgDepthReached(forkBlock);

    // The commitment to 1000 leaves the chain after every node took its share; the chain goes on.
    expect(await rpc<boolean>("evm_revert", [fork])).to.equal(true);
    await rpc("evm_mine");
    await rpc("evm_mine");
    expect((await requester.inputCommitments(taskId))[0]).to.match(/^0x0+$/);

    const second = await submit(0, taskId, 5_000n);
    expect(second.commitment).to.not.equal(first.commitment);
    expect(second.deliveries.map((d) => d.status), "no party may answer with the share of the removed commitment").to.deep.equal([
      "accepted",
      "accepted",
      "accepted",
    ]);
    expect((await requester.inputCommitments(taskId))[0]).to.equal(second.commitment);
    await Promise.all([submit(1, taskId, 2_000n), submit(2, taskId, 3_000n)]);

    expect(await finalizedTotal(taskId)).to.equal(10_000n);
    const views = await nodeViews(taskId);
    for (const view of views) expect(view?.dataOwners.every((o) => o.committed && o.shareReceived)).to.equal(true);
    // Every node had applied the commitment to 1000 and rolled it back.
    for (const logged of rollbacks()) {
      expect(logged.some((e) => e.removedCommitments?.some((c) => c.taskId === taskId.toString() && c.dataOwner === owners[0]!.address))).to.equal(true);
    }
  });
});
