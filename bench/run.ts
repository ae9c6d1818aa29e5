/**
 * npm run bench: Consort's figures over real HTTP on loopback, three node
 * processes (t = 1) and an embedded chain, all on this machine. Prints a
 * table and writes bench/results.json. These are measurements, not tests:
 * nothing here fails on a slow figure.
 */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { getJson } from "../node/transport/http-client.ts";
import { ProgramBuilder } from "../node/program/program-builder.ts";
import { field, int } from "../node/program/secret-types.ts";
import { totalAndMean } from "../node/program/standard-programs.ts";
import { startBenchCluster, runTask, type BenchCluster } from "./cluster-bench.ts";
import { loadScenario } from "./load-bench.ts";

interface Figure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly target: string;
  readonly runs: readonly number[];
}

/**
 * How often the figures timed inside the nodes (multiplications, comparisons,
 * rounds) ask the chain whether their task is finalized. Each ask costs the
 * embedded chain a JSON-RPC request, on the same two cores as the three
 * nodes, during the computation being timed; it has no bearing on the
 * figure itself, so it is asked rarely.
 */
const QUIET_POLL_MS = 500;

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** End to end: the mean of 1,000 values from each of three data owners, task creation to on-chain finalization. */
async function meanOf3x1000(cluster: BenchCluster, runs: number): Promise<Figure> {
  const program = totalAndMean({ owners: 3, valuesPerOwner: 1_000, bits: 32 });
  const inputs = [0, 1, 2].map((o) => Array.from({ length: 1_000 }, (_, i) => BigInt(((o + 1) * 7_919 * (i + 1)) % 1_000_003)));
  const times: number[] = [];
  // One warm-up task (JIT, connection set-up), then the counted runs.
  await runTask(cluster, program, inputs, 1, 10);
  for (let r = 0; r < runs; r++) times.push((await runTask(cluster, program, inputs, 1, 10)).totalMs);
  return { name: "mean of 3 x 1,000 values, task creation to on-chain finalization", value: median(times), unit: "ms", target: "< 2,000 ms", runs: times };
}

interface ComputeStats {
  ms: number;
  rounds: number;
  payloadBytesSent: number;
  cpuMs: number;
}

/**
 * What each node reports about its computation of `taskId`. Parties start when
 * their own input shares are verified, so the first to start also waits for
 * the others' input checks: `ms` is the time of the LAST party to start (the
 * protocol's own duration, waiting for no one's inputs), `slowestMs` the
 * longest any party spent, and `bytes` everyone's payload bytes.
 */
async function computeStats(cluster: BenchCluster, taskId: bigint): Promise<{ ms: number; slowestMs: number; rounds: number; bytes: number; cpuMs: number }> {
  const stats = await Promise.all(
    cluster.nodes.map(async (n) => ((await getJson(n.url, `/v1/tasks/${taskId}`, { timeoutMs: 10_000 })) as { compute: ComputeStats | null }).compute),
  );
  if (stats.some((x) => x === null)) throw new Error(`a node has no compute stats for task ${taskId}`);
  const all = stats as ComputeStats[];
  return {
    ms: Math.min(...all.map((x) => x.ms)),
    slowestMs: Math.max(...all.map((x) => x.ms)),
    rounds: all[0]!.rounds,
    bytes: all.reduce((a, x) => a + x.payloadBytesSent, 0),
    cpuMs: all.reduce((a, x) => a + x.cpuMs, 0),
  };
}

const randomField = (count: number, seed: number) => Array.from({ length: count }, (_, i) => BigInt((seed * 1_000_003 + i * 7_919) % 2_147_483_647));

/** 100,000 element-wise products of two owners' private vectors, summed before opening (so opening costs one element). */
async function multiplications(cluster: BenchCluster, runs: number): Promise<Figure[]> {
  const size = 100_000;
  const p = new ProgramBuilder("bench-multiplications");
  const a = p.input("values-0", { owner: 0, type: field(), length: size });
  const b = p.input("values-1", { owner: 1, type: field(), length: size });
  p.output("sum", p.reduceSum(p.mul(a, b)));
  const program = p.build();
  const inputs = [randomField(size, 1), randomField(size, 2)];
  const rates: number[] = [];
  const bytes: number[] = [];
  // Two warm-up tasks, as for the round figure: after one, the next task still ran at about half
  // the speed of the later ones in most invocations (260k against 490k-990k multiplications/s).
  const warmups = 2;
  for (let r = 0; r < runs + warmups; r++) {
    const t = await runTask(cluster, program, inputs, 1, QUIET_POLL_MS);
    const s = await computeStats(cluster, t.taskId);
    if (r < warmups) continue;
    rates.push(size / (s.ms / 1000));
    bytes.push(s.bytes / size);
  }
  return [
    { name: "multiplications per second (batch of 100,000)", value: median(rates), unit: "mul/s", target: ">= 300,000", runs: rates },
    { name: "payload bytes sent per multiplication (all parties)", value: median(bytes), unit: "B", target: "(report)", runs: bytes },
  ];
}

/** 10,000 comparisons a < b of two owners' private 32-bit integers; only the count is opened. */
async function comparisons(cluster: BenchCluster, runs: number): Promise<Figure> {
  const size = 10_000;
  const p = new ProgramBuilder("bench-comparisons");
  const a = p.input("values-0", { owner: 0, type: int(32), length: size });
  const b = p.input("values-1", { owner: 1, type: int(32), length: size });
  p.output("count", p.reduceSum(p.lt(a, b)));
  const program = p.build();
  const signed = (seed: number) => randomField(size, seed).map((x) => (x % 4_294_967_296n) - 2_147_483_648n);
  const inputs = [signed(3), signed(4)];
  const rates: number[] = [];
  const warmups = 2;
  for (let r = 0; r < runs + warmups; r++) {
    const t = await runTask(cluster, program, inputs, 1, QUIET_POLL_MS);
    const s = await computeStats(cluster, t.taskId);
    if (r >= warmups) rates.push(size / (s.ms / 1000));
  }
  return { name: "32-bit comparisons per second (batch of 10,000)", value: median(rates), unit: "cmp/s", target: ">= 3,000", runs: rates };
}

/**
 * The machine's floor under a round, measured in the same minute as the
 * round figure: three processes pass 40-byte messages around a ring over
 * upgraded HTTP/1.1 connections on loopback, with no crypto and no engine
 * (bench/socket-floor.bench.mjs, MODE=upgrade RING=1 WORK_US=0), wall time
 * per round. On these VMs it moves by a factor of several within hours
 * (docs/benchmark-history.md), and the round figure moves with it; printed next to
 * the round figure so a reader can tell a slow machine from a slow engine.
 */
function ringFloorMs(): Promise<number> {
  const script = fileURLToPath(new URL("./socket-floor.bench.mjs", import.meta.url));
  // A floor that cannot be measured loses the floor (NaN, the reason on stderr), not the round figure.
  const missing = (reason: string) => {
    console.error(`bench: machine floor not measured: ${reason}`);
    return NaN;
  };
  return new Promise((resolve) => {
    execFile(process.execPath, [script], { env: { ...process.env, NODE_OPTIONS: "", MODE: "upgrade", RING: "1", WORK_US: "0", JSON: "1" }, timeout: 60_000 }, (error, stdout) => {
      if (error) return resolve(missing(`socket-floor failed: ${error.message}`));
      try {
        const { ms } = JSON.parse(stdout.trim().split("\n").at(-1)!) as { ms: number[] };
        resolve(Math.max(...ms));
      } catch {
        resolve(missing(`socket-floor printed no result: ${JSON.stringify(stdout.slice(0, 200))}`));
      }
    });
  });
}

/** 1,000 dependent multiplications x <- x * y: one round each. */
async function roundLatency(cluster: BenchCluster, runs: number): Promise<Figure[]> {
  const depth = 1_000;
  const p = new ProgramBuilder("bench-round-latency");
  let x = p.input("values-0", { owner: 0, type: field() });
  const y = p.input("values-1", { owner: 1, type: field() });
  for (let i = 0; i < depth; i++) x = p.mul(x, y);
  p.output("x", x);
  const program = p.build();
  const perRound: number[] = [];
  const cpuPerRound: number[] = [];
  const floors: number[] = [];
  let coldPerRound = NaN;
  // Five warm-up runs: the figure is the warmed node's. V8 compiles a function called once per
  // round with Maglev after a few hundred rounds and with TurboFan after a few thousand
  // (--trace-opt: the round path's functions reach TurboFan between rounds ~3,000 and ~6,500),
  // and the per-run figures of fresh clusters fall over the first five runs and are flat from
  // there (docs/benchmark-history.md, "Warm-up"). The first run is reported on its own line.
  const warmups = 5;
  for (let r = 0; r < runs + warmups; r++) {
    // The floor right before each counted run (the cluster idle in between), for the same minute's machine.
    if (r >= warmups) floors.push(await ringFloorMs());
    const t = await runTask(cluster, program, [[3n], [5n]], 1, QUIET_POLL_MS);
    const s = await computeStats(cluster, t.taskId);
    if (r === 0) coldPerRound = s.ms / s.rounds;
    if (r < warmups) continue;
    perRound.push(s.ms / s.rounds);
    cpuPerRound.push(s.cpuMs / s.rounds);
  }
  const measuredFloors = floors.filter(Number.isFinite);
  return [
    { name: "round latency (1,000 dependent multiplications)", value: median(perRound), unit: "ms", target: "<= 0.5 ms", runs: perRound },
    { name: "CPU per round, three nodes together (same runs)", value: median(cpuPerRound), unit: "ms", target: "(report)", runs: cpuPerRound },
    { name: "round latency, first warm-up run (JIT still cold)", value: coldPerRound, unit: "ms", target: "(report)", runs: [coldPerRound] },
    { name: "machine floor: zero-work 3-process ring, before each run", value: measuredFloors.length > 0 ? median(measuredFloors) : NaN, unit: "ms", target: "(report)", runs: floors },
  ];
}

async function main(): Promise<void> {
  const figures: Figure[] = [];
  // The shared cluster starts with the first scenario that needs it (not at all for `load` alone, which starts its own).
  let shared: BenchCluster | undefined;
  const cluster = async () => (shared ??= await startBenchCluster(3, 3));
  // The load scenarios start fresh clusters of their own, with nothing else running beside them.
  const alone = async () => {
    await shared?.stop();
    shared = undefined;
  };
  try {
    const only = process.env.CONSORT_BENCH_ONLY?.split(",");
    const scenarios: [string, () => Promise<Figure | Figure[]>][] = [
      ["mean", async () => meanOf3x1000(await cluster(), 5)],
      ["round", async () => roundLatency(await cluster(), 5)],
      ["mul", async () => multiplications(await cluster(), 5)],
      ["cmp", async () => comparisons(await cluster(), 5)],
      // Last, on fresh clusters: each node's peak RSS is then the load's alone.
      ["load", async () => (await alone(), loadScenario(3, "total-and-mean"))],
      ["load-cmp", async () => (await alone(), loadScenario(3, "max-and-argmax"))],
    ];
    for (const [key, scenario] of scenarios) {
      if (only !== undefined && !only.includes(key)) continue;
      const started = performance.now();
      const got = await scenario();
      for (const f of [got].flat()) {
        figures.push(f);
        console.error(`bench: ${f.name}: ${f.value.toFixed(f.value < 10 ? 3 : 0)} ${f.unit} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
      }
    }
  } finally {
    await shared?.stop();
  }
  const width = Math.max(...figures.map((f) => f.name.length));
  console.log(`\nConsort benchmarks: 3 node processes, t = 1, ${cpus().length} cores, Node ${process.versions.node}`);
  for (const f of figures) {
    const digits = f.value < 10 ? 3 : 0;
    console.log(`  ${f.name.padEnd(width)}  ${f.value.toFixed(digits).padStart(10)} ${f.unit.padEnd(6)} target ${f.target}  (runs: ${f.runs.map((x) => x.toFixed(digits)).join(", ")})`);
  }
  const out = fileURLToPath(new URL("./results.json", import.meta.url));
  writeFileSync(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), node: process.versions.node, cores: cpus().length, parties: 3, threshold: 1, figures }, null, 2)}\n`,
  );
  console.log(`\nwrote ${out}`);
}

await main();
process.exit(0);
