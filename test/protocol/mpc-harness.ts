/**
 * Test helpers (no tests here): data owners share inputs, n parties run a
 * program over one LocalNetwork, results are compared with the plaintext
 * reference.
 */
import { expect } from "chai";
import { ConsortError, type ConsortErrorCode } from "../../node/errors.ts";
import { decodeSigned } from "../../node/math/field.ts";
import { frVecAdd } from "../../node/math/fr-vec.ts";
import { deterministicRng } from "../../node/math/rng.ts";
import type { InputValue } from "../../node/program/input-values.ts";
import { evaluatePlain } from "../../node/program/plain-evaluator.ts";
import { programInputs, type OpenedOutputs, type Program } from "../../node/program/program.ts";
import { shareInput } from "../../node/protocol/input-sharing.ts";
import { LocalNetwork, type Interceptor } from "../../node/protocol/local-network.ts";
import { runProgram, type ProgramRun, type RunOptions } from "../../node/protocol/program-runner.ts";

/** The packed vector with 1 added to element 0 (still canonical): a wrong share. */
export function bumpFirst(v: Uint8Array): Uint8Array {
  const one = new Uint8Array(v.length);
  one[0] = 1;
  return frVecAdd(v, one);
}

export const honestMajority = (n: number): number => Math.floor((n - 1) / 2);

export interface HarnessOptions extends RunOptions {
  intercept?: Interceptor;
  recordTraffic?: boolean;
  timeoutMs?: number;
  seed?: string;
  /** Changes party `party`'s share of input `input` (element 0) before the run: a dishonest data owner. */
  tamperInput?: { party: number; input: string };
}

export interface HarnessRun {
  results: PromiseSettledResult<ProgramRun>[];
  network: LocalNetwork;
  /** shares[party].get(input): the packed shares each party received. */
  shares: Map<string, Uint8Array>[];
}

/** Shares every input, runs all n parties, closes the network. */
export async function runAll(
  program: Program,
  values: Readonly<Record<string, readonly InputValue[]>>,
  n: number,
  t: number = honestMajority(n),
  options: HarnessOptions = {},
): Promise<HarnessRun> {
  const seed = options.seed ?? "harness";
  const ownerRng = deterministicRng(`${seed}/data-owners/${n}`);
  const shares = Array.from({ length: n }, () => new Map<string, Uint8Array>());
  for (const input of programInputs(program)) {
    const byParty = shareInput(program, input.name, values[input.name]!, { threshold: t, parties: n }, ownerRng);
    byParty.forEach((vector, party) => shares[party]!.set(input.name, vector));
  }
  if (options.tamperInput !== undefined) {
    const vector = shares[options.tamperInput.party]!.get(options.tamperInput.input)!;
    shares[options.tamperInput.party]!.set(options.tamperInput.input, bumpFirst(vector));
  }
  const network = new LocalNetwork({
    parties: n,
    timeoutMs: options.timeoutMs ?? 20_000,
    ...(options.intercept === undefined ? {} : { intercept: options.intercept }),
    recordTraffic: options.recordTraffic ?? false,
  });
  const runOptions: RunOptions = {
    ...(options.bitMethod === undefined ? {} : { bitMethod: options.bitMethod }),
    ...(options.resharing === undefined ? {} : { resharing: options.resharing }),
  };
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, self) =>
      runProgram(program, { self, parties: n, threshold: t, rng: deterministicRng(`${seed}/party/${self}`), network: network.endpoint(self) }, shares[self]!, runOptions),
    ),
  );
  network.close();
  return { results, network, shares };
}

export function fulfilled(results: readonly PromiseSettledResult<ProgramRun>[]): ProgramRun[] {
  return results.map((r, i) => {
    if (r.status === "rejected") expect.fail(`party ${i} failed: ${String(r.reason)}${r.reason instanceof ConsortError ? ` (${r.reason.code})` : ""}`);
    return r.value;
  });
}

export function rejection(result: PromiseSettledResult<ProgramRun> | undefined, code: ConsortErrorCode): ConsortError {
  expect(result?.status).to.equal("rejected");
  const reason = (result as PromiseRejectedResult).reason;
  expect(reason).to.be.instanceOf(ConsortError);
  expect((reason as ConsortError).code, (reason as Error).message).to.equal(code);
  return reason as ConsortError;
}

/** The plaintext outputs revealed to all (what ProgramRun.opened must equal). */
export function plainRevealed(program: Program, values: Readonly<Record<string, readonly InputValue[]>>): OpenedOutputs {
  const all = evaluatePlain(program, values);
  return new Map([...all].filter(([name]) => program.outputs.find((o) => o.name === name)!.reveal === "all"));
}

/** Runs with n parties and expects every party to open exactly the plaintext outputs; returns the runs. */
export async function expectMatchesPlain(
  program: Program,
  values: Readonly<Record<string, readonly InputValue[]>>,
  n: number,
  options: HarnessOptions = {},
): Promise<ProgramRun[]> {
  const runs = fulfilled((await runAll(program, values, n, honestMajority(n), options)).results);
  const expected = plainRevealed(program, values);
  for (const run of runs) expect(run.opened).to.deep.equal(expected);
  return runs;
}

/** Signed values of output `name`. */
export function signedOutput(opened: OpenedOutputs, name: string): bigint[] {
  return opened.get(name)!.map(decodeSigned);
}
