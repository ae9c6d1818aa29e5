/**
 * The data owner's side of an input: turning human values into the field
 * elements that get secret-shared.
 *
 * - int(bits): integers (bigint, safe-integer number, or integer string such
 *   as "-42") in [-2^(bits-1), 2^(bits-1) - 1].
 * - fixed(bits, frac): exact decimals ("12.34"), numbers (their exact binary
 *   value) or bigints (whole numbers). The value is scaled by 2^frac and
 *   rounded to the nearest integer, ties to even; the rounded integer must lie
 *   in the int(bits) range. So "0.1" with frac = 16 becomes 6554 (0.100006...).
 * - bit: 0 or 1 (bigint, number or string).
 * - field: integers in [0, r).
 *
 * Errors name the input and the index of the offending value but never the
 * value itself (it is private data).
 */
import { ConsortError } from "../errors.ts";
import { FR_MODULUS, encodeSigned } from "../math/field.ts";
import { parseDecimal, parseInteger, rationalFromNumber, roundHalfEven, type Rational } from "./decimal.ts";
import { findInput, type Program } from "./program.ts";
import { describeType, inRange, type SecretType } from "./secret-types.ts";

/** A value as a data owner may write it. */
export type InputValue = bigint | number | string;

function outOfRange(inputName: string, index: number, type: SecretType, reason: string): ConsortError {
  return new ConsortError("INPUT_OUT_OF_RANGE", `input ${JSON.stringify(inputName)} value ${index} ${reason} for ${describeType(type)}`, {
    details: { input: inputName, index, type: describeType(type) },
  });
}

function integerOf(value: InputValue): bigint | undefined {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") return Number.isSafeInteger(value) ? BigInt(value) : undefined;
  if (typeof value === "string") return parseInteger(value);
  return undefined;
}

function rationalOf(value: InputValue): Rational | undefined {
  if (typeof value === "bigint") return { num: value, den: 1n };
  if (typeof value === "number") return rationalFromNumber(value);
  if (typeof value === "string") return parseDecimal(value);
  return undefined;
}

/**
 * The stored integer of one value of `type` (fixed: value · 2^frac rounded
 * half-to-even; field: the element itself), range-checked.
 * INPUT_OUT_OF_RANGE naming `inputName` and `index` otherwise.
 */
export function encodeValue(type: SecretType, value: InputValue, inputName: string, index: number): bigint {
  switch (type.kind) {
    case "int": {
      const v = integerOf(value);
      if (v === undefined) throw outOfRange(inputName, index, type, "is not an integer (bigint, safe-integer number or decimal integer string)");
      if (!inRange(type, v)) throw outOfRange(inputName, index, type, "is out of range");
      return v;
    }
    case "fixed": {
      const q = rationalOf(value);
      if (q === undefined) throw outOfRange(inputName, index, type, "is not a decimal number (bigint, finite number or string like \"-12.5\")");
      const v = roundHalfEven(q.num << BigInt(type.frac), q.den);
      if (!inRange(type, v)) throw outOfRange(inputName, index, type, "is out of range");
      return v;
    }
    case "bit": {
      const v = integerOf(value);
      if (v === undefined) throw outOfRange(inputName, index, type, "is not an integer (0 or 1)");
      if (v !== 0n && v !== 1n) throw outOfRange(inputName, index, type, "is not 0 or 1");
      return v;
    }
    case "field": {
      const v = integerOf(value);
      if (v === undefined) throw outOfRange(inputName, index, type, "is not an integer");
      if (v < 0n || v >= FR_MODULUS) throw outOfRange(inputName, index, type, "is not in [0, r)");
      return v;
    }
  }
}

/** The stored integers of an input's values (length and range checked), before the field embedding. */
export function inputIntegers(program: Program, inputName: string, values: readonly InputValue[]): bigint[] {
  const input = findInput(program, inputName);
  if (!Array.isArray(values)) {
    throw new ConsortError("PROGRAM_INVALID", `values of input ${JSON.stringify(inputName)} must be an array`, { details: { input: inputName } });
  }
  if (values.length !== input.length) {
    throw new ConsortError("PROGRAM_INVALID", `input ${JSON.stringify(inputName)} takes ${input.length} value(s), got ${values.length}`, {
      details: { input: inputName, expected: input.length, got: values.length },
    });
  }
  return values.map((v, i) => encodeValue(input.type, v, inputName, i));
}

/**
 * The data owner's client: checks the values of input `inputName` (count
 * equals the declared length, each in its declared range) and returns them
 * as field elements (signed embedding for int/fixed), ready for splitVector.
 * PROGRAM_INVALID for an unknown input or a wrong count; INPUT_OUT_OF_RANGE
 * naming the input and index for a bad value.
 */
export function encodeInputValues(program: Program, inputName: string, values: readonly InputValue[]): bigint[] {
  const input = findInput(program, inputName);
  const integers = inputIntegers(program, inputName, values);
  return input.type.kind === "field" ? integers : integers.map(encodeSigned);
}
