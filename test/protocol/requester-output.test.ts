import { expect } from "chai";
import { encodeSigned } from "../../node/math/field.ts";
import { frVecReconstruct, frVecToBigints } from "../../node/math/fr-vec.ts";
import { evaluatePlain } from "../../node/program/plain-evaluator.ts";
import { ProgramBuilder } from "../../node/program/program-builder.ts";
import { hashProgram } from "../../node/program/program-encoding.ts";
import { decodeResult, encodeResult } from "../../node/program/result-encoding.ts";
import { fixed, int } from "../../node/program/secret-types.ts";
import {
  digestFromElements,
  digestToElements,
  reconstructRequesterOutput,
  requesterCommitment,
  requesterShareDigest,
  type RequesterOutputShare,
} from "../../node/protocol/requester-output.ts";
import { bumpFirst, fulfilled, runAll } from "./mpc-harness.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

function program() {
  const p = new ProgramBuilder("private-report");
  const a = p.input("a", { owner: 0, type: int(32), length: 3 });
  const b = p.input("b", { owner: 1, type: fixed(32, 4), length: 3 });
  p.output("public-total", p.reduceSum(a));
  p.output("secret-products", p.mul(p.toFixed(a, 4), b), { reveal: "requester" });
  p.output("secret-max", p.max(a), { reveal: "requester" });
  return p.build();
}

describe("requester-only outputs", () => {
  const prog = program();
  const values = { a: [5n, -7n, 12n], b: ["0.5", "-1.25", "3"] };

  it("are never opened: every party returns shares, salt, every digest and the same commitment; the requester reconstructs", async () => {
    const n = 5;
    const { results } = await runAll(prog, values, n);
    const runs = fulfilled(results);
    const plain = evaluatePlain(prog, values);
    for (const run of runs) {
      expect([...run.opened.keys()]).to.deep.equal(["public-total"]);
      expect([...run.requesterShares.keys()]).to.deep.equal(["secret-products", "secret-max"]);
      expect(run.commitments).to.deep.equal(runs[0]!.commitments);
    }
    for (const name of ["secret-products", "secret-max"]) {
      const shares = runs.map((r) => r.requesterShares.get(name)!);
      const commitment = runs[0]!.commitments.get(name)!;
      const { values: got, rendered } = reconstructRequesterOutput(prog, name, shares, { threshold: 2, commitment });
      expect(got).to.deep.equal(plain.get(name));
      if (name === "secret-max") expect(rendered).to.equal("12");
      else expect(rendered).to.deep.equal(["2.5", "8.75", "36"]);
      // Any t + 1 parties suffice.
      expect(reconstructRequesterOutput(prog, name, [undefined, shares[1], undefined, shares[3], shares[4]], { threshold: 2, commitment }).values).to.deep.equal(got);
      // The commitment is what the shares hash to.
      expect(commitment).to.equal(requesterCommitment(hashProgram(prog), name, shares.map((s, j) => requesterShareDigest(hashProgram(prog), name, j, s.salt, s.shares))));
    }
    // The signed result holds the commitments, not the values.
    const doc = decodeResult(prog, encodeResult(prog, runs[0]!.opened, runs[0]!.commitments));
    expect(doc.outputs["secret-max"]).to.equal(runs[0]!.commitments.get("secret-max"));
    expect(doc.outputs["public-total"]).to.equal("10");
  });

  it("re-randomizes the output sharing: the requester's shares differ from the computed wire's shares", async () => {
    // Two runs with the same inputs and different party randomness give different share vectors of the same value.
    const first = fulfilled((await runAll(prog, values, 3, 1, { seed: "one" })).results);
    const second = fulfilled((await runAll(prog, values, 3, 1, { seed: "two" })).results);
    const a = first[0]!.requesterShares.get("secret-max")!.shares;
    const b = second[0]!.requesterShares.get("secret-max")!.shares;
    expect(a).to.not.deep.equal(b);
    expect(frVecToBigints(frVecReconstruct(first.map((r) => r.requesterShares.get("secret-max")!.shares), 1))).to.deep.equal([12n]);
  });

  it("never puts the requester-only value on the wire", async () => {
    const { results, network } = await runAll(prog, values, 3, 1, { recordTraffic: true });
    fulfilled(results);
    const secret = new Set([encodeSigned(12n), 12n, ...evaluatePlain(prog, values).get("secret-products")!]);
    for (const message of network.traffic) for (const x of frVecToBigints(message.bytes)) expect(secret.has(x)).to.equal(false);
  });

  it("detects a tampered share, a tampered salt, a different digest list and a wrong commitment (COMMITMENT_MISMATCH)", async () => {
    const runs = fulfilled((await runAll(prog, values, 3, 1)).results);
    const shares = runs.map((r) => r.requesterShares.get("secret-max")!);
    const commitment = runs[0]!.commitments.get("secret-max")!;
    const tampered = (j: number, change: Partial<RequesterOutputShare>): (RequesterOutputShare | undefined)[] =>
      shares.map((s, i) => (i === j ? { ...s, ...change } : s));
    expect(expectCode(() => reconstructRequesterOutput(prog, "secret-max", tampered(1, { shares: bumpFirst(shares[1]!.shares) }), { threshold: 1, commitment }), "COMMITMENT_MISMATCH").details["party"]).to.equal(1);
    expectCode(() => reconstructRequesterOutput(prog, "secret-max", tampered(2, { salt: new Uint8Array(32) }), { threshold: 1, commitment }), "COMMITMENT_MISMATCH");
    const otherList = shares[0]!.digests.map((d, i) => (i === 0 ? d : new Uint8Array(32)));
    expectCode(() => reconstructRequesterOutput(prog, "secret-max", tampered(0, { digests: otherList }), { threshold: 1, commitment }), "COMMITMENT_MISMATCH");
    expectCode(() => reconstructRequesterOutput(prog, "secret-max", shares, { threshold: 1, commitment: `0x${"00".repeat(32)}` }), "COMMITMENT_MISMATCH");
    // A consistent forgery (shares and digest list rewritten together) still fails against the posted commitment.
    const forged = shares.map((s, j) => {
      const bumped = j === 0 ? bumpFirst(s.shares) : s.shares;
      return { ...s, shares: bumped };
    });
    const forgedDigests = forged.map((s, j) => requesterShareDigest(hashProgram(prog), "secret-max", j, s.salt, s.shares));
    expectCode(
      () => reconstructRequesterOutput(prog, "secret-max", forged.map((s) => ({ ...s, digests: forgedDigests })), { threshold: 1, commitment }),
      "COMMITMENT_MISMATCH",
    );
    // Without a commitment to check, inconsistent shares are still caught by interpolation (n > t + 1).
    expectCode(() => reconstructRequesterOutput(prog, "secret-max", forged.map((s) => ({ ...s, digests: forgedDigests })), { threshold: 1 }), "PROTOCOL_ABORTED");
    expectCode(() => reconstructRequesterOutput(prog, "public-total", shares, { threshold: 1 }), "PROGRAM_INVALID");
    expectCode(() => reconstructRequesterOutput(prog, "secret-max", [shares[1]], { threshold: 1 }), "BAD_REQUEST"); // entry 0 holds party 1's share
  });

  it("carries a 32-byte digest as two canonical field elements", () => {
    const digest = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
    const elements = digestToElements(digest);
    expect(digestFromElements(elements)).to.deep.equal(digest);
    const bad = elements.slice();
    bad[20] = 1;
    expect(digestFromElements(bad)).to.equal(undefined);
  });
});
