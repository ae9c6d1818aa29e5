import { expect } from "chai";
import { ConsortError } from "../../node/errors.ts";
import { decodeSigned } from "../../node/math/field.ts";
import { deterministicRng } from "../../node/math/rng.ts";
import { FR_VEC_ELEMENT_BYTES, frVecReconstruct, frVecToBigints } from "../../node/math/fr-vec.ts";
import { encodeInputValues } from "../../node/program/input-values.ts";
import { totalAndMean } from "../../node/program/standard-programs.ts";
import { shareInput } from "../../node/protocol/input-sharing.ts";

describe("shareInput", () => {
  const program = totalAndMean({ owners: 2, valuesPerOwner: 3, bits: 16 });
  const values = [-32768n, 0n, "32767"];

  it("deals party-major packed Shamir shares of the encoded values", () => {
    const shares = shareInput(program, "values-1", values, { threshold: 2, parties: 5 }, deterministicRng("deal"));
    expect(shares).to.have.length(5);
    for (const vector of shares) expect(vector.length).to.equal(3 * FR_VEC_ELEMENT_BYTES);
    const secrets = frVecToBigints(frVecReconstruct(shares, 2));
    // Any 3 = t + 1 parties suffice.
    expect(frVecToBigints(frVecReconstruct([undefined, shares[1], undefined, shares[3], shares[4]], 2))).to.deep.equal(secrets);
    expect(secrets).to.deep.equal(encodeInputValues(program, "values-1", values));
    expect(secrets.map(decodeSigned)).to.deep.equal([-32768n, 0n, 32767n]);
    // Fresh randomness per dealing: the same values give different shares.
    const again = shareInput(program, "values-1", values, { threshold: 2, parties: 5 }, deterministicRng("deal-2"));
    expect(again[0]).to.not.deep.equal(shares[0]);
  });

  it("rejects settings without an honest majority and bad values", () => {
    const rng = deterministicRng("deal");
    for (const config of [{ threshold: 0, parties: 3 }, { threshold: 2, parties: 4 }, { threshold: 1, parties: 2 }]) {
      expect(() => shareInput(program, "values-0", values, config, rng)).to.throw(ConsortError).with.property("code", "CONFIG_INVALID");
    }
    expect(() => shareInput(program, "values-0", [0n, 0n, 32768n], { threshold: 1, parties: 3 }, rng))
      .to.throw(ConsortError)
      .with.property("code", "INPUT_OUT_OF_RANGE");
    expect(() => shareInput(program, "values-9", values, { threshold: 1, parties: 3 }, rng))
      .to.throw(ConsortError)
      .with.property("code", "PROGRAM_INVALID");
  });
});
