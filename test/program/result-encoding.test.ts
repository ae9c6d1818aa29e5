import { expect } from "chai";
import fc from "fast-check";
import { FR_MODULUS, encodeSigned } from "../../node/math/field.ts";
import { canonicalJsonBytes } from "../../node/program/canonical-json.ts";
import { formatBinaryFixed, formatRounded, parseDecimal, roundHalfEven } from "../../node/program/decimal.ts";
import { evaluatePlain } from "../../node/program/plain-evaluator.ts";
import { ProgramBuilder } from "../../node/program/program-builder.ts";
import { hashProgram } from "../../node/program/program-encoding.ts";
import type { OpenedOutputs, Program } from "../../node/program/program.ts";
import { decodeResult, encodeResult } from "../../node/program/result-encoding.ts";
import { field, fixed, int } from "../../node/program/secret-types.ts";
import { totalAndMean } from "../../node/program/standard-programs.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/** Every output kind: int scalar, fixed vector, field scalar, and ratios of an int and a fixed output. */
function mixedProgram(): Program {
  const p = new ProgramBuilder("mixed");
  const a = p.input("a", { owner: 0, type: int(32), length: 3 });
  const b = p.input("b", { owner: 1, type: int(32), length: 3 });
  const w = p.input("w", { owner: 1, type: fixed(24, 4), length: 2 });
  const h = p.input("h", { owner: 0, type: field() });
  const total = p.reduceSum(p.sub(a, b));
  p.output("total", total);
  p.output("weights", p.mulConst(w, 3n));
  p.output("tag", p.addConst(h, 1n));
  p.outputRatio("mean", "total", 3n, { decimals: 2 });
  p.outputRatio("scaled", "weights", 4n, { decimals: 3 });
  return p.build();
}

describe("plain evaluation and result documents", () => {
  const program = mixedProgram();
  const inputs = { a: [10n, -20n, 7n], b: ["3", "4", "-1"], w: ["1.0625", "-2.5"], h: [FR_MODULUS - 1n] };

  it("evaluates over the integers and returns field elements like the MPC opening", () => {
    const opened = evaluatePlain(program, inputs);
    // total = (10-3) + (-20-4) + (7+1) = -9; weights = 3·w stored = 3·(17, -40); tag = r-1+1 = 0 mod r.
    expect(opened).to.deep.equal(
      new Map([
        ["total", [encodeSigned(-9n)]],
        ["weights", [51n, encodeSigned(-120n)]],
        ["tag", [0n]],
      ]),
    );
  });

  it("renders the canonical result JSON with exact decimals and half-even ratios", () => {
    const bytes = encodeResult(program, evaluatePlain(program, inputs));
    const expected =
      '{"outputs":{"mean":"-3.00","scaled":["0.797","-1.875"],"tag":"0","total":"-9","weights":["3.1875","-7.5"]},' +
      `"program":"${hashProgram(program)}","version":"consort.result/v1"}`;
    // scaled: 3.1875 / 4 = 0.796875 -> 0.797; -7.5 / 4 = -1.875 exactly.
    expect(text(bytes)).to.equal(expected);
  });

  it("decodes a result back to the opened values and the rendered outputs", () => {
    const opened = evaluatePlain(program, inputs);
    const decoded = decodeResult(program, encodeResult(program, opened));
    expect(decoded.program).to.equal(hashProgram(program));
    expect(decoded.opened).to.deep.equal(opened);
    expect(decoded.outputs).to.deep.equal({
      total: "-9",
      weights: ["3.1875", "-7.5"],
      tag: "0",
      mean: "-3.00",
      scaled: ["0.797", "-1.875"],
    });
  });

  it("rejects result documents that do not match the program", () => {
    const opened = evaluatePlain(program, inputs);
    const doc = JSON.parse(text(encodeResult(program, opened)));
    const variant = (mutate: (d: any) => void): Uint8Array => {
      const copy = structuredClone(doc);
      mutate(copy);
      return canonicalJsonBytes(copy);
    };
    expectCode(() => decodeResult(program, variant((d) => (d.outputs.mean = "-3.01"))), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => decodeResult(program, variant((d) => (d.outputs.mean = "-3"))), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => decodeResult(program, variant((d) => (d.outputs.total = "-09"))), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => decodeResult(program, variant((d) => (d.outputs.weights = ["3.18750", "-7.5"]))), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => decodeResult(program, variant((d) => (d.outputs.weights = ["3.1876", "-7.5"]))), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => decodeResult(program, variant((d) => (d.outputs.weights = "3.1875"))), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => decodeResult(program, variant((d) => (d.outputs.total = (1n << 40n).toString()))), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => decodeResult(program, variant((d) => (d.outputs.tag = FR_MODULUS.toString()))), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => decodeResult(program, variant((d) => delete d.outputs.tag)), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => decodeResult(program, variant((d) => (d.outputs.extra = "1"))), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => decodeResult(program, variant((d) => (d.version = "consort.result/v0"))), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => decodeResult(program, variant((d) => (d.extra = 1))), "PROTOCOL_INVALID_MESSAGE");
    const otherHash = hashProgram(totalAndMean({ owners: 1, valuesPerOwner: 1, bits: 8 }));
    const mismatch = expectCode(() => decodeResult(program, variant((d) => (d.program = otherHash))), "PROGRAM_HASH_MISMATCH");
    expect(mismatch.details).to.deep.include({ expected: hashProgram(program), actual: otherHash });
    // Not canonical: whitespace.
    const pretty = new TextEncoder().encode(JSON.stringify(doc, null, 2));
    expectCode(() => decodeResult(program, pretty), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => decodeResult(program, new Uint8Array([0xff])), "PROTOCOL_INVALID_MESSAGE");
  });

  it("refuses to render opened values that do not fit the program", () => {
    const opened = evaluatePlain(program, inputs);
    const without = new Map(opened);
    without.delete("tag");
    expectCode(() => encodeResult(program, without), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => encodeResult(program, new Map([...opened, ["extra", [1n]]])), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => encodeResult(program, new Map([...opened, ["weights", [1n]]])), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => encodeResult(program, new Map([...opened, ["tag", [FR_MODULUS]]])), "PROTOCOL_INVALID_MESSAGE");
    // A total outside int(35) can only come from an input shared outside its declared range.
    const wrapped: OpenedOutputs = new Map([...opened, ["total", [1n << 100n]]]);
    expectCode(() => encodeResult(program, wrapped), "PROTOCOL_ABORTED");
  });

  it("evaluatePlain requires exactly the declared inputs with valid values", () => {
    expectCode(() => evaluatePlain(program, { a: inputs.a, b: inputs.b, w: inputs.w }), "PROGRAM_INVALID");
    expectCode(() => evaluatePlain(program, { ...inputs, z: [1n] }), "PROGRAM_INVALID");
    expectCode(() => evaluatePlain(program, { ...inputs, a: [1n, 2n] }), "PROGRAM_INVALID");
    expectCode(() => evaluatePlain(program, { ...inputs, a: [1n, 2n, 1n << 40n] }), "INPUT_OUT_OF_RANGE");
  });

  it("computes the demo's total and mean", () => {
    const demo = totalAndMean({ owners: 3, valuesPerOwner: 2, bits: 64 });
    const max = (1n << 63n) - 1n;
    const opened = evaluatePlain(demo, { "values-0": [max, max], "values-1": [max, max], "values-2": [max, 1n] });
    const total = 5n * max + 1n;
    const result = decodeResult(demo, encodeResult(demo, opened));
    expect(result.outputs["total"]).to.equal(total.toString());
    expect(result.outputs["mean"]).to.equal(formatRounded({ num: total, den: 6n }, 2));
  });
});

describe("decimal rendering", () => {
  it("rounds half to even and otherwise to nearest (property against the definition)", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(1n << 80n), max: 1n << 80n }), fc.bigInt({ min: 1n, max: 1n << 40n }), (num, den) => {
        const q = roundHalfEven(num, den);
        const twiceError = 2n * (num - q * den); // 2·(num/den - q)·den
        const abs = twiceError < 0n ? -twiceError : twiceError;
        expect(abs <= den).to.equal(true);
        if (abs === den) expect(q % 2n === 0n).to.equal(true);
      }),
      { seed: 42, numRuns: 500 },
    );
    expect([5n, 15n, 25n, -5n, -15n, 7n, -7n].map((n) => roundHalfEven(n, 10n))).to.deep.equal([0n, 2n, 2n, 0n, -2n, 1n, -1n]);
  });

  it("renders fixed values exactly and parses back to the same value (property)", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(1n << 100n), max: 1n << 100n }), fc.integer({ min: 0, max: 64 }), (v, frac) => {
        const rendered = formatBinaryFixed(v, frac);
        expect(rendered).to.match(/^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$/);
        const q = parseDecimal(rendered)!;
        expect(q.num << BigInt(frac)).to.equal(v * q.den); // rendered = v / 2^frac exactly
      }),
      { seed: 42, numRuns: 500 },
    );
    expect(formatBinaryFixed(-1n, 4)).to.equal("-0.0625");
    expect(formatBinaryFixed(32n, 4)).to.equal("2");
    expect(formatBinaryFixed(0n, 4)).to.equal("0");
    expect(formatRounded({ num: -1n, den: 3n }, 2)).to.equal("-0.33");
    expect(formatRounded({ num: -1n, den: 1000n }, 2)).to.equal("0.00");
    expect(formatRounded({ num: 7n, den: 2n }, 0)).to.equal("4");
    expect(formatRounded({ num: 5n, den: 2n }, 0)).to.equal("2");
  });

  it("supports field outputs of any size", () => {
    const p = new ProgramBuilder("field-out");
    p.output("x", p.input("x", { owner: 0, type: field(), length: 2 }));
    const program = p.build();
    const opened = evaluatePlain(program, { x: [FR_MODULUS - 1n, 0n] });
    expect(decodeResult(program, encodeResult(program, opened)).outputs["x"]).to.deep.equal([(FR_MODULUS - 1n).toString(), "0"]);
  });
});
