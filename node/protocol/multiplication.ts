/**
 * Multiplication of Shamir-shared vectors by degree reduction (R. Gennaro,
 * M. O. Rabin, T. Rabin, "Simplified VSS and fast-track multiparty
 * computations with applications to threshold cryptography", PODC 1998).
 *
 * With [x], [y] of degree t, party i's local product z_i = x_i · y_i is a
 * share of xy on a polynomial of degree 2t, which 2t + 1 < n + 1 points still
 * determine: xy = Σ_{i <= 2t} λ_i z_i with λ the Lagrange coefficients at 0
 * of x = 1..2t+1. Each of those 2t + 1 parties reshares z_i with a fresh
 * degree-t polynomial; every party then combines what it received,
 * Σ λ_i [z_i], a degree-t sharing of xy. One round, in which parties
 * 0..2t send n - 1 elements per product and the others send nothing (they
 * only receive), and no party learns anything: each reshared z_i is hidden
 * by its fresh polynomial.
 *
 * With three parties (t = 1), once the run's first round has exchanged
 * pairwise keys, reshare() uses ./ring-resharing.ts instead: one message per
 * party rather than two.
 *
 * Everything is batched: one reshare request carries every product of a
 * round (the round batcher merges the requests of all gates), and a dot
 * product Σ x_k y_k is reduced once: the local sum of local products is
 * already a degree-2t share of the dot product, so a length-L dot product
 * costs one reshared element, not L.
 */
import { frVecLinearCombination, frVecMul, frVecShare } from "../math/fr-vec.ts";
import { lagrangeAtZero } from "../math/shamir.ts";
import type { RoundBatcher } from "./round-batcher.ts";
import { ringResharingOf } from "./ring-resharing.ts";
import type { PartyContext } from "./round-network.ts";

const EMPTY = new Uint8Array(0);

/** λ_0..λ_2t: Lagrange coefficients at 0 of the parties 0..2t (x = 1..2t+1). */
export function grrCoefficients(threshold: number): readonly bigint[] {
  return lagrangeAtZero(Array.from({ length: 2 * threshold + 1 }, (_, i) => i));
}

/**
 * Degree reduction: `local` holds this party's degree-2t shares (local
 * products, or sums of them); resolves with degree-t shares of the same
 * secrets after one round.
 */
export async function reshare(batcher: RoundBatcher, ctx: PartyContext, gate: number, local: Uint8Array): Promise<Uint8Array> {
  const { parties: n, threshold: t, self } = ctx;
  const count = local.length / 32;
  if (count === 0) return EMPTY;
  // Three parties: one message per party once the run's pairwise keys are in (./ring-resharing.ts).
  const ring = ringResharingOf(batcher);
  if (ring?.ready === true) return ring.reshare(gate, local);
  ring?.start();
  const resharers = 2 * t + 1;
  const send: (Uint8Array | undefined)[] = self < resharers ? frVecShare(local, { threshold: t, parties: n }, ctx.rng) : new Array(n).fill(undefined);
  const expect = Array.from({ length: n }, (_, j) => (j < resharers ? count : 0));
  const received = await batcher.request({ gate, kind: "mul", send, expect });
  return frVecLinearCombination(received.slice(0, resharers), grrCoefficients(t) as bigint[]);
}

/** Element-wise [x·y] from [x], [y] of equal length: one round. */
export function multiply(batcher: RoundBatcher, ctx: PartyContext, gate: number, x: Uint8Array, y: Uint8Array): Promise<Uint8Array> {
  return reshare(batcher, ctx, gate, frVecMul(x, y));
}

/**
 * Several element-wise products in ONE reshare: pairs[k] = [x_k, y_k];
 * resolves with [x_k · y_k] for every k.
 */
export async function multiplyMany(
  batcher: RoundBatcher,
  ctx: PartyContext,
  gate: number,
  pairs: readonly (readonly [Uint8Array, Uint8Array])[],
): Promise<Uint8Array[]> {
  if (pairs.length === 0) return [];
  if (pairs.length === 1) return [await multiply(batcher, ctx, gate, pairs[0]![0], pairs[0]![1])];
  const products = pairs.map(([x, y]) => frVecMul(x, y));
  const reduced = await reshare(batcher, ctx, gate, concatVectors(products));
  return splitVector(reduced, products.map((p) => p.length));
}

/** The vectors one after another (a fresh buffer; empty input gives an empty vector). */
export function concatVectors(vs: readonly Uint8Array[]): Uint8Array {
  let bytes = 0;
  for (const v of vs) bytes += v.length;
  const out = new Uint8Array(bytes);
  let offset = 0;
  for (const v of vs) {
    out.set(v, offset);
    offset += v.length;
  }
  return out;
}

/** Cuts `v` into consecutive views of the given BYTE lengths. */
export function splitVector(v: Uint8Array, byteLengths: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let offset = 0;
  for (const length of byteLengths) {
    out.push(v.subarray(offset, offset + length));
    offset += length;
  }
  return out;
}
