import { expect } from "chai";
import { keccak256, toUtf8Bytes } from "ethers";
import { ConsortError } from "../../node/errors.ts";
import { evaluatePlain } from "../../node/program/plain-evaluator.ts";
import { decodeProgram, encodeProgram, programHash } from "../../node/program/program-encoding.ts";
import { programDataOwnerCount, programInputs } from "../../node/program/program.ts";
import { decodeResult, encodeResult } from "../../node/program/result-encoding.ts";
import { field, fixed, int } from "../../node/program/secret-types.ts";
import {
  countAbove,
  firstPriceAuction,
  fixedMean,
  histogram,
  linearRegression,
  maxAndArgmax,
  portfolioReturn,
  secondPriceAuction,
  setIntersectionCardinality,
  standardInputName,
  totalAndMean,
  varianceAndStddev,
  weightedSum,
} from "../../node/program/standard-programs.ts";

describe("standard programs: totalAndMean", () => {
  it("has a stable canonical encoding and hash for the demo (3 banks, one 64-bit value each)", () => {
    const expected =
      '{"derived":[{"decimals":2,"denominator":"3","name":"mean","numerator":"total","op":"ratio"}],' +
      '"gates":[' +
      '{"id":0,"length":1,"name":"values-0","op":"input","owner":0,"type":{"bits":64,"kind":"int"}},' +
      '{"id":1,"length":1,"name":"values-1","op":"input","owner":1,"type":{"bits":64,"kind":"int"}},' +
      '{"id":2,"length":1,"name":"values-2","op":"input","owner":2,"type":{"bits":64,"kind":"int"}},' +
      '{"args":[0,1,2],"id":3,"length":1,"op":"add","type":{"bits":66,"kind":"int"}}],' +
      '"name":"total-and-mean",' +
      '"outputs":[{"name":"total","reveal":"all","wire":3}],' +
      '"version":"consort.program/v1"}';
    const bytes = encodeProgram(totalAndMean({ owners: 3, valuesPerOwner: 1, bits: 64 }));
    expect(new TextDecoder().decode(bytes)).to.equal(expected);
    expect(programHash(bytes)).to.equal(keccak256(toUtf8Bytes(expected)));
  });

  it("sums element-wise across owners, then reduces", () => {
    const program = totalAndMean({ owners: 2, valuesPerOwner: 3, bits: 32, decimals: 4, name: "portfolio-total-and-mean" });
    expect(program.name).to.equal("portfolio-total-and-mean");
    expect(program.gates.map((g) => g.op)).to.deep.equal(["input", "input", "add", "reduceSum"]);
    expect(programDataOwnerCount(program)).to.equal(2);
    expect(programInputs(program).map((g) => [g.name, g.owner, g.length])).to.deep.equal([
      [standardInputName(0), 0, 3],
      [standardInputName(1), 1, 3],
    ]);
    const opened = evaluatePlain(program, { "values-0": [1n, 2n, 3n], "values-1": [-4n, 5n, 11n] });
    expect(decodeResult(program, encodeResult(program, opened)).outputs).to.deep.equal({ total: "18", mean: "3.0000" });
    expect(decodeProgram(encodeProgram(program))).to.deep.equal(program);
  });

  it("works for a single data owner with a single value", () => {
    const program = totalAndMean({ owners: 1, valuesPerOwner: 1, bits: 8 });
    expect(program.gates.map((g) => g.op)).to.deep.equal(["input"]);
    const opened = evaluatePlain(program, { "values-0": [-128n] });
    expect(decodeResult(program, encodeResult(program, opened)).outputs).to.deep.equal({ total: "-128", mean: "-128.00" });
  });

  it("rejects impossible shapes with PROGRAM_INVALID", () => {
    for (const options of [
      { owners: 0, valuesPerOwner: 1, bits: 64 },
      { owners: 2, valuesPerOwner: 0, bits: 64 },
      { owners: 2, valuesPerOwner: 1, bits: 129 },
      { owners: 2.5, valuesPerOwner: 1, bits: 64 },
      { owners: 2, valuesPerOwner: 1, bits: 64, name: "bad name" },
      { owners: 2, valuesPerOwner: 1, bits: 64, decimals: 99 },
    ]) {
      expect(() => totalAndMean(options), JSON.stringify(options))
        .to.throw(ConsortError)
        .with.property("code", "PROGRAM_INVALID");
    }
  });
});

describe("standard programs: the library", () => {
  const invalid = (fn: () => unknown): void => {
    expect(fn).to.throw(ConsortError).with.property("code", "PROGRAM_INVALID");
  };

  it("variance and standard deviation: one dot product and one square in the same round, population or sample", () => {
    const program = varianceAndStddev({ owners: 2, valuesPerOwner: 3, bits: 16 });
    expect(program.gates.filter((g) => g.op === "dot")).to.have.length(1);
    expect(program.gates.filter((g) => g.op === "mul")).to.have.length(1);
    const values = { "values-0": [1n, 2n, 3n], "values-1": [4n, 5n, 6n] };
    // mean 3.5, population variance 17.5 / 6 = 2.916667, sample 3.5
    expect(decodeResult(program, encodeResult(program, evaluatePlain(program, values))).outputs).to.deep.equal({
      "scaled-variance": "105",
      variance: "2.916667",
      stddev: "1.707825",
    });
    const sample = varianceAndStddev({ owners: 2, valuesPerOwner: 3, bits: 16, sample: true, decimals: 2 });
    expect(decodeResult(sample, encodeResult(sample, evaluatePlain(sample, values))).outputs).to.deep.include({ variance: "3.50", stddev: "1.87" });
    invalid(() => varianceAndStddev({ owners: 1, valuesPerOwner: 1, bits: 8, sample: true }));
  });

  it("portfolio return is ONE dot product over all banks' concatenated holdings and returns", () => {
    const program = portfolioReturn({ banks: 3, assets: 4, holdingBits: 48, returnBits: 32, returnFrac: 16 });
    expect(program.gates.filter((g) => g.op === "dot")).to.have.length(1);
    expect(programInputs(program).map((g) => g.name)).to.deep.equal(["holdings-0", "returns-0", "holdings-1", "returns-1", "holdings-2", "returns-2"]);
    const values = {
      "holdings-0": [100n, 0n, 0n, 0n],
      "returns-0": ["0.5", "0", "0", "0"],
      "holdings-1": [0n, 10n, 0n, 0n],
      "returns-1": ["0", "-0.25", "0", "0"],
      "holdings-2": [0n, 0n, 0n, 3n],
      "returns-2": ["0", "0", "0", "1.125"],
    };
    expect(decodeResult(program, encodeResult(program, evaluatePlain(program, values))).outputs).to.deep.equal({ "total-return": "50.875" });
  });

  it("histograms count per public bucket; count-above counts strictly greater values", () => {
    const h = histogram({ owners: 1, valuesPerOwner: 6, bits: 8, boundaries: [0n, 10n] });
    expect(decodeResult(h, encodeResult(h, evaluatePlain(h, { "values-0": [-5n, 0n, 9n, 10n, 11n, -128n] }))).outputs).to.deep.equal({ histogram: ["2", "2", "2"] });
    const c = countAbove({ owners: 2, valuesPerOwner: 2, bits: 8, threshold: 3 });
    expect(decodeResult(c, encodeResult(c, evaluatePlain(c, { "values-0": [3n, 4n], "values-1": [127n, -128n] }))).outputs).to.deep.equal({ count: "2" });
    invalid(() => histogram({ owners: 1, valuesPerOwner: 1, bits: 8, boundaries: [] }));
    invalid(() => histogram({ owners: 1, valuesPerOwner: 1, bits: 8, boundaries: [3, 3] }));
    invalid(() => histogram({ owners: 1, valuesPerOwner: 1, bits: 8, boundaries: [1.5] }));
  });

  it("auctions and max/argmax name winners by index, first highest on ties", () => {
    const first = firstPriceAuction({ bidders: 3, bits: 16 });
    const second = secondPriceAuction({ bidders: 3, bits: 16 });
    const bids = { "values-0": [7n], "values-1": [9n], "values-2": [9n] };
    expect(decodeResult(first, encodeResult(first, evaluatePlain(first, bids))).outputs).to.deep.equal({ winner: "1", price: "9" });
    expect(decodeResult(second, encodeResult(second, evaluatePlain(second, bids))).outputs).to.deep.equal({ winner: "1", price: "9" });
    const distinct = { "values-0": [7n], "values-1": [9n], "values-2": [8n] };
    expect(decodeResult(second, encodeResult(second, evaluatePlain(second, distinct))).outputs).to.deep.equal({ winner: "1", price: "8" });
    invalid(() => secondPriceAuction({ bidders: 1, bits: 16 }));
    const m = maxAndArgmax({ owners: 2, valuesPerOwner: 2, bits: 8 });
    expect(decodeResult(m, encodeResult(m, evaluatePlain(m, { "values-0": [1n, 5n], "values-1": [5n, -1n] }))).outputs).to.deep.equal({ max: "5", argmax: "1" });
  });

  it("set intersection counts owner 0's IDs present in every other list", () => {
    const s = setIntersectionCardinality({ owners: 3, idsPerOwner: [3, 2, 4], bits: 32 });
    const values = { "values-0": [1n, 2n, 3n], "values-1": [3n, 1n], "values-2": [1n, 1n, 3n, 9n] };
    expect(decodeResult(s, encodeResult(s, evaluatePlain(s, values))).outputs).to.deep.equal({ cardinality: "2" });
    invalid(() => setIntersectionCardinality({ owners: 1, idsPerOwner: 3, bits: 32 }));
  });

  it("linear regression: exact slope and intercept; rejects widths whose quotient cannot be reconstructed", () => {
    const r = linearRegression({ owners: 1, pointsPerOwner: 3, xType: int(16), yType: fixed(24, 4), decimals: 3 });
    const values = { "x-0": [0n, 1n, 2n], "y-0": ["1", "3.5", "5"] };
    // slope = 2, intercept = 7/6 = 1.1666…
    expect(decodeResult(r, encodeResult(r, evaluatePlain(r, values))).outputs).to.deep.equal({ slope: "2.000", intercept: "1.167" });
    invalid(() => linearRegression({ owners: 2, pointsPerOwner: 1000, xType: int(64), yType: int(64) }));
    invalid(() => linearRegression({ owners: 1, pointsPerOwner: 2, xType: field(), yType: int(8) }));
  });

  it("weighted sums truncate the exact product back to the values' precision; fixedMean divides by the count", () => {
    const w = weightedSum({ owners: 1, valuesPerOwner: 2, valueType: fixed(16, 4), weightType: fixed(16, 4) });
    expect(w.gates.filter((g) => g.op === "trunc").map((g) => (g as { shift: number }).shift)).to.deep.equal([4]);
    const m = fixedMean({ owners: 1, valuesPerOwner: 3, bits: 24, frac: 8 });
    expect(m.gates.some((g) => g.op === "trunc")).to.equal(true);
    invalid(() => weightedSum({ owners: 1, valuesPerOwner: 2, valueType: field(), weightType: fixed(16, 4) }));
  });
});
