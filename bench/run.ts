/**
 * npm run bench: Consort's figures over real HTTP on loopback, three node
 * processes (t = 1) and an embedded chain, all on this machine. Prints a
 * table and writes bench/results.json. These are measurements, not tests:
 * nothing here fails on a slow figure.
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { totalAndMean } from "../node/program/standard-programs.ts";
import { startBenchCluster, runTask, type BenchCluster } from "./cluster-bench.ts";

interface Figure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly target: string;
  readonly runs: readonly number[];
}

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
  await runTask(cluster, program, inputs, 1);
  for (let r = 0; r < runs; r++) times.push((await runTask(cluster, program, inputs, 1)).totalMs);
  return { name: "mean of 3 x 1,000 values, task creation to on-chain finalization", value: median(times), unit: "ms", target: "< 2,000 ms", runs: times };
}

async function main(): Promise<void> {
  const cluster = await startBenchCluster(3, 3);
  const figures: Figure[] = [];
  try {
    figures.push(await meanOf3x1000(cluster, 5));
  } finally {
    await cluster.stop();
  }
  const width = Math.max(...figures.map((f) => f.name.length));
  console.log(`\nConsort benchmarks: 3 node processes, t = 1, ${cpus().length} cores, Node ${process.versions.node}`);
  for (const f of figures) {
    console.log(`  ${f.name.padEnd(width)}  ${f.value.toFixed(1).padStart(10)} ${f.unit.padEnd(6)} target ${f.target}  (runs: ${f.runs.map((x) => x.toFixed(0)).join(", ")})`);
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
