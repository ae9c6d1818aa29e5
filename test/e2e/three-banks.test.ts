import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import type { JsonRpcProvider } from "ethers";
import { deployRegistry, saveDeployment } from "../../node/chain/deployments.ts";
import { RegistryClient } from "../../node/chain/registry-client.ts";
import { connectProvider } from "../../node/chain/rpc-provider.ts";
import { auditTask } from "../../node/chain/task-audit.ts";
import { submitInput } from "../../node/client/data-owner-client.ts";
import {
  PROJECT_ROOT,
  devWallet,
  prepareLocalNode,
  startLocalChain,
  startLocalNode,
  type LocalChain,
  type LocalNode,
  type LocalNodeSpec,
} from "../../node/dev/local-cluster.ts";
import { registerNodeParty } from "../../node/daemon/register-node-party.ts";
import { deterministicRng } from "../../node/math/rng.ts";
import { ProgramBuilder } from "../../node/program/program-builder.ts";
import { encodeProgram } from "../../node/program/program-encoding.ts";
import { int } from "../../node/program/secret-types.ts";
import { secondPriceAuction } from "../../node/program/standard-programs.ts";
import { signOutputRequest } from "../../node/transport/output-request.ts";

const run = promisify(execFile);

/**
 * End to end: a local chain, the registry, three Consort nodes as separate OS
 * processes talking real HTTP, data owners submitting through the real client
 * (and the `consort` CLI), and the result checked on chain against the
 * plaintext computation.
 */
describe("e2e: three banks on a local chain", function () {
  this.timeout(300_000);

  let workDir: string;
  let chain: LocalChain;
  let provider: JsonRpcProvider;
  let registryAddress: string;
  let deploymentsDir: string;
  let requester: RegistryClient;
  const specs: { spec: LocalNodeSpec; prepared: Awaited<ReturnType<typeof prepareLocalNode>> }[] = [];
  const nodes: LocalNode[] = [];
  const owners = [devWallet(4), devWallet(5), devWallet(6)];
  const rng = deterministicRng("consort e2e values");

  /** A signed 48-bit value drawn from the seeded rng, so a failure reproduces. */
  const randomValue = (): bigint => {
    const b = rng(6);
    let v = 0n;
    for (const x of b) v = (v << 8n) | BigInt(x);
    return v - (1n << 47n);
  };

  async function consort(args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string; code: number }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [join(PROJECT_ROOT, "node/cli/consort.ts"), ...args], {
        cwd: workDir,
        env: { ...process.env, CONSORT_RPC_URL: chain.rpcUrl, CONSORT_DEPLOYMENTS_DIR: deploymentsDir, ...env },
      });
      return { stdout, stderr, code: 0 };
    } catch (error) {
      const e = error as { stdout: string; stderr: string; code: number };
      return { stdout: e.stdout, stderr: e.stderr, code: e.code };
    }
  }

  async function createTask(programFile?: string): Promise<bigint> {
    const r = await consort(
      [
        "task", "create",
        ...(programFile === undefined ? ["--standard", "total-and-mean"] : ["--program", programFile]),
        "--parties", nodes.map((n) => n.address).join(","),
        "--data-owners", owners.map((o) => o.address).join(","),
        "--threshold", "1",
        "--input-window", "600",
        "--result-window", "600",
      ],
      { CONSORT_PRIVATE_KEY: devWallet(0).privateKey },
    );
    expect(r.code, r.stderr).to.equal(0);
    const match = /created task (\d+)/.exec(r.stdout);
    expect(match, r.stdout).to.not.equal(null);
    return BigInt(match![1]!);
  }

  async function waitFinalized(taskId: bigint, timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await requester.taskState(taskId)) !== "Finalized") {
      if (Date.now() > deadline) throw new Error(`task ${taskId} not finalized within ${timeoutMs} ms; logs in ${workDir}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async function submitLibrary(ownerIndex: number, taskId: bigint, value: bigint): Promise<void> {
    const owner = owners[ownerIndex]!.connect(provider);
    await submitInput({
      registry: await RegistryClient.connect(owner, registryAddress),
      signer: owner,
      taskId,
      values: [value],
      stateDir: join(workDir, "inputs"),
      deliveryTimeoutMs: 90_000,
    });
  }

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), "consort-e2e-"));
    chain = await startLocalChain(workDir);
    provider = await connectProvider(chain.rpcUrl, { pollingIntervalMs: 200 });
    const deployment = await deployRegistry(devWallet(0).connect(provider));
    deploymentsDir = join(workDir, "deployments");
    saveDeployment(deployment, deploymentsDir);
    registryAddress = deployment.registry;
    requester = await RegistryClient.connect(devWallet(0).connect(provider), registryAddress);
    for (const i of [0, 1, 2]) {
      const wallet = devWallet(1 + i);
      const spec: LocalNodeSpec = {
        name: `bank-${i}`,
        wallet,
        rpcUrl: chain.rpcUrl,
        registry: registryAddress,
        deploymentsDir,
        workDir,
        config: { takeoverDelayMs: 2_000, logLevel: "debug" },
      };
      const prepared = await prepareLocalNode(spec);
      await registerNodeParty(await RegistryClient.connect(wallet.connect(provider), registryAddress), wallet.address, prepared.dataDir, prepared.url);
      specs.push({ spec, prepared });
    }
    nodes.push(...(await Promise.all(specs.map(({ spec, prepared }) => startLocalNode(spec, prepared)))));
  });

  after(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    provider?.destroy();
    await chain?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  it("finalizes the private total on chain, equal to the plaintext sum, and the audit passes", async () => {
    const taskId = await createTask();
    const values = [randomValue(), randomValue(), randomValue()];
    // Owner 0 uses the consort CLI; the others the library the CLI wraps.
    const cli = await consort(["input", "submit", "--task", taskId.toString(), "--value", values[0]!.toString(), "--state-dir", join(workDir, "cli-inputs")], {
      CONSORT_PRIVATE_KEY: owners[0]!.privateKey,
    });
    expect(cli.code, cli.stderr).to.equal(0);
    expect(cli.stdout).to.match(/committed 0x[0-9a-f]{64} to task/);
    await Promise.all([submitLibrary(1, taskId, values[1]!), submitLibrary(2, taskId, values[2]!)]);
    await waitFinalized(taskId);

    const report = await auditTask(requester, taskId);
    expect(report.checks.filter((c) => !c.passed)).to.deep.equal([]);
    expect(report.passed).to.equal(true);
    const total = values.reduce((a, b) => a + b, 0n);
    expect(report.result?.outputs?.total).to.equal(total.toString());
    const task = await requester.getTask(taskId);
    expect(report.result?.hash).to.equal(task.resultHash);

    const audit = await consort(["audit", "--task", taskId.toString()]);
    expect(audit.code, audit.stderr).to.equal(0);
    expect(audit.stdout).to.include("audit PASSED");
    expect(audit.stdout).to.include(total.toString());

    // Anyone can see what the program hash commits to: from the chain, or from a party's node.
    for (const source of [[], ["--node", nodes[0]!.url]]) {
      const shown = await consort(["program", "show", task.programHash, ...source]);
      expect(shown.code, shown.stderr).to.equal(0);
      expect(shown.stdout).to.include(`hash    ${task.programHash}`);
      expect(shown.stdout).to.include("input   values-2: 1 x int(64) from data owner #2");
    }
    const unknown = await consort(["program", "show", `0x${"ab".repeat(32)}`]);
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.match(/^consort: NOT_FOUND: /);
  });

  it("runs a sealed-bid second-price auction on shares: only the winner and the price are opened", async () => {
    const file = join(workDir, "auction.json");
    writeFileSync(file, encodeProgram(secondPriceAuction({ bidders: 3, bits: 32 })));
    const taskId = await createTask(file);
    const bids = [70_000n, 91_500n, 88_250n];
    await Promise.all(bids.map((b, i) => submitLibrary(i, taskId, b)));
    await waitFinalized(taskId);
    const report = await auditTask(requester, taskId);
    expect(report.passed).to.equal(true);
    expect(report.result?.outputs).to.deep.equal({ winner: "1", price: "88250" });
  });

  it("opens a requester-only output to the requester alone, checked against the commitment signed on chain", async () => {
    const p = new ProgramBuilder("private-total");
    const values = [0, 1, 2].map((i) => p.input(`values-${i}`, { owner: i, type: int(48) }));
    p.output("total", p.sum(values), { reveal: "requester" });
    const file = join(workDir, "private-total.json");
    writeFileSync(file, encodeProgram(p.build()));
    const taskId = await createTask(file);
    const inputs = [randomValue(), randomValue(), randomValue()];
    await Promise.all(inputs.map((v, i) => submitLibrary(i, taskId, v)));
    await waitFinalized(taskId);
    // On chain: a commitment, not the value.
    const report = await auditTask(requester, taskId);
    expect(report.passed).to.equal(true);
    const onChain = report.result?.outputs?.total;
    expect(onChain).to.match(/^0x[0-9a-f]{64}$/);
    const total = inputs.reduce((a, b) => a + b, 0n);
    expect(onChain).to.not.include(total.toString());
    // The requester reconstructs it; anyone else is refused.
    const mine = await consort(["task", "result", "--task", taskId.toString()], { CONSORT_PRIVATE_KEY: devWallet(0).privateKey });
    expect(mine.code, mine.stderr).to.equal(0);
    expect(mine.stdout).to.include(`total = ${total}`);
    const theirs = await consort(["task", "result", "--task", taskId.toString()], { CONSORT_PRIVATE_KEY: owners[0]!.privateKey });
    expect(theirs.code).to.equal(1);
    expect(theirs.stderr).to.match(/^consort: NOT_REQUESTER: /);
    // A party refuses a request not signed by the requester, even one that names the requester.
    const forged = await signOutputRequest(
      { version: 1, chainId: "31337", registry: registryAddress, taskId: taskId.toString(), requester: owners[0]!.address, ephemeralKey: `0x02${"11".repeat(32)}`, issuedAt: Math.floor(Date.now() / 1000) },
      owners[0]!,
    );
    const refused = await fetch(`${nodes[0]!.url}/v1/tasks/${taskId}/outputs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...forged, requester: devWallet(0).address }),
    });
    expect(refused.status).to.equal(401);
  });

  it("a standby party finalizes when the designated submitter cannot pay for the transaction", async () => {
    const taskId = await createTask();
    // The designated submitter is party (taskId mod n); take all its gas money.
    const designated = nodes[Number(taskId % 3n)]!;
    const balance = await provider.getBalance(designated.address);
    await provider.send("hardhat_setBalance", [designated.address, "0x0"]);
    try {
      const values = [randomValue(), randomValue(), randomValue()];
      await Promise.all(values.map((v, i) => submitLibrary(i, taskId, v)));
      await waitFinalized(taskId);
      const report = await auditTask(requester, taskId);
      expect(report.passed).to.equal(true);
      expect(report.result?.submitter).to.not.equal(designated.address);
      expect(report.result?.submitter).to.equal(nodes[Number((taskId + 1n) % 3n)]!.address);
      expect(report.result?.outputs?.total).to.equal(values.reduce((a, b) => a + b, 0n).toString());
    } finally {
      await provider.send("hardhat_setBalance", [designated.address, `0x${balance.toString(16)}`]);
    }
  });

  it("a node stopped before the inputs arrive catches up from its cursor after a restart", async () => {
    const taskId = await createTask();
    const index = 2;
    // Let it see the task, then stop it: it misses every InputCommitted event and its shares wait at the owners.
    await new Promise((r) => setTimeout(r, 2_500));
    await nodes[index]!.stop();
    const values = [randomValue(), randomValue(), randomValue()];
    const submissions = Promise.all(values.map((v, i) => submitLibrary(i, taskId, v)));
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await requester.taskState(taskId)).to.equal("Computing");
    nodes[index] = await startLocalNode(specs[index]!.spec, specs[index]!.prepared);
    await submissions;
    await waitFinalized(taskId);
    const report = await auditTask(requester, taskId);
    expect(report.passed).to.equal(true);
    expect(report.result?.outputs?.total).to.equal(values.reduce((a, b) => a + b, 0n).toString());
  });
});
