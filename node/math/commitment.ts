/**
 * Hash commitments that bind a data owner's input shares to one on-chain
 * value without revealing them.
 *
 * The data owner shares its inputs (Shamir), draws a fresh 32-byte salt per
 * party, computes one digest per party over (context, party, salt, shares)
 * and posts inputCommitment(context, digests) on chain. Each party receives
 * its shares, its salt and the full digest list, and checks (1) that its own
 * digest is in the list at its index and (2) that the list hashes to the
 * on-chain commitment. A data owner therefore cannot later claim different
 * shares, and parties holding shares agree on which ones count.
 *
 * Both hashes are over a fixed-width packed encoding equal to Solidity's
 * abi.encodePacked of (string, uint256, address, uint256, address, uint32,
 * bytes32, bytes), so a contract can recompute either. The per-party share
 * digest is SHA-256 (Solidity's sha256): it covers every share a party
 * holds (3.2 MB for 100,000 values), and noble's SHA-256 hashes that in
 * ~27 ms here against ~200 ms for its keccak-256; node:crypto's (OpenSSL,
 * pure and synchronous like the rest of this layer) in ~2 ms, so the share
 * digest uses it. The commitment over the digests, 32 bytes per party,
 * stays keccak-256 as everywhere on chain.
 */
import { createHash } from "node:crypto";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { ConsortError } from "../errors.ts";
import { FR_BYTES, encodeFieldVector } from "./field.ts";
import type { Rng } from "./rng.ts";

/** The on-chain context a data owner's input belongs to (domain separation for the digests). */
export interface InputContext {
  chainId: bigint;
  /** Address of the registry contract, 20 bytes. */
  registry: Uint8Array;
  taskId: bigint;
  /** Address of the data owner, 20 bytes. */
  dataOwner: Uint8Array;
}

export const SALT_BYTES = 32;
export const DIGEST_BYTES = 32;
const ADDRESS_BYTES = 20;
const SHARE_DIGEST_TAG = new TextEncoder().encode("consort/input-share/v2");
const INPUT_COMMITMENT_TAG = new TextEncoder().encode("consort/input-commitment/v1");
const UINT256_LIMIT = 1n << 256n;
const UINT32_LIMIT = 2 ** 32;

function invalid(message: string, details: Record<string, unknown>): ConsortError {
  return new ConsortError("MATH_INVALID_ARGUMENT", message, { details });
}

function uint256(value: unknown, what: string): Uint8Array {
  if (typeof value !== "bigint" || value < 0n || value >= UINT256_LIMIT) {
    throw invalid(`${what} must be a uint256 bigint, got ${typeof value === "bigint" ? value.toString() : typeof value}`, {
      field: what,
    });
  }
  const out = new Uint8Array(32);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) view.setBigUint64(i * 8, BigInt.asUintN(64, value >> BigInt(192 - 64 * i)));
  return out;
}

function uint32(value: unknown, what: string): Uint8Array {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value >= UINT32_LIMIT) {
    throw invalid(`${what} must be an integer in [0, 2^32), got ${String(value)}`, { field: what, value: String(value) });
  }
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

function fixedBytes(value: unknown, length: number, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw invalid(`${what} must be ${length} bytes, got ${value instanceof Uint8Array ? `${value.length} bytes` : typeof value}`, {
      field: what,
      expected: length,
      got: value instanceof Uint8Array ? value.length : typeof value,
    });
  }
  return value;
}

/** chainId || registry || taskId || dataOwner, validated. */
function encodeContext(ctx: InputContext): Uint8Array[] {
  if (typeof ctx !== "object" || ctx === null) throw invalid("input context must be an object", { type: typeof ctx });
  return [
    uint256(ctx.chainId, "chainId"),
    fixedBytes(ctx.registry, ADDRESS_BYTES, "registry"),
    uint256(ctx.taskId, "taskId"),
    fixedBytes(ctx.dataOwner, ADDRESS_BYTES, "dataOwner"),
  ];
}

/**
 * sha256("consort/input-share/v2" || chainId (uint256) || registry (20) ||
 * taskId (uint256) || dataOwner (20) || partyIndex (uint32) || salt (32) ||
 * encodeFieldVector(shareValues)).
 *
 * The salt is essential, not decoration: shares of one secret are
 * correlated, so an unsalted digest lets one party test guesses about the
 * secret. With t = 1, f(x) = v + a·x gives y2 = 2·y1 - v, so party 1 (holding
 * y1) could try every plausible v (an age, a small amount) and compare
 * sha256(..., 2·y1 - v) to party 2's digest. A uniformly random 32-byte salt
 * per party, seen only by that party, makes each digest hiding.
 */
export function shareDigest(ctx: InputContext, partyIndex: number, salt: Uint8Array, shareValues: readonly bigint[]): Uint8Array {
  return shareDigestOfEncoded(ctx, partyIndex, salt, encodeFieldVector(shareValues));
}

/**
 * shareDigest of the share as encodeFieldVector encodes it (the bytes a data
 * owner seals to the party): a party hashes what it received without
 * decoding it into bigints. MATH_INVALID_ARGUMENT unless `encodedValues` is
 * whole 32-byte elements (canonicity is the caller's check, as it decodes
 * the share anyway: frVecFromBigEndian).
 */
export function shareDigestOfEncoded(ctx: InputContext, partyIndex: number, salt: Uint8Array, encodedValues: Uint8Array): Uint8Array {
  const context = encodeContext(ctx);
  const party = uint32(partyIndex, "partyIndex");
  fixedBytes(salt, SALT_BYTES, "salt");
  if (!(encodedValues instanceof Uint8Array) || encodedValues.length % FR_BYTES !== 0) {
    throw invalid("encoded share values must be whole 32-byte elements", { type: typeof encodedValues });
  }
  const h = createHash("sha256").update(SHARE_DIGEST_TAG);
  for (const part of context) h.update(part);
  return new Uint8Array(h.update(party).update(salt).update(encodedValues).digest());
}

/**
 * keccak256("consort/input-commitment/v1" || chainId || registry || taskId ||
 * dataOwner || uint32 digests.length || digests[0] || ... ), the value posted
 * on chain. The count is included so a list cannot be truncated or extended.
 */
export function inputCommitment(ctx: InputContext, digests: readonly Uint8Array[]): Uint8Array {
  const context = encodeContext(ctx);
  if (!Array.isArray(digests)) throw invalid("digests must be an array", { type: typeof digests });
  const count = uint32(digests.length, "digest count");
  const h = keccak_256.create().update(INPUT_COMMITMENT_TAG);
  for (const part of context) h.update(part);
  h.update(count);
  digests.forEach((digest, i) => h.update(fixedBytes(digest, DIGEST_BYTES, `digests[${i}]`)));
  return h.digest();
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * A party's check of what the data owner sent it against the on-chain
 * commitment. Throws COMMITMENT_MISMATCH with details.check =
 * "input-commitment" when the digest list does not hash to `commitment`, or
 * "share-digest" when the list (authentic) does not hold this party's digest
 * of (salt, shareValues) at `partyIndex`; MATH_INVALID_ARGUMENT for malformed
 * arguments.
 */
export function verifyShareAgainstCommitment(
  ctx: InputContext,
  partyIndex: number,
  salt: Uint8Array,
  shareValues: readonly bigint[],
  digests: readonly Uint8Array[],
  commitment: Uint8Array,
): void {
  fixedBytes(commitment, DIGEST_BYTES, "commitment");
  const own = shareDigest(ctx, partyIndex, salt, shareValues);
  // Authenticate the list first: a digest found in an unauthenticated list proves nothing.
  if (!equalBytes(inputCommitment(ctx, digests), commitment)) {
    throw new ConsortError("COMMITMENT_MISMATCH", `the digest list (${digests.length} digests) does not hash to the input commitment`, {
      details: { check: "input-commitment", partyIndex, digests: digests.length },
    });
  }
  const listed = digests[partyIndex];
  if (listed === undefined || !equalBytes(listed, own)) {
    throw new ConsortError(
      "COMMITMENT_MISMATCH",
      listed === undefined
        ? `the committed digest list has ${digests.length} digests, none for party ${partyIndex}`
        : `party ${partyIndex}'s shares and salt do not match its digest in the committed list`,
      { details: { check: "share-digest", partyIndex, digests: digests.length } },
    );
  }
}

/** What a data owner computes before sending shares: per-party salts and digests, and the commitment. */
export interface InputShareCommitment {
  salts: Uint8Array[];
  digests: Uint8Array[];
  commitment: Uint8Array;
}

/**
 * Draws a fresh salt per party from `rng` (a CSPRNG in production) and
 * commits to party-major share vectors (sharesByParty[i] = party i's shares).
 */
export function commitInputShares(ctx: InputContext, sharesByParty: readonly (readonly bigint[])[], rng: Rng): InputShareCommitment {
  if (!Array.isArray(sharesByParty)) throw invalid("sharesByParty must be an array", { type: typeof sharesByParty });
  return commitEncodedInputShares(ctx, sharesByParty.map((shares) => encodeFieldVector(shares)), rng);
}

/**
 * commitInputShares for shares already encoded by encodeFieldVector (what
 * the data owner seals and sends, so it encodes each party's vector once);
 * draws the salts from `rng` in the same order.
 */
export function commitEncodedInputShares(ctx: InputContext, encodedByParty: readonly Uint8Array[], rng: Rng): InputShareCommitment {
  if (!Array.isArray(encodedByParty)) throw invalid("encodedByParty must be an array", { type: typeof encodedByParty });
  const salts: Uint8Array[] = [];
  const digests: Uint8Array[] = [];
  for (let i = 0; i < encodedByParty.length; i++) {
    const salt = rng(SALT_BYTES);
    fixedBytes(salt, SALT_BYTES, "rng output");
    salts.push(salt);
    digests.push(shareDigestOfEncoded(ctx, i, salt, encodedByParty[i]!));
  }
  return { salts, digests, commitment: inputCommitment(ctx, digests) };
}
