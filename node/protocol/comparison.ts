/**
 * Comparison, equality and truncation of k-bit integers on Shamir shares,
 * after O. Catrina and S. de Hoogh, "Improved primitives for secure
 * multiparty integer computation", SCN 2010 (LTZ via Mod2m with statistical
 * masking and a bitwise less-than), and O. Catrina and A. Saxena, "Secure
 * computation with fixed-point numbers", FC 2010 (TruncPr).
 *
 * All three open a statistically masked value: for a in [-2^(k-1), 2^(k-1))
 *   c = 2^(k-1) + a + 2^m·r'' + r',   r' = Σ_{i<m} 2^i r_i
 * with r_i shared random bits and r'' a shared bounded random integer of
 * k + κ - m bits (per dealer, see preprocessing.ts); c is within statistical
 * distance 2^-κ of a value independent of a (κ = 40). Program validation
 * guarantees k + κ + 8 <= 253 (MAX_COMPARISON_BITS), so c never wraps mod r.
 * Then c' = c mod 2^m is public and (Catrina–de Hoogh, Mod2m)
 *   a mod 2^m = c' - r' + 2^m·[c' < r'].
 *
 * - ltz(a) = a < 0 with m = k - 1: a mod 2^m = a + 2^m·[a < 0], so
 *   [a < 0] = (a' - a) / 2^m with a' from Mod2m. [c' < r'] is BitLT of a
 *   public and a shared m-bit number, computed as the carry out of r' + ¬c'
 *   with a log-depth tree of (generate, propagate) pairs: (G, P)_hi ∘ (G, P)_lo
 *   = (G_hi + P_hi·G_lo, P_hi·P_lo). The first tree level costs nothing
 *   online: given the products r_(2j+1)·r_(2j) (one multiplication round in
 *   preprocessing), each first-level (G, P) is a public-coefficient
 *   combination of r_(2j+1), r_(2j), their product and 1.
 *   Cost per comparison: m random bits, one bounded random, floor(m/2)
 *   preprocessing products; online 1 opening + ceil(log2 ceil(m/2)) rounds
 *   and about m multiplications (2 per tree node above the first level,
 *   minus the propagates nobody needs).
 * - eqz(a) = a == 0 with m = k bits and c = a + 2^k + r' + 2^k·r'': a == 0
 *   iff c mod 2^k = r' iff every bit c_i equals r_i; the AND of the k
 *   indicators e_i = (c_i == r_i) is a tree of multiplications whose first
 *   level again comes from the preprocessed products (e_hi·e_lo is linear in
 *   r_hi, r_lo, r_hi·r_lo). Cost per test: k random bits, one bounded
 *   random, floor(k/2) preprocessing products; online 1 opening +
 *   ceil(log2 ceil(k/2)) rounds and ceil(k/2) - 1 multiplications. This is
 *   the bitwise equality of Catrina–de Hoogh §4 (their EQZ via KOrCS);
 *   it needs no Fermat exponentiation (which would take ~log2 r rounds).
 * - truncPr(a, m): a' = c' - r', d = (a - a') / 2^m = floor(a / 2^m) + u,
 *   u = 1 with probability (a mod 2^m) / 2^m (unbiased rounding): m random
 *   bits, one bounded random, 1 opening round, no multiplications.
 */
import { ConsortError } from "../errors.ts";
import { fieldInverse } from "../math/field.ts";
import {
  FR_VEC_ELEMENT_BYTES,
  frVecAdd,
  frVecAddConst,
  frVecLinearCombination,
  frVecNeg,
  frVecScale,
  frVecSub,
  frVecZeros,
} from "../math/fr-vec.ts";
import { STATISTICAL_SECURITY_BITS } from "../program/program.ts";
import { multiplyMany } from "./multiplication.ts";
import { NO_NEEDS, type GateRandomness, type RandomnessNeeds } from "./preprocessing.ts";
import type { RoundBatcher } from "./round-batcher.ts";
import type { PartyContext } from "./round-network.ts";
import { openShares } from "./share-opening.ts";

const B = FR_VEC_ELEMENT_BYTES;
const KAPPA = STATISTICAL_SECURITY_BITS;

/** What a batch of `count` comparisons / tests / truncations needs from preprocessing. */
export function ltzNeeds(k: number, count: number): RandomnessNeeds {
  if (k <= 1 || count === 0) return NO_NEEDS;
  const m = k - 1;
  return { randoms: 0, zerosT: 0, zeros2t: 0, bits: m * count, bounded: new Array<number>(count).fill(k + KAPPA - m) };
}
export function eqzNeeds(k: number, count: number): RandomnessNeeds {
  if (count === 0) return NO_NEEDS;
  return { randoms: 0, zerosT: 0, zeros2t: 0, bits: k * count, bounded: new Array<number>(count).fill(KAPPA + 1) };
}
export function truncNeeds(k: number, shift: number, count: number): RandomnessNeeds {
  if (count === 0) return NO_NEEDS;
  const kk = Math.max(k, shift + 1);
  return { randoms: 0, zerosT: 0, zeros2t: 0, bits: shift * count, bounded: new Array<number>(count).fill(kk + KAPPA - shift) };
}

/** Rounds after the inputs and the masks are ready: 1 opening + the tree above the first level. */
export function ltzRounds(k: number): number {
  return k <= 1 ? 0 : 1 + treeRounds(k - 1);
}
export function eqzRounds(k: number): number {
  return 1 + treeRounds(k);
}
function treeRounds(m: number): number {
  return Math.ceil(Math.log2(Math.ceil(m / 2)));
}

/**
 * The masks of `count` parallel operations of m bits, in bit-plane layout:
 * planes[i] holds r_i of every operation, rPrime = Σ 2^i r_i, high = r''
 * (bounded), and (when requested) pairs[j] = r_(2j+1)·r_(2j), which resolve
 * one round after the bits: the masked value can be opened in that same
 * round, since only the carry tree after it needs the products.
 */
export interface Masks {
  readonly m: number;
  readonly count: number;
  readonly planes: readonly Uint8Array[];
  readonly rPrime: Uint8Array;
  readonly high: Uint8Array;
  readonly pairs: Promise<readonly Uint8Array[]>;
}

const TWO_POWERS: bigint[] = Array.from({ length: 256 }, (_, i) => 1n << BigInt(i));

/**
 * Turns a gate's slices of random bits (m·count, plane-major, from
 * `bitOffset`) and bounded randoms (count, from `boundedOffset`) into Masks;
 * with `pairs`, starts the multiplication of the bit pairs as soon as the
 * bits exist (long before the gate's inputs are ready in most programs).
 */
export async function prepareMasks(
  batcher: RoundBatcher,
  ctx: PartyContext,
  gate: number,
  randomness: GateRandomness,
  m: number,
  count: number,
  pairs: boolean,
  bitOffset = 0,
  boundedOffset = 0,
): Promise<Masks> {
  const [bits, bounded] = await Promise.all([randomness.bits, randomness.bounded]);
  const planes: Uint8Array[] = [];
  for (let i = 0; i < m; i++) planes.push(bits.subarray((bitOffset + i * count) * B, (bitOffset + (i + 1) * count) * B));
  const rPrime = m === 0 ? frVecZeros(count) : frVecLinearCombination(planes, TWO_POWERS.slice(0, m));
  const high = bounded.subarray(boundedOffset * B, (boundedOffset + count) * B);
  let products: Promise<readonly Uint8Array[]> = Promise.resolve([]);
  if (pairs && m >= 2) {
    const list: [Uint8Array, Uint8Array][] = [];
    for (let j = 0; 2 * j + 1 < m; j++) list.push([planes[2 * j + 1]!, planes[2 * j]!]);
    products = multiplyMany(batcher, ctx, gate, list);
    // Awaited by the carry tree; a failure surfaces there (and through the batcher).
    products.catch(() => undefined);
  }
  return { m, count, planes, rPrime, high, pairs: products };
}

/** Bit i of every element of a public packed vector, one byte (0/1) per element. */
export function publicBitPlane(c: Uint8Array, i: number, count: number): Uint8Array {
  const out = new Uint8Array(count);
  const byte = i >> 3;
  const shift = i & 7;
  for (let e = 0; e < count; e++) out[e] = (c[e * B + byte]! >> shift) & 1;
  return out;
}

/** c mod 2^m for every element of a public packed vector (m < 256). */
export function lowBits(c: Uint8Array, m: number): Uint8Array {
  const out = c.slice();
  const count = c.length / B;
  const whole = m >> 3;
  const partial = m & 7;
  for (let e = 0; e < count; e++) {
    const base = e * B;
    let b = whole;
    if (partial !== 0) {
      out[base + b] = out[base + b]! & ((1 << partial) - 1);
      b++;
    }
    for (; b < B; b++) out[base + b] = 0;
  }
  return out;
}

/** Element e of the result is element e of candidates[selector[e]] (public selection, byte copies). */
export function selectElements(candidates: readonly Uint8Array[], selector: Uint8Array): Uint8Array {
  const count = selector.length;
  const out = new Uint8Array(count * B);
  const aligned = candidates.every((c) => c.byteOffset % 4 === 0);
  if (aligned) {
    const words = candidates.map((c) => new Uint32Array(c.buffer, c.byteOffset, c.length >> 2));
    const o = new Uint32Array(out.buffer);
    for (let e = 0; e < count; e++) {
      const src = words[selector[e]!]!;
      const base = e * 8;
      for (let w = 0; w < 8; w++) o[base + w] = src[base + w]!;
    }
  } else {
    for (let e = 0; e < count; e++) {
      const src = candidates[selector[e]!]!;
      const base = e * B;
      for (let b = 0; b < B; b++) out[base + b] = src[base + b]!;
    }
  }
  return out;
}

/**
 * The first tree level over bits (2j, 2j+1) from the public bits of c and the
 * preprocessed pair product. With a = r_hi, b = r_lo, R = a·b, u = c_hi,
 * v = c_lo, the propagate (= equality indicator) p_i = (r_i == c_i) gives
 *   P = p_hi·p_lo:  (u,v) = (0,0): 1 - a - b + R, (0,1): b - R, (1,0): a - R, (1,1): R,
 * and the generate g_i = r_i·(1 - c_i) of r' + ¬c' gives
 *   G = g_hi + p_hi·g_lo:  (0,0): a + b - R, (0,1): a, (1,0): R, (1,1): 0.
 */
function firstLevelPair(masks: Masks, pairs: readonly Uint8Array[], c: Uint8Array, j: number, wantG: boolean, wantP: boolean): { g?: Uint8Array; p?: Uint8Array } {
  const count = masks.count;
  const a = masks.planes[2 * j + 1]!;
  const b = masks.planes[2 * j]!;
  const R = pairs[j]!;
  const u = publicBitPlane(c, 2 * j + 1, count);
  const v = publicBitPlane(c, 2 * j, count);
  const selector = new Uint8Array(count);
  for (let e = 0; e < count; e++) selector[e] = 2 * u[e]! + v[e]!;
  const aMinusR = frVecSub(a, R);
  const bMinusR = frVecSub(b, R);
  const sum = frVecSub(frVecAdd(a, b), R); // a + b - R
  const out: { g?: Uint8Array; p?: Uint8Array } = {};
  if (wantG) out.g = selectElements([sum, a, R, frVecZeros(count)], selector);
  if (wantP) out.p = selectElements([frVecAddConst(frVecNeg(sum), 1n), bMinusR, aMinusR, R], selector);
  return out;
}

/** A lone first-level leaf i: g = r_i·(1 - c_i), p = (r_i == c_i). */
function firstLevelLeaf(masks: Masks, c: Uint8Array, i: number, wantG: boolean, wantP: boolean): { g?: Uint8Array; p?: Uint8Array } {
  const count = masks.count;
  const r = masks.planes[i]!;
  const u = publicBitPlane(c, i, count);
  const out: { g?: Uint8Array; p?: Uint8Array } = {};
  if (wantG) out.g = selectElements([r, frVecZeros(count)], u);
  if (wantP) out.p = selectElements([frVecAddConst(frVecNeg(r), 1n), r], u);
  return out;
}

/** [c' < r'] for public c (its low m bits) and the shared bits of `masks`: the carry-out tree. */
async function bitLessThan(batcher: RoundBatcher, ctx: PartyContext, gate: number, c: Uint8Array, masks: Masks): Promise<Uint8Array> {
  const m = masks.m;
  const pairs = await masks.pairs;
  let nodes: { g: Uint8Array; p?: Uint8Array }[] = [];
  const firstCount = Math.ceil(m / 2);
  for (let j = 0; j < firstCount; j++) {
    // Node 0 is never the high half of a combination, so its propagate is never needed.
    const node = 2 * j + 1 < m ? firstLevelPair(masks, pairs, c, j, true, j > 0) : firstLevelLeaf(masks, c, 2 * j, true, j > 0);
    nodes.push(node.p === undefined ? { g: node.g! } : { g: node.g!, p: node.p });
  }
  while (nodes.length > 1) {
    const products: [Uint8Array, Uint8Array][] = [];
    const pairCount = nodes.length >> 1;
    for (let j = 0; j < pairCount; j++) {
      const lo = nodes[2 * j]!;
      const hi = nodes[2 * j + 1]!;
      products.push([hi.p!, lo.g]);
      if (j > 0) products.push([hi.p!, lo.p!]);
    }
    const results = await multiplyMany(batcher, ctx, gate, products);
    const next: { g: Uint8Array; p?: Uint8Array }[] = [];
    let k = 0;
    for (let j = 0; j < pairCount; j++) {
      const hi = nodes[2 * j + 1]!;
      const g = frVecAdd(hi.g, results[k++]!);
      next.push(j > 0 ? { g, p: results[k++]! } : { g });
    }
    if (nodes.length % 2 === 1) next.push(nodes[nodes.length - 1]!);
    nodes = next;
  }
  return nodes[0]!.g;
}

/** Π_i (r_i == c_i) over the m bits: the AND tree. */
async function allBitsEqual(batcher: RoundBatcher, ctx: PartyContext, gate: number, c: Uint8Array, masks: Masks): Promise<Uint8Array> {
  const m = masks.m;
  const pairs = await masks.pairs;
  let nodes: Uint8Array[] = [];
  for (let j = 0; 2 * j < m; j++) {
    nodes.push(2 * j + 1 < m ? firstLevelPair(masks, pairs, c, j, false, true).p! : firstLevelLeaf(masks, c, 2 * j, false, true).p!);
  }
  while (nodes.length > 1) {
    const pairs: [Uint8Array, Uint8Array][] = [];
    for (let j = 0; 2 * j + 1 < nodes.length; j++) pairs.push([nodes[2 * j + 1]!, nodes[2 * j]!]);
    const results = await multiplyMany(batcher, ctx, gate, pairs);
    if (nodes.length % 2 === 1) results.push(nodes[nodes.length - 1]!);
    nodes = results;
  }
  return nodes[0]!;
}

/** Opens 2^offsetBits + a + 2^m·r'' + r' (the statistically masked value). */
function openMasked(batcher: RoundBatcher, ctx: PartyContext, gate: number, a: Uint8Array, masks: Masks, offsetBits: number, what: string): Promise<Uint8Array> {
  const masked = frVecAdd(frVecAdd(frVecAddConst(a, TWO_POWERS[offsetBits]!), frVecScale(masks.high, TWO_POWERS[masks.m]!)), masks.rPrime);
  return openShares(batcher, ctx, gate, masked, { describe: (i) => `the masked ${what} operand ${i} of gate ${gate}` });
}

function checkWidth(k: number, what: string): void {
  if (!Number.isSafeInteger(k) || k < 1 || k + KAPPA + 8 > 253) throw new ConsortError("INTERNAL", `${what} of width ${k} exceeds the masking bound`);
}

/** [a < 0] for k-bit a (masks: m = k - 1 bits with pairs; none for k = 1). */
export async function lessThanZero(batcher: RoundBatcher, ctx: PartyContext, gate: number, a: Uint8Array, k: number, masks: Masks | undefined): Promise<Uint8Array> {
  checkWidth(k, "comparison");
  // int(1) holds -1 and 0 only: a < 0 iff a = -1, so [a < 0] = -a.
  if (k === 1) return frVecNeg(a);
  const m = k - 1;
  if (masks === undefined || masks.m !== m) throw new ConsortError("INTERNAL", `comparison of width ${k} needs ${m}-bit masks`);
  const c = await openMasked(batcher, ctx, gate, a, masks, k - 1, "comparison");
  const below = await bitLessThan(batcher, ctx, gate, c, masks);
  // a' = c' - r' + 2^m·[c' < r'] = a mod 2^m; [a < 0] = (a' - a) / 2^m.
  const aMod = frVecAdd(frVecSub(lowBits(c, m), masks.rPrime), frVecScale(below, TWO_POWERS[m]!));
  return frVecScale(frVecSub(aMod, a), fieldInverse(TWO_POWERS[m]!));
}

/** [a == 0] for k-bit a (masks: m = k bits with pairs). */
export async function equalsZero(batcher: RoundBatcher, ctx: PartyContext, gate: number, a: Uint8Array, k: number, masks: Masks): Promise<Uint8Array> {
  checkWidth(k, "equality test");
  if (masks.m !== k) throw new ConsortError("INTERNAL", `equality test of width ${k} needs ${k}-bit masks`);
  // c = a + 2^k + r' + 2^k·r'' (the 2^k keeps c positive); c mod 2^k = (a + r') mod 2^k.
  const c = await openMasked(batcher, ctx, gate, a, masks, k, "equality");
  return allBitsEqual(batcher, ctx, gate, c, masks);
}

/** Probabilistic truncation floor(a / 2^m) + u of k-bit a (masks: m = shift bits, no pairs). */
export async function truncate(batcher: RoundBatcher, ctx: PartyContext, gate: number, a: Uint8Array, k: number, masks: Masks): Promise<Uint8Array> {
  const kk = Math.max(k, masks.m + 1);
  checkWidth(kk, "truncation");
  const m = masks.m;
  const c = await openMasked(batcher, ctx, gate, a, masks, kk - 1, "truncation");
  const aMod = frVecSub(lowBits(c, m), masks.rPrime);
  return frVecScale(frVecSub(a, aMod), fieldInverse(TWO_POWERS[m]!));
}
