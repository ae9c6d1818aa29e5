import { expect } from "chai";
import { FR_MODULUS } from "../../node/math/field.ts";
import { ProgramBuilder } from "../../node/program/program-builder.ts";
import { programDataOwnerCount, programInputs, type Gate } from "../../node/program/program.ts";
import { MAX_WIRE_BITS, bitsForRange, field, fixed, int, rangeOf } from "../../node/program/secret-types.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

describe("ProgramBuilder", () => {
  it("widens int types to the exact range of each linear gate", () => {
    const p = new ProgramBuilder("widths");
    const a = p.input("a", { owner: 0, type: int(64) });
    const b = p.input("b", { owner: 1, type: int(64) });
    const c = p.input("c", { owner: 2, type: int(64) });
    const small = p.input("s", { owner: 0, type: int(8), length: 5 });
    expect(p.add(a, b).type).to.deep.equal(int(65)); // [-2^64, 2^64 - 2]
    expect(p.sum([a, b, c]).type).to.deep.equal(int(66)); // [-3·2^63, 3·2^63 - 3]
    expect(p.sub(a, b).type).to.deep.equal(int(65)); // [-2^64 + 1, 2^64 - 1]
    expect(p.neg(a).type).to.deep.equal(int(65)); // -(-2^63) = 2^63 needs 65 bits
    expect(p.mulConst(a, 0n).type).to.deep.equal(int(1));
    expect(p.mulConst(a, 1n).type).to.deep.equal(int(64));
    expect(p.mulConst(a, 4n).type).to.deep.equal(int(66));
    expect(p.mulConst(a, -4n).type).to.deep.equal(int(67)); // -4 · -2^63 = 2^65
    expect(p.addConst(a, 1n).type).to.deep.equal(int(65));
    expect(p.addConst(a, -1n).type).to.deep.equal(int(65));
    expect(p.addConst(a, 0n).type).to.deep.equal(int(64));
    const reduced = p.reduceSum(small); // 5 · [-128, 127] = [-640, 635]
    expect(reduced.type).to.deep.equal(int(11));
    expect(reduced.length).to.equal(1);
    expect(bitsForRange({ lo: -640n, hi: 635n })).to.equal(11);
    expect(bitsForRange({ lo: -1024n, hi: 1023n })).to.equal(11);
    expect(bitsForRange({ lo: -1025n, hi: 0n })).to.equal(12);
    expect(bitsForRange({ lo: 0n, hi: 1024n })).to.equal(12);
    expect(rangeOf(int(1))).to.deep.equal({ lo: -1n, hi: 0n });
  });

  it("keeps frac for fixed point and leaves field wires untyped by range", () => {
    const p = new ProgramBuilder("fixed-and-field");
    const x = p.input("x", { owner: 0, type: fixed(32, 8), length: 2 });
    const y = p.input("y", { owner: 0, type: fixed(40, 8), length: 2 });
    expect(p.add(x, y).type).to.deep.equal(fixed(41, 8));
    expect(p.addConst(x, "1.5").type).to.deep.equal(fixed(33, 8));
    expect(p.addConst(x, -0.25).type).to.deep.equal(fixed(33, 8));
    const f = p.input("f", { owner: 0, type: field() });
    const g = p.input("g", { owner: 0, type: field() });
    expect(p.add(f, g).type).to.deep.equal(field());
    expect(p.mulConst(f, -1n).type).to.deep.equal(field());
  });

  it("stores public constants in canonical form", () => {
    const p = new ProgramBuilder("constants");
    const x = p.input("x", { owner: 0, type: fixed(32, 8) });
    const f = p.input("f", { owner: 0, type: field() });
    p.output("shifted", p.addConst(x, "1.5")); // 1.5 · 256
    p.output("wrapped", p.mulConst(f, FR_MODULUS - 1n)); // r - 1 = -1 mod r
    p.output("plus", p.addConst(f, FR_MODULUS + 5n));
    const gates = p.build().gates;
    const constants = gates.filter((g): g is Extract<Gate, { constant: bigint }> => "constant" in g).map((g) => g.constant);
    expect(constants).to.deep.equal([384n, -1n, 5n]);
  });

  it("rejects operations that break the type rules, at once", () => {
    const p = new ProgramBuilder("errors");
    const a = p.input("a", { owner: 0, type: int(8), length: 2 });
    const b = p.input("b", { owner: 0, type: int(8), length: 3 });
    const x = p.input("x", { owner: 0, type: fixed(8, 2), length: 2 });
    const y = p.input("y", { owner: 0, type: fixed(8, 3), length: 2 });
    const f = p.input("f", { owner: 0, type: field(), length: 2 });
    expectCode(() => p.add(a, b), "PROGRAM_INVALID"); // lengths
    expectCode(() => p.add(a, x), "PROGRAM_INVALID"); // kinds
    expectCode(() => p.sub(x, y), "PROGRAM_INVALID"); // frac
    expectCode(() => p.add(a, f), "PROGRAM_INVALID"); // int + field
    expectCode(() => p.sum([]), "PROGRAM_INVALID");
    expectCode(() => p.addConst(x, "0.1"), "PROGRAM_INVALID"); // not a multiple of 2^-2
    expectCode(() => p.addConst(a, 1.5), "PROGRAM_INVALID");
    expectCode(() => p.mulConst(a, 0.5), "PROGRAM_INVALID");
    expectCode(() => p.mulConst(a, 1n << 250n), "PROGRAM_INVALID"); // would need > 253 bits
    const other = new ProgramBuilder("other");
    const foreign = other.input("z", { owner: 0, type: int(8), length: 2 });
    expectCode(() => p.add(a, foreign), "PROGRAM_INVALID");
    expectCode(() => p.output("o", foreign), "PROGRAM_INVALID");
  });

  it("rejects bad declarations", () => {
    expectCode(() => new ProgramBuilder("bad name!"), "PROGRAM_INVALID");
    expectCode(() => new ProgramBuilder(""), "PROGRAM_INVALID");
    const p = new ProgramBuilder("decl");
    p.input("a", { owner: 0, type: int(8) });
    expectCode(() => p.input("a", { owner: 1, type: int(8) }), "PROGRAM_INVALID");
    expectCode(() => p.input("b", { owner: -1, type: int(8) }), "PROGRAM_INVALID");
    expectCode(() => p.input("b", { owner: 0, type: int(8), length: 0 }), "PROGRAM_INVALID");
    expectCode(() => p.input("b", { owner: 0, type: int(129) }), "PROGRAM_INVALID");
    expectCode(() => p.input("b", { owner: 0, type: { kind: "int", bits: 0 } }), "PROGRAM_INVALID");
    expectCode(() => p.input("b", { owner: 0, type: { kind: "uint", bits: 8 } as never }), "PROGRAM_INVALID");
    expectCode(() => p.input("has space", { owner: 0, type: int(8) }), "PROGRAM_INVALID");
    expectCode(() => int(0), "PROGRAM_INVALID");
    expectCode(() => int(MAX_WIRE_BITS + 1), "PROGRAM_INVALID");
    expectCode(() => fixed(16, -1), "PROGRAM_INVALID");
  });

  it("checks output and ratio declarations", () => {
    const p = new ProgramBuilder("outputs");
    const a = p.input("a", { owner: 0, type: int(8) });
    const s = p.addConst(a, 1n);
    expectCode(() => p.outputRatio("mean", s, 2n), "PROGRAM_INVALID"); // not an output yet
    p.output("s", s);
    expectCode(() => p.output("s", a), "PROGRAM_INVALID");
    expectCode(() => p.outputRatio("mean", "nope", 2n), "PROGRAM_INVALID");
    expectCode(() => p.outputRatio("mean", s, 0n), "PROGRAM_INVALID");
    expectCode(() => p.outputRatio("mean", s, 2.5), "PROGRAM_INVALID");
    expectCode(() => p.outputRatio("mean", s, 2n, { decimals: -1 }), "PROGRAM_INVALID");
    expectCode(() => p.outputRatio("s", s, 2n), "PROGRAM_INVALID");
    expectCode(() => p.output("r", a, { reveal: "public" as never }), "PROGRAM_INVALID");
    p.outputRatio("mean", s, 2n);
    expect(p.build().derived).to.deep.equal([{ name: "mean", op: "ratio", numerator: "s", denominator: 2n, decimals: 6 }]);
  });

  it("requires at least one output and owners numbered without gaps", () => {
    const none = new ProgramBuilder("none");
    none.input("a", { owner: 0, type: int(8) });
    expectCode(() => none.build(), "PROGRAM_INVALID");
    const gap = new ProgramBuilder("gap");
    gap.output("a", gap.input("a", { owner: 0, type: int(8) }));
    gap.input("b", { owner: 2, type: int(8) });
    expectCode(() => gap.build(), "PROGRAM_INVALID");
  });

  it("drops gates that feed no output and numbers the rest densely; keeps unused inputs", () => {
    const p = new ProgramBuilder("prune");
    const a = p.input("a", { owner: 0, type: int(8) });
    const b = p.input("b", { owner: 1, type: int(8) });
    p.mulConst(a, 5n); // dead
    const s = p.add(a, b);
    p.sub(s, a); // dead
    p.input("unused", { owner: 1, type: int(8) });
    p.output("s", p.addConst(s, 2n));
    const program = p.build();
    expect(program.gates.map((g) => g.op)).to.deep.equal(["input", "input", "add", "input", "addConst"]);
    expect(program.gates.map((g) => g.id)).to.deep.equal([0, 1, 2, 3, 4]);
    expect(program.gates[4]).to.deep.include({ args: [2] });
    expect(program.outputs).to.deep.equal([{ name: "s", wire: 4, reveal: "all" }]);
    expect(programInputs(program).map((g) => g.name)).to.deep.equal(["a", "b", "unused"]);
    expect(programDataOwnerCount(program)).to.equal(2);
  });
});
