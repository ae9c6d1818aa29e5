/**
 * Committed programs: the circuit model, its type rules and its validation.
 *
 * A program is a list of gates in topological order. Gate i defines wire i
 * (dense ids: a gate may only read wires with smaller ids). Every wire is a
 * VECTOR of `length` field elements of one SecretType; gates act element-wise
 * (add, sub, mulConst, addConst) or reduce (reduceSum -> length 1), so one
 * gate covers a whole column of data and the engine batches per layer.
 *
 * Inputs are gates of op "input": each names its data owner by index into the
 * task's ordered data-owner list. Outputs open a wire; "derived" outputs are
 * public functions of opened outputs (a ratio to a public denominator, e.g. a
 * mean = opened total / public count), computed by everyone after opening:
 * they reveal nothing beyond the opened output they are derived from.
 *
 * Every Program value that leaves this module has been validated and frozen;
 * `validateProgram` checks (and freezes a copy of) programs built by hand.
 */
import { ConsortError } from "../errors.ts";
import { SIGNED_MAX, SIGNED_MIN } from "../math/field.ts";
import {
  MAX_INPUT_BITS,
  checkSecretType,
  describeType,
  field,
  isRanged,
  rangeOf,
  typeEquals,
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
  /** Operands of one n-ary add. */
  maxAddArgs: 65_536,
  /** Data owners one program may name: the registry's cap (createTask must fit the 2^24 per-transaction gas limit). */
  maxDataOwners: 256,
  /** Digits after the decimal point of a derived ratio. */
  maxDecimals: 64,
});

/** Names of the program, its inputs and outputs: ASCII, readable on a block explorer, no normalisation issues. */
export const PROGRAM_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
export const IO_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** Who learns an opened output. v1 opens to all parties; "requester" (output to the task's requester only) comes later. */
export type Reveal = "all";
export const REVEAL_MODES: readonly Reveal[] = Object.freeze(["all"]);

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
export type ComputeGate = AddGate | SubGate | MulConstGate | AddConstGate | ReduceSumGate;
export type Gate = InputGate | ComputeGate;
export type GateOp = Gate["op"];
export const GATE_OPS: readonly GateOp[] = Object.freeze(["input", "add", "sub", "mulConst", "addConst", "reduceSum"]);

export interface ProgramOutput {
  readonly name: string;
  readonly wire: number;
  readonly reveal: Reveal;
}

/**
 * A public output computed from an opened one: numerator / denominator,
 * element-wise, rounded half-to-even to `decimals` digits after the point.
 * The numerator's value is its decoded number (fixed: stored / 2^frac).
 */
export interface RatioOutput {
  readonly name: string;
  readonly op: "ratio";
  /** Name of an output in `outputs` of int or fixed type. */
  readonly numerator: string;
  /** A public positive integer. */
  readonly denominator: bigint;
  readonly decimals: number;
}
export type DerivedOutput = RatioOutput;

export interface Program {
  readonly version: typeof PROGRAM_VERSION;
  readonly name: string;
  readonly gates: readonly Gate[];
  readonly outputs: readonly ProgramOutput[];
  readonly derived: readonly DerivedOutput[];
}

/**
 * Opened output values, keyed by output name (secret outputs only, not
 * derived ones): each a vector of field elements in [0, r) of the output's
 * wire length. runProgram returns this; encodeResult renders it.
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

/** The (type, length) of a gate's wire given its operands; PROGRAM_INVALID naming `what` on a rule violation. */
export function inferGate(
  op: Exclude<GateOp, "input">,
  operands: readonly { readonly type: SecretType; readonly length: number }[],
  constant: bigint | undefined,
  what: string,
): { type: SecretType; length: number } {
  const first = operands[0];
  if (first === undefined) throw invalid(`${what} (${op}) has no operands`, { at: what });
  const arity = op === "add" ? undefined : op === "sub" ? 2 : 1;
  if (arity !== undefined && operands.length !== arity) {
    throw invalid(`${what} (${op}) takes ${arity} operand(s), got ${operands.length}`, { at: what });
  }
  if (op === "add" && (operands.length < 2 || operands.length > PROGRAM_LIMITS.maxAddArgs)) {
    throw invalid(`${what} (add) takes 2 to ${PROGRAM_LIMITS.maxAddArgs} operands, got ${operands.length}`, { at: what });
  }
  for (let i = 1; i < operands.length; i++) {
    const other = operands[i]!;
    if (other.length !== first.length) {
      throw invalid(`${what} (${op}): operand ${i} has length ${other.length}, operand 0 has length ${first.length}`, { at: what });
    }
    const sameFamily =
      other.type.kind === first.type.kind &&
      (first.type.kind !== "fixed" || (other.type.kind === "fixed" && other.type.frac === first.type.frac));
    if (!sameFamily) {
      throw invalid(
        `${what} (${op}): operand ${i} is ${describeType(other.type)}, operand 0 is ${describeType(first.type)} (operands must share kind and frac)`,
        { at: what },
      );
    }
  }
  if ((op === "mulConst" || op === "addConst") && constant === undefined) {
    throw invalid(`${what} (${op}) needs a constant`, { at: what });
  }
  const length = op === "reduceSum" ? 1 : first.length;
  if (!isRanged(first.type)) return { type: field(), length };

  const ranges = operands.map((o) => rangeOf(o.type as RangedType));
  let range: IntegerRange;
  switch (op) {
    case "add":
      range = ranges.reduce((acc, r) => ({ lo: acc.lo + r.lo, hi: acc.hi + r.hi }));
      break;
    case "sub":
      range = { lo: ranges[0]!.lo - ranges[1]!.hi, hi: ranges[0]!.hi - ranges[1]!.lo };
      break;
    case "mulConst": {
      const a = ranges[0]!.lo * constant!;
      const b = ranges[0]!.hi * constant!;
      range = a <= b ? { lo: a, hi: b } : { lo: b, hi: a };
      break;
    }
    case "addConst":
      range = { lo: ranges[0]!.lo + constant!, hi: ranges[0]!.hi + constant! };
      break;
    case "reduceSum": {
      const n = BigInt(first.length);
      range = { lo: ranges[0]!.lo * n, hi: ranges[0]!.hi * n };
      break;
    }
  }
  return { type: typeForRange(first.type, range, what), length };
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
  const present = Object.keys(record).sort();
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
  const gateOp = op as GateOp;
  const keys =
    gateOp === "input"
      ? ["id", "op", "name", "owner", "length", "type"]
      : gateOp === "mulConst" || gateOp === "addConst"
        ? ["id", "op", "args", "constant", "length", "type"]
        : ["id", "op", "args", "length", "type"];
  const record = asRecord(value, what, keys);
  const id = asInteger(record["id"], `${what}.id`, 0, Number.MAX_SAFE_INTEGER);
  if (id !== index) throw invalid(`${what}.id is ${id}; gate ids must be dense and equal the gate's index ${index}`, { at: what });
  const length = asInteger(record["length"], `${what}.length`, 1, PROGRAM_LIMITS.maxWireLength);

  if (gateOp === "input") {
    const type = checkSecretType(record["type"], `${what}.type`, MAX_INPUT_BITS);
    const name = asName(record["name"], `${what}.name`, IO_NAME_PATTERN);
    const owner = asInteger(record["owner"], `${what}.owner`, 0, PROGRAM_LIMITS.maxDataOwners - 1);
    return freezeDeep({ id, op: "input", name, owner, length, type });
  }

  const declared = checkSecretType(record["type"], `${what}.type`);
  const rawArgs = asArray(record["args"], `${what}.args`);
  const args = rawArgs.map((a, k) => {
    const ref = asInteger(a, `${what}.args[${k}]`, 0, Number.MAX_SAFE_INTEGER);
    if (ref >= index) {
      throw invalid(`${what}.args[${k}] refers to wire ${ref}, which is not defined before gate ${index}`, { at: what, wire: ref });
    }
    return ref;
  });
  const constant =
    gateOp === "mulConst" || gateOp === "addConst" ? asConstant(record["constant"], `${what}.constant`, form) : undefined;
  const inferred = inferGate(gateOp, args.map((a) => gates[a]!), constant, what);
  if (inferred.length !== length) {
    throw invalid(`${what}.length is ${length}, but its operands give length ${inferred.length}`, { at: what });
  }
  if (!typeEquals(inferred.type, declared)) {
    throw invalid(`${what}.type is ${describeType(declared)}, but the type rules give ${describeType(inferred.type)}`, { at: what });
  }
  const type = inferred.type;
  switch (gateOp) {
    case "add":
      return freezeDeep({ id, op: gateOp, args, length, type });
    case "sub":
      return freezeDeep({ id, op: gateOp, args: [args[0]!, args[1]!] as const, length, type });
    case "reduceSum":
      return freezeDeep({ id, op: gateOp, args: [args[0]!] as const, length, type });
    case "mulConst":
    case "addConst":
      return freezeDeep({ id, op: gateOp, args: [args[0]!] as const, constant: constant!, length, type });
  }
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
  for (let i = 0; i < rawGates.length; i++) {
    const gate = checkGate(rawGates[i], i, gates, form);
    totalElements += gate.length;
    if (totalElements > PROGRAM_LIMITS.maxTotalElements) {
      throw invalid(`program wires hold more than ${PROGRAM_LIMITS.maxTotalElements} elements in total (at gates[${i}])`, {
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
    const out = asRecord(o, what, ["name", "wire", "reveal"]);
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
    return freezeDeep({ name: outName, wire, reveal: reveal as Reveal });
  });

  const rawDerived = asArray(record["derived"], "program.derived");
  const derived: DerivedOutput[] = rawDerived.map((d, i) => {
    const what = `derived[${i}]`;
    const rec = asRecord(d, what, ["name", "op", "numerator", "denominator", "decimals"]);
    if (rec["op"] !== "ratio") throw invalid(`${what}.op must be "ratio", got ${JSON.stringify(String(rec["op"]))}`, { at: what });
    const dName = asName(rec["name"], `${what}.name`, IO_NAME_PATTERN);
    if (outputNames.has(dName)) throw invalid(`${what}: output name ${JSON.stringify(dName)} is used twice`, { at: what });
    const numerator = asName(rec["numerator"], `${what}.numerator`, IO_NAME_PATTERN);
    const source = outputs.find((o) => o.name === numerator);
    if (source === undefined) {
      throw invalid(`${what}.numerator names ${JSON.stringify(numerator)}, which is not an output of this program`, { at: what });
    }
    if (!isRanged(gates[source.wire]!.type)) {
      throw invalid(`${what}.numerator ${JSON.stringify(numerator)} is of type field; a ratio needs an int or fixed output`, { at: what });
    }
    const denominator = asConstant(rec["denominator"], `${what}.denominator`, form);
    if (denominator <= 0n) throw invalid(`${what}.denominator must be a positive integer, got ${denominator}`, { at: what });
    const decimals = asInteger(rec["decimals"], `${what}.decimals`, 0, PROGRAM_LIMITS.maxDecimals);
    outputNames.add(dName);
    return freezeDeep({ name: dName, op: "ratio", numerator, denominator, decimals });
  });

  // Canonical form has no dead code: every computed gate must feed an output
  // (inputs may be unused; they are the data owners' interface).
  const live = new Uint8Array(gates.length);
  for (const o of outputs) live[o.wire] = 1;
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

/** The type of output `output` (the type of the wire it opens). */
export function outputType(program: Program, output: ProgramOutput): SecretType {
  return program.gates[output.wire]!.type;
}
