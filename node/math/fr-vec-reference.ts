/**
 * Packed BN254 scalar-field vectors: the pure-bigint reference
 * implementation, and the validation, parameter and error code that the fast
 * WebAssembly implementation (fr-vec.ts) shares with it.
 *
 * A field vector is a Uint8Array of 32·k bytes; element i is bytes
 * [32i, 32i + 32), the canonical value in [0, r) as little-endian 256-bit.
 * The same bytes are the wire format, so every function validates its
 * vector inputs (length and canonicity) and names the argument and element
 * index of a bad one. Results are always fresh arrays.
 *
 * This file is the test oracle of fr-vec.ts: every function here is written
 * as plainly as possible over noble's field (field.ts) and the Lagrange code
 * of polynomial.ts, with no attention to speed. fr-vec.ts must agree with it
 * bit for bit, including how many rng bytes each function consumes.
 */
import { ConsortError } from "../errors.ts";
import { FR_MODULUS, Fr } from "./field.ts";
import { lagrangeCoefficients } from "./polynomial.ts";
import type { Rng } from "./rng.ts";
import { MAX_PARTIES, validateSharingParams } from "./shamir.ts";
import type { SharingParams } from "./shamir.ts";

/** Bytes per packed element. */
export const FR_VEC_ELEMENT_BYTES = 32;
/**
 * Random elements take 32 rng bytes each, read little-endian with the top
 * two bits cleared (r < 2^254), accepted if < r (rejection sampling, the
 * technique of FIPS 186-5 A.2.2; acceptance probability r / 2^254 ≈ 0.756).
 */
export const FR_VEC_RANDOM_DRAW_BYTES = 32;
/**
 * Most blocks asked of the rng at once: 2048 blocks = 65536 bytes, the
 * per-call quota of Web Crypto's getRandomValues (W3C Web Cryptography API
 * §10.1.1), which noble's randomBytes enforces.
 */
export const FR_VEC_RNG_MAX_BLOCKS = 2048;
/** Highest polynomial degree frVecReconstruct accepts: MAX_PARTIES points determine degree MAX_PARTIES - 1. */
export const FR_VEC_MAX_DEGREE = MAX_PARTIES - 1;

const TWO_254_MASK = (1n << 254n) - 1n;

// ---------------------------------------------------------------------------
// Validation shared with fr-vec.ts

export function invalid(message: string, details: Record<string, unknown>): ConsortError {
  return new ConsortError("MATH_INVALID_ARGUMENT", message, { details });
}

/** Throws unless `v` is a Uint8Array whose length is a multiple of 32; returns the element count. */
export function elementCount(v: unknown, what: string): number {
  if (!(v instanceof Uint8Array)) {
    throw invalid(`${what} must be a Uint8Array field vector, got ${describeType(v)}`, { argument: what, type: describeType(v) });
  }
  if (v.length % FR_VEC_ELEMENT_BYTES !== 0) {
    throw invalid(`${what} has ${v.length} bytes, not a multiple of ${FR_VEC_ELEMENT_BYTES} (one field element is ${FR_VEC_ELEMENT_BYTES} bytes)`, {
      argument: what,
      length: v.length,
    });
  }
  return v.length / FR_VEC_ELEMENT_BYTES;
}

/** A short type name for error details (never the value). */
export function describeType(v: unknown): string {
  if (v === null) return "null";
  if (typeof v !== "object") return typeof v;
  return (v as object).constructor?.name ?? "object";
}

export function nonCanonical(what: string, index: number): ConsortError {
  return invalid(`${what} element ${index} encodes a value >= r (not a canonical field element)`, { argument: what, index });
}

export function lengthMismatch(what: string, got: number, expected: number, expectedFrom: string): ConsortError {
  return invalid(`${what} has ${got} elements but ${expectedFrom} has ${expected}`, { argument: what, got, expected, expectedFrom });
}

/** Throws unless `count` is a non-negative safe integer. */
export function assertCount(count: unknown, what: string): asserts count is number {
  if (typeof count !== "number" || !Number.isSafeInteger(count) || count < 0) {
    throw invalid(`${what} must be a non-negative integer, got ${String(count)}`, { argument: what, value: String(count) });
  }
}

/** Throws unless `c` is a bigint; returns it reduced into [0, r) (negative constants are allowed). */
export function constantOf(c: unknown, what: string): bigint {
  if (typeof c !== "bigint") {
    throw invalid(`${what} must be a bigint, got ${describeType(c)}`, { argument: what, type: describeType(c) });
  }
  return Fr.create(c);
}

export function checkRngOutput(bytes: unknown, expected: number): Uint8Array {
  if (!(bytes instanceof Uint8Array) || bytes.length !== expected) {
    const got = bytes instanceof Uint8Array ? bytes.length : describeType(bytes);
    throw invalid(`rng returned ${bytes instanceof Uint8Array ? `${bytes.length} bytes` : describeType(bytes)}, expected ${expected} bytes`, {
      expected,
      got,
    });
  }
  return bytes;
}

export function assertVectorList(vs: unknown, what: string): asserts vs is readonly unknown[] {
  if (!Array.isArray(vs)) {
    throw invalid(`${what} must be an array of field vectors, got ${describeType(vs)}`, { argument: what, type: describeType(vs) });
  }
}

export function assertDegree(degree: unknown): asserts degree is number {
  if (typeof degree !== "number" || !Number.isSafeInteger(degree) || degree < 0 || degree > FR_VEC_MAX_DEGREE) {
    throw invalid(`degree must be an integer in [0, ${FR_VEC_MAX_DEGREE}], got ${String(degree)}`, { degree: String(degree) });
  }
}

/** Throws unless `e` is a non-negative bigint exponent. */
export function assertExponent(e: unknown): asserts e is bigint {
  if (typeof e !== "bigint" || e < 0n) {
    throw invalid(`exponent must be a non-negative bigint, got ${typeof e === "bigint" ? e.toString() : describeType(e)}`, {
      argument: "e",
      value: typeof e === "bigint" ? e.toString() : describeType(e),
    });
  }
}

// ---------------------------------------------------------------------------
// Element codec (reference only: one bigint at a time)

function readElement(v: Uint8Array, i: number): bigint {
  const view = new DataView(v.buffer, v.byteOffset + i * FR_VEC_ELEMENT_BYTES, FR_VEC_ELEMENT_BYTES);
  return (
    view.getBigUint64(0, true) |
    (view.getBigUint64(8, true) << 64n) |
    (view.getBigUint64(16, true) << 128n) |
    (view.getBigUint64(24, true) << 192n)
  );
}

function writeElement(out: Uint8Array, i: number, x: bigint): void {
  const view = new DataView(out.buffer, out.byteOffset + i * FR_VEC_ELEMENT_BYTES, FR_VEC_ELEMENT_BYTES);
  view.setBigUint64(0, BigInt.asUintN(64, x), true);
  view.setBigUint64(8, BigInt.asUintN(64, x >> 64n), true);
  view.setBigUint64(16, BigInt.asUintN(64, x >> 128n), true);
  view.setBigUint64(24, x >> 192n, true);
}

/** Validates and decodes a whole vector. */
function decode(v: unknown, what: string): bigint[] {
  const k = elementCount(v, what);
  const bytes = v as Uint8Array;
  const out = new Array<bigint>(k);
  for (let i = 0; i < k; i++) {
    const x = readElement(bytes, i);
    if (x >= FR_MODULUS) throw nonCanonical(what, i);
    out[i] = x;
  }
  return out;
}

function encode(xs: readonly bigint[]): Uint8Array {
  const out = new Uint8Array(xs.length * FR_VEC_ELEMENT_BYTES);
  for (let i = 0; i < xs.length; i++) writeElement(out, i, xs[i]!);
  return out;
}

function decodeSameLength(a: unknown, b: unknown): [bigint[], bigint[]] {
  const xs = decode(a, "a");
  const ys = decode(b, "b");
  if (ys.length !== xs.length) throw lengthMismatch("b", ys.length, xs.length, "a");
  return [xs, ys];
}

// ---------------------------------------------------------------------------
// Public API (same names and behaviour as fr-vec.ts)

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
  const k = decode(v, what).length;
  if (expectedLength !== undefined && k !== expectedLength) {
    throw invalid(`${what} has ${k} elements, expected ${expectedLength}`, { argument: what, got: k, expected: expectedLength });
  }
}

/**
 * The packed vector of the elements `bytes` encodes as 32-byte big-endian
 * integers (encodeFieldVector's format). MATH_INVALID_ARGUMENT for a length
 * that is not whole elements, a count other than `expectedCount`, or an
 * element >= r (named by its index).
 */
export function frVecFromBigEndian(bytes: Uint8Array, what: string, expectedCount?: number): Uint8Array {
  const k = elementCount(bytes, what);
  if (expectedCount !== undefined && k !== expectedCount) {
    throw invalid(`${what} has ${k} elements, expected ${expectedCount}`, { argument: what, got: k, expected: expectedCount });
  }
  const xs: bigint[] = [];
  for (let i = 0; i < k; i++) {
    let x = 0n;
    for (let j = 0; j < FR_VEC_ELEMENT_BYTES; j++) x = (x << 8n) | BigInt(bytes[i * FR_VEC_ELEMENT_BYTES + j]!);
    if (x >= FR_MODULUS) throw nonCanonical(what, i);
    xs.push(x);
  }
  return encode(xs);
}

/** Packs field elements (each a bigint in [0, r); MATH_INVALID_ARGUMENT names the index of one that is not). */
export function frVecFromBigints(xs: readonly bigint[]): Uint8Array {
  assertVectorList(xs, "xs");
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    if (typeof x !== "bigint" || x < 0n || x >= FR_MODULUS) {
      throw invalid(`xs[${i}] is not a field element (expected a bigint in [0, r))`, { argument: "xs", index: i, type: describeType(x) });
    }
  }
  return encode(xs);
}

/** Unpacks a (validated) vector into bigints. */
export function frVecToBigints(v: Uint8Array): bigint[] {
  return decode(v, "vector");
}

/** k zero elements. */
export function frVecZeros(k: number): Uint8Array {
  assertCount(k, "k");
  return new Uint8Array(k * FR_VEC_ELEMENT_BYTES);
}

/** The vectors one after another (each validated). */
export function frVecConcat(vs: readonly Uint8Array[]): Uint8Array {
  assertVectorList(vs, "vs");
  const parts = vs.map((v, j) => decode(v, `vs[${j}]`));
  return encode(parts.flat());
}

/**
 * Elements [start, end) of `v` as a fresh vector; 0 <= start <= end <=
 * length (end defaults to the length).
 */
export function frVecSlice(v: Uint8Array, start: number, end?: number): Uint8Array {
  const xs = decode(v, "vector");
  const stop = end ?? xs.length;
  checkSliceBounds(start, stop, xs.length);
  return encode(xs.slice(start, stop));
}

export function checkSliceBounds(start: unknown, end: unknown, length: number): void {
  if (
    typeof start !== "number" ||
    typeof end !== "number" ||
    !Number.isSafeInteger(start) ||
    !Number.isSafeInteger(end) ||
    start < 0 ||
    start > end ||
    end > length
  ) {
    throw invalid(`slice [${String(start)}, ${String(end)}) is not within [0, ${length}] with start <= end`, {
      start: String(start),
      end: String(end),
      length,
    });
  }
}

/** Element-wise a + b. */
export function frVecAdd(a: Uint8Array, b: Uint8Array): Uint8Array {
  const [xs, ys] = decodeSameLength(a, b);
  return encode(xs.map((x, i) => Fr.add(x, ys[i]!)));
}

/** Element-wise a - b. */
export function frVecSub(a: Uint8Array, b: Uint8Array): Uint8Array {
  const [xs, ys] = decodeSameLength(a, b);
  return encode(xs.map((x, i) => Fr.sub(x, ys[i]!)));
}

/** Element-wise -a. */
export function frVecNeg(a: Uint8Array): Uint8Array {
  return encode(decode(a, "a").map((x) => Fr.neg(x)));
}

/** Element-wise a · b. */
export function frVecMul(a: Uint8Array, b: Uint8Array): Uint8Array {
  const [xs, ys] = decodeSameLength(a, b);
  return encode(xs.map((x, i) => Fr.mul(x, ys[i]!)));
}

/** Element-wise a². */
export function frVecSquare(a: Uint8Array): Uint8Array {
  return encode(decode(a, "a").map((x) => Fr.sqr(x)));
}

/** c · a for a constant c (any bigint, reduced mod r). */
export function frVecScale(a: Uint8Array, c: bigint): Uint8Array {
  const xs = decode(a, "a");
  const k = constantOf(c, "c");
  return encode(xs.map((x) => Fr.mul(x, k)));
}

/** a + c element-wise for a constant c (any bigint, reduced mod r). */
export function frVecAddConst(a: Uint8Array, c: bigint): Uint8Array {
  const xs = decode(a, "a");
  const k = constantOf(c, "c");
  return encode(xs.map((x) => Fr.add(x, k)));
}

/** Σ a_i mod r. */
export function frVecSum(a: Uint8Array): bigint {
  return decode(a, "a").reduce((acc, x) => Fr.add(acc, x), 0n);
}

/** Σ a_i · b_i mod r. */
export function frVecDot(a: Uint8Array, b: Uint8Array): bigint {
  const [xs, ys] = decodeSameLength(a, b);
  return xs.reduce((acc, x, i) => Fr.add(acc, Fr.mul(x, ys[i]!)), 0n);
}

/**
 * Σ_j c_j · v_j element-wise (the Lagrange recombination of GRR/BGW: R.
 * Gennaro, M. Rabin, T. Rabin, PODC 1998). Needs at least one vector, as
 * many coefficients (bigints, reduced mod r) as vectors, and equal lengths.
 */
export function frVecLinearCombination(vectors: readonly Uint8Array[], coefficients: readonly bigint[]): Uint8Array {
  const { rows, cs } = decodeLinearCombination(vectors, coefficients);
  const m = rows[0]!.length;
  const out = new Array<bigint>(m);
  for (let i = 0; i < m; i++) {
    let acc = 0n;
    for (let j = 0; j < rows.length; j++) acc = Fr.add(acc, Fr.mul(cs[j]!, rows[j]![i]!));
    out[i] = acc;
  }
  return encode(out);
}

/** Checks the arguments of a linear combination; returns the reduced coefficients and vector lengths. */
export function checkLinearCombinationShape(vectors: unknown, coefficients: unknown): { cs: bigint[]; count: number } {
  assertVectorList(vectors, "vectors");
  if (!Array.isArray(coefficients)) {
    throw invalid(`coefficients must be an array of bigints, got ${describeType(coefficients)}`, { argument: "coefficients" });
  }
  if (vectors.length === 0) throw invalid("a linear combination needs at least one vector", { argument: "vectors" });
  if (coefficients.length !== vectors.length) {
    throw invalid(`${vectors.length} vectors but ${coefficients.length} coefficients`, {
      argument: "coefficients",
      got: coefficients.length,
      expected: vectors.length,
    });
  }
  const cs = coefficients.map((c, j) => constantOf(c, `coefficients[${j}]`));
  let count = -1;
  for (let j = 0; j < vectors.length; j++) {
    const k = elementCount(vectors[j], `vectors[${j}]`);
    if (j === 0) count = k;
    else if (k !== count) throw lengthMismatch(`vectors[${j}]`, k, count, "vectors[0]");
  }
  return { cs, count };
}

function decodeLinearCombination(vectors: readonly Uint8Array[], coefficients: readonly bigint[]): { rows: bigint[][]; cs: bigint[] } {
  const { cs } = checkLinearCombinationShape(vectors, coefficients);
  const rows = vectors.map((v, j) => decode(v, `vectors[${j}]`));
  return { rows, cs };
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
  return encode(randomBigints(count, rng));
}

function randomBigints(count: number, rng: Rng): bigint[] {
  const out: bigint[] = [];
  while (out.length < count) {
    const blocks = Math.min(count - out.length, FR_VEC_RNG_MAX_BLOCKS);
    const bytes = checkRngOutput(rng(blocks * FR_VEC_RANDOM_DRAW_BYTES), blocks * FR_VEC_RANDOM_DRAW_BYTES);
    for (let i = 0; i < blocks; i++) {
      const x = readElement(bytes, i) & TWO_254_MASK;
      if (x < FR_MODULUS) out.push(x);
    }
  }
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
  const ss = decode(secrets, "secrets");
  const { threshold: t, parties: n } = params;
  const coefficients = randomBigints(ss.length * t, rng);
  const result: Uint8Array[] = [];
  for (let j = 0; j < n; j++) {
    const x = BigInt(j + 1);
    const ys = ss.map((s, k) => {
      let acc = 0n;
      for (let d = t; d >= 1; d--) acc = Fr.add(Fr.mul(acc, x), coefficients[k * t + d - 1]!);
      return Fr.add(Fr.mul(acc, x), s);
    });
    result.push(encode(ys));
  }
  return result;
}

// ---------------------------------------------------------------------------
// Reconstruction plans (shared with fr-vec.ts)

/**
 * How to reconstruct from one set of parties: the first degree + 1 present
 * parties (ascending) are the basis, the secret is Σ λ_j · y(basis_j), and
 * every further party e must satisfy y(e) = Σ checkCoefficients[e][j] ·
 * y(basis_j) (its share lies on the basis polynomial).
 */
export interface FrVecReconstructionPlan {
  readonly degree: number;
  readonly parties: readonly number[];
  readonly basis: readonly number[];
  readonly checks: readonly number[];
  readonly lagrangeAtZero: readonly bigint[];
  readonly checkCoefficients: readonly (readonly bigint[])[];
}

const planCache = new Map<string, FrVecReconstructionPlan>();
const PLAN_CACHE_LIMIT = 512;

/** The (cached) plan for parties `present` (ascending 0-based indices) and `degree`. */
export function reconstructionPlanFor(present: readonly number[], degree: number): FrVecReconstructionPlan {
  const key = `${degree}|${present.join(",")}`;
  const hit = planCache.get(key);
  if (hit !== undefined) return hit;
  const basis = present.slice(0, degree + 1);
  const checks = present.slice(degree + 1);
  const basisX = basis.map((p) => BigInt(p + 1));
  const plan: FrVecReconstructionPlan = Object.freeze({
    degree,
    parties: Object.freeze(present.slice()),
    basis: Object.freeze(basis),
    checks: Object.freeze(checks),
    lagrangeAtZero: Object.freeze(lagrangeCoefficients(basisX, 0n)),
    checkCoefficients: Object.freeze(checks.map((p) => Object.freeze(lagrangeCoefficients(basisX, BigInt(p + 1))))),
  });
  if (planCache.size >= PLAN_CACHE_LIMIT) {
    const oldest = planCache.keys().next();
    if (!oldest.done) planCache.delete(oldest.value);
  }
  planCache.set(key, plan);
  return plan;
}

/**
 * Validates the shape of frVecReconstruct's arguments: an array indexed by
 * party (at most MAX_PARTIES entries), undefined for absent parties, at
 * least degree + 1 present, equal lengths. Returns the present parties
 * (ascending) and the element count; canonicity is checked by the caller.
 */
export function checkReconstructShape(sharesByParty: unknown, degree: unknown): { present: number[]; count: number; degree: number } {
  assertDegree(degree);
  if (!Array.isArray(sharesByParty)) {
    throw invalid(`sharesByParty must be an array indexed by party, got ${describeType(sharesByParty)}`, { argument: "sharesByParty" });
  }
  if (sharesByParty.length > MAX_PARTIES) {
    throw invalid(`sharesByParty has ${sharesByParty.length} entries, at most ${MAX_PARTIES} parties are supported`, {
      argument: "sharesByParty",
      got: sharesByParty.length,
    });
  }
  const present: number[] = [];
  let count = -1;
  for (let p = 0; p < sharesByParty.length; p++) {
    const v: unknown = sharesByParty[p];
    if (v === undefined) continue;
    const k = elementCount(v, `shares of party ${p} (x = ${p + 1})`);
    if (present.length === 0) count = k;
    else if (k !== count) {
      throw invalid(`party ${p} (x = ${p + 1}) sent ${k} shares but party ${present[0]} (x = ${present[0]! + 1}) sent ${count}`, {
        partyIndex: p,
        got: k,
        expected: count,
        expectedFrom: present[0],
      });
    }
    present.push(p);
  }
  if (present.length < degree + 1) {
    throw new ConsortError(
      "MATH_NOT_ENOUGH_SHARES",
      `reconstructing a polynomial of degree ${degree} needs ${degree + 1} shares, got ${present.length}`,
      { details: { degree, threshold: degree, needed: degree + 1, got: present.length } },
    );
  }
  return { present, count: Math.max(count, 0), degree };
}

/** Error for party p's vector: element `index` is not canonical. */
export function nonCanonicalShare(party: number, index: number): ConsortError {
  return invalid(`shares of party ${party} (x = ${party + 1}) element ${index} encodes a value >= r (not a canonical field element)`, {
    partyIndex: party,
    index,
  });
}

/** Checks of `plan` (indices into plan.checks) that disagree at one element, given the values of plan.parties. */
function disagreeingChecks(plan: FrVecReconstructionPlan, values: readonly bigint[]): number[] {
  const b = plan.basis.length;
  const out: number[] = [];
  for (let e = 0; e < plan.checks.length; e++) {
    const cs = plan.checkCoefficients[e]!;
    let acc = 0n;
    for (let j = 0; j < b; j++) acc = Fr.add(acc, Fr.mul(cs[j]!, values[j]!));
    if (acc !== values[b + e]) out.push(e);
  }
  return out;
}

/**
 * MATH_INCONSISTENT_SHARES for element `index`, whose share values (aligned
 * with plan.parties) are `values`. Names the x values that disagree with the
 * basis polynomial and, with at least degree + 3 shares, the single share
 * whose removal makes the rest consistent (if there is one): the
 * Reed–Solomon code of length k and dimension d + 1 has distance k - d >= 3,
 * so one error is located uniquely. Never includes share values.
 */
export function inconsistentShares(plan: FrVecReconstructionPlan, index: number, values: readonly bigint[]): ConsortError {
  const disagreeing = disagreeingChecks(plan, values).map((e) => plan.checks[e]!);
  let suspect: number | undefined;
  if (plan.parties.length >= plan.degree + 3) {
    for (let skip = 0; skip < plan.parties.length; skip++) {
      const sub = reconstructionPlanFor(plan.parties.filter((_, i) => i !== skip), plan.degree);
      if (disagreeingChecks(sub, values.filter((_, i) => i !== skip)).length === 0) {
        suspect = plan.parties[skip];
        break;
      }
    }
  }
  const xs = (ps: readonly number[]): number[] => ps.map((p) => p + 1);
  const blame = suspect === undefined ? "" : `; the only single share whose removal makes the rest consistent is x = ${suspect + 1}`;
  return new ConsortError(
    "MATH_INCONSISTENT_SHARES",
    `shares do not lie on one polynomial of degree <= ${plan.degree} (vector element ${index}): x = ${xs(disagreeing).join(", ")} disagree with the polynomial through x = ${xs(plan.basis).join(", ")}${blame}`,
    {
      details: {
        degree: plan.degree,
        threshold: plan.degree,
        index,
        basisX: xs(plan.basis),
        disagreeingX: xs(disagreeing),
        basisParties: [...plan.basis],
        disagreeingParties: disagreeing,
        ...(suspect === undefined ? {} : { suspectX: suspect + 1, suspectParty: suspect }),
      },
    },
  );
}

/**
 * f(0) for every element, from the shares of the parties present
 * (sharesByParty[p] = party p's vector, x = p + 1; undefined = absent),
 * where f has degree <= `degree` (t for fresh sharings, 2t for BGW products).
 * Needs degree + 1 parties (MATH_NOT_ENOUGH_SHARES); with more, every
 * element is checked to lie on one polynomial of that degree
 * (MATH_INCONSISTENT_SHARES naming the element index and the disagreeing x
 * values).
 */
export function frVecReconstruct(sharesByParty: readonly (Uint8Array | undefined)[], degree: number): Uint8Array {
  const { present, count } = checkReconstructShape(sharesByParty, degree);
  const rows = present.map((p) => {
    try {
      return decode(sharesByParty[p], "shares");
    } catch (e) {
      const index = e instanceof ConsortError ? e.details["index"] : undefined;
      if (typeof index === "number") throw nonCanonicalShare(p, index);
      throw e;
    }
  });
  const plan = reconstructionPlanFor(present, degree);
  const b = plan.basis.length;
  const out = new Array<bigint>(count);
  for (let i = 0; i < count; i++) {
    const values = rows.map((row) => row[i]!);
    if (disagreeingChecks(plan, values).length > 0) throw inconsistentShares(plan, i, values);
    let acc = 0n;
    for (let j = 0; j < b; j++) acc = Fr.add(acc, Fr.mul(plan.lagrangeAtZero[j]!, values[j]!));
    out[i] = acc;
  }
  return encode(out);
}

/** Element-wise 1/a (one field inversion for the whole vector, Montgomery's trick). A zero is MATH_INVALID_ARGUMENT naming its index. */
export function frVecInvert(a: Uint8Array): Uint8Array {
  const xs = decode(a, "a");
  const zero = xs.indexOf(0n);
  if (zero >= 0) throw zeroInverse(zero);
  return encode(Fr.invertBatch(xs));
}

export function zeroInverse(index: number): ConsortError {
  return invalid(`a element ${index} is zero and has no multiplicative inverse`, { argument: "a", index });
}

/** (r - 1) / 2: the canonical square root is the one <= this. */
export const FR_VEC_HALF_MODULUS = (FR_MODULUS - 1n) / 2n;

/**
 * Element-wise canonical square root: of the two roots ±y, the one whose
 * canonical value is <= (r - 1) / 2. A non-residue is MATH_INVALID_ARGUMENT
 * naming its index.
 */
export function frVecSqrt(a: Uint8Array): Uint8Array {
  const xs = decode(a, "a");
  return encode(
    xs.map((x, i) => {
      // Euler's criterion: x is a non-zero square iff x^((r-1)/2) = 1.
      if (x !== 0n && Fr.pow(x, FR_VEC_HALF_MODULUS) !== 1n) throw nonResidue(i);
      const y = Fr.sqrt(x);
      return y <= FR_VEC_HALF_MODULUS ? y : FR_MODULUS - y;
    }),
  );
}

export function nonResidue(index: number): ConsortError {
  return invalid(`a element ${index} is not a square in the field`, { argument: "a", index });
}

/** Element-wise a^e for a constant exponent e >= 0 (0^0 = 1). */
export function frVecPowConst(a: Uint8Array, e: bigint): Uint8Array {
  const xs = decode(a, "a");
  assertExponent(e);
  return encode(xs.map((x) => (e === 0n ? 1n : Fr.pow(x, e))));
}

