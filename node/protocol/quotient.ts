/**
 * Quotient outputs: revealing num / den of two secret integers (element-wise)
 * as an exact fraction, and nothing else.
 *
 * 1. Invert den without learning it (J. Bar-Ilan and D. Beaver, "Non-
 *    cryptographic fault-tolerant computing in constant number of rounds of
 *    interaction", PODC 1989): with a random [ρ], open u = den·ρ — uniform
 *    in F_r* whatever den ≠ 0 is — then [den^-1] = u^-1·[ρ]. The product is
 *    opened directly from the local degree-2t products, masked with a random
 *    degree-2t sharing of zero, so the opened polynomial reveals only u.
 *    u = 0 means den = 0 (or ρ = 0, probability 2^-253): the element is
 *    "undefined", which the output reveals anyway.
 * 2. Open w = num · den^-1 mod r the same way (one more round, merged with
 *    the program's output opening). w depends only on the rational number
 *    num/den, and by rational reconstruction (P. S. Wang, SYMSAC 1981;
 *    the half-extended Euclidean algorithm) it determines the reduced
 *    fraction a/b uniquely when |num| <= N, 0 < |den| <= D and 2ND < r,
 *    which program validation guarantees (k_num + k_den <= 253).
 *
 * So the quotient is exact (no fixed-point error), costs 2 rounds and two
 * local products per element, and reveals exactly the value of num/den.
 */
import { ConsortError } from "../errors.ts";
import { FR_MODULUS, encodeSigned } from "../math/field.ts";
import { frVecAdd, frVecFromBigints, frVecInvert, frVecMul, frVecToBigints } from "../math/fr-vec.ts";
import type { RandomnessNeeds } from "./preprocessing.ts";
import type { RoundBatcher } from "./round-batcher.ts";
import type { PartyContext } from "./round-network.ts";
import { openShares } from "./share-opening.ts";

/** Preprocessing of `count` quotients: ρ, and two degree-2t zero masks. */
export function quotientNeeds(count: number): RandomnessNeeds {
  return { randoms: count, zerosT: 0, zeros2t: 2 * count, bits: 0, bounded: [] };
}

/**
 * Round 1: [den^-1] (zero where den = 0) and which elements are defined.
 * `rho` holds `count` random sharings, `zero2t` `count` degree-2t zeros.
 */
export async function invertShared(
  batcher: RoundBatcher,
  ctx: PartyContext,
  gate: number,
  den: Uint8Array,
  rho: Uint8Array,
  zero2t: Uint8Array,
  describe: (i: number) => string,
): Promise<{ inverse: Uint8Array; defined: boolean[] }> {
  const u = await openShares(batcher, ctx, gate, frVecAdd(frVecMul(den, rho), zero2t), { degree: 2 * ctx.threshold, describe });
  const values = frVecToBigints(u);
  const defined = values.map((x) => x !== 0n);
  // Batch-invert the non-zero ones; zeros stay zero (their quotient is undefined).
  const safe = frVecFromBigints(values.map((x) => (x === 0n ? 1n : x)));
  const inv = frVecToBigints(frVecInvert(safe)).map((x, i) => (defined[i] ? x : 0n));
  return { inverse: frVecMul(rho, frVecFromBigints(inv)), defined };
}

/**
 * The reduced fraction a/b (b > 0) with w = a·b^-1 mod r, |a| <= maxNum,
 * 0 < b <= maxDen, or undefined if there is none. Unique when
 * 2·maxNum·maxDen < r (Wang's rational reconstruction: run the Euclidean
 * algorithm on (r, w) until the remainder drops to <= maxNum; the cofactor
 * then is the denominator).
 */
export function rationalReconstruct(w: bigint, maxNum: bigint, maxDen: bigint): [bigint, bigint] | undefined {
  let r0 = FR_MODULUS;
  let r1 = ((w % FR_MODULUS) + FR_MODULUS) % FR_MODULUS;
  let t0 = 0n;
  let t1 = 1n;
  while (r1 > maxNum) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [t0, t1] = [t1, t0 - q * t1];
  }
  if (t1 === 0n) return undefined;
  let a = r1;
  let b = t1;
  if (b < 0n) {
    a = -a;
    b = -b;
  }
  if (b > maxDen) return undefined;
  const g = gcd(a, b);
  if (g !== 1n) return undefined;
  // Confirm: a ≡ w·b (mod r).
  if ((((a - w * b) % FR_MODULUS) + FR_MODULUS) % FR_MODULUS !== 0n) return undefined;
  return [a, b];
}

function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/**
 * The opened form of quotient elements (OpenedOutputs: a, b per element,
 * signed embedding; 0, 0 where undefined) from the opened w values.
 */
export function quotientPairs(w: Uint8Array, defined: readonly boolean[], maxNum: bigint, maxDen: bigint, what: string): bigint[] {
  const values = frVecToBigints(w);
  const out: bigint[] = [];
  values.forEach((x, i) => {
    if (!defined[i]) {
      out.push(0n, 0n);
      return;
    }
    const fraction = rationalReconstruct(x, maxNum, maxDen);
    if (fraction === undefined) {
      // Only shares outside the declared ranges (or faulty parties) can get here.
      throw new ConsortError("PROTOCOL_ABORTED", `quotient ${i} of ${what} is not a fraction within the declared ranges; an input was shared outside its range or a party is faulty`, {
        details: { output: what, index: i },
      });
    }
    out.push(encodeSigned(fraction[0]), fraction[1]);
  });
  return out;
}
