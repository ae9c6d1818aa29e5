import { createSecretKey } from "node:crypto";
import { expect } from "chai";
import fc from "fast-check";
import { FR_MODULUS, Fr } from "../../node/math/field.ts";
import { frVecToBigints } from "../../node/math/fr-vec.ts";
import { chacha20KeystreamRng, deterministicRng } from "../../node/math/rng.ts";
import { lagrangeAtZero } from "../../node/math/shamir.ts";
import { ProgramBuilder } from "../../node/program/program-builder.ts";
import { field, int } from "../../node/program/secret-types.ts";
import { LocalNetwork } from "../../node/protocol/local-network.ts";
import { RoundBatcher } from "../../node/protocol/round-batcher.ts";
import { RingResharing, ringConversionCoefficients, ringMaskStream, ringResharingApplies } from "../../node/protocol/ring-resharing.ts";
import { expectCode } from "../support/consort-error-assertions.ts";
import { expectMatchesPlain, fulfilled, runAll } from "./mpc-harness.ts";

/** χ² statistic of `counts` against the uniform distribution. */
function chiSquare(counts: readonly number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  return counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
}

const element = fc.bigInt({ min: 0n, max: FR_MODULUS - 1n });

describe("ring resharing (three parties, t = 1)", () => {
  it("applies to n = 3, t = 1 only", () => {
    expect(ringResharingApplies({ parties: 3, threshold: 1 })).to.equal(true);
    expect(ringResharingApplies({ parties: 5, threshold: 2 })).to.equal(false);
    expect(ringResharingApplies({ parties: 4, threshold: 1 })).to.equal(false);
    const network = new LocalNetwork({ parties: 5 });
    const ctx = { self: 0, parties: 5, threshold: 2, rng: deterministicRng("x"), network: network.endpoint(0) };
    expectCode(() => new RingResharing(new RoundBatcher(ctx), ctx), "INTERNAL");
    network.close();
  });

  it("draws its masks from the RFC 8439 ChaCha20 keystream (zero nonce, counter 0)", () => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
    const reference = chacha20KeystreamRng(key, new Uint8Array(12));
    const stream = ringMaskStream(createSecretKey(key));
    // Any split of the requests reads the same stream: small ones served from the keystream computed
    // ahead, ones crossing its end, ones longer than it, and past one 64 KiB block of zeros.
    const sizes = [1, 31, 64, 1000, 3000, 4096, 5, 70_000, 5, ...Array.from({ length: 300 }, () => 32), 4095, 4097, 2];
    for (const size of sizes) expect(Buffer.from(stream(size)).equals(Buffer.from(reference(size))), `size ${size}`).to.equal(true);
  });

  it("turns the replicated sharing z_0 + z_1 + z_2 into a degree-1 Shamir sharing of the sum (CDI05), for any z (property)", () => {
    const coefficients = [0, 1, 2].map(ringConversionCoefficients);
    fc.assert(
      fc.property(element, element, element, (z0, z1, z2) => {
        const z = [z0, z1, z2];
        // Party i holds z_i and z_{i+1}.
        const shares = [0, 1, 2].map((i) => Fr.add(Fr.mul(coefficients[i]![0], z[i]!), Fr.mul(coefficients[i]![1], z[(i + 1) % 3]!)));
        const secret = Fr.add(Fr.add(z0, z1), z2);
        // Every pair reconstructs the sum, so all three lie on one line through (0, sum).
        for (const [a, b] of [[0, 1], [0, 2], [1, 2]] as const) {
          const [la, lb] = lagrangeAtZero([a, b]);
          expect(Fr.add(Fr.mul(la!, shares[a]!), Fr.mul(lb!, shares[b]!))).to.equal(secret);
        }
      }),
      { seed: 20261122, numRuns: 200 },
    );
  });

  it("multiplies correctly, like GRR, for random vectors and chains of products (property, seeded)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(element, element, element), { minLength: 1, maxLength: 6 }), async (triples) => {
        const p = new ProgramBuilder("ring-products");
        const a = p.input("a", { owner: 0, type: field(), length: triples.length });
        const b = p.input("b", { owner: 1, type: field(), length: triples.length });
        const c = p.input("c", { owner: 2, type: field(), length: triples.length });
        // Depth 3: the first layer uses GRR (the keys travel with it), the rest the ring.
        p.output("abc", p.mul(p.mul(a, b), c));
        p.output("abcc", p.mul(p.mul(p.mul(a, b), c), c));
        p.output("dot", p.dot(a, p.mul(b, c)));
        const program = p.build();
        const values = { a: triples.map((t) => t[0]), b: triples.map((t) => t[1]), c: triples.map((t) => t[2]) };
        for (const resharing of ["ring", "grr"] as const) await expectMatchesPlain(program, values, 3, { resharing, seed: `ring/${resharing}` });
      }),
      { seed: 314159, numRuns: 12 },
    );
  });

  it("sends each product once, to the previous party: half of GRR's bytes, one message per party per round", async () => {
    const size = 500;
    const p = new ProgramBuilder("ring-traffic");
    const x = p.input("x", { owner: 0, type: int(32), length: size });
    const y = p.input("y", { owner: 1, type: int(32), length: size });
    p.output("sum", p.reduceSum(p.mul(p.mul(x, y), y)));
    const program = p.build();
    const values = { x: Array.from({ length: size }, (_, i) => BigInt(i - 250)), y: Array.from({ length: size }, (_, i) => BigInt(3 * i + 1)) };
    const bytes: Record<string, number> = {};
    for (const resharing of ["ring", "grr"] as const) {
      const { results, network } = await runAll(program, values, 3, 1, { resharing, recordTraffic: true });
      const runs = fulfilled(results);
      expect(runs[0]!.opened.get("sum")![0]).to.equal(
        Fr.create(values.x.reduce((acc, v, i) => acc + v * values.y[i]! * values.y[i]!, 0n)),
      );
      // The second round of products: ring messages go from party i to party i - 1 only.
      const second = network.traffic.filter((m) => m.label.startsWith("1/"));
      if (resharing === "ring") expect(second.map((m) => `${m.from}->${m.to}`).sort()).to.deep.equal(["0->2", "1->0", "2->1"]);
      else expect(second).to.have.length(6);
      bytes[resharing] = second.reduce((acc, m) => acc + m.bytes.length, 0);
    }
    expect(bytes["ring"]).to.equal(3 * size * 32);
    expect(bytes["grr"]).to.equal(2 * bytes["ring"]!);
  });

  it("shows a party only uniform values, whatever the secrets (χ² on the low byte of what it receives)", async () => {
    const size = 4096;
    const histograms: number[][] = [];
    for (const secret of [0n, 1n, FR_MODULUS - 1n]) {
      const p = new ProgramBuilder("ring-view");
      const x = p.input("x", { owner: 0, type: field(), length: size });
      const y = p.input("y", { owner: 1, type: field(), length: size });
      p.output("z", p.reduceSum(p.mul(p.mul(x, y), y)));
      const program = p.build();
      const values = { x: new Array<bigint>(size).fill(secret), y: new Array<bigint>(size).fill(secret) };
      const { results, network } = await runAll(program, values, 3, 1, { recordTraffic: true, seed: `view/${secret}` });
      fulfilled(results);
      // What party 0 receives in the ring round: z_1, masked by the key parties 1 and 2 share.
      const seen = network.traffic.find((m) => m.label.startsWith("1/") && m.to === 0)!;
      const counts = new Array<number>(256).fill(0);
      for (const v of frVecToBigints(seen.bytes)) counts[Number(v & 0xffn)]!++;
      // 255 degrees of freedom: mean 255, sd ≈ 22.6; 400 is > 6 sd away.
      expect(chiSquare(counts), `secret ${secret}`).to.be.below(400);
      histograms.push(counts);
    }
    let chi = 0;
    const [a, b] = [histograms[0]!, histograms[2]!];
    for (let i = 0; i < a.length; i++) if (a[i]! + b[i]! > 0) chi += (a[i]! - b[i]!) ** 2 / (a[i]! + b[i]!);
    expect(chi).to.be.below(400);
  });
});
