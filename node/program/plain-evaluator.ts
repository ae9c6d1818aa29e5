/**
 * The plaintext reference semantics of a program: what the MPC must compute.
 *
 * int, fixed and bit wires are evaluated over the integers (fixed: on the
 * stored value · 2^frac), field wires mod r. Every intermediate is checked
 * against its wire's declared type, so this evaluator also checks the type
 * rules. Tests compare runProgram with it; an auditor who knows the inputs can
 * recompute a posted result with it (encodeResult(program, evaluatePlain(...))).
 *
 * Exactness: every op is deterministic except `trunc`, whose MPC protocol
 * rounds up with probability equal to the discarded fraction (Catrina and
 * Saxena's TruncPr). Here trunc rounds DOWN (floor); the MPC result of a
 * trunc is floor or floor + 1, so programs with trunc agree with this
 * evaluator up to one unit in the last place per truncation (more if a
 * truncated value feeds a comparison that the rounding can flip). Programs
 * without trunc agree exactly.
 */
import { ConsortError } from "../errors.ts";
import { FR_MODULUS, encodeSigned } from "../math/field.ts";
import { inputIntegers, type InputValue } from "./input-values.ts";
import { isQuotientOutput, programInputs, validateProgram, type ComputeGate, type OpenedOutputs, type Program } from "./program.ts";
import { describeType, inRange } from "./secret-types.ts";

function mod(x: bigint): bigint {
  const r = x % FR_MODULUS;
  return r < 0n ? r + FR_MODULUS : r;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** The reduced fraction num/den (den > 0), or [0, 0] for den = 0: the opened form of a quotient output. */
export function reducedFraction(num: bigint, den: bigint): [bigint, bigint] {
  if (den === 0n) return [0n, 0n];
  const g = gcd(num, den);
  const sign = den < 0n ? -1n : 1n;
  return [(sign * num) / g, (sign * den) / g];
}

function evaluateGate(gate: ComputeGate, wires: readonly (readonly bigint[])[]): bigint[] {
  const arg = (k: number): readonly bigint[] => wires[gate.args[k]!]!;
  const n = gate.length;
  const field = gate.type.kind === "field";
  const out = new Array<bigint>(n);
  switch (gate.op) {
    case "add":
      for (let i = 0; i < n; i++) {
        let acc = 0n;
        for (const a of gate.args) acc += wires[a]![i]!;
        out[i] = acc;
      }
      break;
    case "sub": {
      const a = arg(0);
      const b = arg(1);
      for (let i = 0; i < n; i++) out[i] = a[i]! - b[i]!;
      break;
    }
    case "mulConst": {
      const a = arg(0);
      for (let i = 0; i < n; i++) out[i] = a[i]! * gate.constant;
      break;
    }
    case "addConst": {
      const a = arg(0);
      for (let i = 0; i < n; i++) out[i] = a[i]! + gate.constant;
      break;
    }
    case "reduceSum":
      out[0] = arg(0).reduce((acc, v) => acc + v, 0n);
      break;
    case "segmentSum": {
      const a = arg(0);
      for (let i = 0; i < n; i++) {
        let acc = 0n;
        for (let j = 0; j < gate.size; j++) acc += a[i * gate.size + j]!;
        out[i] = acc;
      }
      break;
    }
    case "mul": {
      const a = arg(0);
      const b = arg(1);
      for (let i = 0; i < n; i++) out[i] = a[i]! * b[i]!;
      break;
    }
    case "dot": {
      const a = arg(0);
      const b = arg(1);
      let acc = 0n;
      for (let i = 0; i < a.length; i++) acc += a[i]! * b[i]!;
      out[0] = acc;
      break;
    }
    case "ltz": {
      const a = arg(0);
      for (let i = 0; i < n; i++) out[i] = a[i]! < 0n ? 1n : 0n;
      break;
    }
    case "eqz": {
      const a = arg(0);
      for (let i = 0; i < n; i++) out[i] = a[i]! === 0n ? 1n : 0n;
      break;
    }
    case "not": {
      const a = arg(0);
      for (let i = 0; i < n; i++) out[i] = 1n - a[i]!;
      break;
    }
    case "select": {
      const c = arg(0);
      const x = arg(1);
      const y = arg(2);
      for (let i = 0; i < n; i++) out[i] = c[i] === 1n ? x[i]! : y[i]!;
      break;
    }
    case "trunc": {
      const a = arg(0);
      const d = 1n << BigInt(gate.shift);
      for (let i = 0; i < n; i++) out[i] = floorDiv(a[i]!, d);
      break;
    }
    case "max":
    case "argmax":
    case "secondMax": {
      const a = arg(0);
      let best = 0;
      for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
      if (gate.op === "max") out[0] = a[best]!;
      else if (gate.op === "argmax") out[0] = BigInt(best);
      else {
        let second: bigint | undefined;
        for (let i = 0; i < a.length; i++) if (i !== best && (second === undefined || a[i]! > second)) second = a[i]!;
        out[0] = second!;
      }
      break;
    }
    case "concat": {
      let k = 0;
      for (const w of gate.args) for (const v of wires[w]!) out[k++] = v;
      break;
    }
    case "repeat": {
      const a = arg(0);
      for (let i = 0; i < n; i++) out[i] = a[Math.floor(i / gate.times)]!;
      break;
    }
    case "tile": {
      const a = arg(0);
      for (let i = 0; i < n; i++) out[i] = a[i % a.length]!;
      break;
    }
    case "slice": {
      const a = arg(0);
      for (let i = 0; i < n; i++) out[i] = a[gate.start + i]!;
      break;
    }
    case "setFrac": {
      const a = arg(0);
      for (let i = 0; i < n; i++) out[i] = a[i]!;
      break;
    }
  }
  if (field) return out.map(mod);
  const type = gate.type;
  for (let i = 0; i < n; i++) {
    if (!inRange(type, out[i]!)) {
      // The type rules guarantee this cannot happen; reaching it is a bug in inferGate.
      throw new ConsortError("INTERNAL", `gate ${gate.id} (${gate.op}) produced a value outside its type ${describeType(type)}`, {
        details: { gate: gate.id },
      });
    }
  }
  return out;
}

/**
 * Evaluates `program` on plaintext inputs (by input name, values as a data
 * owner writes them, see encodeInputValues) and returns every output exactly
 * as the MPC reveals it (field elements, signed embedding; a quotient as its
 * reduced fraction, see OpenedOutputs), by output name, requester-only
 * outputs included. Every declared input must be given, and no other.
 */
export function evaluatePlain(program: Program, inputs: Readonly<Record<string, readonly InputValue[]>>): OpenedOutputs {
  const p = validateProgram(program);
  const wires = evaluateWires(p, inputs);
  const outputs = new Map<string, bigint[]>();
  for (const o of p.outputs) {
    const values = wires[o.wire]!;
    if (isQuotientOutput(o)) {
      const den = wires[o.denominator]!;
      outputs.set(o.name, values.flatMap((v, i) => reducedFraction(v, den[i]!).map(encodeSigned)));
    } else {
      outputs.set(o.name, p.gates[o.wire]!.type.kind === "field" ? [...values] : values.map(encodeSigned));
    }
  }
  return outputs;
}

/**
 * The plaintext value of every wire (index = wire id): integers for int,
 * fixed (stored) and bit wires, elements of [0, r) for field wires. For
 * audits, debugging and the engine's privacy tests.
 */
export function evaluateWires(program: Program, inputs: Readonly<Record<string, readonly InputValue[]>>): bigint[][] {
  const p = validateProgram(program);
  if (typeof inputs !== "object" || inputs === null) {
    throw new ConsortError("PROGRAM_INVALID", "inputs must be an object mapping input names to value arrays");
  }
  const declared = new Set(programInputs(p).map((g) => g.name));
  for (const name of Object.keys(inputs)) {
    if (!declared.has(name)) {
      throw new ConsortError("PROGRAM_INVALID", `program ${JSON.stringify(p.name)} has no input named ${JSON.stringify(name)}`, {
        details: { input: name },
      });
    }
  }
  const wires: bigint[][] = [];
  for (const gate of p.gates) {
    if (gate.op === "input") {
      const values = Object.hasOwn(inputs, gate.name) ? inputs[gate.name] : undefined;
      if (values === undefined) {
        throw new ConsortError("PROGRAM_INVALID", `input ${JSON.stringify(gate.name)} is missing`, { details: { input: gate.name } });
      }
      wires.push(inputIntegers(p, gate.name, values));
    } else {
      wires.push(evaluateGate(gate, wires));
    }
  }
  return wires;
}
