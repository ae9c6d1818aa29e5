import { expect } from "chai";
import fc from "fast-check";
import { ConsortError } from "../../node/errors.ts";
import { FR_MODULUS, encodeSigned } from "../../node/math/field.ts";
import { frVecFromBigints, frVecToBigints } from "../../node/math/fr-vec.ts";
import { deterministicRng } from "../../node/math/rng.ts";
import { formatBinaryFixed } from "../../node/program/decimal.ts";
import type { InputValue } from "../../node/program/input-values.ts";
import { evaluatePlain } from "../../node/program/plain-evaluator.ts";
import { ProgramBuilder, type WireRef } from "../../node/program/program-builder.ts";
import { programInputs, type Program } from "../../node/program/program.ts";
import { encodeResult } from "../../node/program/result-encoding.ts";
import { field, fixed, int, rangeOf, type SecretType } from "../../node/program/secret-types.ts";
import { totalAndMean } from "../../node/program/standard-programs.ts";
import { LocalNetwork, type Interceptor } from "../../node/protocol/local-network.ts";
import { runProgram } from "../../node/protocol/program-runner.ts";
import { bumpFirst, fulfilled, honestMajority, rejection, runAll } from "./mpc-harness.ts";

// Random programs: random builder operations over random inputs (invalid combinations skipped).
const OPS = ["add", "sum", "sub", "neg", "mulConst", "addConst", "reduceSum"] as const;
const caseArb = fc.record({
  family: fc.constantFrom("int", "fixed", "field"),
  frac: fc.integer({ min: 0, max: 20 }),
  owners: fc.integer({ min: 1, max: 3 }),
  // Two lengths only, so element-wise gates often find operands of equal length.
  inputs: fc.array(fc.record({ owner: fc.nat(), bits: fc.integer({ min: 1, max: 128 }), length: fc.constantFrom(1, 3) }), {
    minLength: 1,
    maxLength: 4,
  }),
  ops: fc.array(
    fc.record({ op: fc.constantFrom(...OPS), a: fc.nat(), b: fc.nat(), c: fc.bigInt({ min: -(1n << 64n), max: 1n << 64n }) }),
    { maxLength: 12 },
  ),
  outputs: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
  // Value choices: 0 min, 1 max, 2 zero, 3 minus one, else uniform in range.
  picks: fc.array(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.bigInt({ min: 0n, max: (1n << 256n) - 1n })), { minLength: 20, maxLength: 20 }),
});

type CaseSpec = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function buildCase(spec: CaseSpec): { program: Program; values: Record<string, InputValue[]> } {
  const p = new ProgramBuilder("random-run");
  const owners = Math.min(spec.owners, spec.inputs.length);
  const pool: WireRef[] = spec.inputs.map((input, i) => {
    const type: SecretType = spec.family === "int" ? int(input.bits) : spec.family === "fixed" ? fixed(input.bits, spec.frac) : field();
    return p.input(`in${i}`, { owner: i < owners ? i : input.owner % owners, type, length: input.length });
  });
  for (const op of spec.ops) {
    const a = pool[op.a % pool.length]!;
    const b = pool[op.b % pool.length]!;
    try {
      const next =
        op.op === "add" ? p.add(a, b)
        : op.op === "sum" ? p.sum([a, b, b])
        : op.op === "sub" ? p.sub(a, b)
        : op.op === "neg" ? p.neg(a)
        : op.op === "mulConst" ? p.mulConst(a, op.c)
        : op.op === "addConst" ? p.addConst(a, op.c)
        : p.reduceSum(a);
      pool.push(next);
    } catch (error) {
      if (!(error instanceof ConsortError) || error.code !== "PROGRAM_INVALID") throw error;
    }
  }
  // out0 is the last wire built, so the operation chain feeds an output; the others are random.
  const outputWire = (o: number, i: number): WireRef => (i === 0 ? pool[pool.length - 1]! : pool[o % pool.length]!);
  spec.outputs.forEach((o, i) => p.output(`out${i}`, outputWire(o, i)));
  const first = pool[pool.length - 1]!;
  if (first.type.kind !== "field") p.outputRatio("ratio", "out0", 7n, { decimals: 3 });
  const program = p.build();

  let k = 0;
  const values: Record<string, InputValue[]> = {};
  for (const input of programInputs(program)) {
    values[input.name] = Array.from({ length: input.length }, () => {
      const [choice, random] = spec.picks[k++ % spec.picks.length]!;
      if (input.type.kind === "field") return choice === 0 || choice === 2 ? 0n : choice === 1 ? FR_MODULUS - 1n : random % FR_MODULUS;
      const { lo, hi } = rangeOf(input.type);
      const v = choice === 0 ? lo : choice === 1 ? hi : choice === 2 ? 0n : choice === 3 ? -1n : lo + (random % (hi - lo + 1n));
      // Fixed-point values travel as exact decimal strings, exercising the data owner's parser.
      return input.type.kind === "fixed" ? formatBinaryFixed(v, input.type.frac) : v;
    });
  }
  return { program, values };
}

describe("runProgram over the local network", () => {
  for (const n of [3, 5, 7]) {
    const t = honestMajority(n);
    it(`equals evaluatePlain for random programs and inputs, n = ${n}, t = ${t} (property)`, async () => {
      await fc.assert(
        fc.asyncProperty(caseArb, async (spec) => {
          const { program, values } = buildCase(spec);
          const expected = evaluatePlain(program, values);
          const { results, network } = await runAll(program, values, n, t);
          for (const run of fulfilled(results)) {
            expect(run.opened).to.deep.equal(expected);
            expect(encodeResult(program, run.opened)).to.deep.equal(encodeResult(program, expected));
            expect(run.rounds).to.equal(1);
          }
          // Linear programs need exactly one round: the opening, one message to each peer.
          for (let party = 0; party < n; party++) {
            const stats = network.stats(party);
            expect(stats.rounds).to.equal(1);
            expect(stats.messagesSent).to.equal(n - 1);
            expect(stats.messagesReceived).to.equal(n - 1);
          }
        }),
        { seed: 42, numRuns: n === 7 ? 25 : 40 },
      );
    });
  }

  it("computes the demo total and mean for a single data owner and for many", async () => {
    const single = totalAndMean({ owners: 1, valuesPerOwner: 4, bits: 64 });
    const values = { "values-0": [(1n << 63n) - 1n, -(1n << 63n), 0n, 12345n] };
    const { results } = await runAll(single, values, 3, 1);
    for (const run of fulfilled(results)) expect(run.opened).to.deep.equal(evaluatePlain(single, values));

    const many = totalAndMean({ owners: 6, valuesPerOwner: 50, bits: 32 });
    const manyValues = Object.fromEntries(Array.from({ length: 6 }, (_, o) => [`values-${o}`, Array.from({ length: 50 }, (_, i) => BigInt((o + 1) * i - 700))]));
    const run = await runAll(many, manyValues, 5, 2);
    for (const party of fulfilled(run.results)) expect(party.opened).to.deep.equal(evaluatePlain(many, manyValues));
  });

  it("opens a wire named by several outputs once", async () => {
    const p = new ProgramBuilder("twice");
    const x = p.input("x", { owner: 0, type: int(16), length: 2 });
    p.output("first", x);
    p.output("second", x);
    const program = p.build();
    const { results, network } = await runAll(program, { x: [-5n, 9n] }, 3, 1);
    for (const run of fulfilled(results)) {
      expect(run.opened).to.deep.equal(new Map([["first", [encodeSigned(-5n), 9n]], ["second", [encodeSigned(-5n), 9n]]]));
    }
    // Both outputs travel in the one opening round (one message per peer), each wire's shares once per output.
    expect(network.stats(0).messagesSent).to.equal(2);
    expect(network.stats(0).rounds).to.equal(1);
  });

  describe("privacy", () => {
    it("never puts a plaintext input value on the network (n = 3, t = 1)", async () => {
      const program = totalAndMean({ owners: 3, valuesPerOwner: 8, bits: 64 });
      const values: Record<string, bigint[]> = {};
      const rng = deterministicRng("privacy-inputs");
      for (let o = 0; o < 3; o++) {
        const random = Array.from({ length: 6 }, () => BigInt.asIntN(64, BigInt(`0x${Buffer.from(rng(8)).toString("hex")}`)));
        values[`values-${o}`] = [0n, BigInt(o + 1), ...random];
      }
      const secrets = new Set<bigint>();
      for (const list of Object.values(values)) for (const v of list) secrets.add(encodeSigned(v)).add(v < 0n ? -v : v);
      const { results, network } = await runAll(program, values, 3, 1, { recordTraffic: true });
      fulfilled(results);
      expect(network.traffic.length).to.equal(6);
      let scanned = 0;
      for (const message of network.traffic) {
        for (const element of frVecToBigints(message.bytes)) {
          expect(secrets.has(element), `message ${message.from} -> ${message.to} (${message.label}) carries an input value`).to.equal(false);
          scanned++;
        }
      }
      // Only the opening travels: one share of the total per message.
      expect(scanned).to.equal(6);
      // And the check itself can fire: the opened total is on the wire only as shares, never in the clear.
      const total = fulfilled(results)[0]!.opened.get("total")![0]!;
      expect(network.traffic.some((m) => frVecToBigints(m.bytes).includes(total))).to.equal(false);
    });
  });

  describe("faults", () => {
    const program = totalAndMean({ owners: 2, valuesPerOwner: 3, bits: 32 });
    const values = { "values-0": [1n, -2n, 3n], "values-1": [4n, 5n, -6n] };
    const corruptFrom =
      (bad: readonly number[]): Interceptor =>
      (m) =>
        bad.includes(m.from) && m.label.gate.startsWith("out") ? bumpFirst(m.payload) : undefined;

    for (const n of [3, 5, 7]) {
      const t = honestMajority(n);
      it(`detects a corrupted share during opening, n = ${n} = 2t + 1 (PROTOCOL_ABORTED, no unsound blame)`, async () => {
        const { results } = await runAll(program, values, n, t, { intercept: corruptFrom([1]) });
        for (let party = 0; party < n; party++) {
          if (party === 1) continue; // the faulty party received honest shares
          const error = rejection(results[party], "PROTOCOL_ABORTED");
          expect(error.details["suspectParty"]).to.equal(undefined);
          expect(error.details["suspectParties"]).to.deep.equal(Array.from({ length: n }, (_, j) => j).filter((j) => j !== party));
          // With n >= t + 3 one party alone explains the disagreement; it is reported as that, not as proven.
          expect(error.details["singleFaultParty"]).to.equal(n >= t + 3 ? 1 : undefined);
        }
      });
    }

    for (const [n, t] of [[4, 1], [6, 2]] as const) {
      it(`names the party whose share is off when that is sound, n = ${n} >= 2t + 2`, async () => {
        const { results } = await runAll(program, values, n, t, { intercept: corruptFrom([1]) });
        for (let party = 0; party < n; party++) {
          if (party === 1) continue;
          expect(rejection(results[party], "PROTOCOL_ABORTED").details["suspectParty"]).to.equal(1);
        }
      });
    }

    it("detects t colluding parties and does not let them frame an honest party (n = 5, t = 2)", async () => {
      // Parties 1 and 3 add 1 to their shares at x = 2 and x = 4: the five shares then lie on one
      // degree-2 polynomial except at x = 3 (honest party 2), the classic framing pattern.
      const { results } = await runAll(program, values, 5, 2, { intercept: corruptFrom([1, 3]) });
      for (const party of [0, 2, 4]) {
        const error = rejection(results[party], "PROTOCOL_ABORTED");
        expect(error.details["suspectParty"]).to.equal(undefined);
        expect(error.details["suspectParties"]).to.deep.equal([0, 1, 2, 3, 4].filter((j) => j !== party));
      }
      expect(rejection(results[0], "PROTOCOL_ABORTED").details["singleFaultParty"]).to.equal(2);
    });

    it("detects an inconsistent input sharing by a data owner and points at the share that is off (n = 6, t = 2)", async () => {
      const { results } = await runAll(program, values, 6, 2, { tamperInput: { party: 3, input: "values-1" } });
      for (let party = 0; party < 6; party++) expect(rejection(results[party], "PROTOCOL_ABORTED").details["suspectParty"]).to.equal(3);
    });

    it("rejects a message with the wrong number of elements, naming the sender", async () => {
      const { results } = await runAll(program, values, 3, 1, {
        intercept: (m) => (m.from === 2 ? frVecFromBigints([...frVecToBigints(m.payload), 0n]) : undefined),
      });
      for (const party of [0, 1]) expect(rejection(results[party], "PROTOCOL_INVALID_MESSAGE").details["party"]).to.equal(2);
      expect(results[2]!.status).to.equal("fulfilled");
    });

    it("rejects bytes that do not decode as field elements, naming the sender", async () => {
      const short = await runAll(program, values, 3, 1, { intercept: (m) => (m.from === 0 && m.to === 1 ? new Uint8Array(31) : undefined) });
      expect(rejection(short.results[1], "PROTOCOL_INVALID_MESSAGE").details["party"]).to.equal(0);
      const notCanonical = await runAll(program, values, 3, 1, {
        intercept: (m) => (m.from === 0 && m.to === 2 ? new Uint8Array(32).fill(0xff) : undefined),
      });
      expect(rejection(notCanonical.results[2], "PROTOCOL_INVALID_MESSAGE").details["party"]).to.equal(0);
    });

    it("times out when a party's messages are dropped (PROTOCOL_TIMEOUT naming it)", async () => {
      const { results } = await runAll(program, values, 3, 1, { intercept: (m) => (m.from === 2 ? null : undefined), timeoutMs: 50 });
      for (const party of [0, 1]) {
        const error = rejection(results[party], "PROTOCOL_TIMEOUT");
        expect(error.details["missing"]).to.deep.equal([2]);
        expect(error.retryable).to.equal(true);
      }
    });
  });

  describe("bad arguments", () => {
    const program = totalAndMean({ owners: 1, valuesPerOwner: 2, bits: 16 });
    const network = new LocalNetwork({ parties: 3 });
    const shares = new Map([["values-0", frVecFromBigints([1n, 2n])]]);
    const ctx = { self: 0, parties: 3, threshold: 1, rng: deterministicRng("x"), network: network.endpoint(0) };
    after(() => network.close());

    it("rejects contexts without an honest majority (CONFIG_INVALID)", async () => {
      for (const bad of [
        { threshold: 0 },
        { threshold: 2 },
        { parties: 2, threshold: 1 },
        { parties: 4, threshold: 2 },
        { self: 3 },
        { self: -1 },
        { parties: 256, threshold: 1 },
        { rng: undefined },
      ]) {
        const error = await runProgram(program, { ...ctx, ...bad } as never, shares).catch((e: unknown) => e);
        expect(error, JSON.stringify(bad)).to.be.instanceOf(ConsortError);
        expect((error as ConsortError).code, JSON.stringify(bad)).to.equal("CONFIG_INVALID");
      }
    });

    it("rejects malformed input shares (PROTOCOL_INVALID_MESSAGE)", async () => {
      const notCanonical = new Uint8Array(64).fill(0xff);
      for (const bad of [
        new Map(),
        new Map([["values-0", frVecFromBigints([1n])]]),
        new Map([["values-0", notCanonical]]),
        new Map([["values-0", new Uint8Array(63)]]),
        new Map([["values-0", [1n, 2n] as never]]),
        new Map([["values-0", frVecFromBigints([1n, 2n])], ["values-1", frVecFromBigints([1n, 2n])]]),
      ]) {
        const error = await runProgram(program, ctx, bad as never).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(ConsortError);
        expect((error as ConsortError).code).to.equal("PROTOCOL_INVALID_MESSAGE");
      }
    });
  });
});
