/**
 * The MPC engine: runs a committed program on Shamir shares (BGW, Ben-Or,
 * Goldwasser, Wigderson, STOC 1988) among n parties with threshold t,
 * 2t + 1 <= n (honest majority).
 *
 * Every wire holds this party's shares of a vector of secrets. Linear gates
 * are local: Shamir sharing is linear, so adding shares, multiplying them by
 * a public constant, or adding a public constant to every share (f + c has
 * constant term s + c and degree t) gives shares of the result. Outputs are
 * opened together in one round with error detection (share-opening.ts).
 *
 * The runner follows the layer schedule (layer-schedule.ts): interactive
 * gates of one multiplicative depth form one round; phase 1 programs are
 * linear, so the opening is the only round. The engine touches nothing but
 * `ctx.network` (no transport, chain or storage), which keeps it testable
 * in-process and reusable behind any transport.
 */
import { ConsortError } from "../errors.ts";
import { Fr } from "../math/field.ts";
import type { ComputeGate, OpenedOutputs, Program } from "../program/program.ts";
import { programInputs, validateProgram } from "../program/program.ts";
import { scheduleProgram } from "./layer-schedule.ts";
import { checkPartyContext, type PartyContext, type ProtocolLabel } from "./round-network.ts";
import { openToAll } from "./share-opening.ts";

/** This party's share vectors of the program's inputs, by input name (from the data owners). */
export type InputShares = ReadonlyMap<string, readonly bigint[]>;

function checkInputShares(program: Program, inputShares: InputShares): void {
  if (!(inputShares instanceof Map)) {
    throw new ConsortError("PROTOCOL_INVALID_MESSAGE", "input shares must be a Map from input name to share vector");
  }
  const inputs = programInputs(program);
  for (const name of inputShares.keys()) {
    if (!inputs.some((g) => g.name === name)) {
      throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `shares were given for ${JSON.stringify(String(name))}, which is not an input of program ${JSON.stringify(program.name)}`, {
        details: { input: String(name) },
      });
    }
  }
  for (const input of inputs) {
    const shares = inputShares.get(input.name);
    if (!Array.isArray(shares)) {
      throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `no shares of input ${JSON.stringify(input.name)} (data owner ${input.owner})`, {
        details: { input: input.name, owner: input.owner },
      });
    }
    if (shares.length !== input.length) {
      throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `input ${JSON.stringify(input.name)} has ${shares.length} shares, the program declares length ${input.length}`, {
        details: { input: input.name, expected: input.length, got: shares.length },
      });
    }
    for (let k = 0; k < shares.length; k++) {
      const y = shares[k];
      if (typeof y !== "bigint" || y < 0n || y >= Fr.ORDER) {
        throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `share ${k} of input ${JSON.stringify(input.name)} is not a field element`, {
          details: { input: input.name, index: k },
        });
      }
    }
  }
}

/** Evaluates one local (linear) gate on shares. */
function evaluateLocal(gate: ComputeGate, wires: readonly (readonly bigint[] | undefined)[]): bigint[] {
  const arg = (k: number): readonly bigint[] => wires[gate.args[k]!]!;
  const n = gate.length;
  const out = new Array<bigint>(n);
  switch (gate.op) {
    case "add": {
      const operands = gate.args.map((a) => wires[a]!);
      for (let i = 0; i < n; i++) {
        // Unreduced accumulation, one reduction per element.
        let acc = 0n;
        for (const v of operands) acc += v[i]!;
        out[i] = Fr.create(acc);
      }
      break;
    }
    case "sub": {
      const a = arg(0);
      const b = arg(1);
      for (let i = 0; i < n; i++) out[i] = Fr.sub(a[i]!, b[i]!);
      break;
    }
    case "mulConst": {
      const a = arg(0);
      const c = Fr.create(gate.constant);
      for (let i = 0; i < n; i++) out[i] = Fr.mul(a[i]!, c);
      break;
    }
    case "addConst": {
      const a = arg(0);
      const c = Fr.create(gate.constant);
      for (let i = 0; i < n; i++) out[i] = Fr.add(a[i]!, c);
      break;
    }
    case "reduceSum": {
      let acc = 0n;
      for (const v of arg(0)) acc += v;
      out[0] = Fr.create(acc);
      break;
    }
  }
  return out;
}

/**
 * Runs `program` as party ctx.self and returns the opened outputs (field
 * elements by output name; render them with encodeResult). `inputShares`
 * holds this party's shares of every input. Throws CONFIG_INVALID for a bad
 * context, PROTOCOL_INVALID_MESSAGE for malformed input shares or peer
 * messages, PROTOCOL_ABORTED when an opening detects inconsistent shares,
 * and whatever the network throws (PROTOCOL_TIMEOUT, ...).
 */
export async function runProgram(program: Program, ctx: PartyContext, inputShares: InputShares): Promise<OpenedOutputs> {
  const p = validateProgram(program);
  checkPartyContext(ctx);
  checkInputShares(p, inputShares);
  const schedule = scheduleProgram(p);

  const wires: (readonly bigint[] | undefined)[] = new Array(p.gates.length);
  for (const gate of p.gates) if (gate.op === "input") wires[gate.id] = inputShares.get(gate.name)!;

  let round = 0;
  for (const layer of schedule.layers) {
    if (layer.interactive.length > 0) {
      // Phase 1 has no interactive gates; gateIsInteractive() would have to change first.
      throw new ConsortError("INTERNAL", `layer ${layer.depth} has interactive gates, which this engine does not evaluate yet`);
    }
    for (const id of layer.local) {
      const gate = p.gates[id]! as ComputeGate;
      wires[id] = evaluateLocal(gate, wires);
      // Free operands nobody reads any more: bounds memory by the live frontier.
      for (const a of gate.args) if (schedule.lastUse[a] === id) wires[a] = undefined;
    }
  }

  // One round opens every output wire: the share vectors concatenated in wire order.
  const opened = schedule.outputWires;
  const offsets = new Map<number, number>();
  const concatenated: bigint[] = [];
  for (const w of opened) {
    offsets.set(w, concatenated.length);
    for (const y of wires[w]!) concatenated.push(y);
  }
  const label: ProtocolLabel = { round: round++, gate: `open:${opened[0]}-${opened[opened.length - 1]}` };
  const describe = (index: number): string => {
    for (const w of opened) {
      const start = offsets.get(w)!;
      if (index >= start && index < start + p.gates[w]!.length) {
        const names = p.outputs.filter((o) => o.wire === w).map((o) => o.name);
        return `output ${names.join("/")}[${index - start}]`;
      }
    }
    return `element ${index}`;
  };
  const values = await openToAll(ctx, label, concatenated, describe);

  const result = new Map<string, bigint[]>();
  for (const o of p.outputs) {
    const start = offsets.get(o.wire)!;
    result.set(o.name, values.slice(start, start + p.gates[o.wire]!.length));
  }
  return result;
}
