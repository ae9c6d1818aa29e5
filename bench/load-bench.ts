/**
 * The load scenario of `npm run bench` (`CONSORT_BENCH_ONLY=load`): a fresh
 * three-node cluster, 100 tasks created at once, every owner submitting to all
 * of them at once, and the wait for all 100 to finalize. Reports tasks per
 * minute, per-task latency, and each process's peak RSS and CPU time, read
 * from /proc (Linux only).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { submitLocalTasksAtOnce, type LocalTaskSubmission } from "../node/dev/local-cluster.ts";
import { hexlify } from "ethers";
import { encodeResult } from "../node/program/result-encoding.ts";
import { evaluatePlain } from "../node/program/plain-evaluator.ts";
import { maxAndArgmax, standardInputName, totalAndMean } from "../node/program/standard-programs.ts";
import type { Program } from "../node/program/program.ts";
import { toConsortError } from "../node/errors.ts";
import { getJson } from "../node/transport/http-client.ts";
import { startBenchCluster, type BenchCluster } from "./cluster-bench.ts";

export interface LoadFigure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly target: string;
  readonly runs: readonly number[];
}

const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

/** Peak resident set (VmHWM) of a live process, in MiB. */
function peakRssMiB(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (m === null) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/** User plus system CPU time a live process has used so far, in ms. */
function cpuMs(pid: number): number {
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

const quantile = (xs: readonly number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};

export interface LoadRun {
  readonly tasks: number;
  /** First createTask sent to last finalization seen. */
  readonly wallMs: number;
  readonly tasksPerMinute: number;
  /** Per task, its createTask sent to its finalization seen. */
  readonly latencyMs: readonly number[];
  /** First createTask sent to: all tasks created; all inputs delivered. */
  readonly allCreatedMs: number;
  readonly allDeliveredMs: number;
  /** Per task, its last input delivered to its finalization seen. */
  readonly afterInputsMs: readonly number[];
  readonly nodes: readonly { readonly name: string; readonly peakRssMiB: number; readonly cpuMs: number; readonly retries: number; readonly maxAttempt: number }[];
  readonly chainCpuMs: number;
  readonly benchCpuMs: number;
  /** Per owner's submission: its start to its commit transaction being sent; from there to its last share delivered. */
  readonly toCommitMs: readonly number[];
  readonly commitToDeliveredMs: readonly number[];
  /** Delivery retries and whole submissions run again, by reason (digits blanked). */
  readonly retryReasons: Readonly<Record<string, number>>;
  /** submitInput calls run again after a retryable error (see submitLocalTasksAtOnce). */
  readonly resubmissions: number;
}

/**
 * Runs `tasks` tasks of `program` at once on `cluster` and waits for all to
 * finalize, checking every result against the plaintext evaluation. The
 * chain is asked for TaskFinalized logs every `pollMs` (one request per poll,
 * whatever the number of tasks).
 */
export async function runLoad(cluster: BenchCluster, program: Program, owners: number, tasks: number, pollMs = 100): Promise<LoadRun> {
  const jobs = Array.from({ length: tasks }, (_, t) => ({
    program,
    inputs: Array.from({ length: owners }, (_, o) => [BigInt(((t + 1) * 7_919 + (o + 1) * 104_729) % 1_000_003)]),
  }));
  const pids = cluster.nodes.map((n) => n.child.pid!);
  const chainPid = cluster.chain.child.pid!;
  const cpuBefore = pids.map(cpuMs);
  const chainBefore = cpuMs(chainPid);
  const benchBefore = process.cpuUsage();
  const fromBlock = await cluster.provider.getBlockNumber();

  const started = performance.now();
  const finalized = new Map<bigint, { at: number; result: string }>();
  let submissions: LocalTaskSubmission[] | undefined;
  let failed: unknown;
  // Where a submission's time goes: from its start to its commit transaction (reading the task and program, sharing),
  // from there to its last delivery (the commit mined, the shares sealed and posted), and why deliveries were retried.
  const steps = new Map<string, { start: number; commit?: number; delivered?: number }>();
  const retryReasons = new Map<string, number>();
  const onProgress = (taskId: bigint, owner: number, event: { step: string; [key: string]: unknown }) => {
    const key = `${taskId}/${owner}`;
    const now = performance.now();
    if (event.step === "start") steps.set(key, { start: now });
    else if (event.step === "commit") steps.get(key)!.commit = now;
    else if (event.step === "delivered") steps.get(key)!.delivered = now;
    else if (event.step === "retry" || event.step === "resubmit") {
      const reason = `${event.step}: ${String(event["reason"]).replace(/\d+/g, "N").slice(0, 160)}`;
      retryReasons.set(reason, (retryReasons.get(reason) ?? 0) + 1);
    }
  };
  const submitting = submitLocalTasksAtOnce(cluster, jobs, 1, onProgress).then(
    (s) => (submissions = s),
    (e: unknown) => (failed = e),
  );
  const registry = cluster.registry.contract;
  let scanned = fromBlock;
  let pollFailures = 0;
  while (finalized.size < tasks) {
    if (failed !== undefined) throw failed;
    await new Promise((r) => setTimeout(r, pollMs));
    try {
      const head = await cluster.provider.getBlockNumber();
      if (head <= scanned) continue;
      const expired = await registry.queryFilter(registry.filters.TaskExpired!(), scanned + 1, head);
      if (expired.length > 0) throw new Error(`${expired.length} task(s) expired under load; logs in ${cluster.workDir}`);
      for (const log of await registry.queryFilter(registry.filters.TaskFinalized!(), scanned + 1, head)) {
        const args = (log as unknown as { args: { taskId: bigint; result: string } }).args;
        if (!finalized.has(args.taskId)) finalized.set(args.taskId, { at: performance.now(), result: args.result });
      }
      scanned = head;
    } catch (error) {
      // The chain's RPC under this load sometimes resets a connection: ask again at the next poll.
      if (!toConsortError(error).retryable || ++pollFailures > 20) throw error;
    }
  }
  const ended = performance.now();
  await submitting;
  if (failed !== undefined) throw failed;

  const nodeCpu = pids.map((pid, i) => cpuMs(pid) - cpuBefore[i]!);
  const chainCpuMs = cpuMs(chainPid) - chainBefore;
  const benchUsage = process.cpuUsage(benchBefore);
  const peaks = pids.map(peakRssMiB);

  const latencyMs: number[] = [];
  const afterInputsMs: number[] = [];
  for (const [t, s] of submissions!.entries()) {
    const f = finalized.get(s.taskId);
    if (f === undefined) throw new Error(`task ${s.taskId} was created by this run but not seen finalized`);
    // Each task has its own inputs: check its result against their plaintext evaluation.
    const want = hexlify(encodeResult(program, evaluatePlain(program, Object.fromEntries(jobs[t]!.inputs.map((v, o) => [standardInputName(o), v])))));
    if (f.result !== want) throw new Error(`task ${s.taskId}: the chain holds result ${f.result}, the plaintext evaluation encodes to ${want}`);
    latencyMs.push(f.at - s.startedAt);
    afterInputsMs.push(f.at - s.deliveredAt);
  }

  // How often each node's jobs had to retry a step under load (GET /v1/tasks/:id, job.failures and attempt).
  const nodes = await Promise.all(
    cluster.nodes.map(async (n, i) => {
      let retries = 0;
      let maxAttempt = 0;
      for (const s of submissions!) {
        const status = (await getJson(n.url, `/v1/tasks/${s.taskId}`, { timeoutMs: 10_000 })) as { job: { attempt: number; failures: number } | null };
        retries += status.job?.failures ?? 0;
        maxAttempt = Math.max(maxAttempt, status.job?.attempt ?? 0);
      }
      return { name: n.name, peakRssMiB: peaks[i]!, cpuMs: nodeCpu[i]!, retries, maxAttempt };
    }),
  );
  const wallMs = ended - started;
  const entries = [...steps.values()].filter((x) => x.commit !== undefined && x.delivered !== undefined);
  return {
    toCommitMs: entries.map((x) => x.commit! - x.start),
    commitToDeliveredMs: entries.map((x) => x.delivered! - x.commit!),
    retryReasons: Object.fromEntries(retryReasons),
    tasks,
    wallMs,
    tasksPerMinute: tasks / (wallMs / 60_000),
    latencyMs,
    allCreatedMs: Math.max(...submissions!.map((s) => s.createdAt)) - started,
    allDeliveredMs: Math.max(...submissions!.map((s) => s.deliveredAt)) - started,
    afterInputsMs,
    nodes,
    chainCpuMs,
    benchCpuMs: (benchUsage.user + benchUsage.system) / 1000,
    resubmissions: submissions!.reduce((a, s) => a + s.resubmissions, 0),
  };
}

/**
 * The scenario: a fresh cluster per run (so each node's peak RSS is this
 * load's), `runs` runs of 100 tasks over three owners with one value each:
 * total-and-mean (no rounds: the load is the chain, the inputs and the
 * attestations), or max-and-argmax of 32-bit values (comparisons: dozens of
 * rounds per task, all tasks' rounds interleaved).
 */
export async function loadScenario(runs: number, kind: "total-and-mean" | "max-and-argmax", tasks = 100): Promise<LoadFigure[]> {
  const program = kind === "total-and-mean" ? totalAndMean({ owners: 3, valuesPerOwner: 1, bits: 32 }) : maxAndArgmax({ owners: 3, valuesPerOwner: 1, bits: 32 });
  const all: LoadRun[] = [];
  for (let r = 0; r < runs; r++) {
    const cluster = await startBenchCluster(3, 3);
    try {
      const run = await runLoad(cluster, program, 3, tasks);
      all.push(run);
      console.error(
        `bench: load ${kind} run ${r + 1}: ${run.tasksPerMinute.toFixed(0)} tasks/min (${(run.wallMs / 1000).toFixed(1)} s; all created ${(run.allCreatedMs / 1000).toFixed(1)} s, all delivered ${(run.allDeliveredMs / 1000).toFixed(1)} s), ` +
          `latency median ${(quantile(run.latencyMs, 0.5) / 1000).toFixed(1)} s p95 ${(quantile(run.latencyMs, 0.95) / 1000).toFixed(1)} s, after inputs median ${(quantile(run.afterInputsMs, 0.5) / 1000).toFixed(1)} s; ` +
          run.nodes.map((n) => `${n.name} ${n.peakRssMiB.toFixed(0)} MiB ${(n.cpuMs / 1000).toFixed(1)} s CPU ${n.retries} retries attempt<=${n.maxAttempt}`).join(", ") +
          `; chain ${(run.chainCpuMs / 1000).toFixed(1)} s CPU, bench ${(run.benchCpuMs / 1000).toFixed(1)} s CPU; ${run.resubmissions} submissions run again; per submission: to commit median ${(quantile(run.toCommitMs, 0.5) / 1000).toFixed(1)} s, commit to delivered median ${(quantile(run.commitToDeliveredMs, 0.5) / 1000).toFixed(1)} s p95 ${(quantile(run.commitToDeliveredMs, 0.95) / 1000).toFixed(1)} s; delivery retries ${JSON.stringify(run.retryReasons)}`,
      );
    } finally {
      await cluster.stop();
    }
  }
  const med = (xs: readonly number[]) => quantile(xs, 0.5);
  const label = `${tasks} concurrent ${kind} tasks (3 owners)`;
  const figures: LoadFigure[] = [
    { name: `${label}: tasks per minute`, value: med(all.map((r) => r.tasksPerMinute)), unit: "task/min", target: "(report)", runs: all.map((r) => r.tasksPerMinute) },
    { name: `${label}: per-task latency, median`, value: med(all.map((r) => med(r.latencyMs))), unit: "ms", target: "(report)", runs: all.map((r) => med(r.latencyMs)) },
    { name: `${label}: per-task latency, p95`, value: med(all.map((r) => quantile(r.latencyMs, 0.95))), unit: "ms", target: "(report)", runs: all.map((r) => quantile(r.latencyMs, 0.95)) },
    { name: `${label}: all inputs delivered`, value: med(all.map((r) => r.allDeliveredMs)), unit: "ms", target: "(report)", runs: all.map((r) => r.allDeliveredMs) },
  ];
  for (const [i] of all[0]!.nodes.entries()) {
    figures.push({ name: `${label}: party-${i} peak RSS`, value: med(all.map((r) => r.nodes[i]!.peakRssMiB)), unit: "MiB", target: "(report)", runs: all.map((r) => r.nodes[i]!.peakRssMiB) });
  }
  for (const [i] of all[0]!.nodes.entries()) {
    figures.push({ name: `${label}: party-${i} CPU time`, value: med(all.map((r) => r.nodes[i]!.cpuMs)), unit: "ms", target: "(report)", runs: all.map((r) => r.nodes[i]!.cpuMs) });
  }
  figures.push({ name: `${label}: chain CPU time`, value: med(all.map((r) => r.chainCpuMs)), unit: "ms", target: "(report)", runs: all.map((r) => r.chainCpuMs) });
  figures.push({ name: `${label}: bench process (owners, requester) CPU time`, value: med(all.map((r) => r.benchCpuMs)), unit: "ms", target: "(report)", runs: all.map((r) => r.benchCpuMs) });
  return figures;
}
