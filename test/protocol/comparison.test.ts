import { expect } from "chai";
import fc from "fast-check";
import { decodeSigned } from "../../node/math/field.ts";
import { ProgramBuilder } from "../../node/program/program-builder.ts";
import { MAX_COMPARISON_BITS, type Program } from "../../node/program/program.ts";
import { bit, fixed, int, rangeOf } from "../../node/program/secret-types.ts";
import { ltzRounds, eqzRounds, lowBits, publicBitPlane, selectElements } from "../../node/protocol/comparison.ts";
import { frVecFromBigints, frVecToBigints } from "../../node/math/fr-vec.ts";
import { expectMatchesPlain, fulfilled, honestMajority, runAll, signedOutput } from "./mpc-harness.ts";

/** lt, le, eq and the raw ltz/eqz of an int(bits) vector pair. */
function comparisons(bits: number, length: number): Program {
  const p = new ProgramBuilder(`compare-${bits}`);
  const a = p.input("a", { owner: 0, type: int(bits), length });
  const b = p.input("b", { owner: 1, type: int(bits), length });
  p.output("lt", p.lt(a, b));
  p.output("le", p.le(a, b));
  p.output("eq", p.eq(a, b));
  p.output("ltz", p.ltz(a));
  p.output("eqz", p.eqz(a));
  return p.build();
}

/** Every pair of {min, min + 1, -1, 0, 1, max - 1, max} of int(bits) (those in range). */
function edgePairs(bits: number): { a: bigint[]; b: bigint[] } {
  const { lo, hi } = rangeOf(int(bits));
  const edges = [...new Set([lo, lo + 1n, -1n, 0n, 1n, hi - 1n, hi])].filter((v) => v >= lo && v <= hi);
  const a: bigint[] = [];
  const b: bigint[] = [];
  for (const x of edges) for (const y of edges) a.push(x), b.push(y);
  return { a, b };
}

describe("comparison, equality and truncation on shares", () => {
  for (const bits of [1, 2, 3, 8, 32, 64]) {
    it(`compares every pair of edge values of int(${bits}) exactly (n = 3)`, async () => {
      const { a, b } = edgePairs(bits);
      await expectMatchesPlain(comparisons(bits, a.length), { a, b }, 3);
    });
  }

  it(`works at the widest comparable width, ${MAX_COMPARISON_BITS} bits (k + κ + 8 = 253)`, async () => {
    const p = new ProgramBuilder("widest");
    const a = p.input("a", { owner: 0, type: int(128), length: 6 });
    const wide = p.mulConst(a, 1n << 77n); // int(205)
    expect(wide.type).to.deep.equal(int(MAX_COMPARISON_BITS));
    p.output("neg", p.ltz(wide));
    p.output("zero", p.eqz(wide));
    p.output("half", p.trunc(wide, 200));
    const { lo, hi } = rangeOf(int(128));
    await expectMatchesPlainWithin(p.build(), { a: [lo, hi, 0n, -1n, 1n, lo + 1n] }, 3, ["half"]);
  });

  for (const n of [3, 5, 7]) {
    it(`equals the plaintext comparison for random 32-bit values, n = ${n} (property)`, async () => {
      const program = comparisons(32, 6);
      const int32 = fc.bigInt({ min: -(1n << 31n), max: (1n << 31n) - 1n });
      await fc.assert(
        fc.asyncProperty(fc.array(int32, { minLength: 6, maxLength: 6 }), fc.array(int32, { minLength: 6, maxLength: 6 }), async (a, b) => {
          // Force some ties.
          b[0] = a[0]!;
          await expectMatchesPlain(program, { a, b }, n, { seed: `cmp${n}` });
        }),
        { seed: n, numRuns: n === 3 ? 8 : 4 },
      );
    });
  }

  it("compares bits and fixed-point values", async () => {
    const p = new ProgramBuilder("mixed-compare");
    const x = p.input("x", { owner: 0, type: fixed(24, 8), length: 4 });
    const y = p.input("y", { owner: 1, type: fixed(24, 8), length: 4 });
    const c = p.input("c", { owner: 1, type: bit(), length: 4 });
    p.output("lt", p.lt(x, y));
    p.output("ge-half", p.ge(x, "0.5"));
    p.output("c-zero", p.eqz(c));
    p.output("c-and", p.and(c, p.lt(x, y)));
    p.output("c-or", p.or(c, p.eq(x, y)));
    await expectMatchesPlain(p.build(), { x: ["0.5", "-1.25", "3", "0.49609375"], y: ["0.5", "-1.5", "3.00390625", "0"], c: [0n, 1n, 1n, 0n] }, 3);
  });

  it("makes random bits by square roots (Damgård et al.) and still compares exactly (n = 5, forced)", async () => {
    const { a, b } = edgePairs(16);
    await expectMatchesPlain(comparisons(16, a.length), { a, b }, 5, { bitMethod: "square" });
  });

  it("t = 4 (n = 9) uses square-root bits by default", async () => {
    const { a, b } = edgePairs(8);
    await expectMatchesPlain(comparisons(8, a.length), { a, b }, 9);
  });

  it("truncates probabilistically: floor or floor + 1, up with probability equal to the discarded fraction", async () => {
    const p = new ProgramBuilder("trunc");
    const x = p.input("x", { owner: 0, type: int(20), length: 400 });
    p.output("q", p.trunc(x, 4));
    const program = p.build();
    // 7 / 16 rounds up with probability 7/16; -9 / 16 = -0.5625 -> -1 or 0 (up with probability 7/16).
    const values = [...new Array<bigint>(200).fill(7n), ...new Array<bigint>(199).fill(-9n), -(1n << 19n)];
    const runs = fulfilled((await runAll(program, { x: values }, 3)).results);
    const q = signedOutput(runs[0]!.opened, "q");
    for (const run of runs) expect(run.opened).to.deep.equal(runs[0]!.opened);
    const up7 = q.slice(0, 200).filter((v) => v === 1n).length;
    expect(q.slice(0, 200).every((v) => v === 0n || v === 1n)).to.equal(true);
    expect(up7).to.be.within(55, 120); // mean 87.5, sd ≈ 7
    const upNeg = q.slice(200, 399).filter((v) => v === 0n).length;
    expect(q.slice(200, 399).every((v) => v === -1n || v === 0n)).to.equal(true);
    expect(upNeg).to.be.within(55, 120);
    expect(q[399]).to.equal(-(1n << 15n)); // exact multiples never round
  });

  it("divides by public constants within the documented bound", async () => {
    const p = new ProgramBuilder("div");
    const x = p.input("x", { owner: 0, type: fixed(32, 10), length: 5 });
    const i = p.input("i", { owner: 0, type: int(32), length: 5 });
    p.output("x3", p.divConst(x, 3));
    p.output("x8", p.divConst(x, 8));
    p.output("i7", p.divConst(i, 7));
    p.output("prod", p.mulFixed(x, x));
    const program = p.build();
    const xs = ["1", "-1", "1000.5", "-2097151.999", "0"];
    const is = [1000n, -1000n, 7n, -(1n << 31n), (1n << 31n) - 1n];
    const runs = fulfilled((await runAll(program, { x: xs, i: is }, 5)).results);
    const stored = xs.map((v) => BigInt(Math.round(Number(v) * 1024)));
    const within = (got: bigint, num: bigint, den: bigint, ulps: number): void => {
      // |got - num/den| < ulps  <=>  |got·den - num| < ulps·den
      const diff = got * den - num;
      expect(Number(diff < 0n ? -diff : diff) < ulps * Number(den), `${got} vs ${num}/${den}`).to.equal(true);
    };
    const out = runs[0]!.opened;
    signedOutput(out, "x3").forEach((v, k) => within(v, stored[k]!, 3n, 1 + 2 ** -6));
    signedOutput(out, "x8").forEach((v, k) => within(v, stored[k]!, 8n, 1));
    signedOutput(out, "i7").forEach((v, k) => within(v, is[k]!, 7n, 1 + 2 ** -6));
    signedOutput(out, "prod").forEach((v, k) => within(v, stored[k]! * stored[k]!, 1024n, 1));
  });

  it("reports the documented online round counts", () => {
    expect(ltzRounds(33)).to.equal(1 + 4); // opening + ceil(log2 16) tree rounds
    expect(ltzRounds(2)).to.equal(1);
    expect(ltzRounds(1)).to.equal(0);
    expect(eqzRounds(33)).to.equal(1 + 5);
  });

  it("extracts public bits and low bits from packed values, and selects elements by a public index", () => {
    const c = frVecFromBigints([0b1011n, (1n << 200n) + 5n, 0n]);
    expect([...publicBitPlane(c, 0, 3)]).to.deep.equal([1, 1, 0]);
    expect([...publicBitPlane(c, 2, 3)]).to.deep.equal([0, 1, 0]);
    expect([...publicBitPlane(c, 200, 3)]).to.deep.equal([0, 1, 0]);
    expect(frVecToBigints(lowBits(c, 3))).to.deep.equal([0b011n, 5n, 0n]);
    expect(frVecToBigints(lowBits(c, 201))).to.deep.equal([0b1011n, (1n << 200n) + 5n, 0n]);
    const x = frVecFromBigints([1n, 2n, 3n]);
    const y = frVecFromBigints([10n, 20n, 30n]);
    expect(frVecToBigints(selectElements([x, y], new Uint8Array([1, 0, 1])))).to.deep.equal([10n, 2n, 30n]);
    // Unaligned views take the byte path.
    const buffer = new Uint8Array(3 * 32 + 1);
    buffer.set(y, 1);
    expect(frVecToBigints(selectElements([x, buffer.subarray(1)], new Uint8Array([0, 1, 1])))).to.deep.equal([1n, 20n, 30n]);
  });
});

/** Like expectMatchesPlain, but outputs in `approximate` may exceed the plaintext (floor) by 1. */
async function expectMatchesPlainWithin(program: Program, values: Record<string, bigint[]>, n: number, approximate: string[]): Promise<void> {
  const { evaluatePlain } = await import("../../node/program/plain-evaluator.ts");
  const plain = evaluatePlain(program, values);
  const runs = fulfilled((await runAll(program, values, n, honestMajority(n))).results);
  for (const run of runs) {
    for (const [name, expected] of plain) {
      const got = run.opened.get(name)!;
      if (!approximate.includes(name)) {
        expect(got, name).to.deep.equal(expected);
        continue;
      }
      got.forEach((v, i) => {
        const d = decodeSigned(v) - decodeSigned(expected[i]!);
        expect(d === 0n || d === 1n, `${name}[${i}]`).to.equal(true);
      });
    }
  }
}
