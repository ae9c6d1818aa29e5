import { expect } from "chai";
import fc from "fast-check";
import { ConsortError } from "../../node/errors.ts";
import type { InputValue } from "../../node/program/input-values.ts";
import { ProgramBuilder, type WireRef } from "../../node/program/program-builder.ts";
import { programInputs, type Program } from "../../node/program/program.ts";
import { int, rangeOf } from "../../node/program/secret-types.ts";
import { linearRegression, totalAndMean, varianceAndStddev } from "../../node/program/standard-programs.ts";
import { gateIsInteractive, scheduleProgram } from "../../node/protocol/layer-schedule.ts";
import { fulfilled, honestMajority, plainRevealed, runAll } from "./mpc-harness.ts";

// Random programs over every exact op (trunc is probabilistic; it has its own tests).
const OPS = ["add", "sub", "mul", "dot", "lt", "eq", "select", "not", "and", "max", "argmax", "secondMax", "concat", "repeat", "tile", "slice", "segmentSum", "reduceSum", "mulConst", "addConst"] as const;
const caseArb = fc.record({
  inputs: fc.array(fc.record({ bits: fc.integer({ min: 1, max: 24 }), length: fc.constantFrom(1, 2, 3) }), { minLength: 1, maxLength: 3 }),
  ops: fc.array(fc.record({ op: fc.constantFrom(...OPS), a: fc.nat(), b: fc.nat(), k: fc.integer({ min: 1, max: 3 }), c: fc.integer({ min: -5, max: 5 }) }), {
    minLength: 1,
    maxLength: 8,
  }),
  outputs: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
  picks: fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.bigInt({ min: 0n, max: 1n << 64n })), { minLength: 12, maxLength: 12 }),
});
type CaseSpec = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function buildCase(spec: CaseSpec): { program: Program; values: Record<string, InputValue[]> } {
  const p = new ProgramBuilder("random-mpc");
  const pool: WireRef[] = spec.inputs.map((input, i) => p.input(`in${i}`, { owner: i, type: int(input.bits), length: input.length }));
  for (const op of spec.ops) {
    const a = pool[op.a % pool.length]!;
    const b = pool[op.b % pool.length]!;
    try {
      const next =
        op.op === "add" ? p.add(a, b)
        : op.op === "sub" ? p.sub(a, b)
        : op.op === "mul" ? p.mul(a, b)
        : op.op === "dot" ? p.dot(a, b)
        : op.op === "lt" ? p.lt(a, b)
        : op.op === "eq" ? p.eq(a, b)
        : op.op === "select" ? p.select(p.lt(a, b), b, a)
        : op.op === "not" ? p.not(p.ltz(a))
        : op.op === "and" ? p.and(p.ltz(a), p.eqz(b))
        : op.op === "max" ? p.max(a)
        : op.op === "argmax" ? p.argmax(a)
        : op.op === "secondMax" ? p.secondMax(a)
        : op.op === "concat" ? p.concat([a, b])
        : op.op === "repeat" ? p.repeat(a, op.k)
        : op.op === "tile" ? p.tile(a, op.k)
        : op.op === "slice" ? p.slice(a, 0, Math.min(op.k, a.length))
        : op.op === "segmentSum" ? p.segmentSum(a, a.length)
        : op.op === "reduceSum" ? p.reduceSum(a)
        : op.op === "mulConst" ? p.mulConst(a, op.c)
        : p.addConst(a, op.c);
      pool.push(next);
    } catch (error) {
      if (!(error instanceof ConsortError) || error.code !== "PROGRAM_INVALID") throw error;
    }
  }
  spec.outputs.forEach((o, i) => p.output(`out${i}`, i === 0 ? pool[pool.length - 1]! : pool[o % pool.length]!));
  const program = p.build();
  let k = 0;
  const values: Record<string, InputValue[]> = {};
  for (const input of programInputs(program)) {
    values[input.name] = Array.from({ length: input.length }, () => {
      const [choice, random] = spec.picks[k++ % spec.picks.length]!;
      const { lo, hi } = rangeOf(input.type as never);
      return choice === 0 ? lo : choice === 1 ? hi : choice === 2 ? 0n : lo + (random % (hi - lo + 1n));
    });
  }
  return { program, values };
}

describe("round schedule", () => {
  it("classifies every op as local or interactive", () => {
    const p = new ProgramBuilder("ops");
    const a = p.input("a", { owner: 0, type: int(8), length: 2 });
    p.output("m", p.mul(a, a));
    p.output("s", p.reduceSum(a));
    const program = p.build();
    expect(program.gates.map(gateIsInteractive)).to.deep.equal([false, true, false]);
  });

  it("predicts the rounds of known programs", () => {
    // Linear: the opening only.
    expect(scheduleProgram(totalAndMean({ owners: 3, valuesPerOwner: 2, bits: 64 }), 3, 1).rounds).to.equal(1);
    // Variance: one multiplication round (dot and square together), then the opening.
    expect(scheduleProgram(varianceAndStddev({ owners: 2, valuesPerOwner: 3, bits: 16 }), 3, 1).rounds).to.equal(2);
    // Regression: sums+products, numerators (with D's inversion), final opening.
    expect(scheduleProgram(linearRegression({ owners: 2, pointsPerOwner: 3, xType: int(16), yType: int(16) }), 5, 2).rounds).to.equal(3);
    // One 32-bit comparison (33-bit difference, m = 32): dealing, XOR, opening + pair products, 4 tree rounds, output.
    const p = new ProgramBuilder("one-comparison");
    const a = p.input("a", { owner: 0, type: int(32) });
    const b = p.input("b", { owner: 1, type: int(32) });
    p.output("lt", p.lt(a, b));
    const cmp = p.build();
    const s3 = scheduleProgram(cmp, 3, 1);
    expect([s3.dealt, s3.bitsReady, s3.rounds]).to.deep.equal([1, 2, 8]);
    expect(scheduleProgram(cmp, 7, 3).rounds).to.equal(9); // XOR of 4 dealers' bits: 2 rounds
    expect(scheduleProgram(cmp, 9, 4).rounds).to.equal(8); // t = 4: square-root bits, 1 round
  });

  for (const n of [3, 5]) {
    it(`every run takes exactly the predicted rounds and equals the plaintext result, n = ${n} (property)`, async () => {
      const t = honestMajority(n);
      await fc.assert(
        fc.asyncProperty(caseArb, async (spec) => {
          const { program, values } = buildCase(spec);
          const { results, network } = await runAll(program, values, n, t, { seed: "schedule" });
          const expected = plainRevealed(program, values);
          const predicted = scheduleProgram(program, n, t).rounds;
          for (const [party, run] of fulfilled(results).entries()) {
            expect(run.opened).to.deep.equal(expected);
            expect(run.rounds).to.equal(predicted);
            expect(network.stats(party).rounds).to.equal(predicted);
          }
        }),
        { seed: n, numRuns: n === 3 ? 60 : 20 },
      );
    });
  }
});
