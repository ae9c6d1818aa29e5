/**
 * The round structure of a run, predicted from the program alone.
 *
 * The engine (program-runner.ts) starts every gate at once and the round
 * batcher sends everything that is ready in one round, so each wire becomes
 * available after a number of rounds fixed by the program, n and t:
 *
 * - inputs: 0; local gates: the latest of their operands;
 * - mul, dot, select: operands + 1 (one degree reduction);
 * - preprocessing (preprocessing.ts): dealing in round 1 when anything is
 *   needed (random values, zeros, bounded integers ready after it), random
 *   bits after 1 more round ("square", or "xor" with t = 1) or
 *   ceil(log2(t + 1)) ("xor"), bit-pair products one round later;
 * - ltz / eqz of m-bit masks: the masked opening one round after both the
 *   operand and the bits are ready, then ceil(log2 ceil(m/2)) carry-tree
 *   rounds once the pair products are there too; trunc: the opening only;
 * - tournaments: per level a comparison, then one selection round (and for
 *   secondMax above the first level a second comparison and selection);
 * - quotient outputs: the masked inversion one round after the denominator
 *   (and the dealing); requester-only outputs need the dealing;
 * - the final round opens every output one round after all are ready.
 *
 * tests assert that every run takes exactly `rounds`: the schedule is
 * deterministic and the batching as early as possible.
 */
import type { Gate, Program } from "../program/program.ts";
import { isQuotientOutput, validateProgram } from "../program/program.ts";
import { typeBits, type RangedType } from "../program/secret-types.ts";
import { planProgram } from "./program-runner.ts";
import { addNeeds, bitMethodFor, type BitMethod } from "./preprocessing.ts";

/** Whether a gate needs communication. Exhaustive over the gate ops so new ops must decide. */
export function gateIsInteractive(gate: Gate): boolean {
  switch (gate.op) {
    case "input":
    case "add":
    case "sub":
    case "mulConst":
    case "addConst":
    case "reduceSum":
    case "segmentSum":
    case "not":
    case "setFrac":
    case "concat":
    case "repeat":
    case "tile":
    case "slice":
      return false;
    case "mul":
    case "dot":
    case "select":
    case "ltz":
    case "eqz":
    case "trunc":
    case "max":
    case "argmax":
    case "secondMax":
      return true;
  }
}

export interface RoundSchedule {
  /** Rounds a run takes, the final output round included. */
  readonly rounds: number;
  /** ready[w]: rounds completed when wire w is available (0 for inputs and wires computed from them locally). */
  readonly ready: readonly number[];
  /** Preprocessing: the round after which random values, zeros and bounded integers exist (0 if none are needed). */
  readonly dealt: number;
  /** The round after which the random bits exist (0 if none are needed). */
  readonly bitsReady: number;
  /** Multiplicative depth in rounds of the gates alone (the longest chain of interactive rounds, preprocessing excluded). */
  readonly interactiveGates: number;
}

/** The round schedule of `program` for n parties with threshold t (as runProgram executes it). */
export function scheduleProgram(program: Program, parties: number, threshold: number, method: BitMethod = bitMethodFor(parties, threshold)): RoundSchedule {
  const p = validateProgram(program);
  const plan = planProgram(p);
  const gates = p.gates;
  const total = addNeeds([...plan.needs.values()]);
  const dealt = total.randoms + total.zerosT + total.zeros2t + total.bits + total.bounded.length > 0 ? 1 : 0;
  const bitsReady = total.bits === 0 ? 0 : dealt + (method === "square" ? 1 : Math.ceil(Math.log2(threshold + 1)));
  const pairsReady = bitsReady + 1;
  const treeRounds = (m: number): number => Math.ceil(Math.log2(Math.ceil(m / 2)));
  /** Completion of a comparison of m-bit masks (with pair products when m >= 2) whose operand is ready at `operand`. */
  const compare = (operand: number, m: number): number => {
    const opened = Math.max(operand, bitsReady) + 1;
    return m >= 2 ? Math.max(opened, pairsReady) + treeRounds(m) : opened;
  };

  const ready = new Array<number>(gates.length).fill(0);
  const tournaments = new Map<number, number>();
  for (const gate of gates) {
    if (gate.op === "input") continue;
    const operands = Math.max(0, ...gate.args.map((a) => ready[a]!));
    const k = (i = 0): number => typeBits(gates[gate.args[i]!]!.type as RangedType);
    switch (gate.op) {
      case "mul":
      case "dot":
      case "select":
        ready[gate.id] = operands + 1;
        break;
      case "ltz":
        ready[gate.id] = k() <= 1 ? operands : compare(operands, k() - 1);
        break;
      case "eqz":
        ready[gate.id] = compare(operands, k());
        break;
      case "trunc":
        ready[gate.id] = Math.max(operands, bitsReady) + 1;
        break;
      case "max":
      case "argmax":
      case "secondMax": {
        const arg = gate.args[0];
        let done = tournaments.get(arg);
        if (done === undefined) {
          const wants = plan.tournaments.get(arg)!;
          const width = k() + 1;
          let current = operands;
          let level = 0;
          let size = gates[arg]!.length;
          while (size > 1) {
            current = compare(current, width - 1) + 1;
            if (wants.second && level > 0) current = compare(current, width - 1) + 1;
            size = Math.ceil(size / 2);
            level++;
          }
          done = current;
          tournaments.set(arg, done);
        }
        ready[gate.id] = done;
        break;
      }
      default:
        ready[gate.id] = operands;
    }
  }

  let final = 0;
  const inversions = new Map<number, number>();
  for (const o of p.outputs) {
    let at = ready[o.wire]!;
    if (isQuotientOutput(o)) {
      let inverted = inversions.get(o.denominator);
      if (inverted === undefined) {
        inverted = Math.max(ready[o.denominator]!, dealt) + 1;
        inversions.set(o.denominator, inverted);
      }
      at = Math.max(at, inverted);
    } else if (o.reveal === "requester") {
      at = Math.max(at, dealt);
    }
    final = Math.max(final, at);
  }
  // Longest chain of interactive gates, counted without preprocessing: for reports.
  const depth = new Array<number>(gates.length).fill(0);
  for (const gate of gates) {
    if (gate.op === "input") continue;
    depth[gate.id] = Math.max(0, ...gate.args.map((a) => depth[a]!)) + (gateIsInteractive(gate) ? 1 : 0);
  }
  return Object.freeze({
    rounds: final + 1,
    ready: Object.freeze(ready),
    dealt,
    bitsReady,
    interactiveGates: Math.max(0, ...p.outputs.map((o) => depth[o.wire]!)),
  });
}
