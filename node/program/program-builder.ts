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
 * results never wrap around mod r. build() drops computed wires that feed no
 * output and numbers the rest densely in creation order.
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
  inferGate,
  type Gate,
  type GateOp,
  type Program,
  type Reveal,
} from "./program.ts";
import { MAX_INPUT_BITS, checkSecretType, describeType, type SecretType } from "./secret-types.ts";

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
  | { op: Exclude<GateOp, "input">; args: number[]; constant?: bigint; type: SecretType; length: number };

export interface InputOptions {
  /** Index of the data owner in the task's ordered data-owner list. */
  owner: number;
  type: SecretType;
  /** Number of values (default 1). */
  length?: number;
}

export interface OutputOptions {
  /** Who learns the value; only "all" exists in v1. */
  reveal?: Reveal;
}

export interface RatioOptions {
  /** Digits after the decimal point, rounded half-to-even (default 6). */
  decimals?: number;
}

/** Reduces a field constant to its signed representative in [-(r-1)/2, (r-1)/2] (the canonical form). */
function signedRepresentative(c: bigint): bigint {
  let v = c % FR_MODULUS;
  if (v < 0n) v += FR_MODULUS;
  return v > SIGNED_MAX ? v - FR_MODULUS : v;
}

export class ProgramBuilder {
  readonly name: string;
  readonly #nodes: Node[] = [];
  readonly #outputs: { name: string; node: number; reveal: Reveal }[] = [];
  readonly #derived: { name: string; numerator: string; denominator: bigint; decimals: number }[] = [];
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

  #gate(op: Exclude<GateOp, "input">, operands: readonly WireRef[], constant?: bigint): WireRef {
    const args = operands.map((w) => {
      if (!(w instanceof WireRef)) throw invalid(`${op}: operands must be wires of this builder`);
      return w.indexIn(this);
    });
    const { type, length } = inferGate(op, operands, constant, op);
    return this.#push(constant === undefined ? { op, args, type, length } : { op, args, constant, type, length });
  }

  /** Declares a private input of data owner `owner`: `length` values of `type`. */
  input(name: string, options: InputOptions): WireRef {
    if (typeof name !== "string" || !IO_NAME_PATTERN.test(name)) {
      throw invalid(`input name must match ${String(IO_NAME_PATTERN)}, got ${JSON.stringify(String(name))}`);
    }
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

  /** Element-wise a + b. */
  add(a: WireRef, b: WireRef): WireRef {
    return this.#gate("add", [a, b]);
  }

  /** Element-wise sum of one or more wires (one wire is returned as is). */
  sum(wires: readonly WireRef[]): WireRef {
    if (!Array.isArray(wires) || wires.length === 0) throw invalid("sum needs at least one wire");
    if (wires.length === 1) {
      const only = wires[0]!;
      only.indexIn(this);
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
    const constant = a.type.kind === "field" ? signedRepresentative(BigInt(c)) : checkConstant(BigInt(c), "mulConst constant");
    return this.#gate("mulConst", [a], constant);
  }

  /**
   * Element-wise a + c for a public value c of a's type: an integer for int
   * and field wires, an exactly representable number for fixed wires (c ·
   * 2^frac must be an integer: "1.25" is fine with frac >= 2, "0.1" never is).
   */
  addConst(a: WireRef, c: bigint | number | string): WireRef {
    if (!(a instanceof WireRef)) throw invalid("addConst: operand must be a wire of this builder");
    let constant: bigint;
    if (a.type.kind === "fixed") {
      const q = typeof c === "bigint" ? { num: c, den: 1n } : typeof c === "number" ? rationalFromNumber(c) : typeof c === "string" ? parseDecimal(c) : undefined;
      if (q === undefined) throw invalid(`addConst: constant for ${describeType(a.type)} must be a decimal number`);
      const scaled = q.num << BigInt(a.type.frac);
      if (scaled % q.den !== 0n) {
        throw invalid(`addConst: constant ${String(c)} is not exactly representable in ${describeType(a.type)} (multiple of 2^-${a.type.frac})`);
      }
      constant = checkConstant(scaled / q.den, "addConst constant");
    } else {
      const v =
        typeof c === "bigint"
          ? c
          : typeof c === "number" && Number.isSafeInteger(c)
            ? BigInt(c)
            : typeof c === "string" && /^-?[0-9]+$/.test(c)
              ? BigInt(c)
              : undefined;
      if (v === undefined) throw invalid(`addConst: constant for ${describeType(a.type)} must be an integer, got ${String(c)}`);
      constant = a.type.kind === "field" ? signedRepresentative(v) : checkConstant(v, "addConst constant");
    }
    return this.#gate("addConst", [a], constant);
  }

  /** The sum of the elements of one wire (length 1). */
  reduceSum(a: WireRef): WireRef {
    return this.#gate("reduceSum", [a]);
  }

  /** Opens `wire` as output `name` (to all parties in v1). */
  output(name: string, wire: WireRef, options: OutputOptions = {}): void {
    if (typeof name !== "string" || !IO_NAME_PATTERN.test(name)) {
      throw invalid(`output name must match ${String(IO_NAME_PATTERN)}, got ${JSON.stringify(String(name))}`);
    }
    if (this.#outputNames.has(name)) throw invalid(`output name ${JSON.stringify(name)} is used twice`);
    if (!(wire instanceof WireRef)) throw invalid(`output ${JSON.stringify(name)}: not a wire of this builder`);
    const reveal = options.reveal ?? "all";
    if (!REVEAL_MODES.includes(reveal)) throw invalid(`output ${JSON.stringify(name)}: reveal must be one of ${REVEAL_MODES.join(", ")}`);
    this.#outputs.push({ name, node: wire.indexIn(this), reveal });
    this.#outputNames.add(name);
  }

  /**
   * A public output computed after opening: numerator / denominator,
   * element-wise, rounded half-to-even to `decimals` digits. `numerator` is
   * an output (its name or its wire) of int or fixed type; it reveals
   * nothing beyond that output.
   */
  outputRatio(name: string, numerator: string | WireRef, denominator: bigint | number, options: RatioOptions = {}): void {
    if (typeof name !== "string" || !IO_NAME_PATTERN.test(name)) {
      throw invalid(`output name must match ${String(IO_NAME_PATTERN)}, got ${JSON.stringify(String(name))}`);
    }
    if (this.#outputNames.has(name)) throw invalid(`output name ${JSON.stringify(name)} is used twice`);
    let source: string;
    if (numerator instanceof WireRef) {
      const node = numerator.indexIn(this);
      const found = this.#outputs.find((o) => o.node === node);
      if (found === undefined) throw invalid(`outputRatio ${JSON.stringify(name)}: its numerator wire is not an output; open it with output() first`);
      source = found.name;
    } else {
      if (!this.#outputs.some((o) => o.name === numerator)) {
        throw invalid(`outputRatio ${JSON.stringify(name)}: ${JSON.stringify(String(numerator))} is not an output`);
      }
      source = numerator;
    }
    const sourceNode = this.#outputs.find((o) => o.name === source)!.node;
    if (this.#nodes[sourceNode]!.type.kind === "field") {
      throw invalid(`outputRatio ${JSON.stringify(name)}: output ${JSON.stringify(source)} is of type field; a ratio needs an int or fixed output`);
    }
    if (typeof denominator === "number" && !Number.isSafeInteger(denominator)) {
      throw invalid(`outputRatio ${JSON.stringify(name)}: denominator must be a positive integer, got ${String(denominator)}`);
    }
    const d = BigInt(denominator);
    if (d <= 0n || d > SIGNED_MAX) throw invalid(`outputRatio ${JSON.stringify(name)}: denominator must be a positive integer below r/2, got ${d}`);
    const decimals = options.decimals ?? 6;
    if (!Number.isSafeInteger(decimals) || decimals < 0 || decimals > PROGRAM_LIMITS.maxDecimals) {
      throw invalid(`outputRatio ${JSON.stringify(name)}: decimals must be an integer in [0, ${PROGRAM_LIMITS.maxDecimals}]`);
    }
    this.#derived.push({ name, numerator: source, denominator: d, decimals });
    this.#outputNames.add(name);
  }

  /**
   * The finished program: computed wires that feed no output are dropped,
   * the rest numbered densely in creation order, then the whole program is
   * validated (checkProgram) and frozen.
   */
  build(): Program {
    const nodes = this.#nodes;
    const live = new Uint8Array(nodes.length);
    for (const o of this.#outputs) live[o.node] = 1;
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i]!;
      if (node.op === "input") live[i] = 1;
      else if (live[i] === 1) for (const a of node.args) live[a] = 1;
    }
    const newId = new Array<number>(nodes.length).fill(-1);
    const gates: Gate[] = [];
    for (let i = 0; i < nodes.length; i++) {
      if (live[i] === 0) continue;
      const node = nodes[i]!;
      const id = gates.length;
      newId[i] = id;
      if (node.op === "input") {
        gates.push({ id, op: "input", name: node.name, owner: node.owner, length: node.length, type: node.type });
      } else {
        const args = node.args.map((a) => newId[a]!);
        const base = { id, length: node.length, type: node.type };
        switch (node.op) {
          case "add":
            gates.push({ ...base, op: "add", args });
            break;
          case "sub":
            gates.push({ ...base, op: "sub", args: [args[0]!, args[1]!] });
            break;
          case "reduceSum":
            gates.push({ ...base, op: "reduceSum", args: [args[0]!] });
            break;
          case "mulConst":
          case "addConst":
            gates.push({ ...base, op: node.op, args: [args[0]!], constant: node.constant! });
            break;
        }
      }
    }
    return checkProgram(
      {
        version: PROGRAM_VERSION,
        name: this.name,
        gates,
        outputs: this.#outputs.map((o) => ({ name: o.name, wire: newId[o.node]!, reveal: o.reveal })),
        derived: this.#derived.map((d) => ({ op: "ratio", ...d })),
      },
      "bigint",
    );
  }
}
