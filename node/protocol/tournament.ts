/**
 * max, argmax and secondMax of a shared vector as a log-depth tournament.
 *
 * Each level pairs elements (2j, 2j+1) of the current list, compares them
 * with one batched comparison c_j = [x_2j < x_2j+1] (comparison.ts, width
 * k + 1 for k-bit elements) and keeps the winner with one batched
 * multiplication round: max = c·(x_2j+1 − x_2j) + x_2j, index likewise. An
 * odd last element passes to the next level unchanged. ceil(log2 L) levels.
 *
 * Ties: a pair of equal elements has c = 0 and keeps the LEFT one, and every
 * left group holds lower indices than its right partner, so argmax is the
 * lowest index among the maxima (the first-price auction's winner is the
 * first highest bidder).
 *
 * secondMax tracks (max, second) per group. Merging A (left) and B (right):
 * M = sel(c, M_B, M_A); the loser L = M_A + M_B − M; the candidate from the
 * winner's group S' = sel(c, S_B, S_A); second = max(L, S') with a second
 * comparison and selection. Singletons have no second (level 0 takes the
 * loser directly; a lone group carries the type's minimum as a neutral
 * second), so secondMax is the largest element once ONE occurrence of the
 * max is removed (equal top bids give price = that bid).
 *
 * Cost for L elements of k bits: L − 1 comparisons (2L − 2 − ⌊L/2⌋ with
 * secondMax), and per level one multiplication round after each comparison.
 */
import { FR_VEC_ELEMENT_BYTES, frVecAdd, frVecFromBigints, frVecSub } from "../math/fr-vec.ts";
import { encodeSigned } from "../math/field.ts";
import { lessThanZero, ltzNeeds, prepareMasks, type Masks } from "./comparison.ts";
import { multiplyMany } from "./multiplication.ts";
import { addNeeds, type GateRandomness, type RandomnessNeeds } from "./preprocessing.ts";
import type { RoundBatcher } from "./round-batcher.ts";
import type { PartyContext } from "./round-network.ts";

const B = FR_VEC_ELEMENT_BYTES;

export interface TournamentWants {
  readonly max: boolean;
  readonly argmax: boolean;
  readonly second: boolean;
}

/** The comparison batches of a tournament over `length` elements: their sizes, in the order they run. */
export function tournamentBatches(length: number, second: boolean): number[] {
  const batches: number[] = [];
  let size = length;
  let level = 0;
  while (size > 1) {
    const pairs = size >> 1;
    batches.push(pairs);
    if (second && level > 0) batches.push(pairs);
    size = Math.ceil(size / 2);
    level++;
  }
  return batches;
}

/** Preprocessing needs of a tournament over `length` elements of width k. */
export function tournamentNeeds(length: number, k: number, second: boolean): RandomnessNeeds {
  return addNeeds(tournamentBatches(length, second).map((count) => ltzNeeds(k + 1, count)));
}

/** Elements start, start + step, ... (count of them) of a packed vector. */
function strided(v: Uint8Array, start: number, step: number, count: number): Uint8Array {
  const out = new Uint8Array(count * B);
  for (let i = 0; i < count; i++) out.set(v.subarray((start + i * step) * B, (start + i * step + 1) * B), i * B);
  return out;
}

/** The last element of a packed vector appended to `v`. */
function appendLast(v: Uint8Array, from: Uint8Array): Uint8Array {
  const out = new Uint8Array(v.length + B);
  out.set(v, 0);
  out.set(from.subarray(from.length - B), v.length);
  return out;
}

/**
 * Runs the tournament over `input` (this party's shares of `length`
 * elements of a k-bit type whose smallest stored value is `minValue`; may
 * still be computing: the masks are prepared first). `randomness` is the
 * gate's slice sized by tournamentNeeds.
 */
export async function tournament(
  batcher: RoundBatcher,
  ctx: PartyContext,
  gate: number,
  input: Uint8Array | Promise<Uint8Array>,
  k: number,
  minValue: bigint,
  randomness: GateRandomness,
  wants: TournamentWants,
  length: number,
): Promise<{ max: Uint8Array; argmax: Uint8Array; second: Uint8Array }> {
  const L = length;
  const trackIndex = wants.argmax;
  const trackSecond = wants.second;
  // All masks up front: their pair products run in preprocessing, in parallel with everything else.
  const batches = tournamentBatches(L, trackSecond);
  const m = k; // comparisons of differences: width k + 1, so m = k bits
  let bitOffset = 0;
  let boundedOffset = 0;
  const masks: Promise<Masks>[] = batches.map((count) => {
    const p = prepareMasks(batcher, ctx, gate, randomness, m, count, true, bitOffset, boundedOffset);
    bitOffset += m * count;
    boundedOffset += count;
    p.catch(() => undefined);
    return p;
  });
  let batch = 0;
  const values = await input;

  const constant = (value: bigint, count: number): Uint8Array => frVecFromBigints(new Array<bigint>(count).fill(encodeSigned(value)));
  let current = values;
  let index = trackIndex ? frVecFromBigints(Array.from({ length: L }, (_, i) => BigInt(i))) : new Uint8Array(0);
  let second = trackSecond ? constant(minValue, L) : new Uint8Array(0);
  let level = 0;
  while (current.length / B > 1) {
    const size = current.length / B;
    const pairs = size >> 1;
    const left = strided(current, 0, 2, pairs);
    const right = strided(current, 1, 2, pairs);
    const c = await lessThanZero(batcher, ctx, gate, frVecSub(left, right), k + 1, await masks[batch++]!);

    const products: [Uint8Array, Uint8Array][] = [[c, frVecSub(right, left)]];
    let leftIndex: Uint8Array | undefined;
    let rightIndex: Uint8Array | undefined;
    if (trackIndex) {
      leftIndex = strided(index, 0, 2, pairs);
      rightIndex = strided(index, 1, 2, pairs);
      products.push([c, frVecSub(rightIndex, leftIndex)]);
    }
    let leftSecond: Uint8Array | undefined;
    if (trackSecond && level > 0) {
      leftSecond = strided(second, 0, 2, pairs);
      products.push([c, frVecSub(strided(second, 1, 2, pairs), leftSecond)]);
    }
    const results = await multiplyMany(batcher, ctx, gate, products);
    const winner = frVecAdd(left, results[0]!);
    let nextIndex = new Uint8Array(0) as Uint8Array;
    if (trackIndex) nextIndex = frVecAdd(leftIndex!, results[1]!);
    let nextSecond = new Uint8Array(0) as Uint8Array;
    if (trackSecond) {
      const loser = frVecSub(frVecAdd(left, right), winner);
      if (level === 0) {
        nextSecond = loser;
      } else {
        const candidate = frVecAdd(leftSecond!, results[trackIndex ? 2 : 1]!);
        const c2 = await lessThanZero(batcher, ctx, gate, frVecSub(loser, candidate), k + 1, await masks[batch++]!);
        const [chosen] = await multiplyMany(batcher, ctx, gate, [[c2, frVecSub(candidate, loser)]]);
        nextSecond = frVecAdd(loser, chosen!);
      }
    }
    if (size % 2 === 1) {
      current = appendLast(winner, current);
      if (trackIndex) nextIndex = appendLast(nextIndex, index);
      if (trackSecond) nextSecond = appendLast(nextSecond, second);
    } else {
      current = winner;
    }
    index = nextIndex;
    second = nextSecond;
    level++;
  }
  return {
    max: current,
    argmax: trackIndex ? index : new Uint8Array(0),
    second: trackSecond ? second : new Uint8Array(0),
  };
}
