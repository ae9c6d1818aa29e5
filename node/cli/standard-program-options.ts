import { ConsortError } from "../errors.ts";
import type { Program } from "../program/program.ts";
import { fixed, int, type SecretType } from "../program/secret-types.ts";
import {
  countAbove,
  dotProduct,
  firstPriceAuction,
  fixedMean,
  histogram,
  linearRegression,
  maxAndArgmax,
  portfolioReturn,
  secondPriceAuction,
  setIntersectionCardinality,
  totalAndMean,
  varianceAndStddev,
  weightedSum,
} from "../program/standard-programs.ts";

/** The standard programs the command line builds, with the parameters each takes (besides the number of data owners). */
export const STANDARD_PROGRAMS: Readonly<Record<string, string>> = {
  "total-and-mean": "values-per-owner=1 bits=64",
  "variance-and-stddev": "values-per-owner=1 bits=32 sample=false",
  "dot-product": "length bits=32",
  "portfolio-return": "assets holding-bits=32 return-bits=24 return-frac=16",
  "weighted-sum": "values-per-owner=1 value-bits=32 value-frac=0 weight-bits=32 weight-frac=16",
  "fixed-mean": "values-per-owner=1 bits=32 frac=16",
  histogram: "boundaries=b1;b2;... values-per-owner=1 bits=32",
  "count-above": "threshold values-per-owner=1 bits=32",
  "max-and-argmax": "values-per-owner=1 bits=32",
  "first-price-auction": "bits=32",
  "second-price-auction": "bits=32",
  "set-intersection": "ids-per-owner bits=64",
  "linear-regression": "points-per-owner x-bits=32 y-bits=32",
};

/** What the parameter list cannot say. */
export const STANDARD_PROGRAM_NOTES: Readonly<Record<string, string>> = {
  "dot-product": "exactly 2 data owners",
  "first-price-auction": "one bid per data owner",
  "second-price-auction": "one bid per data owner, at least 2",
};

function parameters(raw: Readonly<Record<string, string>>, allowed: readonly string[]): { int(key: string, fallback?: number): number; big(key: string): bigint; bool(key: string, fallback: boolean): boolean; list(key: string): bigint[] } {
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) throw new ConsortError("BAD_REQUEST", `unknown parameter "${key}" (this program takes: ${allowed.join(", ")})`);
  }
  const get = (key: string): string | undefined => raw[key];
  return {
    int(key, fallback) {
      const v = get(key);
      if (v === undefined) {
        if (fallback === undefined) throw new ConsortError("BAD_REQUEST", `parameter "${key}" is required`);
        return fallback;
      }
      if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new ConsortError("BAD_REQUEST", `parameter "${key}" must be a whole number, got "${v}"`);
      return Number(v);
    },
    big(key) {
      const v = get(key);
      if (v === undefined || !/^-?[0-9]+$/.test(v)) throw new ConsortError("BAD_REQUEST", `parameter "${key}" must be an integer, got "${v ?? "(missing)"}"`);
      return BigInt(v);
    },
    bool(key, fallback) {
      const v = get(key);
      if (v === undefined) return fallback;
      if (v !== "true" && v !== "false") throw new ConsortError("BAD_REQUEST", `parameter "${key}" must be true or false, got "${v}"`);
      return v === "true";
    },
    list(key) {
      const v = get(key);
      if (v === undefined || !/^-?[0-9]+(;-?[0-9]+)*$/.test(v)) throw new ConsortError("BAD_REQUEST", `parameter "${key}" must be integers separated by ";", got "${v ?? "(missing)"}"`);
      return v.split(";").map((x) => BigInt(x));
    },
  };
}

const numberType = (bits: number, frac: number): SecretType => (frac === 0 ? int(bits) : fixed(bits, frac));

/** Builds standard program `name` for `owners` data owners from command-line parameters ("key=value"). */
export function buildStandardProgram(name: string, owners: number, raw: Readonly<Record<string, string>>): Program {
  const spec = STANDARD_PROGRAMS[name];
  if (spec === undefined) {
    throw new ConsortError("BAD_REQUEST", `unknown standard program "${name}" (known: ${Object.keys(STANDARD_PROGRAMS).join(", ")})`);
  }
  const allowed = spec.split(" ").filter((w) => /^[a-z]/.test(w)).map((w) => w.split("=")[0]!);
  const p = parameters(raw, allowed);
  switch (name) {
    case "total-and-mean":
      return totalAndMean({ owners, valuesPerOwner: p.int("values-per-owner", 1), bits: p.int("bits", 64) });
    case "variance-and-stddev":
      return varianceAndStddev({ owners, valuesPerOwner: p.int("values-per-owner", 1), bits: p.int("bits", 32), sample: p.bool("sample", false) });
    case "dot-product":
      if (owners !== 2) throw new ConsortError("BAD_REQUEST", `dot-product takes exactly 2 data owners, got ${owners}`);
      return dotProduct({ length: p.int("length"), bits: p.int("bits", 32) });
    case "portfolio-return":
      return portfolioReturn({
        banks: owners,
        assets: p.int("assets"),
        holdingBits: p.int("holding-bits", 32),
        returnBits: p.int("return-bits", 24),
        returnFrac: p.int("return-frac", 16),
      });
    case "weighted-sum":
      return weightedSum({
        owners,
        valuesPerOwner: p.int("values-per-owner", 1),
        valueType: numberType(p.int("value-bits", 32), p.int("value-frac", 0)),
        weightType: numberType(p.int("weight-bits", 32), p.int("weight-frac", 16)),
      });
    case "fixed-mean":
      return fixedMean({ owners, valuesPerOwner: p.int("values-per-owner", 1), bits: p.int("bits", 32), frac: p.int("frac", 16) });
    case "histogram":
      return histogram({ owners, valuesPerOwner: p.int("values-per-owner", 1), bits: p.int("bits", 32), boundaries: p.list("boundaries") });
    case "count-above":
      return countAbove({ owners, valuesPerOwner: p.int("values-per-owner", 1), bits: p.int("bits", 32), threshold: p.big("threshold") });
    case "max-and-argmax":
      return maxAndArgmax({ owners, valuesPerOwner: p.int("values-per-owner", 1), bits: p.int("bits", 32) });
    case "first-price-auction":
      return firstPriceAuction({ bidders: owners, bits: p.int("bits", 32) });
    case "second-price-auction":
      return secondPriceAuction({ bidders: owners, bits: p.int("bits", 32) });
    case "set-intersection":
      return setIntersectionCardinality({ owners, idsPerOwner: p.int("ids-per-owner"), bits: p.int("bits", 64) });
    case "linear-regression":
      return linearRegression({ owners, pointsPerOwner: p.int("points-per-owner"), xType: int(p.int("x-bits", 32)), yType: int(p.int("y-bits", 32)) });
    default:
      throw new ConsortError("INTERNAL", `standard program "${name}" has no builder`);
  }
}

/** Parses repeated "--param key=value" options. */
export function parseParams(entries: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of entries ?? []) {
    const eq = entry.indexOf("=");
    if (eq <= 0) throw new ConsortError("BAD_REQUEST", `--param expects key=value, got "${entry}"`);
    out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}
