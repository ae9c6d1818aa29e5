/**
 * The keys and keystream of "stream-sealed" frames (./peer-frame.ts): small
 * frames encrypted with a session's running ChaCha20 keystream and
 * authenticated with Poly1305 under a one-time key taken from the same
 * keystream, instead of one ChaCha20-Poly1305 context per frame.
 *
 * Why: node:crypto cannot re-key or re-nonce an AEAD context, so every
 * frame paid for a fresh one (createCipheriv / createDecipheriv: OpenSSL
 * context set-up, a JS stream object, five native calls): inside a loaded
 * node's round that was most of a small frame's crypto. A running ChaCha20 context serves the
 * keystream of ~100 one-element frames per native call. The tag was first
 * HMAC-SHA256 (two native hash calls per frame at each end); Poly1305 in JS
 * (./poly1305.ts) costs ~1.5 µs for a one-element frame and no native call.
 *
 * Construction (the ChaCha20-Poly1305 AEAD of RFC 8439 §2.8, with the
 * keystream addressed by offset instead of by nonce):
 * - key: k_enc = SHA-256("consort/frame-stream-cipher/v2" || k) from the
 *   session's direction key k (./session-keys.ts), so it is never used with
 *   another algorithm or by the per-frame AEAD;
 * - keystream: ChaCha20 (RFC 8439 §2.4) under k_enc, all-zero nonce, block
 *   counter from 0. The sender hands out disjoint ranges [offset, offset +
 *   32 + length) in sealing order and writes the offset into the frame, so
 *   no keystream byte serves two frames; the 32-bit block counter ends the
 *   stream after 2^38 bytes;
 * - a frame at `offset` takes keystream bytes [offset, offset + 32) as its
 *   Poly1305 one-time key (r || s), as RFC 8439 §2.6 takes block 0, and
 *   encrypts its payload with the bytes after them: ciphertext = payload
 *   XOR keystream[offset + 32, offset + 32 + length);
 * - tag = Poly1305(one-time key, every byte of the frame before the tag:
 *   header, offset and ciphertext) (RFC 8439 §2.5; encrypt-then-MAC, M.
 *   Bellare, C. Namprempre, ASIACRYPT 2000). A forgery succeeds with
 *   probability at most 8·⌈L/16⌉/2^106 per attempt for an L-byte frame
 *   (RFC 8439 §4, D. J. Bernstein's bound).
 *
 * The recipient checks the tag with bytes it PEEKS at (peek: the running
 * context is not moved, so a forged frame with a far offset costs the
 * reader nothing later), then reads them: a frame at the running position
 * (the usual case on one ordered connection) or a little ahead of it
 * continues the running context; one further ahead (frames lost on a dead
 * connection) restarts it there; one behind still in the buffer is served
 * from it, and one behind that (a retransmission, or a frame overtaken
 * after a reconnect) gets a one-off context at its offset. All give the
 * same bytes.
 */
import { createCipheriv, createSecretKey, hash } from "node:crypto";
import type { Cipheriv, KeyObject } from "node:crypto";
import { POLY1305_KEY_BYTES, POLY1305_TAG_BYTES, poly1305Into } from "./poly1305.ts";

/** Payload bytes one stream-sealed frame may carry at most: larger payloads are sealed with the per-frame AEAD. */
export const STREAM_MAX_PAYLOAD = 4096;
/** ChaCha20's 32-bit block counter ends a keystream after 2^32 blocks of 64 bytes. */
export const KEYSTREAM_BYTES = 2 ** 38;
/** Keystream bytes a frame takes before its payload's: its Poly1305 one-time key. */
export const STREAM_KEY_BYTES = POLY1305_KEY_BYTES;
/** Poly1305's tag, the AEAD's size. */
export const STREAM_TAG_BYTES = POLY1305_TAG_BYTES;

const CIPHER_DOMAIN = Buffer.from("consort/frame-stream-cipher/v2", "latin1");
/** Keystream computed per native call (and the granularity of computing ahead). */
const AHEAD = 4096;
/** A reader skips at most this far ahead within its running context before it restarts it at the offset. */
const SKIP_LIMIT = 64 * 1024;
const ZEROS = Buffer.alloc(SKIP_LIMIT + 2 * AHEAD + STREAM_MAX_PAYLOAD + STREAM_KEY_BYTES);
const EMPTY = Buffer.alloc(0);

/** The cipher key of one direction of one session. */
export interface FrameStreamKeys {
  readonly cipherKey: KeyObject;
}

/** The stream keys of a session's direction key (see the top of this file). */
export function frameStreamKeys(directionKey: KeyObject): FrameStreamKeys {
  return { cipherKey: createSecretKey(hash("sha256", Buffer.concat([CIPHER_DOMAIN, directionKey.export()]), "buffer")) };
}

/**
 * Writes the tag of data[start, end) under the one-time key at
 * keystream[0, 32) to out[outOffset, outOffset + 16).
 */
export function streamTagInto(keystream: Uint8Array, data: Uint8Array, start: number, end: number, out: Uint8Array, outOffset: number): void {
  poly1305Into(keystream, 0, data, start, end, out, outOffset);
}

const expected = new Uint8Array(STREAM_TAG_BYTES);

/** Whether data[start, end) carries `tag` under the one-time key at keystream[0, 32); compared in constant time. */
export function streamTagMatches(keystream: Uint8Array, data: Uint8Array, start: number, end: number, tag: Uint8Array): boolean {
  if (tag.length !== STREAM_TAG_BYTES) return false;
  poly1305Into(keystream, 0, data, start, end, expected, 0);
  let diff = 0;
  for (let i = 0; i < STREAM_TAG_BYTES; i++) diff |= expected[i]! ^ tag[i]!;
  return diff === 0;
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
  /** The running context; its next byte is keystream byte #start + #buf.length. */
  #cipher: Cipheriv | undefined;
  /** Keystream bytes [#start, #start + #buf.length), computed. */
  #buf: Buffer = EMPTY;
  #start = 0;
  /** Past the furthest byte read: the offset a sender seals its next frame at. */
  #position = 0;

  constructor(cipherKey: KeyObject) {
    this.#key = cipherKey;
  }

  /** Past the furthest byte read: where a sender seals its next frame. */
  get position(): number {
    return this.#position;
  }

  /**
   * Keystream bytes [offset, offset + length) (length <= STREAM_KEY_BYTES +
   * STREAM_MAX_PAYLOAD); position moves to their end if that is further.
   * The result is a view that stays valid.
   */
  read(offset: number, length: number): Buffer {
    let bytes: Buffer;
    if (offset < this.#start) bytes = this.#oneOff(offset, length);
    else {
      if (offset - this.#position > SKIP_LIMIT) this.#restart(offset);
      bytes = this.#window(offset, length);
    }
    if (offset + length > this.#position) this.#position = offset + length;
    return bytes;
  }

  /** The bytes read(offset, length) would give, moving nothing (a tag is checked with these before the frame is trusted). */
  peek(offset: number, length: number): Buffer {
    if (offset < this.#start || offset - this.#position > SKIP_LIMIT) return this.#oneOff(offset, length);
    return this.#window(offset, length);
  }

  /** Bytes [offset, offset + length) from the buffer, computing ahead as needed (offset >= #start, at most SKIP_LIMIT past #position). */
  #window(offset: number, length: number): Buffer {
    const end = offset + length;
    const computed = this.#start + this.#buf.length;
    if (end > computed) {
      this.#cipher ??= createCipheriv("chacha20", this.#key, ivAt(0));
      // Keep what a read at or after the position (or at this offset) may still want; drop the rest.
      const keepFrom = Math.max(this.#start, Math.min(this.#position, offset));
      const fresh = this.#cipher.update(ZEROS.subarray(0, Math.ceil((end - computed) / AHEAD) * AHEAD));
      this.#buf = keepFrom === computed ? fresh : Buffer.concat([this.#buf.subarray(keepFrom - this.#start), fresh]);
      this.#start = keepFrom;
    }
    return this.#buf.subarray(offset - this.#start, end - this.#start);
  }

  /** Moves the running context to the block of `offset` (frames between were lost): earlier offsets go one-off. */
  #restart(offset: number): void {
    const block = Math.floor(offset / 64);
    this.#cipher = createCipheriv("chacha20", this.#key, ivAt(block));
    this.#buf = EMPTY;
    this.#start = block * 64;
    this.#position = this.#start;
  }

  /** Keystream at an offset the running context cannot serve, from a context of its own. */
  #oneOff(offset: number, length: number): Buffer {
    const block = Math.floor(offset / 64);
    const skip = offset - block * 64;
    return createCipheriv("chacha20", this.#key, ivAt(block))
      .update(ZEROS.subarray(0, skip + length))
      .subarray(skip);
  }
}
