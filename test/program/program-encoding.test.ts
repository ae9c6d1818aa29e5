import { expect } from "chai";
import fc from "fast-check";
import { keccak256, toUtf8Bytes } from "ethers";
import { ConsortError } from "../../node/errors.ts";
import { canonicalJsonBytes, type JsonValue } from "../../node/program/canonical-json.ts";
import { ProgramBuilder, type WireRef } from "../../node/program/program-builder.ts";
import {
  decodeProgram,
  encodeProgram,
  hashProgram,
  programHash,
  verifyProgramHash,
} from "../../node/program/program-encoding.ts";
import { PROGRAM_LIMITS, programDataOwnerCount, validateProgram, type Program } from "../../node/program/program.ts";
import { field, fixed, int, type SecretType } from "../../node/program/secret-types.ts";
import { totalAndMean } from "../../node/program/standard-programs.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

/** The known-answer program: every v1 gate kind, a fixed-point input and a derived ratio. */
function katProgram(): Program {
  const p = new ProgramBuilder("kat");
  const a = p.input("a", { owner: 0, type: int(8), length: 2 });
  const b = p.input("b", { owner: 1, type: int(8), length: 2 });
  const f = p.input("f", { owner: 1, type: fixed(16, 4) });
  const d = p.sub(a, b); // [-255, 255] -> int(9)
  const m = p.mulConst(d, -3n); // [-765, 765] -> int(11)
  const r = p.reduceSum(m); // [-1530, 1530] -> int(12)
  const g = p.addConst(f, "0.5"); // stored + 8 -> [-32760, 32775] -> fixed(17, 4)
  p.add(a, b); // dead: feeds no output, build() drops it
  p.output("diff", r);
  p.output("shifted", g);
  p.outputRatio("avg", "diff", 2n, { decimals: 1 });
  return p.build();
}

const KAT_JSON =
  '{"derived":[{"decimals":1,"denominator":"2","name":"avg","numerator":"diff","op":"ratio"}],' +
  '"gates":[' +
  '{"id":0,"length":2,"name":"a","op":"input","owner":0,"type":{"bits":8,"kind":"int"}},' +
  '{"id":1,"length":2,"name":"b","op":"input","owner":1,"type":{"bits":8,"kind":"int"}},' +
  '{"id":2,"length":1,"name":"f","op":"input","owner":1,"type":{"bits":16,"frac":4,"kind":"fixed"}},' +
  '{"args":[0,1],"id":3,"length":2,"op":"sub","type":{"bits":9,"kind":"int"}},' +
  '{"args":[3],"constant":"-3","id":4,"length":2,"op":"mulConst","type":{"bits":11,"kind":"int"}},' +
  '{"args":[4],"id":5,"length":1,"op":"reduceSum","type":{"bits":12,"kind":"int"}},' +
  '{"args":[2],"constant":"8","id":6,"length":1,"op":"addConst","type":{"bits":17,"frac":4,"kind":"fixed"}}],' +
  '"name":"kat",' +
  '"outputs":[{"name":"diff","reveal":"all","wire":5},{"name":"shifted","reveal":"all","wire":6}],' +
  '"version":"consort.program/v1"}';

/** Encodes a mutated copy of the known-answer document canonically (so only the mutation is wrong). */
function mutated(mutate: (doc: Record<string, any>) => void): Uint8Array {
  const doc = JSON.parse(KAT_JSON) as Record<string, any>;
  mutate(doc);
  return canonicalJsonBytes(doc as JsonValue);
}

// A compact random-program generator: random builder operations, invalid ones skipped.
const OPS = ["add", "sum", "sub", "neg", "mulConst", "addConst", "reduceSum"] as const;
const programSpec = fc.record({
  family: fc.constantFrom("int", "fixed", "field"),
  frac: fc.integer({ min: 0, max: 24 }),
  owners: fc.integer({ min: 1, max: 4 }),
  inputs: fc.array(fc.record({ owner: fc.nat(), bits: fc.integer({ min: 1, max: 128 }), length: fc.integer({ min: 1, max: 4 }) }), {
    minLength: 1,
    maxLength: 5,
  }),
  ops: fc.array(
    fc.record({ op: fc.constantFrom(...OPS), a: fc.nat(), b: fc.nat(), c: fc.bigInt({ min: -(1n << 80n), max: 1n << 80n }) }),
    { maxLength: 10 },
  ),
  outputs: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
  ratio: fc.option(fc.record({ denominator: fc.bigInt({ min: 1n, max: 1n << 70n }), decimals: fc.integer({ min: 0, max: 12 }) })),
});

type ProgramSpec = typeof programSpec extends fc.Arbitrary<infer T> ? T : never;

function buildRandom(spec: ProgramSpec): Program {
  const p = new ProgramBuilder("random-program");
  const owners = Math.min(spec.owners, spec.inputs.length);
  const pool: WireRef[] = spec.inputs.map((input, i) => {
    const type: SecretType = spec.family === "int" ? int(input.bits) : spec.family === "fixed" ? fixed(input.bits, spec.frac) : field();
    return p.input(`in${i}`, { owner: i < owners ? i : input.owner % owners, type, length: input.length });
  });
  for (const op of spec.ops) {
    const a = pool[op.a % pool.length]!;
    const b = pool[op.b % pool.length]!;
    try {
      switch (op.op) {
        case "add":
          pool.push(p.add(a, b));
          break;
        case "sum":
          pool.push(p.sum([a, b, a]));
          break;
        case "sub":
          pool.push(p.sub(a, b));
          break;
        case "neg":
          pool.push(p.neg(a));
          break;
        case "mulConst":
          pool.push(p.mulConst(a, op.c));
          break;
        case "addConst":
          pool.push(p.addConst(a, op.c));
          break;
        case "reduceSum":
          pool.push(p.reduceSum(a));
          break;
      }
    } catch (error) {
      if (!(error instanceof ConsortError) || error.code !== "PROGRAM_INVALID") throw error;
    }
  }
  // out0 is the last wire built, so the operation chain feeds an output; the others are random.
  spec.outputs.forEach((o, i) => p.output(`out${i}`, i === 0 ? pool[pool.length - 1]! : pool[o % pool.length]!));
  if (spec.ratio !== null && spec.family !== "field") p.outputRatio("ratio", "out0", spec.ratio.denominator, { decimals: spec.ratio.decimals });
  return p.build();
}

describe("program encoding", () => {
  it("encodes the known-answer program to the exact canonical JSON and hashes it with keccak256", () => {
    const bytes = encodeProgram(katProgram());
    expect(new TextDecoder().decode(bytes)).to.equal(KAT_JSON);
    // Independent keccak (ethers) over the literal string.
    expect(programHash(bytes)).to.equal(keccak256(toUtf8Bytes(KAT_JSON)));
    expect(hashProgram(katProgram())).to.equal(keccak256(toUtf8Bytes(KAT_JSON)));
  });

  it("decodes the known-answer bytes back to the same program and re-encodes identically", () => {
    const bytes = new TextEncoder().encode(KAT_JSON);
    const program = decodeProgram(bytes);
    expect(program).to.deep.equal(katProgram());
    expect(encodeProgram(program)).to.deep.equal(bytes);
    expect(Object.isFrozen(program)).to.equal(true);
    expect(Object.isFrozen(program.gates[4])).to.equal(true);
    expect(programDataOwnerCount(program)).to.equal(2);
  });

  it("round-trips random programs: decode(encode(p)) = p, encoding stable", () => {
    fc.assert(
      fc.property(programSpec, (spec) => {
        const program = buildRandom(spec);
        const bytes = encodeProgram(program);
        const decoded = decodeProgram(bytes);
        expect(decoded).to.deep.equal(program);
        expect(encodeProgram(decoded)).to.deep.equal(bytes);
        expect(encodeProgram(buildRandom(spec))).to.deep.equal(bytes);
        expect(programHash(bytes)).to.equal(keccak256(bytes));
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it("rejects bytes that are valid JSON but not canonical", () => {
    const pretty = new TextEncoder().encode(JSON.stringify(JSON.parse(KAT_JSON), null, 1));
    expectCode(() => decodeProgram(pretty), "PROGRAM_INVALID");
    // Same content, keys in insertion order instead of sorted.
    const unsorted = new TextEncoder().encode(KAT_JSON.replace('{"derived":[', '{"version":"consort.program/v1","derived":[').replace(',"version":"consort.program/v1"}', "}"));
    expectCode(() => decodeProgram(unsorted), "PROGRAM_INVALID");
    // Duplicate key (JSON.parse keeps the last one).
    const duplicate = new TextEncoder().encode(KAT_JSON.replace('{"derived":', '{"name":"kat","derived":'));
    expectCode(() => decodeProgram(duplicate), "PROGRAM_INVALID");
    // A number spelled differently.
    expectCode(() => decodeProgram(new TextEncoder().encode(KAT_JSON.replace('"owner":1,', '"owner":1.0,'))), "PROGRAM_INVALID");
    expectCode(() => decodeProgram(new TextEncoder().encode(KAT_JSON.replace('"owner":1,', '"owner":1e0,'))), "PROGRAM_INVALID");
    // Trailing newline, leading BOM.
    expectCode(() => decodeProgram(new TextEncoder().encode(`${KAT_JSON}\n`)), "PROGRAM_INVALID");
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(KAT_JSON)]);
    expectCode(() => decodeProgram(bom), "PROGRAM_INVALID");
  });

  it("rejects bytes that are not UTF-8 JSON, or too large", () => {
    expectCode(() => decodeProgram(new Uint8Array([0x7b, 0xff, 0x7d])), "PROGRAM_INVALID");
    expectCode(() => decodeProgram(new TextEncoder().encode("{")), "PROGRAM_INVALID");
    expectCode(() => decodeProgram(new TextEncoder().encode("[]")), "PROGRAM_INVALID");
    expectCode(() => decodeProgram(new Uint8Array(PROGRAM_LIMITS.maxBytes + 1)), "PROGRAM_INVALID");
    expectCode(() => decodeProgram("{}" as unknown as Uint8Array), "PROGRAM_INVALID");
  });

  const malformed: [string, (doc: Record<string, any>) => void, string][] = [
    ["wrong version", (d) => (d.version = "consort.program/v2"), "version"],
    ["missing top-level key", (d) => delete d.derived, "program"],
    ["unknown top-level key", (d) => (d.extra = 1), "program"],
    ["bad program name", (d) => (d.name = "has space"), "program.name"],
    ["no gates", (d) => (d.gates = []), "gates"],
    ["unknown op", (d) => (d.gates[3].op = "mul"), "gates[3]"],
    ["unknown gate key", (d) => (d.gates[3].extra = 1), "gates[3]"],
    ["missing gate key", (d) => delete d.gates[4].constant, "gates[4]"],
    ["ids not dense", (d) => (d.gates[3].id = 4), "gates[3]"],
    ["forward reference", (d) => (d.gates[3].args = [0, 4]), "gates[3]"],
    ["self reference", (d) => (d.gates[4].args = [4]), "gates[4]"],
    ["reference to a missing wire", (d) => (d.gates[5].args = [99]), "gates[5]"],
    ["non-integer reference", (d) => (d.gates[5].args = ["4"]), "gates[5].args[0]"],
    ["operand lengths disagree", (d) => (d.gates[3].args = [0, 2]), "gates[3]"],
    ["declared length differs from the inferred one", (d) => (d.gates[4].length = 1), "gates[4]"],
    ["declared type differs from the inferred one", (d) => (d.gates[3].type.bits = 10), "gates[3]"],
    ["declared kind differs from the inferred one", (d) => (d.gates[6].type = { kind: "int", bits: 17 }), "gates[6]"],
    ["operands of different kinds", (d) => (d.gates[1].type = { kind: "field" }), "gates[3]"],
    ["fixed operands with different frac", (d) => {
      d.gates[0].type = { kind: "fixed", bits: 8, frac: 1 };
      d.gates[1].type = { kind: "fixed", bits: 8, frac: 2 };
    }, "gates[3]"],
    ["unknown type kind", (d) => (d.gates[0].type = { kind: "uint", bits: 8 }), "gates[0].type"],
    ["extra type key", (d) => (d.gates[0].type.frac = 0), "gates[0].type"],
    ["input wider than 128 bits", (d) => (d.gates[0].type.bits = 129), "gates[0].type"],
    ["zero-bit input", (d) => (d.gates[0].type.bits = 0), "gates[0].type"],
    ["zero length", (d) => (d.gates[0].length = 0), "gates[0].length"],
    ["over-long wire", (d) => (d.gates[0].length = PROGRAM_LIMITS.maxWireLength + 1), "gates[0].length"],
    ["negative owner", (d) => (d.gates[0].owner = -1), "gates[0].owner"],
    ["owner indices with a gap", (d) => {
      d.gates[1].owner = 2;
      d.gates[2].owner = 2;
    }, "gates"],
    ["owners not starting at 0", (d) => (d.gates[0].owner = 1), "gates"],
    ["duplicate input names", (d) => (d.gates[1].name = "a"), "gates[1]"],
    ["bad input name", (d) => (d.gates[1].name = "1b"), "gates[1].name"],
    ["constant with a plus sign", (d) => (d.gates[4].constant = "+3"), "gates[4].constant"],
    ["constant with a leading zero", (d) => (d.gates[6].constant = "08"), "gates[6].constant"],
    ["constant as a number", (d) => (d.gates[6].constant = 8), "gates[6].constant"],
    ["negative zero constant", (d) => (d.gates[6].constant = "-0"), "gates[6].constant"],
    ["constant beyond (r-1)/2", (d) => (d.gates[6].constant = (1n << 253n).toString()), "gates[6].constant"],
    ["result that may overflow the field", (d) => {
      d.gates[4].constant = (1n << 250n).toString();
      d.gates[4].type.bits = 253;
    }, "gates[4]"],
    ["dead gate", (d) => {
      d.outputs[0].wire = 4;
    }, "gates[5]"],
    ["no outputs", (d) => {
      d.outputs = [];
      d.derived = [];
    }, "outputs"],
    ["output of a missing wire", (d) => (d.outputs[1].wire = 7), "outputs[1].wire"],
    ["duplicate output names", (d) => (d.outputs[1].name = "diff"), "outputs[1]"],
    ["unknown reveal mode", (d) => (d.outputs[0].reveal = "public"), "outputs[0]"],
    ["quotient output without decimals", (d) => (d.outputs[0].denominator = 3), "outputs[0]"],
    ["derived from a requester-only output", (d) => (d.outputs[0].reveal = "requester"), "derived[0]"],
    ["derived name equal to an output name", (d) => (d.derived[0].name = "diff"), "derived[0]"],
    ["derived from an unknown output", (d) => (d.derived[0].numerator = "nope"), "derived[0]"],
    ["zero denominator", (d) => (d.derived[0].denominator = "0"), "derived[0]"],
    ["negative denominator", (d) => (d.derived[0].denominator = "-2"), "derived[0]"],
    ["too many decimals", (d) => (d.derived[0].decimals = PROGRAM_LIMITS.maxDecimals + 1), "derived[0].decimals"],
    ["unknown derived op", (d) => (d.derived[0].op = "product"), "derived[0]"],
  ];
  for (const [name, mutate, at] of malformed) {
    it(`rejects a program with ${name} (PROGRAM_INVALID naming ${at})`, () => {
      const error = expectCode(() => decodeProgram(mutated(mutate)), "PROGRAM_INVALID");
      expect(error.details["at"]).to.equal(at);
    });
  }

  it("rejects a ratio of a field output", () => {
    const p = new ProgramBuilder("field-ratio");
    p.output("x", p.input("x", { owner: 0, type: field() }));
    const doc = JSON.parse(new TextDecoder().decode(encodeProgram(p.build())));
    doc.derived = [{ name: "r", op: "ratio", numerator: "x", denominator: "2", decimals: 0 }];
    expectCode(() => decodeProgram(canonicalJsonBytes(doc)), "PROGRAM_INVALID");
    expectCode(() => p.outputRatio("r", "x", 2n), "PROGRAM_INVALID");
  });

  it("validateProgram rejects hand-made objects that break the rules", () => {
    const good = katProgram();
    const tampered = JSON.parse(JSON.stringify(good, (_k, v) => (typeof v === "bigint" ? `${v}n` : v)));
    expectCode(() => validateProgram(tampered as Program), "PROGRAM_INVALID"); // constants are strings now, not bigints
    const handMade = { ...good, gates: good.gates.map((g) => (g.op === "mulConst" ? { ...g, constant: 5n } : g)) };
    expectCode(() => validateProgram(handMade as Program), "PROGRAM_INVALID"); // the declared type no longer fits
    expect(validateProgram(good)).to.equal(good);
  });

  it("verifyProgramHash accepts the right hash (any hex case) and names both hashes on a mismatch", () => {
    const bytes = encodeProgram(katProgram());
    const hash = programHash(bytes);
    verifyProgramHash(bytes, hash);
    verifyProgramHash(bytes, `0x${hash.slice(2).toUpperCase()}`);
    const other = programHash(encodeProgram(totalAndMean({ owners: 2, valuesPerOwner: 1, bits: 8 })));
    const error = expectCode(() => verifyProgramHash(bytes, other), "PROGRAM_HASH_MISMATCH");
    expect(error.details).to.deep.equal({ expected: other, actual: hash });
    expectCode(() => verifyProgramHash(bytes, "0x1234"), "PROGRAM_HASH_MISMATCH");
    const flipped = bytes.slice();
    flipped[10] = flipped[10]! ^ 1;
    expectCode(() => verifyProgramHash(flipped, hash), "PROGRAM_HASH_MISMATCH");
  });
});
