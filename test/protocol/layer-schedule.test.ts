import { expect } from "chai";
import { ProgramBuilder } from "../../node/program/program-builder.ts";
import { int } from "../../node/program/secret-types.ts";
import { totalAndMean } from "../../node/program/standard-programs.ts";
import { gateIsInteractive, scheduleProgram } from "../../node/protocol/layer-schedule.ts";

describe("layer schedule", () => {
  it("puts every gate of a linear program in layer 0 and needs one round (the opening)", () => {
    const p = new ProgramBuilder("linear");
    const a = p.input("a", { owner: 0, type: int(16), length: 2 });
    const b = p.input("b", { owner: 1, type: int(16), length: 2 });
    const s = p.add(a, b); // wire 2
    const d = p.sub(s, a); // wire 3
    const r = p.reduceSum(d); // wire 4
    p.output("r", r);
    p.output("again", r);
    p.output("s", s);
    const program = p.build();
    const schedule = scheduleProgram(program);
    expect(schedule.layers).to.deep.equal([{ depth: 0, interactive: [], local: [2, 3, 4] }]);
    expect(schedule.depth).to.equal(0);
    expect(schedule.rounds).to.equal(1);
    expect(schedule.outputWires).to.deep.equal([2, 4]);
    // a is last read by the sub (3), b by the add (2), the add's output is opened, the sub's is read by the reduce.
    expect(schedule.lastUse).to.deep.equal([3, 2, program.gates.length, 4, program.gates.length]);
    expect(program.gates.some(gateIsInteractive)).to.equal(false);
    expect(scheduleProgram(program)).to.equal(schedule); // cached per program
  });

  it("schedules an input-only program with no local gates", () => {
    const schedule = scheduleProgram(totalAndMean({ owners: 1, valuesPerOwner: 1, bits: 8 }));
    expect(schedule.layers).to.deep.equal([{ depth: 0, interactive: [], local: [] }]);
    expect(schedule.outputWires).to.deep.equal([0]);
  });
});
