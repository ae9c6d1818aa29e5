/**
 * The task result that the parties sign and post on chain
 * ("consort.result/v1"): canonical JSON, readable on a block explorer,
 *
 *   {"outputs":{"mean":"1234.50","total":"3703"},"program":"0x…","version":"consort.result/v1"}
 *
 * - "program" is the program hash the task committed to;
 * - "outputs" maps every output name (opened and derived) to a decimal string,
 *   or to an array of decimal strings when the wire's length is > 1:
 *   int: the signed integer ("-42"); fixed: the exact value stored / 2^frac,
 *   trailing zeros removed ("12.375"); field: the element in [0, r);
 *   ratio: numerator / denominator rounded half-to-even to exactly `decimals`
 *   digits ("1234.50").
 *
 * The result is a pure function of the program and the opened field elements,
 * so every honest party produces the same bytes (and the same hash to sign).
 */
import { ConsortError } from "../errors.ts";
import { FR_MODULUS, decodeSigned, encodeSigned, isFieldElement } from "../math/field.ts";
import { bytesEqual, canonicalJsonBytes, parseJsonBytes, type JsonValue } from "./canonical-json.ts";
import { formatBinaryFixed, formatRounded, parseDecimal } from "./decimal.ts";
import { hashProgram } from "./program-encoding.ts";
import { validateProgram, type OpenedOutputs, type Program, type ProgramOutput } from "./program.ts";
import { describeType, inRange, type SecretType } from "./secret-types.ts";

export const RESULT_VERSION = "consort.result/v1";
/** Results are small (a few outputs); this bounds parsing of a hostile document. */
export const MAX_RESULT_BYTES = 64 * 1024 * 1024;

/** A decoded result document. */
export interface ProgramResult {
  readonly version: typeof RESULT_VERSION;
  readonly program: `0x${string}`;
  /** Rendered values of every output, opened and derived, by name. */
  readonly outputs: Readonly<Record<string, string | readonly string[]>>;
  /** The opened outputs as field elements (the values runProgram returned). */
  readonly opened: OpenedOutputs;
}

function badResult(message: string, details: Record<string, unknown> = {}): ConsortError {
  return new ConsortError("PROTOCOL_INVALID_MESSAGE", message, { details });
}

/** The stored integer of an opened element, range-checked against the output's type. */
function storedValue(type: SecretType, x: bigint, output: string, index: number): bigint {
  if (type.kind === "field") return x;
  const v = decodeSigned(x);
  if (!inRange(type, v)) {
    // Linear gates cannot leave the type; a data owner who shared a value outside
    // its declared range (nodes cannot see inputs) is the only way to get here.
    throw new ConsortError(
      "PROTOCOL_ABORTED",
      `opened value ${index} of output ${JSON.stringify(output)} lies outside ${describeType(type)}: an input was shared outside its declared range`,
      { details: { output, index, type: describeType(type) } },
    );
  }
  return v;
}

function renderStored(type: SecretType, v: bigint): string {
  return type.kind === "fixed" ? formatBinaryFixed(v, type.frac) : v.toString();
}

function shaped(values: readonly string[], length: number): JsonValue {
  return length === 1 ? values[0]! : [...values];
}

/** Checks that `opened` holds exactly the program's outputs with the right lengths and field elements. */
function checkOpened(program: Program, opened: OpenedOutputs): void {
  if (!(opened instanceof Map)) throw badResult("opened outputs must be a Map from output name to field elements");
  for (const name of opened.keys()) {
    if (!program.outputs.some((o) => o.name === name)) {
      throw badResult(`opened outputs contain ${JSON.stringify(String(name))}, which is not an output of program ${JSON.stringify(program.name)}`, {
        output: String(name),
      });
    }
  }
  for (const o of program.outputs) {
    const values = opened.get(o.name);
    const length = program.gates[o.wire]!.length;
    if (!Array.isArray(values)) throw badResult(`opened outputs lack output ${JSON.stringify(o.name)}`, { output: o.name });
    if (values.length !== length) {
      throw badResult(`output ${JSON.stringify(o.name)} has ${values.length} opened values, its wire has length ${length}`, {
        output: o.name,
        expected: length,
        got: values.length,
      });
    }
    values.forEach((x, i) => {
      if (!isFieldElement(x)) throw badResult(`opened value ${i} of output ${JSON.stringify(o.name)} is not a field element`, { output: o.name, index: i });
    });
  }
}

/** The rendered outputs (opened and derived) of a validated program. */
function renderOutputs(program: Program, opened: OpenedOutputs): Record<string, JsonValue> {
  const rendered: Record<string, JsonValue> = {};
  const stored = new Map<string, bigint[]>();
  for (const o of program.outputs) {
    const gate = program.gates[o.wire]!;
    const values = opened.get(o.name)!.map((x, i) => storedValue(gate.type, x, o.name, i));
    stored.set(o.name, values);
    rendered[o.name] = shaped(values.map((v) => renderStored(gate.type, v)), gate.length);
  }
  for (const d of program.derived) {
    const source = program.outputs.find((o) => o.name === d.numerator)!;
    const gate = program.gates[source.wire]!;
    const scale = gate.type.kind === "fixed" ? 1n << BigInt(gate.type.frac) : 1n;
    const values = stored.get(d.numerator)!.map((v) => formatRounded({ num: v, den: d.denominator * scale }, d.decimals));
    rendered[d.name] = shaped(values, gate.length);
  }
  return rendered;
}

/**
 * The canonical result document for `program` and its opened outputs
 * (field elements by output name, as runProgram returns them).
 * PROTOCOL_INVALID_MESSAGE if `opened` does not match the program's outputs;
 * PROTOCOL_ABORTED if an opened int/fixed value lies outside its type.
 */
export function encodeResult(program: Program, opened: OpenedOutputs): Uint8Array {
  const p = validateProgram(program);
  checkOpened(p, opened);
  return canonicalJsonBytes({ version: RESULT_VERSION, program: hashProgram(p), outputs: renderOutputs(p, opened) });
}

const DECIMAL_INTEGER = /^(0|-?[1-9][0-9]*)$/;

/** Recovers the opened field element from a rendered secret output value. */
function parseRendered(type: SecretType, text: unknown, output: string, index: number): bigint {
  const bad = (): ConsortError =>
    badResult(`value ${index} of output ${JSON.stringify(output)} is not a canonical ${describeType(type)} value`, { output, index });
  if (typeof text !== "string" || text.length > 400) throw bad();
  if (type.kind === "fixed") {
    const q = parseDecimal(text);
    if (q === undefined) throw bad();
    const scaled = q.num << BigInt(type.frac);
    if (scaled % q.den !== 0n) throw bad();
    const v = scaled / q.den;
    if (!inRange(type, v)) throw bad();
    return encodeSigned(v);
  }
  if (!DECIMAL_INTEGER.test(text)) throw bad();
  const v = BigInt(text);
  if (type.kind === "field") {
    if (v < 0n || v >= FR_MODULUS) throw bad();
    return v;
  }
  if (!inRange(type, v)) throw bad();
  return encodeSigned(v);
}

function parseOutput(program: Program, output: ProgramOutput, value: unknown): bigint[] {
  const gate = program.gates[output.wire]!;
  if (gate.length === 1) return [parseRendered(gate.type, value, output.name, 0)];
  if (!Array.isArray(value) || value.length !== gate.length) {
    throw badResult(`output ${JSON.stringify(output.name)} must be an array of ${gate.length} decimal strings`, { output: output.name });
  }
  return value.map((v, i) => parseRendered(gate.type, v, output.name, i));
}

/**
 * Decodes and checks a result document against `program`: the document must
 * name this program's hash (PROGRAM_HASH_MISMATCH otherwise), hold exactly
 * its outputs, with derived values consistent with the opened ones, and be
 * byte-for-byte the canonical encoding (PROTOCOL_INVALID_MESSAGE otherwise).
 */
export function decodeResult(program: Program, bytes: Uint8Array): ProgramResult {
  const p = validateProgram(program);
  const json = parseJsonBytes(bytes, "result document", "PROTOCOL_INVALID_MESSAGE", MAX_RESULT_BYTES);
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw badResult("result document must be a JSON object");
  const doc = json as Record<string, unknown>;
  const keys = Object.keys(doc).sort().join(",");
  if (keys !== "outputs,program,version") {
    throw badResult(`result document must have exactly the keys outputs, program, version (got ${keys})`);
  }
  if (doc["version"] !== RESULT_VERSION) {
    throw badResult(`result version must be ${JSON.stringify(RESULT_VERSION)}, got ${JSON.stringify(String(doc["version"]))}`);
  }
  const expectedHash = hashProgram(p);
  if (doc["program"] !== expectedHash) {
    throw new ConsortError("PROGRAM_HASH_MISMATCH", `result is for program ${JSON.stringify(String(doc["program"]))}, expected ${expectedHash}`, {
      details: { expected: expectedHash, actual: String(doc["program"]) },
    });
  }
  const outputs = doc["outputs"];
  if (typeof outputs !== "object" || outputs === null || Array.isArray(outputs)) throw badResult("result outputs must be a JSON object");
  const record = outputs as Record<string, unknown>;
  const names = [...p.outputs.map((o) => o.name), ...p.derived.map((d) => d.name)];
  for (const key of Object.keys(record)) {
    if (!names.includes(key)) throw badResult(`result has output ${JSON.stringify(key)}, which the program does not define`, { output: key });
  }
  for (const name of names) {
    if (!Object.hasOwn(record, name)) throw badResult(`result lacks output ${JSON.stringify(name)}`, { output: name });
  }
  const opened = new Map<string, bigint[]>();
  for (const o of p.outputs) opened.set(o.name, parseOutput(p, o, record[o.name]));

  // Re-rendering checks the derived values and the canonical spelling in one go.
  const canonical = encodeResult(p, opened);
  if (!bytesEqual(canonical, bytes)) {
    throw badResult("result document is not the canonical encoding of its opened outputs (a derived value or the formatting differs)");
  }
  const rendered = renderOutputs(p, opened) as Record<string, string | readonly string[]>;
  return Object.freeze({ version: RESULT_VERSION, program: expectedHash, outputs: Object.freeze(rendered), opened });
}
