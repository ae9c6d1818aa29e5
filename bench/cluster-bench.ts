/**
 * A benchmark cluster: an embedded chain, the registry, n Consort nodes as
 * separate OS processes (real HTTP on 127.0.0.1), and data owners. Nodes
 * apply events at the chain head (confirmations 0; the local chain mines
 * every transaction at once) and poll every 50 ms, so the figures measure
 * Consort, not block times.
 */
import { startLocalCluster, submitLocalTask, type LocalCluster } from "../node/dev/local-cluster.ts";
import type { Program } from "../node/program/program.ts";
import { getJson } from "../node/transport/http-client.ts";

export type BenchCluster = LocalCluster;

export function startBenchCluster(parties: number, owners: number): Promise<BenchCluster> {
  return startLocalCluster({
    parties,
    owners,
    name: "consort-bench",
    config: { confirmations: 0, pollIntervalMs: 100, logLevel: "warn", protocolTimeoutMs: 120_000 },
  });
}

export interface TaskTiming {
  readonly taskId: bigint;
  /** From sending createTask to seeing the task Finalized on chain. */
  readonly totalMs: number;
  /** From the last input delivered to Finalized: computation, attestation and the finalize transaction. */
  readonly computeMs: number;
}

/**
 * Runs one task end to end: create, every owner submits `inputs[i]`, wait for
 * finalization, asking the chain every `pollMs` (the end-to-end figure wants
 * it small; the others time the computation inside the nodes and want the
 * machine quiet).
 */
export async function runTask(cluster: BenchCluster, program: Program, inputs: readonly (readonly bigint[])[], threshold: number, pollMs = 50): Promise<TaskTiming> {
  const started = performance.now();
  const taskId = await submitLocalTask(cluster, program, inputs, threshold);
  const delivered = performance.now();
  for (;;) {
    const state = await cluster.registry.taskState(taskId);
    if (state === "Finalized") break;
    if (state === "Expired") throw new Error(`task ${taskId} expired`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
  const done = performance.now();
  return { taskId, totalMs: done - started, computeMs: done - delivered };
}

/** Sum of the bytes every node reports having sent to peers (GET /v1/health). */
export async function bytesSent(cluster: BenchCluster): Promise<number> {
  let total = 0;
  for (const node of cluster.nodes) {
    const health = (await getJson(node.url, "/v1/health", { timeoutMs: 5_000 })) as { peerBytesSent?: number };
    total += health.peerBytesSent ?? 0;
  }
  return total;
}
