/**
 * Packed BN254 scalar-field vectors, the hot-path representation of shares.
 * A field vector is a Uint8Array of 32·k bytes;
 * element i is bytes [32i, 32i + 32), the canonical value in [0, r) as
 * little-endian 256-bit. The same bytes are the wire format, so every
 * function validates its vector arguments (MATH_INVALID_ARGUMENT naming the
 * argument and the first bad element) and returns fresh arrays.
 *
 * The arithmetic runs in WebAssembly (fr-wasm.wat, assembled into
 * fr-wasm-binary.ts and instantiated synchronously at import): 29-bit limbs
 * in i64, Barrett reduction for element-wise products, Montgomery form for
 * chains of products. JS copies inputs into the module's memory in chunks of
 * CHUNK elements (so the working set stays in cache and memory stays small),
 * runs one kernel per chunk, and copies the results out.
 *
 * fr-vec-reference.ts implements the same API over bigints and is the test
 * oracle; this module agrees with it bit for bit, including every error code,
 * the element index an error names, and the rng bytes consumed. Argument
 * validation and error construction are shared with it.
 *
 * What stays in JS, and why: conversion to and from bigints (the bigints
 * dominate), concatenation and slicing (copies), validation (a 4-byte compare
 * per element in JS is cheaper than copying the data into the module just to
 * look at it), the per-party-set Lagrange plans (computed once and cached),
 * and exponent preparation. Everything per element runs in WebAssembly,
 * except on vectors of a few elements, where calling the module costs more
 * than the arithmetic: those are computed in JS (see "Small vectors").
 */
import { FR_MODULUS } from "./field.ts";
import { FR_WASM_BASE64 } from "./fr-wasm-binary.ts";
import {
  FR_VEC_ELEMENT_BYTES,
  FR_VEC_HALF_MODULUS,
  FR_VEC_RANDOM_DRAW_BYTES,
  FR_VEC_RNG_MAX_BLOCKS,
  assertCount,
  assertExponent,
  assertVectorList,
  checkLinearCombinationShape,
  checkReconstructShape,
  checkRngOutput,
  checkSliceBounds,
  constantOf,
  describeType,
  elementCount,
  inconsistentShares,
  invalid,
  lengthMismatch,
  nonCanonical,
  nonCanonicalShare,
  nonResidue,
  reconstructionPlanFor,
  zeroInverse,
} from "./fr-vec-reference.ts";
import type { FrVecReconstructionPlan } from "./fr-vec-reference.ts";
import type { Rng } from "./rng.ts";
import { validateSharingParams } from "./shamir.ts";
import type { SharingParams } from "./shamir.ts";

export { FR_VEC_ELEMENT_BYTES, FR_VEC_RANDOM_DRAW_BYTES, FR_VEC_RNG_MAX_BLOCKS } from "./fr-vec-reference.ts";

const E = FR_VEC_ELEMENT_BYTES;
/** Elements per kernel call: 128 KiB per vector, so a call's inputs and output stay in L2. */
const CHUNK = 4096;

// ---------------------------------------------------------------------------
// The WebAssembly module

/**
 * The slice of the WebAssembly JS API used here, typed locally: the
 * project's TypeScript libs (ES2023 + @types/node) do not declare the
 * WebAssembly namespace.
 */
interface WasmRuntime {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

interface FrKernels {
  memory: WasmMemory;
  heap_base: { value: unknown };
  find_zero(p: number, n: number): number;
  add(o: number, a: number, b: number, n: number): void;
  sub(o: number, a: number, b: number, n: number): void;
  neg(o: number, a: number, n: number): void;
  add_const(o: number, a: number, c: number, n: number): void;
  mul(o: number, a: number, b: number, n: number): void;
  sqr(o: number, a: number, n: number): void;
  scale(o: number, a: number, cm: number, n: number): void;
  lincomb_small(o: number, table: number, terms: number, n: number, offset: number, mode: number): number;
  lincomb(o: number, table: number, terms: number, n: number, mode: number): number;
  sum(o: number, a: number, n: number): void;
  dot(o: number, a: number, b: number, n: number): void;
  random(o: number, input: number, blocks: number): number;
  share(o: number, stride: number, s: number, coeffs: number, m: number, t: number, parties: number): void;
  pow(o: number, a: number, n: number, e: number, nibbles: number): void;
  inv(o: number, a: number, n: number, scratch: number): void;
  sqrt(o: number, a: number, n: number): number;
}

const runtime = (globalThis as unknown as { WebAssembly: WasmRuntime }).WebAssembly;
const wasm = new runtime.Instance(new runtime.Module(Buffer.from(FR_WASM_BASE64, "base64")), {}).exports as FrKernels;
const memory = wasm.memory;
const HEAP_BASE = wasm.heap_base.value as number;

// Constant area of fr-wasm.wat (see its memory map).
const C_R2 = 0;
const C_ONE = 72;
const C_RM = 144;
const C_EXP_INV = 256;
const C_EXP_SQRT = 288;
const C_HALF = 320;
const C_TS = 352;
/** Bytes of a limb slot: 9 limbs of 29 bits, one i64 each. */
const SLOT = 72;
const LIMB_BITS = 29n;
const LIMB_MASK = (1n << LIMB_BITS) - 1n;
/** Montgomery radix R = 2^261 (9 limbs of 29 bits). */
const MONT_R = 1n << 261n;
/** lincomb_small needs Σ|c_j| <= 2^29 (its 32-bit-word column sums stay within ±2^61, values below 2^283). */
const SMALL_COEFFICIENT_BUDGET = 1n << 29n;
/** lincomb keeps T < 128 r^2 < R r so that one Montgomery reduction suffices. */
const LINCOMB_MAX_TERMS = 128;
/** r - 1 = 2^28 · Q with Q odd (Tonelli–Shanks). */
const TWO_ADICITY = 28;
const Q_ODD = (FR_MODULUS - 1n) >> BigInt(TWO_ADICITY);
/** 5 is the least quadratic non-residue mod r; c = 5^Q generates the 2^28-torsion. */
const NON_RESIDUE = 5n;

let top = HEAP_BASE;
let heapView = new Uint8Array(memory.buffer);
let dataView = new DataView(memory.buffer);

/** Views of the module's memory; growing it (here or in a nested call from an rng) replaces the buffer. */
function heap(): Uint8Array {
  if (heapView.buffer !== memory.buffer) heapView = new Uint8Array(memory.buffer);
  return heapView;
}
function view(): DataView {
  if (dataView.buffer !== memory.buffer) dataView = new DataView(memory.buffer);
  return dataView;
}

/**
 * Bump allocation in the module's memory, released by `withHeap` (stack
 * discipline: an rng callback that itself uses this module allocates above
 * and releases before control returns).
 */
function alloc(bytes: number): number {
  const p = (top + 15) & ~15;
  const end = p + bytes;
  if (end > memory.buffer.byteLength) memory.grow(Math.ceil((end - memory.buffer.byteLength) / 65536));
  top = end;
  return p;
}

function withHeap<T>(body: () => T): T {
  const mark = top;
  try {
    return body();
  } finally {
    top = mark;
  }
}

function modPow(base: bigint, e: bigint): bigint {
  let result = 1n;
  let b = base % FR_MODULUS;
  for (let x = e; x > 0n; x >>= 1n) {
    if (x & 1n) result = (result * b) % FR_MODULUS;
    b = (b * b) % FR_MODULUS;
  }
  return result;
}

function writeSlot(offset: number, x: bigint): void {
  const dv = view();
  for (let i = 0; i < 9; i++) dv.setBigUint64(offset + 8 * i, (x >> (LIMB_BITS * BigInt(i))) & LIMB_MASK, true);
}

/** x < 2^288 as 9 words of 32 bits, one per i64 (the column-sum layout of lincomb_small). */
function writeWords32(offset: number, x: bigint): void {
  const dv = view();
  for (let i = 0; i < 9; i++) dv.setBigUint64(offset + 8 * i, (x >> BigInt(32 * i)) & (i < 8 ? 0xffffffffn : (1n << 64n) - 1n), true);
}

function writeElement(offset: number, x: bigint): void {
  const dv = view();
  dv.setBigUint64(offset, BigInt.asUintN(64, x), true);
  dv.setBigUint64(offset + 8, BigInt.asUintN(64, x >> 64n), true);
  dv.setBigUint64(offset + 16, BigInt.asUintN(64, x >> 128n), true);
  dv.setBigUint64(offset + 24, x >> 192n, true);
}

function readElement(offset: number): bigint {
  const dv = view();
  return dv.getBigUint64(offset, true) | (dv.getBigUint64(offset + 8, true) << 64n) | (dv.getBigUint64(offset + 16, true) << 128n) | (dv.getBigUint64(offset + 24, true) << 192n);
}

/** c in Montgomery form, c · 2^261 mod r. */
function montgomery(c: bigint): bigint {
  return (c * MONT_R) % FR_MODULUS;
}

function writeConstants(): void {
  writeSlot(C_R2, (MONT_R * MONT_R) % FR_MODULUS);
  writeSlot(C_ONE, 1n);
  writeSlot(C_RM, MONT_R % FR_MODULUS);
  writeElement(C_EXP_INV, FR_MODULUS - 2n);
  writeElement(C_EXP_SQRT, (Q_ODD - 1n) / 2n);
  writeElement(C_HALF, FR_VEC_HALF_MODULUS);
  let c = modPow(NON_RESIDUE, Q_ODD);
  for (let i = 0; i < TWO_ADICITY; i++) {
    writeSlot(C_TS + SLOT * i, montgomery(c));
    c = (c * c) % FR_MODULUS;
  }
}
writeConstants();

// ---------------------------------------------------------------------------
// Validation without copying: a canonical element is < r; its top 32-bit
// word decides unless it equals r's.

const R_WORDS: readonly number[] = Array.from({ length: 8 }, (_, i) => Number((FR_MODULUS >> BigInt(32 * i)) & 0xffffffffn));
const R_TOP = R_WORDS[7]!;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Index of the first element >= r, or -1 (length already checked). */
function firstNonCanonical(v: Uint8Array): number {
  const k = v.length / E;
  if (LITTLE_ENDIAN && v.byteOffset % 4 === 0) {
    // Fast path: one aligned 32-bit read per element decides unless it equals r's top word.
    const words = new Uint32Array(v.buffer, v.byteOffset, k * 8);
    for (let i = 0; i < k; i++) {
      if (words[8 * i + 7]! >= R_TOP && !belowModulus(v, i)) return i;
    }
    return -1;
  }
  for (let i = 0; i < k; i++) if (!belowModulus(v, i)) return i;
  return -1;
}

function belowModulus(v: Uint8Array, i: number): boolean {
  const dv = new DataView(v.buffer, v.byteOffset + i * E, E);
  for (let w = 7; w >= 0; w--) {
    const word = dv.getUint32(4 * w, true);
    if (word !== R_WORDS[w]!) return word < R_WORDS[w]!;
  }
  return false;
}

/** Validates length and canonicity; returns the element count. */
function checked(v: unknown, what: string): number {
  const k = elementCount(v, what);
  const bad = firstNonCanonical(v as Uint8Array);
  if (bad >= 0) throw nonCanonical(what, bad);
  return k;
}

function checkedPair(a: unknown, b: unknown): number {
  const k = checked(a, "a");
  const kb = checked(b, "b");
  if (kb !== k) throw lengthMismatch("b", kb, k, "a");
  return k;
}

// ---------------------------------------------------------------------------
// Chunked drivers

/** Copies elements [start, start + n) of v into the module at p. */
function load(v: Uint8Array, start: number, n: number, p: number): void {
  heap().set(v.subarray(start * E, (start + n) * E), p);
}

/**
 * Up to 64 bytes (two elements) V8 keeps a typed array's bytes on its own
 * heap: `new Uint8Array(32)` measured 0.08-0.14 µs where allocUnsafeSlow(32),
 * a native allocation, took 0.8 µs. From 96 bytes to 4 KiB both allocate
 * outside the heap and measured the same (0.7-3.5 µs, development VM), and
 * from 8 KiB on zeroing shows, so the plain array is used only where it wins.
 */
const ON_HEAP_MAX_BYTES = 64;

/**
 * A fresh vector of `count` elements that the caller overwrites completely
 * before returning it. Uninitialized (malloc) memory: a zeroed allocation of
 * a few MB costs a page fault per 4 KiB on every call, which measured as much
 * as the arithmetic of an addition. Tiny vectors are the exception (see
 * ON_HEAP_MAX_BYTES).
 */
function uninitialized(count: number): Uint8Array {
  if (count * E <= ON_HEAP_MAX_BYTES) return new Uint8Array(count * E);
  const b = Buffer.allocUnsafeSlow(count * E);
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

function store(out: Uint8Array, start: number, n: number, p: number): void {
  out.set(heap().subarray(p, p + n * E), start * E);
}

/** Runs `kernel(outPtr, inPtrs, n, start)` over all chunks of the (validated) inputs. */
function elementwise(
  inputs: readonly Uint8Array[],
  count: number,
  kernel: (o: number, ps: readonly number[], n: number, start: number) => void,
): Uint8Array {
  const out = uninitialized(count);
  if (count === 0) return out;
  return withHeap(() => {
    const size = Math.min(count, CHUNK);
    const ps = inputs.map(() => alloc(size * E));
    const o = alloc(size * E);
    for (let start = 0; start < count; start += CHUNK) {
      const n = Math.min(CHUNK, count - start);
      inputs.forEach((v, j) => load(v, start, n, ps[j]!));
      kernel(o, ps, n, start);
      store(out, start, n, o);
    }
    return out;
  });
}

// ---------------------------------------------------------------------------
// Small vectors: JS arithmetic on the bytes, no module
//
// On a vector of a few elements the chunked drivers cost more than the
// arithmetic: heap bookkeeping, copies into and out of the module, constants
// converted to Montgomery form, closures and a native allocation came to
// 1.6-3 µs for add or mul of one element and 4-8 µs for scale and
// linearCombination (bench/fr-vec.bench.ts, small-vector table), and the
// engine's latency path makes ~8 such calls per round on ONE element. Small
// vectors are therefore computed here, without touching the module's heap:
// inputs are copied (one memcpy each) into module-level scratch words, the
// result is written to scratch and sliced out as a fresh array.
//
// - Sums and differences (add, sub, neg, addConst, sum) run on eight 32-bit
//   words per element as plain numbers with explicit carries (~20 ns per
//   element; the same through bigints took ~0.6 µs: reading an element is 10
//   bigint operations, each 50-100 ns on the development VM).
// - Products (mul, square, scale, dot, linearCombination) use bigints: an
//   element read as 4 little-endian 64-bit words, multiplied, reduced and
//   written back as 4 words. `%` of a 508-bit product by r took 0.9 µs there,
//   Barrett reduction (below) 0.55 µs. At ~1 µs per product these beat the
//   module only on one or two elements.
// - frVecRandom compares the drawn bytes with r's bytes and copies accepted
//   blocks: no arithmetic at all.
//
// Validation stays exact by construction: a small path runs only when every
// argument already has the right type and length, checks canonicity as it
// reads, and on anything unexpected returns undefined, after which the
// caller runs its general path from the start; that path validates in the
// documented order and throws the error it always threw. frVecRandom has
// nothing to defer (its checks are assertCount and checkRngOutput, both run).
//
// The scratch words are shared, which is safe because no small path calls
// out; frVecRandom's rng may re-enter this module, so the random path writes
// straight into its fresh result instead.

// The limits below are where the small path stopped beating the module in
// µs per call (development VM, 2 vCPUs, Node 24; the module's figure first):
// add 3.7 vs 2.2 at 16 elements, 4.7 vs 2.3 at 32, 3.9 vs 4.2 at 64; sum 0.9
// vs 0.7 at 16, even at 32; random 8.5 vs 8.4 at 16, 11.7 vs 13.7 at 32.
// Products: mul 1.7 vs 1.2 at 1 element but 1.7 vs 2.4 at 2; square, dot and
// scale alike. A linear combination pays Montgomery conversions of its
// coefficients on the module path, so it stays ahead longer: at 2 elements
// 3.8 vs 2.2 (2 terms) and 11.0 vs 10.7 (16 terms, small coefficients), at 3
// elements and 5 terms 5.6 vs 6.8. add alone would pay off to ~32 elements;
// it shares SMALL with sum and random, which break even there.

/** Most elements for the word-arithmetic small paths (add, sub, neg, addConst, sum) and frVecRandom. */
const SMALL = 16;
/** Most elements for the bigint small paths of mul, square, scale and dot. */
const SMALL_PRODUCTS = 1;
/** Most elements, and most vectors, for the small path of linearCombination. */
const SMALL_COMBINATION = 2;
const SMALL_TERMS = 16;

/**
 * Where the small-vector paths stop (element counts; `terms` counts the
 * vectors of a linear combination). Exported so that tests can probe both
 * sides of every limit; results never depend on them.
 */
export const FR_VEC_SMALL_LIMITS = Object.freeze({
  elementwise: SMALL,
  random: SMALL,
  products: SMALL_PRODUCTS,
  combination: SMALL_COMBINATION,
  terms: SMALL_TERMS,
});

const scratchA = new BigUint64Array(4 * SMALL);
const scratchA8 = new Uint8Array(scratchA.buffer);
const scratchA32 = new Uint32Array(scratchA.buffer);
const scratchB = new BigUint64Array(4 * SMALL);
const scratchB8 = new Uint8Array(scratchB.buffer);
const scratchB32 = new Uint32Array(scratchB.buffer);
const scratchOut = new BigUint64Array(4 * SMALL);
const scratchOut8 = new Uint8Array(scratchOut.buffer);
const scratchOut32 = new Uint32Array(scratchOut.buffer);
/** Eight zero words: neg is 0 - a. */
const ZERO_WORDS = new Uint32Array(8);
/** Per-element accumulators of the small linear combination (reused: no allocation per call). */
const smallAccumulators: bigint[] = new Array<bigint>(SMALL_COMBINATION).fill(0n);
/** r's bytes, little-endian, for the byte-wise rejection test of frVecRandom's small path. */
const R_BYTES: readonly number[] = Array.from({ length: E }, (_, i) => Number((FR_MODULUS >> BigInt(8 * i)) & 0xffn));

/**
 * Barrett reduction (HAC 14.42, generalised): for 0 <= t < 2^BARRETT_BITS,
 * q = floor(floor(t / 2^253) · floor(2^BARRETT_BITS / r) / 2^(BARRETT_BITS - 253))
 * is at most t / r and more than t / r - 3 (each floor loses less than 1,
 * t < 2^BARRETT_BITS and 2^253 < r), so 0 <= t - q·r < 3r: at most two
 * subtractions of r. 2^516 covers a product (< r^2 < 2^508) and sums of up
 * to 2^8 of them (linear combinations of SMALL_TERMS vectors); anything
 * else (negative or huge coefficients) takes `%`.
 */
const BARRETT_BITS = 516n;
const BARRETT_LIMIT = 1n << BARRETT_BITS;
const BARRETT_MU = BARRETT_LIMIT / FR_MODULUS;
const BARRETT_SHIFT = BARRETT_BITS - 253n;

/** t mod r in [0, r) for any bigint t (bigint % keeps the dividend's sign, hence the fix-up). */
function reduce(t: bigint): bigint {
  // A small negative sum (a combination with coefficients like -1 or -3): lift it by
  // k·r with k = floor(-t / 2^253) + 1, so k·r > -t (r > 2^253), a small product.
  if (t < 0n && t > -BARRETT_LIMIT) t += ((-t >> 253n) + 1n) * FR_MODULUS;
  if (t >= 0n && t < BARRETT_LIMIT) {
    if (t < FR_MODULUS) return t;
    let z = t - (((t >> 253n) * BARRETT_MU) >> BARRETT_SHIFT) * FR_MODULUS;
    while (z >= FR_MODULUS) z -= FR_MODULUS;
    return z;
  }
  const z = t % FR_MODULUS;
  return z < 0n ? z + FR_MODULUS : z;
}

/**
 * Element count of `v` if it is a Uint8Array of whole elements, at most
 * `max` of them, else -1. On a big-endian host the scratch words would read
 * wrongly, so the word and bigint paths are off there.
 */
function smallCount(v: unknown, max: number): number {
  if (!LITTLE_ENDIAN || !(v instanceof Uint8Array)) return -1;
  const n = v.length;
  return n <= max * E && n % E === 0 ? n / E : -1;
}

/** Copies small a and b of equal length into scratch; their element count, or -1 to defer to the general path. */
function loadSmallPair(a: unknown, b: unknown, max: number): number {
  const k = smallCount(a, max);
  if (k < 0 || !(b instanceof Uint8Array) || b.length !== (a as Uint8Array).length) return -1;
  scratchA8.set(a as Uint8Array);
  scratchB8.set(b);
  return k;
}

/** Whether the element at word offset o of `w` is < r (its top word decides unless it equals r's). */
function wordsCanonical(w: Uint32Array, o: number): boolean {
  for (let j = 7; j >= 0; j--) {
    const x = w[o + j]!;
    if (x !== R_WORDS[j]!) return x < R_WORDS[j]!;
  }
  return false;
}

/**
 * scratchOut32[o..o+8) = x + y mod r for canonical x at word offset xo of
 * `xs` and y at yo of `ys` (either may be scratchOut32 at o itself: each
 * word is read before it is written). x + y < 2r < 2^255, so the top word
 * never carries out; a Uint32Array store keeps the low 32 bits.
 */
function addWords(xs: Uint32Array, xo: number, ys: Uint32Array, yo: number, o: number): void {
  let carry = 0;
  for (let j = 0; j < 8; j++) {
    const t = xs[xo + j]! + ys[yo + j]! + carry;
    scratchOut32[o + j] = t;
    carry = t > 0xffffffff ? 1 : 0;
  }
  if (wordsCanonical(scratchOut32, o)) return;
  let borrow = 0;
  for (let j = 0; j < 8; j++) {
    const t = scratchOut32[o + j]! - R_WORDS[j]! - borrow;
    scratchOut32[o + j] = t;
    borrow = t < 0 ? 1 : 0;
  }
}

/** scratchOut32[o..o+8) = x - y mod r (as addWords): x - y, plus r if that borrowed. */
function subWords(xs: Uint32Array, xo: number, ys: Uint32Array, yo: number, o: number): void {
  let borrow = 0;
  for (let j = 0; j < 8; j++) {
    const t = xs[xo + j]! - ys[yo + j]! - borrow;
    scratchOut32[o + j] = t;
    borrow = t < 0 ? 1 : 0;
  }
  if (borrow === 0) return;
  let carry = 0;
  for (let j = 0; j < 8; j++) {
    const t = scratchOut32[o + j]! + R_WORDS[j]! + carry;
    scratchOut32[o + j] = t;
    carry = t > 0xffffffff ? 1 : 0;
  }
}

/** Element i of a 64-bit scratch view as a bigint. */
function wordsAt(w: BigUint64Array, i: number): bigint {
  const o = 4 * i;
  return w[o]! | (w[o + 1]! << 64n) | (w[o + 2]! << 128n) | (w[o + 3]! << 192n);
}

/** Writes x (< 2^256) as element i of `w`; a BigUint64Array store keeps the low 64 bits. */
function setWords(w: BigUint64Array, i: number, x: bigint): void {
  const o = 4 * i;
  w[o] = x;
  w[o + 1] = x >> 64n;
  w[o + 2] = x >> 128n;
  w[o + 3] = x >> 192n;
}

/** The first k elements of scratchOut as a fresh vector. */
function smallResult(k: number): Uint8Array {
  return scratchOut8.slice(0, k * E);
}

/** Operations of the small paths: numbers, not closures, so a call allocates nothing for them. */
const ADD = 0;
const SUB = 1;
const MUL = 2;
const NEG = 3;
const SQUARE = 4;
const SCALE = 5;
const ADD_CONST = 6;
type BinaryOp = typeof ADD | typeof SUB | typeof MUL;
type UnaryOp = typeof NEG | typeof SQUARE | typeof SCALE | typeof ADD_CONST;

/** Element-wise a op b for small vectors, or undefined to defer to the general path. */
function smallBinary(a: Uint8Array, b: Uint8Array, op: BinaryOp): Uint8Array | undefined {
  const k = loadSmallPair(a, b, op === MUL ? SMALL_PRODUCTS : SMALL);
  if (k < 0) return undefined;
  for (let i = 0; i < k; i++) {
    const o = 8 * i;
    if (!wordsCanonical(scratchA32, o) || !wordsCanonical(scratchB32, o)) return undefined;
    if (op === ADD) addWords(scratchA32, o, scratchB32, o, o);
    else if (op === SUB) subWords(scratchA32, o, scratchB32, o, o);
    else setWords(scratchOut, i, reduce(wordsAt(scratchA, i) * wordsAt(scratchB, i)));
  }
  return smallResult(k);
}

/**
 * Element-wise op(a) for a small vector, or undefined to defer to the
 * general path; `c` is SCALE's factor or ADD_CONST's addend (any bigint).
 */
function smallUnary(a: Uint8Array, op: UnaryOp, c: unknown): Uint8Array | undefined {
  const k = smallCount(a, op === SQUARE || op === SCALE ? SMALL_PRODUCTS : SMALL);
  // A constant of the wrong type is the general path's error to raise (after a's).
  if (k < 0 || (op >= SCALE && typeof c !== "bigint")) return undefined;
  scratchA8.set(a);
  for (let i = 0; i < k; i++) if (!wordsCanonical(scratchA32, 8 * i)) return undefined;
  if (op === NEG) {
    for (let i = 0; i < k; i++) subWords(ZERO_WORDS, 0, scratchA32, 8 * i, 8 * i);
  } else if (op === SQUARE) {
    for (let i = 0; i < k; i++) {
      const x = wordsAt(scratchA, i);
      setWords(scratchOut, i, reduce(x * x));
    }
  } else {
    // constantOf's reduction, without its division when c already is in [0, r).
    const f = c as bigint;
    const constant = f >= 0n && f < FR_MODULUS ? f : constantOf(f, "c");
    if (op === SCALE) {
      for (let i = 0; i < k; i++) setWords(scratchOut, i, reduce(wordsAt(scratchA, i) * constant));
    } else {
      setWords(scratchB, 0, constant);
      for (let i = 0; i < k; i++) addWords(scratchA32, 8 * i, scratchB32, 0, 8 * i);
    }
  }
  return smallResult(k);
}

/** Σ a_i mod r for a small vector, or undefined to defer to the general path. */
function smallSum(a: Uint8Array): bigint | undefined {
  const k = smallCount(a, SMALL);
  if (k < 0) return undefined;
  scratchA8.set(a);
  scratchOut32.fill(0, 0, 8);
  for (let i = 0; i < k; i++) {
    if (!wordsCanonical(scratchA32, 8 * i)) return undefined;
    addWords(scratchOut32, 0, scratchA32, 8 * i, 0);
  }
  return wordsAt(scratchOut, 0);
}

/** Σ a_i · b_i mod r for small vectors, or undefined to defer to the general path. */
function smallDot(a: Uint8Array, b: Uint8Array): bigint | undefined {
  const k = loadSmallPair(a, b, SMALL_PRODUCTS);
  if (k < 0) return undefined;
  // Unreduced: at most SMALL_PRODUCTS products below r^2 (well within Barrett's range), then one reduction.
  let acc = 0n;
  for (let i = 0; i < k; i++) {
    if (!wordsCanonical(scratchA32, 8 * i) || !wordsCanonical(scratchB32, 8 * i)) return undefined;
    acc += wordsAt(scratchA, i) * wordsAt(scratchB, i);
  }
  return reduce(acc);
}

/**
 * Σ_j c_j · v_j for small vectors, or undefined to defer to the general
 * path. The coefficients are used as given (any bigints, Lagrange ones are
 * small signed integers): each element's sum is reduced once, which equals
 * Σ_j (c_j mod r) · v_j mod r, what the general path computes.
 */
function smallLinearCombination(vectors: readonly Uint8Array[], coefficients: readonly bigint[]): Uint8Array | undefined {
  if (!Array.isArray(vectors) || !Array.isArray(coefficients)) return undefined;
  const terms = vectors.length;
  if (terms === 0 || terms > SMALL_TERMS || coefficients.length !== terms) return undefined;
  const k = smallCount(vectors[0], SMALL_COMBINATION);
  if (k < 0) return undefined;
  for (let j = 0; j < terms; j++) {
    const v: unknown = vectors[j];
    if (!(v instanceof Uint8Array) || v.length !== k * E || typeof coefficients[j] !== "bigint") return undefined;
  }
  const acc = smallAccumulators;
  for (let i = 0; i < k; i++) acc[i] = 0n;
  for (let j = 0; j < terms; j++) {
    const c = coefficients[j]!;
    scratchA8.set(vectors[j]!);
    for (let i = 0; i < k; i++) {
      if (!wordsCanonical(scratchA32, 8 * i)) return undefined;
      if (c !== 0n) acc[i] = acc[i]! + c * wordsAt(scratchA, i);
    }
  }
  for (let i = 0; i < k; i++) setWords(scratchOut, i, reduce(acc[i]!));
  return smallResult(k);
}

/**
 * frVecRandom for count <= SMALL: the reference's rejection sampling on the
 * bytes themselves (copy a block, clear its top two bits, compare with r
 * from the top byte down), so no bigint is built. Rounds ask for one block
 * per missing element, as drawRandom and the reference do. Accepted blocks
 * go straight into the fresh result: the rng may itself call this module
 * and overwrite the scratch words.
 */
function smallRandom(count: number, rng: Rng): Uint8Array {
  const out = new Uint8Array(count * E);
  let filled = 0;
  while (filled < count) {
    const blocks = Math.min(count - filled, FR_VEC_RNG_MAX_BLOCKS);
    const bytes = checkRngOutput(rng(blocks * FR_VEC_RANDOM_DRAW_BYTES), blocks * FR_VEC_RANDOM_DRAW_BYTES);
    for (let blk = 0; blk < blocks; blk++) {
      const from = blk * FR_VEC_RANDOM_DRAW_BYTES;
      const to = filled * E;
      for (let i = 0; i < E - 1; i++) out[to + i] = bytes[from + i]!;
      out[to + E - 1] = bytes[from + E - 1]! & 0x3f;
      // Accept iff the masked value is < r: the first differing byte from the top decides.
      let i = E - 1;
      while (i >= 0 && out[to + i] === R_BYTES[i]) i--;
      if (i >= 0 && out[to + i]! < R_BYTES[i]!) filled++;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Public API

/** Number of elements of `v` (checks the byte length, not canonicity). */
export function frVecLength(v: Uint8Array): number {
  return elementCount(v, "vector");
}

/**
 * Throws MATH_INVALID_ARGUMENT unless `v` is a Uint8Array of whole 32-byte
 * elements, each canonical (< r), and (when given) exactly `expectedLength`
 * elements. The message names `what` and the first bad element's index.
 */
export function frVecCheck(v: unknown, what: string, expectedLength?: number): asserts v is Uint8Array {
  const k = checked(v, what);
  if (expectedLength !== undefined && k !== expectedLength) {
    throw invalid(`${what} has ${k} elements, expected ${expectedLength}`, { argument: what, got: k, expected: expectedLength });
  }
}

/**
 * The packed vector of the elements that `bytes` encodes as 32-byte
 * big-endian integers (encodeFieldVector's format, in which data owners
 * send their shares): each element's bytes reversed, with no bigint in
 * between (a 100,000-element share: a few ms instead of ~70 ms through
 * decodeFieldVector and frVecFromBigints). MATH_INVALID_ARGUMENT for a
 * length that is not whole elements, a count other than `expectedCount`,
 * or an element >= r (named by its index); `what` names the input.
 */
export function frVecFromBigEndian(bytes: Uint8Array, what: string, expectedCount?: number): Uint8Array {
  const k = elementCount(bytes, what);
  if (expectedCount !== undefined && k !== expectedCount) {
    throw invalid(`${what} has ${k} elements, expected ${expectedCount}`, { argument: what, got: k, expected: expectedCount });
  }
  const out = uninitialized(k);
  const src = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const dst = new DataView(out.buffer, out.byteOffset, out.length);
  // Little-endian word j of an element is big-endian word 7 - j, byte-swapped.
  for (let o = 0; o < bytes.length; o += E) {
    for (let j = 0; j < E; j += 4) dst.setUint32(o + j, src.getUint32(o + E - 4 - j, false), true);
  }
  const bad = firstNonCanonical(out);
  if (bad >= 0) throw nonCanonical(what, bad);
  return out;
}

/** Packs field elements (each a bigint in [0, r); MATH_INVALID_ARGUMENT names the index of one that is not). */
export function frVecFromBigints(xs: readonly bigint[]): Uint8Array {
  assertVectorList(xs, "xs");
  const out = new Uint8Array(xs.length * E);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    if (typeof x !== "bigint" || x < 0n || x >= FR_MODULUS) {
      throw invalid(`xs[${i}] is not a field element (expected a bigint in [0, r))`, { argument: "xs", index: i, type: describeType(x) });
    }
    dv.setBigUint64(i * E, BigInt.asUintN(64, x), true);
    dv.setBigUint64(i * E + 8, BigInt.asUintN(64, x >> 64n), true);
    dv.setBigUint64(i * E + 16, BigInt.asUintN(64, x >> 128n), true);
    dv.setBigUint64(i * E + 24, x >> 192n, true);
  }
  return out;
}

/** Unpacks a (validated) vector into bigints. */
export function frVecToBigints(v: Uint8Array): bigint[] {
  const k = checked(v, "vector");
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  const out = new Array<bigint>(k);
  for (let i = 0; i < k; i++) {
    out[i] =
      dv.getBigUint64(i * E, true) |
      (dv.getBigUint64(i * E + 8, true) << 64n) |
      (dv.getBigUint64(i * E + 16, true) << 128n) |
      (dv.getBigUint64(i * E + 24, true) << 192n);
  }
  return out;
}

/** k zero elements. */
export function frVecZeros(k: number): Uint8Array {
  assertCount(k, "k");
  return new Uint8Array(k * E);
}

/** The vectors one after another (each validated). */
export function frVecConcat(vs: readonly Uint8Array[]): Uint8Array {
  assertVectorList(vs, "vs");
  let total = 0;
  vs.forEach((v, j) => (total += checked(v, `vs[${j}]`)));
  const out = new Uint8Array(total * E);
  let at = 0;
  for (const v of vs) {
    out.set(v, at);
    at += v.length;
  }
  return out;
}

/**
 * Elements [start, end) of `v` as a fresh vector; 0 <= start <= end <=
 * length (end defaults to the length).
 */
export function frVecSlice(v: Uint8Array, start: number, end?: number): Uint8Array {
  const k = checked(v, "vector");
  const stop = end ?? k;
  checkSliceBounds(start, stop, k);
  return v.slice(start * E, stop * E);
}

/** Element-wise a + b. */
export function frVecAdd(a: Uint8Array, b: Uint8Array): Uint8Array {
  const small = smallBinary(a, b, ADD);
  if (small !== undefined) return small;
  const k = checkedPair(a, b);
  return elementwise([a, b], k, (o, [pa, pb], n) => wasm.add(o, pa!, pb!, n));
}

/** Element-wise a - b. */
export function frVecSub(a: Uint8Array, b: Uint8Array): Uint8Array {
  const small = smallBinary(a, b, SUB);
  if (small !== undefined) return small;
  const k = checkedPair(a, b);
  return elementwise([a, b], k, (o, [pa, pb], n) => wasm.sub(o, pa!, pb!, n));
}

/** Element-wise -a. */
export function frVecNeg(a: Uint8Array): Uint8Array {
  const small = smallUnary(a, NEG, undefined);
  if (small !== undefined) return small;
  const k = checked(a, "a");
  return elementwise([a], k, (o, [pa], n) => wasm.neg(o, pa!, n));
}

/** Element-wise a · b. */
export function frVecMul(a: Uint8Array, b: Uint8Array): Uint8Array {
  const small = smallBinary(a, b, MUL);
  if (small !== undefined) return small;
  const k = checkedPair(a, b);
  return elementwise([a, b], k, (o, [pa, pb], n) => wasm.mul(o, pa!, pb!, n));
}

/** Element-wise a². */
export function frVecSquare(a: Uint8Array): Uint8Array {
  const small = smallUnary(a, SQUARE, undefined);
  if (small !== undefined) return small;
  const k = checked(a, "a");
  return elementwise([a], k, (o, [pa], n) => wasm.sqr(o, pa!, n));
}

/** c · a for a constant c (any bigint, reduced mod r). */
export function frVecScale(a: Uint8Array, c: bigint): Uint8Array {
  const small = smallUnary(a, SCALE, c);
  if (small !== undefined) return small;
  const k = checked(a, "a");
  const factor = constantOf(c, "c");
  return withHeap(() => {
    const slot = alloc(SLOT);
    writeSlot(slot, montgomery(factor));
    return elementwise([a], k, (o, [pa], n) => wasm.scale(o, pa!, slot, n));
  });
}

/** a + c element-wise for a constant c (any bigint, reduced mod r). */
export function frVecAddConst(a: Uint8Array, c: bigint): Uint8Array {
  const small = smallUnary(a, ADD_CONST, c);
  if (small !== undefined) return small;
  const k = checked(a, "a");
  const addend = constantOf(c, "c");
  return withHeap(() => {
    const p = alloc(E);
    writeElement(p, addend);
    return elementwise([a], k, (o, [pa], n) => wasm.add_const(o, pa!, p, n));
  });
}

/** Runs a reducing kernel over chunks and adds the per-chunk results mod r. */
function reduceChunks(inputs: readonly Uint8Array[], count: number, kernel: (o: number, ps: readonly number[], n: number) => void): bigint {
  if (count === 0) return 0n;
  return withHeap(() => {
    const size = Math.min(count, CHUNK);
    const ps = inputs.map(() => alloc(size * E));
    const o = alloc(E);
    let acc = 0n;
    for (let start = 0; start < count; start += CHUNK) {
      const n = Math.min(CHUNK, count - start);
      inputs.forEach((v, j) => load(v, start, n, ps[j]!));
      kernel(o, ps, n);
      acc += readElement(o);
    }
    return acc % FR_MODULUS;
  });
}

/** Σ a_i mod r. */
export function frVecSum(a: Uint8Array): bigint {
  const small = smallSum(a);
  if (small !== undefined) return small;
  const k = checked(a, "a");
  return reduceChunks([a], k, (o, [pa], n) => wasm.sum(o, pa!, n));
}

/** Σ a_i · b_i mod r. */
export function frVecDot(a: Uint8Array, b: Uint8Array): bigint {
  const small = smallDot(a, b);
  if (small !== undefined) return small;
  const k = checkedPair(a, b);
  return reduceChunks([a, b], k, (o, [pa, pb], n) => wasm.dot(o, pa!, pb!, n));
}

/**
 * How a fixed linear combination Σ c_j v_j runs in the module. Coefficients
 * whose signed representatives (c or c - r) are small integers, as Lagrange
 * coefficients of parties x = 1, 2, 3, ... are, use lincomb_small: eight
 * 32-bit word products per term and one cheap reduction. Rational ones N_j / D with
 * small N_j (Lagrange coefficients of other party sets) use lincomb_small and
 * one product by 1/D. The rest use Montgomery products (lincomb).
 */
type CombinationPlan =
  | { kind: "small"; coefficients: readonly bigint[]; offset: bigint; inverseDenominator: bigint | undefined }
  | { kind: "general"; coefficients: readonly bigint[] };

function signedRepresentative(c: bigint): bigint {
  return c > FR_VEC_HALF_MODULUS ? c - FR_MODULUS : c;
}

function smallPlan(integers: readonly bigint[], denominator: bigint): CombinationPlan | undefined {
  let budget = 0n;
  let negative = 0n;
  for (const n of integers) {
    budget += n < 0n ? -n : n;
    if (n < 0n) negative -= n;
  }
  if (integers.length > 255 || budget > SMALL_COEFFICIENT_BUDGET) return undefined;
  return {
    kind: "small",
    coefficients: integers,
    offset: negative * FR_MODULUS,
    inverseDenominator: denominator === 1n ? undefined : modPow(denominator, FR_MODULUS - 2n),
  };
}

/** Plan for arbitrary field coefficients (given in [0, r)). */
function combinationPlan(coefficients: readonly bigint[]): CombinationPlan {
  return smallPlan(coefficients.map(signedRepresentative), 1n) ?? { kind: "general", coefficients };
}

/**
 * Runs `plan` over the (validated) vectors for elements [start, start + n),
 * whose copies are at `ptrs`. mode 0 writes to `o`; mode 1 returns the first
 * element (relative to the chunk) where the combination is not zero, or -1.
 */
function runCombination(plan: CombinationPlan, allPtrs: readonly number[], n: number, o: number, mode: 0 | 1): number {
  // Terms with coefficient 0 (other check parties in a consistency check) cost nothing.
  const terms = plan.coefficients.flatMap((c, j) => (c === 0n ? [] : [j]));
  const ptrs = terms.map((j) => allPtrs[j]!);
  const coefficients = terms.map((j) => plan.coefficients[j]!);
  return withHeap(() => {
    if (plan.kind === "small") {
      const table = alloc(16 * ptrs.length);
      const offset = alloc(72);
      const dv = view();
      ptrs.forEach((p, j) => {
        dv.setUint32(table + 16 * j, p, true);
        dv.setBigInt64(table + 16 * j + 8, coefficients[j]!, true);
      });
      writeWords32(offset, plan.offset);
      const bad = wasm.lincomb_small(o, table, ptrs.length, n, offset, mode);
      if (mode === 0 && plan.inverseDenominator !== undefined) {
        const slot = alloc(SLOT);
        writeSlot(slot, montgomery(plan.inverseDenominator));
        wasm.scale(o, o, slot, n);
      }
      return bad;
    }
    if (ptrs.length <= LINCOMB_MAX_TERMS) return wasm.lincomb(o, generalTable(coefficients, ptrs), ptrs.length, n, mode);
    // More terms than one Montgomery reduction allows: groups, added up.
    const partial = alloc(n * E);
    for (let g = 0; g < ptrs.length; g += LINCOMB_MAX_TERMS) {
      const group = ptrs.slice(g, g + LINCOMB_MAX_TERMS);
      const table = generalTable(coefficients.slice(g, g + LINCOMB_MAX_TERMS), group);
      wasm.lincomb(g === 0 ? o : partial, table, group.length, n, 0);
      if (g > 0) wasm.add(o, o, partial, n);
    }
    return mode === 1 ? firstNonZero(o, n) : -1;
  });
}

/** lincomb's table: (vector offset, offset of a slot with c_j in Montgomery form) per term. */
function generalTable(coefficients: readonly bigint[], ptrs: readonly number[]): number {
  const table = alloc(8 * ptrs.length);
  ptrs.forEach((p, j) => {
    const slot = alloc(SLOT);
    writeSlot(slot, montgomery(coefficients[j]!));
    view().setUint32(table + 8 * j, p, true);
    view().setUint32(table + 8 * j + 4, slot, true);
  });
  return table;
}

function firstNonZero(p: number, n: number): number {
  const bytes = heap();
  for (let i = p; i < p + n * E; i++) if (bytes[i] !== 0) return Math.floor((i - p) / E);
  return -1;
}

/**
 * Σ_j c_j · v_j element-wise (the Lagrange recombination of GRR/BGW: R.
 * Gennaro, M. Rabin, T. Rabin, PODC 1998). Needs at least one vector, as
 * many coefficients (bigints, reduced mod r) as vectors, and equal lengths.
 */
export function frVecLinearCombination(vectors: readonly Uint8Array[], coefficients: readonly bigint[]): Uint8Array {
  const small = smallLinearCombination(vectors, coefficients);
  if (small !== undefined) return small;
  const { cs, count } = checkLinearCombinationShape(vectors, coefficients);
  vectors.forEach((v, j) => checked(v, `vectors[${j}]`));
  const plan = combinationPlan(cs);
  return elementwise(vectors, count, (o, ps, n) => void runCombination(plan, ps, n, o, 0));
}

/**
 * Draws `count` uniform elements into the module at `p` (rejection sampling,
 * see FR_VEC_RANDOM_DRAW_BYTES), consuming the rng exactly as the reference
 * implementation does: rounds of min(missing, FR_VEC_RNG_MAX_BLOCKS) blocks.
 */
function drawRandom(p: number, count: number, rng: Rng): void {
  let filled = 0;
  while (filled < count) {
    const blocks = Math.min(count - filled, FR_VEC_RNG_MAX_BLOCKS);
    const bytes = checkRngOutput(rng(blocks * FR_VEC_RANDOM_DRAW_BYTES), blocks * FR_VEC_RANDOM_DRAW_BYTES);
    withHeap(() => {
      const input = alloc(bytes.length);
      heap().set(bytes, input);
      filled += wasm.random(p + filled * E, input, blocks);
    });
  }
}

/**
 * `count` uniform field elements by rejection sampling (see
 * FR_VEC_RANDOM_DRAW_BYTES). Each round asks the rng for one 32-byte block
 * per missing element (at most FR_VEC_RNG_MAX_BLOCKS), so no bytes past the
 * last accepted block are consumed: the stream used is the same however the
 * request is split.
 */
export function frVecRandom(count: number, rng: Rng): Uint8Array {
  assertCount(count, "count");
  if (count <= SMALL) return smallRandom(count, rng);
  const out = uninitialized(count);
  withHeap(() => {
    const size = Math.min(count, CHUNK);
    const o = alloc(size * E);
    for (let start = 0; start < count; start += CHUNK) {
      const n = Math.min(CHUNK, count - start);
      drawRandom(o, n, rng);
      store(out, start, n, o);
    }
  });
  return out;
}

/**
 * Shamir sharing (A. Shamir, CACM 1979) of every element, party-major:
 * result[j] holds party j's shares, the evaluations at x = j + 1 of one
 * fresh polynomial s_k + a_{k,1} X + ... + a_{k,t} X^t per secret s_k. The
 * random coefficients are frVecRandom(secrets · t) in the order
 * a_{0,1..t}, a_{1,1..t}, ...
 */
export function frVecShare(secrets: Uint8Array, params: SharingParams, rng: Rng): Uint8Array[] {
  validateSharingParams(params);
  const m = checked(secrets, "secrets");
  const { threshold: t, parties } = params;
  const result = Array.from({ length: parties }, () => uninitialized(m));
  if (m === 0) return result;
  // Per chunk the module holds the secrets, t coefficients and n shares per
  // secret: keep that near 4 · CHUNK elements however many parties there are.
  const chunk = Math.max(64, Math.min(CHUNK, Math.floor((4 * CHUNK) / (1 + t + parties))));
  withHeap(() => {
    const size = Math.min(m, chunk);
    const s = alloc(size * E);
    const coeffs = alloc(size * t * E);
    const o = alloc(size * parties * E);
    for (let start = 0; start < m; start += chunk) {
      const n = Math.min(chunk, m - start);
      drawRandom(coeffs, n * t, rng);
      load(secrets, start, n, s);
      wasm.share(o, n * E, s, coeffs, n, t, parties);
      result.forEach((shares, j) => store(shares, start, n, o + j * n * E));
    }
  });
  return result;
}

/** Rational Lagrange coefficients: λ_j(at) = nums[j] / den exactly, den > 0. */
function rationalLagrange(xs: readonly bigint[], at: bigint): { nums: bigint[]; den: bigint } {
  const gcd = (a: bigint, b: bigint): bigint => {
    let [x, y] = [a < 0n ? -a : a, b < 0n ? -b : b];
    while (y) [x, y] = [y, x % y];
    return x;
  };
  const parts = xs.map((xj, j) => {
    let num = 1n;
    let den = 1n;
    xs.forEach((xm, m) => {
      if (m !== j) {
        num *= at - xm;
        den *= xj - xm;
      }
    });
    if (den < 0n) [num, den] = [-num, -den];
    const g = gcd(num, den) || 1n;
    return { num: num / g, den: den / g };
  });
  const den = parts.reduce((l, p) => (l / gcd(l, p.den)) * p.den, 1n);
  return { nums: parts.map((p) => p.num * (den / p.den)), den };
}

/** The secret row and one zero-check row per check party, each as a CombinationPlan over plan.parties. */
interface FastPlan {
  readonly secret: CombinationPlan;
  readonly checks: readonly CombinationPlan[];
}
const fastPlans = new WeakMap<FrVecReconstructionPlan, FastPlan>();

function fastPlanFor(plan: FrVecReconstructionPlan): FastPlan {
  const hit = fastPlans.get(plan);
  if (hit !== undefined) return hit;
  const basisX = plan.basis.map((p) => BigInt(p + 1));
  const b = plan.basis.length;
  const secretRational = rationalLagrange(basisX, 0n);
  const secret =
    smallPlan(secretRational.nums, secretRational.den) ?? { kind: "general" as const, coefficients: plan.lagrangeAtZero };
  // Check e: Σ_j λ_j(x_e) y_j - y_e = 0, i.e. Σ_j N_j y_j - D y_e = 0 (D is invertible mod r).
  const checks = plan.checks.map((party, e): CombinationPlan => {
    const { nums, den } = rationalLagrange(basisX, BigInt(party + 1));
    const integers = plan.parties.map((_, i) => (i < b ? nums[i]! : i === b + e ? -den : 0n));
    const small = smallPlan(integers, 1n);
    if (small !== undefined) return small;
    const coefficients = plan.parties.map((_, i) => (i < b ? plan.checkCoefficients[e]![i]! : i === b + e ? FR_MODULUS - 1n : 0n));
    return { kind: "general", coefficients };
  });
  const fast = { secret, checks };
  fastPlans.set(plan, fast);
  return fast;
}

/**
 * f(0) for every element, from the shares of the parties present
 * (sharesByParty[p] = party p's vector, x = p + 1; undefined = absent),
 * where f has degree <= `degree` (t for fresh sharings, 2t for BGW products).
 * Needs degree + 1 parties (MATH_NOT_ENOUGH_SHARES); with more, every
 * element is checked to lie on one polynomial of that degree
 * (MATH_INCONSISTENT_SHARES naming the element index and the disagreeing x
 * values, never share values).
 */
export function frVecReconstruct(sharesByParty: readonly (Uint8Array | undefined)[], degree: number): Uint8Array {
  const { present, count } = checkReconstructShape(sharesByParty, degree);
  const vectors = present.map((p) => {
    const v = sharesByParty[p]!;
    const bad = firstNonCanonical(v);
    if (bad >= 0) throw nonCanonicalShare(p, bad);
    return v;
  });
  const plan = reconstructionPlanFor(present, degree);
  const fast = fastPlanFor(plan);
  const b = plan.basis.length;
  const out = uninitialized(count);
  if (count === 0) return out;
  withHeap(() => {
    const size = Math.min(count, CHUNK);
    const ps = vectors.map(() => alloc(size * E));
    const o = alloc(size * E);
    const scratch = fast.checks.length > 0 ? alloc(size * E) : 0;
    for (let start = 0; start < count; start += CHUNK) {
      const n = Math.min(CHUNK, count - start);
      vectors.forEach((v, j) => load(v, start, n, ps[j]!));
      let firstBad = -1;
      for (const check of fast.checks) {
        const bad = runCombination(check, ps, n, scratch, 1);
        if (bad >= 0 && (firstBad < 0 || bad < firstBad)) firstBad = bad;
      }
      if (firstBad >= 0) {
        const index = start + firstBad;
        throw inconsistentShares(plan, index, vectors.map((v) => elementOf(v, index)));
      }
      runCombination(fast.secret, ps.slice(0, b), n, o, 0);
      store(out, start, n, o);
    }
  });
  return out;
}

function elementOf(v: Uint8Array, i: number): bigint {
  const dv = new DataView(v.buffer, v.byteOffset + i * E, E);
  return dv.getBigUint64(0, true) | (dv.getBigUint64(8, true) << 64n) | (dv.getBigUint64(16, true) << 128n) | (dv.getBigUint64(24, true) << 192n);
}

/** Element-wise 1/a (one field inversion per chunk, Montgomery's trick). A zero is MATH_INVALID_ARGUMENT naming its index. */
export function frVecInvert(a: Uint8Array): Uint8Array {
  const k = checked(a, "a");
  const out = uninitialized(k);
  if (k === 0) return out;
  withHeap(() => {
    const size = Math.min(k, CHUNK);
    const pa = alloc(size * E);
    const o = alloc(size * E);
    const scratch = alloc(2 * size * SLOT);
    for (let start = 0; start < k; start += CHUNK) {
      const n = Math.min(CHUNK, k - start);
      load(a, start, n, pa);
      const zero = wasm.find_zero(pa, n);
      if (zero >= 0) throw zeroInverse(start + zero);
      wasm.inv(o, pa, n, scratch);
      store(out, start, n, o);
    }
  });
  return out;
}

/**
 * Element-wise canonical square root: of the two roots ±y, the one whose
 * canonical value is <= (r - 1) / 2. A non-residue is MATH_INVALID_ARGUMENT
 * naming its index.
 */
export function frVecSqrt(a: Uint8Array): Uint8Array {
  const k = checked(a, "a");
  return elementwise([a], k, (o, [pa], n, start) => {
    const bad = wasm.sqrt(o, pa!, n);
    if (bad >= 0) throw nonResidue(start + bad);
  });
}

/** Element-wise a^e for a constant exponent e >= 0 (0^0 = 1). */
export function frVecPowConst(a: Uint8Array, e: bigint): Uint8Array {
  const k = checked(a, "a");
  assertExponent(e);
  if (e === 0n) {
    const out = new Uint8Array(k * E);
    for (let i = 0; i < k; i++) out[i * E] = 1;
    return out;
  }
  // a^e = a^(e mod (r - 1)) for a != 0 (Fermat); r - 1 instead of 0 keeps 0^e = 0.
  const reduced = e % (FR_MODULUS - 1n) || FR_MODULUS - 1n;
  return withHeap(() => {
    const p = alloc(E);
    writeElement(p, reduced);
    const nibbles = reduced.toString(16).length;
    return elementwise([a], k, (o, [pa], n) => wasm.pow(o, pa!, n, p, nibbles));
  });
}
