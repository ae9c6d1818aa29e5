import { readFileSync } from "node:fs";
import { randomBytes } from "@noble/hashes/utils.js";
import { expect } from "chai";
import fc from "fast-check";
import { ConsortError } from "../../node/errors.ts";
import { encodeFieldVector } from "../../node/math/field.ts";
import * as wasm from "../../node/math/fr-vec.ts";
import * as reference from "../../node/math/fr-vec-reference.ts";
import type { Rng } from "../../node/math/rng.ts";
import { deterministicRng } from "../../node/math/rng.ts";
import { FR_WASM_BINARY_PATH, assembleFrWasm, renderFrWasmBinaryModule } from "../../scripts/build-fr-wasm.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

// Independent oracle for the algebraic properties: plain BigInt arithmetic.
const R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
const HALF = (R - 1n) / 2n;
const mod = (a: bigint): bigint => ((a % R) + R) % R;
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** Little-endian 32-byte encoding of any value < 2^256 (also non-canonical ones). */
function le(x: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((x >> BigInt(8 * i)) & 0xffn);
  return out;
}
const pack = (xs: readonly bigint[]): Uint8Array => wasm.frVecFromBigints(xs);
const unpack = (v: Uint8Array): bigint[] => reference.frVecToBigints(v);

/**
 * Values at the edges of every representation the implementation uses: the
 * 64-bit words of the byte form, the 32-bit words of the small-multiple
 * kernels, the 29-bit limbs of the products, and the top of the field.
 */
const SPECIAL: readonly bigint[] = [
  0n,
  1n,
  2n,
  R - 1n,
  R - 2n,
  HALF,
  HALF + 1n,
  (1n << 253n) - 1n,
  1n << 253n,
  R - (1n << 64n),
  ...[64n, 128n, 192n].flatMap((k) => [(1n << k) - 1n, 1n << k]),
  ...[29n, 58n, 116n, 232n].flatMap((k) => [(1n << k) - 1n, 1n << k, (1n << k) + 1n]),
  ...[32n, 96n, 224n].map((k) => (1n << k) - 1n),
];
/** Non-canonical encodings: r and above, up to the top of the 256-bit encoding. */
const NON_CANONICAL: readonly bigint[] = [R, R + 1n, (R & ~((1n << 224n) - 1n)) + (1n << 224n), 1n << 254n, (1n << 255n) - 1n, 1n << 255n, (1n << 256n) - 1n];

const element = fc.oneof({ arbitrary: fc.constantFrom(...SPECIAL), weight: 1 }, { arbitrary: fc.bigInt({ min: 0n, max: R - 1n }), weight: 2 });
const vector = (maxLength = 24): fc.Arbitrary<bigint[]> => fc.array(element, { maxLength });
const pair = fc.integer({ min: 0, max: 24 }).chain((n) => fc.tuple(fc.array(element, { minLength: n, maxLength: n }), fc.array(element, { minLength: n, maxLength: n })));
/** Any bigint constant: reduced mod r by scale / addConst / linearCombination. */
const constant = fc.oneof(element, fc.bigInt({ min: -(1n << 300n), max: 1n << 300n }), fc.constantFrom(-1n, -3n, R, 2n * R + 5n));
const seed = fc.uint8Array({ minLength: 1, maxLength: 16 });

/** Runs `f` on both implementations and expects the same bytes / value / error (code and details). */
function same(f: (api: typeof wasm) => unknown): void {
  const outcome = (api: typeof wasm): unknown => {
    try {
      const value = f(api);
      if (value instanceof Uint8Array) return { bytes: hex(value) };
      if (Array.isArray(value)) return { list: value.map((v) => (v instanceof Uint8Array ? hex(v) : String(v))) };
      return { value: String(value) };
    } catch (error) {
      if (!(error instanceof ConsortError)) throw error;
      return { code: error.code, details: error.details };
    }
  };
  expect(outcome(wasm)).to.deep.equal(outcome(reference as unknown as typeof wasm));
}

/** All subsets of {0..n-1} with at least `min` elements, ascending. */
function subsets(n: number, min: number): number[][] {
  const out: number[][] = [];
  for (let mask = 0; mask < 1 << n; mask++) {
    const s = [...Array(n).keys()].filter((i) => mask & (1 << i));
    if (s.length >= min) out.push(s);
  }
  return out;
}

/** Keeps only the parties in `keep` (others undefined). */
const only = (shares: readonly Uint8Array[], keep: readonly number[]): (Uint8Array | undefined)[] =>
  shares.map((v, i) => (keep.includes(i) ? v : undefined));

/** Flips one bit of element `index` of a copy of v, keeping it canonical (the value changes by ±1 in its lowest bit). */
function corrupt(v: Uint8Array, index: number): Uint8Array {
  const out = v.slice();
  out[32 * index]! ^= 1;
  return out;
}

const SIZES = [3, 5, 7].map((n) => ({ n, t: Math.floor((n - 1) / 2) }));
const RUNS = { seed: 42, numRuns: 60 };

describe("math/fr-vec", () => {
  describe("the WebAssembly binary", () => {
    it("is exactly what scripts/build-fr-wasm.ts assembles from fr-wasm.wat", async () => {
      const rendered = renderFrWasmBinaryModule(await assembleFrWasm());
      expect(readFileSync(FR_WASM_BINARY_PATH, "utf8")).to.equal(rendered);
    });
  });

  describe("agrees with the bigint reference implementation", () => {
    it("add, sub, mul, dot on random vectors with edge values", () => {
      fc.assert(
        fc.property(pair, ([xs, ys]) => {
          const a = pack(xs);
          const b = pack(ys);
          for (const f of [wasm.frVecAdd, wasm.frVecSub, wasm.frVecMul]) expect(hex(f(a, b))).to.equal(hex(reference[f.name as "frVecAdd"](a, b)));
          same((api) => api.frVecDot(a, b));
          // and with the plain oracle
          expect(unpack(wasm.frVecMul(a, b))).to.deep.equal(xs.map((x, i) => mod(x * ys[i]!)));
          expect(unpack(wasm.frVecSub(a, b))).to.deep.equal(xs.map((x, i) => mod(x - ys[i]!)));
        }),
        RUNS,
      );
    });

    it("every pair of edge values, element by element", () => {
      const xs = SPECIAL.flatMap((x) => SPECIAL.map(() => x));
      const ys = SPECIAL.flatMap(() => SPECIAL);
      const a = pack(xs);
      const b = pack(ys);
      for (const op of ["frVecAdd", "frVecSub", "frVecMul", "frVecDot"] as const) same((api) => api[op](a, b));
      for (const op of ["frVecNeg", "frVecSquare", "frVecSum"] as const) same((api) => api[op](a));
      expect(unpack(wasm.frVecMul(a, b))).to.deep.equal(xs.map((x, i) => mod(x * ys[i]!)));
    });

    it("neg, square, sum, scale, addConst", () => {
      fc.assert(
        fc.property(vector(), constant, (xs, c) => {
          const a = pack(xs);
          same((api) => api.frVecNeg(a));
          same((api) => api.frVecSquare(a));
          same((api) => api.frVecSum(a));
          same((api) => api.frVecScale(a, c));
          same((api) => api.frVecAddConst(a, c));
          expect(unpack(wasm.frVecScale(a, c))).to.deep.equal(xs.map((x) => mod(x * c)));
        }),
        RUNS,
      );
    });

    it("linearCombination with small, rational-looking and large coefficients", () => {
      const coefficient = fc.oneof(fc.bigInt({ min: -40n, max: 40n }), constant, fc.constantFrom(1n << 29n, -(1n << 29n), (1n << 29n) + 1n));
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 9 }),
          fc.integer({ min: 0, max: 12 }),
          fc.infiniteStream(element),
          fc.array(coefficient, { minLength: 9, maxLength: 9 }),
          (k, n, stream, cs) => {
            const it = stream[Symbol.iterator]();
            const vs = Array.from({ length: k }, () => pack(Array.from({ length: n }, () => it.next().value as bigint)));
            const coefficients = cs.slice(0, k);
            same((api) => api.frVecLinearCombination(vs, coefficients));
            const expected = Array.from({ length: n }, (_, i) => mod(vs.reduce((acc, v, j) => acc + coefficients[j]! * unpack(v)[i]!, 0n)));
            expect(unpack(wasm.frVecLinearCombination(vs, coefficients))).to.deep.equal(expected);
          },
        ),
        RUNS,
      );
    });

    it("linearCombination at the small-coefficient budget (Σ|c| = 2^29) and beyond it, and with more than 128 terms", () => {
      const rng = deterministicRng("fr-vec/lincomb-budget");
      const vs = Array.from({ length: 3 }, () => wasm.frVecRandom(10, rng));
      const extremes = [pack(Array(10).fill(R - 1n)), pack(Array(10).fill(0n)), pack(Array(10).fill(HALF))];
      for (const set of [vs, extremes]) {
        for (const cs of [
          [1n << 28n, -(1n << 27n), -(1n << 27n)],
          [(1n << 28n) + 1n, -(1n << 27n), -(1n << 27n)],
          [-(1n << 29n), 0n, 0n],
          [R - 1n, R - 1n, R - 1n],
        ]) {
          same((api) => api.frVecLinearCombination(set, cs));
        }
      }
      const many = Array.from({ length: 300 }, (_, j) => vs[j % 3]!);
      const large = Array.from({ length: 300 }, (_, j) => mod((BigInt(j) << 200n) - 17n));
      const small = Array.from({ length: 300 }, (_, j) => BigInt((j % 7) - 3));
      same((api) => api.frVecLinearCombination(many, large));
      same((api) => api.frVecLinearCombination(many, small));
    });

    it("invert, sqrt and powConst", () => {
      const exponent = fc.oneof(fc.constantFrom(0n, 1n, 2n, 3n, R - 1n, R - 2n, R, HALF, (R + 1n) / 4n, 1n << 300n), fc.bigInt({ min: 0n, max: 1n << 260n }));
      fc.assert(
        fc.property(vector(12), exponent, (xs, e) => {
          const a = pack(xs);
          same((api) => api.frVecInvert(a));
          same((api) => api.frVecSqrt(a));
          same((api) => api.frVecSqrt(wasm.frVecSquare(a)));
          same((api) => api.frVecPowConst(a, e));
        }),
        { seed: 42, numRuns: 25 },
      );
    });

    it("random, share and reconstruct draw the same values from the same rng stream", () => {
      fc.assert(
        fc.property(seed, vector(16), fc.constantFrom(...SIZES, { n: 2, t: 1 }, { n: 4, t: 3 }), (s, xs, { n, t }) => {
          const [r1, r2] = [deterministicRng(s), deterministicRng(s)];
          expect(hex(wasm.frVecRandom(xs.length, r1))).to.equal(hex(reference.frVecRandom(xs.length, r2)));
          const secrets = pack(xs);
          const shares = wasm.frVecShare(secrets, { threshold: t, parties: n }, r1);
          expect(shares.map(hex)).to.deep.equal(reference.frVecShare(secrets, { threshold: t, parties: n }, r2).map(hex));
          // both consumed exactly the same bytes
          expect(hex(r1(64))).to.equal(hex(r2(64)));
          for (const keep of subsets(n, t + 1).filter((_, i) => i % 3 === 0)) same((api) => api.frVecReconstruct(only(shares, keep), t));
        }),
        { seed: 42, numRuns: 40 },
      );
    });

    it("conversions, concat, slice, zeros, check and length", () => {
      fc.assert(
        fc.property(vector(), vector(), fc.nat(30), fc.nat(30), (xs, ys, s, e) => {
          const a = pack(xs);
          expect(hex(a)).to.equal(hex(reference.frVecFromBigints(xs)));
          expect(wasm.frVecToBigints(a)).to.deep.equal(xs);
          expect(wasm.frVecLength(a)).to.equal(xs.length);
          same((api) => api.frVecConcat([a, pack(ys), a]));
          same((api) => api.frVecSlice(a, s, e));
          same((api) => api.frVecSlice(a, Math.min(s, xs.length)));
          same((api) => api.frVecZeros(s));
          same(() => wasm.frVecCheck(a, "a", e));
          // From the big-endian wire format of shares (encodeFieldVector), unaligned as it arrives.
          const wire = new Uint8Array(xs.length * 32 + 1).subarray(1);
          wire.set(encodeFieldVector(xs));
          expect(hex(wasm.frVecFromBigEndian(wire, "wire", xs.length))).to.equal(hex(a));
          same((api) => api.frVecFromBigEndian(wire, "wire"));
        }),
        RUNS,
      );
    });

    it("vectors longer than one kernel chunk (4096 elements) and dot products over many 128-element batches", () => {
      const rng = deterministicRng("fr-vec/long");
      const n = 2 * 4096 + 300;
      const a = reference.frVecRandom(n, rng);
      const b = reference.frVecRandom(n, rng);
      const c = reference.frVecRandom(n, rng);
      for (const op of ["frVecAdd", "frVecMul", "frVecDot"] as const) same((api) => api[op](a, b));
      same((api) => api.frVecSum(a));
      same((api) => api.frVecLinearCombination([a, b, c], [5n, R - 7n, 1n << 100n]));
      same((api) => api.frVecLinearCombination([a, b, c], [3n, -3n, 1n]));
      same((api) => api.frVecInvert(a));
      const [r1, r2] = [deterministicRng("fr-vec/long-share"), deterministicRng("fr-vec/long-share")];
      const shares = wasm.frVecShare(a, { threshold: 2, parties: 5 }, r1);
      expect(shares.map(hex)).to.deep.equal(reference.frVecShare(a, { threshold: 2, parties: 5 }, r2).map(hex));
      expect(hex(wasm.frVecReconstruct(shares, 2))).to.equal(hex(a));
      const bad = shares.slice();
      bad[4] = corrupt(shares[4]!, n - 3);
      same((api) => api.frVecReconstruct(bad, 2));
    });
  });

  describe("validation", () => {
    const good = pack([1n, 2n, 3n, 4n]);
    const withBadAt = (index: number, value: bigint): Uint8Array => {
      const v = good.slice();
      v.set(le(value), 32 * index);
      return v;
    };

    it("rejects non-canonical elements (>= r) in every vector argument, naming the argument and the first bad index", () => {
      for (const value of NON_CANONICAL) {
        const bad = withBadAt(2, value);
        const calls: [string, (v: Uint8Array) => unknown][] = [
          ["a", (v) => wasm.frVecAdd(v, good)],
          ["b", (v) => wasm.frVecSub(good, v)],
          ["b", (v) => wasm.frVecMul(good, v)],
          ["a", (v) => wasm.frVecNeg(v)],
          ["a", (v) => wasm.frVecSquare(v)],
          ["a", (v) => wasm.frVecScale(v, 3n)],
          ["a", (v) => wasm.frVecAddConst(v, 3n)],
          ["a", (v) => wasm.frVecSum(v)],
          ["b", (v) => wasm.frVecDot(good, v)],
          ["a", (v) => wasm.frVecInvert(v)],
          ["a", (v) => wasm.frVecSqrt(v)],
          ["a", (v) => wasm.frVecPowConst(v, 5n)],
          ["vectors[1]", (v) => wasm.frVecLinearCombination([good, v], [1n, 2n])],
          ["vs[1]", (v) => wasm.frVecConcat([good, v])],
          ["vector", (v) => wasm.frVecToBigints(v)],
          ["vector", (v) => wasm.frVecSlice(v, 0, 1)],
          ["secrets", (v) => wasm.frVecShare(v, { threshold: 1, parties: 3 }, deterministicRng("x"))],
          ["shares", (v) => wasm.frVecCheck(v, "shares")],
        ];
        for (const [argument, call] of calls) {
          const error = expectCode(() => call(bad), "MATH_INVALID_ARGUMENT");
          expect(error.details, `${argument} ${value}`).to.include({ argument, index: 2 });
        }
        const share = expectCode(() => wasm.frVecReconstruct([good, undefined, bad], 1), "MATH_INVALID_ARGUMENT");
        expect(share.details).to.include({ partyIndex: 2, index: 2 });
      }
      // the first bad element is named, also beyond the first 32-bit word comparison
      const twoBad = withBadAt(3, R);
      twoBad.set(le(R + 5n), 32);
      expect(expectCode(() => wasm.frVecNeg(twoBad), "MATH_INVALID_ARGUMENT").details).to.include({ index: 1 });
      // r - 1 just below the boundary is accepted
      expect(() => wasm.frVecNeg(withBadAt(0, R - 1n))).not.to.throw();
    });

    it("rejects wrong byte lengths, non-byte arguments, length mismatches, bad constants and bad counts", () => {
      expect(expectCode(() => wasm.frVecAdd(good.subarray(0, 33), good), "MATH_INVALID_ARGUMENT").details).to.include({ argument: "a", length: 33 });
      expect(expectCode(() => wasm.frVecLength(new Uint8Array(31)), "MATH_INVALID_ARGUMENT").details).to.include({ length: 31 });
      expectCode(() => wasm.frVecNeg([1, 2, 3] as unknown as Uint8Array), "MATH_INVALID_ARGUMENT");
      expect(expectCode(() => wasm.frVecMul(good, good.subarray(0, 64)), "MATH_INVALID_ARGUMENT").details).to.include({ argument: "b", got: 2, expected: 4 });
      expectCode(() => wasm.frVecScale(good, 3 as unknown as bigint), "MATH_INVALID_ARGUMENT");
      expectCode(() => wasm.frVecPowConst(good, -1n), "MATH_INVALID_ARGUMENT");
      expectCode(() => wasm.frVecRandom(-1, deterministicRng("x")), "MATH_INVALID_ARGUMENT");
      expectCode(() => wasm.frVecZeros(1.5), "MATH_INVALID_ARGUMENT");
      expectCode(() => wasm.frVecSlice(good, 3, 2), "MATH_INVALID_ARGUMENT");
      expectCode(() => wasm.frVecSlice(good, 0, 5), "MATH_INVALID_ARGUMENT");
      expectCode(() => wasm.frVecLinearCombination([], []), "MATH_INVALID_ARGUMENT");
      expectCode(() => wasm.frVecLinearCombination([good], [1n, 2n]), "MATH_INVALID_ARGUMENT");
      expect(expectCode(() => wasm.frVecFromBigints([1n, R]), "MATH_INVALID_ARGUMENT").details).to.include({ index: 1 });
      const bigEndianR = new Uint8Array(64);
      bigEndianR.set(encodeFieldVector([R - 1n]), 0);
      for (let j = 0; j < 32; j++) bigEndianR[32 + j] = Number((R >> BigInt(8 * (31 - j))) & 0xffn);
      expect(expectCode(() => wasm.frVecFromBigEndian(bigEndianR, "share"), "MATH_INVALID_ARGUMENT").details).to.include({ index: 1 });
      expect(expectCode(() => wasm.frVecFromBigEndian(bigEndianR, "share", 3), "MATH_INVALID_ARGUMENT").details).to.include({ got: 2, expected: 3 });
      expectCode(() => wasm.frVecFromBigEndian(new Uint8Array(33), "share"), "MATH_INVALID_ARGUMENT");
      expectCode(() => wasm.frVecCheck(good, "good", 3), "MATH_INVALID_ARGUMENT");
      expectCode(() => wasm.frVecShare(good, { threshold: 0, parties: 3 }, deterministicRng("x")), "MATH_INVALID_ARGUMENT");
      expectCode(() => wasm.frVecReconstruct([good], 1), "MATH_NOT_ENOUGH_SHARES");
      expectCode(() => wasm.frVecReconstruct([good, good], -1), "MATH_INVALID_ARGUMENT");
      expect(expectCode(() => wasm.frVecReconstruct([good, good.subarray(0, 64)], 1), "MATH_INVALID_ARGUMENT").details).to.include({ partyIndex: 1 });
      expectCode(() => wasm.frVecRandom(3, () => new Uint8Array(5)), "MATH_INVALID_ARGUMENT");
    });

    it("the same errors as the reference for every rejected call above", () => {
      const bad = withBadAt(1, R);
      same((api) => api.frVecMul(bad, withBadAt(0, R)));
      same((api) => api.frVecMul(good, good.subarray(0, 96)));
      same((api) => api.frVecLinearCombination([good, bad], [1n, 2n]));
      same((api) => api.frVecReconstruct([good, bad, good], 1));
      same((api) => api.frVecInvert(pack([3n, 0n, 1n, 0n])));
      const wire = encodeFieldVector([1n, 2n, 3n]);
      wire[32] = 0xff;
      same((api) => api.frVecFromBigEndian(wire, "share"));
      same((api) => api.frVecFromBigEndian(wire.subarray(0, 64), "share", 3));
      same((api) => api.frVecFromBigEndian(wire.subarray(0, 40), "share"));
    });
  });

  describe("Shamir sharing (party x = index + 1, Lagrange interpolation at 0)", () => {
    it("every subset of at least t + 1 parties reconstructs, for n = 3, 5, 7", () => {
      const rng = deterministicRng("fr-vec/subsets");
      for (const { n, t } of SIZES) {
        const secrets = pack([0n, 1n, R - 1n, ...unpack(wasm.frVecRandom(5, rng))]);
        const shares = wasm.frVecShare(secrets, { threshold: t, parties: n }, rng);
        expect(shares).to.have.length(n);
        for (const keep of subsets(n, t + 1)) expect(hex(wasm.frVecReconstruct(only(shares, keep), t)), `n=${n} ${keep}`).to.equal(hex(secrets));
        // t shares are not enough
        expectCode(() => wasm.frVecReconstruct(only(shares, [...Array(t).keys()]), t), "MATH_NOT_ENOUGH_SHARES");
      }
    });

    it("shares lie on a degree-t polynomial with the secret at 0 (checked against interpolation by hand)", () => {
      const rng = deterministicRng("fr-vec/shape");
      for (const { n, t } of SIZES) {
        const secrets = wasm.frVecRandom(4, rng);
        const ys = wasm.frVecShare(secrets, { threshold: t, parties: n }, rng).map(unpack);
        for (let k = 0; k < 4; k++) {
          // Lagrange at 0 from the first t + 1 parties, as plain rationals mod r
          let s = 0n;
          for (let j = 0; j <= t; j++) {
            let num = 1n;
            let den = 1n;
            for (let m = 0; m <= t; m++) if (m !== j) [num, den] = [num * BigInt(-(m + 1)), den * BigInt(j - m)];
            s += ys[j]![k]! * mod(num) * modInverse(mod(den));
          }
          expect(mod(s)).to.equal(unpack(secrets)[k]);
        }
      }
    });

    it("a corrupted share is detected whenever at least t + 2 shares are present, and located with t + 3", () => {
      const rng = deterministicRng("fr-vec/corruption");
      for (const { n, t } of SIZES) {
        const secrets = wasm.frVecRandom(6, rng);
        const shares = wasm.frVecShare(secrets, { threshold: t, parties: n }, rng);
        for (const keep of subsets(n, t + 2)) {
          for (const victim of keep) {
            const tampered = shares.slice();
            tampered[victim] = corrupt(shares[victim]!, 4);
            const error = expectCode(() => wasm.frVecReconstruct(only(tampered, keep), t), "MATH_INCONSISTENT_SHARES");
            expect(error.details["index"]).to.equal(4);
            expect(error.details["disagreeingX"]).to.be.an("array").that.is.not.empty;
            if (keep.length >= t + 3) expect(error.details["suspectX"], `n=${n} ${keep} victim ${victim}`).to.equal(victim + 1);
            // details name positions, never values
            expect(JSON.stringify(error.details)).not.to.include(unpack(shares[victim]!)[4]!.toString());
          }
        }
      }
    });

    it("reconstructs a product of two degree-t sharings with degree 2t from 2t + 1 parties (BGW degree reduction)", () => {
      const rng = deterministicRng("fr-vec/bgw");
      for (const { n, t } of SIZES) {
        const a = wasm.frVecRandom(20, rng);
        const b = wasm.frVecRandom(20, rng);
        const sa = wasm.frVecShare(a, { threshold: t, parties: n }, rng);
        const sb = wasm.frVecShare(b, { threshold: t, parties: n }, rng);
        const products = sa.map((v, i) => wasm.frVecMul(v, sb[i]!));
        expect(hex(wasm.frVecReconstruct(products, 2 * t))).to.equal(hex(wasm.frVecMul(a, b)));
        // with only degree t the product shares are (almost surely) inconsistent
        if (n > t + 1) expectCode(() => wasm.frVecReconstruct(products, t), "MATH_INCONSISTENT_SHARES");
      }
    });

    it("the reconstruction is the same for Lagrange sets with integer and with rational coefficients", () => {
      const rng = deterministicRng("fr-vec/rational");
      const secrets = wasm.frVecRandom(30, rng);
      const shares = wasm.frVecShare(secrets, { threshold: 3, parties: 9 }, rng);
      for (const keep of [[0, 1, 2, 3], [1, 4, 6, 8], [0, 2, 5, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1, 0]]) {
        expect(hex(wasm.frVecReconstruct(only(shares, keep), 3))).to.equal(hex(secrets));
      }
    });

    it("many parties: coefficients too large for the small-multiple kernel still reconstruct and check", () => {
      const rng = deterministicRng("fr-vec/many");
      const secrets = wasm.frVecRandom(8, rng);
      const shares = wasm.frVecShare(secrets, { threshold: 20, parties: 45 }, rng);
      expect(hex(wasm.frVecReconstruct(shares, 20))).to.equal(hex(secrets));
      const tampered = shares.slice();
      tampered[44] = corrupt(shares[44]!, 7);
      same((api) => api.frVecReconstruct(tampered, 20));
      // degree 35 from 36 parties: Lagrange numerators up to C(36, 18) > 2^29, the Montgomery kernel
      const wide = wasm.frVecShare(secrets, { threshold: 35, parties: 40 }, rng);
      expect(hex(wasm.frVecReconstruct(only(wide, [...Array(36).keys()]), 35))).to.equal(hex(secrets));
      expect(hex(wasm.frVecReconstruct(only(wide, [...Array(36).keys()].map((i) => i + 4)), 35))).to.equal(hex(secrets));
    });
  });

  describe("square roots", () => {
    it("sqrt(x)^2 = x for squares, and the root is the one <= (r - 1) / 2", () => {
      fc.assert(
        fc.property(vector(10), (xs) => {
          const squares = wasm.frVecSquare(pack(xs));
          const roots = wasm.frVecSqrt(squares);
          expect(hex(wasm.frVecSquare(roots))).to.equal(hex(squares));
          for (const y of unpack(roots)) expect(y <= HALF).to.equal(true);
          expect(unpack(roots)).to.deep.equal(xs.map((x) => (x <= HALF ? x : R - x)));
        }),
        { seed: 42, numRuns: 30 },
      );
    });

    it("rejects non-residues with the index of the first one", () => {
      // 5 is the least non-residue; 5 · (a square) is a non-residue
      const error = expectCode(() => wasm.frVecSqrt(pack([4n, 0n, 9n, mod(5n * 49n), 5n])), "MATH_INVALID_ARGUMENT");
      expect(error.details).to.include({ argument: "a", index: 3 });
      expect(modPow(mod(5n * 49n), HALF)).to.equal(R - 1n);
      expect(unpack(wasm.frVecSqrt(pack([0n, 1n, R - 1n])))).to.deep.equal([0n, 1n, modPow(5n, (R - 1n) / 4n) <= HALF ? modPow(5n, (R - 1n) / 4n) : R - modPow(5n, (R - 1n) / 4n)]);
    });
  });

  describe("randomness", () => {
    it("rejection sampling: little-endian 32-byte blocks, top two bits cleared, values >= r skipped", () => {
      const blocks = [le((1n << 254n) - 1n), le(R), le(R - 1n + (3n << 254n)), le(7n), le(R)];
      const requests: number[] = [];
      let pos = 0;
      const stream = Buffer.concat([...blocks, le(9n)]);
      const rng: Rng = (n) => {
        requests.push(n);
        const out = new Uint8Array(stream.subarray(pos, pos + n));
        pos += n;
        return out;
      };
      expect(unpack(wasm.frVecRandom(3, rng))).to.deep.equal([R - 1n, 7n, 9n]);
      // one block per missing element each round: 3, then 2, then 1; never past the last accepted block
      expect(requests).to.deep.equal([96, 64, 32]);
      expect(pos).to.equal(6 * 32);
    });

    it("asks for at most 65536 bytes at once (Web Crypto's quota), so noble's randomBytes works for long vectors", () => {
      const v = wasm.frVecRandom(10_000, randomBytes);
      expect(wasm.frVecLength(v)).to.equal(10_000);
      const shares = wasm.frVecShare(v, { threshold: 3, parties: 7 }, randomBytes);
      expect(hex(wasm.frVecReconstruct(shares, 3))).to.equal(hex(v));
    });

    it("an rng that itself uses field vectors does not disturb the call it serves", () => {
      const inner = deterministicRng("fr-vec/inner");
      const outer = deterministicRng("fr-vec/outer");
      const meddling: Rng = (n) => {
        wasm.frVecMul(wasm.frVecRandom(5000, inner), wasm.frVecRandom(5000, inner));
        return outer(n);
      };
      const secrets = pack([1n, 2n, 3n]);
      const shares = wasm.frVecShare(secrets, { threshold: 1, parties: 3 }, meddling);
      expect(shares.map(hex)).to.deep.equal(reference.frVecShare(secrets, { threshold: 1, parties: 3 }, deterministicRng("fr-vec/outer")).map(hex));
    });
  });

  describe("small vectors (JS paths up to FR_VEC_SMALL_LIMITS, the module beyond) agree with the reference", () => {
    const L = wasm.FR_VEC_SMALL_LIMITS;
    /** 0, 1, 2, each limit - 1, limit and limit + 1, and a size well past all of them. */
    const AROUND = [...new Set([0, 1, 2, ...[L.elementwise, L.random, L.products, L.combination].flatMap((l) => [l - 1, l, l + 1]), 3 * L.elementwise + 5])]
      .filter((n) => n >= 0)
      .sort((x, y) => x - y);
    const sized = (n: number): fc.Arbitrary<bigint[]> => fc.array(element, { minLength: n, maxLength: n });
    /** Deterministic edge vectors of length n: cycles through SPECIAL (0, 1, r - 1, limb edges, ...) from `offset` with `step`. */
    const edges = (n: number, offset: number, step: number): bigint[] => Array.from({ length: n }, (_, i) => SPECIAL[(offset + i * step) % SPECIAL.length]!);
    const CONSTANTS = [0n, 1n, 2n, R - 1n, R, R + 1n, -1n, -R, HALF, 1n << 300n, -(1n << 300n)];

    /** Every small-path function on (a, b, c), each compared with the reference (bytes, value or error). */
    function allOps(a: Uint8Array, b: Uint8Array, c: bigint): void {
      same((api) => api.frVecAdd(a, b));
      same((api) => api.frVecSub(a, b));
      same((api) => api.frVecMul(a, b));
      same((api) => api.frVecDot(a, b));
      same((api) => api.frVecNeg(a));
      same((api) => api.frVecSquare(a));
      same((api) => api.frVecSum(a));
      same((api) => api.frVecScale(a, c));
      same((api) => api.frVecAddConst(a, c));
      same((api) => api.frVecLinearCombination([a, b], [c, 2n]));
      same((api) => api.frVecLinearCombination([a], [c]));
    }

    it(`sizes ${AROUND.join(", ")}: seeded random elements (with edge values mixed in) and constants`, () => {
      expect(AROUND).to.include.members([0, 1, 2, L.elementwise + 1]);
      for (const n of AROUND) {
        fc.assert(
          fc.property(sized(n), sized(n), constant, (xs, ys, c) => {
            const [a, b] = [pack(xs), pack(ys)];
            allOps(a, b, c);
            // and with the plain oracle
            expect(unpack(wasm.frVecMul(a, b))).to.deep.equal(xs.map((x, i) => mod(x * ys[i]!)));
            expect(unpack(wasm.frVecSub(a, b))).to.deep.equal(xs.map((x, i) => mod(x - ys[i]!)));
            expect(unpack(wasm.frVecAddConst(a, c))).to.deep.equal(xs.map((x) => mod(x + c)));
            expect(wasm.frVecSum(a)).to.equal(mod(xs.reduce((s, x) => s + x, 0n)));
          }),
          { seed: 42, numRuns: 12 },
        );
      }
    });

    it("edge values (0, 1, r - 1, limb boundaries) in every position, all-zero and all-(r - 1) vectors, edge constants", () => {
      for (const n of AROUND) {
        const vectors = [
          [edges(n, 0, 1), edges(n, 3, 7)],
          [edges(n, 5, 3), edges(n, 0, 1)],
          [Array<bigint>(n).fill(R - 1n), Array<bigint>(n).fill(R - 1n)],
          [Array<bigint>(n).fill(0n), Array<bigint>(n).fill(R - 1n)],
          [Array<bigint>(n).fill(1n), Array<bigint>(n).fill(0n)],
        ];
        for (const [xs, ys] of vectors) for (const c of CONSTANTS) allOps(pack(xs!), pack(ys!), c);
      }
      // one element: every pair of edge values, through the one-element paths
      for (const x of SPECIAL) {
        for (const y of SPECIAL) {
          const [a, b] = [pack([x]), pack([y])];
          for (const op of ["frVecAdd", "frVecSub", "frVecMul", "frVecDot"] as const) same((api) => api[op](a, b));
        }
        for (const op of ["frVecNeg", "frVecSquare", "frVecSum"] as const) same((api) => api[op](pack([x])));
      }
    });

    it("linearCombination around the element and term limits, with small, large, negative, zero and huge coefficients", () => {
      const coefficient = fc.oneof(fc.bigInt({ min: -40n, max: 40n }), constant, fc.constantFrom(0n, 1n, R - 1n, -R, -(1n << 300n)));
      const termCounts = [1, 2, L.terms - 1, L.terms, L.terms + 1];
      const sizes = [0, 1, L.combination, L.combination + 1, L.elementwise + 1];
      const rng = deterministicRng("fr-vec/small-lincomb");
      for (const terms of termCounts) {
        for (const n of sizes) {
          fc.assert(
            fc.property(fc.array(coefficient, { minLength: terms, maxLength: terms }), fc.array(sized(n), { minLength: terms, maxLength: terms }), (cs, rows) => {
              const vs = rows.map(pack);
              same((api) => api.frVecLinearCombination(vs, cs));
              const expected = Array.from({ length: n }, (_, i) => mod(rows.reduce((acc, row, j) => acc + cs[j]! * row[i]!, 0n)));
              expect(unpack(wasm.frVecLinearCombination(vs, cs))).to.deep.equal(expected);
            }),
            { seed: 42, numRuns: 8 },
          );
          // The largest sums Barrett reduction sees: every term (r - 1) · (r - 1); and random rows.
          const top = Array.from({ length: terms }, () => pack(Array<bigint>(n).fill(R - 1n)));
          same((api) => api.frVecLinearCombination(top, Array<bigint>(terms).fill(R - 1n)));
          same((api) => api.frVecLinearCombination(top, Array<bigint>(terms).fill(-1n)));
          const random = Array.from({ length: terms }, () => wasm.frVecRandom(n, rng));
          same((api) => api.frVecLinearCombination(random, random.map((_, j) => (j % 2 === 0 ? R - 1n - BigInt(j) : BigInt(j) - 3n))));
        }
      }
    });

    /**
     * deterministicRng with some 32-byte blocks overwritten by position in
     * the stream (so every implementation sees the same blocks however it
     * splits its requests): 0xff.. (2^254 - 1 after masking) and r are
     * rejected; r - 1 and 0 with the top two bits set are accepted.
     */
    function hostileRng(seed: string, requests: number[] = []): Rng {
      const inner = deterministicRng(seed);
      let block = 0;
      return (n) => {
        requests.push(n);
        const out = inner(n);
        for (let at = 0; at + 32 <= n; at += 32, block++) {
          if (block % 4 === 1) out.fill(0xff, at, at + 32);
          else if (block % 7 === 3) out.set(le(R), at);
          else if (block % 11 === 5) out.set(le(R - 1n + (3n << 254n)), at);
          else if (block % 13 === 0) out.set(le(3n << 254n), at);
        }
        return out;
      };
    }

    it("random: the small path, the module and the reference draw the same elements and ask the rng for the same bytes, rejections included", () => {
      for (const n of AROUND) {
        for (const seed of ["a", "b", "c"]) {
          const mine: number[] = [];
          const theirs: number[] = [];
          const [r1, r2] = [hostileRng(`fr-vec/small-random/${seed}`, mine), hostileRng(`fr-vec/small-random/${seed}`, theirs)];
          expect(hex(wasm.frVecRandom(n, r1)), `n=${n}`).to.equal(hex(reference.frVecRandom(n, r2)));
          expect(mine).to.deep.equal(theirs);
          // both stopped at the same place in the stream
          expect(hex(r1(64))).to.equal(hex(r2(64)));
        }
      }
      // The same stream through the module (one call past the limit), the small path (calls of at most the limit) and the reference.
      const total = 3 * L.random + 7;
      const [r1, r2, r3] = [1, 2, 3].map(() => hostileRng("fr-vec/small-random/split"));
      const viaModule = wasm.frVecRandom(total, r1!);
      const pieces: Uint8Array[] = [];
      for (let left = total; left > 0; left -= Math.min(left, L.random)) pieces.push(wasm.frVecRandom(Math.min(left, L.random), r2!));
      expect(hex(wasm.frVecConcat(pieces))).to.equal(hex(viaModule));
      expect(hex(reference.frVecRandom(total, r3!))).to.equal(hex(viaModule));
      // and the hostile blocks did occur: r - 1 and 0 come only from them here
      const drawn = unpack(viaModule);
      expect(drawn).to.include(R - 1n);
      expect(drawn).to.include(0n);
    });

    it("random: a run of rejected blocks makes the small path ask again for exactly the missing elements", () => {
      // Two rounds of 0xff blocks only (all rejected), then r - 1 with the top bit set (accepted once masked) and small values.
      const scripted = (requests: number[]): Rng => {
        let calls = 0;
        return (n) => {
          requests.push(n);
          calls++;
          if (calls <= 2) return new Uint8Array(n).fill(0xff);
          const out = new Uint8Array(n);
          for (let at = 0; at < n; at += 32) out.set(le(at === 0 ? R - 1n + (1n << 255n) : BigInt(calls * 1000 + at)), at);
          return out;
        };
      };
      const mine: number[] = [];
      const theirs: number[] = [];
      const got = wasm.frVecRandom(3, scripted(mine));
      expect(unpack(got)).to.deep.equal([R - 1n, 3032n, 3064n]);
      expect(mine).to.deep.equal([96, 96, 96]);
      expect(hex(reference.frVecRandom(3, scripted(theirs)))).to.equal(hex(got));
      expect(theirs).to.deep.equal(mine);
    });

    it("random: the rng's output is checked on the small path as on the reference (length and type)", () => {
      const wrong: Rng[] = [
        (n) => new Uint8Array(n - 1),
        (n) => new Uint8Array(n + 32),
        (n) => Array.from({ length: n }, () => 0) as unknown as Uint8Array,
        () => undefined as unknown as Uint8Array,
      ];
      for (const bad of wrong) {
        for (const n of [1, 2, L.random]) {
          const error = expectCode(() => wasm.frVecRandom(n, bad), "MATH_INVALID_ARGUMENT");
          expect(error.details).to.include({ expected: 32 * n });
          same((api) => api.frVecRandom(n, bad));
        }
      }
      // count 0 never calls the rng
      expect(wasm.frVecRandom(0, () => expect.fail("rng called"))).to.have.length(0);
    });

    it("an rng that re-enters the small paths does not disturb the draw it serves", () => {
      const inner = deterministicRng("fr-vec/small-inner");
      const outer = hostileRng("fr-vec/small-outer");
      const meddling: Rng = (n) => {
        const x = wasm.frVecRandom(2, inner);
        wasm.frVecLinearCombination([wasm.frVecMul(x.subarray(0, 32), x.subarray(32)), wasm.frVecAdd(x, x).subarray(0, 32)], [3n, -1n]);
        wasm.frVecSum(wasm.frVecRandom(L.random, inner));
        return outer(n);
      };
      const expected = reference.frVecRandom(L.random, hostileRng("fr-vec/small-outer"));
      expect(hex(wasm.frVecRandom(L.random, meddling))).to.equal(hex(expected));
    });

    it("non-canonical inputs at small sizes: MATH_INVALID_ARGUMENT naming the same argument and first bad index as the reference", () => {
      const rng = deterministicRng("fr-vec/small-bad");
      for (const n of AROUND.filter((k) => k > 0)) {
        const good = wasm.frVecRandom(n, rng);
        for (const index of [...new Set([0, Math.floor(n / 2), n - 1])]) {
          for (const value of [R, R + 1n, (1n << 256n) - 1n]) {
            const bad = good.slice();
            bad.set(le(value), 32 * index);
            const badAlso = good.slice();
            badAlso.set(le(R), 32 * (n - 1));
            const calls: [string, (api: typeof wasm) => unknown][] = [
              ["a", (api) => api.frVecAdd(bad, good)],
              ["b", (api) => api.frVecSub(good, bad)],
              ["a", (api) => api.frVecMul(bad, badAlso)],
              ["b", (api) => api.frVecDot(good, bad)],
              ["a", (api) => api.frVecNeg(bad)],
              ["a", (api) => api.frVecSquare(bad)],
              ["a", (api) => api.frVecSum(bad)],
              ["a", (api) => api.frVecScale(bad, 3n)],
              ["a", (api) => api.frVecScale(bad, "3" as unknown as bigint)],
              ["a", (api) => api.frVecAddConst(bad, R + 5n)],
              ["vectors[1]", (api) => api.frVecLinearCombination([good, bad], [1n, -2n])],
              ["vectors[0]", (api) => api.frVecLinearCombination([bad, badAlso], [0n, 0n])],
            ];
            for (const [argument, call] of calls) {
              const error = expectCode(() => call(wasm), "MATH_INVALID_ARGUMENT");
              expect(error.details, `n=${n} index=${index} ${argument}`).to.include({ argument, index });
              same(call);
            }
          }
        }
        // other argument errors keep their order: a's canonicity before b's length, coefficients before vectors' canonicity
        const bad = good.slice();
        bad.set(le(R), 0);
        same((api) => api.frVecAdd(bad, good.subarray(0, 32 * (n - 1))));
        same((api) => api.frVecMul(good, bad.subarray(0, 32 * (n - 1))));
        same((api) => api.frVecLinearCombination([bad, good], [1n, 2 as unknown as bigint]));
        same((api) => api.frVecLinearCombination([good, good.subarray(32)], [1n, 2n]));
        same((api) => api.frVecLinearCombination([good, undefined as unknown as Uint8Array], [1n, 2n]));
        same((api) => api.frVecAdd(good, null as unknown as Uint8Array));
        same((api) => api.frVecDot(good, [0] as unknown as Uint8Array));
        same((api) => api.frVecAddConst(good, 1 as unknown as bigint));
      }
    });

    it("inputs at unaligned offsets inside larger buffers, and Buffers", () => {
      const rng = deterministicRng("fr-vec/small-offsets");
      for (const n of [1, 2, L.elementwise]) {
        const xs = unpack(wasm.frVecRandom(n, rng));
        const ys = unpack(wasm.frVecRandom(n, rng));
        for (const offset of [1, 3, 8, 13]) {
          const holder = new Uint8Array(offset + 64 * n + 7).fill(0xee);
          holder.set(pack(xs), offset);
          holder.set(pack(ys), offset + 32 * n);
          const a = holder.subarray(offset, offset + 32 * n);
          const b = Buffer.from(holder.buffer, offset + 32 * n, 32 * n);
          allOps(a, b, 7n);
          expect(unpack(wasm.frVecAdd(a, b))).to.deep.equal(xs.map((x, i) => mod(x + ys[i]!)));
        }
      }
    });

    it("small results are fresh arrays, independent of the inputs, of each other and of later calls", () => {
      const a = pack([5n, R - 1n]);
      const b = pack([7n, 2n]);
      const one = pack([9n]);
      const results = [
        wasm.frVecAdd(a, b),
        wasm.frVecSub(a, b),
        wasm.frVecNeg(a),
        wasm.frVecAddConst(a, 1n),
        wasm.frVecMul(one, one),
        wasm.frVecSquare(one),
        wasm.frVecScale(one, 3n),
        wasm.frVecLinearCombination([a, b], [1n, 1n]),
        wasm.frVecRandom(2, deterministicRng("fr-vec/fresh")),
      ];
      const before = results.map(hex);
      const buffers = new Set(results.map((r) => r.buffer));
      expect(buffers.size).to.equal(results.length);
      for (const r of results) expect([a.buffer, b.buffer, one.buffer]).not.to.include(r.buffer);
      // later small calls (which reuse the scratch words) and mutating the inputs change none of them
      wasm.frVecMul(pack([R - 1n]), pack([R - 2n]));
      wasm.frVecAdd(pack(Array<bigint>(L.elementwise).fill(R - 1n)), pack(Array<bigint>(L.elementwise).fill(R - 1n)));
      a.fill(0);
      b.fill(0);
      one.fill(0);
      expect(results.map(hex)).to.deep.equal(before);
      expect(unpack(results[0]!)).to.deep.equal([12n, 1n]);
    });
  });

  it("results are fresh arrays: mutating them or the inputs afterwards changes nothing else", () => {
    const a = pack([1n, 2n]);
    const b = pack([3n, 4n]);
    const sum = wasm.frVecAdd(a, b);
    const again = wasm.frVecAdd(a, b);
    sum[0] = 99;
    a[0] = 7;
    expect(unpack(again)).to.deep.equal([4n, 6n]);
    expect(sum.buffer).not.to.equal(again.buffer);
    expect(wasm.frVecSlice(b, 1).buffer).not.to.equal(b.buffer);
  });
});

function modPow(base: bigint, e: bigint): bigint {
  let result = 1n;
  let x = mod(base);
  for (let k = e; k > 0n; k >>= 1n) {
    if (k & 1n) result = (result * x) % R;
    x = (x * x) % R;
  }
  return result;
}

function modInverse(a: bigint): bigint {
  return modPow(a, R - 2n);
}
