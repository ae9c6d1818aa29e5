import { expect } from "chai";
import { isConsortError } from "../../node/errors.ts";
import { FR_MODULUS } from "../../node/math/field.ts";
import { frVecReconstruct, frVecToBigints } from "../../node/math/fr-vec.ts";
import { deterministicRng } from "../../node/math/rng.ts";
import { LocalNetwork } from "../../node/protocol/local-network.ts";
import {
  Preprocessing,
  bitMethodFor,
  extractionMatrix,
  randomBitVector,
  randomBoundedVector,
  type BitMethod,
  type RandomnessNeeds,
} from "../../node/protocol/preprocessing.ts";
import { RoundBatcher } from "../../node/protocol/round-batcher.ts";
import { honestMajority } from "./mpc-harness.ts";

interface Pools {
  randoms: Uint8Array[];
  zerosT: Uint8Array[];
  zeros2t: Uint8Array[];
  bits: Uint8Array[];
  bounded: Uint8Array[];
  rounds: number;
}

/** All n parties run the preprocessing of `needs` (as gate 0 and gate 5, split in two); returns every party's gate-0 slices. */
async function generate(n: number, needs: RandomnessNeeds, method?: BitMethod): Promise<Pools> {
  const t = honestMajority(n);
  const network = new LocalNetwork({ parties: n });
  const perParty = await Promise.all(
    Array.from({ length: n }, async (_, self) => {
      const ctx = { self, parties: n, threshold: t, rng: deterministicRng(`prep/${n}/${self}`), network: network.endpoint(self) };
      const batcher = new RoundBatcher(ctx);
      const prep = new Preprocessing(batcher, ctx, new Map([[0, needs], [5, { randoms: 1, zerosT: 1, zeros2t: 1, bits: 1, bounded: [8] }]]), method);
      const g = prep.forGate(0);
      const [randoms, zerosT, zeros2t, bits, bounded] = await Promise.all([g.randoms, g.zerosT, g.zeros2t, g.bits, g.bounded]);
      await prep.forGate(5).bits;
      return { randoms, zerosT, zeros2t, bits, bounded, rounds: batcher.rounds };
    }),
  );
  network.close();
  return {
    randoms: perParty.map((p) => p.randoms),
    zerosT: perParty.map((p) => p.zerosT),
    zeros2t: perParty.map((p) => p.zeros2t),
    bits: perParty.map((p) => p.bits),
    bounded: perParty.map((p) => p.bounded),
    rounds: perParty[0]!.rounds,
  };
}

function determinant(rows: bigint[][]): bigint {
  const m = rows.map((r) => r.map((x) => ((x % FR_MODULUS) + FR_MODULUS) % FR_MODULUS));
  const size = m.length;
  let det = 1n;
  const inv = (x: bigint): bigint => {
    let [a, b, u, v] = [x, FR_MODULUS, 1n, 0n];
    while (b !== 0n) {
      const q = a / b;
      [a, b, u, v] = [b, a - q * b, v, u - q * v];
    }
    return ((u % FR_MODULUS) + FR_MODULUS) % FR_MODULUS;
  };
  for (let c = 0; c < size; c++) {
    const pivot = m.findIndex((row, r) => r >= c && row[c] !== 0n);
    if (pivot < 0) return 0n;
    if (pivot !== c) {
      [m[c], m[pivot]] = [m[pivot]!, m[c]!];
      det = FR_MODULUS - det;
    }
    det = (det * m[c]![c]!) % FR_MODULUS;
    const pinv = inv(m[c]![c]!);
    for (let r = c + 1; r < size; r++) {
      const f = (m[r]![c]! * pinv) % FR_MODULUS;
      for (let k = c; k < size; k++) m[r]![k] = (((m[r]![k]! - f * m[c]![k]!) % FR_MODULUS) + FR_MODULUS) % FR_MODULUS;
    }
  }
  return det;
}

function subsets(n: number, k: number): number[][] {
  if (k === 0) return [[]];
  if (n < k) return [];
  return [...subsets(n - 1, k - 1).map((s) => [...s, n - 1]), ...subsets(n - 1, k)];
}

describe("preprocessing (jointly generated randomness, no dealer)", () => {
  it("extracts with a Vandermonde matrix whose every (n - t)-column square submatrix is invertible", () => {
    for (const n of [3, 4, 5, 7, 9]) {
      const t = honestMajority(n);
      const m = extractionMatrix(n, t);
      expect(m).to.have.length(n - t);
      for (const columns of subsets(n, n - t)) {
        expect(determinant(m.map((row) => columns.map((c) => row[c]!))), `n = ${n}, columns ${columns.join(",")}`).to.not.equal(0n);
      }
    }
  });

  for (const n of [3, 5, 7]) {
    it(`deals randoms, zeros, bounded integers and bits that open correctly, n = ${n}`, async () => {
      const t = honestMajority(n);
      const needs: RandomnessNeeds = { randoms: 40, zerosT: 6, zeros2t: 5, bits: 600, bounded: [41, 41, 8, 1, 100] };
      const pools = await generate(n, needs);
      // Rounds: dealing, then the XOR tree (ceil(log2(t + 1)) levels).
      expect(pools.rounds).to.equal(1 + Math.ceil(Math.log2(t + 1)));
      // Random values: consistent degree-t sharings (frVecReconstruct checks all n shares), distinct, non-zero.
      const randoms = frVecToBigints(frVecReconstruct(pools.randoms, t));
      expect(randoms).to.have.length(40);
      expect(new Set(randoms).size).to.equal(40);
      // Zeros: degree t (resp. 2t), secret 0, shares not all zero.
      expect(frVecToBigints(frVecReconstruct(pools.zerosT, t))).to.deep.equal(new Array(6).fill(0n));
      expect(frVecToBigints(frVecReconstruct(pools.zeros2t, 2 * t))).to.deep.equal(new Array(5).fill(0n));
      expect(pools.zerosT[0]!.some((b) => b !== 0)).to.equal(true);
      // Bits: 0/1 and balanced.
      const bits = frVecToBigints(frVecReconstruct(pools.bits, t));
      expect(bits.every((b) => b === 0n || b === 1n)).to.equal(true);
      const ones = bits.filter((b) => b === 1n).length;
      expect(ones).to.be.within(240, 360); // 600 fair bits: mean 300, sd ≈ 12
      // Bounded: in [0, (t + 1)·2^w).
      const bounded = frVecToBigints(frVecReconstruct(pools.bounded, t));
      needs.bounded.forEach((w, i) => expect(bounded[i]! < BigInt(t + 1) << BigInt(w), `bounded ${i}`).to.equal(true));
    });
  }

  it("makes bits by the square-root method (Damgård et al. 2006) when forced, and by default for t >= 4", async () => {
    expect(bitMethodFor(3, 1)).to.equal("xor");
    expect(bitMethodFor(7, 3)).to.equal("xor");
    expect(bitMethodFor(9, 4)).to.equal("square");
    for (const n of [3, 5]) {
      const t = honestMajority(n);
      const pools = await generate(n, { randoms: 3, zerosT: 0, zeros2t: 2, bits: 400, bounded: [] }, "square");
      expect(pools.rounds).to.equal(2); // dealing, then the opening of the masked squares
      const bits = frVecToBigints(frVecReconstruct(pools.bits, t));
      expect(bits.every((b) => b === 0n || b === 1n)).to.equal(true);
      expect(bits.filter((b) => b === 1n).length).to.be.within(150, 250);
      expect(frVecToBigints(frVecReconstruct(pools.zeros2t, 2 * t))).to.deep.equal([0n, 0n]);
    }
    const nine = await generate(9, { randoms: 0, zerosT: 0, zeros2t: 0, bits: 50, bounded: [] });
    expect(nine.rounds).to.equal(2);
    expect(frVecToBigints(frVecReconstruct(nine.bits, 4)).every((b) => b === 0n || b === 1n)).to.equal(true);
  });

  it("degree-2t zeros are not degree-t sharings (they mask products, which have degree 2t)", async () => {
    const pools = await generate(5, { randoms: 0, zerosT: 0, zeros2t: 3, bits: 0, bounded: [] });
    let inconsistent = false;
    try {
      frVecReconstruct(pools.zeros2t, 2);
    } catch (error) {
      inconsistent = isConsortError(error, "MATH_INCONSISTENT_SHARES");
    }
    expect(inconsistent).to.equal(true);
  });

  it("needs no round when a program needs no randomness", async () => {
    const pools = await generate(3, { randoms: 0, zerosT: 0, zeros2t: 0, bits: 0, bounded: [] });
    // Gate 5 still needs some: one dealing and one XOR round.
    expect(pools.rounds).to.equal(2);
    expect(pools.randoms[0]!.length).to.equal(0);
  });

  it("packs random bits and bounded integers canonically", () => {
    const bits = frVecToBigints(randomBitVector(1000, deterministicRng("bits")));
    expect(bits.every((b) => b === 0n || b === 1n)).to.equal(true);
    expect(bits.filter((b) => b === 1n).length).to.be.within(430, 570);
    const widths = [1, 7, 8, 9, 41, 64, 200, 248];
    const bounded = frVecToBigints(randomBoundedVector(widths, deterministicRng("bounded")));
    widths.forEach((w, i) => expect(bounded[i]! < 1n << BigInt(w)).to.equal(true));
    // The top bit is used too (over many draws some value reaches 2^(w-1)).
    const many = frVecToBigints(randomBoundedVector(new Array(64).fill(41), deterministicRng("top")));
    expect(many.some((x) => x >= 1n << 40n)).to.equal(true);
  });
});
