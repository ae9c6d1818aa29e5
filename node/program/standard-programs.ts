/**
 * Ready-made programs for common joint statistics. Each returns a validated
 * Program; encodeProgram gives the bytes a task commits to. Input names are
 * stable ("values-0", "values-1", ...: data owner i's input; "x-i"/"y-i",
 * "holdings-i"/"returns-i", "weights-i" where an owner has two inputs), so
 * clients can address them without reading the program.
 *
 * The library: totalAndMean (sum, mean), varianceAndStddev, dotProduct,
 * portfolioReturn and weightedSum (weighted sums), fixedMean (division by a
 * public constant in fixed point), histogram, countAbove, maxAndArgmax,
 * firstPriceAuction, secondPriceAuction, setIntersectionCardinality and
 * linearRegression. Each documents what it reveals (nothing beyond its
 * outputs) and, for fixed point, its error bound; the costs in rounds and
 * multiplications follow from the gates (node/protocol documents them).
 */
import { ConsortError } from "../errors.ts";
import { ProgramBuilder, type WireRef } from "./program-builder.ts";
import { PROGRAM_LIMITS, type Program } from "./program.ts";
import { MAX_INPUT_BITS, checkSecretType, describeType, fixed, int, type SecretType } from "./secret-types.ts";

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

function checkBits(value: unknown): number {
  return checkCount(value, "bits", MAX_INPUT_BITS);
}

function checkDecimals(value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > PROGRAM_LIMITS.maxDecimals) {
    throw new ConsortError("PROGRAM_INVALID", `decimals must be an integer in [0, ${PROGRAM_LIMITS.maxDecimals}], got ${String(value)}`);
  }
  return value;
}

/** Inputs "values-<i>" of `owners` owners, each `length` values of `type`, concatenated owner by owner. */
function ownerValues(p: ProgramBuilder, owners: number, length: number, type: SecretType): WireRef {
  return p.concat(Array.from({ length: owners }, (_, i) => p.input(standardInputName(i), { owner: i, type, length })));
}

export interface VarianceOptions {
  owners: number;
  valuesPerOwner: number;
  /** int(bits) values, 1..128. */
  bits: number;
  /** Sample variance (divide by n(n - 1)) instead of population variance (n²). Default false. */
  sample?: boolean;
  /** Digits of variance and stddev (default 6). */
  decimals?: number;
  name?: string;
}

/**
 * Variance and standard deviation of all owners' values (n = owners ·
 * valuesPerOwner of them). Computes V = n·Σx² − (Σx)² on shares: Σx² is ONE
 * dot product (one degree reduction for the whole vector) and (Σx)² one
 * multiplication, in the same round. Opens only "scaled-variance" = V
 * (= n²·σ² for the population variance), from which the derived outputs
 * "variance" = V / n² (or V / (n(n - 1)) with `sample`) and "stddev" = its
 * square root follow exactly (rounded half-to-even to `decimals` digits).
 * Reveals the variance and nothing else (not the mean, not the sums).
 */
export function varianceAndStddev(options: VarianceOptions): Program {
  const owners = checkCount(options.owners, "owners", PROGRAM_LIMITS.maxDataOwners);
  const valuesPerOwner = checkCount(options.valuesPerOwner, "valuesPerOwner", PROGRAM_LIMITS.maxWireLength);
  const bits = checkBits(options.bits);
  const n = BigInt(owners) * BigInt(valuesPerOwner);
  if (options.sample === true && n < 2n) throw new ConsortError("PROGRAM_INVALID", "a sample variance needs at least 2 values");
  const decimals = checkDecimals(options.decimals, 6);
  const p = new ProgramBuilder(options.name ?? "variance-and-stddev");
  const x = ownerValues(p, owners, valuesPerOwner, int(bits));
  const sum = p.reduceSum(x);
  const scaled = p.sub(p.mulConst(p.dot(x, x), n), p.mul(sum, sum));
  p.output("scaled-variance", scaled);
  const divisor = options.sample === true ? n * (n - 1n) : n * n;
  p.outputRatio("variance", "scaled-variance", divisor, { decimals });
  p.outputSqrt("stddev", "scaled-variance", divisor, { decimals });
  return p.build();
}

export interface DotProductOptions {
  /** Elements of each vector. */
  length: number;
  /** int(bits) elements, 1..128. */
  bits: number;
  name?: string;
}

/** Owner 0's vector "values-0" · owner 1's vector "values-1": output "dot", one degree reduction. */
export function dotProduct(options: DotProductOptions): Program {
  const length = checkCount(options.length, "length", PROGRAM_LIMITS.maxWireLength);
  const bits = checkBits(options.bits);
  const p = new ProgramBuilder(options.name ?? "dot-product");
  const a = p.input(standardInputName(0), { owner: 0, type: int(bits), length });
  const b = p.input(standardInputName(1), { owner: 1, type: int(bits), length });
  p.output("dot", p.dot(a, b));
  return p.build();
}

export interface PortfolioReturnOptions {
  /** Banks (data owners). */
  banks: number;
  /** Assets each bank reports on. */
  assets: number;
  /** int(holdingBits) holdings (units or currency), 1..128. */
  holdingBits: number;
  /** fixed(returnBits, returnFrac) returns (e.g. 0.0125 for 1.25 %). */
  returnBits: number;
  returnFrac: number;
  name?: string;
}

/**
 * The joint portfolio return Σ_banks Σ_assets holding · return: bank i inputs
 * "holdings-i" (int) and "returns-i" (fixed) per asset. All banks' vectors
 * are concatenated, so the whole sum is ONE dot product (one reshared
 * element, one round). Output "total-return" (fixed, exact: int × fixed
 * needs no truncation).
 */
export function portfolioReturn(options: PortfolioReturnOptions): Program {
  const banks = checkCount(options.banks, "banks", PROGRAM_LIMITS.maxDataOwners);
  const assets = checkCount(options.assets, "assets", PROGRAM_LIMITS.maxWireLength);
  const holdingBits = checkCount(options.holdingBits, "holdingBits", MAX_INPUT_BITS);
  const returnType = fixed(checkCount(options.returnBits, "returnBits", MAX_INPUT_BITS), options.returnFrac);
  const p = new ProgramBuilder(options.name ?? "portfolio-return");
  const holdings: WireRef[] = [];
  const returns: WireRef[] = [];
  for (let i = 0; i < banks; i++) {
    holdings.push(p.input(`holdings-${i}`, { owner: i, type: int(holdingBits), length: assets }));
    returns.push(p.input(`returns-${i}`, { owner: i, type: returnType, length: assets }));
  }
  p.output("total-return", p.dot(p.concat(holdings), p.concat(returns)));
  return p.build();
}

export interface WeightedSumOptions {
  owners: number;
  valuesPerOwner: number;
  /** Type of values and weights: fixed(bits, frac) with the same frac (or int). */
  valueType: SecretType;
  weightType: SecretType;
  name?: string;
}

/**
 * Σ value · weight over all owners (owner i inputs "values-i" and
 * "weights-i"), in fixed point with the values' precision: the exact dot
 * product has frac f_v + f_w and is truncated by f_w bits (TruncPr: rounded
 * down or up at random, unbiased). Error bound: |result − exact| < 2^-f_v
 * (one unit in the last place). Output "weighted-sum".
 */
export function weightedSum(options: WeightedSumOptions): Program {
  const owners = checkCount(options.owners, "owners", PROGRAM_LIMITS.maxDataOwners);
  const valuesPerOwner = checkCount(options.valuesPerOwner, "valuesPerOwner", PROGRAM_LIMITS.maxWireLength);
  const valueType = checkSecretType(options.valueType, "valueType", MAX_INPUT_BITS);
  const weightType = checkSecretType(options.weightType, "weightType", MAX_INPUT_BITS);
  if (valueType.kind === "field" || weightType.kind === "field" || valueType.kind === "bit" || weightType.kind === "bit") {
    throw new ConsortError("PROGRAM_INVALID", `weightedSum takes int or fixed values and weights, got ${describeType(valueType)} and ${describeType(weightType)}`);
  }
  const p = new ProgramBuilder(options.name ?? "weighted-sum");
  const values: WireRef[] = [];
  const weights: WireRef[] = [];
  for (let i = 0; i < owners; i++) {
    values.push(p.input(standardInputName(i), { owner: i, type: valueType, length: valuesPerOwner }));
    weights.push(p.input(`weights-${i}`, { owner: i, type: weightType, length: valuesPerOwner }));
  }
  const exact = p.dot(p.concat(values), p.concat(weights));
  const wFrac = weightType.kind === "fixed" ? weightType.frac : 0;
  p.output("weighted-sum", wFrac === 0 ? exact : p.trunc(exact, wFrac));
  return p.build();
}

export interface FixedMeanOptions {
  owners: number;
  valuesPerOwner: number;
  /** fixed(bits, frac) values. */
  bits: number;
  frac: number;
  name?: string;
}

/**
 * The mean of all owners' fixed-point values as a fixed-point number of the
 * same precision, by division by the public count (divConst: multiply by
 * round(2^s / n), truncate s bits). Error bound: |result − exact mean| <
 * (1 + 2^-6) · 2^-frac. Output "mean". (totalAndMean's derived "mean" is
 * exact; this one keeps the mean secret-shaped, e.g. to feed comparisons, and
 * demonstrates division by a public constant.)
 */
export function fixedMean(options: FixedMeanOptions): Program {
  const owners = checkCount(options.owners, "owners", PROGRAM_LIMITS.maxDataOwners);
  const valuesPerOwner = checkCount(options.valuesPerOwner, "valuesPerOwner", PROGRAM_LIMITS.maxWireLength);
  const type = fixed(checkBits(options.bits), options.frac);
  const p = new ProgramBuilder(options.name ?? "fixed-mean");
  const total = p.reduceSum(ownerValues(p, owners, valuesPerOwner, type));
  p.output("mean", p.divConst(total, BigInt(owners) * BigInt(valuesPerOwner)));
  return p.build();
}

export interface HistogramOptions {
  owners: number;
  valuesPerOwner: number;
  bits: number;
  /** Public bucket boundaries b_1 < b_2 < … < b_B (integers): B + 1 buckets. */
  boundaries: readonly (bigint | number)[];
  name?: string;
}

/**
 * Counts of all owners' values per public bucket: (-∞, b_1), [b_1, b_2), …,
 * [b_B, ∞). One comparison gate per boundary (all in the same rounds):
 * c_j = #{x < b_j}; bucket counts are differences of consecutive c_j.
 * Output "histogram" (B + 1 counts). Reveals the counts only.
 */
export function histogram(options: HistogramOptions): Program {
  const owners = checkCount(options.owners, "owners", PROGRAM_LIMITS.maxDataOwners);
  const valuesPerOwner = checkCount(options.valuesPerOwner, "valuesPerOwner", PROGRAM_LIMITS.maxWireLength);
  const bits = checkBits(options.bits);
  if (!Array.isArray(options.boundaries) || options.boundaries.length === 0 || options.boundaries.length > 1024) {
    throw new ConsortError("PROGRAM_INVALID", "histogram needs 1 to 1024 bucket boundaries");
  }
  const boundaries = options.boundaries.map((b, i) => {
    if (typeof b !== "bigint" && !(typeof b === "number" && Number.isSafeInteger(b))) {
      throw new ConsortError("PROGRAM_INVALID", `boundary ${i} must be an integer, got ${String(b)}`);
    }
    return BigInt(b);
  });
  for (let i = 1; i < boundaries.length; i++) {
    if (boundaries[i]! <= boundaries[i - 1]!) throw new ConsortError("PROGRAM_INVALID", `boundaries must increase strictly (boundary ${i} does not)`);
  }
  const p = new ProgramBuilder(options.name ?? "histogram");
  const x = ownerValues(p, owners, valuesPerOwner, int(bits));
  const below = boundaries.map((b) => p.reduceSum(p.lt(x, b)));
  const n = owners * valuesPerOwner;
  const buckets: WireRef[] = [below[0]!];
  for (let j = 1; j < below.length; j++) buckets.push(p.sub(below[j]!, below[j - 1]!));
  buckets.push(p.addConst(p.neg(below[below.length - 1]!), n));
  p.output("histogram", p.concat(buckets));
  return p.build();
}

export interface CountAboveOptions {
  owners: number;
  valuesPerOwner: number;
  bits: number;
  /** Public threshold: counts values strictly greater. */
  threshold: bigint | number;
  name?: string;
}

/** #{x > threshold} over all owners' values: one comparison gate, output "count". */
export function countAbove(options: CountAboveOptions): Program {
  const owners = checkCount(options.owners, "owners", PROGRAM_LIMITS.maxDataOwners);
  const valuesPerOwner = checkCount(options.valuesPerOwner, "valuesPerOwner", PROGRAM_LIMITS.maxWireLength);
  const bits = checkBits(options.bits);
  const p = new ProgramBuilder(options.name ?? "count-above");
  const x = ownerValues(p, owners, valuesPerOwner, int(bits));
  p.output("count", p.reduceSum(p.gt(x, options.threshold)));
  return p.build();
}

export interface MaxOptions {
  owners: number;
  valuesPerOwner: number;
  bits: number;
  name?: string;
}

/**
 * The largest of all owners' values ("max") and its position ("argmax": the
 * index into the owners' values concatenated owner by owner, so owner =
 * argmax / valuesPerOwner; ties go to the lowest index). One tournament.
 */
export function maxAndArgmax(options: MaxOptions): Program {
  const owners = checkCount(options.owners, "owners", PROGRAM_LIMITS.maxDataOwners);
  const valuesPerOwner = checkCount(options.valuesPerOwner, "valuesPerOwner", PROGRAM_LIMITS.maxWireLength);
  const bits = checkBits(options.bits);
  const p = new ProgramBuilder(options.name ?? "max-and-argmax");
  const x = ownerValues(p, owners, valuesPerOwner, int(bits));
  p.output("max", p.max(x));
  p.output("argmax", p.argmax(x));
  return p.build();
}

export interface AuctionOptions {
  /** Bidders (data owners), each with one sealed bid "values-i". */
  bidders: number;
  /** int(bits) bids. */
  bits: number;
  name?: string;
}

/**
 * First-price sealed-bid auction: "winner" is the bidder with the highest bid
 * (ties: the lowest bidder index), "price" that bid. Nothing else about the
 * bids is revealed.
 */
export function firstPriceAuction(options: AuctionOptions): Program {
  const bidders = checkCount(options.bidders, "bidders", PROGRAM_LIMITS.maxDataOwners);
  const p = new ProgramBuilder(options.name ?? "first-price-auction");
  const bids = ownerValues(p, bidders, 1, int(checkBits(options.bits)));
  p.output("winner", p.argmax(bids));
  p.output("price", p.max(bids));
  return p.build();
}

/**
 * Second-price (Vickrey) sealed-bid auction: "winner" as in the first-price
 * auction, "price" the highest bid once the winner's bid is removed (equal
 * top bids: price = that bid). Needs at least 2 bidders.
 */
export function secondPriceAuction(options: AuctionOptions): Program {
  const bidders = checkCount(options.bidders, "bidders", PROGRAM_LIMITS.maxDataOwners);
  if (bidders < 2) throw new ConsortError("PROGRAM_INVALID", "a second-price auction needs at least 2 bidders");
  const p = new ProgramBuilder(options.name ?? "second-price-auction");
  const bids = ownerValues(p, bidders, 1, int(checkBits(options.bits)));
  p.output("winner", p.argmax(bids));
  p.output("price", p.secondMax(bids));
  return p.build();
}

export interface SetIntersectionOptions {
  /** Owners (>= 2); owner i inputs "values-i", a list of IDs. */
  owners: number;
  /** IDs per owner: one number for all, or one per owner. */
  idsPerOwner: number | readonly number[];
  /** int(bits) IDs (e.g. a 64-bit hash of an account number). */
  bits: number;
  name?: string;
}

/**
 * Cardinality of the intersection of the owners' private ID lists: the number
 * of entries of owner 0's list that occur in every other owner's list (the
 * intersection's size when owner 0's IDs are distinct; duplicates in the
 * other lists do not matter). For each other owner o: all |L0|·|Lo|
 * equality tests at once (repeat/tile, one eqz gate), matches per entry of
 * L0 (segmentSum), presence = not(eqz(matches)); presences are ANDed across
 * owners and summed. Output "cardinality"; nothing else is revealed.
 */
export function setIntersectionCardinality(options: SetIntersectionOptions): Program {
  const owners = checkCount(options.owners, "owners", PROGRAM_LIMITS.maxDataOwners);
  if (owners < 2) throw new ConsortError("PROGRAM_INVALID", "a set intersection needs at least 2 owners");
  const sizes = Array.from({ length: owners }, (_, i) =>
    checkCount(typeof options.idsPerOwner === "number" ? options.idsPerOwner : options.idsPerOwner[i], `idsPerOwner[${i}]`, PROGRAM_LIMITS.maxWireLength),
  );
  const type = int(checkBits(options.bits));
  const p = new ProgramBuilder(options.name ?? "set-intersection-cardinality");
  const lists = sizes.map((length, i) => p.input(standardInputName(i), { owner: i, type, length }));
  const first = lists[0]!;
  let present: WireRef | undefined;
  for (let o = 1; o < owners; o++) {
    const other = lists[o]!;
    const pairs = p.eq(p.repeat(first, sizes[o]!), p.tile(other, sizes[0]!)); // pair (i, j) at i·|Lo| + j
    const matches = p.segmentSum(pairs, sizes[o]!);
    const inOther = p.not(p.eqz(matches));
    present = present === undefined ? inOther : p.and(present, inOther);
  }
  p.output("cardinality", p.reduceSum(present!));
  return p.build();
}

export interface RegressionOptions {
  owners: number;
  pointsPerOwner: number;
  /** Types of x and y (int or fixed; inputs x-i, y-i per owner). */
  xType: SecretType;
  yType: SecretType;
  /** Digits of slope and intercept (default 6). */
  decimals?: number;
  name?: string;
}

/**
 * Simple linear regression y ≈ slope·x + intercept over all owners' points
 * (owner i inputs "x-i" and "y-i"), by least squares:
 *   slope = (n·Σxy − Σx·Σy) / D,  intercept = (Σy·Σx² − Σx·Σxy) / D,
 *   D = n·Σx² − (Σx)².
 * The sums are two dot products and two reductions (one round), the
 * numerators and D two more multiplication rounds, and slope and intercept
 * are quotient outputs: revealed as EXACT rationals (rational reconstruction
 * of num·D^-1; node/protocol/quotient.ts) and rendered half-to-even with
 * `decimals` digits, so the only error is that rounding (< 0.5·10^-decimals).
 * "undefined" if all x are equal (D = 0). Reveals slope and intercept only.
 * Widths: (width of the intercept numerator) + (width of D) <= 253, e.g.
 * 32-bit x and y with up to 2^16 points.
 */
export function linearRegression(options: RegressionOptions): Program {
  const owners = checkCount(options.owners, "owners", PROGRAM_LIMITS.maxDataOwners);
  const points = checkCount(options.pointsPerOwner, "pointsPerOwner", PROGRAM_LIMITS.maxWireLength);
  const xType = checkSecretType(options.xType, "xType", MAX_INPUT_BITS);
  const yType = checkSecretType(options.yType, "yType", MAX_INPUT_BITS);
  for (const [what, type] of [["xType", xType], ["yType", yType]] as const) {
    if (type.kind !== "int" && type.kind !== "fixed") throw new ConsortError("PROGRAM_INVALID", `${what} must be int or fixed, got ${describeType(type)}`);
  }
  const decimals = checkDecimals(options.decimals, 6);
  const p = new ProgramBuilder(options.name ?? "linear-regression");
  const xs: WireRef[] = [];
  const ys: WireRef[] = [];
  for (let i = 0; i < owners; i++) {
    xs.push(p.input(`x-${i}`, { owner: i, type: xType, length: points }));
    ys.push(p.input(`y-${i}`, { owner: i, type: yType, length: points }));
  }
  const x = p.concat(xs);
  const y = p.concat(ys);
  const n = BigInt(owners) * BigInt(points);
  const sx = p.reduceSum(x);
  const sy = p.reduceSum(y);
  const sxx = p.dot(x, x);
  const sxy = p.dot(x, y);
  const d = p.sub(p.mulConst(sxx, n), p.mul(sx, sx));
  p.outputQuotient("slope", p.sub(p.mulConst(sxy, n), p.mul(sx, sy)), d, { decimals });
  p.outputQuotient("intercept", p.sub(p.mul(sy, sxx), p.mul(sx, sxy)), d, { decimals });
  return p.build();
}
