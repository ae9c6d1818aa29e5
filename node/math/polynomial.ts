/**
 * Polynomials over Fr, coefficients in ascending order (coefficients[0] is
 * the constant term). All arithmetic goes through noble's `Fr`.
 */
import { ConsortError } from "../errors.ts";
import { Fr, assertFieldElement, isFieldElement, randomFieldElements } from "./field.ts";
import type { Rng } from "./rng.ts";

/** A point (x, y) on a polynomial over Fr. */
export interface Point {
  x: bigint;
  y: bigint;
}

function assertCoefficients(coefficients: readonly bigint[]): void {
  if (!Array.isArray(coefficients) || coefficients.length === 0) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "a polynomial needs at least one coefficient", {
      details: { length: Array.isArray(coefficients) ? 0 : typeof coefficients },
    });
  }
  for (let i = 0; i < coefficients.length; i++) {
    if (!isFieldElement(coefficients[i])) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `coefficient ${i} is not a field element (expected a bigint in [0, r))`, {
        details: { index: i, type: typeof coefficients[i] },
      });
    }
  }
}

/** p(x) by Horner's rule: ((c_d x + c_{d-1}) x + ...) x + c_0. */
export function evaluatePolynomial(coefficients: readonly bigint[], x: bigint): bigint {
  assertCoefficients(coefficients);
  assertFieldElement(x, "evaluation point");
  let acc = 0n;
  for (let i = coefficients.length - 1; i >= 0; i--) acc = Fr.add(Fr.mul(acc, x), coefficients[i]!);
  return acc;
}

/**
 * A polynomial of exactly `degree` coefficients past the constant term,
 * constant term fixed, the others uniform (degree + 1 coefficients; the
 * leading one may be zero with probability 1/r, as Shamir's scheme requires:
 * forcing it non-zero would bias the shares). Draws the random coefficients
 * c_1..c_degree in order from one rng call.
 */
export function randomPolynomial(degree: number, constantTerm: bigint, rng: Rng): bigint[] {
  if (!Number.isSafeInteger(degree) || degree < 0) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `polynomial degree must be a non-negative integer, got ${String(degree)}`, {
      details: { degree: String(degree) },
    });
  }
  assertFieldElement(constantTerm, "constant term");
  const random = randomFieldElements(degree, rng);
  const out = new Array<bigint>(degree + 1);
  out[0] = constantTerm;
  for (let i = 0; i < degree; i++) out[i + 1] = random[i]!;
  return out;
}

/** Throws MATH_INVALID_ARGUMENT unless xs is a non-empty list of distinct field elements. */
function assertDistinctPoints(xs: readonly bigint[], what: string): void {
  if (!Array.isArray(xs) || xs.length === 0) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `${what} must be a non-empty list`, { details: { argument: what } });
  }
  const seen = new Set<bigint>();
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    if (!isFieldElement(x)) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `${what}[${i}] is not a field element (expected a bigint in [0, r))`, {
        details: { argument: what, index: i, type: typeof x },
      });
    }
    if (seen.has(x)) {
      // x coordinates are public (party positions), so naming them is fine.
      throw new ConsortError("MATH_INVALID_ARGUMENT", `${what} contains x = ${x} twice`, {
        details: { argument: what, index: i, x: x.toString() },
      });
    }
    seen.add(x);
  }
}

/**
 * Lagrange basis coefficients λ_j(at) = Π_{m≠j} (at - x_m) / (x_j - x_m), so
 * that p(at) = Σ_j λ_j(at) · p(x_j) for every polynomial p of degree < xs.length.
 * O(k^2) multiplications and a single field inversion (Montgomery's trick);
 * numerators come from prefix/suffix products, so `at` may equal one of the xs.
 */
export function lagrangeCoefficients(xs: readonly bigint[], at: bigint = 0n): bigint[] {
  assertDistinctPoints(xs, "xs");
  assertFieldElement(at, "interpolation point");
  return lagrangeUnchecked(xs, at);
}

/**
 * lagrangeCoefficients without argument checks, for callers that validated
 * already (distinct field elements; otherwise the result is meaningless).
 */
export function lagrangeUnchecked(xs: readonly bigint[], at: bigint): bigint[] {
  const k = xs.length;
  const inverses = lagrangeDenominatorInverses(xs);
  // prefix[j] = Π_{m<j} (at - x_m), suffix[j] = Π_{m>=j} (at - x_m).
  const suffix = new Array<bigint>(k + 1);
  suffix[k] = 1n;
  for (let m = k - 1; m >= 0; m--) suffix[m] = Fr.mul(suffix[m + 1]!, Fr.sub(at, xs[m]!));
  const out = new Array<bigint>(k);
  let prefix = 1n;
  for (let j = 0; j < k; j++) {
    out[j] = Fr.mul(Fr.mul(prefix, suffix[j + 1]!), inverses[j]!);
    prefix = Fr.mul(prefix, Fr.sub(at, xs[j]!));
  }
  return out;
}

function assertPoints(points: readonly Point[]): bigint[] {
  if (!Array.isArray(points) || points.length === 0) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "interpolation needs at least one point");
  }
  const xs = new Array<bigint>(points.length);
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    if (typeof p !== "object" || p === null) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `point ${i} is not an {x, y} object`, { details: { index: i } });
    }
    if (!isFieldElement(p.y)) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `point ${i} has a y that is not a field element`, {
        details: { index: i, type: typeof p.y },
      });
    }
    xs[i] = p.x;
  }
  assertDistinctPoints(xs, "point x coordinates");
  return xs;
}

/** The value at `at` of the unique polynomial of degree < points.length through `points`. */
export function interpolateAt(points: readonly Point[], at: bigint): bigint {
  const xs = assertPoints(points);
  assertFieldElement(at, "interpolation point");
  const lambdas = lagrangeUnchecked(xs, at);
  let acc = 0n;
  for (let j = 0; j < points.length; j++) acc = Fr.addN(acc, Fr.mulN(lambdas[j]!, points[j]!.y));
  return Fr.create(acc);
}

/**
 * Coefficients (ascending, length = points.length) of the unique polynomial
 * of degree < points.length through `points`: Σ_j y_j / Π_{m≠j}(x_j - x_m) ·
 * M(X) / (X - x_j) with M(X) = Π_m (X - x_m), each quotient by synthetic
 * division. O(k^2).
 */
export function interpolatePolynomial(points: readonly Point[]): bigint[] {
  const xs = assertPoints(points);
  const k = xs.length;
  // M(X) = Π (X - x_m), ascending coefficients, degree k.
  let master: bigint[] = [1n];
  for (const xm of xs) {
    const next = new Array<bigint>(master.length + 1).fill(0n);
    for (let i = 0; i < master.length; i++) {
      next[i + 1] = Fr.add(next[i + 1]!, master[i]!);
      next[i] = Fr.sub(next[i]!, Fr.mul(master[i]!, xm));
    }
    master = next;
  }
  const weights = lagrangeDenominatorInverses(xs);
  const out = new Array<bigint>(k).fill(0n);
  for (let j = 0; j < k; j++) {
    const scale = Fr.mul(points[j]!.y, weights[j]!);
    if (scale === 0n) continue;
    // Q(X) = M(X) / (X - x_j): q_{k-1} = m_k, q_{i-1} = m_i + x_j q_i.
    let q = master[k]!;
    for (let i = k - 1; i >= 0; i--) {
      out[i] = Fr.add(out[i]!, Fr.mul(scale, q));
      q = Fr.add(master[i]!, Fr.mul(xs[j]!, q));
    }
  }
  return out;
}

/** 1 / Π_{m≠j} (x_j - x_m) for every j (the barycentric weights). */
function lagrangeDenominatorInverses(xs: readonly bigint[]): bigint[] {
  const k = xs.length;
  const denominators = new Array<bigint>(k);
  for (let j = 0; j < k; j++) {
    let d = 1n;
    for (let m = 0; m < k; m++) if (m !== j) d = Fr.mul(d, Fr.sub(xs[j]!, xs[m]!));
    denominators[j] = d;
  }
  return Fr.invertBatch(denominators);
}
