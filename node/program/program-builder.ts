/**
 * A builder for committed programs:
 *
 *   const p = new ProgramBuilder("portfolio-total-and-mean");
 *   const a = p.input("bank0", { owner: 0, type: int(64), length: 3 });
 *   const b = p.input("bank1", { owner: 1, type: int(64), length: 3 });
 *   const total = p.reduceSum(p.add(a, b));
 *   p.output("total", total);
 *   p.outputRatio("mean", total, 6n, { decimals: 2 });
 *   const program = p.build();           // validated, frozen; encodeProgram(program) for the bytes
 *
 * Every operation checks its operands at once (PROGRAM_INVALID naming the
 * operation) and infers the result type, widening int/fixed bit widths so
 * results never wrap around mod r. Besides the gate ops of program.ts the
 * builder offers compositions (lt/le/gt/ge/eq/neq, and/or, min/argmin,
 * mulFixed, divConst, toFixed) that expand into those gates. build() drops
 * computed wires that feed no output and numbers the rest densely in
 * creation order.
 */
import { ConsortError } from "../errors.ts";
import { FR_MODULUS, SIGNED_MAX } from "../math/field.ts";
import { parseDecimal, rationalFromNumber } from "./decimal.ts";
import {
  IO_NAME_PATTERN,
  PROGRAM_LIMITS,
  PROGRAM_NAME_PATTERN,
  PROGRAM_VERSION,
  REVEAL_MODES,
  checkConstant,
  checkProgram,
  checkQuotient,
  inferGate,
  type ComputeOp,
  type Gate,
  type GateParams,
  type Program,
  type Reveal,
} from "./program.ts";
import { MAX_FRAC_BITS, MAX_INPUT_BITS, checkSecretType, describeType, typeBits, type SecretType } from "./secret-types.ts";

function invalid(message: string, details: Record<string, unknown> = {}): ConsortError {
  return new ConsortError("PROGRAM_INVALID", message, { details });
}

/** A handle to a wire of the program being built. */
export class WireRef {
  readonly type: SecretType;
  readonly length: number;
  readonly #builder: ProgramBuilder;
  readonly #index: number;

  constructor(builder: ProgramBuilder, index: number, type: SecretType, length: number) {
    this.#builder = builder;
    this.#index = index;
    this.type = type;
    this.length = length;
    Object.freeze(this);
  }

  /** The builder-local index (not the final wire id, which build() assigns). */
  indexIn(builder: ProgramBuilder): number {
    if (builder !== this.#builder) throw invalid("a wire of another ProgramBuilder was used");
    return this.#index;
  }
}

type Node =
  | { op: "input"; name: string; owner: number; type: SecretType; length: number }
  | { op: ComputeOp; args: number[]; params: GateParams; type: SecretType; length: number };

export interface InputOptions {
  /** Index of the data owner in the task's ordered data-owner list. */
  owner: number;
  type: SecretType;
  /** Number of values (default 1). */
  length?: number;
}

export interface OutputOptions {
  /** Who learns the value: every party ("all", the default) or only the task's requester. */
  reveal?: Reveal;
}

export interface RatioOptions {
  /** Digits after the decimal point, rounded half-to-even (default 6). */
  decimals?: number;
}

/** A public value for comparisons and addConst: an integer, or a decimal for fixed wires. */
export type PublicValue = bigint | number | string;

/** Reduces a field constant to its signed representative in [-(r-1)/2, (r-1)/2] (the canonical form). */
function signedRepresentative(c: bigint): bigint {
  let v = c % FR_MODULUS;
  if (v < 0n) v += FR_MODULUS;
  return v > SIGNED_MAX ? v - FR_MODULUS : v;
}

function checkName(name: unknown, what: string): string {
  if (typeof name !== "string" || !IO_NAME_PATTERN.test(name)) {
    throw invalid(`${what} must match ${String(IO_NAME_PATTERN)}, got ${JSON.stringify(String(name))}`);
  }
  return name;
}

function checkDecimals(decimals: unknown, what: string): number {
  if (typeof decimals !== "number" || !Number.isSafeInteger(decimals) || decimals < 0 || decimals > PROGRAM_LIMITS.maxDecimals) {
    throw invalid(`${what}: decimals must be an integer in [0, ${PROGRAM_LIMITS.maxDecimals}], got ${String(decimals)}`);
  }
  return decimals;
}

export class ProgramBuilder {
  readonly name: string;
  readonly #nodes: Node[] = [];
  readonly #outputs: { name: string; node: number; reveal: Reveal; denominator?: number; decimals?: number }[] = [];
  readonly #derived: { name: string; op: "ratio" | "sqrt"; numerator: string; denominator: bigint; decimals: number }[] = [];
  readonly #inputNames = new Set<string>();
  readonly #outputNames = new Set<string>();

  constructor(name: string) {
    if (typeof name !== "string" || !PROGRAM_NAME_PATTERN.test(name)) {
      throw invalid(`program name must match ${String(PROGRAM_NAME_PATTERN)}, got ${JSON.stringify(String(name))}`);
    }
    this.name = name;
  }

  #push(node: Node): WireRef {
    if (this.#nodes.length >= PROGRAM_LIMITS.maxGates) throw invalid(`a program may have at most ${PROGRAM_LIMITS.maxGates} gates`);
    this.#nodes.push(node);
    return new WireRef(this, this.#nodes.length - 1, node.type, node.length);
  }

  #index(w: WireRef, op: string): number {
    if (!(w instanceof WireRef)) throw invalid(`${op}: operands must be wires of this builder`);
    return w.indexIn(this);
  }

  #gate(op: ComputeOp, operands: readonly WireRef[], params: GateParams = {}): WireRef {
    if (!Array.isArray(operands)) throw invalid(`${op}: operands must be an array of wires`);
    const args = operands.map((w) => this.#index(w, op));
    const { type, length } = inferGate(op, operands, params, op);
    return this.#push({ op, args, params, type, length });
  }

  /** The stored integer of public value `c` in `type` (fixed: c · 2^frac, which must be exact). */
  #stored(type: SecretType, c: PublicValue, op: string): bigint {
    if (type.kind === "fixed") {
      const q = typeof c === "bigint" ? { num: c, den: 1n } : typeof c === "number" ? rationalFromNumber(c) : typeof c === "string" ? parseDecimal(c) : undefined;
      if (q === undefined) throw invalid(`${op}: constant for ${describeType(type)} must be a decimal number`);
      const scaled = q.num << BigInt(type.frac);
      if (scaled % q.den !== 0n) {
        throw invalid(`${op}: constant ${String(c)} is not exactly representable in ${describeType(type)} (multiple of 2^-${type.frac})`);
      }
      return checkConstant(scaled / q.den, `${op} constant`);
    }
    const v =
      typeof c === "bigint"
        ? c
        : typeof c === "number" && Number.isSafeInteger(c)
          ? BigInt(c)
          : typeof c === "string" && /^-?[0-9]+$/.test(c)
            ? BigInt(c)
            : undefined;
    if (v === undefined) throw invalid(`${op}: constant for ${describeType(type)} must be an integer, got ${String(c)}`);
    return type.kind === "field" ? signedRepresentative(v) : checkConstant(v, `${op} constant`);
  }

  #addStored(a: WireRef, stored: bigint): WireRef {
    return this.#gate("addConst", [a], { constant: stored });
  }

  /** Declares a private input of data owner `owner`: `length` values of `type`. */
  input(name: string, options: InputOptions): WireRef {
    checkName(name, "input name");
    if (this.#inputNames.has(name)) throw invalid(`input name ${JSON.stringify(name)} is used twice`);
    const { owner, length = 1 } = options;
    if (!Number.isSafeInteger(owner) || owner < 0 || owner >= PROGRAM_LIMITS.maxDataOwners) {
      throw invalid(`input ${JSON.stringify(name)}: owner must be an integer in [0, ${PROGRAM_LIMITS.maxDataOwners - 1}], got ${String(owner)}`);
    }
    if (!Number.isSafeInteger(length) || length < 1 || length > PROGRAM_LIMITS.maxWireLength) {
      throw invalid(`input ${JSON.stringify(name)}: length must be an integer in [1, ${PROGRAM_LIMITS.maxWireLength}], got ${String(length)}`);
    }
    const type = checkSecretType(options.type, `input ${JSON.stringify(name)} type`, MAX_INPUT_BITS);
    this.#inputNames.add(name);
    return this.#push({ op: "input", name, owner, type, length });
  }

  // ------------------------------------------------------------ linear, local

  /** Element-wise a + b. */
  add(a: WireRef, b: WireRef): WireRef {
    return this.#gate("add", [a, b]);
  }

  /** Element-wise sum of one or more wires (one wire is returned as is). */
  sum(wires: readonly WireRef[]): WireRef {
    if (!Array.isArray(wires) || wires.length === 0) throw invalid("sum needs at least one wire");
    if (wires.length === 1) {
      const only = wires[0]!;
      this.#index(only, "sum");
      return only;
    }
    return this.#gate("add", wires);
  }

  /** Element-wise a - b. */
  sub(a: WireRef, b: WireRef): WireRef {
    return this.#gate("sub", [a, b]);
  }

  /** Element-wise -a. */
  neg(a: WireRef): WireRef {
    return this.mulConst(a, -1n);
  }

  /**
   * Element-wise c · a for a public integer c (for fixed wires this scales
   * the value, frac unchanged; for field wires c is taken mod r).
   */
  mulConst(a: WireRef, c: bigint | number): WireRef {
    if (typeof c === "number" && !Number.isSafeInteger(c)) throw invalid(`mulConst: constant must be an integer, got ${String(c)}`);
    if (typeof c !== "bigint" && typeof c !== "number") throw invalid(`mulConst: constant must be a bigint or integer number, got ${typeof c}`);
    if (!(a instanceof WireRef)) throw invalid("mulConst: operand must be a wire of this builder");
    const constant = a.type.kind === "field" ? signedRepresentative(BigInt(c)) : checkConstant(BigInt(c), "mulConst constant");
    return this.#gate("mulConst", [a], { constant });
  }

  /**
   * Element-wise a + c for a public value c of a's type: an integer for int
   * and field wires, an exactly representable number for fixed wires (c ·
   * 2^frac must be an integer: "1.25" is fine with frac >= 2, "0.1" never is).
   */
  addConst(a: WireRef, c: PublicValue): WireRef {
    if (!(a instanceof WireRef)) throw invalid("addConst: operand must be a wire of this builder");
    return this.#addStored(a, this.#stored(a.type, c, "addConst"));
  }

  /** The sum of the elements of one wire (length 1). */
  reduceSum(a: WireRef): WireRef {
    return this.#gate("reduceSum", [a]);
  }

  /** Sums of consecutive groups of `size` elements (size must divide the length). */
  segmentSum(a: WireRef, size: number): WireRef {
    return this.#gate("segmentSum", [a], { size });
  }

  /** The wires one after another. */
  concat(wires: readonly WireRef[]): WireRef {
    if (!Array.isArray(wires) || wires.length === 0) throw invalid("concat needs at least one wire");
    if (wires.length === 1) {
      this.#index(wires[0]!, "concat");
      return wires[0]!;
    }
    return this.#gate("concat", wires);
  }

  /** Each element `times` times in a row: [a0, a0, a1, a1] for times = 2. */
  repeat(a: WireRef, times: number): WireRef {
    return times === 1 ? a : this.#gate("repeat", [a], { times });
  }

  /** The whole wire `times` times: [a0, a1, a0, a1] for times = 2. */
  tile(a: WireRef, times: number): WireRef {
    return times === 1 ? a : this.#gate("tile", [a], { times });
  }

  /** Elements [start, end) (end defaults to the length). */
  slice(a: WireRef, start: number, end: number = a.length): WireRef {
    return this.#gate("slice", [a], { start, end });
  }

  /** Element-wise 1 - a of a bit. */
  not(a: WireRef): WireRef {
    return this.#gate("not", [a]);
  }

  /** Reinterprets the stored integers as fixed(·, frac): value = stored / 2^frac (no computation). */
  setFrac(a: WireRef, frac: number): WireRef {
    return this.#gate("setFrac", [a], { frac });
  }

  /** int or bit -> fixed(·, frac) with the same value. */
  toFixed(a: WireRef, frac: number): WireRef {
    if (!(a instanceof WireRef)) throw invalid("toFixed: operand must be a wire of this builder");
    if (a.type.kind !== "int" && a.type.kind !== "bit") throw invalid(`toFixed: operand must be int or bit, got ${describeType(a.type)}`);
    if (!Number.isSafeInteger(frac) || frac < 0 || frac > MAX_FRAC_BITS) throw invalid(`toFixed: frac must be an integer in [0, ${MAX_FRAC_BITS}], got ${String(frac)}`);
    return this.setFrac(frac === 0 ? a : this.mulConst(a, 1n << BigInt(frac)), frac);
  }

  // ------------------------------------------------------- multiplications

  /** Element-wise a · b (of two bits: AND; fixed × fixed keeps both fracs, see mulFixed). */
  mul(a: WireRef, b: WireRef): WireRef {
    return this.#gate("mul", [a, b]);
  }

  /** Σ a_i · b_i: one degree reduction whatever the length. */
  dot(a: WireRef, b: WireRef): WireRef {
    return this.#gate("dot", [a, b]);
  }

  /** Element-wise c ? x : y for a bit wire c. */
  select(c: WireRef, x: WireRef, y: WireRef): WireRef {
    return this.#gate("select", [c, x, y]);
  }

  /** Element-wise AND of bits. */
  and(a: WireRef, b: WireRef): WireRef {
    if (a.type.kind !== "bit" || b.type.kind !== "bit") throw invalid(`and: operands must be bits, got ${describeType(a.type)} and ${describeType(b.type)}`);
    return this.mul(a, b);
  }

  /** Element-wise OR of bits: not(and(not a, not b)). */
  or(a: WireRef, b: WireRef): WireRef {
    return this.not(this.and(this.not(a), this.not(b)));
  }

  /**
   * Fixed-point product a · b with a's precision: the exact product (frac
   * fa + fb) truncated by fb bits (probabilistic rounding, error < 2^-fa).
   */
  mulFixed(a: WireRef, b: WireRef): WireRef {
    if (a.type.kind !== "fixed" || b.type.kind !== "fixed") {
      throw invalid(`mulFixed: operands must be fixed, got ${describeType(a.type)} and ${describeType(b.type)}`);
    }
    const product = this.mul(a, b);
    return b.type.frac === 0 ? product : this.trunc(product, b.type.frac);
  }

  /**
   * Probabilistic truncation of the stored integers by `shift` bits (round
   * down or up, unbiased): for fixed wires frac drops by shift, for int
   * wires this divides by 2^shift.
   */
  trunc(a: WireRef, shift: number): WireRef {
    return this.#gate("trunc", [a], { shift });
  }

  /**
   * Element-wise a / d for a public integer d > 0, in a's type (int: an
   * integer, fixed: same frac), by multiplying with c = round(2^s / d) and
   * truncating s bits (Catrina and Saxena, FC 2010). The result is within
   * 1 + 2^(k-s-2) units of the last place of the exact quotient (k = a's bit
   * width); s is chosen so that this is < 1 + 2^-6, and is exact up to the
   * rounding of trunc when d is a power of two.
   */
  divConst(a: WireRef, d: bigint | number): WireRef {
    if (!(a instanceof WireRef)) throw invalid("divConst: operand must be a wire of this builder");
    if (a.type.kind !== "int" && a.type.kind !== "fixed") throw invalid(`divConst: operand must be int or fixed, got ${describeType(a.type)}`);
    if (typeof d === "number" && !Number.isSafeInteger(d)) throw invalid(`divConst: divisor must be an integer, got ${String(d)}`);
    const divisor = BigInt(d);
    if (divisor <= 0n || divisor > SIGNED_MAX) throw invalid(`divConst: divisor must be a positive integer, got ${divisor}`);
    if (divisor === 1n) return a;
    // Truncating the stored integer: int wires directly; fixed wires keep frac by
    // reinterpreting with frac + s first (setFrac), so that trunc takes s back off.
    const fixedFrac = a.type.kind === "fixed" ? a.type.frac : undefined;
    const divideBy2 = (wire: WireRef, s: number): WireRef => {
      if (fixedFrac === undefined) return this.trunc(wire, s);
      if (fixedFrac + s > MAX_FRAC_BITS) {
        throw invalid(`divConst: dividing ${describeType(a.type)} needs ${fixedFrac + s} fractional bits in between, the limit is ${MAX_FRAC_BITS}`);
      }
      return this.trunc(this.setFrac(wire, fixedFrac + s), s);
    };
    if ((divisor & (divisor - 1n)) === 0n) return divideBy2(a, divisor.toString(2).length - 1);
    const s = typeBits(a.type) + 6;
    const c = ((1n << BigInt(s + 1)) / divisor + 1n) >> 1n; // round(2^s / d)
    return divideBy2(this.mulConst(a, c), s);
  }

  // ------------------------------------------------------------ comparisons

  /** Element-wise a < 0. */
  ltz(a: WireRef): WireRef {
    return this.#gate("ltz", [a]);
  }

  /** Element-wise a == 0. */
  eqz(a: WireRef): WireRef {
    return this.#gate("eqz", [a]);
  }

  /** a - b for a wire b, or a - c (in a's stored representation) for a public value c. */
  #minus(a: WireRef, b: WireRef | PublicValue, op: string): WireRef {
    if (b instanceof WireRef) return this.sub(a, b);
    if (!(a instanceof WireRef)) throw invalid(`${op}: operand must be a wire of this builder`);
    return this.#addStored(a, -this.#stored(a.type, b, op));
  }

  /** b - a for a wire b, or c - a for a public value c. */
  #reverseMinus(a: WireRef, b: WireRef | PublicValue, op: string): WireRef {
    if (b instanceof WireRef) return this.sub(b, a);
    if (!(a instanceof WireRef)) throw invalid(`${op}: operand must be a wire of this builder`);
    return this.#addStored(this.neg(a), this.#stored(a.type, b, op));
  }

  /** Element-wise a < b (b a wire or a public value). */
  lt(a: WireRef, b: WireRef | PublicValue): WireRef {
    return this.ltz(this.#minus(a, b, "lt"));
  }

  /** Element-wise a > b. */
  gt(a: WireRef, b: WireRef | PublicValue): WireRef {
    return this.ltz(this.#reverseMinus(a, b, "gt"));
  }

  /** Element-wise a <= b: not (a > b). */
  le(a: WireRef, b: WireRef | PublicValue): WireRef {
    return this.not(this.gt(a, b));
  }

  /** Element-wise a >= b: not (a < b). */
  ge(a: WireRef, b: WireRef | PublicValue): WireRef {
    return this.not(this.lt(a, b));
  }

  /** Element-wise a == b. */
  eq(a: WireRef, b: WireRef | PublicValue): WireRef {
    return this.eqz(this.#minus(a, b, "eq"));
  }

  /** Element-wise a != b. */
  neq(a: WireRef, b: WireRef | PublicValue): WireRef {
    return this.not(this.eq(a, b));
  }

  /** The largest element (length 1). */
  max(a: WireRef): WireRef {
    return this.#gate("max", [a]);
  }

  /** The index of the first largest element (ties go to the lowest index). */
  argmax(a: WireRef): WireRef {
    return this.#gate("argmax", [a]);
  }

  /** The largest element once one occurrence of the max is removed (needs length >= 2). */
  secondMax(a: WireRef): WireRef {
    return this.#gate("secondMax", [a]);
  }

  /** The smallest element: -max(-a). */
  min(a: WireRef): WireRef {
    return this.neg(this.max(this.neg(a)));
  }

  /** The index of the first smallest element. */
  argmin(a: WireRef): WireRef {
    return this.argmax(this.neg(a));
  }

  // ----------------------------------------------------------------- outputs

  #newOutputName(name: string): void {
    checkName(name, "output name");
    if (this.#outputNames.has(name)) throw invalid(`output name ${JSON.stringify(name)} is used twice`);
  }

  /** Reveals `wire` as output `name`: to all parties (default) or only to the requester. */
  output(name: string, wire: WireRef, options: OutputOptions = {}): void {
    this.#newOutputName(name);
    if (!(wire instanceof WireRef)) throw invalid(`output ${JSON.stringify(name)}: not a wire of this builder`);
    const reveal = options.reveal ?? "all";
    if (!REVEAL_MODES.includes(reveal)) throw invalid(`output ${JSON.stringify(name)}: reveal must be one of ${REVEAL_MODES.join(", ")}`);
    this.#outputs.push({ name, node: wire.indexIn(this), reveal });
    this.#outputNames.add(name);
  }

  /**
   * Reveals numerator / denominator (element-wise, both secret) as output
   * `name`: the exact quotient, rendered with `decimals` digits; nothing
   * about numerator or denominator beyond their ratio is revealed.
   */
  outputQuotient(name: string, numerator: WireRef, denominator: WireRef, options: RatioOptions = {}): void {
    this.#newOutputName(name);
    const decimals = checkDecimals(options.decimals ?? 6, `outputQuotient ${JSON.stringify(name)}`);
    const num = this.#index(numerator, "outputQuotient");
    const den = this.#index(denominator, "outputQuotient");
    const asGate = (w: WireRef, id: number): Gate => ({ id, op: "input", name: "x", owner: 0, length: w.length, type: w.type });
    checkQuotient(asGate(numerator, num), asGate(denominator, den), "all", `outputQuotient ${JSON.stringify(name)}`);
    this.#outputs.push({ name, node: num, reveal: "all", denominator: den, decimals });
    this.#outputNames.add(name);
  }

  #derivedSource(name: string, numerator: string | WireRef, op: string): string {
    let source: string;
    if (numerator instanceof WireRef) {
      const node = numerator.indexIn(this);
      const found = this.#outputs.find((o) => o.node === node && o.denominator === undefined && o.reveal === "all");
      if (found === undefined) throw invalid(`${op} ${JSON.stringify(name)}: its numerator wire is not an output; open it with output() first`);
      source = found.name;
    } else {
      if (!this.#outputs.some((o) => o.name === numerator)) {
        throw invalid(`${op} ${JSON.stringify(name)}: ${JSON.stringify(String(numerator))} is not an output`);
      }
      source = numerator;
    }
    const output = this.#outputs.find((o) => o.name === source)!;
    if (this.#nodes[output.node]!.type.kind === "field") {
      throw invalid(`${op} ${JSON.stringify(name)}: output ${JSON.stringify(source)} is of type field; it needs an int, fixed or bit output`);
    }
    if (output.reveal !== "all" || output.denominator !== undefined) {
      throw invalid(`${op} ${JSON.stringify(name)}: output ${JSON.stringify(source)} must be a plain output revealed to all`);
    }
    return source;
  }

  #derive(op: "ratio" | "sqrt", name: string, numerator: string | WireRef, denominator: bigint | number, options: RatioOptions): void {
    const what = op === "ratio" ? "outputRatio" : "outputSqrt";
    this.#newOutputName(name);
    const source = this.#derivedSource(name, numerator, what);
    if (typeof denominator === "number" && !Number.isSafeInteger(denominator)) {
      throw invalid(`${what} ${JSON.stringify(name)}: denominator must be a positive integer, got ${String(denominator)}`);
    }
    const d = BigInt(denominator);
    if (d <= 0n || d > SIGNED_MAX) throw invalid(`${what} ${JSON.stringify(name)}: denominator must be a positive integer below r/2, got ${d}`);
    const decimals = checkDecimals(options.decimals ?? 6, `${what} ${JSON.stringify(name)}`);
    this.#derived.push({ name, op, numerator: source, denominator: d, decimals });
    this.#outputNames.add(name);
  }

  /**
   * A public output computed after opening: numerator / denominator,
   * element-wise, rounded half-to-even to `decimals` digits. `numerator` is
   * an output (its name or its wire) of int, fixed or bit type; it reveals
   * nothing beyond that output.
   */
  outputRatio(name: string, numerator: string | WireRef, denominator: bigint | number, options: RatioOptions = {}): void {
    this.#derive("ratio", name, numerator, denominator, options);
  }

  /** Like outputRatio, but the square root of numerator / denominator (e.g. a standard deviation). */
  outputSqrt(name: string, numerator: string | WireRef, denominator: bigint | number, options: RatioOptions = {}): void {
    this.#derive("sqrt", name, numerator, denominator, options);
  }

  /**
   * The finished program: computed wires that feed no output are dropped,
   * the rest numbered densely in creation order, then the whole program is
   * validated (checkProgram) and frozen.
   */
  build(): Program {
    const nodes = this.#nodes;
    const live = new Uint8Array(nodes.length);
    for (const o of this.#outputs) {
      live[o.node] = 1;
      if (o.denominator !== undefined) live[o.denominator] = 1;
    }
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i]!;
      if (node.op === "input") live[i] = 1;
      else if (live[i] === 1) for (const a of node.args) live[a] = 1;
    }
    const newId = new Array<number>(nodes.length).fill(-1);
    const gates: unknown[] = [];
    for (let i = 0; i < nodes.length; i++) {
      if (live[i] === 0) continue;
      const node = nodes[i]!;
      const id = gates.length;
      newId[i] = id;
      if (node.op === "input") {
        gates.push({ id, op: "input", name: node.name, owner: node.owner, length: node.length, type: node.type });
      } else {
        gates.push({ id, op: node.op, args: node.args.map((a) => newId[a]!), ...node.params, length: node.length, type: node.type });
      }
    }
    return checkProgram(
      {
        version: PROGRAM_VERSION,
        name: this.name,
        gates,
        outputs: this.#outputs.map((o) =>
          o.denominator === undefined
            ? { name: o.name, wire: newId[o.node]!, reveal: o.reveal }
            : { name: o.name, wire: newId[o.node]!, reveal: o.reveal, denominator: newId[o.denominator]!, decimals: o.decimals },
        ),
        derived: this.#derived.map((d) => ({ ...d })),
      },
      "bigint",
    );
  }
}
