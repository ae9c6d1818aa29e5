/**
 * The value types of Consort programs and their ranges.
 *
 * Every secret wire carries one of four types:
 * - `int(bits)`: signed two's-complement integers in [-2^(bits-1), 2^(bits-1) - 1];
 * - `fixed(bits, frac)`: fixed-point numbers x stored as the integer x · 2^frac,
 *   which must lie in the int(bits) range;
 * - `bit()`: 0 or 1, what comparisons produce and what `select`, `not` and
 *   logical `mul` (AND) take; in arithmetic it behaves as an integer in
 *   [0, 1], so adding bits gives an int (a count);
 * - `field()`: raw elements of BN254's scalar field F_r, arithmetic mod r.
 *
 * int, fixed and bit values live in F_r through the signed embedding
 * (node/math/field.ts `encodeSigned`). Linear gates widen the type so that
 * the true integer result always fits (see `rangeOf`/`typeForRange`), which
 * is what makes field arithmetic agree with integer arithmetic and what later
 * comparison protocols rely on (they need a known bit width k).
 */
import { ConsortError } from "../errors.ts";

export interface IntType {
  readonly kind: "int";
  readonly bits: number;
}
export interface FixedType {
  readonly kind: "fixed";
  readonly bits: number;
  readonly frac: number;
}
export interface BitType {
  readonly kind: "bit";
}
export interface FieldType {
  readonly kind: "field";
}
export type SecretType = IntType | FixedType | BitType | FieldType;
/** The types with an integer range: int, fixed and bit. */
export type RangedType = IntType | FixedType | BitType;

/** Widest type a data owner may declare for an input. */
export const MAX_INPUT_BITS = 128;
/**
 * Widest type any wire may have. r > 2^253, so every value of a signed
 * 253-bit type has |v| <= 2^252 < (r - 1) / 2 and the signed embedding is
 * exact; a gate whose result could need more bits is rejected as an overflow.
 */
export const MAX_WIRE_BITS = 253;
/** Largest number of fractional bits of a fixed-point type. */
export const MAX_FRAC_BITS = 128;

function invalid(message: string, details: Record<string, unknown> = {}): ConsortError {
  return new ConsortError("PROGRAM_INVALID", message, { details });
}

/** int(bits): signed integers of `bits` bits (1 <= bits <= 128 for inputs). */
export function int(bits: number): IntType {
  if (!Number.isSafeInteger(bits) || bits < 1 || bits > MAX_WIRE_BITS) {
    throw invalid(`int bit width must be an integer in [1, ${MAX_WIRE_BITS}], got ${String(bits)}`, { bits: String(bits) });
  }
  return Object.freeze({ kind: "int", bits });
}

/** fixed(bits, frac): value · 2^frac is a signed `bits`-bit integer. */
export function fixed(bits: number, frac: number): FixedType {
  if (!Number.isSafeInteger(bits) || bits < 1 || bits > MAX_WIRE_BITS) {
    throw invalid(`fixed bit width must be an integer in [1, ${MAX_WIRE_BITS}], got ${String(bits)}`, { bits: String(bits) });
  }
  if (!Number.isSafeInteger(frac) || frac < 0 || frac > MAX_FRAC_BITS) {
    throw invalid(`fixed fractional bits must be an integer in [0, ${MAX_FRAC_BITS}], got ${String(frac)}`, { frac: String(frac) });
  }
  return Object.freeze({ kind: "fixed", bits, frac });
}

/** bit(): 0 or 1. */
export function bit(): BitType {
  return BIT_TYPE;
}
const BIT_TYPE: BitType = Object.freeze({ kind: "bit" });

/** field(): raw F_r elements (no range, arithmetic mod r). */
export function field(): FieldType {
  return FIELD_TYPE;
}
const FIELD_TYPE: FieldType = Object.freeze({ kind: "field" });

export function isRanged(type: SecretType): type is RangedType {
  return type.kind !== "field";
}

export function typeEquals(a: SecretType, b: SecretType): boolean {
  if (a.kind === "field" || b.kind === "field" || a.kind === "bit" || b.kind === "bit") return a.kind === b.kind;
  if (a.kind !== b.kind || a.bits !== b.bits) return false;
  return a.kind === "int" || (b.kind === "fixed" && a.frac === b.frac);
}

/** "int(64)", "fixed(64,16)", "field" — for messages. */
export function describeType(type: SecretType): string {
  switch (type.kind) {
    case "int":
      return `int(${type.bits})`;
    case "fixed":
      return `fixed(${type.bits},${type.frac})`;
    case "bit":
      return "bit";
    case "field":
      return "field";
  }
}

/**
 * The arithmetic family of a type: operands of one linear gate must share it.
 * int and bit are one family (a bit is an integer in [0, 1]); fixed types
 * with the same frac are one family; field is its own.
 */
export function typeFamily(type: SecretType): string {
  switch (type.kind) {
    case "int":
    case "bit":
      return "int";
    case "fixed":
      return `fixed(${type.frac})`;
    case "field":
      return "field";
  }
}

/**
 * The signed bit width k of a ranged type: every stored value lies in
 * [-2^(k-1), 2^(k-1) - 1]. This is the k of the comparison protocols.
 */
export function typeBits(type: RangedType): number {
  return type.kind === "bit" ? 2 : type.bits;
}

/** An inclusive integer interval [lo, hi]. */
export interface IntegerRange {
  readonly lo: bigint;
  readonly hi: bigint;
}

/** The range of the stored integer (value · 2^frac for fixed) of a ranged type. */
export function rangeOf(type: RangedType): IntegerRange {
  if (type.kind === "bit") return { lo: 0n, hi: 1n };
  const half = 1n << BigInt(type.bits - 1);
  return { lo: -half, hi: half - 1n };
}

/** The smallest signed bit width b >= 1 with [lo, hi] ⊆ [-2^(b-1), 2^(b-1) - 1]. */
export function bitsForRange(range: IntegerRange): number {
  let bits = 1;
  while (range.lo < -(1n << BigInt(bits - 1)) || range.hi > (1n << BigInt(bits - 1)) - 1n) bits++;
  return bits;
}

/** Whether `v` (the stored integer) lies in the range of `type`. */
export function inRange(type: RangedType, v: bigint): boolean {
  const { lo, hi } = rangeOf(type);
  return v >= lo && v <= hi;
}

/**
 * The ranged type of the same family as `like` that holds `range` (int for
 * int and bit, fixed with like's frac for fixed);
 * PROGRAM_INVALID naming `what` if that needs more than MAX_WIRE_BITS bits
 * (the result could wrap around mod r).
 */
export function typeForRange(like: RangedType, range: IntegerRange, what: string): RangedType {
  const bits = bitsForRange(range);
  if (bits > MAX_WIRE_BITS) {
    throw invalid(`${what} may overflow the field: its result needs ${bits} bits, the limit is ${MAX_WIRE_BITS}`, {
      at: what,
      bits,
      limit: MAX_WIRE_BITS,
    });
  }
  return like.kind === "fixed" ? fixed(bits, like.frac) : int(bits);
}

/** Checks that `value` is a well-formed SecretType (for values from JSON or callers); returns a frozen copy. */
export function checkSecretType(value: unknown, what: string, maxBits: number = MAX_WIRE_BITS): SecretType {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(`${what} must be an object {kind, ...}`, { at: what });
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort().join(",");
  const kind = record["kind"];
  const checkBits = (bits: unknown): number => {
    if (typeof bits !== "number" || !Number.isSafeInteger(bits) || bits < 1 || bits > maxBits) {
      throw invalid(`${what}.bits must be an integer in [1, ${maxBits}], got ${String(bits)}`, { at: what, bits: String(bits) });
    }
    return bits;
  };
  switch (kind) {
    case "int":
      if (keys !== "bits,kind") throw invalid(`${what} of kind int must have exactly the keys bits, kind (got ${keys})`, { at: what });
      return int(checkBits(record["bits"]));
    case "fixed": {
      if (keys !== "bits,frac,kind") {
        throw invalid(`${what} of kind fixed must have exactly the keys bits, frac, kind (got ${keys})`, { at: what });
      }
      const frac = record["frac"];
      if (typeof frac !== "number" || !Number.isSafeInteger(frac) || frac < 0 || frac > MAX_FRAC_BITS) {
        throw invalid(`${what}.frac must be an integer in [0, ${MAX_FRAC_BITS}], got ${String(frac)}`, { at: what, frac: String(frac) });
      }
      return fixed(checkBits(record["bits"]), frac);
    }
    case "bit":
      if (keys !== "kind") throw invalid(`${what} of kind bit must have only the key kind (got ${keys})`, { at: what });
      return bit();
    case "field":
      if (keys !== "kind") throw invalid(`${what} of kind field must have only the key kind (got ${keys})`, { at: what });
      return field();
    default:
      throw invalid(`${what}.kind must be "int", "fixed", "bit" or "field", got ${JSON.stringify(String(kind))}`, { at: what });
  }
}
