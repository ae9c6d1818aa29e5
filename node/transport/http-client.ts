/**
 * HTTP client for talking to other nodes' APIs (./http-server.ts), on global
 * fetch with a hard per-request timeout that also covers reading the body.
 *
 * Failures are ConsortErrors a caller can act on:
 *   - connection refused/reset, DNS failure, timeout, 408/429/5xx -> PEER_UNREACHABLE (retryable)
 *   - any other non-2xx answer -> PEER_REJECTED carrying the remote code in details.remoteCode,
 *     retryable iff the remote said so
 *   - a 2xx answer that is not what the API promises -> PROTOCOL_INVALID_MESSAGE
 */
import { ConsortError, isConsortError } from "../errors.ts";
import { describeValue } from "./binary-codec.ts";
import { remoteError, unreachableError } from "./http-errors.ts";
import type { ShareSubmission } from "./share-submission.ts";

export interface RequestOptions {
  /** Whole-request deadline (connect, send, wait, read body). */
  timeoutMs: number;
  /** Largest response body accepted; defaults to 64 MiB. */
  maxResponseBytes?: number;
}

const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** The URL without credentials or query, safe for messages and logs. */
function displayUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function buildUrl(baseUrl: string, path: string): URL {
  let base: URL;
  try {
    base = new URL(baseUrl);
  } catch {
    throw new ConsortError("CONFIG_INVALID", `peer URL ${describeValue(baseUrl)} is not a URL`, { details: { baseUrl } });
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new ConsortError("CONFIG_INVALID", `peer URL must be http(s), got ${base.protocol}`, { details: { baseUrl: displayUrl(base) } });
  }
  if (!path.startsWith("/")) throw new ConsortError("INTERNAL", `request path must start with "/", got ${describeValue(path)}`);
  // Keep any path prefix of the base (a node behind a reverse proxy at /consort/).
  return new URL(`${base.origin}${base.pathname.replace(/\/+$/, "")}${path}`);
}

function assertTimeout(options: RequestOptions): void {
  if (!Number.isFinite(options?.timeoutMs) || options.timeoutMs <= 0) {
    throw new ConsortError("CONFIG_INVALID", `timeoutMs must be a positive number, got ${describeValue(options?.timeoutMs)}`);
  }
}

function unreachable(url: URL, reason: string, details: Record<string, unknown>, cause?: unknown): ConsortError {
  return unreachableError(displayUrl(url), reason, details, cause);
}

function fetchFailure(url: URL, err: unknown, timeoutMs: number): ConsortError {
  if (isConsortError(err)) return err;
  const name = (err as { name?: unknown })?.name;
  if (name === "TimeoutError" || name === "AbortError") {
    return unreachable(url, `no answer within ${timeoutMs} ms`, { timeoutMs, reason: "timeout" }, err);
  }
  // undici reports network errors as TypeError("fetch failed") with the system error as cause.
  const cause = (err as { cause?: { code?: unknown; message?: unknown } })?.cause;
  const code = typeof cause?.code === "string" ? cause.code : undefined;
  const reason = code ?? (err instanceof Error ? err.message : String(err));
  return unreachable(url, reason, { reason }, err);
}

async function readBody(res: Response, url: URL, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(res.headers.get("content-length"));
  const tooLarge = () =>
    new ConsortError("PROTOCOL_INVALID_MESSAGE", `peer ${displayUrl(url)} sent a response larger than ${maxBytes} bytes`, {
      details: { url: displayUrl(url), limit: maxBytes },
    });
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (res.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

interface Answer {
  url: URL;
  status: number;
  contentType: string;
  body: Uint8Array;
}

async function request(
  baseUrl: string,
  path: string,
  init: { method: "GET" | "POST"; contentType?: string; body?: Uint8Array | string },
  options: RequestOptions,
): Promise<Answer> {
  assertTimeout(options);
  const url = buildUrl(baseUrl, path);
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const headers: Record<string, string> = { accept: "application/json, application/octet-stream" };
  if (init.contentType !== undefined) headers["content-type"] = init.contentType;

  let status: number;
  let contentType: string;
  let body: Uint8Array;
  try {
    const res = await fetch(url, {
      method: init.method,
      headers,
      body: init.body,
      // A node that redirects its API elsewhere is misconfigured or hostile: do not follow.
      redirect: "manual",
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    status = res.status;
    contentType = res.headers.get("content-type") ?? "";
    body = await readBody(res, url, maxBytes);
  } catch (err) {
    throw fetchFailure(url, err, options.timeoutMs);
  }

  if (status >= 200 && status < 300) return { url, status, contentType, body };

  throw remoteError(displayUrl(url), status, body);
}

function decodeJson(answer: Answer): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(answer.body));
  } catch (cause) {
    throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `peer ${displayUrl(answer.url)} answered with invalid JSON`, {
      cause,
      details: { url: displayUrl(answer.url), status: answer.status },
    });
  }
}

/** POST /v1/tasks/:taskId/shares; returns the node's JSON answer. */
export async function postShareSubmission(
  baseUrl: string,
  submission: ShareSubmission,
  options: RequestOptions,
): Promise<Record<string, unknown>> {
  if (typeof submission?.taskId !== "string" || !/^(0|[1-9][0-9]*)$/.test(submission.taskId)) {
    throw new ConsortError("BAD_REQUEST", `taskId: expected a decimal string, got ${describeValue(submission?.taskId)}`, {
      details: { field: "taskId" },
    });
  }
  const answer = await request(
    baseUrl,
    `/v1/tasks/${submission.taskId}/shares`,
    { method: "POST", contentType: "application/json", body: JSON.stringify(submission) },
    options,
  );
  const json = decodeJson(answer);
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `peer ${displayUrl(answer.url)} answered with a non-object`, {
      details: { url: displayUrl(answer.url) },
    });
  }
  return json as Record<string, unknown>;
}

/** GET `path` (starting with "/") and parse the JSON answer; validate it at the call site. */
export async function getJson(baseUrl: string, path: string, options: RequestOptions): Promise<unknown> {
  return decodeJson(await request(baseUrl, path, { method: "GET" }, options));
}

/** POST `body` as JSON to `path` (starting with "/") and parse the JSON answer; validate it at the call site. */
export async function postJson(baseUrl: string, path: string, body: unknown, options: RequestOptions): Promise<unknown> {
  return decodeJson(await request(baseUrl, path, { method: "POST", contentType: "application/json", body: JSON.stringify(body) }, options));
}

/** GET `path` (starting with "/") and return the raw body. */
export async function getBytes(baseUrl: string, path: string, options: RequestOptions): Promise<Uint8Array> {
  return (await request(baseUrl, path, { method: "GET" }, options)).body;
}

export interface RetryOptions {
  /** Total tries including the first (>= 1). */
  attempts: number;
  /** Delay before the first retry; doubles each time up to maxDelayMs. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Which errors to retry; defaults to ConsortErrors with retryable = true. Replaces the default when given. */
  isRetryable?: (error: unknown) => boolean;
  /** Called before each wait, e.g. to log. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

export function isRetryableError(error: unknown): boolean {
  return isConsortError(error) && error.retryable;
}

/**
 * Runs `fn` until it succeeds, throws a non-retryable error, or `attempts` tries are used;
 * then rethrows the last error. Waits follow capped exponential backoff with "equal jitter"
 * (half fixed, half random), so that parties retrying the same peer spread out.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { attempts, initialDelayMs, maxDelayMs } = options;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new ConsortError("CONFIG_INVALID", `retry attempts must be an integer >= 1, got ${describeValue(attempts)}`);
  }
  if (!(initialDelayMs >= 0) || !(maxDelayMs >= initialDelayMs)) {
    throw new ConsortError("CONFIG_INVALID", `retry delays must satisfy 0 <= initialDelayMs <= maxDelayMs`, {
      details: { initialDelayMs, maxDelayMs },
    });
  }
  const retryable = options.isRetryable ?? isRetryableError;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= attempts || !retryable(error)) throw error;
      const cap = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1));
      const delayMs = cap / 2 + Math.random() * (cap / 2);
      options.onRetry?.(error, attempt, delayMs);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}
