import { expect } from "chai";
import fc from "fast-check";
import { FR_MODULUS, fieldInverse } from "../../node/math/field.ts";
import { reducedFraction } from "../../node/program/plain-evaluator.ts";
import { rationalReconstruct } from "../../node/protocol/quotient.ts";

const mod = (x: bigint): bigint => ((x % FR_MODULUS) + FR_MODULUS) % FR_MODULUS;

describe("quotients by rational reconstruction (Wang 1981)", () => {
  it("recovers num/den in lowest terms from num·den^-1 mod r whenever 2·N·D < r (property)", () => {
    const bounds = fc.tuple(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 200 })).filter(([kn, kd]) => kn + kd <= 253);
    fc.assert(
      fc.property(bounds, fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }), ([kn, kd], rn, rd) => {
        const N = 1n << BigInt(kn - 1);
        const D = 1n << BigInt(kd - 1);
        const num = (rn % (2n * N + 1n)) - N; // [-N, N]
        const den = (rd % D) + 1n; // [1, D]
        const sign = rd % 2n === 0n ? 1n : -1n; // denominators of either sign
        const w = mod(mod(num * sign) * fieldInverse(mod(den * sign)));
        const [a, b] = reducedFraction(num * sign, den * sign);
        expect(rationalReconstruct(w, N, D)).to.deep.equal([a, b]);
      }),
      { seed: 3, numRuns: 500 },
    );
  });

  it("handles zero, ±1 and the extreme fractions", () => {
    const N = 1n << 100n;
    const D = 1n << 100n;
    expect(rationalReconstruct(0n, N, D)).to.deep.equal([0n, 1n]);
    expect(rationalReconstruct(1n, N, D)).to.deep.equal([1n, 1n]);
    expect(rationalReconstruct(FR_MODULUS - 1n, N, D)).to.deep.equal([-1n, 1n]);
    expect(rationalReconstruct(mod(-N * fieldInverse(D)), N, D)).to.deep.equal([-1n, 1n]); // -2^100 / 2^100
    expect(rationalReconstruct(mod(N * fieldInverse(D - 1n)), N, D)).to.deep.equal([N, D - 1n]);
    expect(rationalReconstruct(fieldInverse(D), N, D)).to.deep.equal([1n, D]);
  });

  it("finds nothing for elements that are no fraction within the bounds", () => {
    // 2^200 / 3 mod r with bounds of 2^20: no small fraction maps there.
    const w = mod((1n << 200n) * fieldInverse(3n));
    expect(rationalReconstruct(w, 1n << 20n, 1n << 20n)).to.equal(undefined);
  });
});
