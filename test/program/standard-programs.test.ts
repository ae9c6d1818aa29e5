import { expect } from "chai";
import { keccak256, toUtf8Bytes } from "ethers";
import { ConsortError } from "../../node/errors.ts";
import { evaluatePlain } from "../../node/program/plain-evaluator.ts";
import { decodeProgram, encodeProgram, programHash } from "../../node/program/program-encoding.ts";
import { programDataOwnerCount, programInputs } from "../../node/program/program.ts";
import { decodeResult, encodeResult } from "../../node/program/result-encoding.ts";
import { standardInputName, totalAndMean } from "../../node/program/standard-programs.ts";

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
