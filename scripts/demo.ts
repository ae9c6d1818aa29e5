/**
 * npm run demo: three banks compute the total and mean of their private
 * portfolio values with Consort, on an embedded local chain, from nothing.
 *
 *   1. start an embedded chain (Hardhat's EDR over JSON-RPC on 127.0.0.1)
 *   2. deploy the registry                      (same code as scripts/deploy.ts)
 *   3. register three parties, one per bank     (same code as scripts/register.ts)
 *   4. start three Consort nodes as OS processes (own key, port, data directory)
 *   5. create the task, threshold t = 1         (same code as `consort task create`)
 *   6. each bank submits its value as encrypted Shamir shares; only a commitment goes on chain
 *   7. the nodes compute on shares, attest, and one finalizes with the quorum's signatures
 *   8. audit the task from the chain alone      (same code as scripts/audit.ts)
 *
 * Exits 0 only when the audit passed and the on-chain result equals the
 * plaintext computation; stops every process it started, whatever happens.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JsonRpcProvider } from "ethers";
import { deployRegistry, saveDeployment } from "../node/chain/deployments.ts";
import { RegistryClient } from "../node/chain/registry-client.ts";
import { connectProvider } from "../node/chain/rpc-provider.ts";
import { auditTask, formatAuditReport } from "../node/chain/task-audit.ts";
import { toConsortError } from "../node/errors.ts";
import { encodeProgram, programHash } from "../node/program/program-encoding.ts";
import { totalAndMean } from "../node/program/standard-programs.ts";
import { chainNow } from "../node/chain/rpc-provider.ts";
import { submitInput } from "../node/client/data-owner-client.ts";
import {
  devWallet,
  prepareLocalNode,
  startLocalChain,
  startLocalNode,
  type LocalChain,
  type LocalNode,
  type ManagedProcess,
} from "../node/dev/local-cluster.ts";
import { registerNodeParty } from "../node/daemon/register-node-party.ts";

const BANKS = [
  { name: "bank-a", label: "Bank A", value: 1_250_000_000n },
  { name: "bank-b", label: "Bank B", value: 980_500_250n },
  { name: "bank-c", label: "Bank C", value: 2_100_000_075n },
] as const;

const started = Date.now();
const say = (line: string) => process.stdout.write(`${line}\n`);
const step = (n: number, text: string) => say(`\n[${n}/8] ${text}`);
const secs = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;
const money = (v: bigint) => v.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");

const workDir = mkdtempSync(join(tmpdir(), "consort-demo-"));
const processes: ManagedProcess[] = [];
let provider: JsonRpcProvider | undefined;
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    provider?.destroy();
    await Promise.allSettled(processes.reverse().map((p) => p.stop()));
  })();
  return cleaning;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    say(`\n${signal}: stopping every process the demo started`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<boolean> {
  say("Consort demo: three banks compute the total and mean of their private portfolio values.");
  say(`(work directory with every log: ${workDir})`);

  step(1, "starting an embedded local chain");
  const chain: LocalChain = await startLocalChain(workDir);
  processes.push(chain);
  provider = await connectProvider(chain.rpcUrl, { pollingIntervalMs: 200 });
  const chainId = (await provider.getNetwork()).chainId;
  say(`      ${chain.rpcUrl}, chain id ${chainId}`);

  step(2, "deploying the registry");
  const deployer = devWallet(0).connect(provider);
  const deployment = await deployRegistry(deployer);
  const deploymentsDir = join(workDir, "deployments");
  saveDeployment(deployment, deploymentsDir);
  say(`      ConsortRegistry at ${deployment.registry} (block ${deployment.blockNumber}, tx ${deployment.txHash})`);

  step(3, "registering three parties, one per bank");
  const specs = [];
  for (const [i, bank] of BANKS.entries()) {
    const wallet = devWallet(1 + i);
    const spec = { name: bank.name, wallet, rpcUrl: chain.rpcUrl, registry: deployment.registry, deploymentsDir, workDir };
    const prepared = await prepareLocalNode(spec);
    const registry = await RegistryClient.connect(wallet.connect(provider), deployment.registry);
    const r = await registerNodeParty(registry, wallet.address, prepared.dataDir, prepared.url);
    say(`      ${bank.label}  party ${r.party}  ${r.endpoint}  ${r.outcome}`);
    specs.push({ spec, prepared });
  }

  step(4, "starting three Consort nodes as separate processes");
  const nodes: LocalNode[] = await Promise.all(specs.map(({ spec, prepared }) => startLocalNode(spec, prepared)));
  processes.push(...nodes);
  for (const n of nodes) say(`      ${n.name}  pid ${n.child.pid}  ${n.url}  data ${n.dataDir}`);

  step(5, "creating the task: total and mean of the three banks' private portfolio values, t = 1");
  const owners = BANKS.map((_, i) => devWallet(4 + i));
  const program = totalAndMean({ owners: BANKS.length, valuesPerOwner: 1, bits: 64 });
  const programBytes = encodeProgram(program);
  const requester = await RegistryClient.connect(devWallet(0).connect(provider), deployment.registry);
  const now = await chainNow(provider);
  const taskStarted = Date.now();
  const { taskId, receipt } = await requester.createTask({
    program: programBytes,
    parties: nodes.map((n) => n.address),
    dataOwners: owners.map((o) => o.address),
    threshold: 1,
    inputDeadline: now + 600n,
    resultDeadline: now + 1_200n,
  });
  say(`      task ${taskId}, program ${programHash(programBytes)} (${programBytes.length} bytes, committed on chain), block ${receipt.blockNumber}`);

  step(6, "each bank submits its private value as Shamir shares encrypted to each node; only a commitment goes on chain");
  await Promise.all(
    BANKS.map(async (bank, i) => {
      const owner = owners[i]!.connect(provider!);
      const registry = await RegistryClient.connect(owner, deployment.registry);
      const r = await submitInput({
        registry,
        signer: owner,
        taskId,
        values: [bank.value],
        stateDir: join(workDir, "inputs", bank.name),
      });
      say(`      ${bank.label}  data owner ${r.dataOwner}  commitment ${r.commitment}  shares taken by ${r.deliveries.length} nodes`);
    }),
  );

  step(7, "the nodes compute on shares, open only the result, attest, and one finalizes on chain");
  const finalizedAt = await waitFinalized(requester, taskId, 120_000);
  say(`      finalized in block ${finalizedAt}, ${secs(taskStarted)} after the task was created`);

  step(8, "auditing the task from the chain alone");
  const report = await auditTask(requester, taskId);
  say(
    formatAuditReport(report)
      .split("\n")
      .map((l) => `      ${l}`)
      .join("\n"),
  );

  const expectedTotal = BANKS.reduce((s, b) => s + b.value, 0n);
  const onChainTotal = report.result?.outputs?.total;
  const matches = onChainTotal === expectedTotal.toString();
  say(`\nFor comparison only (the nodes never saw these): the plaintext total is ${money(expectedTotal)}; on chain: ${onChainTotal === undefined ? "none" : money(BigInt(String(onChainTotal)))} (${matches ? "equal" : "DIFFERENT"}).`);
  say(`Mean on chain: ${String(report.result?.outputs?.mean ?? "none")}.`);
  const ok = report.passed && matches;
  say(`\nDemo ${ok ? "passed" : "FAILED"} in ${secs(started)}.`);
  return ok;
}

async function waitFinalized(registry: RegistryClient, taskId: bigint, timeoutMs: number): Promise<bigint> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const state = await registry.taskState(taskId);
    if (state === "Finalized") return (await registry.getTask(taskId)).finalizedAtBlock;
    if (state === "Expired") throw new Error(`task ${taskId} expired`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`task ${taskId} was not finalized within ${timeoutMs / 1000} s`);
}

let ok = false;
try {
  ok = await main();
} catch (error) {
  const e = toConsortError(error);
  say(`\ndemo failed: ${e.code}: ${e.message}`);
} finally {
  await cleanup();
}
if (ok) rmSync(workDir, { recursive: true, force: true });
else say(`logs kept in ${workDir}`);
process.exit(ok ? 0 : 1);
