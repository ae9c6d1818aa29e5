/**
 * Committed programs: the circuit model, its type rules and its validation.
 *
 * A program is a list of gates in topological order. Gate i defines wire i
 * (dense ids: a gate may only read wires with smaller ids). Every wire is a
 * VECTOR of `length` field elements of one SecretType; gates act element-wise
 * (add, mul, ltz, select, ...), reduce (reduceSum, dot, max -> length 1) or
 * rearrange (concat, repeat, tile, slice), so one gate covers a whole column
 * of data and the engine batches every gate of one round into one message.
 *
 * Gate ops, by what they cost on shares (node/protocol documents the
 * protocols and their exact round and multiplication counts):
 * - local, no communication: input, add, sub, mulConst, addConst, reduceSum,
 *   segmentSum, not, setFrac, concat, repeat, tile, slice;
 * - one multiplication round: mul (element-wise; of two bits it is AND),
 *   dot (Σ a_i·b_i, ONE degree reduction whatever the length), select
 *   (c ? x : y = c·(x − y) + y);
 * - comparison protocols (random bits, an opening, a log-depth carry
 *   circuit): ltz (a < 0), eqz (a == 0), and the tournaments max, argmax and
 *   secondMax (log2(length) comparison rounds);
 * - trunc (probabilistic truncation: the stored integer divided by 2^shift,
 *   rounded down or up at random; one opening).
 *
 * Inputs are gates of op "input": each names its data owner by index into the
 * task's ordered data-owner list. Outputs reveal a wire: to all parties
 * (reveal "all", opened and written into the on-chain result) or only to the
 * task's requester (reveal "requester": parties keep shares, the result holds
 * a commitment). A quotient output reveals wire / denominator (element-wise,
 * both secret) as an exact rational rendered with `decimals` digits, and
 * nothing else. "Derived" outputs are public functions of opened outputs (a
 * ratio to a public denominator, a square root of one), computed by everyone
 * after opening: they reveal nothing beyond the output they are derived from.
 *
 * Format versioning: this file defines "consort.program/v1". Ops, output
 * forms and derived ops were only ever ADDED to v1 (phase 1 had the linear
 * ops, ratio outputs and reveal "all"); nothing existing changed meaning or
 * encoding, so every phase-1 program keeps its bytes and its hash.
 *
 * Every Program value that leaves this module has been validated and frozen;
 * `validateProgram` checks (and freezes a copy of) programs built by hand.
 */
import { ConsortError } from "../errors.ts";
import { SIGNED_MAX, SIGNED_MIN } from "../math/field.ts";
import {
  MAX_FRAC_BITS,
  MAX_INPUT_BITS,
  bit,
  bitsForRange,
  checkSecretType,
  describeType,
  field,
  fixed,
  int,
  isRanged,
  rangeOf,
  typeBits,
  typeEquals,
  typeFamily,
  typeForRange,
  type IntegerRange,
  type RangedType,
  type SecretType,
} from "./secret-types.ts";

/** The version tag of the canonical program encoding. */
export const PROGRAM_VERSION = "consort.program/v1";

/** Limits that keep a hostile program from exhausting a node (checked on decode). */
export const PROGRAM_LIMITS = Object.freeze({
  /** Encoded program size. */
  maxBytes: 16 * 1024 * 1024,
  /** Gates (wires), inputs included. */
  maxGates: 200_000,
  /** Elements of one wire. */
  maxWireLength: 1 << 20,
  /** Sum of all wire lengths: bounds the memory of one evaluation. */
  maxTotalElements: 1 << 22,
  /** Operands of one n-ary add or concat. */
  maxAddArgs: 65_536,
  /** Data owners one program may name: the registry's cap (createTask must fit the 2^24 per-transaction gas limit). */
  maxDataOwners: 256,
  /** Digits after the decimal point of a derived ratio or a quotient. */
  maxDecimals: 64,
  /**
   * Bound on the interactive work of one program: Σ over interactive gates
   * of (elements × bit width) for comparisons and truncations, and elements
   * for multiplications (see `interactiveWork`). The random bits and
   * intermediate carries of a run are proportional to it (32 bytes each).
   */
  maxInteractiveWork: 1 << 23,
});

/**
 * κ, the statistical security parameter of comparisons and truncations: the
 * value opened to mask a k-bit secret a is a + r with r about κ bits wider
 * than a, so it is within statistical distance 2^-κ of a value independent
 * of a (Catrina and de Hoogh, SCN 2010, §3).
 */
export const STATISTICAL_SECURITY_BITS = 40;

/**
 * Widest k a comparison (ltz, eqz, the comparisons inside max/argmax/
 * secondMax) or a truncation may work on. The masked value 2^(k-1) + a +
 * 2^m·r'' + r' must stay below r > 2^253, which is Catrina–de Hoogh's
 * k + κ + 1 <= 253 plus 7 bits: r'' is the sum of the contributions of t + 1
 * <= 128 dealers (node/protocol/preprocessing.ts), so it can be 2^7 times
 * wider than one. k <= 205 for κ = 40.
 */
export const MAX_COMPARISON_BITS = 253 - STATISTICAL_SECURITY_BITS - 1 - 7;

/** Names of the program, its inputs and outputs: ASCII, readable on a block explorer, no normalisation issues. */
export const PROGRAM_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
export const IO_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/**
 * Who learns an output: "all" opens it to every party (and the on-chain
 * result shows it); "requester" reveals it only to the task's requester,
 * whose client reconstructs it from the parties' shares (the on-chain result
 * holds a commitment to those shares instead of the value).
 */
export type Reveal = "all" | "requester";
export const REVEAL_MODES: readonly Reveal[] = Object.freeze(["all", "requester"]);

interface GateBase {
  /** The wire this gate defines; equals the gate's index. */
  readonly id: number;
  /** Number of elements of the wire. */
  readonly length: number;
  /** Type of every element of the wire (inferred; stored so auditors can read it). */
  readonly type: SecretType;
}
export interface InputGate extends GateBase {
  readonly op: "input";
  readonly name: string;
  /** Index into the task's ordered data-owner list. */
  readonly owner: number;
}
/** Element-wise sum of two or more wires of one type family and length. */
export interface AddGate extends GateBase {
  readonly op: "add";
  readonly args: readonly number[];
}
/** Element-wise args[0] - args[1]. */
export interface SubGate extends GateBase {
  readonly op: "sub";
  readonly args: readonly [number, number];
}
/** Element-wise multiplication by a public integer (for fixed wires it scales the value; frac is unchanged). */
export interface MulConstGate extends GateBase {
  readonly op: "mulConst";
  readonly args: readonly [number];
  readonly constant: bigint;
}
/** Element-wise addition of a public constant, in the wire's stored representation (fixed: value · 2^frac). */
export interface AddConstGate extends GateBase {
  readonly op: "addConst";
  readonly args: readonly [number];
  readonly constant: bigint;
}
/** Sum of the elements of one wire (length 1). */
export interface ReduceSumGate extends GateBase {
  readonly op: "reduceSum";
  readonly args: readonly [number];
}
/**
 * Element-wise product. int × int -> int, fixed × fixed -> fixed with the
 * fracs added (the exact product; `trunc` rescales), int × fixed -> fixed,
 * bit × x -> x's type, bit × bit -> bit (logical AND), field × field -> field.
 */
export interface MulGate extends GateBase {
  readonly op: "mul";
  readonly args: readonly [number, number];
}
/** Σ_i a_i · b_i (length 1), typed like mul then summed. */
export interface DotGate extends GateBase {
  readonly op: "dot";
  readonly args: readonly [number, number];
}
/** Element-wise a < 0 (bit). */
export interface LtzGate extends GateBase {
  readonly op: "ltz";
  readonly args: readonly [number];
}
/** Element-wise a == 0 (bit). */
export interface EqzGate extends GateBase {
  readonly op: "eqz";
  readonly args: readonly [number];
}
/** Element-wise 1 - a of a bit (bit). */
export interface NotGate extends GateBase {
  readonly op: "not";
  readonly args: readonly [number];
}
/** Element-wise c ? x : y for a bit c (args [c, x, y]). */
export interface SelectGate extends GateBase {
  readonly op: "select";
  readonly args: readonly [number, number, number];
}
/**
 * Element-wise probabilistic truncation of the stored integer: a / 2^shift
 * rounded down or up, up with probability equal to the discarded fraction
 * (so the result is unbiased). For fixed wires frac decreases by shift (the
 * value is kept, the precision drops); for int wires it divides by 2^shift.
 */
export interface TruncGate extends GateBase {
  readonly op: "trunc";
  readonly args: readonly [number];
  readonly shift: number;
}
/**
 * Tournaments over the elements of one wire (length 1 results): max is the
 * largest element, argmax the index (0-based) of its first occurrence (ties
 * go to the lowest index), secondMax the largest element once one occurrence
 * of the max is removed (the price of a second-price auction; needs length >= 2).
 */
export interface TournamentGate extends GateBase {
  readonly op: "max" | "argmax" | "secondMax";
  readonly args: readonly [number];
}
/** The wires one after another (one type family). */
export interface ConcatGate extends GateBase {
  readonly op: "concat";
  readonly args: readonly number[];
}
/** repeat: each element `times` times in a row (a0 a0 a1 a1); tile: the whole wire `times` times (a0 a1 a0 a1). */
export interface RepeatGate extends GateBase {
  readonly op: "repeat" | "tile";
  readonly args: readonly [number];
  readonly times: number;
}
/** Elements [start, end) of a wire. */
export interface SliceGate extends GateBase {
  readonly op: "slice";
  readonly args: readonly [number];
  readonly start: number;
  readonly end: number;
}
/** Sums of consecutive groups of `size` elements (length / size results). */
export interface SegmentSumGate extends GateBase {
  readonly op: "segmentSum";
  readonly args: readonly [number];
  readonly size: number;
}
/**
 * Reinterprets the stored integers as fixed(·, frac): the value becomes
 * stored / 2^frac (no computation). With mulConst it converts int to fixed
 * (x -> x · 2^f, setFrac f) and rescales fixed values.
 */
export interface SetFracGate extends GateBase {
  readonly op: "setFrac";
  readonly args: readonly [number];
  readonly frac: number;
}
export type ComputeGate =
  | AddGate
  | SubGate
  | MulConstGate
  | AddConstGate
  | ReduceSumGate
  | MulGate
  | DotGate
  | LtzGate
  | EqzGate
  | NotGate
  | SelectGate
  | TruncGate
  | TournamentGate
  | ConcatGate
  | RepeatGate
  | SliceGate
  | SegmentSumGate
  | SetFracGate;
export type Gate = InputGate | ComputeGate;
export type GateOp = Gate["op"];
export type ComputeOp = ComputeGate["op"];

/** Named integer parameters a gate op may carry, besides the bigint `constant`. */
export type GateIntParam = "shift" | "times" | "start" | "end" | "size" | "frac";
/** The parameters of a compute gate (only those its op declares are set). */
export interface GateParams {
  readonly constant?: bigint;
  readonly shift?: number;
  readonly times?: number;
  readonly start?: number;
  readonly end?: number;
  readonly size?: number;
  readonly frac?: number;
}

interface OpSpec {
  /** Fewest and most operands. */
  readonly arity: readonly [number, number];
  readonly constant: boolean;
  readonly ints: readonly GateIntParam[];
}
/** Arity and parameters of every compute op: the single source for validation, encoding and the builder. */
export const OP_SPECS: Readonly<Record<ComputeOp, OpSpec>> = Object.freeze({
  add: { arity: [2, 65_536], constant: false, ints: [] },
  sub: { arity: [2, 2], constant: false, ints: [] },
  mulConst: { arity: [1, 1], constant: true, ints: [] },
  addConst: { arity: [1, 1], constant: true, ints: [] },
  reduceSum: { arity: [1, 1], constant: false, ints: [] },
  mul: { arity: [2, 2], constant: false, ints: [] },
  dot: { arity: [2, 2], constant: false, ints: [] },
  ltz: { arity: [1, 1], constant: false, ints: [] },
  eqz: { arity: [1, 1], constant: false, ints: [] },
  not: { arity: [1, 1], constant: false, ints: [] },
  select: { arity: [3, 3], constant: false, ints: [] },
  trunc: { arity: [1, 1], constant: false, ints: ["shift"] },
  max: { arity: [1, 1], constant: false, ints: [] },
  argmax: { arity: [1, 1], constant: false, ints: [] },
  secondMax: { arity: [1, 1], constant: false, ints: [] },
  concat: { arity: [2, 65_536], constant: false, ints: [] },
  repeat: { arity: [1, 1], constant: false, ints: ["times"] },
  tile: { arity: [1, 1], constant: false, ints: ["times"] },
  slice: { arity: [1, 1], constant: false, ints: ["start", "end"] },
  segmentSum: { arity: [1, 1], constant: false, ints: ["size"] },
  setFrac: { arity: [1, 1], constant: false, ints: ["frac"] },
});
export const GATE_OPS: readonly GateOp[] = Object.freeze(["input", ...(Object.keys(OP_SPECS) as ComputeOp[])]);

export interface ProgramOutput {
  readonly name: string;
  readonly wire: number;
  readonly reveal: Reveal;
  /**
   * Set (with `decimals`) for a quotient output: the output is wire /
   * denominator element-wise, both secret wires (ranged, equal lengths),
   * revealed as the exact rational and rendered half-to-even with `decimals`
   * digits ("undefined" where the denominator is 0). Only with reveal "all".
   */
  readonly denominator?: number;
  readonly decimals?: number;
}

/** Whether `output` is a quotient output (wire / denominator). */
export function isQuotientOutput(output: ProgramOutput): output is ProgramOutput & { readonly denominator: number; readonly decimals: number } {
  return output.denominator !== undefined;
}

/**
 * A public output computed from an opened one, element-wise, rounded
 * half-to-even to `decimals` digits after the point; the numerator's value
 * is its decoded number (fixed: stored / 2^frac):
 * - "ratio": numerator / denominator;
 * - "sqrt": the square root of numerator / denominator ("undefined" if it is
 *   negative), e.g. a standard deviation from an opened n²·variance.
 */
export interface RatioOutput {
  readonly name: string;
  readonly op: "ratio" | "sqrt";
  /** Name of an output in `outputs` of int, fixed or bit type, revealed to all, not a quotient. */
  readonly numerator: string;
  /** A public positive integer. */
  readonly denominator: bigint;
  readonly decimals: number;
}
export type DerivedOutput = RatioOutput;
export const DERIVED_OPS: readonly DerivedOutput["op"][] = Object.freeze(["ratio", "sqrt"]);

export interface Program {
  readonly version: typeof PROGRAM_VERSION;
  readonly name: string;
  readonly gates: readonly Gate[];
  readonly outputs: readonly ProgramOutput[];
  readonly derived: readonly DerivedOutput[];
}

/**
 * Opened output values, keyed by output name (outputs revealed to all, not
 * derived ones): field elements in [0, r). A plain output has one element
 * per element of its wire. A quotient output has TWO per element, the reduced
 * fraction a/b of its exact value: a (signed embedding) then b in [0, r)
 * with b > 0, or a = b = 0 where the denominator was 0. runProgram and
 * evaluatePlain return this; encodeResult renders it.
 */
export type OpenedOutputs = ReadonlyMap<string, readonly bigint[]>;

function invalid(message: string, details: Record<string, unknown> = {}): ConsortError {
  return new ConsortError("PROGRAM_INVALID", message, { details });
}

/** The largest magnitude a public constant may have: constants are signed representatives of F_r. */
export function checkConstant(value: unknown, what: string): bigint {
  if (typeof value !== "bigint") throw invalid(`${what} must be a bigint, got ${typeof value}`, { at: what });
  if (value < SIGNED_MIN || value > SIGNED_MAX) {
    throw invalid(`${what} is outside [-(r-1)/2, (r-1)/2]`, { at: what, constant: value.toString() });
  }
  return value;
}

/** Bounds of the integer parameters (checked for every gate). */
const INT_PARAM_BOUNDS: Readonly<Record<GateIntParam, readonly [number, number]>> = {
  shift: [1, MAX_COMPARISON_BITS - 1],
  times: [1, PROGRAM_LIMITS.maxWireLength],
  start: [0, PROGRAM_LIMITS.maxWireLength],
  end: [1, PROGRAM_LIMITS.maxWireLength],
  size: [1, PROGRAM_LIMITS.maxWireLength],
  frac: [0, MAX_FRAC_BITS],
};

type Operand = { readonly type: SecretType; readonly length: number };

function rangeUnion(a: IntegerRange, b: IntegerRange): IntegerRange {
  return { lo: a.lo < b.lo ? a.lo : b.lo, hi: a.hi > b.hi ? a.hi : b.hi };
}

function rangeProduct(a: IntegerRange, b: IntegerRange): IntegerRange {
  const corners = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi];
  let lo = corners[0]!;
  let hi = corners[0]!;
  for (const c of corners) {
    if (c < lo) lo = c;
    if (c > hi) hi = c;
  }
  return { lo, hi };
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** Whether two operands may meet in one linear gate (same family: int/bit, fixed with one frac, or field). */
function sameFamily(a: SecretType, b: SecretType): boolean {
  return typeFamily(a) === typeFamily(b);
}

/** Throws unless a ranged operand of width k fits the comparison protocols (k + κ + 8 <= 253). */
function checkComparable(k: number, what: string, op: string): void {
  if (k > MAX_COMPARISON_BITS) {
    throw invalid(
      `${what} (${op}) works on ${k}-bit values; comparisons and truncations take at most ${MAX_COMPARISON_BITS} bits (k + κ + 8 <= 253 with κ = ${STATISTICAL_SECURITY_BITS})`,
      { at: what, bits: k, limit: MAX_COMPARISON_BITS },
    );
  }
}

/**
 * The type of Σ_{i<terms} a_i·b_i (mul: terms = 1; dot: the length), from
 * the exact product range; PROGRAM_INVALID for field × ranged or too many
 * fractional bits.
 */
function productType(a: SecretType, b: SecretType, terms: number, what: string, op: string): SecretType {
  if (a.kind === "field" || b.kind === "field") {
    if (a.kind !== b.kind) {
      throw invalid(`${what} (${op}): a field wire can only be multiplied by a field wire, got ${describeType(a)} and ${describeType(b)}`, { at: what });
    }
    return field();
  }
  if (terms === 1) {
    if (a.kind === "bit" && b.kind === "bit") return bit();
    // A bit times x is x or 0, and 0 is in every ranged type.
    if (a.kind === "bit") return b;
    if (b.kind === "bit") return a;
  }
  const product = rangeProduct(rangeOf(a), rangeOf(b));
  const n = BigInt(terms);
  const range = { lo: product.lo * n, hi: product.hi * n };
  const frac = (a.kind === "fixed" ? a.frac : 0) + (b.kind === "fixed" ? b.frac : 0);
  if (a.kind !== "fixed" && b.kind !== "fixed") return typeForRange(int(1), range, what);
  if (frac > MAX_FRAC_BITS) {
    throw invalid(`${what} (${op}): the product has ${frac} fractional bits, the limit is ${MAX_FRAC_BITS}; truncate an operand first`, { at: what });
  }
  return typeForRange(fixed(1, frac), range, what);
}

/**
 * The (type, length) of a gate's wire given its operands and parameters;
 * PROGRAM_INVALID naming `what` on a rule violation.
 */
export function inferGate(op: ComputeOp, operands: readonly Operand[], params: GateParams, what: string): { type: SecretType; length: number } {
  const spec = OP_SPECS[op];
  if (spec === undefined) throw invalid(`${what}: unknown op ${JSON.stringify(String(op))}`, { at: what });
  const [minArgs, maxArgs] = spec.arity;
  if (operands.length < minArgs || operands.length > maxArgs) {
    const expected = minArgs === maxArgs ? `${minArgs}` : `${minArgs} to ${maxArgs}`;
    throw invalid(`${what} (${op}) takes ${expected} operand(s), got ${operands.length}`, { at: what });
  }
  if (spec.constant && params.constant === undefined) throw invalid(`${what} (${op}) needs a constant`, { at: what });
  for (const name of spec.ints) {
    const value = params[name];
    const [lo, hi] = INT_PARAM_BOUNDS[name];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < lo || value > hi) {
      throw invalid(`${what} (${op}): ${name} must be an integer in [${lo}, ${hi}], got ${String(value)}`, { at: what, [name]: String(value) });
    }
  }
  const first = operands[0]!;
  const t0 = first.type;
  const L = first.length;
  const equalLengths = (from: number): void => {
    for (let i = from; i < operands.length; i++) {
      if (operands[i]!.length !== operands[from - 1]!.length) {
        throw invalid(`${what} (${op}): operand ${i} has length ${operands[i]!.length}, operand ${from - 1} has length ${operands[from - 1]!.length}`, {
          at: what,
        });
      }
    }
  };
  const familyOf = (from: number): void => {
    for (let i = from + 1; i < operands.length; i++) {
      if (!sameFamily(operands[i]!.type, operands[from]!.type)) {
        throw invalid(
          `${what} (${op}): operand ${i} is ${describeType(operands[i]!.type)}, operand ${from} is ${describeType(operands[from]!.type)} (operands must share kind and frac)`,
          { at: what },
        );
      }
    }
  };
  const ranged = (o: Operand, index: number): RangedType => {
    if (!isRanged(o.type)) throw invalid(`${what} (${op}): operand ${index} is of type field; ${op} needs an int, fixed or bit operand`, { at: what });
    return o.type;
  };
  const mustBeBit = (o: Operand, index: number): void => {
    if (o.type.kind !== "bit") throw invalid(`${what} (${op}): operand ${index} must be a bit, got ${describeType(o.type)}`, { at: what });
  };

  switch (op) {
    case "add":
    case "sub":
    case "mulConst":
    case "addConst":
    case "reduceSum":
    case "segmentSum": {
      equalLengths(1);
      familyOf(0);
      let length = L;
      if (op === "reduceSum") length = 1;
      if (op === "segmentSum") {
        const size = params.size!;
        if (L % size !== 0) throw invalid(`${what} (segmentSum): size ${size} does not divide the length ${L}`, { at: what });
        length = L / size;
      }
      if (!isRanged(t0)) return { type: field(), length };
      const ranges = operands.map((o) => rangeOf(o.type as RangedType));
      let range: IntegerRange;
      switch (op) {
        case "add":
          range = ranges.reduce((acc, r) => ({ lo: acc.lo + r.lo, hi: acc.hi + r.hi }));
          break;
        case "sub":
          range = { lo: ranges[0]!.lo - ranges[1]!.hi, hi: ranges[0]!.hi - ranges[1]!.lo };
          break;
        case "mulConst":
          range = rangeProduct(ranges[0]!, { lo: params.constant!, hi: params.constant! });
          break;
        case "addConst":
          range = { lo: ranges[0]!.lo + params.constant!, hi: ranges[0]!.hi + params.constant! };
          break;
        case "reduceSum":
        case "segmentSum": {
          const n = BigInt(op === "reduceSum" ? L : params.size!);
          range = { lo: ranges[0]!.lo * n, hi: ranges[0]!.hi * n };
          break;
        }
      }
      return { type: typeForRange(t0, range, what), length };
    }
    case "mul":
    case "dot": {
      equalLengths(1);
      if (op === "mul") return { type: productType(t0, operands[1]!.type, 1, what, op), length: L };
      return { type: productType(t0, operands[1]!.type, L, what, op), length: 1 };
    }
    case "ltz":
    case "eqz": {
      checkComparable(typeBits(ranged(first, 0)), what, op);
      return { type: bit(), length: L };
    }
    case "not":
      mustBeBit(first, 0);
      return { type: bit(), length: L };
    case "select": {
      mustBeBit(first, 0);
      equalLengths(1);
      familyOf(1);
      const x = operands[1]!.type;
      const y = operands[2]!.type;
      if (x.kind === "field") return { type: field(), length: L };
      if (x.kind === "bit" && y.kind === "bit") return { type: bit(), length: L };
      return { type: typeForRange(x, rangeUnion(rangeOf(x), rangeOf(y as RangedType)), what), length: L };
    }
    case "trunc": {
      const type = ranged(first, 0);
      const shift = params.shift!;
      if (type.kind === "bit") throw invalid(`${what} (trunc): truncating a bit makes no sense`, { at: what });
      if (type.kind === "fixed" && shift > type.frac) {
        throw invalid(`${what} (trunc): shift ${shift} exceeds the ${type.frac} fractional bits of ${describeType(type)}`, { at: what });
      }
      checkComparable(Math.max(typeBits(type), shift + 1), what, op);
      const r = rangeOf(type);
      const d = 1n << BigInt(shift);
      // Rounded down or up: [floor(lo / 2^s), ceil(hi / 2^s)].
      const range = { lo: floorDiv(r.lo, d), hi: -floorDiv(-r.hi, d) };
      return { type: typeForRange(type.kind === "fixed" ? fixed(1, type.frac - shift) : type, range, what), length: L };
    }
    case "max":
    case "argmax":
    case "secondMax": {
      const type = ranged(first, 0);
      // The tournament compares differences of two elements: one bit wider.
      checkComparable(typeBits(type) + 1, what, op);
      if (op === "secondMax" && L < 2) throw invalid(`${what} (secondMax) needs at least 2 elements, got ${L}`, { at: what });
      if (op === "argmax") return { type: int(bitsForRange({ lo: 0n, hi: BigInt(L - 1) })), length: 1 };
      return { type, length: 1 };
    }
    case "concat": {
      familyOf(0);
      let length = 0;
      for (const o of operands) length += o.length;
      if (length > PROGRAM_LIMITS.maxWireLength) throw invalid(`${what} (concat) is ${length} elements long, the limit is ${PROGRAM_LIMITS.maxWireLength}`, { at: what });
      if (t0.kind === "field") return { type: field(), length };
      if (operands.every((o) => o.type.kind === "bit")) return { type: bit(), length };
      const range = operands.map((o) => rangeOf(o.type as RangedType)).reduce(rangeUnion);
      return { type: typeForRange(t0 as RangedType, range, what), length };
    }
    case "repeat":
    case "tile": {
      const length = L * params.times!;
      if (length > PROGRAM_LIMITS.maxWireLength) throw invalid(`${what} (${op}) is ${length} elements long, the limit is ${PROGRAM_LIMITS.maxWireLength}`, { at: what });
      return { type: t0, length };
    }
    case "slice": {
      const { start, end } = params as { start: number; end: number };
      if (!(start < end && end <= L)) throw invalid(`${what} (slice): [${start}, ${end}) is not a non-empty range within length ${L}`, { at: what });
      return { type: t0, length: end - start };
    }
    case "setFrac": {
      const type = ranged(first, 0);
      return { type: typeForRange(fixed(1, params.frac!), rangeOf(type), what), length: L };
    }
  }
}

/**
 * The interactive work of one gate, the unit of PROGRAM_LIMITS.maxInteractiveWork:
 * elements × bit width for comparisons and truncations (that many random
 * bits and carries), elements for multiplications, 0 for local gates.
 */
export function interactiveWork(gate: Gate, gates: readonly Gate[]): number {
  if (gate.op === "input") return 0;
  const arg = gates[gate.args[0]!]!;
  switch (gate.op) {
    case "mul":
    case "select":
      return gate.length;
    case "dot":
      return arg.length;
    case "ltz":
    case "eqz":
      return gate.length * typeBits(arg.type as RangedType);
    case "trunc":
      return gate.length * Math.max(typeBits(arg.type as RangedType), gate.shift + 1);
    case "max":
    case "argmax":
    case "secondMax":
      return 2 * arg.length * (typeBits(arg.type as RangedType) + 1);
    default:
      return 0;
  }
}

// ---------------------------------------------------------------------------
// Validation. One pass over an untrusted value (a decoded JSON document or an
// object built in code) that returns a fresh, frozen, fully checked Program.

/** How constants appear in the value being checked: decimal strings (JSON) or bigints (objects). */
export type ConstantForm = "string" | "bigint";

const validated = new WeakSet<Program>();

function asRecord(value: unknown, what: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(`${what} must be an object`, { at: what });
  }
  const record = value as Record<string, unknown>;
  const present = Object.keys(record).filter((k) => record[k] !== undefined).sort();
  const expected = [...keys].sort();
  if (present.join(",") !== expected.join(",")) {
    const missing = expected.filter((k) => !present.includes(k));
    const extra = present.filter((k) => !expected.includes(k));
    throw invalid(
      `${what} must have exactly the keys ${expected.join(", ")}` +
        (missing.length > 0 ? `; missing ${missing.join(", ")}` : "") +
        (extra.length > 0 ? `; unexpected ${extra.map((k) => JSON.stringify(k)).join(", ")}` : ""),
      { at: what, missing, unexpected: extra },
    );
  }
  return record;
}

function asArray(value: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(value)) throw invalid(`${what} must be an array`, { at: what });
  return value;
}

function asInteger(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(`${what} must be an integer in [${min}, ${max}], got ${typeof value === "number" ? String(value) : typeof value}`, {
      at: what,
    });
  }
  return value;
}

function asName(value: unknown, what: string, pattern: RegExp): string {
  if (typeof value !== "string" || !pattern.test(value)) {
    throw invalid(`${what} must match ${String(pattern)}, got ${typeof value === "string" ? JSON.stringify(value) : typeof value}`, {
      at: what,
    });
  }
  return value;
}

const DECIMAL_INTEGER = /^(0|-?[1-9][0-9]*)$/;

/** Parses a constant in its canonical form (decimal string without leading zeros or "+", or a bigint). */
function asConstant(value: unknown, what: string, form: ConstantForm): bigint {
  if (form === "string") {
    if (typeof value !== "string" || value.length > 100 || !DECIMAL_INTEGER.test(value)) {
      throw invalid(`${what} must be a canonical decimal integer string, got ${typeof value === "string" ? JSON.stringify(value.slice(0, 100)) : typeof value}`, {
        at: what,
      });
    }
    return checkConstant(BigInt(value), what);
  }
  return checkConstant(value, what);
}

function freezeDeep<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) freezeDeep(v);
    Object.freeze(value);
  }
  return value;
}

/** Checks one gate and returns its normalised, frozen form. */
function checkGate(value: unknown, index: number, gates: readonly Gate[], form: ConstantForm): Gate {
  const what = `gates[${index}]`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalid(`${what} must be an object`, { at: what });
  const op = (value as Record<string, unknown>)["op"];
  if (typeof op !== "string" || !(GATE_OPS as readonly string[]).includes(op)) {
    throw invalid(`${what}.op must be one of ${GATE_OPS.join(", ")}, got ${typeof op === "string" ? JSON.stringify(op) : typeof op}`, {
      at: what,
    });
  }
  if (op === "input") {
    const record = asRecord(value, what, ["id", "op", "name", "owner", "length", "type"]);
    const id = asInteger(record["id"], `${what}.id`, 0, Number.MAX_SAFE_INTEGER);
    if (id !== index) throw invalid(`${what}.id is ${id}; gate ids must be dense and equal the gate's index ${index}`, { at: what });
    const length = asInteger(record["length"], `${what}.length`, 1, PROGRAM_LIMITS.maxWireLength);
    const type = checkSecretType(record["type"], `${what}.type`, MAX_INPUT_BITS);
    const name = asName(record["name"], `${what}.name`, IO_NAME_PATTERN);
    const owner = asInteger(record["owner"], `${what}.owner`, 0, PROGRAM_LIMITS.maxDataOwners - 1);
    return freezeDeep({ id, op: "input", name, owner, length, type });
  }

  const computeOp = op as ComputeOp;
  const spec = OP_SPECS[computeOp];
  const keys = ["id", "op", "args", "length", "type", ...(spec.constant ? ["constant"] : []), ...spec.ints];
  const record = asRecord(value, what, keys);
  const id = asInteger(record["id"], `${what}.id`, 0, Number.MAX_SAFE_INTEGER);
  if (id !== index) throw invalid(`${what}.id is ${id}; gate ids must be dense and equal the gate's index ${index}`, { at: what });
  const length = asInteger(record["length"], `${what}.length`, 1, PROGRAM_LIMITS.maxWireLength);
  const declared = checkSecretType(record["type"], `${what}.type`);
  const rawArgs = asArray(record["args"], `${what}.args`);
  const args = rawArgs.map((a, k) => {
    const ref = asInteger(a, `${what}.args[${k}]`, 0, Number.MAX_SAFE_INTEGER);
    if (ref >= index) {
      throw invalid(`${what}.args[${k}] refers to wire ${ref}, which is not defined before gate ${index}`, { at: what, wire: ref });
    }
    return ref;
  });
  const params: { -readonly [K in keyof GateParams]: GateParams[K] } = {};
  if (spec.constant) params.constant = asConstant(record["constant"], `${what}.constant`, form);
  for (const name of spec.ints) {
    const [lo, hi] = INT_PARAM_BOUNDS[name];
    params[name] = asInteger(record[name], `${what}.${name}`, lo, hi);
  }
  const inferred = inferGate(computeOp, args.map((a) => gates[a]!), params, what);
  if (inferred.length !== length) {
    throw invalid(`${what}.length is ${length}, but its operands give length ${inferred.length}`, { at: what });
  }
  if (!typeEquals(inferred.type, declared)) {
    throw invalid(`${what}.type is ${describeType(declared)}, but the type rules give ${describeType(inferred.type)}`, { at: what });
  }
  return freezeDeep({ id, op: computeOp, args, ...params, length, type: inferred.type } as ComputeGate);
}

/**
 * Checks every rule of a program given as a plain value and returns a fresh,
 * frozen Program. `form` says how constants are written (decimal strings in
 * the JSON encoding, bigints in objects). PROGRAM_INVALID names the first
 * violation (its JSON path) otherwise.
 */
export function checkProgram(value: unknown, form: ConstantForm): Program {
  const record = asRecord(value, "program", ["version", "name", "gates", "outputs", "derived"]);
  if (record["version"] !== PROGRAM_VERSION) {
    throw invalid(`program.version must be ${JSON.stringify(PROGRAM_VERSION)}, got ${JSON.stringify(String(record["version"]))}`, {
      at: "version",
    });
  }
  const name = asName(record["name"], "program.name", PROGRAM_NAME_PATTERN);

  const rawGates = asArray(record["gates"], "program.gates");
  if (rawGates.length === 0) throw invalid("program.gates is empty; a program needs at least one input", { at: "gates" });
  if (rawGates.length > PROGRAM_LIMITS.maxGates) {
    throw invalid(`program has ${rawGates.length} gates, the limit is ${PROGRAM_LIMITS.maxGates}`, { at: "gates" });
  }
  const gates: Gate[] = [];
  const inputNames = new Set<string>();
  const owners = new Set<number>();
  let totalElements = 0;
  let work = 0;
  for (let i = 0; i < rawGates.length; i++) {
    const gate = checkGate(rawGates[i], i, gates, form);
    totalElements += gate.length;
    if (totalElements > PROGRAM_LIMITS.maxTotalElements) {
      throw invalid(`program wires hold more than ${PROGRAM_LIMITS.maxTotalElements} elements in total (at gates[${i}])`, {
        at: `gates[${i}]`,
      });
    }
    work += interactiveWork(gate, gates);
    if (work > PROGRAM_LIMITS.maxInteractiveWork) {
      throw invalid(`program's interactive work exceeds ${PROGRAM_LIMITS.maxInteractiveWork} (elements × bit width of its comparisons, at gates[${i}])`, {
        at: `gates[${i}]`,
      });
    }
    if (gate.op === "input") {
      if (inputNames.has(gate.name)) throw invalid(`gates[${i}]: input name ${JSON.stringify(gate.name)} is used twice`, { at: `gates[${i}]` });
      inputNames.add(gate.name);
      owners.add(gate.owner);
    }
    gates.push(gate);
  }
  for (let owner = 0; owner < owners.size; owner++) {
    if (!owners.has(owner)) {
      throw invalid(
        `data owners must be numbered 0..k-1 without gaps: owner ${owner} has no input, but owner ${Math.max(...owners)} does`,
        { at: "gates", owner },
      );
    }
  }

  const outputNames = new Set<string>();
  const rawOutputs = asArray(record["outputs"], "program.outputs");
  if (rawOutputs.length === 0) throw invalid("program.outputs is empty; a program must open at least one output", { at: "outputs" });
  const outputs: ProgramOutput[] = rawOutputs.map((o, i) => {
    const what = `outputs[${i}]`;
    const isQuotient = typeof o === "object" && o !== null && (o as Record<string, unknown>)["denominator"] !== undefined;
    const out = asRecord(o, what, isQuotient ? ["name", "wire", "reveal", "denominator", "decimals"] : ["name", "wire", "reveal"]);
    const outName = asName(out["name"], `${what}.name`, IO_NAME_PATTERN);
    if (outputNames.has(outName)) throw invalid(`${what}: output name ${JSON.stringify(outName)} is used twice`, { at: what });
    outputNames.add(outName);
    const wire = asInteger(out["wire"], `${what}.wire`, 0, gates.length - 1);
    const reveal = out["reveal"];
    if (!(REVEAL_MODES as readonly unknown[]).includes(reveal)) {
      throw invalid(`${what}.reveal must be one of ${REVEAL_MODES.map((m) => JSON.stringify(m)).join(", ")}, got ${JSON.stringify(String(reveal))}`, {
        at: what,
      });
    }
    if (!isQuotient) return freezeDeep({ name: outName, wire, reveal: reveal as Reveal });
    const denominator = asInteger(out["denominator"], `${what}.denominator`, 0, gates.length - 1);
    const decimals = asInteger(out["decimals"], `${what}.decimals`, 0, PROGRAM_LIMITS.maxDecimals);
    checkQuotient(gates[wire]!, gates[denominator]!, reveal as Reveal, what);
    return freezeDeep({ name: outName, wire, reveal: reveal as Reveal, denominator, decimals });
  });

  const rawDerived = asArray(record["derived"], "program.derived");
  const derived: DerivedOutput[] = rawDerived.map((d, i) => {
    const what = `derived[${i}]`;
    const rec = asRecord(d, what, ["name", "op", "numerator", "denominator", "decimals"]);
    const derivedOp = rec["op"];
    if (!(DERIVED_OPS as readonly unknown[]).includes(derivedOp)) {
      throw invalid(`${what}.op must be one of ${DERIVED_OPS.map((m) => JSON.stringify(m)).join(", ")}, got ${JSON.stringify(String(derivedOp))}`, { at: what });
    }
    const dName = asName(rec["name"], `${what}.name`, IO_NAME_PATTERN);
    if (outputNames.has(dName)) throw invalid(`${what}: output name ${JSON.stringify(dName)} is used twice`, { at: what });
    const numerator = asName(rec["numerator"], `${what}.numerator`, IO_NAME_PATTERN);
    const source = outputs.find((o) => o.name === numerator);
    if (source === undefined) {
      throw invalid(`${what}.numerator names ${JSON.stringify(numerator)}, which is not an output of this program`, { at: what });
    }
    if (!isRanged(gates[source.wire]!.type)) {
      throw invalid(`${what}.numerator ${JSON.stringify(numerator)} is of type field; a ${String(derivedOp)} needs an int, fixed or bit output`, { at: what });
    }
    if (source.reveal !== "all" || isQuotientOutput(source)) {
      throw invalid(`${what}.numerator ${JSON.stringify(numerator)} must be a plain output revealed to all (not a quotient or a requester-only output)`, {
        at: what,
      });
    }
    const denominator = asConstant(rec["denominator"], `${what}.denominator`, form);
    if (denominator <= 0n) throw invalid(`${what}.denominator must be a positive integer, got ${denominator}`, { at: what });
    const decimals = asInteger(rec["decimals"], `${what}.decimals`, 0, PROGRAM_LIMITS.maxDecimals);
    outputNames.add(dName);
    return freezeDeep({ name: dName, op: derivedOp as DerivedOutput["op"], numerator, denominator, decimals });
  });

  // Canonical form has no dead code: every computed gate must feed an output
  // (inputs may be unused; they are the data owners' interface).
  const live = new Uint8Array(gates.length);
  for (const o of outputs) {
    live[o.wire] = 1;
    if (o.denominator !== undefined) live[o.denominator] = 1;
  }
  for (let i = gates.length - 1; i >= 0; i--) {
    const gate = gates[i]!;
    if (gate.op === "input") continue;
    if (live[i] === 0) throw invalid(`gates[${i}] (${gate.op}) does not contribute to any output`, { at: `gates[${i}]` });
    for (const a of gate.args) live[a] = 1;
  }

  const program: Program = Object.freeze({
    version: PROGRAM_VERSION,
    name,
    gates: Object.freeze(gates),
    outputs: Object.freeze(outputs),
    derived: Object.freeze(derived),
  });
  validated.add(program);
  return program;
}

/**
 * The rules of a quotient output numerator / denominator: both ranged, equal
 * lengths, reveal "all", and k_num + k_den <= 253 so that the opened field
 * element num · den^-1 determines the fraction uniquely (rational
 * reconstruction needs 2·|num|·|den| < r; P. S. Wang, "A p-adic algorithm
 * for univariate partial fractions", SYMSAC 1981).
 */
export function checkQuotient(numerator: Gate, denominator: Gate, reveal: Reveal, what: string): void {
  if (!isRanged(numerator.type) || !isRanged(denominator.type)) {
    throw invalid(`${what}: a quotient needs int, fixed or bit numerator and denominator, got ${describeType(numerator.type)} / ${describeType(denominator.type)}`, {
      at: what,
    });
  }
  if (numerator.length !== denominator.length) {
    throw invalid(`${what}: quotient numerator has length ${numerator.length}, denominator ${denominator.length}`, { at: what });
  }
  if (reveal !== "all") throw invalid(`${what}: a quotient output can only be revealed to all`, { at: what });
  const bits = typeBits(numerator.type) + typeBits(denominator.type);
  if (bits > QUOTIENT_MAX_BITS) {
    throw invalid(`${what}: numerator and denominator together have ${bits} bits; a quotient allows at most ${QUOTIENT_MAX_BITS}`, { at: what, bits });
  }
}

/** Largest k_num + k_den of a quotient output (see checkQuotient). */
export const QUOTIENT_MAX_BITS = 253;

/**
 * Validates a Program object (built by hand or received from code) and
 * returns it frozen; cheap for programs that came out of this module
 * (decodeProgram, ProgramBuilder.build, a previous validateProgram).
 */
export function validateProgram(program: Program): Program {
  if (validated.has(program)) return program;
  return checkProgram(program, "bigint");
}

/** k, the number of data owners the task must list: the program names owners 0..k-1. */
export function programDataOwnerCount(program: Program): number {
  let max = -1;
  for (const gate of validateProgram(program).gates) if (gate.op === "input" && gate.owner > max) max = gate.owner;
  return max + 1;
}

/** The input gates, in wire order. */
export function programInputs(program: Program): InputGate[] {
  return validateProgram(program).gates.filter((g): g is InputGate => g.op === "input");
}

/** The input gate called `name`; PROGRAM_INVALID if the program has none. */
export function findInput(program: Program, name: string): InputGate {
  const input = programInputs(program).find((g) => g.name === name);
  if (input === undefined) {
    throw invalid(`program ${JSON.stringify(program.name)} has no input named ${JSON.stringify(String(name))}`, { input: String(name) });
  }
  return input;
}

/** The output called `name`; PROGRAM_INVALID if the program has none. */
export function findOutput(program: Program, name: string): ProgramOutput {
  const output = validateProgram(program).outputs.find((o) => o.name === name);
  if (output === undefined) {
    throw invalid(`program ${JSON.stringify(program.name)} has no output named ${JSON.stringify(String(name))}`, { output: String(name) });
  }
  return output;
}

/** The type of output `output` (the type of the wire it opens). */
export function outputType(program: Program, output: ProgramOutput): SecretType {
  return program.gates[output.wire]!.type;
}
