/**
 * The MPC engine: runs a committed program on Shamir shares among n parties
 * with threshold t, 2t + 1 <= n (honest majority; BGW: M. Ben-Or, S.
 * Goldwasser, A. Wigderson, STOC 1988), secure against a semi-honest
 * adversary corrupting up to t parties; every opening checks that all n
 * shares lie on one polynomial, so inconsistent shares abort the run.
 *
 * Every wire holds this party's shares of a vector of secrets, packed
 * (node/math/fr-vec.ts). Linear gates are local (Shamir sharing is linear).
 * Interactive gates run their protocols: multiplication.ts (mul, dot,
 * select: GRR degree reduction), comparison.ts (ltz, eqz, trunc),
 * tournament.ts (max, argmax, secondMax), quotient.ts (quotient outputs),
 * requester-output.ts (requester-only outputs), all fed by the program's
 * randomness from preprocessing.ts.
 *
 * Scheduling: every gate is an asynchronous task started at once; it waits
 * for its operands, and whenever it needs the network it files a request
 * with the round batcher (round-batcher.ts), which sends everything filed
 * while all tasks wait as ONE message per peer. So independent gates share
 * rounds automatically (as soon as possible), the preprocessing overlaps the
 * first layers, and the round count is the program's depth in rounds. All
 * revealed outputs are opened together in one final round.
 *
 * Costs (k = operand bit width, m = k - 1, per element; "mult" = one GRR
 * reshared element: parties 0..2t each send n - 1 field elements):
 *
 *   gate / output        rounds after operands          mults online      preprocessing
 *   linear gates         0                              0                 -
 *   mul, select          1                              1                 -
 *   dot (length L)       1                              1 (not L)         -
 *   ltz (k-bit)          1 + ceil(log2 ceil(m/2))       ≈ m               m bits, 1 bounded, ⌊m/2⌋ mults
 *   eqz (k-bit)          1 + ceil(log2 ceil(k/2))       ceil(k/2) - 1     k bits, 1 bounded, ⌊k/2⌋ mults
 *   trunc (shift s)      1                              0                 s bits, 1 bounded
 *   max/argmax (L)       ceil(log2 L)·(ltz + 1)         (L-1)(ltz + 1..2) per comparison as ltz
 *   secondMax (L)        about twice max                                   twice as many comparisons
 *   quotient output      2 (inversion, final opening)   0 (masked 2t)     1 random, 2 zeros (2t)
 *   requester output     final round (digests)          0                 1 zero (t)
 *
 * Preprocessing adds 1 dealing round, then 1 ("square" bits, or "xor" with
 * t = 1) or 2 (t = 2, 3) bit rounds, all overlapping whatever else the
 * program can do; layer-schedule.ts predicts every run's round count
 * exactly (and the tests check it).
 *
 * The engine touches nothing but `ctx.network` (no transport, chain or
 * storage), which keeps it testable in-process and reusable behind any
 * transport.
 */
import { ConsortError, toConsortError } from "../errors.ts";
import {
  FR_VEC_ELEMENT_BYTES,
  frVecAdd,
  frVecAddConst,
  frVecCheck,
  frVecDot,
  frVecFromBigints,
  frVecMul,
  frVecNeg,
  frVecScale,
  frVecSub,
  frVecSum,
  frVecToBigints,
} from "../math/fr-vec.ts";
import { hashProgram } from "../program/program-encoding.ts";
import {
  isQuotientOutput,
  programInputs,
  validateProgram,
  type ComputeGate,
  type Gate,
  type OpenedOutputs,
  type Program,
  type TournamentGate,
} from "../program/program.ts";
import { rangeOf, typeBits, type RangedType } from "../program/secret-types.ts";
import { eqzNeeds, equalsZero, lessThanZero, ltzNeeds, prepareMasks, truncNeeds, truncate } from "./comparison.ts";
import { concatVectors, multiply, reshare } from "./multiplication.ts";
import { NO_NEEDS, Preprocessing, addNeeds, type BitMethod, type RandomnessNeeds } from "./preprocessing.ts";
import { invertShared, quotientNeeds, quotientPairs } from "./quotient.ts";
import {
  REQUESTER_SALT_BYTES,
  digestFromElements,
  digestToElements,
  requesterCommitment,
  requesterShareDigest,
  type RequesterOutputShare,
} from "./requester-output.ts";
import { PROGRAM_GATE, RoundBatcher } from "./round-batcher.ts";
import { attachRingResharing, ringResharingApplies } from "./ring-resharing.ts";
import { checkPartyContext, chunkedRng, type PartyContext } from "./round-network.ts";
import { openShares } from "./share-opening.ts";
import { tournament, tournamentNeeds, type TournamentWants } from "./tournament.ts";

const B = FR_VEC_ELEMENT_BYTES;

/** This party's share vectors of the program's inputs (packed), by input name (from the data owners). */
export type InputShares = ReadonlyMap<string, Uint8Array>;

/** What one run gives this party. */
export interface ProgramRun {
  /** The outputs revealed to all, as field elements (render with encodeResult). */
  readonly opened: OpenedOutputs;
  /** The commitment of every requester-only output (the same at every party; pass to encodeResult). */
  readonly commitments: ReadonlyMap<string, string>;
  /** This party's share of every requester-only output, to be sent (encrypted) to the requester. */
  readonly requesterShares: ReadonlyMap<string, RequesterOutputShare>;
  /** Communication rounds this run took. */
  readonly rounds: number;
}

/** Options for tests and benchmarks; production runs use the defaults. */
export interface RunOptions {
  /** Force a random-bit method (default: bitMethodFor(n, t); all parties must agree). */
  readonly bitMethod?: BitMethod;
  /**
   * Degree reduction: "ring" (the default where it applies: n = 3, t = 1;
   * ./ring-resharing.ts) or "grr" (./multiplication.ts; every n). All parties
   * must agree.
   */
  readonly resharing?: "ring" | "grr";
}

interface ProgramPlan {
  /** Randomness per gate id; quotient and requester outputs use the key gates.length. */
  readonly needs: ReadonlyMap<number, RandomnessNeeds>;
  /** For each tournament arg wire: what its gates want, the gate that owns the run, and how many gates read it. */
  readonly tournaments: ReadonlyMap<number, TournamentWants & { readonly owner: number; readonly gates: number }>;
  /** How many gates read each wire (outputs count as readers). */
  readonly readers: readonly number[];
}

const plans = new WeakMap<Program, ProgramPlan>();

const operandBits = (gates: readonly Gate[], gate: ComputeGate, k = 0): number => typeBits(gates[gate.args[k]!]!.type as RangedType);

/** Everything about a run that depends only on the program (cached). */
export function planProgram(program: Program): ProgramPlan {
  const p = validateProgram(program);
  const cached = plans.get(p);
  if (cached !== undefined) return cached;
  const gates = p.gates;
  const needs = new Map<number, RandomnessNeeds>();
  const tournaments = new Map<number, { max: boolean; argmax: boolean; second: boolean; owner: number; gates: number }>();
  for (const gate of gates) {
    if (gate.op === "input") continue;
    switch (gate.op) {
      case "ltz":
        needs.set(gate.id, ltzNeeds(operandBits(gates, gate), gate.length));
        break;
      case "eqz":
        needs.set(gate.id, eqzNeeds(operandBits(gates, gate), gate.length));
        break;
      case "trunc":
        needs.set(gate.id, truncNeeds(operandBits(gates, gate), gate.shift, gate.length));
        break;
      case "max":
      case "argmax":
      case "secondMax": {
        const arg = gate.args[0];
        const t = tournaments.get(arg) ?? { max: false, argmax: false, second: false, owner: gate.id, gates: 0 };
        t.gates++;
        if (gate.op === "max") t.max = true;
        if (gate.op === "argmax") t.argmax = true;
        if (gate.op === "secondMax") t.second = true;
        tournaments.set(arg, t);
        break;
      }
      default:
        break;
    }
  }
  for (const [arg, t] of tournaments) {
    needs.set(t.owner, tournamentNeeds(gates[arg]!.length, typeBits(gates[arg]!.type as RangedType), t.second));
  }
  const outputNeeds: RandomnessNeeds[] = [];
  for (const o of p.outputs) {
    const length = gates[o.wire]!.length;
    if (isQuotientOutput(o)) outputNeeds.push(quotientNeeds(length));
    else if (o.reveal === "requester") outputNeeds.push({ ...NO_NEEDS, zerosT: length });
  }
  if (outputNeeds.length > 0) needs.set(gates.length, addNeeds(outputNeeds));

  const readers = new Array<number>(gates.length).fill(0);
  for (const gate of gates) if (gate.op !== "input") for (const a of gate.args) readers[a]!++;
  for (const o of p.outputs) {
    readers[o.wire]!++;
    if (isQuotientOutput(o)) readers[o.denominator]!++;
  }
  const plan: ProgramPlan = { needs, tournaments, readers };
  plans.set(p, plan);
  return plan;
}

function checkInputShares(program: Program, inputShares: InputShares): void {
  if (!(inputShares instanceof Map)) {
    throw new ConsortError("PROTOCOL_INVALID_MESSAGE", "input shares must be a Map from input name to packed share vector");
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
    if (!(shares instanceof Uint8Array)) {
      throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `no shares of input ${JSON.stringify(input.name)} (data owner ${input.owner})`, {
        details: { input: input.name, owner: input.owner },
      });
    }
    if (shares.length !== input.length * B) {
      throw new ConsortError(
        "PROTOCOL_INVALID_MESSAGE",
        `input ${JSON.stringify(input.name)} has ${shares.length} bytes of shares, the program declares ${input.length} elements (${input.length * B} bytes)`,
        { details: { input: input.name, expected: input.length, gotBytes: shares.length } },
      );
    }
    try {
      frVecCheck(shares, `shares of input ${JSON.stringify(input.name)}`);
    } catch (cause) {
      throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `a share of input ${JSON.stringify(input.name)} is not a canonical field element`, {
        cause,
        details: { input: input.name, index: cause instanceof ConsortError ? cause.details["index"] : undefined },
      });
    }
  }
}

function repeatEach(a: Uint8Array, times: number): Uint8Array {
  const n = a.length / B;
  const out = new Uint8Array(a.length * times);
  for (let i = 0; i < n; i++) {
    const element = a.subarray(i * B, (i + 1) * B);
    for (let r = 0; r < times; r++) out.set(element, (i * times + r) * B);
  }
  return out;
}

function tileAll(a: Uint8Array, times: number): Uint8Array {
  const out = new Uint8Array(a.length * times);
  for (let r = 0; r < times; r++) out.set(a, r * a.length);
  return out;
}

function segmentSums(a: Uint8Array, size: number): Uint8Array {
  const groups = a.length / B / size;
  const sums: bigint[] = new Array(groups);
  for (let g = 0; g < groups; g++) sums[g] = frVecSum(a.subarray(g * size * B, (g + 1) * size * B));
  return frVecFromBigints(sums);
}

/** One local (communication-free) gate on shares. */
function evaluateLocal(gate: ComputeGate, args: readonly Uint8Array[]): Uint8Array {
  const a = args[0]!;
  switch (gate.op) {
    case "add":
      return args.reduce((acc, v) => frVecAdd(acc, v));
    case "sub":
      return frVecSub(a, args[1]!);
    case "mulConst":
      return frVecScale(a, gate.constant);
    case "addConst":
      // f + c has constant term s + c and degree t: adding c to every share adds c to the secret.
      return frVecAddConst(a, gate.constant);
    case "reduceSum":
      return frVecFromBigints([frVecSum(a)]);
    case "segmentSum":
      return segmentSums(a, gate.size);
    case "not":
      return frVecAddConst(frVecNeg(a), 1n);
    case "setFrac":
      return a;
    case "concat":
      return concatVectors(args);
    case "repeat":
      return repeatEach(a, gate.times);
    case "tile":
      return tileAll(a, gate.times);
    case "slice":
      return a.subarray(gate.start * B, gate.end * B);
    default:
      throw new ConsortError("INTERNAL", `gate ${gate.id} (${gate.op}) is not local`);
  }
}

/**
 * Runs `program` as party ctx.self and returns what this party learns (see
 * ProgramRun). `inputShares` holds this party's packed shares of every
 * input. Throws CONFIG_INVALID for a bad context, PROTOCOL_INVALID_MESSAGE
 * for malformed input shares or peer messages (naming the input or the
 * party), PROTOCOL_ABORTED when an opening detects inconsistent shares, and
 * whatever the network throws (PROTOCOL_TIMEOUT, ...).
 */
export async function runProgram(program: Program, partyContext: PartyContext, inputShares: InputShares, options: RunOptions = {}): Promise<ProgramRun> {
  const p = validateProgram(program);
  checkPartyContext(partyContext);
  checkInputShares(p, inputShares);
  // Batches draw megabytes of randomness at once; the CSPRNG takes at most 64 KiB per call.
  const ctx: PartyContext = { ...partyContext, rng: chunkedRng(partyContext.rng) };
  const plan = planProgram(p);
  const gates = p.gates;
  const batcher = new RoundBatcher(ctx);
  if (options.resharing !== "grr" && ringResharingApplies(ctx)) attachRingResharing(batcher, ctx);
  const prep = new Preprocessing(batcher, ctx, plan.needs, options.bitMethod);
  prep.start();

  const pendingReaders = [...plan.readers];
  const wires: (Promise<Uint8Array> | undefined)[] = new Array(gates.length);
  const tournaments = new Map<number, Promise<{ max: Uint8Array; argmax: Uint8Array; second: Uint8Array }>>();
  const all: Promise<unknown>[] = [];
  const track = <T>(promise: Promise<T>): Promise<T> => {
    // Every task's failure stops the run (the batcher refuses further rounds); nothing is left unhandled.
    promise.catch((error: unknown) => batcher.fail(error));
    all.push(promise);
    return promise;
  };
  const read = (wire: number): Promise<Uint8Array> => {
    const w = wires[wire]!;
    // Drop the reference once the last reader has it: memory follows the live frontier.
    if (--pendingReaders[wire]! === 0) wires[wire] = undefined;
    return w;
  };

  const evaluate = async (gate: ComputeGate): Promise<Uint8Array> => {
    const id = gate.id;
    switch (gate.op) {
      case "mul": {
        const [x, y] = await Promise.all([read(gate.args[0]), read(gate.args[1])]);
        return multiply(batcher, ctx, id, x, y);
      }
      case "dot": {
        const [x, y] = await Promise.all([read(gate.args[0]), read(gate.args[1])]);
        // Σ x_i·y_i of the shares is a degree-2t share of the dot product: one reshared element.
        return reshare(batcher, ctx, id, frVecFromBigints([frVecDot(x, y)]));
      }
      case "select": {
        const [c, x, y] = await Promise.all(gate.args.map(read));
        return frVecAdd(await multiply(batcher, ctx, id, c!, frVecSub(x!, y!)), y!);
      }
      case "ltz": {
        const k = operandBits(gates, gate);
        const input = read(gate.args[0]);
        const masks = k > 1 ? prepareMasks(batcher, ctx, id, prep.forGate(id), k - 1, gate.length, true) : undefined;
        masks?.catch(() => undefined);
        return lessThanZero(batcher, ctx, id, await input, k, masks === undefined ? undefined : await masks);
      }
      case "eqz": {
        const k = operandBits(gates, gate);
        const input = read(gate.args[0]);
        const masks = prepareMasks(batcher, ctx, id, prep.forGate(id), k, gate.length, true);
        masks.catch(() => undefined);
        return equalsZero(batcher, ctx, id, await input, k, await masks);
      }
      case "trunc": {
        const k = operandBits(gates, gate);
        const input = read(gate.args[0]);
        const masks = prepareMasks(batcher, ctx, id, prep.forGate(id), gate.shift, gate.length, false);
        masks.catch(() => undefined);
        return truncate(batcher, ctx, id, await input, k, await masks);
      }
      case "max":
      case "argmax":
      case "secondMax": {
        const result = await runTournament(gate);
        return gate.op === "max" ? result.max : gate.op === "argmax" ? result.argmax : result.second;
      }
      default: {
        const args = await Promise.all(gate.args.map(read));
        return evaluateLocal(gate, args);
      }
    }
  };

  const runTournament = (gate: TournamentGate): Promise<{ max: Uint8Array; argmax: Uint8Array; second: Uint8Array }> => {
    const arg = gate.args[0];
    let run = tournaments.get(arg);
    if (run === undefined) {
      const wants = plan.tournaments.get(arg)!;
      const type = gates[arg]!.type as RangedType;
      // Every tournament gate over this wire counts as a reader; the shared run reads it for all of them.
      const input = read(arg);
      for (let r = 1; r < wants.gates; r++) void read(arg);
      run = track(tournament(batcher, ctx, wants.owner, input, typeBits(type), rangeOf(type).lo, prep.forGate(wants.owner), wants, gates[arg]!.length));
      tournaments.set(arg, run);
    }
    return run;
  };

  for (const gate of gates) {
    if (gate.op === "input") wires[gate.id] = Promise.resolve(inputShares.get(gate.name)!);
    else wires[gate.id] = track(evaluate(gate));
  }

  try {
    const result = await track(finishOutputs(p, ctx, batcher, prep, read));
    return { ...result, rounds: batcher.rounds };
  } catch (error) {
    throw batcher.failure ?? toConsortError(error);
  }
}

/** Quotient inversions as soon as their denominators exist, then one final round for every output. */
async function finishOutputs(
  program: Program,
  ctx: PartyContext,
  batcher: RoundBatcher,
  prep: Preprocessing,
  read: (wire: number) => Promise<Uint8Array>,
): Promise<Omit<ProgramRun, "rounds">> {
  const gates = program.gates;
  const outputs = program.outputs;
  const randomness = outputs.some((o) => isQuotientOutput(o) || o.reveal === "requester") ? prep.forGate(gates.length) : undefined;
  // Offsets of each output's slice in the outputs' randomness (quotients: ρ and two zero masks; requester: zeros).
  let randomOffset = 0;
  let zero2tOffset = 0;
  let zeroTOffset = 0;
  const take = async (pool: Promise<Uint8Array> | undefined, offset: number, count: number): Promise<Uint8Array> =>
    (await pool!).subarray(offset * B, (offset + count) * B);

  // Quotients over one denominator wire share its inversion (e.g. a regression's slope and intercept).
  const inversions = new Map<number, Promise<{ inverse: Uint8Array; defined: boolean[] }>>();
  const prepared = outputs.map((o) => {
    const length = gates[o.wire]!.length;
    const value = read(o.wire);
    if (isQuotientOutput(o)) {
      const rho = take(randomness?.randoms, randomOffset, length);
      const z1 = take(randomness?.zeros2t, zero2tOffset, length);
      const z2 = take(randomness?.zeros2t, zero2tOffset + length, length);
      randomOffset += length;
      zero2tOffset += 2 * length;
      const den = read(o.denominator);
      let inversion = inversions.get(o.denominator);
      if (inversion === undefined) {
        inversion = (async () =>
          invertShared(batcher, ctx, PROGRAM_GATE, await den, await rho, await z1, (i) => `the masked denominator ${i} of quotient output ${JSON.stringify(o.name)}`))();
        inversions.set(o.denominator, inversion);
      }
      return { output: o, value, inversion, z2 };
    }
    if (o.reveal === "requester") {
      const zeros = take(randomness?.zerosT, zeroTOffset, length);
      zeroTOffset += length;
      return { output: o, value, zeros };
    }
    return { output: o, value };
  });
  // Everything ready before the final round (values, inversions, masks).
  const ready = await Promise.all(
    prepared.map(async (x) => ({
      ...x,
      value: await x.value,
      inversion: "inversion" in x ? await x.inversion : undefined,
      z2: "z2" in x ? await x.z2 : undefined,
      zeros: "zeros" in x ? await x.zeros : undefined,
    })),
  );

  // The final round: every opening and every digest exchange is filed now, so they travel together.
  // The program hash binds requester digests; hashing a large program is not free, so only when needed.
  const programHash = outputs.some((o) => o.reveal === "requester") ? hashProgram(program) : "";
  const opened = new Map<string, bigint[]>();
  const requesterShares = new Map<string, RequesterOutputShare>();
  const commitments = new Map<string, string>();
  const tasks = ready.map(async (x) => {
    const o = x.output;
    if (x.inversion !== undefined) {
      const masked = frVecAdd(frVecMul(x.value, x.inversion.inverse), x.z2!);
      const w = await openShares(batcher, ctx, PROGRAM_GATE, masked, {
        degree: 2 * ctx.threshold,
        kind: "out",
        describe: (i) => `quotient output ${JSON.stringify(o.name)}[${i}]`,
      });
      const numRange = rangeOf(gates[o.wire]!.type as RangedType);
      const denRange = rangeOf(gates[o.denominator!]!.type as RangedType);
      const abs = (r: { lo: bigint; hi: bigint }): bigint => (-r.lo > r.hi ? -r.lo : r.hi);
      opened.set(o.name, quotientPairs(w, x.inversion.defined, abs(numRange), abs(denRange), `output ${JSON.stringify(o.name)}`));
      return;
    }
    if (o.reveal === "requester") {
      const shares = frVecAdd(x.value, x.zeros!);
      const salt = ctx.rng(REQUESTER_SALT_BYTES);
      const digest = requesterShareDigest(programHash, o.name, ctx.self, salt, shares);
      const element = digestToElements(digest);
      const received = await batcher.request({
        gate: PROGRAM_GATE,
        kind: "out",
        send: Array.from({ length: ctx.parties }, () => element),
        expect: Array.from({ length: ctx.parties }, () => 2),
      });
      const digests = received.map((v, j) => {
        const d = digestFromElements(v);
        if (d === undefined) {
          throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `party ${j} sent a malformed share digest for requester output ${JSON.stringify(o.name)}`, {
            details: { party: j, output: o.name },
          });
        }
        return d;
      });
      const commitment = requesterCommitment(programHash, o.name, digests);
      commitments.set(o.name, commitment);
      requesterShares.set(o.name, { output: o.name, party: ctx.self, shares, salt, digests, commitment });
      return;
    }
    const values = await openShares(batcher, ctx, PROGRAM_GATE, x.value, { kind: "out", describe: (i) => `output ${JSON.stringify(o.name)}[${i}]` });
    opened.set(o.name, frVecToBigints(values));
  });
  await Promise.all(tasks);
  // Map insertion order follows the program's outputs.
  const ordered = new Map<string, bigint[]>();
  for (const o of outputs) if (opened.has(o.name)) ordered.set(o.name, opened.get(o.name)!);
  return { opened: ordered, commitments, requesterShares };
}
