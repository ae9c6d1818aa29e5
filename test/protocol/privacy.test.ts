import { expect } from "chai";
import { encodeSigned } from "../../node/math/field.ts";
import { frVecToBigints } from "../../node/math/fr-vec.ts";
import { deterministicRng } from "../../node/math/rng.ts";
import type { InputValue } from "../../node/program/input-values.ts";
import { evaluateWires } from "../../node/program/plain-evaluator.ts";
import { ProgramBuilder } from "../../node/program/program-builder.ts";
import type { Program } from "../../node/program/program.ts";
import { int } from "../../node/program/secret-types.ts";
import { linearRegression, secondPriceAuction, setIntersectionCardinality, varianceAndStddev } from "../../node/program/standard-programs.ts";
import { shareInput } from "../../node/protocol/input-sharing.ts";
import { fulfilled, runAll } from "./mpc-harness.ts";

/** χ² statistic of `counts` against the uniform distribution. */
function chiSquare(counts: readonly number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  return counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
}

describe("privacy", () => {
  for (const [n, t] of [[3, 1], [5, 2]] as const) {
    it(`any ${t} shares of an input are uniform and the same for every secret (n = ${n}; χ² on their low bits)`, () => {
      const p = new ProgramBuilder("one-value");
      p.output("x", p.input("x", { owner: 0, type: int(8) }));
      const program = p.build();
      const rng = deterministicRng(`uniform/${n}`);
      const coalition = Array.from({ length: t }, (_, i) => (i * 2 + 1) % n); // parties 1, 3, ...
      const bucketsPerShare = t === 1 ? 256 : 16;
      const samples = 4096;
      const histograms = new Map<bigint, number[]>();
      for (const secret of [0n, 1n, -128n, 127n]) {
        const counts = new Array<number>(bucketsPerShare ** t).fill(0);
        for (let s = 0; s < samples; s++) {
          const shares = shareInput(program, "x", [secret], { threshold: t, parties: n }, rng);
          let bucket = 0;
          for (const party of coalition) bucket = bucket * bucketsPerShare + (shares[party]![0]! % bucketsPerShare);
          counts[bucket]!++;
        }
        histograms.set(secret, counts);
        // 255 degrees of freedom: mean 255, sd ≈ 22.6; 400 is > 6 sd away.
        expect(chiSquare(counts), `secret ${secret}`).to.be.below(400);
      }
      // Homogeneity: the coalition sees the same distribution whether the secret is 0 or 127.
      const a = histograms.get(0n)!;
      const b = histograms.get(127n)!;
      let chi = 0;
      for (let i = 0; i < a.length; i++) if (a[i]! + b[i]! > 0) chi += (a[i]! - b[i]!) ** 2 / (a[i]! + b[i]!);
      expect(chi).to.be.below(400);
    });
  }

  const cases: [string, Program, Record<string, InputValue[]>][] = [
    [
      "comparisons and selections",
      (() => {
        const p = new ProgramBuilder("cmp-select");
        const a = p.input("a", { owner: 0, type: int(32), length: 4 });
        const b = p.input("b", { owner: 1, type: int(32), length: 4 });
        const less = p.lt(a, b);
        p.output("min", p.select(less, a, b));
        p.output("equal", p.reduceSum(p.eq(a, b)));
        return p.build();
      })(),
      { a: [1000003n, -77n, 123456789n, 5n], b: [999999n, -78n, 123456789n, -5n] },
    ],
    ["a second-price auction", secondPriceAuction({ bidders: 4, bits: 32 }), { "values-0": [31337n], "values-1": [27182n], "values-2": [31415n], "values-3": [16180n] }],
    ["a variance", varianceAndStddev({ owners: 2, valuesPerOwner: 3, bits: 32 }), { "values-0": [1001n, 2002n, -3003n], "values-1": [4004n, 5005n, 6006n] }],
    ["a set intersection", setIntersectionCardinality({ owners: 2, idsPerOwner: 3, bits: 32 }), { "values-0": [1111n, 2222n, 3333n], "values-1": [3333n, 4444n, 1111n] }],
    [
      "a linear regression",
      linearRegression({ owners: 2, pointsPerOwner: 2, xType: int(16), yType: int(16) }),
      { "x-0": [101n, 202n], "y-0": [303n, 404n], "x-1": [505n, 606n], "y-1": [707n, 809n] },
    ],
  ];
  for (const [name, program, values] of cases) {
    it(`no message of ${name} carries a plaintext input or intermediate value (n = 3)`, async () => {
      // Every wire's plaintext values (inputs, intermediates, outputs; bits and counts included), as field elements.
      const plaintext = new Set<bigint>();
      for (const wire of evaluateWires(program, values)) for (const v of wire) plaintext.add(encodeSigned(v));
      const { results, network } = await runAll(program, values, 3, 1, { recordTraffic: true });
      fulfilled(results);
      let elements = 0;
      for (const message of network.traffic) {
        for (const x of frVecToBigints(message.bytes)) {
          elements++;
          expect(plaintext.has(x), `${message.label} ${message.from} -> ${message.to} carries a plaintext value`).to.equal(false);
        }
      }
      expect(elements).to.be.above(0);
    });
  }
});
