/**
 * Randomness as an explicit argument.
 *
 * node/math never reaches for global randomness: every function that needs
 * random bytes takes an `Rng`, which has the shape of noble's `randomBytes`
 * (`@noble/hashes/utils.js`). Production callers pass that CSPRNG; tests and
 * reproducible benchmarks pass `deterministicRng(seed)`.
 */
import { chacha20 } from "@noble/ciphers/chacha.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { ConsortError } from "../errors.ts";

/** Returns `byteLength` fresh random bytes (same shape as noble's `randomBytes`). */
export type Rng = (byteLength: number) => Uint8Array;

const CHACHA_BLOCK_BYTES = 64;
/** Keystream is produced 64 blocks (4 KiB) at a time so that many small requests stay cheap. */
const BUFFER_BLOCKS = 64;
/**
 * RFC 8439 §2.3 has a 32-bit block counter; noble refuses to start a call at
 * counter 2^32 - 1, so 2^32 - 1 blocks (just under 256 GiB) is the most one
 * key can give.
 */
const MAX_BLOCKS = 2 ** 32 - 1;
const DETERMINISTIC_RNG_INFO = new TextEncoder().encode("consort/deterministic-rng/v1");

/**
 * The raw ChaCha20 keystream (RFC 8439 §2.4, 96-bit nonce, block counter
 * starting at 0) for `key` and `nonce` as an `Rng`. Consecutive calls return
 * consecutive keystream bytes, so the output does not depend on how requests
 * are chunked: rng(10) then rng(22) gives the same 32 bytes as rng(32).
 *
 * Exported so the RFC 8439 test vectors can pin the construction; most code
 * wants `deterministicRng`.
 */
export function chacha20KeystreamRng(key: Uint8Array, nonce: Uint8Array = new Uint8Array(12)): Rng {
  if (!(key instanceof Uint8Array) || key.length !== 32) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "ChaCha20 key must be 32 bytes", {
      details: { length: key instanceof Uint8Array ? key.length : typeof key },
    });
  }
  if (!(nonce instanceof Uint8Array) || nonce.length !== 12) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "ChaCha20 nonce must be 12 bytes", {
      details: { length: nonce instanceof Uint8Array ? nonce.length : typeof nonce },
    });
  }
  const ownKey = key.slice();
  const ownNonce = nonce.slice();
  const buffer = new Uint8Array(BUFFER_BLOCKS * CHACHA_BLOCK_BYTES);
  let bufferPos = buffer.length; // empty
  let nextBlock = 0;

  // Writes whole keystream blocks into `out` (zeroed first: ChaCha20 XORs the keystream in).
  const fill = (out: Uint8Array): void => {
    const blocks = out.length / CHACHA_BLOCK_BYTES;
    if (nextBlock + blocks > MAX_BLOCKS) {
      throw new ConsortError("INTERNAL", "ChaCha20 keystream exhausted (2^32 blocks per key)", {
        details: { requestedBlocks: blocks, usedBlocks: nextBlock },
      });
    }
    out.fill(0);
    chacha20(ownKey, ownNonce, out, out, nextBlock);
    nextBlock += blocks;
  };

  return (byteLength: number): Uint8Array => {
    if (!Number.isSafeInteger(byteLength) || byteLength < 0) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `rng byte length must be a non-negative integer, got ${String(byteLength)}`, {
        details: { byteLength: String(byteLength) },
      });
    }
    const out = new Uint8Array(byteLength);
    let written = Math.min(byteLength, buffer.length - bufferPos);
    out.set(buffer.subarray(bufferPos, bufferPos + written));
    bufferPos += written;
    // Large requests: whole blocks straight into the output, no copy.
    const direct = Math.floor((byteLength - written) / CHACHA_BLOCK_BYTES) * CHACHA_BLOCK_BYTES;
    if (direct > 0) {
      fill(out.subarray(written, written + direct));
      written += direct;
    }
    if (written < byteLength) {
      fill(buffer);
      const rest = byteLength - written;
      out.set(buffer.subarray(0, rest), written);
      bufferPos = rest;
    }
    return out;
  };
}

/**
 * A reproducible `Rng` for tests and benchmarks: the ChaCha20 keystream
 * (RFC 8439) under the key HKDF-SHA256(ikm = seed, salt = none,
 * info = "consort/deterministic-rng/v1", L = 32) (RFC 5869) with an all-zero
 * nonce. String seeds are UTF-8 encoded.
 *
 * NEVER use this for production secrets: anyone who knows or guesses the
 * seed can recompute every "random" share, polynomial and salt. Production
 * code passes a CSPRNG such as `randomBytes` from `@noble/hashes/utils.js`.
 */
export function deterministicRng(seed: Uint8Array | string): Rng {
  let seedBytes: Uint8Array;
  if (typeof seed === "string") seedBytes = new TextEncoder().encode(seed);
  else if (seed instanceof Uint8Array) seedBytes = seed;
  else {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "deterministicRng seed must be a string or Uint8Array", {
      details: { type: typeof seed },
    });
  }
  if (seedBytes.length === 0) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "deterministicRng seed must not be empty");
  }
  const key = hkdf(sha256, seedBytes, undefined, DETERMINISTIC_RNG_INFO, 32);
  return chacha20KeystreamRng(key);
}
