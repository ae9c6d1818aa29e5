import { expect } from "chai";
import fc from "fast-check";
import { randomFieldElements } from "../../node/math/field.ts";
import {
  evaluatePolynomial,
  interpolateAt,
  interpolatePolynomial,
  lagrangeCoefficients,
  randomPolynomial,
} from "../../node/math/polynomial.ts";
import { deterministicRng } from "../../node/math/rng.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

// Independent oracle: plain BigInt arithmetic.
const R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
const mod = (a: bigint): bigint => ((a % R) + R) % R;
function powMod(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % R;
    b = (b * b) % R;
  }
  return result;
}
const inv = (a: bigint): bigint => powMod(a, R - 2n); // Fermat
const oracleEval = (coefficients: readonly bigint[], x: bigint): bigint =>
  mod(coefficients.reduce((acc, c, i) => acc + c * powMod(x, BigInt(i)), 0n));
function oracleLagrange(xs: readonly bigint[], at: bigint): bigint[] {
  return xs.map((xj, j) => {
    let num = 1n;
    let den = 1n;
    xs.forEach((xm, m) => {
      if (m === j) return;
      num = mod(num * (at - xm));
      den = mod(den * (xj - xm));
    });
    return mod(num * inv(den));
  });
}

const element = fc.oneof(fc.constantFrom(0n, 1n, R - 1n), fc.bigInt({ min: 0n, max: R - 1n }));
const distinctXs = (min: number, max: number) =>
  fc.uniqueArray(fc.oneof(fc.bigInt({ min: 0n, max: 300n }), fc.bigInt({ min: 0n, max: R - 1n })), {
    minLength: min,
    maxLength: max,
  });

describe("math/polynomial", () => {
  it("evaluates by Horner: known values and agreement with the oracle", () => {
    expect(evaluatePolynomial([1n, 2n, 3n], 2n)).to.equal(17n);
    expect(evaluatePolynomial([5n], 123n)).to.equal(5n);
    expect(evaluatePolynomial([R - 1n, 1n], 1n)).to.equal(0n);
    expect(evaluatePolynomial([7n, 1n, 1n], 0n)).to.equal(7n);
    fc.assert(
      fc.property(fc.array(element, { minLength: 1, maxLength: 12 }), element, (coefficients, x) => {
        expect(evaluatePolynomial(coefficients, x)).to.equal(oracleEval(coefficients, x));
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it("Lagrange coefficients for x = 1, 2, 3 at 0 are (3, -3, 1) mod r", () => {
    expect(lagrangeCoefficients([1n, 2n, 3n])).to.deep.equal([3n, R - 3n, 1n]);
    expect(lagrangeCoefficients([1n, 2n, 3n], 0n)).to.deep.equal([3n, R - 3n, 1n]);
    // x = 1, 2 at 0: (2, -1).
    expect(lagrangeCoefficients([1n, 2n])).to.deep.equal([2n, R - 1n]);
    expect(lagrangeCoefficients([9n])).to.deep.equal([1n]);
  });

  it("Lagrange coefficients agree with the oracle, sum to 1, and are a unit vector at a node", () => {
    fc.assert(
      fc.property(distinctXs(1, 9), element, (xs, at) => {
        const lambdas = lagrangeCoefficients(xs, at);
        expect(lambdas).to.deep.equal(oracleLagrange(xs, at));
        expect(mod(lambdas.reduce((a, b) => a + b, 0n))).to.equal(1n);
        const j = Number(at % BigInt(xs.length));
        expect(lagrangeCoefficients(xs, xs[j]!)).to.deep.equal(xs.map((_, i) => (i === j ? 1n : 0n)));
      }),
      { seed: 43, numRuns: 150 },
    );
  });

  it("interpolation recovers every polynomial of degree < number of points", () => {
    fc.assert(
      fc.property(fc.array(element, { minLength: 1, maxLength: 9 }), distinctXs(10, 12), element, (coefficients, xs, at) => {
        const points = xs.slice(0, coefficients.length).map((x) => ({ x, y: oracleEval(coefficients, x) }));
        expect(interpolateAt(points, at)).to.equal(oracleEval(coefficients, at));
        expect(interpolatePolynomial(points)).to.deep.equal(coefficients);
        // One extra point: the same polynomial, with a zero leading coefficient.
        const more = xs.slice(0, coefficients.length + 1).map((x) => ({ x, y: oracleEval(coefficients, x) }));
        expect(interpolatePolynomial(more)).to.deep.equal([...coefficients, 0n]);
      }),
      { seed: 44, numRuns: 150 },
    );
  });

  it("randomPolynomial fixes the constant term and draws the rest in order from the rng", () => {
    const p = randomPolynomial(3, 42n, deterministicRng("poly"));
    expect(p.length).to.equal(4);
    expect(p[0]).to.equal(42n);
    expect(p.slice(1)).to.deep.equal(randomFieldElements(3, deterministicRng("poly")));
    expect(randomPolynomial(0, 7n, deterministicRng("poly"))).to.deep.equal([7n]);
    const q = randomPolynomial(3, 42n, deterministicRng("poly2"));
    expect(q.slice(1)).to.not.deep.equal(p.slice(1));
  });

  it("rejects duplicate or invalid points and bad arguments", () => {
    expectCode(() => lagrangeCoefficients([1n, 2n, 1n]), "MATH_INVALID_ARGUMENT");
    expectCode(() => lagrangeCoefficients([]), "MATH_INVALID_ARGUMENT");
    expectCode(() => lagrangeCoefficients([1n, R]), "MATH_INVALID_ARGUMENT");
    expectCode(() => lagrangeCoefficients([1n, 2n], R), "MATH_INVALID_ARGUMENT");
    expectCode(() => interpolateAt([{ x: 1n, y: 1n }, { x: 1n, y: 2n }], 0n), "MATH_INVALID_ARGUMENT");
    expectCode(() => interpolateAt([{ x: 1n, y: R }], 0n), "MATH_INVALID_ARGUMENT");
    expectCode(() => interpolateAt([], 0n), "MATH_INVALID_ARGUMENT");
    expectCode(() => interpolatePolynomial([{ x: 2n, y: 1n }, { x: 2n, y: 1n }]), "MATH_INVALID_ARGUMENT");
    expectCode(() => evaluatePolynomial([], 1n), "MATH_INVALID_ARGUMENT");
    expectCode(() => evaluatePolynomial([1n, R], 1n), "MATH_INVALID_ARGUMENT");
    expectCode(() => evaluatePolynomial([1n], -1n), "MATH_INVALID_ARGUMENT");
    expectCode(() => randomPolynomial(-1, 0n, deterministicRng("x")), "MATH_INVALID_ARGUMENT");
    expectCode(() => randomPolynomial(1.5, 0n, deterministicRng("x")), "MATH_INVALID_ARGUMENT");
    expectCode(() => randomPolynomial(2, R, deterministicRng("x")), "MATH_INVALID_ARGUMENT");
  });
});
