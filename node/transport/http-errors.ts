/**
 * The one mapping between ConsortErrors and HTTP, shared by the express API
 * (./http-server.ts), the raw frame routes (./frame-server.ts) and the
 * clients (./http-client.ts, ./frame-link.ts), so that a frame rejected on a
 * streamed connection and a frame rejected by a plain POST surface as the
 * same error at the sender.
 *
 * Server side: a ConsortError whose code a client can act on gets its status
 * (STATUS_BY_CODE); any other retryable one is a 503; everything else is a
 * generic 500 INTERNAL whose text never leaves the process.
 *
 * Client side: connection failures, timeouts, 408, 429 and 5xx are
 * PEER_UNREACHABLE (retryable); any other non-2xx is PEER_REJECTED carrying
 * the remote code in details.remoteCode, retryable iff the remote said so.
 */
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { ConsortError, isConsortError } from "../errors.ts";
import type { ConsortErrorCode } from "../errors.ts";

export type JsonErrorBody = {
  error: { code: ConsortErrorCode; message: string; retryable: boolean; details: Record<string, unknown> };
};

/** HTTP status for the codes a client can act on; others are 503 if retryable, else 500 INTERNAL. */
export const STATUS_BY_CODE: Partial<Record<ConsortErrorCode, number>> = {
  BAD_REQUEST: 400,
  PROTOCOL_INVALID_MESSAGE: 400,
  BAD_SIGNATURE: 401,
  NOT_A_PARTY: 403,
  NOT_A_DATA_OWNER: 403,
  NOT_REQUESTER: 403,
  UNKNOWN_TASK: 404,
  NOT_FOUND: 404,
  DUPLICATE_INPUT: 409,
  DUPLICATE_MESSAGE: 409,
  TASK_NOT_ACCEPTING: 409,
  STALE_ATTEMPT: 409,
  COMMITMENT_MISMATCH: 422,
  DECRYPTION_FAILED: 422,
};

/** Statuses that are not the code's default (415 for a wrong content type, 413 for an oversize body). */
const statusOverride = new WeakMap<ConsortError, number>();

/** A BAD_REQUEST answered with `status` instead of 400 (413, 415, ...). */
export function requestError(status: number, message: string, details: Record<string, unknown> = {}): ConsortError {
  const err = new ConsortError("BAD_REQUEST", message, { details });
  statusOverride.set(err, status);
  return err;
}

export interface ErrorResponse {
  status: number;
  body: JsonErrorBody;
}

/**
 * The status and JSON body for `error` as it may be shown to a remote peer.
 * `error` is a ConsortError the handler meant to throw; anything else is INTERNAL.
 */
export function errorResponse(error: ConsortError | undefined): ErrorResponse {
  if (error !== undefined && (statusOverride.has(error) || STATUS_BY_CODE[error.code] !== undefined || error.retryable)) {
    return { status: statusOverride.get(error) ?? STATUS_BY_CODE[error.code] ?? 503, body: { error: error.toJSON() } };
  }
  return { status: 500, body: { error: { code: "INTERNAL", message: "internal error", retryable: false, details: {} } } };
}

/**
 * `response` as a complete HTTP/1.1 response that closes the connection:
 * for sockets taken over before express or node:http can answer (upgrades).
 */
export function rawErrorResponse(response: ErrorResponse): string {
  const body = jsonText(response.body);
  return (
    `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? "Error"}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
}

/**
 * Writes `text` (a rawErrorResponse) and closes the socket once it is sent,
 * whether or not the client ever closes its side: a refused socket must
 * not linger half-open.
 */
export function endSocket(socket: Duplex, text: string): void {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  // Not end(): a socket node:http still owns may never emit "finish", and a client that never closes would keep it.
  const timer = setTimeout(() => socket.destroy(), 1_000);
  timer.unref();
  socket.write(text, () => {
    clearTimeout(timer);
    socket.destroy();
  });
}

/** The structured log event for a failed request; for 500s it carries the real error (operator only). */
export function failureEvent(
  method: string,
  path: string,
  response: ErrorResponse,
  original: unknown,
): Record<string, unknown> {
  const event: Record<string, unknown> = {
    event: "http.request.failed",
    level: response.status >= 500 ? "error" : "warn",
    method,
    path,
    status: response.status,
    code: response.body.error.code,
    message: response.body.error.message,
  };
  if (response.status >= 500) {
    event.error = original instanceof Error ? { name: original.name, message: original.message, stack: original.stack } : String(original);
    if (isConsortError(original)) event.originalCode = original.code;
  }
  return event;
}

/** JSON with bigints as decimal strings (task ids and counters are bigints throughout the node). */
export function jsonText(body: unknown): string {
  return JSON.stringify(body, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value));
}

/** Remote error messages are untrusted text: keep logs bounded. */
const MAX_REMOTE_MESSAGE_CHARS = 500;

interface RemoteError {
  code?: string;
  message?: string;
  retryable?: boolean;
  details?: unknown;
}

function parseRemoteError(bytes: Uint8Array): RemoteError {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { error?: unknown };
    const e = parsed?.error;
    if (e === null || typeof e !== "object") return {};
    const r = e as Record<string, unknown>;
    return {
      code: typeof r.code === "string" ? r.code.slice(0, 64) : undefined,
      message: typeof r.message === "string" ? r.message.slice(0, MAX_REMOTE_MESSAGE_CHARS) : undefined,
      retryable: r.retryable === true,
      details: r.details,
    };
  } catch {
    return {};
  }
}

/** PEER_UNREACHABLE (retryable) for the peer at `url` (already stripped of credentials and query). */
export function unreachableError(url: string, reason: string, details: Record<string, unknown>, cause?: unknown): ConsortError {
  return new ConsortError("PEER_UNREACHABLE", `peer ${url} unreachable: ${reason}`, {
    retryable: true,
    cause,
    details: { url, ...details },
  });
}

/** The client-side error for a non-2xx answer `status` with error body `body` from the peer at `url`. */
export function remoteError(url: string, status: number, body: Uint8Array): ConsortError {
  const remote = parseRemoteError(body);
  const details: Record<string, unknown> = { url, status };
  if (remote.code !== undefined) details.remoteCode = remote.code;
  if (remote.details !== undefined) details.remoteDetails = remote.details;
  const what = `${status}${remote.code === undefined ? "" : ` ${remote.code}`}`;
  if (status >= 500 || status === 408 || status === 429) {
    return unreachableError(url, `answered ${what}${remote.message === undefined ? "" : `: ${remote.message}`}`, details);
  }
  return new ConsortError("PEER_REJECTED", `peer ${url} rejected the request (${what}): ${remote.message ?? "no error message"}`, {
    retryable: remote.retryable === true,
    details,
  });
}
