import { expect } from "chai";
import fc from "fast-check";
import { decodeSigned } from "../../node/math/field.ts";
import { formatBinaryFixed } from "../../node/program/decimal.ts";
import type { InputValue } from "../../node/program/input-values.ts";
import { evaluatePlain } from "../../node/program/plain-evaluator.ts";
import type { Program } from "../../node/program/program.ts";
import { encodeResult } from "../../node/program/result-encoding.ts";
import { fixed, int, rangeOf } from "../../node/program/secret-types.ts";
import {
  countAbove,
  dotProduct,
  firstPriceAuction,
  fixedMean,
  histogram,
  linearRegression,
  maxAndArgmax,
  portfolioReturn,
  secondPriceAuction,
  setIntersectionCardinality,
  totalAndMean,
  varianceAndStddev,
  weightedSum,
} from "../../node/program/standard-programs.ts";
import { expectMatchesPlain, fulfilled, honestMajority, runAll, signedOutput } from "./mpc-harness.ts";

type Values = Record<string, InputValue[]>;

const intArb = (bits: number): fc.Arbitrary<bigint> => {
  const { lo, hi } = rangeOf(int(bits));
  // Edges often, the rest uniform.
  return fc.oneof({ weight: 1, arbitrary: fc.constantFrom(lo, hi, 0n, -1n, 1n) }, { weight: 3, arbitrary: fc.bigInt({ min: lo, max: hi }) });
};
const vector = (bits: number, length: number): fc.Arbitrary<bigint[]> => fc.array(intArb(bits), { minLength: length, maxLength: length });
/** Fixed-point values as exact decimal strings (stored integer in int(bits)). */
const fixedArb = (bits: number, frac: number, length: number): fc.Arbitrary<string[]> =>
  fc.array(intArb(bits).map((v) => formatBinaryFixed(v, frac)), { minLength: length, maxLength: length });

/** Inputs "values-0..owners-1" of `length` values each. */
const ownerValues = (owners: number, bits: number, length: number): fc.Arbitrary<Values> =>
  fc.tuple(...Array.from({ length: owners }, () => vector(bits, length))).map((lists) => Object.fromEntries(lists.map((l, i) => [`values-${i}`, l])));

interface ExactCase {
  readonly name: string;
  readonly program: Program;
  readonly values: fc.Arbitrary<Values>;
  /** Deterministic edge cases (run at n = 3). */
  readonly edges: readonly Values[];
}

const max16 = (1n << 15n) - 1n;
const min16 = -(1n << 15n);
const max32 = (1n << 31n) - 1n;
const min32 = -(1n << 31n);

const exactCases: ExactCase[] = [
  {
    name: "totalAndMean",
    program: totalAndMean({ owners: 3, valuesPerOwner: 2, bits: 64 }),
    values: ownerValues(3, 64, 2),
    edges: [{ "values-0": [(1n << 63n) - 1n, (1n << 63n) - 1n], "values-1": [(1n << 63n) - 1n, 0n], "values-2": [-(1n << 63n), -1n] }],
  },
  {
    name: "varianceAndStddev",
    program: varianceAndStddev({ owners: 2, valuesPerOwner: 3, bits: 32 }),
    values: ownerValues(2, 32, 3),
    edges: [
      { "values-0": [0n, 0n, 0n], "values-1": [0n, 0n, 0n] },
      { "values-0": [max32, min32, max32], "values-1": [min32, max32, min32] },
    ],
  },
  {
    name: "varianceAndStddev (sample, one owner)",
    program: varianceAndStddev({ owners: 1, valuesPerOwner: 4, bits: 16, sample: true, decimals: 3 }),
    values: ownerValues(1, 16, 4),
    edges: [{ "values-0": [min16, max16, -5n, 5n] }],
  },
  {
    name: "dotProduct",
    program: dotProduct({ length: 4, bits: 32 }),
    values: ownerValues(2, 32, 4),
    edges: [{ "values-0": [max32, min32, 0n, -1n], "values-1": [max32, min32, max32, 1n] }],
  },
  {
    name: "portfolioReturn",
    program: portfolioReturn({ banks: 3, assets: 2, holdingBits: 40, returnBits: 24, returnFrac: 16 }),
    values: fc
      .tuple(...Array.from({ length: 3 }, () => fc.tuple(vector(40, 2), fixedArb(24, 16, 2))))
      .map((banks) => Object.fromEntries(banks.flatMap(([h, r], i) => [[`holdings-${i}`, h], [`returns-${i}`, r]]))),
    edges: [{ "holdings-0": [1000n, -250n], "returns-0": ["0.0125", "-0.5"], "holdings-1": [0n, 1n], "returns-1": ["127.9999847412109375", "-128"], "holdings-2": [7n, 7n], "returns-2": ["0", "0.0000152587890625"] }],
  },
  {
    name: "histogram",
    program: histogram({ owners: 2, valuesPerOwner: 3, bits: 16, boundaries: [-100, 0, 100] }),
    values: ownerValues(2, 16, 3),
    edges: [{ "values-0": [-101n, -100n, -1n], "values-1": [0n, 99n, 100n] }, { "values-0": [min16, max16, 0n], "values-1": [min16, min16, min16] }],
  },
  {
    name: "histogram (one owner)",
    program: histogram({ owners: 1, valuesPerOwner: 4, bits: 8, boundaries: [0] }),
    values: ownerValues(1, 8, 4),
    edges: [{ "values-0": [-128n, -1n, 0n, 127n] }],
  },
  {
    name: "countAbove",
    program: countAbove({ owners: 3, valuesPerOwner: 2, bits: 16, threshold: 10 }),
    values: ownerValues(3, 16, 2),
    edges: [{ "values-0": [10n, 11n], "values-1": [9n, max16], "values-2": [min16, 10n] }],
  },
  {
    name: "maxAndArgmax",
    program: maxAndArgmax({ owners: 3, valuesPerOwner: 2, bits: 32 }),
    values: ownerValues(3, 32, 2),
    edges: [
      { "values-0": [5n, 7n], "values-1": [7n, -3n], "values-2": [7n, 0n] }, // ties: first 7 wins (index 1)
      { "values-0": [min32, min32], "values-1": [min32, min32], "values-2": [min32, min32] },
      { "values-0": [min32, 0n], "values-1": [0n, 0n], "values-2": [0n, max32] },
    ],
  },
  {
    name: "maxAndArgmax (one owner, one value)",
    program: maxAndArgmax({ owners: 1, valuesPerOwner: 1, bits: 8 }),
    values: ownerValues(1, 8, 1),
    edges: [{ "values-0": [-128n] }],
  },
  {
    name: "firstPriceAuction",
    program: firstPriceAuction({ bidders: 5, bits: 32 }),
    values: ownerValues(5, 32, 1),
    edges: [{ "values-0": [100n], "values-1": [250n], "values-2": [250n], "values-3": [-1n], "values-4": [249n] }],
  },
  {
    name: "secondPriceAuction",
    program: secondPriceAuction({ bidders: 5, bits: 32 }),
    values: ownerValues(5, 32, 1),
    edges: [
      { "values-0": [100n], "values-1": [250n], "values-2": [250n], "values-3": [-1n], "values-4": [249n] }, // tie on top: price = 250
      { "values-0": [max32], "values-1": [min32], "values-2": [0n], "values-3": [min32], "values-4": [max32 - 1n] },
    ],
  },
  {
    name: "secondPriceAuction (two bidders)",
    program: secondPriceAuction({ bidders: 2, bits: 16 }),
    values: ownerValues(2, 16, 1),
    edges: [{ "values-0": [min16], "values-1": [min16] }],
  },
  {
    name: "setIntersectionCardinality (2 owners)",
    program: setIntersectionCardinality({ owners: 2, idsPerOwner: [3, 4], bits: 32 }),
    // A small ID domain makes overlaps likely.
    values: fc.tuple(fc.uniqueArray(fc.bigInt({ min: 0n, max: 6n }), { minLength: 3, maxLength: 3 }), fc.array(fc.bigInt({ min: 0n, max: 6n }), { minLength: 4, maxLength: 4 })).map(([a, b]) => ({ "values-0": a, "values-1": b })),
    edges: [
      { "values-0": [max32, min32, 0n], "values-1": [min32, max32, 0n, 1n] },
      { "values-0": [1n, 2n, 3n], "values-1": [4n, 5n, 6n, 7n] },
      { "values-0": [5n, 6n, 7n], "values-1": [5n, 5n, 5n, 5n] }, // duplicates in the other list count once
    ],
  },
  {
    name: "setIntersectionCardinality (3 owners)",
    program: setIntersectionCardinality({ owners: 3, idsPerOwner: 3, bits: 64 }),
    values: fc.tuple(...Array.from({ length: 3 }, () => fc.uniqueArray(fc.bigInt({ min: -3n, max: 3n }), { minLength: 3, maxLength: 3 }))).map((lists) => Object.fromEntries(lists.map((l, i) => [`values-${i}`, l]))),
    edges: [{ "values-0": [-(1n << 63n), 0n, (1n << 63n) - 1n], "values-1": [(1n << 63n) - 1n, -(1n << 63n), 5n], "values-2": [-(1n << 63n), 9n, (1n << 63n) - 1n] }],
  },
  {
    name: "linearRegression",
    program: linearRegression({ owners: 2, pointsPerOwner: 3, xType: int(16), yType: fixed(24, 8), decimals: 8 }),
    values: fc.tuple(vector(16, 3), fixedArb(24, 8, 3), vector(16, 3), fixedArb(24, 8, 3)).map(([x0, y0, x1, y1]) => ({ "x-0": x0, "y-0": y0, "x-1": x1, "y-1": y1 })),
    edges: [
      { "x-0": [1n, 2n, 3n], "y-0": ["2", "4", "6"], "x-1": [4n, 5n, 6n], "y-1": ["8", "10", "12"] }, // exactly y = 2x
      { "x-0": [7n, 7n, 7n], "y-0": ["1", "2", "3"], "x-1": [7n, 7n, 7n], "y-1": ["4", "5", "6"] }, // all x equal: undefined
      { "x-0": [min16, max16, 0n], "y-0": ["-32768", "32767.99609375", "0"], "x-1": [-1n, 1n, min16], "y-1": ["0.00390625", "-0.00390625", "1"] },
    ],
  },
];

describe("standard programs under MPC equal their plaintext evaluation", () => {
  for (const c of exactCases) {
    it(`${c.name}: edge cases (n = 3) and random inputs (n = 3, 5, 7; property)`, async () => {
      for (const values of c.edges) {
        const runs = await expectMatchesPlain(c.program, values, 3, { seed: `${c.name}/edge` });
        // The signed result documents agree too.
        expect(encodeResult(c.program, runs[0]!.opened)).to.deep.equal(encodeResult(c.program, evaluatePlain(c.program, values)));
      }
      for (const n of [3, 5, 7]) {
        await fc.assert(
          fc.asyncProperty(c.values, async (values) => {
            await expectMatchesPlain(c.program, values, n, { seed: `${c.name}/${n}` });
          }),
          { seed: n * 1000 + c.name.length, numRuns: n === 3 ? 3 : 1 },
        );
      }
    });
  }

  it("first-price auction: the first of equal highest bids wins", async () => {
    const program = firstPriceAuction({ bidders: 4, bits: 16 });
    const runs = fulfilled((await runAll(program, { "values-0": [9n], "values-1": [12n], "values-2": [12n], "values-3": [12n] }, 5)).results);
    expect(signedOutput(runs[0]!.opened, "winner")).to.deep.equal([1n]);
    expect(signedOutput(runs[0]!.opened, "price")).to.deep.equal([12n]);
  });

  it("linear regression reveals the exact least-squares line (rendered, rounded half-to-even)", async () => {
    const program = linearRegression({ owners: 2, pointsPerOwner: 2, xType: int(8), yType: int(8), decimals: 4 });
    const values = { "x-0": [0n, 1n], "y-0": [1n, 2n], "x-1": [2n, 3n], "y-1": [2n, 5n] };
    const runs = fulfilled((await runAll(program, values, 3)).results);
    // x̄ = 1.5, ȳ = 2.5, Sxy = 3.5·... exact: slope = 6/5 = 1.2, intercept = 0.7
    const doc = JSON.parse(new TextDecoder().decode(encodeResult(program, runs[0]!.opened)));
    expect(doc.outputs).to.deep.equal({ slope: "1.2000", intercept: "0.7000" });
    // The opened form is the reduced fraction of the stored values.
    expect(runs[0]!.opened.get("slope")!.map(decodeSigned)).to.deep.equal([6n, 5n]);
  });

  describe("fixed point within the stated error bounds", () => {
    /** |got - num/den| < bound (all exact rationals: got and num/den in units of the last place). */
    const within = (got: bigint, num: bigint, den: bigint, bound: number): boolean => {
      const diff = got * den - num;
      return Number(diff < 0n ? -diff : diff) < bound * Number(den);
    };

    for (const n of [3, 5, 7]) {
      it(`weightedSum: |result - exact| < 2^-frac (one truncation), n = ${n} (property)`, async () => {
        const program = weightedSum({ owners: 2, valuesPerOwner: 2, valueType: fixed(24, 8), weightType: fixed(16, 8) });
        const arb = fc.tuple(vector(24, 2), vector(16, 2), vector(24, 2), vector(16, 2));
        await fc.assert(
          fc.asyncProperty(arb, async ([v0, w0, v1, w1]) => {
            const values = {
              "values-0": v0.map((v) => formatBinaryFixed(v, 8)),
              "weights-0": w0.map((v) => formatBinaryFixed(v, 8)),
              "values-1": v1.map((v) => formatBinaryFixed(v, 8)),
              "weights-1": w1.map((v) => formatBinaryFixed(v, 8)),
            };
            const exact = v0[0]! * w0[0]! + v0[1]! * w0[1]! + v1[0]! * w1[0]! + v1[1]! * w1[1]!; // frac 16
            const runs = fulfilled((await runAll(program, values, n, honestMajority(n), { seed: `ws${n}` })).results);
            for (const run of runs) {
              const got = signedOutput(run.opened, "weighted-sum")[0]!; // frac 8
              expect(within(got, exact, 256n, 1), `${got} vs ${exact}/256`).to.equal(true);
              expect(run.opened).to.deep.equal(runs[0]!.opened);
            }
          }),
          { seed: 77 + n, numRuns: n === 3 ? 4 : 2 },
        );
      });
    }

    it("fixedMean: |result - exact mean| < (1 + 2^-6)·2^-frac", async () => {
      const program = fixedMean({ owners: 3, valuesPerOwner: 2, bits: 32, frac: 10 });
      const arb = fc.tuple(vector(32, 2), vector(32, 2), vector(32, 2));
      await fc.assert(
        fc.asyncProperty(arb, async (lists) => {
          const values = Object.fromEntries(lists.map((l, i) => [`values-${i}`, l.map((v) => formatBinaryFixed(v, 10))]));
          const sum = lists.flat().reduce((a, b) => a + b, 0n);
          const runs = fulfilled((await runAll(program, values, 3, 1, { seed: "mean" })).results);
          expect(within(signedOutput(runs[0]!.opened, "mean")[0]!, sum, 6n, 1 + 2 ** -6)).to.equal(true);
        }),
        { seed: 5, numRuns: 4 },
      );
    });
  });
});
