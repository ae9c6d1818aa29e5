/**
 * Ready-made programs for common joint statistics. Each returns a validated
 * Program; encodeProgram gives the bytes a task commits to. Input names are
 * stable ("values-0", "values-1", ...: data owner i's input), so clients can
 * address them without reading the program.
 *
 * Phase 1 (linear gates only): totalAndMean. Later phases add the rest of the
 * library (variance, weighted sums, histograms, max/argmax, auctions,
 * set-intersection cardinality, linear regression) once multiplication and
 * comparison exist.
 */
import { ConsortError } from "../errors.ts";
import { ProgramBuilder } from "./program-builder.ts";
import { PROGRAM_LIMITS, type Program } from "./program.ts";
import { MAX_INPUT_BITS, int } from "./secret-types.ts";

function checkCount(value: unknown, what: string, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new ConsortError("PROGRAM_INVALID", `${what} must be an integer in [1, ${max}], got ${String(value)}`, { details: { [what]: String(value) } });
  }
  return value;
}

/** The input name of data owner `owner` in the standard programs. */
export function standardInputName(owner: number): string {
  return `values-${owner}`;
}

export interface TotalAndMeanOptions {
  /** Number of data owners k (the task lists exactly k). */
  owners: number;
  /** Values each owner contributes. */
  valuesPerOwner: number;
  /** Bit width of each value: int(bits), 1..128. */
  bits: number;
  /** Digits of the mean after the decimal point (default 2). */
  decimals?: number;
  /** Program name (default "total-and-mean"). */
  name?: string;
}

/**
 * Total and mean of all owners' values (e.g. the banks' private portfolio
 * values): owner i inputs `valuesPerOwner` int(bits) values as
 * "values-<i>"; outputs "total" (the exact sum, opened) and "mean" (total /
 * (owners · valuesPerOwner), a public ratio of the opened total that reveals
 * nothing more). The sum is computed element-wise across owners first, then
 * reduced: two gates whatever the number of owners.
 */
export function totalAndMean(options: TotalAndMeanOptions): Program {
  const owners = checkCount(options.owners, "owners", PROGRAM_LIMITS.maxDataOwners);
  const valuesPerOwner = checkCount(options.valuesPerOwner, "valuesPerOwner", PROGRAM_LIMITS.maxWireLength);
  const bits = checkCount(options.bits, "bits", MAX_INPUT_BITS);
  const p = new ProgramBuilder(options.name ?? "total-and-mean");
  const inputs = Array.from({ length: owners }, (_, i) =>
    p.input(standardInputName(i), { owner: i, type: int(bits), length: valuesPerOwner }),
  );
  const perPosition = p.sum(inputs);
  const total = valuesPerOwner === 1 ? perPosition : p.reduceSum(perPosition);
  p.output("total", total);
  p.outputRatio("mean", "total", BigInt(owners) * BigInt(valuesPerOwner), { decimals: options.decimals ?? 2 });
  return p.build();
}
