import { expect } from "chai";
import fc from "fast-check";
import { encodeSigned } from "../../node/math/field.ts";
import { canonicalJsonBytes } from "../../node/program/canonical-json.ts";
import { formatRounded, formatSqrtRounded, isqrt } from "../../node/program/decimal.ts";
import { encodeInputValues } from "../../node/program/input-values.ts";
import { evaluatePlain } from "../../node/program/plain-evaluator.ts";
import { ProgramBuilder } from "../../node/program/program-builder.ts";
import type { Program } from "../../node/program/program.ts";
import { decodeResult, encodeResult, renderOutputValue } from "../../node/program/result-encoding.ts";
import { bit, fixed, int } from "../../node/program/secret-types.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const COMMITMENT = `0x${"ab".repeat(32)}`;

function program(): Program {
  const p = new ProgramBuilder("outputs");
  const n = p.input("n", { owner: 0, type: fixed(20, 2), length: 2 });
  const d = p.input("d", { owner: 1, type: int(8), length: 2 });
  const flag = p.input("flag", { owner: 1, type: bit() });
  const s = p.input("s", { owner: 0, type: int(16) });
  p.outputQuotient("q", n, d, { decimals: 3 });
  p.output("flag", flag);
  p.output("sq", s);
  p.outputSqrt("root", "sq", 3n, { decimals: 4 });
  p.output("hidden", p.add(s, s), { reveal: "requester" });
  return p.build();
}

/** The outputs revealed to all (what runProgram returns as `opened`). */
function revealed(p: Program, inputs: Record<string, readonly (bigint | string | number)[]>): Map<string, readonly bigint[]> {
  const all = evaluatePlain(p, inputs);
  return new Map([...all].filter(([name]) => p.outputs.find((o) => o.name === name)!.reveal === "all"));
}

describe("result documents: quotients, square roots, bits and requester-only outputs", () => {
  const p = program();

  it("renders quotients exactly (fixed scaling included), sqrt half-to-even, bits, and commitments", () => {
    const opened = revealed(p, { n: ["1.25", "-7"], d: [3n, 0n], flag: [1n], s: [-12n] });
    const doc = JSON.parse(text(encodeResult(p, opened, new Map([["hidden", COMMITMENT]]))));
    // 1.25 / 3 = 0.41666… -> 0.417; 7 / 0 undefined
    expect(doc.outputs).to.deep.equal({ q: ["0.417", "undefined"], flag: "1", sq: "-12", root: "undefined", hidden: COMMITMENT });
    const positive = revealed(p, { n: ["-1.5", "0"], d: [-4n, 5n], flag: [0n], s: [27n] });
    const doc2 = JSON.parse(text(encodeResult(p, positive, new Map([["hidden", COMMITMENT]]))));
    // -1.5 / -4 = 0.375; 0 / 5 = 0; sqrt(27 / 3) = 3
    expect(doc2.outputs).to.deep.include({ q: ["0.375", "0.000"], flag: "0", root: "3.0000" });
  });

  it("decodes documents with quotients and commitments, and rejects malformed ones", () => {
    const opened = revealed(p, { n: ["1.25", "-7"], d: [3n, 0n], flag: [1n], s: [16n] });
    const bytes = encodeResult(p, opened, new Map([["hidden", COMMITMENT]]));
    const decoded = decodeResult(p, bytes);
    expect(decoded.commitments).to.deep.equal(new Map([["hidden", COMMITMENT]]));
    expect(decoded.opened).to.deep.equal(new Map([["flag", [1n]], ["sq", [16n]]])); // quotients are not invertible
    expect(decoded.outputs["root"]).to.equal("2.3094"); // sqrt(16/3)
    const doc = JSON.parse(text(bytes));
    const variant = (mutate: (d: any) => void): Uint8Array => {
      const copy = structuredClone(doc);
      mutate(copy);
      return canonicalJsonBytes(copy);
    };
    for (const bad of [
      (d: any) => (d.outputs.q = ["0.42", "undefined"]), // wrong digit count
      (d: any) => (d.outputs.q = ["-0.000", "undefined"]),
      (d: any) => (d.outputs.q = "0.417"),
      (d: any) => (d.outputs.hidden = COMMITMENT.toUpperCase().replace("0X", "0x")),
      (d: any) => (d.outputs.hidden = "0x1234"),
      (d: any) => (d.outputs.root = "2.3095"),
      (d: any) => (d.outputs.flag = "2"),
    ]) {
      expectCode(() => decodeResult(p, variant(bad)), "PROTOCOL_INVALID_MESSAGE");
    }
  });

  it("insists on exactly the revealed outputs and the requester commitments", () => {
    const opened = revealed(p, { n: ["1", "1"], d: [1n, 1n], flag: [0n], s: [0n] });
    expectCode(() => encodeResult(p, opened), "PROTOCOL_INVALID_MESSAGE"); // commitment missing
    expectCode(() => encodeResult(p, opened, new Map([["hidden", "0x12"]])), "PROTOCOL_INVALID_MESSAGE");
    expectCode(() => encodeResult(p, opened, new Map([["hidden", COMMITMENT], ["sq", COMMITMENT]])), "PROTOCOL_INVALID_MESSAGE");
    const withHidden = new Map([...opened, ["hidden", [0n]]]);
    expectCode(() => encodeResult(p, withHidden, new Map([["hidden", COMMITMENT]])), "PROTOCOL_INVALID_MESSAGE");
    // Quotient pairs must be reduced and within the declared ranges.
    const notReduced = new Map([...opened, ["q", [2n, 4n, 1n, 1n]]]);
    expectCode(() => encodeResult(p, notReduced, new Map([["hidden", COMMITMENT]])), "PROTOCOL_INVALID_MESSAGE");
    const tooLarge = new Map([...opened, ["q", [1n, 129n, 1n, 1n]]]);
    expectCode(() => encodeResult(p, tooLarge, new Map([["hidden", COMMITMENT]])), "PROTOCOL_INVALID_MESSAGE");
    const numeratorOut = new Map([...opened, ["q", [encodeSigned(1n << 30n), 1n, 1n, 1n]]]);
    expectCode(() => encodeResult(p, numeratorOut, new Map([["hidden", COMMITMENT]])), "PROTOCOL_ABORTED");
    // A bit output must be 0 or 1.
    const badBit = new Map([...opened, ["flag", [2n]]]);
    expectCode(() => encodeResult(p, badBit, new Map([["hidden", COMMITMENT]])), "PROTOCOL_ABORTED");
  });

  it("renders one output value for a requester's client", () => {
    expect(renderOutputValue(p, "hidden", [encodeSigned(-24n)])).to.equal("-24");
    expectCode(() => renderOutputValue(p, "nope", [0n]), "PROTOCOL_INVALID_MESSAGE");
  });

  it("accepts 0/1 for bit inputs only", () => {
    expect(encodeInputValues(p, "flag", ["1"])).to.deep.equal([1n]);
    expect(encodeInputValues(p, "flag", [0])).to.deep.equal([0n]);
    expectCode(() => encodeInputValues(p, "flag", [2n]), "INPUT_OUT_OF_RANGE");
    expectCode(() => encodeInputValues(p, "flag", [-1]), "INPUT_OUT_OF_RANGE");
    expectCode(() => encodeInputValues(p, "flag", ["yes"]), "INPUT_OUT_OF_RANGE");
  });

  it("rounds square roots half to even, exactly (property against integer arithmetic)", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 1n << 120n }), fc.bigInt({ min: 1n, max: 1n << 40n }), fc.integer({ min: 0, max: 12 }), (num, den, decimals) => {
        const text = formatSqrtRounded({ num, den }, decimals);
        const scaled = BigInt(text.replace(".", ""));
        // scaled / 10^d is the nearest: (scaled - 1/2)^2 <= X <= (scaled + 1/2)^2 with X = num·10^(2d)/den
        const X4 = 4n * num * 10n ** BigInt(2 * decimals);
        expect(den * (2n * scaled - 1n) ** 2n <= X4 || scaled === 0n).to.equal(true);
        expect(X4 <= den * (2n * scaled + 1n) ** 2n).to.equal(true);
        const root = isqrt(num);
        expect(root * root <= num && num < (root + 1n) * (root + 1n)).to.equal(true);
      }),
      { seed: 11, numRuns: 300 },
    );
    expect(formatSqrtRounded({ num: 625n, den: 100n }, 0)).to.equal("2"); // 2.5 -> even
    expect(formatSqrtRounded({ num: 1225n, den: 100n }, 0)).to.equal("4"); // 3.5 -> even
    expect(formatSqrtRounded({ num: 2n, den: 1n }, 6)).to.equal("1.414214");
    expect(formatRounded({ num: 1n, den: 3n }, 2)).to.equal("0.33");
  });
});
