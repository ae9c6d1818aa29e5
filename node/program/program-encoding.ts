/**
 * The canonical byte encoding of programs ("consort.program/v1") and the
 * program hash that tasks commit to on chain.
 *
 * Encoding: canonical JSON (node/program/canonical-json.ts) of
 *   {"derived":[...],"gates":[...],"name":...,"outputs":[...],"version":"consort.program/v1"}
 * with gates in topological order (gate i defines wire i), public constants
 * and derived denominators as decimal strings, integer gate parameters
 * (shift, times, start, end, size, frac) and wire references as JSON
 * numbers, types as {"bits":..,"kind":"int"}, {"bits":..,"frac":..,"kind":"fixed"},
 * {"kind":"bit"} or {"kind":"field"}. A quotient output carries two more
 * keys, "denominator" (a wire) and "decimals"; other outputs have exactly
 * name, reveal and wire, so phase-1 programs encode as they always did.
 *
 * programHash = keccak256 of the exact bytes, "0x"-prefixed lowercase hex,
 * the same value Solidity's keccak256 gives over the bytes.
 */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { ConsortError } from "../errors.ts";
import { bytesEqual, canonicalJsonBytes, firstDifference, parseJsonBytes, type JsonValue } from "./canonical-json.ts";
import {
  OP_SPECS,
  PROGRAM_LIMITS,
  checkProgram,
  isQuotientOutput,
  validateProgram,
  type Gate,
  type GateParams,
  type Program,
  type ProgramOutput,
} from "./program.ts";
import type { SecretType } from "./secret-types.ts";

function typeToJson(type: SecretType): JsonValue {
  switch (type.kind) {
    case "int":
      return { kind: "int", bits: type.bits };
    case "fixed":
      return { kind: "fixed", bits: type.bits, frac: type.frac };
    case "bit":
      return { kind: "bit" };
    case "field":
      return { kind: "field" };
  }
}

function gateToJson(gate: Gate): JsonValue {
  const common = { id: gate.id, op: gate.op, length: gate.length, type: typeToJson(gate.type) };
  if (gate.op === "input") return { ...common, name: gate.name, owner: gate.owner };
  const spec = OP_SPECS[gate.op];
  const json: Record<string, JsonValue> = { ...common, args: [...gate.args] };
  if (spec.constant) json["constant"] = (gate as GateParams).constant!.toString();
  for (const name of spec.ints) json[name] = (gate as GateParams)[name]!;
  return json;
}

function outputToJson(output: ProgramOutput): JsonValue {
  const json: Record<string, JsonValue> = { name: output.name, wire: output.wire, reveal: output.reveal };
  if (isQuotientOutput(output)) {
    json["denominator"] = output.denominator;
    json["decimals"] = output.decimals;
  }
  return json;
}

/** The JSON document of a (validated) program, before canonical serialisation. */
export function programToJson(program: Program): JsonValue {
  const p = validateProgram(program);
  return {
    version: p.version,
    name: p.name,
    gates: p.gates.map(gateToJson),
    outputs: p.outputs.map(outputToJson),
    derived: p.derived.map((d) => ({
      name: d.name,
      op: d.op,
      numerator: d.numerator,
      denominator: d.denominator.toString(),
      decimals: d.decimals,
    })),
  };
}

/** The canonical encoding of `program` (validated first; PROGRAM_INVALID if it breaks a rule). */
export function encodeProgram(program: Program): Uint8Array {
  return canonicalJsonBytes(programToJson(program));
}

/**
 * Decodes and fully validates program bytes. PROGRAM_INVALID names what is
 * wrong: not UTF-8/JSON, a schema or type-rule violation (with its path), or
 * bytes that are valid but not the canonical encoding (which would give the
 * same program a second hash).
 */
export function decodeProgram(bytes: Uint8Array): Program {
  const json = parseJsonBytes(bytes, "program encoding", "PROGRAM_INVALID", PROGRAM_LIMITS.maxBytes);
  const program = checkProgram(json, "string");
  const canonical = encodeProgram(program);
  if (!bytesEqual(canonical, bytes)) {
    const at = firstDifference(canonical, bytes);
    throw new ConsortError("PROGRAM_INVALID", `program encoding is not canonical (first difference at byte ${at}); re-encode it with encodeProgram`, {
      details: { at },
    });
  }
  return program;
}

/** keccak256 of the exact program bytes, as "0x" + 64 lowercase hex digits. */
export function programHash(bytes: Uint8Array): `0x${string}` {
  if (!(bytes instanceof Uint8Array)) {
    throw new ConsortError("PROGRAM_INVALID", `programHash takes the encoded program bytes, got ${typeof bytes}`);
  }
  return `0x${bytesToHex(keccak_256(bytes))}`;
}

/** programHash(encodeProgram(program)). */
export function hashProgram(program: Program): `0x${string}` {
  return programHash(encodeProgram(program));
}

const HASH_PATTERN = /^0x[0-9a-fA-F]{64}$/;

/**
 * Throws PROGRAM_HASH_MISMATCH (naming both hashes) unless keccak256(bytes)
 * equals `expectedHash` (hex, any letter case), e.g. the hash a task
 * committed to on chain.
 */
export function verifyProgramHash(bytes: Uint8Array, expectedHash: string): void {
  if (typeof expectedHash !== "string" || !HASH_PATTERN.test(expectedHash)) {
    throw new ConsortError("PROGRAM_HASH_MISMATCH", `expected program hash must be 0x + 64 hex digits, got ${JSON.stringify(String(expectedHash))}`, {
      details: { expected: String(expectedHash) },
    });
  }
  const actual = programHash(bytes);
  if (actual !== expectedHash.toLowerCase()) {
    throw new ConsortError("PROGRAM_HASH_MISMATCH", `program bytes hash to ${actual}, expected ${expectedHash.toLowerCase()}`, {
      details: { expected: expectedHash.toLowerCase(), actual },
    });
  }
}
