import { expect } from "chai";
import fc from "fast-check";
import { evaluatePolynomial, interpolatePolynomial } from "../../node/math/polynomial.ts";
import type { Rng } from "../../node/math/rng.ts";
import { deterministicRng } from "../../node/math/rng.ts";
import {
  MAX_PARTIES,
  checkShareConsistency,
  lagrangeAtZero,
  partyX,
  reconstructSecret,
  reconstructVector,
  reconstructionPlan,
  splitSecret,
  splitVector,
  validateSharingParams,
} from "../../node/math/shamir.ts";
import type { Share } from "../../node/math/shamir.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

// Independent oracle: plain BigInt arithmetic.
const R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
const mod = (a: bigint): bigint => ((a % R) + R) % R;
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** All subsets of {0..n-1} with at least `min` elements, as ascending index lists. */
function subsets(n: number, min: number): number[][] {
  const out: number[][] = [];
  for (let mask = 0; mask < 1 << n; mask++) {
    const s = [...Array(n).keys()].filter((i) => mask & (1 << i));
    if (s.length >= min) out.push(s);
  }
  return out;
}

/** An rng that returns exactly the given bytes, then fails. */
function scriptedRng(bytes: Uint8Array): Rng {
  let pos = 0;
  return (n) => {
    if (pos + n > bytes.length) throw new Error("scripted rng exhausted");
    const out = bytes.slice(pos, pos + n);
    pos += n;
    return out;
  };
}
/** 32-byte big-endian encodings: rejection sampling accepts each as the same value (value < r < 2^254). */
const drawEncoding = (values: readonly bigint[]): Uint8Array =>
  new Uint8Array(Buffer.from(values.map((v) => v.toString(16).padStart(64, "0")).join(""), "hex"));

const element = fc.oneof(fc.constantFrom(0n, 1n, R - 1n), fc.bigInt({ min: 0n, max: R - 1n }));
const seedBytes = fc.uint8Array({ minLength: 1, maxLength: 16 });
const SIZES = [3, 5, 7].map((n) => ({ n, t: Math.floor((n - 1) / 2) }));

describe("math/shamir", () => {
  it("fixed-seed split: shares are s + a1·x + a2·x² with a1, a2 read from the seeded stream by hand", () => {
    const secret = 123456789n;
    const shares = splitSecret(secret, { threshold: 2, parties: 5 }, deterministicRng("shamir-known-answer"));
    // Rejection sampling by hand: 32-byte blocks, top two bits cleared, the first two values < r.
    const stream = deterministicRng("shamir-known-answer")(32 * 20);
    const candidates = Array.from({ length: 20 }, (_, i) => BigInt("0x" + hex(stream.subarray(32 * i, 32 * i + 32))) & ((1n << 254n) - 1n));
    const [a1, a2] = candidates.filter((c) => c < R) as [bigint, bigint];
    expect(shares.map((s) => s.x)).to.deep.equal([1n, 2n, 3n, 4n, 5n]);
    expect(shares.map((s) => s.y)).to.deep.equal([1n, 2n, 3n, 4n, 5n].map((x) => mod(secret + a1 * x + a2 * x * x)));
    expect(reconstructSecret(shares, 2)).to.equal(secret);
  });

  it("reconstructs from EVERY subset of at least t+1 shares (n = 3, 5, 7; t = floor((n-1)/2))", () => {
    for (const { n, t } of SIZES) {
      const all = subsets(n, t + 1);
      fc.assert(
        fc.property(element, seedBytes, (secret, seed) => {
          const shares = splitSecret(secret, { threshold: t, parties: n }, deterministicRng(seed));
          expect(shares.length).to.equal(n);
          for (const subset of all) {
            const chosen = subset.map((i) => shares[i]!);
            expect(reconstructSecret(chosen, t)).to.equal(secret);
            expect(reconstructSecret([...chosen].reverse(), t)).to.equal(secret);
            checkShareConsistency(chosen, t);
          }
        }),
        { seed: 42 + n, numRuns: 15 },
      );
    }
  });

  it("vector form: splitVector/reconstructVector round-trip for every subset of at least t+1 parties", () => {
    for (const { n, t } of SIZES) {
      const all = subsets(n, t + 1);
      fc.assert(
        fc.property(fc.array(element, { minLength: 0, maxLength: 6 }), seedBytes, (secrets, seed) => {
          const byParty = splitVector(secrets, { threshold: t, parties: n }, deterministicRng(seed));
          expect(byParty.length).to.equal(n);
          byParty.forEach((v) => expect(v.length).to.equal(secrets.length));
          for (const subset of all) {
            const map = new Map(subset.map((i) => [i, byParty[i]!] as const));
            expect(reconstructVector(map, t, n)).to.deep.equal(secrets);
            const sparse = Array.from({ length: n }, (_, i) => (subset.includes(i) ? byParty[i] : undefined));
            expect(reconstructVector(sparse, t, n)).to.deep.equal(secrets);
          }
        }),
        { seed: 52 + n, numRuns: 10 },
      );
    }
  });

  it("splitVector consumes randomness like successive splitSecret calls (also across its internal chunks)", () => {
    for (const params of [{ threshold: 1, parties: 3 }, { threshold: 2, parties: 5 }]) {
      const secrets = randomSecrets(2500, "chunk-secrets");
      const byParty = splitVector(secrets, params, deterministicRng("chunks"));
      const sequential = deterministicRng("chunks");
      secrets.forEach((s, k) => {
        const shares = splitSecret(s, params, sequential);
        shares.forEach((share, i) => expect(byParty[i]![k]).to.equal(share.y));
      });
      expect(reconstructVector(byParty, params.threshold, params.parties)).to.deep.equal(secrets);
    }
  });

  it("perfect privacy: any t shares are consistent with every candidate secret via exactly one degree-t polynomial", () => {
    for (const { n, t } of SIZES) {
      fc.assert(
        fc.property(
          element,
          element,
          seedBytes,
          fc.shuffledSubarray([...Array(n).keys()], { minLength: t, maxLength: t }),
          (secret, candidate, seed, seen) => {
            const shares = splitSecret(secret, { threshold: t, parties: n }, deterministicRng(seed));
            const observed = seen.map((i) => shares[i]!);
            // The unique polynomial of degree <= t through (0, candidate) and the observed shares ...
            const f = interpolatePolynomial([{ x: 0n, y: candidate }, ...observed]);
            expect(f.length).to.equal(t + 1);
            expect(f[0]).to.equal(candidate);
            for (const share of observed) expect(evaluatePolynomial(f, share.x)).to.equal(share.y);
            // ... is exactly what splitSecret(candidate) draws when the rng yields f's other coefficients,
            // so each candidate is explained by exactly one choice of randomness: the t shares carry no
            // information about the secret.
            const resplit = splitSecret(candidate, { threshold: t, parties: n }, scriptedRng(drawEncoding(f.slice(1))));
            for (const i of seen) expect(resplit[i]).to.deep.equal(shares[i]);
            expect(reconstructSecret(resplit, t)).to.equal(candidate);
          },
        ),
        { seed: 62 + n, numRuns: 40 },
      );
    }
  });

  it("detects a single corrupted share among >= t+2 and locates it among >= t+3 (reconstructSecret, checkShareConsistency)", () => {
    for (const { n, t } of SIZES) {
      fc.assert(
        fc.property(
          element,
          seedBytes,
          fc.shuffledSubarray([...Array(n).keys()], { minLength: t + 2, maxLength: n }),
          fc.nat(),
          fc.bigInt({ min: 1n, max: R - 1n }),
          (secret, seed, subset, pick, delta) => {
            const shares = splitSecret(secret, { threshold: t, parties: n }, deterministicRng(seed));
            const bad = subset[pick % subset.length]!;
            const chosen = subset.map((i) => (i === bad ? { x: shares[i]!.x, y: mod(shares[i]!.y + delta) } : shares[i]!));
            const error = expectCode(() => reconstructSecret(chosen, t), "MATH_INCONSISTENT_SHARES");
            expectCode(() => checkShareConsistency(chosen, t), "MATH_INCONSISTENT_SHARES");
            const sortedX = subset.map((i) => i + 1).sort((a, b) => a - b);
            const basisX = sortedX.slice(0, t + 1);
            const extraX = sortedX.slice(t + 1);
            expect(error.details.basisX).to.deep.equal(basisX);
            const badX = bad + 1;
            // A bad extra share is the only one off the basis polynomial; a bad basis share moves that
            // polynomial, and then no extra share lies on it.
            expect(error.details.disagreeingX).to.deep.equal(basisX.includes(badX) ? extraX : [badX]);
            if (subset.length >= t + 3) {
              expect(error.details.suspectX).to.equal(badX);
              expect(error.details.suspectParty).to.equal(bad);
            } else {
              expect(error.details).to.not.have.property("suspectX");
            }
            // No share value leaks into the message or the details.
            const text = JSON.stringify(error.toJSON()) + error.message;
            for (const share of chosen) expect(text).to.not.include(share.y.toString());
          },
        ),
        { seed: 72 + n, numRuns: 60 },
      );
    }
  });

  it("reconstructVector detects a single corrupted entry among >= t+2 parties and names the entry", () => {
    for (const { n, t } of SIZES) {
      fc.assert(
        fc.property(
          fc.array(element, { minLength: 1, maxLength: 8 }),
          seedBytes,
          fc.shuffledSubarray([...Array(n).keys()], { minLength: t + 2, maxLength: n }),
          fc.nat(),
          fc.nat(),
          fc.bigInt({ min: 1n, max: R - 1n }),
          (secrets, seed, subset, pickParty, pickEntry, delta) => {
            const byParty = splitVector(secrets, { threshold: t, parties: n }, deterministicRng(seed));
            const bad = subset[pickParty % subset.length]!;
            const entry = pickEntry % secrets.length;
            const map = new Map<number, bigint[]>();
            for (const i of subset) {
              const values = [...byParty[i]!];
              if (i === bad) values[entry] = mod(values[entry]! + delta);
              map.set(i, values);
            }
            const error = expectCode(() => reconstructVector(map, t, n), "MATH_INCONSISTENT_SHARES");
            expect(error.details.index).to.equal(entry);
            expect((error.details.disagreeingX as number[]).length).to.be.greaterThan(0);
            if (subset.length >= t + 3) expect(error.details.suspectParty).to.equal(bad);
          },
        ),
        { seed: 82 + n, numRuns: 60 },
      );
    }
  });

  it("exactly t+1 shares cannot reveal corruption (there is nothing to check against)", () => {
    const shares = splitSecret(5n, { threshold: 2, parties: 5 }, deterministicRng("no-check"));
    const tampered = [shares[0]!, shares[1]!, { x: shares[2]!.x, y: mod(shares[2]!.y + 1n) }];
    checkShareConsistency(tampered, 2);
    expect(reconstructSecret(tampered, 2)).to.not.equal(5n);
  });

  it("degree-2t products reconstruct with threshold 2t from all 2t+1 parties (as BGW degree reduction needs)", () => {
    const params = { threshold: 2, parties: 5 };
    const a = randomSecrets(20, "a");
    const b = randomSecrets(20, "b");
    const sa = splitVector(a, params, deterministicRng("sa"));
    const sb = splitVector(b, params, deterministicRng("sb"));
    const products = sa.map((row, i) => row.map((y, k) => mod(y * sb[i]![k]!)));
    expect(reconstructVector(products, 4, 5)).to.deep.equal(a.map((x, k) => mod(x * b[k]!)));
    // The same through the cached λ at 0 of all five parties.
    const lambdas = lagrangeAtZero([0, 1, 2, 3, 4]);
    const viaLambdas = a.map((_, k) => mod(products.reduce((acc, row, i) => acc + lambdas[i]! * row[k]!, 0n)));
    expect(viaLambdas).to.deep.equal(a.map((x, k) => mod(x * b[k]!)));
    expectCode(() => reconstructVector(products.slice(0, 4), 4, 5), "MATH_NOT_ENOUGH_SHARES");
  });

  it("Lagrange data: λ at 0 for parties 0, 1, 2 (x = 1, 2, 3) is (3, -3, 1); plans are precomputed and cached", () => {
    expect(lagrangeAtZero([0, 1, 2])).to.deep.equal([3n, R - 3n, 1n]);
    expect(lagrangeAtZero([2, 0, 1])).to.deep.equal([1n, 3n, R - 3n]);
    expect(lagrangeAtZero([0, 1, 2])).to.equal(lagrangeAtZero([0, 1, 2]));
    expect(Object.isFrozen(lagrangeAtZero([0, 1, 2]))).to.equal(true);
    const plan = reconstructionPlan([4, 0, 2, 1], 1);
    expect(plan.partyIndices).to.deep.equal([0, 1, 2, 4]);
    expect(plan.basisParties).to.deep.equal([0, 1]);
    expect(plan.lagrangeAtZero).to.deep.equal([2n, R - 1n]); // x = 1, 2 at 0
    expect(plan.checkParties).to.deep.equal([2, 4]);
    // The line through x = 1, 2 evaluated at x = 3: -f(1) + 2 f(2); at x = 5: -3 f(1) + 4 f(2).
    expect(plan.checkCoefficients).to.deep.equal([
      [R - 1n, 2n],
      [R - 3n, 4n],
    ]);
    // The same coefficients as small signed integers, used by the batch loops.
    expect(plan.lagrangeAtZeroSigned).to.deep.equal([2n, -1n]);
    expect(plan.checkCoefficientsSigned).to.deep.equal([
      [-1n, 2n],
      [-3n, 4n],
    ]);
    // λ at 0 for x = 1..5 is (-1)^(j+1) C(5, j).
    expect(reconstructionPlan([0, 1, 2, 3, 4], 4).lagrangeAtZeroSigned).to.deep.equal([5n, -10n, 10n, -5n, 1n]);
    expect(reconstructionPlan([0, 1, 2, 4], 1)).to.equal(plan);
    expect(Object.isFrozen(plan)).to.equal(true);
    expect(partyX(0)).to.equal(1n);
    expect(partyX(254)).to.equal(255n);
  });

  it("handles empty batches", () => {
    const byParty = splitVector([], { threshold: 1, parties: 3 }, deterministicRng("empty"));
    expect(byParty).to.deep.equal([[], [], []]);
    expect(reconstructVector(byParty, 1, 3)).to.deep.equal([]);
  });

  it("rejects bad sharing parameters", () => {
    validateSharingParams({ threshold: 1, parties: 2 });
    validateSharingParams({ threshold: 254, parties: MAX_PARTIES });
    for (const params of [
      { threshold: 0, parties: 3 },
      { threshold: 3, parties: 3 },
      { threshold: 4, parties: 3 },
      { threshold: 1, parties: 256 },
      { threshold: 1, parties: 1 },
      { threshold: 1.5, parties: 3 },
      { threshold: 1, parties: Number.NaN },
      { threshold: -1, parties: 3 },
    ]) {
      expectCode(() => validateSharingParams(params), "MATH_INVALID_ARGUMENT");
      expectCode(() => splitSecret(1n, params, deterministicRng("p")), "MATH_INVALID_ARGUMENT");
      expectCode(() => splitVector([1n], params, deterministicRng("p")), "MATH_INVALID_ARGUMENT");
    }
    expectCode(() => validateSharingParams(null as unknown as { threshold: number; parties: number }), "MATH_INVALID_ARGUMENT");
  });

  it("rejects bad secrets, shares and rng output", () => {
    const params = { threshold: 1, parties: 3 };
    expectCode(() => splitSecret(R, params, deterministicRng("s")), "MATH_INVALID_ARGUMENT");
    expectCode(() => splitSecret(-1n, params, deterministicRng("s")), "MATH_INVALID_ARGUMENT");
    expect(expectCode(() => splitVector([1n, R], params, deterministicRng("s")), "MATH_INVALID_ARGUMENT").details.index).to.equal(1);
    expectCode(() => splitSecret(1n, params, () => new Uint8Array(10)), "MATH_INVALID_ARGUMENT");

    const shares = splitSecret(9n, { threshold: 2, parties: 5 }, deterministicRng("s"));
    const [s0, s1, s2] = shares as [Share, Share, Share];
    expectCode(() => reconstructSecret([s0, s1], 2), "MATH_NOT_ENOUGH_SHARES");
    expectCode(() => reconstructSecret([], 1), "MATH_NOT_ENOUGH_SHARES");
    expectCode(() => checkShareConsistency([s0], 1), "MATH_NOT_ENOUGH_SHARES");
    expectCode(() => reconstructSecret([s0, s1, { ...s1 }], 2), "MATH_INVALID_ARGUMENT"); // duplicate x
    expectCode(() => reconstructSecret([s0, s1, { x: 0n, y: 1n }], 2), "MATH_INVALID_ARGUMENT");
    expectCode(() => reconstructSecret([s0, s1, { x: 256n, y: 1n }], 2), "MATH_INVALID_ARGUMENT");
    expectCode(() => reconstructSecret([s0, s1, { x: 3 as unknown as bigint, y: s2.y }], 2), "MATH_INVALID_ARGUMENT");
    expectCode(() => reconstructSecret([s0, s1, { x: s2.x, y: R }], 2), "MATH_INVALID_ARGUMENT");
    expectCode(() => reconstructSecret([s0, s1, s2], 0), "MATH_INVALID_ARGUMENT");
    expectCode(() => reconstructSecret([s0, s1, s2], 2.5), "MATH_INVALID_ARGUMENT");
    expectCode(() => partyX(255), "MATH_INVALID_ARGUMENT");
    expectCode(() => partyX(-1), "MATH_INVALID_ARGUMENT");
    expectCode(() => lagrangeAtZero([0, 0]), "MATH_INVALID_ARGUMENT");
    expectCode(() => lagrangeAtZero([]), "MATH_INVALID_ARGUMENT");
    expectCode(() => reconstructionPlan([0, 1, 1], 1), "MATH_INVALID_ARGUMENT");
    expectCode(() => reconstructionPlan([0], 1), "MATH_NOT_ENOUGH_SHARES");
  });

  it("reconstructVector rejects malformed batches", () => {
    const byParty = splitVector([1n, 2n, 3n], { threshold: 1, parties: 3 }, deterministicRng("v"));
    const [p0, p1, p2] = byParty as [bigint[], bigint[], bigint[]];
    expectCode(() => reconstructVector(new Map([[0, p0]]), 1, 3), "MATH_NOT_ENOUGH_SHARES");
    expectCode(() => reconstructVector([p0, undefined, undefined], 1, 3), "MATH_NOT_ENOUGH_SHARES");
    const short = expectCode(() => reconstructVector([p0, p1.slice(0, 2), p2], 1, 3), "MATH_INVALID_ARGUMENT");
    expect(short.details.partyIndex).to.equal(1);
    expectCode(() => reconstructVector(new Map([[0, p0], [3, p1]]), 1, 3), "MATH_INVALID_ARGUMENT");
    expectCode(() => reconstructVector(new Map([[0, p0], [-1, p1]]), 1, 3), "MATH_INVALID_ARGUMENT");
    expectCode(() => reconstructVector([p0, p1, p2, p2], 1, 3), "MATH_INVALID_ARGUMENT");
    const outOfRange = expectCode(() => reconstructVector([p0, [p1[0]!, R, p1[2]!], p2], 1, 3), "MATH_INVALID_ARGUMENT");
    expect(outOfRange.details).to.include({ partyIndex: 1, index: 1 });
    expectCode(() => reconstructVector([p0, p1, p2], 3, 3), "MATH_INVALID_ARGUMENT");
    expectCode(() => reconstructVector([p0, p1, p2], 1, 300), "MATH_INVALID_ARGUMENT");
    expectCode(() => reconstructVector("x" as unknown as bigint[][], 1, 3), "MATH_INVALID_ARGUMENT");
    expectCode(() => reconstructVector(new Map([[0, p0], [1, "x" as unknown as bigint[]]]), 1, 3), "MATH_INVALID_ARGUMENT");
  });
});

function randomSecrets(count: number, seed: string): bigint[] {
  const bytes = deterministicRng(seed)(32 * count);
  return Array.from({ length: count }, (_, k) => BigInt("0x" + hex(bytes.subarray(32 * k, 32 * k + 32))) % R);
}
