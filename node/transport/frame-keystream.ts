/**
 * The keys and keystream of "stream-sealed" frames (./peer-frame.ts): small
 * frames encrypted with a session's running ChaCha20 keystream and
 * authenticated with HMAC-SHA256, instead of one ChaCha20-Poly1305 context
 * per frame.
 *
 * Why: node:crypto cannot re-key or re-nonce an AEAD context, so every
 * frame paid for a fresh one (createCipheriv / createDecipheriv: OpenSSL
 * context set-up, a JS stream object, five native calls). On the 2-core
 * machine of issue 3 that was ~15 µs per call inside a loaded node's round,
 * most of a small frame's crypto. A running ChaCha20 context serves the
 * keystream of ~128 one-element frames per native call, and HMAC-SHA256 is
 * two one-shot hashes. Transport-only ring rounds, 5 interleaved runs each:
 * 0.409 ms median with a context per frame, 0.333 ms with this.
 *
 * Construction (generic composition, encrypt-then-MAC: M. Bellare, C.
 * Namprempre, "Authenticated Encryption: Relations among Notions and
 * Analysis of the Generic Composition Paradigm", ASIACRYPT 2000):
 * - keys: from the session's direction key k (./session-keys.ts),
 *   k_enc = SHA-256("consort/frame-stream-cipher/v1" || k) and
 *   k_mac = SHA-256("consort/frame-stream-mac/v1" || k), so neither is
 *   ever used with another algorithm or by the per-frame AEAD;
 * - encryption: ciphertext = payload XOR the ChaCha20 (RFC 8439 §2.4)
 *   keystream of k_enc, all-zero nonce, from byte `offset` on. The sender
 *   hands out disjoint ranges [offset, offset + length) in sealing order
 *   and writes the offset into the frame, so no keystream byte encrypts two
 *   payloads; the 32-bit block counter ends the stream after 2^38 bytes;
 * - authentication: tag = HMAC-SHA256(k_mac, header || ciphertext) (RFC
 *   2104) truncated to 16 bytes, header = every byte before the ciphertext
 *   (flags and offset included); checked in constant time before anything
 *   is decrypted, so a forged frame moves no keystream.
 *
 * The recipient reads its copy of the keystream in the same order: a frame
 * at the running position (the usual case on one ordered connection), or a
 * little ahead of it, continues the running context; one further ahead
 * (frames lost on a dead connection) restarts it there; one behind (a
 * retransmission, or a frame overtaken after a reconnect) gets a one-off
 * context at its offset. All three give the same bytes.
 */
import { createCipheriv, createSecretKey, hash, timingSafeEqual } from "node:crypto";
import type { Cipheriv, KeyObject } from "node:crypto";

/** Keystream bytes one frame may take at most: larger payloads are sealed with the per-frame AEAD. */
export const STREAM_MAX_PAYLOAD = 4096;
/** ChaCha20's 32-bit block counter ends a keystream after 2^32 blocks of 64 bytes. */
export const KEYSTREAM_BYTES = 2 ** 38;
/** HMAC-SHA256 truncated to the AEAD's tag size. */
export const STREAM_TAG_BYTES = 16;

const CIPHER_DOMAIN = Buffer.from("consort/frame-stream-cipher/v1", "latin1");
const MAC_DOMAIN = Buffer.from("consort/frame-stream-mac/v1", "latin1");
/** SHA-256's block size: HMAC pads its key to it (RFC 2104 §2). */
const HASH_BLOCK = 64;
/** Keystream computed per native call. */
const AHEAD = 4096;
/** A reader skips at most this far ahead within its running context before it restarts it at the offset. */
const SKIP_LIMIT = 64 * 1024;
const ZEROS = Buffer.alloc(Math.max(AHEAD, SKIP_LIMIT));

/** k_enc and HMAC's padded keys of one direction of one session. */
export interface FrameStreamKeys {
  readonly cipherKey: KeyObject;
  /** k_mac XOR ipad, 64 bytes. */
  readonly inner: Buffer;
  /** k_mac XOR opad, 64 bytes. */
  readonly outer: Buffer;
}

/** The stream keys of a session's direction key (see the top of this file). */
export function frameStreamKeys(directionKey: KeyObject): FrameStreamKeys {
  const k = directionKey.export();
  const cipherKey = createSecretKey(hash("sha256", Buffer.concat([CIPHER_DOMAIN, k]), "buffer"));
  const mac = hash("sha256", Buffer.concat([MAC_DOMAIN, k]), "buffer");
  const inner = Buffer.alloc(HASH_BLOCK, 0x36);
  const outer = Buffer.alloc(HASH_BLOCK, 0x5c);
  for (let i = 0; i < mac.length; i++) {
    inner[i]! ^= mac[i]!;
    outer[i]! ^= mac[i]!;
  }
  return { cipherKey, inner, outer };
}

/** Scratch for HMAC's inner and outer hash inputs (hash() copies synchronously, so one each serves every call). */
let innerScratch = Buffer.alloc(HASH_BLOCK + 512);
const outerScratch = Buffer.alloc(HASH_BLOCK + 32);

/** HMAC-SHA256(k_mac, data), truncated to STREAM_TAG_BYTES (RFC 2104, two one-shot hashes). */
export function streamTag(keys: FrameStreamKeys, data: Uint8Array): Buffer {
  if (innerScratch.length < HASH_BLOCK + data.length) innerScratch = Buffer.alloc(HASH_BLOCK + data.length);
  keys.inner.copy(innerScratch, 0);
  innerScratch.set(data, HASH_BLOCK);
  const inner = hash("sha256", innerScratch.subarray(0, HASH_BLOCK + data.length), "buffer");
  keys.outer.copy(outerScratch, 0);
  inner.copy(outerScratch, HASH_BLOCK);
  return hash("sha256", outerScratch, "buffer").subarray(0, STREAM_TAG_BYTES);
}

/** Whether `tag` is streamTag(keys, data), compared in constant time. */
export function streamTagMatches(keys: FrameStreamKeys, data: Uint8Array, tag: Uint8Array): boolean {
  return tag.length === STREAM_TAG_BYTES && timingSafeEqual(streamTag(keys, data), tag);
}

/** The 16-byte OpenSSL chacha20 IV: 32-bit little-endian block counter, then the (all-zero) 96-bit nonce. */
function ivAt(block: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32LE(block, 0);
  return iv;
}

/** The ChaCha20 keystream of k_enc read by offset (see the top of this file). */
export class FrameKeystream {
  readonly #key: KeyObject;
  #cipher: Cipheriv | undefined;
  /** Keystream computed ahead; bytes before #at are used. */
  #ahead: Buffer = Buffer.alloc(0);
  #at = 0;
  /** Stream offset of the running context's next byte. */
  #position = 0;

  constructor(cipherKey: KeyObject) {
    this.#key = cipherKey;
  }

  /** Where the running context is: the offset a sender seals its next frame at. */
  get position(): number {
    return this.#position;
  }

  /** Keystream bytes [offset, offset + length) (length <= STREAM_MAX_PAYLOAD; a view, valid until the next call). */
  read(offset: number, length: number): Buffer {
    if (offset < this.#position) return this.#oneOff(offset, length);
    if (offset - this.#position > SKIP_LIMIT) this.#restart(offset);
    else if (offset > this.#position) this.#take(offset - this.#position);
    return this.#take(length);
  }

  #restart(offset: number): void {
    const block = Math.floor(offset / 64);
    this.#cipher = createCipheriv("chacha20", this.#key, ivAt(block));
    this.#ahead = Buffer.alloc(0);
    this.#at = 0;
    this.#position = block * 64;
    this.#take(offset - this.#position);
  }

  /** The running context's next `length` bytes. */
  #take(length: number): Buffer {
    this.#cipher ??= createCipheriv("chacha20", this.#key, ivAt(0));
    this.#position += length;
    if (this.#ahead.length - this.#at >= length) {
      this.#at += length;
      return this.#ahead.subarray(this.#at - length, this.#at);
    }
    const out = Buffer.allocUnsafe(length);
    let filled = this.#ahead.copy(out, 0, this.#at);
    while (filled < length) {
      this.#ahead = this.#cipher.update(ZEROS.subarray(0, AHEAD));
      this.#at = Math.min(AHEAD, length - filled);
      filled += this.#ahead.copy(out, filled, 0, this.#at);
    }
    return out;
  }

  /** Keystream at an offset behind the running context, from a context of its own. */
  #oneOff(offset: number, length: number): Buffer {
    const block = Math.floor(offset / 64);
    const skip = offset - block * 64;
    return createCipheriv("chacha20", this.#key, ivAt(block))
      .update(ZEROS.subarray(0, skip + length))
      .subarray(skip);
  }
}
