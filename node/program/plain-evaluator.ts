/**
 * The plaintext reference semantics of a program: what the MPC must compute.
 *
 * int and fixed wires are evaluated over the integers (fixed: on the stored
 * value · 2^frac), field wires mod r. Every intermediate is checked against
 * its wire's declared type, so this evaluator also checks the type rules.
 * Tests compare runProgram with it; an auditor who knows the inputs can
 * recompute a posted result with it (encodeResult(program, evaluatePlain(...))).
 */
import { ConsortError } from "../errors.ts";
import { FR_MODULUS, encodeSigned } from "../math/field.ts";
import { inputIntegers, type InputValue } from "./input-values.ts";
import { programInputs, validateProgram, type Gate, type OpenedOutputs, type Program } from "./program.ts";
import { describeType, inRange } from "./secret-types.ts";

function mod(x: bigint): bigint {
  const r = x % FR_MODULUS;
  return r < 0n ? r + FR_MODULUS : r;
}

function evaluateGate(gate: Exclude<Gate, { op: "input" }>, wires: readonly (readonly bigint[])[]): bigint[] {
  const arg = (k: number): readonly bigint[] => wires[gate.args[k]!]!;
  const n = gate.length;
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
  }
  if (gate.type.kind === "field") return out.map(mod);
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
 * owner writes them, see encodeInputValues) and returns the outputs exactly
 * as the MPC opens them: field elements (signed embedding), by output name.
 * Every declared input must be given, and no other.
 */
export function evaluatePlain(program: Program, inputs: Readonly<Record<string, readonly InputValue[]>>): OpenedOutputs {
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
  const outputs = new Map<string, bigint[]>();
  for (const o of p.outputs) {
    const values = wires[o.wire]!;
    outputs.set(o.name, p.gates[o.wire]!.type.kind === "field" ? [...values] : values.map(encodeSigned));
  }
  return outputs;
}
