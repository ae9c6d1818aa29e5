/**
 * Poly1305 (RFC 8439 §2.5), one shot, on byte ranges, with no allocation:
 * the one-time authenticator of stream-sealed frames (./frame-keystream.ts).
 *
 * Why not @noble/ciphers' poly1305, which the tests use as the reference:
 * its one-shot form builds an instance per call (four typed arrays, a copy
 * of the key and of the message, zeroing on destroy), ~2-4 µs before the
 * first block on these machines, which is more than the whole MAC of a
 * one-element frame. This is the same arithmetic (poly1305-donna's 16-bit
 * variant, as noble writes it: ten 13-bit limbs, every product and partial
 * sum exact in a double and below 2^32 where it is shifted) with the
 * accumulator in local variables, run over the message where it lies.
 *
 * Not constant time with respect to the message length only (public);
 * no branch or index depends on the key or the accumulator.
 */

/** Bytes of a Poly1305 key (r || s) and of its tag. */
export const POLY1305_KEY_BYTES = 32;
export const POLY1305_TAG_BYTES = 16;

/** The final partial block, padded (RFC 8439 §2.5.1: a 0x01 byte, then zeros). */
const last = new Uint8Array(16);
/** The accumulator's limbs and h + 5 - 2^130's, for the final reduction. */
const limbs = new Uint32Array(10);
const reduced = new Uint32Array(10);
/** The reduced accumulator as eight 16-bit words, before s is added. */
const words = new Uint32Array(8);

const u16 = (b: Uint8Array, i: number): number => (b[i]! | (b[i + 1]! << 8)) & 0xffff;

/**
 * Writes Poly1305(key, msg[start, end)) to out[outOffset, outOffset + 16),
 * key = key[keyOffset, keyOffset + 32) (r, clamped here, then s). A key
 * must authenticate one message only.
 */
export function poly1305Into(
  key: Uint8Array,
  keyOffset: number,
  msg: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  outOffset: number,
): void {
  if (!(keyOffset >= 0 && keyOffset + POLY1305_KEY_BYTES <= key.length && start >= 0 && start <= end && end <= msg.length && outOffset >= 0 && outOffset + POLY1305_TAG_BYTES <= out.length)) {
    throw new RangeError("poly1305Into: key, message or output range out of bounds");
  }
  const k0 = u16(key, keyOffset);
  const k1 = u16(key, keyOffset + 2);
  const k2 = u16(key, keyOffset + 4);
  const k3 = u16(key, keyOffset + 6);
  const k4 = u16(key, keyOffset + 8);
  const k5 = u16(key, keyOffset + 10);
  const k6 = u16(key, keyOffset + 12);
  const k7 = u16(key, keyOffset + 14);
  // r, clamped (RFC 8439 §2.5.1), as ten 13-bit limbs; the masks apply the clamp.
  const r0 = k0 & 0x1fff;
  const r1 = ((k0 >>> 13) | (k1 << 3)) & 0x1fff;
  const r2 = ((k1 >>> 10) | (k2 << 6)) & 0x1f03;
  const r3 = ((k2 >>> 7) | (k3 << 9)) & 0x1fff;
  const r4 = ((k3 >>> 4) | (k4 << 12)) & 0x00ff;
  const r5 = (k4 >>> 1) & 0x1ffe;
  const r6 = ((k4 >>> 14) | (k5 << 2)) & 0x1fff;
  const r7 = ((k5 >>> 11) | (k6 << 5)) & 0x1f81;
  const r8 = ((k6 >>> 8) | (k7 << 8)) & 0x1fff;
  const r9 = (k7 >>> 5) & 0x007f;
  // 2^130 = 5 mod p: a limb product that overflows limb 9 comes back times 5.
  const s1 = 5 * r1;
  const s2 = 5 * r2;
  const s3 = 5 * r3;
  const s4 = 5 * r4;
  const s5 = 5 * r5;
  const s6 = 5 * r6;
  const s7 = 5 * r7;
  const s8 = 5 * r8;
  const s9 = 5 * r9;

  let h0 = 0;
  let h1 = 0;
  let h2 = 0;
  let h3 = 0;
  let h4 = 0;
  let h5 = 0;
  let h6 = 0;
  let h7 = 0;
  let h8 = 0;
  let h9 = 0;

  let at = start;
  while (at < end) {
    let m: Uint8Array = msg;
    let i = at;
    // Full blocks get 2^128 added (the 1 bit above their 16 bytes); the last partial block had its 0x01 appended instead.
    let hibit = 1 << 11;
    if (end - at < 16) {
      last.fill(0);
      for (let k = 0; k < end - at; k++) last[k] = msg[at + k]!;
      last[end - at] = 1;
      m = last;
      i = 0;
      hibit = 0;
    }
    at += 16;
    const t0 = u16(m, i);
    const t1 = u16(m, i + 2);
    const t2 = u16(m, i + 4);
    const t3 = u16(m, i + 6);
    const t4 = u16(m, i + 8);
    const t5 = u16(m, i + 10);
    const t6 = u16(m, i + 12);
    const t7 = u16(m, i + 14);
    h0 += t0 & 0x1fff;
    h1 += ((t0 >>> 13) | (t1 << 3)) & 0x1fff;
    h2 += ((t1 >>> 10) | (t2 << 6)) & 0x1fff;
    h3 += ((t2 >>> 7) | (t3 << 9)) & 0x1fff;
    h4 += ((t3 >>> 4) | (t4 << 12)) & 0x1fff;
    h5 += (t4 >>> 1) & 0x1fff;
    h6 += ((t4 >>> 14) | (t5 << 2)) & 0x1fff;
    h7 += ((t5 >>> 11) | (t6 << 5)) & 0x1fff;
    h8 += ((t6 >>> 8) | (t7 << 8)) & 0x1fff;
    h9 += (t7 >>> 5) | hibit;

    // h *= r mod 2^130 - 5, each limb in two halves of five products so that a sum stays below 2^32.
    let c = 0;
    let d0 = c + h0 * r0 + h1 * s9 + h2 * s8 + h3 * s7 + h4 * s6;
    c = d0 >>> 13;
    d0 &= 0x1fff;
    d0 += h5 * s5 + h6 * s4 + h7 * s3 + h8 * s2 + h9 * s1;
    c += d0 >>> 13;
    d0 &= 0x1fff;
    let d1 = c + h0 * r1 + h1 * r0 + h2 * s9 + h3 * s8 + h4 * s7;
    c = d1 >>> 13;
    d1 &= 0x1fff;
    d1 += h5 * s6 + h6 * s5 + h7 * s4 + h8 * s3 + h9 * s2;
    c += d1 >>> 13;
    d1 &= 0x1fff;
    let d2 = c + h0 * r2 + h1 * r1 + h2 * r0 + h3 * s9 + h4 * s8;
    c = d2 >>> 13;
    d2 &= 0x1fff;
    d2 += h5 * s7 + h6 * s6 + h7 * s5 + h8 * s4 + h9 * s3;
    c += d2 >>> 13;
    d2 &= 0x1fff;
    let d3 = c + h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s9;
    c = d3 >>> 13;
    d3 &= 0x1fff;
    d3 += h5 * s8 + h6 * s7 + h7 * s6 + h8 * s5 + h9 * s4;
    c += d3 >>> 13;
    d3 &= 0x1fff;
    let d4 = c + h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0;
    c = d4 >>> 13;
    d4 &= 0x1fff;
    d4 += h5 * s9 + h6 * s8 + h7 * s7 + h8 * s6 + h9 * s5;
    c += d4 >>> 13;
    d4 &= 0x1fff;
    let d5 = c + h0 * r5 + h1 * r4 + h2 * r3 + h3 * r2 + h4 * r1;
    c = d5 >>> 13;
    d5 &= 0x1fff;
    d5 += h5 * r0 + h6 * s9 + h7 * s8 + h8 * s7 + h9 * s6;
    c += d5 >>> 13;
    d5 &= 0x1fff;
    let d6 = c + h0 * r6 + h1 * r5 + h2 * r4 + h3 * r3 + h4 * r2;
    c = d6 >>> 13;
    d6 &= 0x1fff;
    d6 += h5 * r1 + h6 * r0 + h7 * s9 + h8 * s8 + h9 * s7;
    c += d6 >>> 13;
    d6 &= 0x1fff;
    let d7 = c + h0 * r7 + h1 * r6 + h2 * r5 + h3 * r4 + h4 * r3;
    c = d7 >>> 13;
    d7 &= 0x1fff;
    d7 += h5 * r2 + h6 * r1 + h7 * r0 + h8 * s9 + h9 * s8;
    c += d7 >>> 13;
    d7 &= 0x1fff;
    let d8 = c + h0 * r8 + h1 * r7 + h2 * r6 + h3 * r5 + h4 * r4;
    c = d8 >>> 13;
    d8 &= 0x1fff;
    d8 += h5 * r3 + h6 * r2 + h7 * r1 + h8 * r0 + h9 * s9;
    c += d8 >>> 13;
    d8 &= 0x1fff;
    let d9 = c + h0 * r9 + h1 * r8 + h2 * r7 + h3 * r6 + h4 * r5;
    c = d9 >>> 13;
    d9 &= 0x1fff;
    d9 += h5 * r4 + h6 * r3 + h7 * r2 + h8 * r1 + h9 * r0;
    c += d9 >>> 13;
    d9 &= 0x1fff;
    c = ((c << 2) + c) | 0;
    c = (c + d0) | 0;
    d0 = c & 0x1fff;
    c = c >>> 13;
    d1 += c;
    h0 = d0;
    h1 = d1;
    h2 = d2;
    h3 = d3;
    h4 = d4;
    h5 = d5;
    h6 = d6;
    h7 = d7;
    h8 = d8;
    h9 = d9;
  }

  // Full carry, then h mod p: g = h + 5 - 2^130 is taken if it does not borrow (h >= p).
  // Once per tag, so on arrays (the block loop above keeps its limbs in locals).
  const h = limbs;
  h[0] = h0;
  h[1] = h1;
  h[2] = h2;
  h[3] = h3;
  h[4] = h4;
  h[5] = h5;
  h[6] = h6;
  h[7] = h7;
  h[8] = h8;
  h[9] = h9;
  let c = h[1]! >>> 13;
  h[1]! &= 0x1fff;
  for (let i = 2; i < 10; i++) {
    h[i]! += c;
    c = h[i]! >>> 13;
    h[i]! &= 0x1fff;
  }
  h[0]! += c * 5;
  c = h[0]! >>> 13;
  h[0]! &= 0x1fff;
  h[1]! += c;
  c = h[1]! >>> 13;
  h[1]! &= 0x1fff;
  h[2]! += c;
  const g = reduced;
  c = 5;
  for (let i = 0; i < 10; i++) {
    g[i] = h[i]! + c;
    c = g[i]! >>> 13;
    g[i]! &= 0x1fff;
  }
  // c = 1 iff h + 5 >= 2^130, i.e. h >= p: then h - p = g (its bit 130 dropped above), else h.
  const useG = -c & 0x1fff;
  const useH = ~useG & 0x1fff;
  for (let i = 0; i < 10; i++) h[i] = (h[i]! & useH) | (g[i]! & useG);

  // Repack into eight 16-bit words and add s mod 2^128.
  words[0] = (h[0]! | (h[1]! << 13)) & 0xffff;
  words[1] = ((h[1]! >>> 3) | (h[2]! << 10)) & 0xffff;
  words[2] = ((h[2]! >>> 6) | (h[3]! << 7)) & 0xffff;
  words[3] = ((h[3]! >>> 9) | (h[4]! << 4)) & 0xffff;
  words[4] = ((h[4]! >>> 12) | (h[5]! << 1) | (h[6]! << 14)) & 0xffff;
  words[5] = ((h[6]! >>> 2) | (h[7]! << 11)) & 0xffff;
  words[6] = ((h[7]! >>> 5) | (h[8]! << 8)) & 0xffff;
  words[7] = ((h[8]! >>> 8) | (h[9]! << 5)) & 0xffff;
  let f = 0;
  for (let j = 0; j < 8; j++) {
    f = words[j]! + u16(key, keyOffset + 16 + 2 * j) + (f >>> 16);
    out[outOffset + 2 * j] = f & 0xff;
    out[outOffset + 2 * j + 1] = (f >>> 8) & 0xff;
  }
}
