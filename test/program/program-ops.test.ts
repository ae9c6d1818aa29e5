import { expect } from "chai";
import fc from "fast-check";
import { ConsortError } from "../../node/errors.ts";
import { decodeSigned } from "../../node/math/field.ts";
import { canonicalJsonBytes, type JsonValue } from "../../node/program/canonical-json.ts";
import { evaluatePlain } from "../../node/program/plain-evaluator.ts";
import { ProgramBuilder, type WireRef } from "../../node/program/program-builder.ts";
import { decodeProgram, encodeProgram } from "../../node/program/program-encoding.ts";
import { MAX_COMPARISON_BITS, PROGRAM_LIMITS, STATISTICAL_SECURITY_BITS, type Program } from "../../node/program/program.ts";
import { bit, field, fixed, int, type SecretType } from "../../node/program/secret-types.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

/** Signed width of [lo, hi], computed independently of secret-types.ts. */
function widthOf(lo: bigint, hi: bigint): number {
  for (let bits = 1; ; bits++) if (lo >= -(1n << BigInt(bits - 1)) && hi < 1n << BigInt(bits - 1)) return bits;
}

const signed = (outputs: ReadonlyMap<string, readonly bigint[]>, name: string): bigint[] => outputs.get(name)!.map(decodeSigned);

/** A known-answer program with every op added after phase 1 and both new output forms. */
function katProgram(): Program {
  const p = new ProgramBuilder("kat-ops");
  const a = p.input("a", { owner: 0, type: int(8), length: 2 });
  const b = p.input("b", { owner: 1, type: int(8), length: 2 });
  const c = p.input("c", { owner: 1, type: bit(), length: 2 });
  const x = p.input("x", { owner: 0, type: fixed(16, 4) });
  p.output("prod", p.mul(a, b));
  p.output("dot", p.dot(a, b));
  p.output("less", p.ltz(p.sub(a, b)));
  p.output("same", p.not(p.eqz(p.sub(a, b))));
  p.output("pick", p.select(c, a, b));
  p.output("half", p.trunc(x, 2));
  p.output("top", p.max(p.concat([a, b])));
  p.output("who", p.argmax(a));
  p.output("second", p.secondMax(a));
  p.output("rep", p.segmentSum(p.repeat(a, 2), 2));
  p.output("til", p.slice(p.tile(b, 2), 1, 3));
  p.output("fx", p.setFrac(a, 3), { reveal: "requester" });
  p.outputQuotient("ratio", p.reduceSum(a), p.reduceSum(b), { decimals: 3 });
  p.outputSqrt("root", "dot", 4n, { decimals: 2 });
  return p.build();
}

describe("program ops beyond phase 1", () => {
  it("infers exact types for products, bits, selections and truncations", () => {
    const p = new ProgramBuilder("types");
    const a = p.input("a", { owner: 0, type: int(16) });
    const b = p.input("b", { owner: 0, type: int(8) });
    const f = p.input("f", { owner: 0, type: fixed(20, 8) });
    const g = p.input("g", { owner: 0, type: fixed(12, 4) });
    const c = p.input("c", { owner: 0, type: bit() });
    const d = p.input("d", { owner: 0, type: bit() });
    const v = p.input("v", { owner: 0, type: int(8), length: 5 });
    const e = p.input("e", { owner: 0, type: field() });
    // int(16) × int(8): [-2^15·127 - ..., 2^22]
    expect(p.mul(a, b).type).to.deep.equal(int(widthOf(-(1n << 15n) * 127n, 1n << 22n)));
    expect(p.mul(f, g).type).to.deep.equal(fixed(widthOf(-(1n << 19n) * ((1n << 11n) - 1n), 1n << 30n), 12));
    expect(p.mul(a, f).type).to.deep.equal(fixed(widthOf(-(1n << 15n) * ((1n << 19n) - 1n), 1n << 34n), 8));
    expect(p.mul(c, d).type).to.deep.equal(bit());
    expect(p.mul(c, f).type).to.deep.equal(fixed(20, 8));
    expect(p.mul(e, e).type).to.deep.equal(field());
    expect(p.dot(v, v).type).to.deep.equal(int(widthOf(-5n * 128n * 127n, 5n * 128n * 128n)));
    expect(p.dot(v, v).length).to.equal(1);
    expect(p.ltz(a).type).to.deep.equal(bit());
    expect(p.eqz(f).type).to.deep.equal(bit());
    expect(p.not(c).type).to.deep.equal(bit());
    expect(p.select(c, a, b).type).to.deep.equal(int(16));
    expect(p.select(c, c, d).type).to.deep.equal(bit());
    expect(p.select(c, b, d).type).to.deep.equal(int(8)); // int and bit are one family
    expect(p.select(c, e, e).type).to.deep.equal(field());
    // trunc: floor or ceil of stored / 2^s; fixed keeps its value and loses s fractional bits
    expect(p.trunc(a, 3).type).to.deep.equal(int(widthOf(-(1n << 12n), 1n << 12n)));
    expect(p.trunc(f, 8).type).to.deep.equal(fixed(widthOf(-(1n << 11n), 1n << 11n), 0));
    expect(p.add(c, d).type).to.deep.equal(int(3)); // a count
    expect(p.reduceSum(p.concat([c, d])).type).to.deep.equal(int(3));
    expect(p.concat([c, d]).type).to.deep.equal(bit());
    expect(p.concat([b, c]).type).to.deep.equal(int(8));
    expect(p.segmentSum(v, 5).type).to.deep.equal(int(widthOf(-5n * 128n, 5n * 127n)));
    expect(p.repeat(v, 3).length).to.equal(15);
    expect(p.tile(v, 2).length).to.equal(10);
    expect(p.slice(v, 1, 4).length).to.equal(3);
    expect(p.setFrac(b, 5).type).to.deep.equal(fixed(8, 5));
    expect(p.toFixed(b, 5).type).to.deep.equal(fixed(13, 5));
    expect(p.max(v).type).to.deep.equal(int(8));
    expect(p.argmax(v).type).to.deep.equal(int(widthOf(0n, 4n)));
    expect(p.secondMax(v).type).to.deep.equal(int(8));
    expect(p.min(v).type).to.deep.equal(int(10)); // -max(-v): each negation of an asymmetric range widens by one bit
  });

  it("rejects ops that break their rules, naming the op", () => {
    const p = new ProgramBuilder("errors");
    const a = p.input("a", { owner: 0, type: int(16), length: 3 });
    const s = p.input("s", { owner: 0, type: int(16) });
    const f = p.input("f", { owner: 0, type: fixed(16, 2), length: 3 });
    const e = p.input("e", { owner: 0, type: field(), length: 3 });
    const c = p.input("c", { owner: 0, type: bit(), length: 3 });
    const wide = p.input("w", { owner: 0, type: int(128), length: 3 });
    expectCode(() => p.mul(a, s), "PROGRAM_INVALID"); // lengths (no broadcasting)
    expectCode(() => p.mul(a, e), "PROGRAM_INVALID"); // field × int
    expectCode(() => p.ltz(e), "PROGRAM_INVALID");
    expectCode(() => p.eqz(e), "PROGRAM_INVALID");
    expectCode(() => p.not(a), "PROGRAM_INVALID");
    expectCode(() => p.select(a, a, a), "PROGRAM_INVALID"); // condition must be a bit
    expectCode(() => p.select(c, a, f), "PROGRAM_INVALID"); // branches of different families
    expectCode(() => p.trunc(f, 3), "PROGRAM_INVALID"); // more than frac
    expectCode(() => p.trunc(c, 1), "PROGRAM_INVALID");
    expectCode(() => p.trunc(a, 0), "PROGRAM_INVALID");
    expectCode(() => p.segmentSum(a, 2), "PROGRAM_INVALID"); // 2 does not divide 3
    expectCode(() => p.slice(a, 2, 2), "PROGRAM_INVALID");
    expectCode(() => p.slice(a, 0, 4), "PROGRAM_INVALID");
    expectCode(() => p.repeat(a, 0), "PROGRAM_INVALID");
    expectCode(() => p.secondMax(s), "PROGRAM_INVALID"); // needs two elements
    expectCode(() => p.concat([a, e]), "PROGRAM_INVALID");
    expectCode(() => p.and(a, c), "PROGRAM_INVALID");
    expectCode(() => p.mulFixed(a, f), "PROGRAM_INVALID");
    expectCode(() => p.divConst(a, 0), "PROGRAM_INVALID");
    expectCode(() => p.divConst(c, 3), "PROGRAM_INVALID");
    expectCode(() => p.toFixed(f, 2), "PROGRAM_INVALID");
    // Comparisons need k + κ + 8 <= 253: 205 bits at most.
    expect(MAX_COMPARISON_BITS).to.equal(253 - STATISTICAL_SECURITY_BITS - 8);
    const big = p.mulConst(wide, 1n << 77n); // 128 + 77 = 205 bits: still comparable
    expect(big.type).to.deep.equal(int(205));
    expect(p.ltz(big).type).to.deep.equal(bit());
    const bigger = p.mulConst(wide, 1n << 78n); // 206 bits
    expectCode(() => p.ltz(bigger), "PROGRAM_INVALID");
    expectCode(() => p.eqz(bigger), "PROGRAM_INVALID");
    expectCode(() => p.trunc(bigger, 8), "PROGRAM_INVALID");
    expectCode(() => p.max(big), "PROGRAM_INVALID"); // differences need one more bit
    // Quotient outputs: both ranged, same length, k_num + k_den <= 253.
    expectCode(() => p.outputQuotient("q", a, s), "PROGRAM_INVALID");
    expectCode(() => p.outputQuotient("q", e, a), "PROGRAM_INVALID");
    expectCode(() => p.outputQuotient("q", big, p.mulConst(wide, 1n << 60n)), "PROGRAM_INVALID"); // 205 + 188 bits
    p.outputQuotient("ok", big, a); // 205 + 16 bits
  });

  it("bounds the interactive work of a program", () => {
    const p = new ProgramBuilder("too-much");
    const v = p.input("v", { owner: 0, type: int(64), length: PROGRAM_LIMITS.maxWireLength });
    // 2^20 elements × 65 bits > 2^23
    p.output("x", p.ltz(p.sub(v, v)));
    expectCode(() => p.build(), "PROGRAM_INVALID");
  });

  it("encodes the known-answer program canonically and decodes it back", () => {
    const program = katProgram();
    const bytes = encodeProgram(program);
    const doc = JSON.parse(new TextDecoder().decode(bytes));
    const ops = doc.gates.map((g: { op: string }) => g.op);
    for (const op of ["mul", "dot", "ltz", "eqz", "not", "select", "trunc", "max", "argmax", "secondMax", "concat", "repeat", "tile", "slice", "segmentSum", "setFrac"]) {
      expect(ops, op).to.include(op);
    }
    const trunc = doc.gates.find((g: { op: string }) => g.op === "trunc");
    expect(trunc).to.deep.include({ shift: 2 });
    expect(doc.outputs.find((o: { name: string }) => o.name === "ratio")).to.have.all.keys("name", "wire", "reveal", "denominator", "decimals");
    expect(doc.outputs.find((o: { name: string }) => o.name === "fx")).to.deep.include({ reveal: "requester" });
    expect(doc.derived).to.deep.equal([{ decimals: 2, denominator: "4", name: "root", numerator: "dot", op: "sqrt" }]);
    const decoded = decodeProgram(bytes);
    expect(decoded).to.deep.equal(program);
    expect(encodeProgram(decoded)).to.deep.equal(bytes);
  });

  const mutated = (mutate: (doc: Record<string, any>) => void): Uint8Array => {
    const doc = JSON.parse(new TextDecoder().decode(encodeProgram(katProgram())));
    mutate(doc);
    return canonicalJsonBytes(doc as JsonValue);
  };
  const gateOf = (doc: Record<string, any>, op: string): Record<string, any> => doc.gates.find((g: { op: string }) => g.op === op);
  const malformed: [string, (doc: Record<string, any>) => void][] = [
    ["trunc without shift", (d) => delete gateOf(d, "trunc").shift],
    ["trunc with a zero shift", (d) => (gateOf(d, "trunc").shift = 0)],
    ["trunc with a string shift", (d) => (gateOf(d, "trunc").shift = "2")],
    ["repeat with extra constant", (d) => (gateOf(d, "repeat").constant = "1")],
    ["slice past the end", (d) => (gateOf(d, "slice").end = 9)],
    ["select on a non-bit", (d) => (gateOf(d, "select").args = [0, 0, 1])],
    ["not of an int", (d) => (gateOf(d, "not").args = [0])],
    ["a bit type with bits", (d) => (d.gates[2].type = { kind: "bit", bits: 1 })],
    ["quotient with decimals only", (d) => delete d.outputs.find((o: { name: string }) => o.name === "ratio").denominator],
    ["quotient revealed to the requester", (d) => (d.outputs.find((o: { name: string }) => o.name === "ratio").reveal = "requester")],
    ["quotient with a field denominator", (d) => (d.outputs.find((o: { name: string }) => o.name === "ratio").denominator = 999)],
    ["sqrt of a requester output", (d) => (d.derived[0].numerator = "fx")],
    ["unknown derived op", (d) => (d.derived[0].op = "log")],
  ];
  for (const [name, mutate] of malformed) {
    it(`rejects a program with ${name}`, () => {
      expectCode(() => decodeProgram(mutated(mutate)), "PROGRAM_INVALID");
    });
  }

  it("evaluates the new ops over the integers", () => {
    const program = katProgram();
    const out = evaluatePlain(program, { a: [5n, -7n], b: [3n, -7n], c: [1n, 0n], x: ["-1.25"] });
    expect(signed(out, "prod")).to.deep.equal([15n, 49n]);
    expect(signed(out, "dot")).to.deep.equal([64n]);
    expect(signed(out, "less")).to.deep.equal([0n, 0n]);
    expect(signed(out, "same")).to.deep.equal([1n, 0n]);
    expect(signed(out, "pick")).to.deep.equal([5n, -7n]);
    expect(signed(out, "half")).to.deep.equal([-5n]); // stored -20 / 4 = -5 exactly
    expect(signed(out, "top")).to.deep.equal([5n]);
    expect(signed(out, "who")).to.deep.equal([0n]);
    expect(signed(out, "second")).to.deep.equal([-7n]);
    expect(signed(out, "rep")).to.deep.equal([10n, -14n]);
    expect(signed(out, "til")).to.deep.equal([-7n, 3n]);
    expect(signed(out, "fx")).to.deep.equal([5n, -7n]);
    // -2 / -4 = 1/2: the reduced fraction, a then b
    expect(signed(out, "ratio")).to.deep.equal([1n, 2n]);
    const ties = evaluatePlain(program, { a: [4n, 4n], b: [0n, 0n], c: [0n, 0n], x: ["0"] });
    expect(signed(ties, "who")).to.deep.equal([0n]); // first of the maxima
    expect(signed(ties, "second")).to.deep.equal([4n]); // one occurrence of the max removed
    const undefinedRatio = evaluatePlain(program, { a: [1n, 2n], b: [3n, -3n], c: [0n, 0n], x: ["0"] });
    expect(signed(undefinedRatio, "ratio")).to.deep.equal([0n, 0n]); // denominator 0
  });

  it("expands comparisons with public values in the stored representation", () => {
    const p = new ProgramBuilder("public-compare");
    const x = p.input("x", { owner: 0, type: fixed(16, 2), length: 4 });
    p.output("lt", p.lt(x, "1.5"));
    p.output("le", p.le(x, "1.5"));
    p.output("gt", p.gt(x, "1.5"));
    p.output("ge", p.ge(x, "1.5"));
    p.output("eq", p.eq(x, "1.5"));
    p.output("neq", p.neq(x, "1.5"));
    const program = p.build();
    const xs = ["1.25", "1.5", "1.75", "-3"];
    const out = evaluatePlain(program, { x: xs });
    const expected = (f: (v: number) => boolean): bigint[] => xs.map((v) => (f(Number(v)) ? 1n : 0n));
    expect(signed(out, "lt")).to.deep.equal(expected((v) => v < 1.5));
    expect(signed(out, "le")).to.deep.equal(expected((v) => v <= 1.5));
    expect(signed(out, "gt")).to.deep.equal(expected((v) => v > 1.5));
    expect(signed(out, "ge")).to.deep.equal(expected((v) => v >= 1.5));
    expect(signed(out, "eq")).to.deep.equal(expected((v) => v === 1.5));
    expect(signed(out, "neq")).to.deep.equal(expected((v) => v !== 1.5));
    expectCode(() => p.lt(x, "0.1"), "PROGRAM_INVALID"); // not representable with frac 2
  });

  it("round-trips random programs over the new ops (property)", () => {
    const OPS = ["mul", "dot", "lt", "eq", "select", "not", "trunc", "max", "argmax", "secondMax", "concat", "repeat", "tile", "slice", "segmentSum", "add"] as const;
    const spec = fc.record({
      family: fc.constantFrom("int", "fixed"),
      inputs: fc.array(fc.record({ bits: fc.integer({ min: 2, max: 40 }), length: fc.constantFrom(1, 2, 4) }), { minLength: 1, maxLength: 4 }),
      ops: fc.array(fc.record({ op: fc.constantFrom(...OPS), a: fc.nat(), b: fc.nat(), k: fc.integer({ min: 1, max: 4 }) }), { maxLength: 10 }),
      outputs: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
    });
    fc.assert(
      fc.property(spec, (s) => {
        const p = new ProgramBuilder("random-ops");
        const pool: WireRef[] = s.inputs.map((input, i) => {
          const type: SecretType = s.family === "int" ? int(input.bits) : fixed(input.bits, 3);
          return p.input(`in${i}`, { owner: i, type, length: input.length });
        });
        for (const op of s.ops) {
          const a = pool[op.a % pool.length]!;
          const b = pool[op.b % pool.length]!;
          try {
            const next =
              op.op === "mul" ? p.mul(a, b)
              : op.op === "dot" ? p.dot(a, b)
              : op.op === "lt" ? p.lt(a, b)
              : op.op === "eq" ? p.eq(a, b)
              : op.op === "select" ? p.select(p.lt(a, b), a, b)
              : op.op === "not" ? p.not(p.eq(a, b))
              : op.op === "trunc" ? p.trunc(a, op.k)
              : op.op === "max" ? p.max(a)
              : op.op === "argmax" ? p.argmax(a)
              : op.op === "secondMax" ? p.secondMax(a)
              : op.op === "concat" ? p.concat([a, b])
              : op.op === "repeat" ? p.repeat(a, op.k)
              : op.op === "tile" ? p.tile(a, op.k)
              : op.op === "slice" ? p.slice(a, 0, Math.max(1, Math.min(op.k, a.length)))
              : op.op === "segmentSum" ? p.segmentSum(a, a.length % op.k === 0 ? op.k : 1)
              : p.add(a, b);
            pool.push(next);
          } catch (error) {
            if (!(error instanceof ConsortError) || error.code !== "PROGRAM_INVALID") throw error;
          }
        }
        s.outputs.forEach((o, i) => p.output(`out${i}`, i === 0 ? pool[pool.length - 1]! : pool[o % pool.length]!));
        const program = p.build();
        const bytes = encodeProgram(program);
        expect(encodeProgram(decodeProgram(bytes))).to.deep.equal(bytes);
      }),
      { seed: 7, numRuns: 150 },
    );
  });
});
