/**
 * A data owner's submission of its Shamir shares (Shamir 1979) to one party:
 * small JSON, validated with zod, signed by the data owner's Ethereum key.
 *
 * The signature is EIP-191 personal_sign over the 32-byte shareSubmissionDigest,
 * so any Ethereum signer (a local Wallet, a JSON-RPC or hardware wallet, a
 * Hardhat test account) can act as data owner; the Consort domain tag inside
 * the digest keeps it from meaning anything else.
 *
 * `sealed` is an envelope (./envelope.ts) to the party's registered
 * encryption key holding salt (32 bytes) || encodeFieldVector(shareValues);
 * its AAD binds chain id, registry, task id, data owner and party, so a
 * ciphertext cannot be moved to another task, owner or party.
 */
import { hash } from "node:crypto";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { getAddress, getBytes, hashMessage, hexlify } from "ethers";
import { z } from "zod";
import { ConsortError } from "../errors.ts";
import { FR_BYTES, encodeFieldVector } from "../math/field.ts";
import { frVecFromBigEndian } from "../math/fr-vec.ts";
import { ByteWriter, UINT256_MAX, addressToBytes, describeValue, hexBytes, uint256ToBytes } from "./binary-codec.ts";
import { ENVELOPE_OVERHEAD, openSealed, sealTo } from "./envelope.ts";
import { recoverSigner } from "./recover-signer.ts";

export const SHARE_SUBMISSION_VERSION = 1;
export const SHARE_SALT_BYTES = 32;
/** Upper bound on parties per task, only to bound the work one request can cause. */
export const MAX_SUBMISSION_PARTIES = 1024;
const DIGEST_DOMAIN = utf8ToBytes("consort/share-submission/v2");
const AAD_DOMAIN = utf8ToBytes("consort/share-payload/v1");

const decimalUint256 = z
  .string()
  .regex(/^(0|[1-9][0-9]*)$/, { message: "expected a decimal integer without sign or leading zeros", abort: true })
  .refine((s) => s.length <= 78 && BigInt(s) <= UINT256_MAX, "exceeds 2^256 - 1");

const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, { message: "expected a 0x-prefixed 20-byte address", abort: true })
  .refine((s) => {
    try {
      getAddress(s);
      return true;
    } catch {
      return false;
    }
  }, "bad EIP-55 checksum")
  .transform((s) => getAddress(s));

const hex32 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/, "expected 0x and 64 hex digits")
  .transform((s) => s.toLowerCase());

// Megabytes for large inputs: checked by decoding (no regex), and left in the case it came in (only its bytes are ever used).
const sealedHex = z
  .string()
  .refine((s) => hexBytes(s) !== undefined, { message: "expected 0x-prefixed hex bytes", abort: true })
  .refine((s) => (s.length - 2) / 2 >= ENVELOPE_OVERHEAD + SHARE_SALT_BYTES, "too short to be a sealed share payload");

const signatureHex = z
  .string()
  .regex(/^0x[0-9a-fA-F]{130}$/, "expected 0x and 130 hex digits (65-byte r||s||v)")
  .transform((s) => s.toLowerCase());

const unsignedFields = {
  version: z.literal(SHARE_SUBMISSION_VERSION),
  chainId: decimalUint256,
  registry: address,
  taskId: decimalUint256,
  dataOwner: address,
  party: address,
  digests: z.array(hex32).min(1).max(MAX_SUBMISSION_PARTIES),
  sealed: sealedHex,
};

/** Room for the fixed fields (version, ids, addresses, key names) and any JSON whitespace a client adds. */
const SUBMISSION_FIXED_JSON_BYTES = 4096;

/**
 * The largest JSON body of a share submission carrying `valueCount` field
 * elements to one party of a task with `partyCount` parties: what the node
 * API reads at most before it knows who sent it (./http-server.ts).
 */
export function maxShareSubmissionBytes(valueCount: number, partyCount: number): number {
  if (!Number.isSafeInteger(valueCount) || valueCount < 0 || !Number.isSafeInteger(partyCount) || partyCount < 1 || partyCount > MAX_SUBMISSION_PARTIES) {
    throw new ConsortError("BAD_REQUEST", `maxShareSubmissionBytes: bad counts ${describeValue(valueCount)} values, ${describeValue(partyCount)} parties`);
  }
  const sealedHex = 2 * (ENVELOPE_OVERHEAD + SHARE_SALT_BYTES + FR_BYTES * valueCount) + 4;
  // Each digest: "0x" + 64 hex digits, quotes and a comma.
  const digests = partyCount * (66 + 3);
  const signature = 132 + 2;
  return SUBMISSION_FIXED_JSON_BYTES + sealedHex + digests + signature;
}

export const unsignedShareSubmissionSchema = z.strictObject(unsignedFields);
export const shareSubmissionSchema = z.strictObject({ ...unsignedFields, signature: signatureHex });

export interface UnsignedShareSubmission {
  version: 1;
  /** Decimal uint256. */
  chainId: string;
  registry: string;
  /** Decimal uint256. */
  taskId: string;
  dataOwner: string;
  party: string;
  /** One 0x-hex32 digest per party, in the task's party order. */
  digests: string[];
  /** 0x-hex envelope to `party`'s encryption key (sealSharePayload). */
  sealed: string;
}

export interface ShareSubmission extends UnsignedShareSubmission {
  /** 0x-hex 65-byte EIP-191 signature by `dataOwner` over shareSubmissionDigest. */
  signature: string;
}

/** The fields the share payload's AAD binds; ids as bigints or canonical decimal strings. */
export interface ShareAadContext {
  chainId: bigint | string;
  registry: string;
  taskId: bigint | string;
  dataOwner: string;
  party: string;
}

/** Anything that signs EIP-191 messages for an address: ethers Wallet, JsonRpcSigner, Hardhat signers. */
export interface ShareSigner {
  getAddress(): Promise<string>;
  signMessage(message: Uint8Array | string): Promise<string>;
}

function issueField(issue: z.core.$ZodIssue, root: string): string {
  const path = issue.path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`))
    .join("");
  if (issue.code === "unrecognized_keys" && issue.keys.length > 0) {
    const key = issue.keys[0] as string;
    return path === "" ? key : `${path}.${key}`;
  }
  return path === "" ? root : path;
}

function parseWith<T>(schema: z.ZodType<T>, json: unknown, root: string): T {
  const result = schema.safeParse(json);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue === undefined) throw new ConsortError("BAD_REQUEST", `${root}: invalid`, { details: { field: root } });
  const field = issueField(issue, root);
  const message = issue.code === "unrecognized_keys" ? "unknown field" : issue.message;
  throw new ConsortError("BAD_REQUEST", `${field}: ${message}`, { details: { field } });
}

/**
 * Validates untrusted JSON as a ShareSubmission (addresses checksummed, hex lower-cased).
 * BAD_REQUEST with details.field naming the first bad field, e.g. "digests[2]".
 * Does not check the signature: call verifyShareSubmission.
 */
export function parseShareSubmission(json: unknown): ShareSubmission {
  return parseWith(shareSubmissionSchema, json, "submission") as ShareSubmission;
}

function toUint256(value: bigint | string, field: string): bigint {
  if (typeof value === "bigint") return value;
  return BigInt(parseWith(decimalUint256, value, field));
}

/**
 * keccak256(utf8("consort/share-submission/v2") || chainId (32) || registry (20) || taskId (32)
 *   || dataOwner (20) || party (20) || sha256(sealed) (32) || digests (32 each)).
 * Every field is fixed-width, so the concatenation is unambiguous. The
 * envelope is hashed with SHA-256 because it is megabytes for large inputs
 * (node:crypto's native SHA-256: noble's, in JS, took ~0.2 s for 3.2 MB
 * here, its keccak-256 ~8x more).
 */
export function shareSubmissionDigest(sub: UnsignedShareSubmission): Uint8Array {
  const { signature: _ignored, ...unsigned } = sub as ShareSubmission;
  const s = parseWith(unsignedShareSubmissionSchema, unsigned, "submission");
  const w = new ByteWriter(DIGEST_DOMAIN.length + 32 + 20 + 32 + 20 + 20 + 32 + 32 * s.digests.length);
  w.bytes(DIGEST_DOMAIN)
    .bytes(uint256ToBytes(BigInt(s.chainId), "chainId"))
    .bytes(addressToBytes(s.registry, "registry"))
    .bytes(uint256ToBytes(BigInt(s.taskId), "taskId"))
    .bytes(addressToBytes(s.dataOwner, "dataOwner"))
    .bytes(addressToBytes(s.party, "party"))
    .bytes(hash("sha256", hexBytes(s.sealed)!, "buffer"));
  for (const d of s.digests) w.bytes(getBytes(d));
  return keccak_256(w.finish());
}

/** Signs `unsigned` as its data owner. KEY_INVALID if the signer's address is not `unsigned.dataOwner`. */
export async function signShareSubmission(unsigned: UnsignedShareSubmission, signer: ShareSigner): Promise<ShareSubmission> {
  const digest = shareSubmissionDigest(unsigned);
  const normalized = parseWith(unsignedShareSubmissionSchema, unsigned, "submission");
  const signerAddress = getAddress(await signer.getAddress());
  if (signerAddress !== normalized.dataOwner) {
    throw new ConsortError("KEY_INVALID", `signer ${signerAddress} is not the data owner ${normalized.dataOwner}`, {
      details: { signer: signerAddress, dataOwner: normalized.dataOwner },
    });
  }
  const signature = await signer.signMessage(digest);
  return { ...normalized, signature: hexlify(getBytes(signature)) };
}

/** BAD_SIGNATURE unless `sub.signature` is a canonical EIP-191 signature by `sub.dataOwner` over its digest. */
export function verifyShareSubmission(sub: ShareSubmission): void {
  const digest = shareSubmissionDigest(sub);
  if (typeof sub.signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(sub.signature)) {
    throw new ConsortError("BAD_SIGNATURE", "signature: expected 65 bytes of 0x-hex", { details: { field: "signature" } });
  }
  const signer = recoverSigner(getBytes(hashMessage(digest)), getBytes(sub.signature));
  const dataOwner = getAddress(sub.dataOwner);
  if (signer !== dataOwner) {
    throw new ConsortError("BAD_SIGNATURE", `share submission signed by ${signer}, not by its data owner ${dataOwner}`, {
      details: { signer, dataOwner },
    });
  }
}

/** AAD of a share payload: domain tag || chainId || registry || taskId || dataOwner || party. */
export function sharePayloadAad(context: ShareAadContext): Uint8Array {
  const w = new ByteWriter(AAD_DOMAIN.length + 32 + 20 + 32 + 20 + 20);
  w.bytes(AAD_DOMAIN)
    .bytes(uint256ToBytes(toUint256(context.chainId, "chainId"), "chainId"))
    .bytes(addressToBytes(context.registry, "registry"))
    .bytes(uint256ToBytes(toUint256(context.taskId, "taskId"), "taskId"))
    .bytes(addressToBytes(context.dataOwner, "dataOwner"))
    .bytes(addressToBytes(context.party, "party"));
  return w.finish();
}

/** Seals salt || encodeFieldVector(shareValues) to the party's encryption key. */
export function sealSharePayload(
  recipientPublicKey: Uint8Array,
  salt: Uint8Array,
  shareValues: readonly bigint[],
  aadContext: ShareAadContext,
): Uint8Array {
  const values = encodeFieldVector(shareValues);
  try {
    return sealEncodedSharePayload(recipientPublicKey, salt, values, aadContext);
  } finally {
    values.fill(0);
  }
}

/**
 * sealSharePayload for share values already encoded by encodeFieldVector
 * (32-byte big-endian canonical elements; the party refuses anything else).
 */
export function sealEncodedSharePayload(recipientPublicKey: Uint8Array, salt: Uint8Array, encodedValues: Uint8Array, aadContext: ShareAadContext): Uint8Array {
  if (!(salt instanceof Uint8Array) || salt.length !== SHARE_SALT_BYTES) {
    throw new ConsortError("BAD_REQUEST", `salt: expected ${SHARE_SALT_BYTES} bytes`, { details: { field: "salt" } });
  }
  if (!(encodedValues instanceof Uint8Array) || encodedValues.length % FR_BYTES !== 0) {
    throw new ConsortError("BAD_REQUEST", "shares: expected whole 32-byte field elements", { details: { field: "shares" } });
  }
  const plaintext = new Uint8Array(SHARE_SALT_BYTES + encodedValues.length);
  plaintext.set(salt, 0);
  plaintext.set(encodedValues, SHARE_SALT_BYTES);
  const sealed = sealTo(recipientPublicKey, plaintext, sharePayloadAad(aadContext));
  plaintext.fill(0);
  return sealed;
}

/** A party's opened share: its salt, the values as the owner encoded them, and the same values packed for the engine. */
export interface OpenedSharePayload {
  readonly salt: Uint8Array;
  /** encodeFieldVector's bytes (32-byte big-endian elements, canonical): what shareDigestOfEncoded hashes. */
  readonly encoded: Uint8Array;
  /** The values as a packed vector (../math/fr-vec.ts). */
  readonly vector: Uint8Array;
}

/**
 * Opens a sealed share payload with the party's encryption private key. DECRYPTION_FAILED
 * if it was sealed to another key or context or tampered with; BAD_REQUEST (field "sealed")
 * if it decrypts but does not hold a salt and a canonical field vector (of `expectedCount`
 * values, when given).
 */
export function openSharePayload(
  privateKey: Uint8Array,
  sealed: Uint8Array | string,
  aadContext: ShareAadContext,
  expectedCount?: number,
): OpenedSharePayload {
  let bytes: Uint8Array;
  try {
    const decoded = typeof sealed === "string" ? hexBytes(sealed) : sealed;
    if (decoded === undefined) throw new Error("not hex");
    bytes = decoded;
  } catch {
    throw new ConsortError("DECRYPTION_FAILED", "envelope could not be decrypted");
  }
  const plaintext = openSealed(privateKey, bytes, sharePayloadAad(aadContext));
  if (plaintext.length < SHARE_SALT_BYTES) {
    throw new ConsortError("BAD_REQUEST", "sealed: share payload is shorter than its salt", { details: { field: "sealed" } });
  }
  const salt = plaintext.slice(0, SHARE_SALT_BYTES);
  try {
    const encoded = plaintext.subarray(SHARE_SALT_BYTES);
    // Checked and converted without bigints (a 100,000-value share is 3.2 MB).
    const vector = frVecFromBigEndian(encoded, "share values", expectedCount);
    return { salt, encoded: encoded.slice(), vector };
  } catch (cause) {
    const reason = cause instanceof ConsortError ? cause.message : "not a field vector";
    throw new ConsortError("BAD_REQUEST", `sealed: share payload is malformed: ${reason}`, {
      details: { field: "sealed" },
      cause,
    });
  } finally {
    plaintext.fill(0);
  }
}
