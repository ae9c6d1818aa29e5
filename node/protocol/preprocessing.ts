/**
 * Jointly generated randomness, no trusted dealer: everything a program's
 * gates will need is known from the program alone (RandomnessNeeds per
 * gate), so the whole supply is produced up front, in as few rounds as
 * possible, and each gate gets its slice.
 *
 * Kinds (all Shamir sharings of degree t unless said otherwise):
 * - random values (uniform in F_r) and random sharings of zero (degree t,
 *   to re-randomize requester outputs; degree 2t, to mask products that are
 *   opened directly): every party deals ceil(R / (n - t)) random values
 *   (resp. zeros), and the parties apply the (n - t) × n Vandermonde matrix
 *   M[j][i] = (i + 1)^j to the n dealt vectors. Any n - t columns of M form an
 *   invertible Vandermonde matrix, so the n - t outputs are uniform and
 *   independent of the at most t dealings the adversary knows: n - t
 *   randoms per n dealt (I. Damgård and J. B. Nielsen, "Scalable and
 *   unconditionally secure multiparty computation", CRYPTO 2007; the
 *   hyper-invertible matrices of Z. Beerliová-Trubíniová and M. Hirt,
 *   TCC 2008, are the actively secure refinement).
 * - bounded random integers r'' in [0, (t + 1)·2^w) for statistical
 *   masking: parties 0..t each deal a uniform w-bit integer, the sum is
 *   taken. One of the t + 1 dealers is honest, and its uniform w-bit
 *   contribution alone masks (the others only shift the range), which is
 *   what Catrina–de Hoogh's PRandInt needs; no bits are spent on r''.
 * - random bits, two methods, chosen from (n, t) so that all parties agree:
 *   - "xor" (t <= 3): parties 0..t each deal a random bit, and the bits are
 *     XORed, x ⊕ y = x + y − 2xy: t multiplications in ceil(log2(t + 1))
 *     rounds. Uniform and unknown to any t parties (one dealer is honest);
 *     correct for semi-honest dealers (a dealer who shares a non-bit breaks
 *     correctness).
 *   - "square" (t >= 4, where t multiplications per bit cost more than a
 *     square root): I. Damgård, M. Fitzi, E. Kiltz, J. B. Nielsen and
 *     T. Toft, "Unconditionally secure constant-rounds multi-party
 *     computation for equality, comparison, bits and exponentiation", TCC
 *     2006: take a random [r], open r² (masked with a random degree-2t
 *     sharing of zero, so the opened degree-2t polynomial is uniform apart
 *     from its constant term, which is all it reveals), let s be the
 *     canonical square root of r² (the one <= (r_F - 1)/2); then r/s = ±1
 *     uniformly, and b = (r/s + 1)/2 is a uniform bit. One opening round
 *     after the dealing; r² = 0 (probability 2^-250 per bit) aborts.
 *
 * Rounds: 1 (dealing; randoms, zeros and bounded integers are then ready)
 * + 1 (bits by "square" or by "xor" with t = 1) or + 2 ("xor", t = 2, 3).
 * All generation requests are program-wide (gate PROGRAM_GATE, kind "prep").
 */
import { ConsortError } from "../errors.ts";
import { FR_MODULUS } from "../math/field.ts";
import {
  FR_VEC_ELEMENT_BYTES,
  frVecAdd,
  frVecAddConst,
  frVecInvert,
  frVecLinearCombination,
  frVecMul,
  frVecRandom,
  frVecScale,
  frVecShare,
  frVecSqrt,
  frVecSub,
  frVecZeros,
} from "../math/fr-vec.ts";
import type { Rng } from "../math/rng.ts";
import { concatVectors, multiplyMany, splitVector } from "./multiplication.ts";
import { PROGRAM_GATE, type RoundBatcher } from "./round-batcher.ts";
import type { PartyContext } from "./round-network.ts";
import { openShares } from "./share-opening.ts";

/** What one gate needs, in elements. */
export interface RandomnessNeeds {
  readonly randoms: number;
  readonly zerosT: number;
  readonly zeros2t: number;
  readonly bits: number;
  /** One entry per bounded random integer: its width w (each dealer contributes w bits). */
  readonly bounded: readonly number[];
}

export const NO_NEEDS: RandomnessNeeds = Object.freeze({ randoms: 0, zerosT: 0, zeros2t: 0, bits: 0, bounded: Object.freeze([]) });

export type BitMethod = "xor" | "square";

/** The random-bit method for (n, t): "xor" while t <= 3, "square" beyond (see the module comment). */
export function bitMethodFor(parties: number, threshold: number): BitMethod {
  void parties;
  return threshold <= 3 ? "xor" : "square";
}

/** The sum of several needs. */
export function addNeeds(all: readonly RandomnessNeeds[]): RandomnessNeeds {
  let randoms = 0;
  let zerosT = 0;
  let zeros2t = 0;
  let bits = 0;
  const bounded: number[] = [];
  for (const n of all) {
    randoms += n.randoms;
    zerosT += n.zerosT;
    zeros2t += n.zeros2t;
    bits += n.bits;
    for (const w of n.bounded) bounded.push(w);
  }
  return { randoms, zerosT, zeros2t, bits, bounded };
}

/** A gate's slices of the program's randomness (each a packed vector of shares). */
export interface GateRandomness {
  readonly randoms: Promise<Uint8Array>;
  readonly zerosT: Promise<Uint8Array>;
  readonly zeros2t: Promise<Uint8Array>;
  readonly bits: Promise<Uint8Array>;
  readonly bounded: Promise<Uint8Array>;
}

/** `count` packed uniform bits (0 or 1). */
export function randomBitVector(count: number, rng: Rng): Uint8Array {
  const out = new Uint8Array(count * FR_VEC_ELEMENT_BYTES);
  if (count === 0) return out;
  const bytes = rng(Math.ceil(count / 8));
  for (let i = 0; i < count; i++) out[i * FR_VEC_ELEMENT_BYTES] = (bytes[i >> 3]! >> (i & 7)) & 1;
  return out;
}

/** One packed uniform integer in [0, 2^w) per entry of `widths` (w <= 248, so always canonical). */
export function randomBoundedVector(widths: readonly number[], rng: Rng): Uint8Array {
  const out = new Uint8Array(widths.length * FR_VEC_ELEMENT_BYTES);
  let total = 0;
  for (const w of widths) total += Math.ceil(w / 8);
  if (total === 0) return out;
  const bytes = rng(total);
  let offset = 0;
  for (let e = 0; e < widths.length; e++) {
    const w = widths[e]!;
    if (w > 248) throw new ConsortError("INTERNAL", `bounded random of ${w} bits requested; at most 248 fit below r`);
    const whole = w >> 3;
    const base = e * FR_VEC_ELEMENT_BYTES;
    for (let b = 0; b < whole; b++) out[base + b] = bytes[offset + b]!;
    if ((w & 7) !== 0) out[base + whole] = bytes[offset + whole]! & ((1 << (w & 7)) - 1);
    offset += Math.ceil(w / 8);
  }
  return out;
}

/** Vandermonde rows M[j][i] = (i + 1)^j, j < n - t (cached per (n, t)). */
const vandermondeCache = new Map<string, readonly (readonly bigint[])[]>();
export function extractionMatrix(parties: number, threshold: number): readonly (readonly bigint[])[] {
  const key = `${parties}/${threshold}`;
  let m = vandermondeCache.get(key);
  if (m === undefined) {
    const rows: bigint[][] = [];
    for (let j = 0; j < parties - threshold; j++) {
      rows.push(Array.from({ length: parties }, (_, i) => powMod(BigInt(i + 1), BigInt(j))));
    }
    m = Object.freeze(rows.map((r) => Object.freeze(r)));
    vandermondeCache.set(key, m);
  }
  return m;
}

function powMod(b: bigint, e: bigint): bigint {
  let result = 1n;
  let base = b % FR_MODULUS;
  while (e > 0n) {
    if (e & 1n) result = (result * base) % FR_MODULUS;
    base = (base * base) % FR_MODULUS;
    e >>= 1n;
  }
  return result;
}

/** Applies the extraction matrix to the n dealt vectors (each `per` elements) and keeps the first `count` outputs. */
function extract(dealt: readonly Uint8Array[], parties: number, threshold: number, count: number): Uint8Array {
  if (count === 0) return new Uint8Array(0);
  const rows = extractionMatrix(parties, threshold);
  const outputs = rows.map((row) => frVecLinearCombination(dealt, row));
  const all = concatVectors(outputs);
  return all.subarray(0, count * FR_VEC_ELEMENT_BYTES);
}

interface Slice {
  readonly offset: number;
  readonly count: number;
}

/**
 * The program's randomness for one run: start() files the generation
 * requests (they travel in the first rounds, merged with whatever else the
 * program can do then); forGate(g) hands gate g its slices.
 */
export class Preprocessing {
  readonly #batcher: RoundBatcher;
  readonly #ctx: PartyContext;
  readonly #method: BitMethod;
  readonly #total: RandomnessNeeds;
  readonly #slices = new Map<number, { randoms: Slice; zerosT: Slice; zeros2t: Slice; bits: Slice; bounded: Slice }>();
  #pools: { randoms: Promise<Uint8Array>; zerosT: Promise<Uint8Array>; zeros2t: Promise<Uint8Array>; bits: Promise<Uint8Array>; bounded: Promise<Uint8Array> } | undefined;

  constructor(batcher: RoundBatcher, ctx: PartyContext, needsByGate: ReadonlyMap<number, RandomnessNeeds>, method: BitMethod = bitMethodFor(ctx.parties, ctx.threshold)) {
    this.#batcher = batcher;
    this.#ctx = ctx;
    this.#method = method;
    const offsets = { randoms: 0, zerosT: 0, zeros2t: 0, bits: 0, bounded: 0 };
    const gates = [...needsByGate.keys()].sort((a, b) => a - b);
    for (const g of gates) {
      const n = needsByGate.get(g)!;
      const take = (kind: keyof typeof offsets, count: number): Slice => {
        const s = { offset: offsets[kind], count };
        offsets[kind] += count;
        return s;
      };
      this.#slices.set(g, {
        randoms: take("randoms", n.randoms),
        zerosT: take("zerosT", n.zerosT),
        zeros2t: take("zeros2t", n.zeros2t),
        bits: take("bits", n.bits),
        bounded: take("bounded", n.bounded.length),
      });
    }
    this.#total = addNeeds(gates.map((g) => needsByGate.get(g)!));
  }

  /** The totals this run generates. */
  get total(): RandomnessNeeds {
    return this.#total;
  }

  /** Files the generation requests (idempotent). */
  start(): void {
    if (this.#pools !== undefined) return;
    const dealing = this.#deal();
    // Handled here; the pools re-expose failures to the gates that await them.
    dealing.catch(() => undefined);
    const bits = dealing.then((d) => this.#bits(d));
    bits.catch(() => undefined);
    this.#pools = {
      randoms: dealing.then((d) => d.randoms),
      zerosT: dealing.then((d) => d.zerosT),
      zeros2t: dealing.then((d) => d.zeros2t),
      bits,
      bounded: dealing.then((d) => d.bounded),
    };
    for (const p of Object.values(this.#pools)) p.catch(() => undefined);
  }

  /** Gate g's slices (views into the pools). */
  forGate(gate: number): GateRandomness {
    this.start();
    const s = this.#slices.get(gate);
    if (s === undefined) throw new ConsortError("INTERNAL", `gate ${gate} asked for randomness it did not declare`);
    const pools = this.#pools!;
    const view = (pool: Promise<Uint8Array>, slice: Slice): Promise<Uint8Array> =>
      pool.then((v) => v.subarray(slice.offset * FR_VEC_ELEMENT_BYTES, (slice.offset + slice.count) * FR_VEC_ELEMENT_BYTES));
    return {
      randoms: view(pools.randoms, s.randoms),
      zerosT: view(pools.zerosT, s.zerosT),
      zeros2t: view(pools.zeros2t, s.zeros2t),
      bits: view(pools.bits, s.bits),
      bounded: view(pools.bounded, s.bounded),
    };
  }

  /** Round 1: every dealing of the program in one request. */
  async #deal(): Promise<{ randoms: Uint8Array; zerosT: Uint8Array; zeros2t: Uint8Array; bits: Uint8Array | readonly Uint8Array[]; bounded: Uint8Array }> {
    const { parties: n, threshold: t, self, rng } = this.#ctx;
    const total = this.#total;
    const squareBits = this.#method === "square" ? total.bits : 0;
    const xorBits = this.#method === "xor" ? total.bits : 0;
    const perDealer = (count: number): number => Math.ceil(count / (n - t));
    // Vandermonde-extracted kinds: every party deals; the square method needs a random r and a degree-2t zero per bit.
    const randomCount = perDealer(total.randoms + squareBits);
    const zeroTCount = perDealer(total.zerosT);
    const zero2tCount = perDealer(total.zeros2t + squareBits);
    // Summed kinds: parties 0..t deal.
    const dealers = t + 1;
    const isDealer = self < dealers;
    const boundedCount = total.bounded.length;

    const empty = 0 === randomCount + zeroTCount + zero2tCount + (xorBits + boundedCount) * dealers;
    if (empty) {
      const none = new Uint8Array(0);
      return { randoms: none, zerosT: none, zeros2t: none, bits: none, bounded: none };
    }

    const parts: Uint8Array[][] = []; // parts[k][j]: the k-th dealing's shares for party j
    const share = (secrets: Uint8Array, degree: number): void => {
      if (secrets.length > 0) parts.push(frVecShare(secrets, { threshold: degree, parties: n }, rng));
    };
    share(frVecRandom(randomCount, rng), t);
    share(frVecZeros(zeroTCount), t);
    share(frVecZeros(zero2tCount), 2 * t);
    if (isDealer) {
      share(randomBitVector(xorBits, rng), t);
      share(randomBoundedVector(total.bounded, rng), t);
    }
    const send = Array.from({ length: n }, (_, j) => concatVectors(parts.map((p) => p[j]!)));
    const fromEach = (j: number): number => randomCount + zeroTCount + zero2tCount + (j < dealers ? xorBits + boundedCount : 0);
    const received = await this.#batcher.request({
      gate: PROGRAM_GATE,
      kind: "prep",
      send,
      expect: Array.from({ length: n }, (_, j) => fromEach(j)),
    });

    // Cut every party's message into its dealings.
    const B = FR_VEC_ELEMENT_BYTES;
    const pieces = received.map((v, j) =>
      splitVector(v, [randomCount * B, zeroTCount * B, zero2tCount * B, ...(j < dealers ? [xorBits * B, boundedCount * B] : [])]),
    );
    const column = (k: number): Uint8Array[] => pieces.map((p) => p[k]!);
    const randoms = extract(column(0), n, t, total.randoms + squareBits);
    const zerosT = extract(column(1), n, t, total.zerosT);
    const zeros2t = extract(column(2), n, t, total.zeros2t + squareBits);
    const dealerColumn = (k: number): Uint8Array[] => pieces.slice(0, dealers).map((p) => p[k]!);
    let bounded: Uint8Array = new Uint8Array(0);
    if (boundedCount > 0) {
      const contributions = dealerColumn(4);
      bounded = contributions.reduce((acc, v) => frVecAdd(acc, v));
    }
    const B0 = total.randoms * B;
    const Z0 = total.zeros2t * B;
    return {
      randoms: randoms.subarray(0, B0),
      zerosT,
      zeros2t: zeros2t.subarray(0, Z0),
      bits:
        this.#method === "square"
          ? concatVectors([randoms.subarray(B0), zeros2t.subarray(Z0)])
          : xorBits > 0
            ? dealerColumn(3)
            : new Uint8Array(0),
      bounded,
    };
  }

  /** Rounds 2+: the random bits. */
  async #bits(dealt: { bits: Uint8Array | readonly Uint8Array[] }): Promise<Uint8Array> {
    const count = this.#total.bits;
    if (count === 0) return new Uint8Array(0);
    if (this.#method === "square") {
      const both = dealt.bits as Uint8Array;
      const half = count * FR_VEC_ELEMENT_BYTES;
      return this.#squareBits(both.subarray(0, half), both.subarray(half));
    }
    return this.#xorBits(dealt.bits as readonly Uint8Array[]);
  }

  /** XOR of the dealers' bits, pairwise per level: x ⊕ y = x + y − 2xy. */
  async #xorBits(contributions: readonly Uint8Array[]): Promise<Uint8Array> {
    let level = [...contributions];
    while (level.length > 1) {
      const pairs: [Uint8Array, Uint8Array][] = [];
      for (let i = 0; i + 1 < level.length; i += 2) pairs.push([level[i]!, level[i + 1]!]);
      const products = await multiplyMany(this.#batcher, this.#ctx, PROGRAM_GATE, pairs);
      const next: Uint8Array[] = pairs.map(([x, y], i) => frVecSub(frVecAdd(x, y), frVecScale(products[i]!, 2n)));
      if (level.length % 2 === 1) next.push(level[level.length - 1]!);
      level = next;
    }
    return level[0]!;
  }

  /** Damgård et al.: b = (r / sqrt(r²) + 1) / 2, r² opened with a degree-2t zero mask. */
  async #squareBits(r: Uint8Array, zero2t: Uint8Array): Promise<Uint8Array> {
    const masked = frVecAdd(frVecMul(r, r), zero2t);
    const squares = await openShares(this.#batcher, this.#ctx, PROGRAM_GATE, masked, {
      degree: 2 * this.#ctx.threshold,
      kind: "prep",
      describe: (i) => `the square of random value ${i} (random-bit generation)`,
    });
    let inverseRoots: Uint8Array;
    try {
      inverseRoots = frVecInvert(frVecSqrt(squares));
    } catch (cause) {
      // A zero square (probability 2^-250 per bit) or, from faulty shares, a non-residue.
      throw new ConsortError("PROTOCOL_ABORTED", "random-bit generation opened a zero or a non-square; the run must be repeated", { cause });
    }
    const HALF = (FR_MODULUS + 1n) / 2n;
    return frVecScale(frVecAddConst(frVecMul(r, inverseRoots), 1n), HALF);
  }
}
