/**
 * ECIES over secp256k1 (SEC 1 v2 §5.1, with a modern KDF and AEAD): the
 * envelope a data owner uses to send a party its Shamir share, and that
 * parties use for protocol payloads.
 *
 *   1. fresh ephemeral key e, E = e·G (compressed, 33 bytes)
 *   2. Z = x-coordinate of e·R, R the recipient's registered public key
 *   3. k = HKDF-SHA256(ikm = Z, salt = E || R, info = "consort/envelope/v1", 32)   (RFC 5869)
 *   4. XChaCha20-Poly1305(k, random 24-byte nonce, aad = caller's aad)            (draft-irtf-cfrg-xchacha)
 *
 * Layout: 0x01 || E (33) || nonce (24) || ciphertext || tag (16).
 *
 * Salting with both public keys binds the key to this sender/recipient pair
 * (no key-substitution), and the random 192-bit nonce makes nonce reuse
 * negligible even if a key were ever reused. The caller's aad binds the
 * ciphertext to its context (label, task, parties) so it cannot be replayed
 * elsewhere.
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { concatBytes, randomBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { ConsortError } from "../errors.ts";
import { xchachaOpen, xchachaSeal } from "./xchacha20-poly1305.ts";

export const ENVELOPE_VERSION = 0x01;
const PUBLIC_KEY_BYTES = 33;
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + PUBLIC_KEY_BYTES + NONCE_BYTES;
/** Bytes an envelope adds to its plaintext. */
export const ENVELOPE_OVERHEAD = HEADER_BYTES + TAG_BYTES;
const KDF_INFO = utf8ToBytes("consort/envelope/v1");

export interface EncryptionKeyPair {
  privateKey: Uint8Array;
  /** 33-byte SEC1 compressed point, as registered on-chain. */
  publicKey: Uint8Array;
}

/** A fresh encryption key pair from the platform CSPRNG. */
export function generateEncryptionKey(): EncryptionKeyPair {
  const privateKey = secp256k1.utils.randomSecretKey();
  return { privateKey, publicKey: secp256k1.getPublicKey(privateKey, true) };
}

/** The 33-byte compressed public key of `privateKey`; KEY_INVALID if it is not a valid secp256k1 scalar. */
export function encryptionPublicKey(privateKey: Uint8Array): Uint8Array {
  assertPrivateKey(privateKey);
  return secp256k1.getPublicKey(privateKey, true);
}

/** Whether `publicKey` is a 33-byte compressed point on secp256k1. */
export function isValidEncryptionPublicKey(publicKey: unknown): publicKey is Uint8Array {
  return (
    publicKey instanceof Uint8Array &&
    publicKey.length === PUBLIC_KEY_BYTES &&
    secp256k1.utils.isValidPublicKey(publicKey, true)
  );
}

function assertPrivateKey(privateKey: unknown): asserts privateKey is Uint8Array {
  // Never echo the key itself: only its shape.
  if (!(privateKey instanceof Uint8Array) || privateKey.length !== 32 || !secp256k1.utils.isValidSecretKey(privateKey)) {
    const shape = privateKey instanceof Uint8Array ? `${privateKey.length} bytes` : typeof privateKey;
    throw new ConsortError("KEY_INVALID", `encryption private key is not a valid secp256k1 secret key (${shape})`);
  }
}

function assertPublicKey(publicKey: unknown): asserts publicKey is Uint8Array {
  if (!isValidEncryptionPublicKey(publicKey)) {
    const shape =
      publicKey instanceof Uint8Array
        ? publicKey.length === PUBLIC_KEY_BYTES
          ? `0x${Buffer.from(publicKey).toString("hex")} is not on secp256k1`
          : `${publicKey.length} bytes, expected ${PUBLIC_KEY_BYTES}`
        : typeof publicKey;
    throw new ConsortError("KEY_INVALID", `encryption public key must be a 33-byte compressed secp256k1 point (${shape})`);
  }
}

function deriveKey(privateKey: Uint8Array, publicKey: Uint8Array, ephemeralPub: Uint8Array, recipientPub: Uint8Array) {
  // getSharedSecret returns the compressed shared point; drop the parity byte to keep Z = x only (SEC 1 §3.3.1).
  const shared = secp256k1.getSharedSecret(privateKey, publicKey, true);
  const z = shared.subarray(1);
  const key = hkdf(sha256, z, concatBytes(ephemeralPub, recipientPub), KDF_INFO, 32);
  shared.fill(0);
  return key;
}

/** Encrypts `plaintext` to `recipientPublicKey`, authenticating `aad`. KEY_INVALID if the key is not a valid point. */
export function sealTo(recipientPublicKey: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  assertPublicKey(recipientPublicKey);
  if (!(plaintext instanceof Uint8Array) || !(aad instanceof Uint8Array)) {
    throw new ConsortError("BAD_REQUEST", "sealTo: plaintext and aad must be Uint8Arrays");
  }
  const ephemeral = secp256k1.utils.randomSecretKey();
  const ephemeralPub = secp256k1.getPublicKey(ephemeral, true);
  const key = deriveKey(ephemeral, recipientPublicKey, ephemeralPub, recipientPublicKey);
  ephemeral.fill(0);
  const nonce = randomBytes(NONCE_BYTES);
  const out = new Uint8Array(HEADER_BYTES + plaintext.length + TAG_BYTES);
  out[0] = ENVELOPE_VERSION;
  out.set(ephemeralPub, 1);
  out.set(nonce, 1 + PUBLIC_KEY_BYTES);
  // Into the output buffer: batches can be megabytes (the AEAD is node:crypto's, ./xchacha20-poly1305.ts).
  xchachaSeal(key, nonce, plaintext, aad, out.subarray(HEADER_BYTES));
  key.fill(0);
  return out;
}

/**
 * Decrypts an envelope sealed to the public key of `privateKey` with the same `aad`.
 * KEY_INVALID if `privateKey` itself is invalid; DECRYPTION_FAILED, with no further
 * detail, for anything wrong with the envelope (tampered, truncated, wrong key, wrong aad):
 * telling them apart would help an attacker probing the key.
 */
export function openSealed(privateKey: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
  assertPrivateKey(privateKey);
  const fail = () => new ConsortError("DECRYPTION_FAILED", "envelope could not be decrypted");
  if (!(sealed instanceof Uint8Array) || !(aad instanceof Uint8Array)) throw fail();
  if (sealed.length < ENVELOPE_OVERHEAD || sealed[0] !== ENVELOPE_VERSION) throw fail();
  const ephemeralPub = sealed.subarray(1, 1 + PUBLIC_KEY_BYTES);
  const nonce = sealed.subarray(1 + PUBLIC_KEY_BYTES, HEADER_BYTES);
  let key: Uint8Array;
  try {
    // An ephemeral key not on the curve throws here.
    key = deriveKey(privateKey, ephemeralPub, ephemeralPub, secp256k1.getPublicKey(privateKey, true));
  } catch {
    throw fail();
  }
  try {
    return xchachaOpen(key, nonce, sealed.subarray(HEADER_BYTES), aad);
  } catch {
    throw fail();
  } finally {
    key.fill(0);
  }
}
