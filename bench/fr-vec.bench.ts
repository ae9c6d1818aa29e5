/**
 * Packed field-vector throughput: the WebAssembly backend (node/math/fr-vec.ts)
 * against the bigint reference (node/math/fr-vec-reference.ts), on vectors of
 * 100,000 elements, single thread.
 *
 *   node bench/fr-vec.bench.ts
 *
 * Prints ns per element (per secret for share) and writes nothing else.
 * Each WebAssembly figure is the median (and the best) of 9 timed runs after
 * 3 warm-up runs (V8 compiles the module with its baseline compiler first and
 * tiers up to the optimizing one while it runs); the reference takes the
 * median of 3 runs. On a shared machine the best run is the better estimate
 * of the code's own speed, the median of what a busy host delivers. Randomness
 * comes from noble's randomBytes (crypto.getRandomValues), as in production.
 * Targets (issue 3): mul <= 80, share(t=1, n=3) <= 200, reconstruct(3 shares)
 * <= 150, random <= 80 ns/element.
 *
 * A second table gives µs per CALL on 1- and 8-element vectors, the sizes of
 * the MPC engine's latency path (one multiplication per round, ~8 fr-vec
 * calls per round per party), where per-call overhead rather than
 * per-element work decides: median (and best) of 9 runs of 20,000 calls
 * after 20,000 warm-up calls. Which of these take fr-vec.ts's JS small-vector
 * paths and which the module depends on FR_VEC_SMALL_LIMITS (printed with
 * the table). `random` includes the rng itself, so the table also times
 * randomBytes(32) and randomBytes(256) alone, and random with
 * deterministicRng (buffered ChaCha20, far cheaper per call).
 *
 *   node bench/fr-vec.bench.ts small    (only the small-vector table)
 *   node bench/fr-vec.bench.ts large    (only the 100,000-element table)
 */
import { randomBytes } from "@noble/hashes/utils.js";
import * as wasm from "../node/math/fr-vec.ts";
import * as reference from "../node/math/fr-vec-reference.ts";
import { deterministicRng } from "../node/math/rng.ts";

const N = 100_000;
const WASM_WARMUP = 3;
const WASM_RUNS = 9;
const REFERENCE_RUNS = 3;

/** The functions both implementations export (fr-vec.ts also exports FR_VEC_SMALL_LIMITS). */
type Api = Omit<typeof wasm, "FR_VEC_SMALL_LIMITS">;

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function nsPerElement(run: () => unknown, warmup: number, runs: number): { median: number; best: number } {
  for (let i = 0; i < warmup; i++) run();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    run();
    times.push(Number(process.hrtime.bigint() - t0) / N);
  }
  return { median: median(times), best: Math.min(...times) };
}

const setupRng = deterministicRng("consort/bench/fr-vec");
const a = reference.frVecRandom(N, setupRng);
const b = reference.frVecRandom(N, setupRng);
const c = reference.frVecRandom(N, setupRng);
const coefficients = [reference.frVecToBigints(reference.frVecRandom(3, setupRng))].flat();
const shares = reference.frVecShare(a, { threshold: 1, parties: 3 }, setupRng);
const products = reference.frVecShare(a, { threshold: 2, parties: 3 }, setupRng);

const cases: [string, (api: Api) => unknown][] = [
  ["mul", (api) => api.frVecMul(a, b)],
  ["add", (api) => api.frVecAdd(a, b)],
  ["linearCombination(3, random coefficients)", (api) => api.frVecLinearCombination([a, b, c], coefficients)],
  ["linearCombination(3, Lagrange 3, -3, 1)", (api) => api.frVecLinearCombination([a, b, c], [3n, -3n, 1n])],
  ["share(t=1, n=3) per secret", (api) => api.frVecShare(a, { threshold: 1, parties: 3 }, randomBytes)],
  ["reconstruct(3 shares, degree 1, checked)", (api) => api.frVecReconstruct(shares, 1)],
  ["reconstruct(3 shares, degree 2)", (api) => api.frVecReconstruct(products, 2)],
  ["random", (api) => api.frVecRandom(N, randomBytes)],
];

const only = process.argv[2];

if (only !== "small") {
  console.log(`fr-vec, ${N.toLocaleString("en-US")} elements, ns/element, node ${process.version}`);
  console.log(`${"operation".padEnd(44)}${"wasm".padStart(10)}${"(best)".padStart(9)}${"reference".padStart(12)}${"speed-up".padStart(10)}`);
  for (const [name, run] of cases) {
    const fast = nsPerElement(() => run(wasm), WASM_WARMUP, WASM_RUNS);
    const slow = nsPerElement(() => run(reference), 0, REFERENCE_RUNS);
    console.log(
      `${name.padEnd(44)}${fast.median.toFixed(1).padStart(10)}${`(${fast.best.toFixed(1)})`.padStart(9)}${slow.median.toFixed(0).padStart(12)}${`${(slow.median / fast.median).toFixed(0)}x`.padStart(10)}`,
    );
  }
}

// ---------------------------------------------------------------------------
// Small vectors: µs per call

const SMALL_CALLS = 20_000;
const SMALL_RUNS = 9;

/** Median and best µs per call of `run` over SMALL_RUNS runs of SMALL_CALLS calls, after one warm-up run. */
function usPerCall(run: () => unknown): { median: number; best: number } {
  for (let i = 0; i < SMALL_CALLS; i++) run();
  const times: number[] = [];
  for (let r = 0; r < SMALL_RUNS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < SMALL_CALLS; i++) run();
    times.push(Number(process.hrtime.bigint() - t0) / 1000 / SMALL_CALLS);
  }
  return { median: median(times), best: Math.min(...times) };
}

if (only !== "large") {
  const smallRng = deterministicRng("consort/bench/fr-vec/small");
  const smallCases: [string, () => unknown][] = [
    ["randomBytes(32), the rng alone", () => randomBytes(32)],
    ["randomBytes(256), the rng alone", () => randomBytes(256)],
  ];
  for (const k of [1, 8]) {
    const x = reference.frVecRandom(k, smallRng);
    const y = reference.frVecRandom(k, smallRng);
    smallCases.push(
      [`add, ${k} element${k > 1 ? "s" : ""}`, () => wasm.frVecAdd(x, y)],
      [`mul, ${k} element${k > 1 ? "s" : ""}`, () => wasm.frVecMul(x, y)],
      [`scale, ${k} element${k > 1 ? "s" : ""}`, () => wasm.frVecScale(x, coefficients[0]!)],
      [`linearCombination(2, Lagrange 2, -1), ${k}`, () => wasm.frVecLinearCombination([x, y], [2n, -1n])],
      [`linearCombination(2, random), ${k}`, () => wasm.frVecLinearCombination([x, y], [coefficients[0]!, coefficients[1]!])],
      [`random (randomBytes), ${k}`, () => wasm.frVecRandom(k, randomBytes)],
      [`random (deterministicRng), ${k}`, () => wasm.frVecRandom(k, smallRng)],
    );
  }
  console.log(`\nfr-vec, small vectors, µs/call, node ${process.version}; small-path limits ${JSON.stringify(wasm.FR_VEC_SMALL_LIMITS)}`);
  console.log(`${"operation".padEnd(44)}${"µs/call".padStart(10)}${"(best)".padStart(9)}`);
  for (const [name, run] of smallCases) {
    const t = usPerCall(run);
    console.log(`${name.padEnd(44)}${t.median.toFixed(2).padStart(10)}${`(${t.best.toFixed(2)})`.padStart(9)}`);
  }
}
