/**
 * The prime field every Consort computation runs in: the scalar field of
 * BN254 (alt_bn128, EIP-196/197), r = 21888242871839275222246405745257275088548364400416034343698204186575808495617.
 * It is the field the EVM's bn128 precompiles use, so values can later be
 * checked on chain, and it is large enough (254 bits) that signed 64-bit
 * inputs and their sums/products fit without wrap-around.
 *
 * Arithmetic is noble's audited field (`bn254_Fr`); this module adds only
 * sampling, canonical byte encodings and the signed embedding. Elements are
 * plain bigints in [0, r); bytes appear only at boundaries.
 */
import { bn254_Fr } from "@noble/curves/bn254.js";
import { ConsortError } from "../errors.ts";
import type { Rng } from "./rng.ts";

/** noble's field object for r (add, sub, mul, inv, pow, create = reduce mod r, mulN/addN = unreduced). */
export const Fr = bn254_Fr;
/** r, the order of BN254's scalar field. */
export const FR_MODULUS: bigint = Fr.ORDER;
/** Canonical encoding width: 32 bytes, big-endian (as uint256 in the EVM). */
export const FR_BYTES = 32;
/**
 * Random elements are drawn by rejection sampling (the technique of FIPS
 * 186-5 A.2.2): take 32 rng bytes, clear the top two bits (r < 2^254)
 * and accept the 254-bit value if it is < r, else draw 32 more. The result is
 * exactly uniform, and with acceptance probability r / 2^254 ≈ 0.756 it costs
 * about 42 bytes and no big-integer division per element. The alternative,
 * reducing 48 bytes mod r (bias < 2^-130), measured 1.5-2x slower here: the
 * 384-by-254-bit remainder dominates. Rejections reveal nothing
 * about accepted values, so the variable loop count leaks nothing.
 */
export const RANDOM_DRAW_BYTES = 32;
/** Keeps the low 62 bits of the first (most significant) 64-bit limb. */
const TOP_LIMB_MASK = (1n << 62n) - 1n;

/** Largest magnitude the signed embedding represents: (r - 1) / 2. */
export const SIGNED_MAX: bigint = (FR_MODULUS - 1n) / 2n;
/** Smallest value the signed embedding represents: -(r - 1) / 2. */
export const SIGNED_MIN: bigint = -SIGNED_MAX;

/** Whether `x` is a canonical field element: a bigint in [0, r). */
export function isFieldElement(x: unknown): x is bigint {
  return typeof x === "bigint" && x >= 0n && x < FR_MODULUS;
}

/**
 * Throws MATH_INVALID_ARGUMENT unless `x` is a bigint in [0, r). `what`
 * names the argument in the message; the value itself is never printed
 * because field elements are usually shares or inputs.
 */
export function assertFieldElement(x: unknown, what: string): asserts x is bigint {
  if (!isFieldElement(x)) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `${what} is not a field element (expected a bigint in [0, r))`, {
      details: { argument: what, type: typeof x },
    });
  }
}

function checkRngOutput(bytes: unknown, expected: number): Uint8Array {
  if (!(bytes instanceof Uint8Array) || bytes.length !== expected) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `rng returned ${bytes instanceof Uint8Array ? `${bytes.length} bytes` : typeof bytes}, expected ${expected} bytes`, {
      details: { expected, got: bytes instanceof Uint8Array ? bytes.length : typeof bytes },
    });
  }
  return bytes;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Fills out[offset .. offset + count) with uniform field elements. Draws
 * exactly the 32-byte blocks that sequential single draws would: each round
 * asks for one block per missing element, so the stream is never overshot
 * and batch and single sampling agree for the same rng stream.
 */
const MAX_DRAWS_PER_RNG_CALL = 2048;

export function fillRandomFieldElements(out: bigint[], offset: number, count: number, rng: Rng): void {
  if (!Number.isSafeInteger(count) || count < 0 || !Number.isSafeInteger(offset) || offset < 0) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `element count and offset must be non-negative integers, got ${String(count)} and ${String(offset)}`, {
      details: { count: String(count), offset: String(offset) },
    });
  }
  let filled = 0;
  while (filled < count) {
    // At most 2048 draws (64 KiB) per rng call: platform CSPRNGs such as
    // crypto.getRandomValues (behind noble's randomBytes) refuse more at once.
    const need = Math.min(count - filled, MAX_DRAWS_PER_RNG_CALL);
    const bytes = checkRngOutput(rng(need * RANDOM_DRAW_BYTES), need * RANDOM_DRAW_BYTES);
    const view = viewOf(bytes);
    for (let o = 0; o < bytes.length; o += RANDOM_DRAW_BYTES) {
      const x =
        ((view.getBigUint64(o) & TOP_LIMB_MASK) << 192n) |
        (view.getBigUint64(o + 8) << 128n) |
        (view.getBigUint64(o + 16) << 64n) |
        view.getBigUint64(o + 24);
      if (x < FR_MODULUS) out[offset + filled++] = x;
    }
  }
}

/** A uniformly random field element (rejection sampling, see RANDOM_DRAW_BYTES). */
export function randomFieldElement(rng: Rng): bigint {
  const out: bigint[] = [0n];
  fillRandomFieldElements(out, 0, 1, rng);
  return out[0]!;
}

/**
 * `count` uniformly random field elements, drawing from the rng in as few
 * calls as possible; consumes the rng stream exactly like `count` calls of
 * `randomFieldElement`.
 */
export function randomFieldElements(count: number, rng: Rng): bigint[] {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `element count must be a non-negative integer, got ${String(count)}`, {
      details: { count: String(count) },
    });
  }
  const out = new Array<bigint>(count);
  fillRandomFieldElements(out, 0, count, rng);
  return out;
}

/**
 * Writes `x` as 32 big-endian bytes at `offset` of `view` (no allocation;
 * the caller has validated `x`). Four 64-bit limbs are several times faster
 * than noble's hex round trip, which matters for large share vectors.
 */
function writeLimbs(view: DataView, offset: number, x: bigint): void {
  view.setBigUint64(offset, x >> 192n);
  view.setBigUint64(offset + 8, BigInt.asUintN(64, x >> 128n));
  view.setBigUint64(offset + 16, BigInt.asUintN(64, x >> 64n));
  view.setBigUint64(offset + 24, BigInt.asUintN(64, x));
}

function readLimbs(view: DataView, offset: number): bigint {
  return (
    (view.getBigUint64(offset) << 192n) |
    (view.getBigUint64(offset + 8) << 128n) |
    (view.getBigUint64(offset + 16) << 64n) |
    view.getBigUint64(offset + 24)
  );
}

/** 32-byte big-endian encoding of a field element. */
export function fieldToBytes(x: bigint): Uint8Array {
  assertFieldElement(x, "field element");
  const out = new Uint8Array(FR_BYTES);
  writeLimbs(viewOf(out), 0, x);
  return out;
}

function assertBytes(bytes: unknown, what: string): asserts bytes is Uint8Array {
  if (!(bytes instanceof Uint8Array)) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `${what} must be a Uint8Array, got ${typeof bytes}`, {
      details: { argument: what, type: typeof bytes },
    });
  }
}

/** Decodes 32 big-endian bytes; rejects other lengths and values >= r (non-canonical). */
export function fieldFromBytes(bytes: Uint8Array): bigint {
  assertBytes(bytes, "field element bytes");
  if (bytes.length !== FR_BYTES) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `field element must be ${FR_BYTES} bytes, got ${bytes.length}`, {
      details: { expected: FR_BYTES, got: bytes.length },
    });
  }
  const x = readLimbs(viewOf(bytes), 0);
  if (x >= FR_MODULUS) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "field element bytes encode a value >= r (not canonical)");
  }
  return x;
}

/** Concatenated 32-byte big-endian encodings; every entry must be a field element. */
export function encodeFieldVector(xs: readonly bigint[]): Uint8Array {
  if (!Array.isArray(xs)) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "field vector must be an array", { details: { type: typeof xs } });
  }
  const out = new Uint8Array(xs.length * FR_BYTES);
  const view = viewOf(out);
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    if (!isFieldElement(x)) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `field vector entry ${i} is not a field element (expected a bigint in [0, r))`, {
        details: { index: i, type: typeof x },
      });
    }
    writeLimbs(view, i * FR_BYTES, x);
  }
  return out;
}

/**
 * Inverse of encodeFieldVector. Rejects a byte length that is not a multiple
 * of 32, a count different from `expectedCount` (when given), and any entry
 * >= r.
 */
export function decodeFieldVector(bytes: Uint8Array, expectedCount?: number): bigint[] {
  assertBytes(bytes, "field vector bytes");
  if (bytes.length % FR_BYTES !== 0) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `field vector length ${bytes.length} is not a multiple of ${FR_BYTES}`, {
      details: { length: bytes.length },
    });
  }
  const count = bytes.length / FR_BYTES;
  if (expectedCount !== undefined && count !== expectedCount) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `field vector has ${count} entries, expected ${expectedCount}`, {
      details: { expected: expectedCount, got: count },
    });
  }
  const view = viewOf(bytes);
  const out = new Array<bigint>(count);
  for (let i = 0; i < count; i++) {
    const x = readLimbs(view, i * FR_BYTES);
    if (x >= FR_MODULUS) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `field vector entry ${i} encodes a value >= r (not canonical)`, {
        details: { index: i },
      });
    }
    out[i] = x;
  }
  return out;
}

/**
 * Embeds a signed integer v with |v| <= (r-1)/2 into the field: v >= 0 maps
 * to v, v < 0 to r + v (two's complement with modulus r). Field addition and
 * multiplication then agree with integer arithmetic as long as the true
 * result stays within the same range.
 */
export function encodeSigned(v: bigint): bigint {
  if (typeof v !== "bigint") {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `signed value must be a bigint, got ${typeof v}`, {
      details: { type: typeof v },
    });
  }
  // The value is usually a private input: the message says what is wrong, not what it was.
  if (v > SIGNED_MAX || v < SIGNED_MIN) {
    throw new ConsortError("MATH_INVALID_ARGUMENT", "signed value is outside [-(r-1)/2, (r-1)/2]");
  }
  return v < 0n ? FR_MODULUS + v : v;
}

/** Inverse of encodeSigned: x > (r-1)/2 maps to x - r. */
export function decodeSigned(x: bigint): bigint {
  assertFieldElement(x, "signed field element");
  return x > SIGNED_MAX ? x - FR_MODULUS : x;
}

/** Multiplicative inverse; zero has none (MATH_INVALID_ARGUMENT). */
export function fieldInverse(x: bigint): bigint {
  assertFieldElement(x, "value to invert");
  if (x === 0n) throw new ConsortError("MATH_INVALID_ARGUMENT", "zero has no multiplicative inverse");
  return Fr.inv(x);
}

/**
 * Inverts every element with one field inversion (Montgomery's trick, via
 * noble's invertBatch). Throws MATH_INVALID_ARGUMENT naming the index of a
 * zero instead of silently returning 0 for it.
 */
export function batchInvert(xs: readonly bigint[]): bigint[] {
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    if (!isFieldElement(x)) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `entry ${i} is not a field element (expected a bigint in [0, r))`, {
        details: { index: i, type: typeof x },
      });
    }
    if (x === 0n) {
      throw new ConsortError("MATH_INVALID_ARGUMENT", `entry ${i} is zero and has no multiplicative inverse`, {
        details: { index: i },
      });
    }
  }
  return Fr.invertBatch(xs.slice());
}

/** Reduces any bigint (also negative or >= 2^256) into [0, r). */
export function toField(x: bigint): bigint {
  if (typeof x !== "bigint") {
    throw new ConsortError("MATH_INVALID_ARGUMENT", `expected a bigint, got ${typeof x}`, { details: { type: typeof x } });
  }
  return Fr.create(x);
}
