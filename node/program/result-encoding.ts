/**
 * The task result that the parties sign and post on chain
 * ("consort.result/v1"): canonical JSON, readable on a block explorer,
 *
 *   {"outputs":{"mean":"1234.50","total":"3703"},"program":"0x…","version":"consort.result/v1"}
 *
 * - "program" is the program hash the task committed to;
 * - "outputs" maps every output name (revealed and derived) to a string, or
 *   to an array of strings when the wire's length is > 1:
 *   - int and bit: the signed integer ("-42", "1"); fixed: the exact value
 *     stored / 2^frac, trailing zeros removed ("12.375"); field: the element
 *     in [0, r);
 *   - a quotient output (numerator / denominator, both secret): the exact
 *     quotient rounded half-to-even to exactly `decimals` digits ("0.4829"),
 *     or "undefined" where the denominator is 0;
 *   - derived "ratio": numerator / denominator rounded half-to-even to
 *     exactly `decimals` digits ("1234.50"); derived "sqrt": the square root
 *     of that ratio, same rounding ("undefined" for a negative ratio);
 *   - a requester-only output (reveal "requester"): NOT the value but its
 *     commitment, one "0x" + 64 lowercase hex string for the whole wire:
 *     C = keccak256(tag ‖ programHash ‖ name ‖ d_0 ‖ … ‖ d_(n-1)), where d_j
 *     is party j's salted digest of its share vector
 *     (node/protocol/requester-output.ts). The parties sign C; the
 *     requester, given each party's shares and salt, recomputes every d_j and
 *     C, so it can check that what it reconstructs is what the quorum
 *     attested, while the chain learns nothing about the value (the salts
 *     keep low-entropy outputs from being guessed from the digests).
 *
 * The result is a pure function of the program, the revealed values and the
 * commitments, so every honest party produces the same bytes (and the same
 * hash to sign).
 */
import { ConsortError } from "../errors.ts";
import { FR_MODULUS, decodeSigned, encodeSigned, isFieldElement } from "../math/field.ts";
import { bytesEqual, canonicalJsonBytes, parseJsonBytes, type JsonValue } from "./canonical-json.ts";
import { formatBinaryFixed, formatRounded, formatSqrtRounded, parseDecimal } from "./decimal.ts";
import { hashProgram } from "./program-encoding.ts";
import { isQuotientOutput, validateProgram, type OpenedOutputs, type Program, type ProgramOutput } from "./program.ts";
import { describeType, inRange, rangeOf, type RangedType, type SecretType } from "./secret-types.ts";

export const RESULT_VERSION = "consort.result/v1";
/** Results are small (a few outputs); this bounds parsing of a hostile document. */
export const MAX_RESULT_BYTES = 64 * 1024 * 1024;

/** Commitments of requester-only outputs ("0x" + 64 lowercase hex), by output name. */
export type OutputCommitments = ReadonlyMap<string, string>;

/** A decoded result document. */
export interface ProgramResult {
  readonly version: typeof RESULT_VERSION;
  readonly program: `0x${string}`;
  /** Rendered values of every output, revealed, requester-only (commitments) and derived, by name. */
  readonly outputs: Readonly<Record<string, string | readonly string[]>>;
  /**
   * The plain outputs revealed to all as field elements (the values
   * runProgram returned); quotient outputs are not included (their decimal
   * rendering does not determine the exact fraction).
   */
  readonly opened: OpenedOutputs;
  /** The commitments of the requester-only outputs. */
  readonly commitments: OutputCommitments;
}

const COMMITMENT_PATTERN = /^0x[0-9a-f]{64}$/;
const UNDEFINED = "undefined";

function badResult(message: string, details: Record<string, unknown> = {}): ConsortError {
  return new ConsortError("PROTOCOL_INVALID_MESSAGE", message, { details });
}

function outsideType(output: string, index: number, type: SecretType): ConsortError {
  // Gates cannot leave their types; a data owner who shared a value outside
  // its declared range (nodes cannot see inputs) is the only way to get here.
  return new ConsortError(
    "PROTOCOL_ABORTED",
    `the revealed value at index ${index} of output ${JSON.stringify(output)} lies outside ${describeType(type)}: an input was shared outside its declared range`,
    { details: { output, index, type: describeType(type) } },
  );
}

/** The stored integer of an opened element, range-checked against the output's type. */
function storedValue(type: SecretType, x: bigint, output: string, index: number): bigint {
  if (type.kind === "field") return x;
  const v = decodeSigned(x);
  if (!inRange(type, v)) throw outsideType(output, index, type);
  return v;
}

function renderStored(type: SecretType, v: bigint): string {
  return type.kind === "fixed" ? formatBinaryFixed(v, type.frac) : v.toString();
}

function shaped(values: readonly string[], length: number): JsonValue {
  return length === 1 ? values[0]! : [...values];
}

function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

const fracOf = (type: SecretType): number => (type.kind === "fixed" ? type.frac : 0);

/** Renders a quotient element from its reduced fraction a/b of stored integers (checked), scaled by the fixed fracs. */
function renderQuotient(program: Program, output: ProgramOutput & { denominator: number; decimals: number }, a: bigint, b: bigint, index: number): string {
  const numType = program.gates[output.wire]!.type as RangedType;
  const denType = program.gates[output.denominator]!.type as RangedType;
  const denRange = rangeOf(denType);
  const maxDen = -denRange.lo > denRange.hi ? -denRange.lo : denRange.hi;
  if (b === 0n) {
    if (a !== 0n) throw badResult(`quotient ${index} of output ${JSON.stringify(output.name)} has denominator 0 but numerator ${a === 0n ? 0 : "non-zero"}`, { output: output.name, index });
    return UNDEFINED;
  }
  if (b < 0n || b > maxDen || gcd(a, b) !== 1n) {
    throw badResult(`quotient ${index} of output ${JSON.stringify(output.name)} is not a reduced fraction with a denominator in [1, ${maxDen}]`, {
      output: output.name,
      index,
    });
  }
  if (!inRange(numType, a)) throw outsideType(output.name, index, numType);
  // value = (a / 2^fn) / (b / 2^fd)
  const fn = BigInt(fracOf(numType));
  const fd = BigInt(fracOf(denType));
  return formatRounded({ num: a << fd, den: b << fn }, output.decimals);
}

/** Checks that `opened` holds exactly the outputs revealed to all, with the right lengths and field elements. */
function checkOpened(program: Program, opened: OpenedOutputs): void {
  if (!(opened instanceof Map)) throw badResult("opened outputs must be a Map from output name to field elements");
  for (const name of opened.keys()) {
    const output = program.outputs.find((o) => o.name === name);
    if (output === undefined || output.reveal !== "all") {
      throw badResult(
        output === undefined
          ? `opened outputs contain ${JSON.stringify(String(name))}, which is not an output of program ${JSON.stringify(program.name)}`
          : `opened outputs contain ${JSON.stringify(String(name))}, which is revealed only to the requester`,
        { output: String(name) },
      );
    }
  }
  for (const o of program.outputs) {
    if (o.reveal !== "all") continue;
    const values = opened.get(o.name);
    const length = program.gates[o.wire]!.length * (isQuotientOutput(o) ? 2 : 1);
    if (!Array.isArray(values)) throw badResult(`opened outputs lack output ${JSON.stringify(o.name)}`, { output: o.name });
    if (values.length !== length) {
      throw badResult(`output ${JSON.stringify(o.name)} has ${values.length} opened values, expected ${length}`, {
        output: o.name,
        expected: length,
        got: values.length,
      });
    }
    values.forEach((x, i) => {
      if (!isFieldElement(x)) throw badResult(`the opened value at index ${i} of output ${JSON.stringify(o.name)} is not a field element`, { output: o.name, index: i });
    });
  }
}

function checkCommitments(program: Program, commitments: OutputCommitments): void {
  if (!(commitments instanceof Map)) throw badResult("output commitments must be a Map from output name to 0x-hex commitment");
  for (const [name, value] of commitments) {
    const output = program.outputs.find((o) => o.name === name);
    if (output === undefined || output.reveal !== "requester") {
      throw badResult(`commitments contain ${JSON.stringify(String(name))}, which is not a requester-only output`, { output: String(name) });
    }
    if (typeof value !== "string" || !COMMITMENT_PATTERN.test(value)) {
      throw badResult(`commitment of output ${JSON.stringify(name)} must be 0x + 64 lowercase hex digits`, { output: name });
    }
  }
  for (const o of program.outputs) {
    if (o.reveal === "requester" && !commitments.has(o.name)) {
      throw badResult(`commitments lack requester-only output ${JSON.stringify(o.name)}`, { output: o.name });
    }
  }
}

/**
 * The rendered outputs of a validated program. `fixedRenderings` supplies
 * the strings of outputs whose rendering is not a function of `opened`
 * (quotients, when decoding a document).
 */
function renderOutputs(
  program: Program,
  opened: OpenedOutputs,
  commitments: OutputCommitments,
  fixedRenderings: ReadonlyMap<string, JsonValue> = new Map(),
): Record<string, JsonValue> {
  const rendered: Record<string, JsonValue> = {};
  const stored = new Map<string, bigint[]>();
  for (const o of program.outputs) {
    const gate = program.gates[o.wire]!;
    if (o.reveal === "requester") {
      rendered[o.name] = commitments.get(o.name)!;
    } else if (isQuotientOutput(o)) {
      const given = fixedRenderings.get(o.name);
      if (given !== undefined) {
        rendered[o.name] = given;
        continue;
      }
      const values = opened.get(o.name)!;
      const strings: string[] = [];
      for (let i = 0; i < gate.length; i++) {
        strings.push(renderQuotient(program, o, decodeSigned(values[2 * i]!), decodeSigned(values[2 * i + 1]!), i));
      }
      rendered[o.name] = shaped(strings, gate.length);
    } else {
      const values = opened.get(o.name)!.map((x, i) => storedValue(gate.type, x, o.name, i));
      stored.set(o.name, values);
      rendered[o.name] = shaped(values.map((v) => renderStored(gate.type, v)), gate.length);
    }
  }
  for (const d of program.derived) {
    const source = program.outputs.find((o) => o.name === d.numerator)!;
    const gate = program.gates[source.wire]!;
    const scale = 1n << BigInt(fracOf(gate.type));
    const values = stored.get(d.numerator)!.map((v) => {
      const q = { num: v, den: d.denominator * scale };
      if (d.op === "ratio") return formatRounded(q, d.decimals);
      return v < 0n ? UNDEFINED : formatSqrtRounded(q, d.decimals);
    });
    rendered[d.name] = shaped(values, gate.length);
  }
  return rendered;
}

/**
 * The canonical result document for `program`: `opened` holds the outputs
 * revealed to all (field elements by output name, as runProgram returns
 * them), `commitments` the commitments of the requester-only outputs (empty
 * when there are none). PROTOCOL_INVALID_MESSAGE if either does not match the
 * program's outputs; PROTOCOL_ABORTED if a revealed int/fixed value lies
 * outside its type.
 */
export function encodeResult(program: Program, opened: OpenedOutputs, commitments: OutputCommitments = new Map()): Uint8Array {
  const p = validateProgram(program);
  checkOpened(p, opened);
  checkCommitments(p, commitments);
  return canonicalJsonBytes({ version: RESULT_VERSION, program: hashProgram(p), outputs: renderOutputs(p, opened, commitments) });
}

const DECIMAL_INTEGER = /^(0|-?[1-9][0-9]*)$/;

/** Recovers the opened field element from a rendered plain output value. */
function parseRendered(type: SecretType, text: unknown, output: string, index: number): bigint {
  const bad = (): ConsortError =>
    badResult(`the value at index ${index} of output ${JSON.stringify(output)} is not a canonical ${describeType(type)} value`, { output, index });
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

function elementsOf(program: Program, output: ProgramOutput, value: unknown): unknown[] {
  const gate = program.gates[output.wire]!;
  if (gate.length === 1) return [value];
  if (!Array.isArray(value) || value.length !== gate.length) {
    throw badResult(`output ${JSON.stringify(output.name)} must be an array of ${gate.length} strings`, { output: output.name });
  }
  return value;
}

/**
 * Decodes and checks a result document against `program`: the document must
 * name this program's hash (PROGRAM_HASH_MISMATCH otherwise), hold exactly
 * its outputs, with derived values consistent with the revealed ones, and be
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
  const commitments = new Map<string, string>();
  const quotients = new Map<string, JsonValue>();
  for (const o of p.outputs) {
    const value = record[o.name];
    if (o.reveal === "requester") {
      if (typeof value !== "string" || !COMMITMENT_PATTERN.test(value)) {
        throw badResult(`output ${JSON.stringify(o.name)} is requester-only; its value must be a 0x + 64 lowercase hex commitment`, { output: o.name });
      }
      commitments.set(o.name, value);
    } else if (isQuotientOutput(o)) {
      // The rounded decimal does not determine the fraction; check its form (the canonical re-encoding cannot).
      const pattern = o.decimals === 0 ? /^-?(0|[1-9][0-9]*)$/ : new RegExp(`^-?(0|[1-9][0-9]*)\\.[0-9]{${o.decimals}}$`);
      for (const [i, text] of elementsOf(p, o, value).entries()) {
        if (typeof text !== "string" || text.length > 400 || (text !== UNDEFINED && (!pattern.test(text) || /^-0(\.0*)?$/.test(text)))) {
          throw badResult(`the value at index ${i} of quotient output ${JSON.stringify(o.name)} must be a decimal with ${o.decimals} digits or "undefined"`, {
            output: o.name,
            index: i,
          });
        }
      }
      quotients.set(o.name, value as JsonValue);
    } else {
      opened.set(o.name, elementsOf(p, o, value).map((v, i) => parseRendered(p.gates[o.wire]!.type, v, o.name, i)));
    }
  }

  // Re-rendering checks the derived values and the canonical spelling in one go.
  const rendered = renderOutputs(p, opened, commitments, quotients);
  const canonical = canonicalJsonBytes({ version: RESULT_VERSION, program: expectedHash, outputs: rendered });
  if (!bytesEqual(canonical, bytes)) {
    throw badResult("result document is not the canonical encoding of its revealed outputs (a derived value or the formatting differs)");
  }
  return Object.freeze({
    version: RESULT_VERSION,
    program: expectedHash,
    outputs: Object.freeze(rendered as Record<string, string | readonly string[]>),
    opened,
    commitments,
  });
}

/** The rendered value of one revealed output (what encodeResult writes for it), e.g. for a requester's client. */
export function renderOutputValue(program: Program, name: string, values: readonly bigint[]): string | readonly string[] {
  const p = validateProgram(program);
  const output = p.outputs.find((o) => o.name === name);
  if (output === undefined) throw badResult(`program ${JSON.stringify(p.name)} has no output ${JSON.stringify(String(name))}`, { output: String(name) });
  const asAll: ProgramOutput = { ...output, reveal: "all" };
  const single: Program = { ...p, outputs: [asAll], derived: [] };
  checkOpened(single, new Map([[name, values]]));
  return renderOutputs(single, new Map([[name, values]]), new Map())[name] as string | readonly string[];
}
