/**
 * Outputs revealed only to the task's requester (reveal "requester").
 *
 * The parties never open such an output. Each party re-randomizes its share
 * vector with a fresh random sharing of zero (so the n share vectors the
 * requester collects form a uniformly random degree-t sharing of the value:
 * they reveal the value and nothing about how it was computed), draws a
 * fresh 32-byte salt, and publishes to its peers only a salted digest
 *   d_j = keccak256("consort/requester-share/v1" ‖ programHash ‖ len ‖ name ‖ j ‖ salt_j ‖ shares_j)
 * (uint32 big-endian len and j, shares_j as the packed little-endian
 * vector). Every party then knows every d_j and computes the commitment
 *   C = keccak256("consort/requester-output/v1" ‖ programHash ‖ len ‖ name ‖ n ‖ d_0 ‖ … ‖ d_(n-1))
 * which goes into the signed on-chain result instead of the value
 * (result-encoding.ts). The salt matters: without it, anyone who knows t
 * shares (or guesses a low-entropy value) could test candidate values
 * against the digests.
 *
 * Each party sends the requester (encrypted, by the node) its shares, salt
 * and the digest list; reconstructRequesterOutput checks every received
 * share against its digest and the list against C, then interpolates (with
 * error detection when more than t + 1 parties answered).
 */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex, concatBytes } from "@noble/hashes/utils.js";
import { ConsortError, isConsortError } from "../errors.ts";
import { FR_VEC_ELEMENT_BYTES, frVecCheck, frVecReconstruct, frVecToBigints } from "../math/fr-vec.ts";
import { MAX_PARTIES } from "../math/shamir.ts";
import { hashProgram } from "../program/program-encoding.ts";
import { findOutput, validateProgram, type Program } from "../program/program.ts";
import { renderOutputValue } from "../program/result-encoding.ts";

export const REQUESTER_SALT_BYTES = 32;
export const REQUESTER_DIGEST_BYTES = 32;
const SHARE_TAG = new TextEncoder().encode("consort/requester-share/v1");
const OUTPUT_TAG = new TextEncoder().encode("consort/requester-output/v1");

/** What one party hands the requester for one requester-only output. */
export interface RequesterOutputShare {
  readonly output: string;
  /** The party's index (0-based; Shamir x = party + 1). */
  readonly party: number;
  /** Its share vector (packed field vector, the output wire's length). */
  readonly shares: Uint8Array;
  readonly salt: Uint8Array;
  /** Every party's digest, index = party (the list the commitment hashes). */
  readonly digests: readonly Uint8Array[];
  /** The commitment C posted in the result ("0x" + 64 lowercase hex). */
  readonly commitment: string;
}

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array((hex.length - 2) / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 + 2 * i, 4 + 2 * i), 16);
  return out;
}

/** d_j: party j's salted digest of its share vector of output `name`. */
export function requesterShareDigest(programHash: string, name: string, party: number, salt: Uint8Array, shares: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  return keccak_256(concatBytes(SHARE_TAG, hexBytes(programHash), u32(nameBytes.length), nameBytes, u32(party), salt, shares));
}

/** C: the commitment to output `name` over every party's digest. */
export function requesterCommitment(programHash: string, name: string, digests: readonly Uint8Array[]): `0x${string}` {
  const nameBytes = new TextEncoder().encode(name);
  return `0x${bytesToHex(keccak_256(concatBytes(OUTPUT_TAG, hexBytes(programHash), u32(nameBytes.length), nameBytes, u32(digests.length), ...digests)))}`;
}

/** A 32-byte digest as two field elements (16-byte little-endian halves, always < r), for the wire. */
export function digestToElements(digest: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 * FR_VEC_ELEMENT_BYTES);
  out.set(digest.subarray(0, 16), 0);
  out.set(digest.subarray(16, 32), FR_VEC_ELEMENT_BYTES);
  return out;
}

/** The inverse of digestToElements; undefined if the elements are not two 16-byte halves. */
export function digestFromElements(v: Uint8Array): Uint8Array | undefined {
  if (v.length !== 2 * FR_VEC_ELEMENT_BYTES) return undefined;
  for (let i = 16; i < 32; i++) if (v[i] !== 0 || v[FR_VEC_ELEMENT_BYTES + i] !== 0) return undefined;
  const out = new Uint8Array(32);
  out.set(v.subarray(0, 16), 0);
  out.set(v.subarray(FR_VEC_ELEMENT_BYTES, FR_VEC_ELEMENT_BYTES + 16), 16);
  return out;
}

function mismatch(message: string, details: Record<string, unknown>): ConsortError {
  return new ConsortError("COMMITMENT_MISMATCH", message, { details });
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface ReconstructOptions {
  /** t, the task's Shamir degree. */
  readonly threshold: number;
  /** The commitment from the on-chain result; when given, every share is checked against it. */
  readonly commitment?: string;
}

/**
 * The requester's client: reconstructs requester-only output `name` from the
 * parties' RequesterOutputShares (index = party, undefined for parties that
 * did not answer; at least t + 1 needed). Checks each share against its
 * party's digest, that all parties sent the same digest list, and (with
 * options.commitment) that the list hashes to the posted commitment
 * (COMMITMENT_MISMATCH naming the party otherwise); with more than t + 1
 * shares, that they lie on one degree-t polynomial (PROTOCOL_ABORTED).
 * Returns the output's field elements and its rendering (as encodeResult
 * would render the value).
 */
export function reconstructRequesterOutput(
  program: Program,
  name: string,
  sharesByParty: readonly (RequesterOutputShare | undefined)[],
  options: ReconstructOptions,
): { values: bigint[]; rendered: string | readonly string[] } {
  const p = validateProgram(program);
  const output = findOutput(p, name);
  if (output.reveal !== "requester") {
    throw new ConsortError("PROGRAM_INVALID", `output ${JSON.stringify(name)} is not requester-only`, { details: { output: name } });
  }
  if (!Array.isArray(sharesByParty) || sharesByParty.length > MAX_PARTIES) {
    throw new ConsortError("BAD_REQUEST", "sharesByParty must be an array indexed by party");
  }
  const length = p.gates[output.wire]!.length;
  const programHash = hashProgram(p);
  let list: readonly Uint8Array[] | undefined;
  const vectors: (Uint8Array | undefined)[] = [];
  for (let j = 0; j < sharesByParty.length; j++) {
    const share = sharesByParty[j];
    if (share === undefined) {
      vectors.push(undefined);
      continue;
    }
    if (share.party !== j || share.output !== name) {
      throw new ConsortError("BAD_REQUEST", `entry ${j} holds party ${String(share.party)}'s share of ${JSON.stringify(String(share.output))}`, { details: { party: j } });
    }
    try {
      frVecCheck(share.shares, `shares of party ${j}`, length);
    } catch (cause) {
      throw new ConsortError("BAD_REQUEST", `party ${j}'s shares of ${JSON.stringify(name)} are not ${length} field elements`, { cause, details: { party: j } });
    }
    if (!(share.salt instanceof Uint8Array) || share.salt.length !== REQUESTER_SALT_BYTES) {
      throw new ConsortError("BAD_REQUEST", `party ${j}'s salt must be ${REQUESTER_SALT_BYTES} bytes`, { details: { party: j } });
    }
    const digests = share.digests;
    if (!Array.isArray(digests) || digests.some((d) => !(d instanceof Uint8Array) || d.length !== REQUESTER_DIGEST_BYTES)) {
      throw mismatch(`party ${j} sent a malformed digest list`, { party: j });
    }
    if (list === undefined) list = digests;
    else if (digests.length !== list.length || digests.some((d, i) => !equalBytes(d, list![i]!))) {
      throw mismatch(`party ${j} sent a different digest list than the parties before it`, { party: j });
    }
    const own = requesterShareDigest(programHash, name, j, share.salt, share.shares);
    if (digests[j] === undefined || !equalBytes(digests[j]!, own)) {
      throw mismatch(`party ${j}'s shares and salt do not match its digest`, { party: j });
    }
    vectors.push(share.shares);
  }
  if (list === undefined) throw new ConsortError("MATH_NOT_ENOUGH_SHARES", `no shares of ${JSON.stringify(name)} were given`);
  if (options.commitment !== undefined) {
    const expected = requesterCommitment(programHash, name, list);
    if (expected !== String(options.commitment).toLowerCase()) {
      throw mismatch(`the digest list hashes to ${expected}, not to the committed ${String(options.commitment)}`, { output: name });
    }
  }
  let values: bigint[];
  try {
    values = frVecToBigints(frVecReconstruct(vectors, options.threshold));
  } catch (error) {
    if (isConsortError(error, "MATH_INCONSISTENT_SHARES")) {
      throw new ConsortError("PROTOCOL_ABORTED", `the shares of ${JSON.stringify(name)} are inconsistent: ${error.message}`, { cause: error, details: { output: name, ...error.details } });
    }
    throw error;
  }
  return { values, rendered: renderOutputValue(p, name, values) };
}
