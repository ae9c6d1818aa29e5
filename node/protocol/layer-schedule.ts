/**
 * The evaluation schedule of a program: gates grouped by multiplicative
 * depth so that all independent interactive gates of one depth share one
 * communication round (one message per peer carrying the whole layer).
 *
 * depth(input) = 0; depth(local gate) = max depth of its operands;
 * depth(interactive gate) = 1 + max depth of its operands. Layer d runs its
 * interactive gates first (their operands all have depth < d, so they are
 * ready), then its local gates in wire order (these may read the layer's
 * interactive results). Outputs are opened together in one final round.
 *
 * Phase 1 programs are linear (every gate is local), so a schedule has one
 * layer and one round, the opening.
 */
import type { Gate, Program } from "../program/program.ts";
import { validateProgram } from "../program/program.ts";

export interface Layer {
  readonly depth: number;
  /** Interactive gates of this depth (batched into one round), ascending wire ids. */
  readonly interactive: readonly number[];
  /** Local gates of this depth (no communication), ascending wire ids. */
  readonly local: readonly number[];
}

export interface Schedule {
  readonly layers: readonly Layer[];
  /** Multiplicative depth: the number of layers with interactive gates. */
  readonly depth: number;
  /** The distinct wires opened as outputs, ascending. */
  readonly outputWires: readonly number[];
  /** Communication rounds of one run: one per interactive layer plus the opening. */
  readonly rounds: number;
  /** lastUse[w]: the last gate that reads wire w (gates.length for output wires), so the runner can free it. */
  readonly lastUse: readonly number[];
}

/** Whether a gate needs communication. Exhaustive over the gate ops so new ops must decide. */
export function gateIsInteractive(gate: Gate): boolean {
  switch (gate.op) {
    case "input":
    case "add":
    case "sub":
    case "mulConst":
    case "addConst":
    case "reduceSum":
      return false;
  }
}

const schedules = new WeakMap<Program, Schedule>();

/** The (cached) schedule of a program. */
export function scheduleProgram(program: Program): Schedule {
  const p = validateProgram(program);
  const cached = schedules.get(p);
  if (cached !== undefined) return cached;

  const gates = p.gates;
  const depth = new Array<number>(gates.length);
  let maxDepth = 0;
  for (const gate of gates) {
    if (gate.op === "input") {
      depth[gate.id] = 0;
      continue;
    }
    let d = 0;
    for (const a of gate.args) d = Math.max(d, depth[a]!);
    if (gateIsInteractive(gate)) d += 1;
    depth[gate.id] = d;
    maxDepth = Math.max(maxDepth, d);
  }

  const layers: { depth: number; interactive: number[]; local: number[] }[] = Array.from({ length: maxDepth + 1 }, (_, d) => ({
    depth: d,
    interactive: [],
    local: [],
  }));
  for (const gate of gates) {
    if (gate.op === "input") continue;
    const layer = layers[depth[gate.id]!]!;
    (gateIsInteractive(gate) ? layer.interactive : layer.local).push(gate.id);
  }

  const lastUse = new Array<number>(gates.length).fill(-1);
  for (const gate of gates) if (gate.op !== "input") for (const a of gate.args) lastUse[a] = gate.id;
  const outputWires = [...new Set(p.outputs.map((o) => o.wire))].sort((a, b) => a - b);
  for (const w of outputWires) lastUse[w] = gates.length;

  const interactiveLayers = layers.filter((l) => l.interactive.length > 0).length;
  const schedule: Schedule = Object.freeze({
    layers: Object.freeze(layers.map((l) => Object.freeze({ depth: l.depth, interactive: Object.freeze(l.interactive), local: Object.freeze(l.local) }))),
    depth: interactiveLayers,
    outputWires: Object.freeze(outputWires),
    rounds: interactiveLayers + 1,
    lastUse: Object.freeze(lastUse),
  });
  schedules.set(p, schedule);
  return schedule;
}
