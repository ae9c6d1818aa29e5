/**
 * LocalNetwork micro-benchmark of the MPC engine: n parties in ONE process
 * (so every figure includes the work of all n parties on one core), real
 * message passing through node/protocol/local-network.ts.
 *
 *   node bench/engine-local.bench.ts [--parties 3] [--mul 100000] [--cmp 10000] [--repeat 3] [--bits xor|square]
 *
 * (--bits forces the random-bit method; the default follows bitMethodFor(n, t).)
 *
 * Prints, for a batch of element-wise multiplications (one mul gate of the
 * given length, summed before opening; and again with every product
 * opened) and a batch of 32-bit comparisons (one lt gate over two int(32)
 * vectors: 33-bit differences, every result opened), the best wall time
 * over --repeat runs, the throughput, and the rounds and bytes (all
 * parties' payloads) per operation. Inputs are shared before the clock
 * starts; the clock covers runProgram at all parties (preprocessing
 * included) up to the opened outputs.
 */
import { randomBytes } from "@noble/hashes/utils.js";
import { decodeSigned } from "../node/math/field.ts";
import { ProgramBuilder } from "../node/program/program-builder.ts";
import { programInputs, type Program } from "../node/program/program.ts";
import { field, int } from "../node/program/secret-types.ts";
import { FR_MODULUS } from "../node/math/field.ts";
import { shareInput } from "../node/protocol/input-sharing.ts";
import { LocalNetwork } from "../node/protocol/local-network.ts";
import type { BitMethod } from "../node/protocol/preprocessing.ts";
import { runProgram, type ProgramRun } from "../node/protocol/program-runner.ts";
import { chunkedRng } from "../node/protocol/round-network.ts";
import { benchArgument } from "./bench-argument.ts";

const parties = benchArgument("parties", 3);
const threshold = Math.floor((parties - 1) / 2);
const mulCount = benchArgument("mul", 100_000);
const cmpCount = benchArgument("cmp", 10_000);
const repeat = benchArgument("repeat", 3);
const bitsIndex = process.argv.indexOf("--bits");
const bitArgument = bitsIndex < 0 ? undefined : process.argv[bitsIndex + 1];
if (bitArgument !== undefined && bitArgument !== "xor" && bitArgument !== "square") throw new Error("--bits takes xor or square");
const bitMethod: BitMethod | undefined = bitArgument;

interface Measured {
  ms: number;
  rounds: number;
  bytes: number;
  runs: ProgramRun[];
}

async function measure(program: Program, values: Record<string, bigint[]>): Promise<Measured> {
  const shares = Array.from({ length: parties }, () => new Map<string, Uint8Array>());
  for (const input of programInputs(program)) {
    shareInput(program, input.name, values[input.name]!, { threshold, parties }, chunkedRng(randomBytes)).forEach((v, j) => shares[j]!.set(input.name, v));
  }
  const network = new LocalNetwork({ parties, timeoutMs: 600_000 });
  const started = performance.now();
  const runs = await Promise.all(
    Array.from({ length: parties }, (_, self) =>
      runProgram(program, { self, parties, threshold, rng: randomBytes, network: network.endpoint(self) }, shares[self]!, bitMethod === undefined ? {} : { bitMethod }),
    ),
  );
  const ms = performance.now() - started;
  network.close();
  return { ms, rounds: runs[0]!.rounds, bytes: network.totalBytes(), runs };
}

function randomInts(count: number, bits: number): bigint[] {
  const bytes = chunkedRng(randomBytes)(count * 8);
  const view = new DataView(bytes.buffer);
  const half = 1n << BigInt(bits - 1);
  return Array.from({ length: count }, (_, i) => (view.getBigUint64(i * 8) % (2n * half)) - half);
}

async function best(name: string, program: Program, values: Record<string, bigint[]>, count: number, check: (run: ProgramRun) => void): Promise<void> {
  let fastest: Measured | undefined;
  for (let r = 0; r < repeat; r++) {
    const m = await measure(program, values);
    check(m.runs[0]!);
    if (fastest === undefined || m.ms < fastest.ms) fastest = m;
  }
  const m = fastest!;
  const perSecond = (count / m.ms) * 1000;
  console.log(
    `${name}: batch ${count}, n = ${parties}, t = ${threshold}: ${m.ms.toFixed(0)} ms (best of ${repeat}), ` +
      `${Math.round(perSecond).toLocaleString("en-US")}/s; ${m.rounds} rounds (incl. preprocessing and the output opening), ` +
      `${(m.bytes / count).toFixed(0)} bytes per operation (all parties' messages), ${(m.ms / m.rounds).toFixed(2)} ms per round`,
  );
}

// Multiplications: one mul gate of mulCount elements, reduced to one sum before the opening, so the
// figure is the multiplication round (and not the opening of every product).
{
  const p = new ProgramBuilder("bench-mul");
  const a = p.input("a", { owner: 0, type: int(64), length: mulCount });
  const b = p.input("b", { owner: 1, type: int(64), length: mulCount });
  p.output("sum-of-products", p.reduceSum(p.mul(a, b)));
  const program = p.build();
  const values = { a: randomInts(mulCount, 64), b: randomInts(mulCount, 64) };
  const expected = values.a.reduce((acc, x, i) => acc + x * values.b[i]!, 0n);
  await best("multiplication", program, values, mulCount, (run) => {
    if (decodeSigned(run.opened.get("sum-of-products")![0]!) !== expected) throw new Error("wrong products");
  });
}

// The same multiplications with every product opened: what a program that reveals all of them costs.
{
  const p = new ProgramBuilder("bench-mul-open");
  const a = p.input("a", { owner: 0, type: int(64), length: mulCount });
  const b = p.input("b", { owner: 1, type: int(64), length: mulCount });
  p.output("product", p.mul(a, b));
  const program = p.build();
  const values = { a: randomInts(mulCount, 64), b: randomInts(mulCount, 64) };
  await best("multiplication + opening every product", program, values, mulCount, (run) => {
    const got = run.opened.get("product")!;
    for (const i of [0, mulCount - 1]) if (decodeSigned(got[i]!) !== values.a[i]! * values.b[i]!) throw new Error("wrong product");
  });
}

// 32-bit comparisons: a < b over int(32) vectors.
{
  const p = new ProgramBuilder("bench-cmp");
  const a = p.input("a", { owner: 0, type: int(32), length: cmpCount });
  const b = p.input("b", { owner: 1, type: int(32), length: cmpCount });
  p.output("less", p.lt(a, b));
  const program = p.build();
  const values = { a: randomInts(cmpCount, 32), b: randomInts(cmpCount, 32) };
  await best("comparison (32-bit)", program, values, cmpCount, (run) => {
    const got = run.opened.get("less")!;
    for (let i = 0; i < cmpCount; i++) if (got[i] !== (values.a[i]! < values.b[i]! ? 1n : 0n)) throw new Error(`wrong comparison at ${i}`);
  });
}



// Round latency of the engine alone: --depth dependent multiplications x <- x * y (one round each).
{
  const depth = benchArgument("depth", 1_000);
  const p = new ProgramBuilder("bench-depth");
  let x = p.input("x", { owner: 0, type: field() });
  const y = p.input("y", { owner: 1, type: field() });
  for (let i = 0; i < depth; i++) x = p.mul(x, y);
  p.output("x", x);
  const program = p.build();
  const values = { x: [3n], y: [5n] };
  let expected = 3n;
  for (let i = 0; i < depth; i++) expected = (expected * 5n) % FR_MODULUS;
  await best("dependent multiplications", program, values, depth, (run) => {
    if (run.opened.get("x")![0] !== expected) throw new Error("wrong chain product");
  });
}
