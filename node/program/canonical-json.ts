/**
 * Canonical JSON for hashed documents (programs, results).
 *
 * One JSON value has exactly one byte encoding: object keys sorted by UTF-16
 * code units (the order of RFC 8785 §3.2.3), no whitespace, strings as
 * JSON.stringify writes them, numbers only as safe integers (big values are
 * decimal strings in the documents themselves), UTF-8 without BOM. This is
 * the subset of RFC 8785 (JCS) that our documents need; for it, the output is
 * identical to JCS.
 *
 * Decoders parse, validate and re-encode, and reject the bytes unless the
 * re-encoding is identical: that single check rules out whitespace, other key
 * orders, duplicate keys, `1.0`/`1e0` number spellings and escapes that
 * JSON.stringify would not write.
 */
import { ConsortError, type ConsortErrorCode } from "../errors.ts";

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

function write(value: JsonValue, parts: string[], path: string): void {
  if (value === null || typeof value === "boolean") {
    parts.push(String(value));
  } else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new ConsortError("INTERNAL", `canonical JSON allows only safe integers as numbers (at ${path})`, { details: { at: path } });
    }
    // Object.is: -0 would print as "0" and break decode/encode symmetry; it is never meant.
    parts.push(Object.is(value, -0) ? "0" : String(value));
  } else if (typeof value === "string") {
    parts.push(JSON.stringify(value));
  } else if (Array.isArray(value)) {
    parts.push("[");
    for (let i = 0; i < value.length; i++) {
      if (i > 0) parts.push(",");
      write(value[i] as JsonValue, parts, `${path}[${i}]`);
    }
    parts.push("]");
  } else if (typeof value === "object") {
    const record = value as { readonly [key: string]: JsonValue };
    const keys = Object.keys(record).sort();
    parts.push("{");
    keys.forEach((key, i) => {
      if (i > 0) parts.push(",");
      parts.push(JSON.stringify(key), ":");
      write(record[key] as JsonValue, parts, `${path}.${key}`);
    });
    parts.push("}");
  } else {
    throw new ConsortError("INTERNAL", `canonical JSON cannot encode a ${typeof value} (at ${path})`, { details: { at: path } });
  }
}

/** The canonical JSON text of `value`. */
export function canonicalJsonString(value: JsonValue): string {
  const parts: string[] = [];
  write(value, parts, "$");
  return parts.join("");
}

/** The canonical JSON bytes (UTF-8) of `value`. */
export function canonicalJsonBytes(value: JsonValue): Uint8Array {
  return new TextEncoder().encode(canonicalJsonString(value));
}

/**
 * Parses UTF-8 JSON bytes, failing with `code` (naming `what`) on invalid
 * UTF-8 or JSON or when the bytes exceed `maxBytes`. Canonical form is
 * checked by the caller after validation (re-encode and compare), because
 * only the caller knows the document's schema.
 */
export function parseJsonBytes(bytes: Uint8Array, what: string, code: ConsortErrorCode, maxBytes: number): unknown {
  if (!(bytes instanceof Uint8Array)) {
    throw new ConsortError(code, `${what} must be given as bytes (Uint8Array), got ${typeof bytes}`);
  }
  if (bytes.length > maxBytes) {
    throw new ConsortError(code, `${what} is ${bytes.length} bytes, the limit is ${maxBytes}`, {
      details: { length: bytes.length, limit: maxBytes },
    });
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (cause) {
    throw new ConsortError(code, `${what} is not valid UTF-8`, { cause });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new ConsortError(code, `${what} is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Whether two byte strings are equal. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Index of the first differing byte (for "not canonical at byte N" messages), or -1. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
