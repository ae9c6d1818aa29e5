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
 * Errors name the input, the index of the offending value, the type's range
 * and which way the value misses it, but never the value itself (it is
 * private data).
 */
import { ConsortError } from "../errors.ts";
import { FR_MODULUS, encodeSigned } from "../math/field.ts";
import { formatBinaryFixed, parseDecimal, parseInteger, rationalFromNumber, roundHalfEven, type Rational } from "./decimal.ts";
import { findInput, type Program } from "./program.ts";
import { describeType, rangeOf, type RangedType, type SecretType } from "./secret-types.ts";

/** A value as a data owner may write it. */
export type InputValue = bigint | number | string;

/** The range a value of `type` must lie in, as a data owner writes values (fixed: decimals, not stored integers). */
export function describeRange(type: SecretType): string {
  switch (type.kind) {
    case "int":
    case "bit": {
      const { lo, hi } = rangeOf(type);
      return `${lo} to ${hi}`;
    }
    case "fixed": {
      const { lo, hi } = rangeOf(type);
      return `${formatBinaryFixed(lo, type.frac)} to ${formatBinaryFixed(hi, type.frac)} in steps of 2^-${type.frac}`;
    }
    case "field":
      return "0 to r - 1 (r is BN254's scalar field modulus)";
  }
}

/**
 * INPUT_OUT_OF_RANGE for the value at `index` of input `inputName`. The
 * message names the input, the index (as an index, never where a value would
 * stand), the type and its range, and which way the value misses it, but not
 * the value: it is the data owner's private figure.
 */
function badValue(inputName: string, index: number, type: SecretType, problem: "below" | "above" | "not-a-number", expected?: string): ConsortError {
  const where = `input ${JSON.stringify(inputName)}: the value at index ${index}`;
  const range = `${describeType(type)} takes ${describeRange(type)}`;
  const what =
    problem === "below"
      ? `is below the smallest ${describeType(type)} value`
      : problem === "above"
        ? `is above the largest ${describeType(type)} value`
        : `is not ${expected ?? "a number"}`;
  return new ConsortError("INPUT_OUT_OF_RANGE", `${where} ${what} (${range}; the value itself is not shown)`, {
    details: { input: inputName, index, type: describeType(type), range: describeRange(type), problem },
  });
}

function checkRange(type: RangedType, v: bigint, inputName: string, index: number): bigint {
  const { lo, hi } = rangeOf(type);
  if (v < lo) throw badValue(inputName, index, type, "below");
  if (v > hi) throw badValue(inputName, index, type, "above");
  return v;
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
      if (v === undefined) throw badValue(inputName, index, type, "not-a-number", "an integer (bigint, safe-integer number or decimal integer string)");
      return checkRange(type, v, inputName, index);
    }
    case "fixed": {
      const q = rationalOf(value);
      if (q === undefined) throw badValue(inputName, index, type, "not-a-number", 'a decimal number (bigint, finite number or string like "-12.5")');
      return checkRange(type, roundHalfEven(q.num << BigInt(type.frac), q.den), inputName, index);
    }
    case "bit": {
      const v = integerOf(value);
      if (v === undefined) throw badValue(inputName, index, type, "not-a-number", "an integer (0 or 1)");
      return checkRange(type, v, inputName, index);
    }
    case "field": {
      const v = integerOf(value);
      if (v === undefined) throw badValue(inputName, index, type, "not-a-number", "an integer (bigint, safe-integer number or decimal integer string)");
      if (v < 0n) throw badValue(inputName, index, type, "below");
      if (v >= FR_MODULUS) throw badValue(inputName, index, type, "above");
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
