import { readFileSync } from "node:fs";
import { expect } from "chai";
import { auditTask } from "../../node/chain/task-audit.ts";
import { startLocalCluster, submitLocalTask, type LocalCluster, type LocalNode } from "../../node/dev/local-cluster.ts";
import { submitterRank } from "../../node/daemon/task-lifecycle.ts";
import { deterministicRng } from "../../node/math/rng.ts";
import { histogram } from "../../node/program/standard-programs.ts";
import { getJson } from "../../node/transport/http-client.ts";

const BOUNDARIES = [-1_000_000n, 0n, 1_000_000n];
const VALUES_PER_OWNER = 24;

/** The histogram the program must open: how many values fall in each bucket the boundaries make. */
function plainHistogram(values: readonly bigint[]): string[] {
  const below = BOUNDARIES.map((b) => values.filter((v) => v < b).length);
  return [below[0]!, ...below.slice(1).map((n, j) => n - below[j]!), values.length - below[below.length - 1]!].map(String);
}

/** The node's log lines (pino JSON), parsed. */
function logLines(node: LocalNode): Record<string, unknown>[] {
  let text: string;
  try {
    text = readFileSync(node.logFile, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Resolves once `node` has logged `msg` for `taskId` (its log file is written as it goes). */
async function logged(node: LocalNode, msg: string, taskId: bigint, extra: (line: Record<string, unknown>) => boolean = () => true): Promise<void> {
  for (;;) {
    if (logLines(node).some((l) => l.msg === msg && l.taskId === taskId.toString() && extra(l))) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Kill -9 a node at every point of a task's life, start it again, and the
 * task still finalizes the right result: no data owner resubmits, no party
 * sends a transaction twice, and every node's store ends in agreement with
 * the chain.
 */
describe("e2e: restart anywhere", function () {
  this.timeout(300_000);
  let cluster: LocalCluster;
  const rng = deterministicRng("consort restart-anywhere values");
  const program = histogram({ owners: 3, valuesPerOwner: VALUES_PER_OWNER, bits: 32, boundaries: BOUNDARIES });

  const randomInputs = (): bigint[][] =>
    [0, 1, 2].map(() =>
      Array.from({ length: VALUES_PER_OWNER }, () => {
        // A signed 24-bit value: every bucket gets some.
        const b = rng(3);
        return (BigInt(b[0]!) << 16n) + (BigInt(b[1]!) << 8n) + BigInt(b[2]!) - (1n << 23n);
      }),
    );

  const nonces = async (): Promise<number[]> =>
    Promise.all(cluster.nodes.map(async (n) => Number(await cluster.provider.send("eth_getTransactionCount", [n.address, "latest"]))));

  async function waitFinalized(taskId: bigint): Promise<void> {
    while ((await cluster.registry.taskState(taskId)) !== "Finalized") await new Promise((r) => setTimeout(r, 100));
  }

  /** Every node's store agrees with the chain: finalized, with the chain's result hash. */
  async function storesAgree(taskId: bigint): Promise<void> {
    const onChain = await cluster.registry.getTask(taskId);
    for (const node of cluster.nodes) {
      for (;;) {
        const status = (await getJson(node.url, `/v1/tasks/${taskId}`, { timeoutMs: 5_000 })) as { status: string; resultHash: string | null };
        if (status.status === "finalized") {
          expect(status.resultHash, node.name).to.equal(onChain.resultHash);
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Runs a task, kills the nodes `victims` once `when` resolves for it, starts them again, and checks the outcome. */
  async function crashAndRecover(victims: number[], when: (taskId: bigint) => Promise<void>): Promise<{ taskId: bigint; sent: number[] }> {
    const inputs = randomInputs();
    const before = await nonces();
    let crash: Promise<void> | undefined;
    const taskId = await submitLocalTask(cluster, program, inputs, 1, (id) => {
      crash = (async () => {
        await when(id);
        await Promise.all(victims.map((v) => cluster.kill(v)));
        await Promise.all(victims.map((v) => cluster.start(v)));
      })();
    });
    await crash;
    await waitFinalized(taskId);
    const report = await auditTask(cluster.registry, taskId);
    expect(report.passed, JSON.stringify(report.checks.filter((c) => !c.passed))).to.equal(true);
    expect(report.result?.outputs?.histogram).to.deep.equal(plainHistogram(inputs.flat()));
    await storesAgree(taskId);
    const after = await nonces();
    return { taskId, sent: after.map((n, i) => n - before[i]!) };
  }

  before(async () => {
    cluster = await startLocalCluster({
      parties: 3,
      owners: 3,
      name: "consort-restart",
      config: { confirmations: 1, pollIntervalMs: 100, protocolTimeoutMs: 8_000, takeoverDelayMs: 4_000, logLevel: "info" },
    });
  });

  after(async () => {
    await cluster?.stop();
  });

  it("a node killed between rounds rejoins under a new attempt, and the task finalizes the right result", async () => {
    const { taskId, sent } = await crashAndRecover([2], (id) => logged(cluster.nodes[2]!, "computation started", id));
    expect(sent.reduce((a, b) => a + b, 0)).to.equal(1);
    // The restarted node computed under a newer attempt than the one it was killed in.
    expect(logLines(cluster.nodes[2]!).some((l) => l.msg === "result computed" && l.taskId === taskId.toString() && Number(l.attempt) >= 1)).to.equal(true);
  });

  it("a node killed after opening the result, and one killed after its attestation, lose nothing", async () => {
    for (const point of ["result computed", "quorum of attestations collected"]) {
      const { sent } = await crashAndRecover([1], (id) => logged(cluster.nodes[1]!, point, id));
      expect(sent.reduce((a, b) => a + b, 0), point).to.equal(1);
    }
  });

  it("two of three nodes killed mid-computation come back and finish it", async () => {
    const { sent } = await crashAndRecover([0, 1], (id) => logged(cluster.nodes[0]!, "computation started", id));
    expect(sent.reduce((a, b) => a + b, 0)).to.equal(1);
  });

  it("the submitter killed while its finalize transaction is pending sends that same transaction, not a second one", async () => {
    await cluster.provider.send("evm_setAutomine", [false]);
    try {
      let submitter = -1;
      const { taskId, sent } = await crashAndRecover([], async (id) => {
        submitter = cluster.nodes.findIndex((_, i) => submitterRank(i, cluster.nodes.length, id) === 0);
        await logged(cluster.nodes[submitter]!, "transaction broadcast", id, (l) => l.intent === `finalize/${id}`);
        await cluster.kill(submitter);
        await cluster.start(submitter);
      });
      expect(sent[submitter], `party ${submitter} sent ${sent[submitter]} transactions`).to.equal(1);
      const broadcasts = logLines(cluster.nodes[submitter]!).filter((l) => l.msg === "transaction broadcast" && l.intent === `finalize/${taskId}`);
      expect(new Set(broadcasts.map((l) => l.tx)).size).to.equal(1);
    } finally {
      await cluster.provider.send("evm_setAutomine", [true]);
    }
  });
});
