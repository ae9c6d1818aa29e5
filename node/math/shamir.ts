/**
 * Shamir secret sharing over Fr (A. Shamir, "How to share a secret", CACM
 * 1979). A secret s is the constant term of a random polynomial f of degree
 * t; party i (0-based) holds f(i + 1). Any t + 1 shares determine s by
 * Lagrange interpolation at 0; any t shares are independent of s (for every
 * candidate s there is exactly one degree-t polynomial through them and
 * (0, s), so all candidates are equally likely).
 *
 * Shares form a Reed–Solomon codeword, so with k > t + 1 shares a wrong
 * share is detected (it does not lie on the polynomial through the others),
 * and with k >= t + 3 a single wrong share is also located: the RS code of
 * length k and dimension t + 1 has distance k - t >= 3 (see e.g. Berlekamp–
 * Welch decoding; for one error, trying each leave-one-out subset suffices).
 */
import { ConsortError } from "../errors.ts";
import { Fr, FR_MODULUS, assertFieldElement, decodeSigned, isFieldElement, randomFieldElements } from "./field.ts";
import { lagrangeUnchecked } from "./polynomial.ts";
import type { Rng } from "./rng.ts";

/** One party's share: the evaluation y = f(x) at x = partyIndex + 1. */
export interface Share {
  x: bigint;
  y: bigint;
}

/** t (polynomial degree; t + 1 shares reconstruct, t reveal nothing) and n (number of parties). */
export interface SharingParams {
  threshold: number;
  parties: number;
}

/** Party x coordinates are 1..255, so at most 255 parties. */
export const MAX_PARTIES = 255;

/** Throws MATH_INVALID_ARGUMENT unless 1 <= threshold < parties <= 255 (integers). */
export function validateSharingParams(params: SharingParams): void {
  if (typeof params !== "object" || params === null) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "sharing params must be an object {threshold, parties}");
  }
  const { threshold, parties } = params;
  if (!Number.isSafeInteger(parties) || parties < 2 || parties > MAX_PARTIES) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `parties must be an integer in [2, ${MAX_PARTIES}], got ${String(parties)}`, {
      details: { parties: String(parties) },
    });
  }
  if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold >= parties) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `threshold must be an integer in [1, parties - 1] = [1, ${parties - 1}], got ${String(threshold)}`, {
      details: { threshold: String(threshold), parties },
    });
  }
}

function assertThreshold(threshold: number): void {
  if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold >= MAX_PARTIES) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `threshold must be an integer in [1, ${MAX_PARTIES - 1}], got ${String(threshold)}`, {
      details: { threshold: String(threshold) },
    });
  }
}

function assertPartyIndex(partyIndex: number, parties: number = MAX_PARTIES): void {
  if (!Number.isSafeInteger(partyIndex) || partyIndex < 0 || partyIndex >= parties) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `party index must be an integer in [0, ${parties - 1}], got ${String(partyIndex)}`, {
      details: { partyIndex: String(partyIndex), parties },
    });
  }
}

/** The evaluation point of party `partyIndex` (0-based): partyIndex + 1. */
export function partyX(partyIndex: number): bigint {
  assertPartyIndex(partyIndex);
  return BigInt(partyIndex + 1);
}

const PARTY_XS: readonly bigint[] = Object.freeze(Array.from({ length: MAX_PARTIES }, (_, i) => BigInt(i + 1)));

/**
 * f(x) for f = secret + a_1 X + ... + a_t X^t, with a_1..a_t at
 * coefficients[offset .. offset + t). x is a small party coordinate, so
 * Horner's rule runs on unreduced integers (each step adds ~8 bits) and
 * reduces once through Fr at the end.
 */
function evaluateShare(secret: bigint, coefficients: readonly bigint[], offset: number, t: number, x: bigint): bigint {
  let acc = coefficients[offset + t - 1]!;
  for (let j = offset + t - 2; j >= offset; j--) acc = acc * x + coefficients[j]!;
  return Fr.create(acc * x + secret);
}

/**
 * Splits `secret` into `params.parties` shares with a uniformly random
 * polynomial of degree `params.threshold`. Draws a_1..a_t in order from `rng`
 * (randomFieldElements), exactly as splitVector does for each secret.
 */
export function splitSecret(secret: bigint, params: SharingParams, rng: Rng): Share[] {
  validateSharingParams(params);
  assertFieldElement(secret, "secret");
  const { threshold: t, parties: n } = params;
  const coefficients = randomFieldElements(t, rng);
  const shares = new Array<Share>(n);
  for (let i = 0; i < n; i++) {
    const x = PARTY_XS[i]!;
    shares[i] = { x, y: evaluateShare(secret, coefficients, 0, t, x) };
  }
  return shares;
}

/** Secrets per rng call in splitVector: bounds each random buffer to CHUNK * t * 32 bytes. */
const SPLIT_CHUNK = 1024;

/**
 * Shares a batch of secrets, party-major: result[i][k] is party i's share of
 * secrets[k]. Each secret gets its own independent polynomial; randomness is
 * consumed secret by secret (a_1..a_t each), so splitVector([s]) equals
 * splitSecret(s) for the same rng stream.
 */
export function splitVector(secrets: readonly bigint[], params: SharingParams, rng: Rng): bigint[][] {
  validateSharingParams(params);
  if (!Array.isArray(secrets)) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "secrets must be an array", { details: { type: typeof secrets } });
  }
  const { threshold: t, parties: n } = params;
  const m = secrets.length;
  for (let k = 0; k < m; k++) {
    if (!isFieldElement(secrets[k])) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `secret ${k} is not a field element (expected a bigint in [0, r))`, {
        details: { index: k, type: typeof secrets[k] },
      });
    }
  }
  const result: bigint[][] = new Array<bigint[]>(n);
  for (let i = 0; i < n; i++) result[i] = new Array<bigint>(m);
  for (let start = 0; start < m; start += SPLIT_CHUNK) {
    const count = Math.min(SPLIT_CHUNK, m - start);
    const coefficients = randomFieldElements(count * t, rng);
    for (let c = 0; c < count; c++) {
      const k = start + c;
      const secret = secrets[k]!;
      for (let i = 0; i < n; i++) result[i]![k] = evaluateShare(secret, coefficients, c * t, t, PARTY_XS[i]!);
    }
  }
  return result;
}

/**
 * Precomputed Lagrange data for reconstructing from one set of parties.
 * The first t + 1 parties (ascending) form the basis; the secret is
 * Σ lagrangeAtZero[j] · y(basisParties[j]). Every further party e is a check:
 * its share must equal Σ checkCoefficients[e][j] · y(basisParties[j]), the
 * basis polynomial evaluated at its x.
 *
 * The *Signed arrays hold the same coefficients as signed representatives
 * (decodeSigned: c or c - r). For party x = 1, 2, 3, ... these are small
 * integers (λ at 0 for x = 1..k is (-1)^(j+1) C(k, j)), so multiplying a
 * share by them costs a fraction of a full 254×254-bit product; the sums are
 * reduced once by Fr.create, which accepts negative integers.
 */
export interface ReconstructionPlan {
  readonly threshold: number;
  /** All parties used, ascending, distinct (0-based). */
  readonly partyIndices: readonly number[];
  readonly basisParties: readonly number[];
  readonly lagrangeAtZero: readonly bigint[];
  readonly checkParties: readonly number[];
  readonly checkCoefficients: readonly (readonly bigint[])[];
  readonly lagrangeAtZeroSigned: readonly bigint[];
  readonly checkCoefficientsSigned: readonly (readonly bigint[])[];
}

/** A small insertion-ordered cache; the party sets a deployment sees are few. */
const CACHE_LIMIT = 512;
function cacheGet<V>(cache: Map<string, V>, key: string, make: () => V): V {
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const value = make();
  if (cache.size >= CACHE_LIMIT) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  cache.set(key, value);
  return value;
}
const planCache = new Map<string, ReconstructionPlan>();
const lagrangeCache = new Map<string, readonly bigint[]>();

function sortedDistinctParties(partyIndices: readonly number[], parties: number): number[] {
  if (!Array.isArray(partyIndices)) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "party indices must be an array", { details: { type: typeof partyIndices } });
  }
  for (const p of partyIndices) assertPartyIndex(p, parties);
  const sorted = [...partyIndices].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `party ${sorted[i]} is listed twice`, { details: { partyIndex: sorted[i] } });
    }
  }
  return sorted;
}

/**
 * The (cached, frozen) reconstruction plan for a set of parties and a
 * threshold. Needs at least threshold + 1 parties (MATH_NOT_ENOUGH_SHARES).
 */
export function reconstructionPlan(partyIndices: readonly number[], threshold: number): ReconstructionPlan {
  assertThreshold(threshold);
  const sorted = sortedDistinctParties(partyIndices, MAX_PARTIES);
  if (sorted.length < threshold + 1) {
    throw new ConsortError("MATH_NOT_ENOUGH_SHARES", `reconstruction with threshold ${threshold} needs ${threshold + 1} shares, got ${sorted.length}`, {
      details: { threshold, needed: threshold + 1, got: sorted.length },
    });
  }
  return cacheGet(planCache, `${threshold}|${sorted.join(",")}`, () => {
    const basisParties = sorted.slice(0, threshold + 1);
    const checkParties = sorted.slice(threshold + 1);
    const basisX = basisParties.map((p) => PARTY_XS[p]!);
    const atZero = lagrangeUnchecked(basisX, 0n);
    const checks = checkParties.map((p) => lagrangeUnchecked(basisX, PARTY_XS[p]!));
    return Object.freeze({
      threshold,
      partyIndices: Object.freeze(sorted),
      basisParties: Object.freeze(basisParties),
      lagrangeAtZero: Object.freeze(atZero),
      checkParties: Object.freeze(checkParties),
      checkCoefficients: Object.freeze(checks.map((row) => Object.freeze(row))),
      lagrangeAtZeroSigned: Object.freeze(atZero.map(decodeSigned)),
      checkCoefficientsSigned: Object.freeze(checks.map((row) => Object.freeze(row.map(decodeSigned)))),
    });
  });
}

/**
 * Lagrange coefficients at 0 for the parties `partyIndices` (x = i + 1), in
 * the order given, cached. Σ λ_i · y_i over these parties recovers f(0) for
 * any f of degree < partyIndices.length (e.g. the degree-2t products in BGW
 * degree reduction, which use all 2t + 1 parties). Returned in [0, r);
 * decodeSigned turns them into small signed integers for cheaper products.
 */
export function lagrangeAtZero(partyIndices: readonly number[]): readonly bigint[] {
  sortedDistinctParties(partyIndices, MAX_PARTIES);
  if (partyIndices.length === 0) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "lagrangeAtZero needs at least one party");
  }
  return cacheGet(lagrangeCache, partyIndices.join(","), () =>
    Object.freeze(lagrangeUnchecked(partyIndices.map((p) => PARTY_XS[p]!), 0n)),
  );
}

/**
 * Indices into plan.checkParties whose value at `k` disagrees with the
 * basis polynomial. `rows` is aligned with plan.partyIndices.
 */
function disagreeingChecks(plan: ReconstructionPlan, rows: readonly (readonly bigint[])[], k: number): number[] {
  const b = plan.basisParties.length;
  const out: number[] = [];
  for (let e = 0; e < plan.checkParties.length; e++) {
    const coefficients = plan.checkCoefficientsSigned[e]!;
    let acc = 0n;
    for (let j = 0; j < b; j++) acc += coefficients[j]! * rows[j]![k]!;
    if (Fr.create(acc) !== rows[b + e]![k]!) out.push(e);
  }
  return out;
}

/**
 * With k >= t + 3 shares and one wrong share, exactly one leave-one-out
 * subset is consistent (two consistent subsets would share >= t + 1 points,
 * hence one polynomial, and then all shares would be consistent). Returns
 * that party, or undefined when no single fault explains the disagreement.
 */
function locateSingleFault(plan: ReconstructionPlan, rows: readonly (readonly bigint[])[], k: number): number | undefined {
  const parties = plan.partyIndices;
  if (parties.length < plan.threshold + 3) return undefined;
  for (let skip = 0; skip < parties.length; skip++) {
    const subset = parties.filter((_, i) => i !== skip);
    const subRows = rows.filter((_, i) => i !== skip);
    if (disagreeingChecks(reconstructionPlan(subset, plan.threshold), subRows, k).length === 0) return parties[skip];
  }
  return undefined;
}

function inconsistentShares(plan: ReconstructionPlan, rows: readonly (readonly bigint[])[], k: number, disagreeing: number[], vectorIndex: number | undefined): ConsortError {
  const disagreeingParties = disagreeing.map((e) => plan.checkParties[e]!);
  const suspect = locateSingleFault(plan, rows, k);
  const xs = (ps: readonly number[]): number[] => ps.map((p) => p + 1);
  const where = vectorIndex === undefined ? "" : ` (vector entry ${vectorIndex})`;
  const blame =
    suspect === undefined
      ? ""
      : `; the only single share whose removal makes the rest consistent is x = ${suspect + 1}`;
  return new ConsortError(
    "MATH_INCONSISTENT_SHARES",
    `shares do not lie on one polynomial of degree <= ${plan.threshold}${where}: x = ${xs(disagreeingParties).join(", ")} disagree with the polynomial through x = ${xs(plan.basisParties).join(", ")}${blame}`,
    {
      details: {
        threshold: plan.threshold,
        ...(vectorIndex === undefined ? {} : { index: vectorIndex }),
        basisX: xs(plan.basisParties),
        disagreeingX: xs(disagreeingParties),
        basisParties: [...plan.basisParties],
        disagreeingParties,
        ...(suspect === undefined ? {} : { suspectX: suspect + 1, suspectParty: suspect }),
      },
    },
  );
}

/** Validates scalar shares; returns the plan and the share values aligned with plan.partyIndices. */
function prepareShares(shares: readonly Share[], threshold: number): { plan: ReconstructionPlan; rows: bigint[][] } {
  assertThreshold(threshold);
  if (!Array.isArray(shares)) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "shares must be an array", { details: { type: typeof shares } });
  }
  const byParty = new Map<number, bigint>();
  for (let i = 0; i < shares.length; i++) {
    const share = shares[i];
    if (typeof share !== "object" || share === null) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `share ${i} is not an {x, y} object`, { details: { index: i } });
    }
    const { x, y } = share;
    if (typeof x !== "bigint" || x < 1n || x > BigInt(MAX_PARTIES)) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `share ${i} has x = ${String(x)}, expected an integer in [1, ${MAX_PARTIES}]`, {
        details: { index: i, x: String(x) },
      });
    }
    if (!isFieldElement(y)) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `share ${i} (x = ${x}) has a y that is not a field element`, {
        details: { index: i, x: Number(x), type: typeof y },
      });
    }
    const party = Number(x) - 1;
    if (byParty.has(party)) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `two shares have x = ${x}`, { details: { index: i, x: Number(x) } });
    }
    byParty.set(party, y);
  }
  const plan = reconstructionPlan([...byParty.keys()], threshold);
  return { plan, rows: plan.partyIndices.map((p) => [byParty.get(p)!]) };
}

/**
 * Throws MATH_INCONSISTENT_SHARES unless all shares lie on one polynomial of
 * degree <= threshold (details name the disagreeing x values, never share
 * values). With exactly threshold + 1 shares there is nothing to check.
 */
export function checkShareConsistency(shares: readonly Share[], threshold: number): void {
  const { plan, rows } = prepareShares(shares, threshold);
  const disagreeing = disagreeingChecks(plan, rows, 0);
  if (disagreeing.length > 0) throw inconsistentShares(plan, rows, 0, disagreeing, undefined);
}

/**
 * The secret f(0) from at least threshold + 1 shares with distinct x in
 * [1, 255]. Uses all shares: those beyond the first t + 1 (by x) are checked
 * against the polynomial, so a corrupted share is detected
 * (MATH_INCONSISTENT_SHARES) rather than silently changing the result.
 */
export function reconstructSecret(shares: readonly Share[], threshold: number): bigint {
  const { plan, rows } = prepareShares(shares, threshold);
  const disagreeing = disagreeingChecks(plan, rows, 0);
  if (disagreeing.length > 0) throw inconsistentShares(plan, rows, 0, disagreeing, undefined);
  let acc = 0n;
  for (let j = 0; j < plan.lagrangeAtZeroSigned.length; j++) acc += plan.lagrangeAtZeroSigned[j]! * rows[j]![0]!;
  return Fr.create(acc);
}

/**
 * Reconstructs a batch from party-major shares (sharesByParty[i][k] = party
 * i's share of secret k; absent parties are missing keys or undefined
 * entries). Needs >= threshold + 1 parties, all with vectors of the same
 * length; every share value must be a field element. When more than t + 1
 * parties are present, every entry is checked for consistency
 * (MATH_INCONSISTENT_SHARES with details.index = the first bad entry).
 *
 * Per entry the cost is (t + 1) multiplications by (usually small) signed
 * coefficients for the secret plus (t + 1) per check party, accumulated
 * unreduced and reduced once through Fr.
 */
export function reconstructVector(
  sharesByParty: ReadonlyMap<number, readonly bigint[]> | readonly (readonly bigint[] | undefined)[],
  threshold: number,
  parties: number,
): bigint[] {
  validateSharingParams({ threshold, parties });
  const present = new Map<number, readonly bigint[]>();
  if (sharesByParty instanceof Map) {
    for (const [party, values] of sharesByParty) {
      assertPartyIndex(party, parties);
      present.set(party, values);
    }
  } else if (Array.isArray(sharesByParty)) {
    if (sharesByParty.length > parties) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `shares are given for ${sharesByParty.length} parties, but there are only ${parties}`, {
        details: { got: sharesByParty.length, parties },
      });
    }
    for (let i = 0; i < sharesByParty.length; i++) {
      const values = sharesByParty[i];
      if (values !== undefined) present.set(i, values);
    }
  } else {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "sharesByParty must be a Map or an array indexed by party", {
      details: { type: typeof sharesByParty },
    });
  }

  let length: number | undefined;
  let lengthParty = -1;
  for (const [party, values] of present) {
    if (!Array.isArray(values)) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `shares of party ${party} are not an array`, { details: { partyIndex: party } });
    }
    if (length === undefined) {
      length = values.length;
      lengthParty = party;
    } else if (values.length !== length) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `party ${party} sent ${values.length} shares but party ${lengthParty} sent ${length}`, {
        details: { partyIndex: party, got: values.length, expected: length, expectedFrom: lengthParty },
      });
    }
    for (let k = 0; k < values.length; k++) {
      const y = values[k];
      if (typeof y !== "bigint" || y < 0n || y >= FR_MODULUS) {
        throw new ConsortError("MATH_INVALID_ARGUMENT", `share ${k} of party ${party} is not a field element`, {
          details: { partyIndex: party, index: k, type: typeof y },
        });
      }
    }
  }

  const plan = reconstructionPlan([...present.keys()], threshold);
  const rows = plan.partyIndices.map((p) => present.get(p)!);
  const m = length ?? 0;
  const b = plan.basisParties.length;
  const lambdas = plan.lagrangeAtZeroSigned;
  const basisRows = rows.slice(0, b);
  const checks = plan.checkParties.length;
  const out = new Array<bigint>(m);
  for (let k = 0; k < m; k++) {
    let acc = 0n;
    for (let j = 0; j < b; j++) acc += lambdas[j]! * basisRows[j]![k]!;
    out[k] = Fr.create(acc);
    for (let e = 0; e < checks; e++) {
      const coefficients = plan.checkCoefficientsSigned[e]!;
      let predicted = 0n;
      for (let j = 0; j < b; j++) predicted += coefficients[j]! * basisRows[j]![k]!;
      if (Fr.create(predicted) !== rows[b + e]![k]!) {
        throw inconsistentShares(plan, rows, k, disagreeingChecks(plan, rows, k), k);
      }
    }
  }
  return out;
}
