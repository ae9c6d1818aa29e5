import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { gunzipSync } from "node:zlib";
import {
  FetchRequest,
  JsonRpcProvider,
  Network,
  makeError,
  type FetchCancelSignal,
  type GetUrlResponse,
  type JsonRpcPayload,
  type JsonRpcResult,
  type Provider,
} from "ethers";
import { ConsortError } from "../errors.ts";

/** How long one JSON-RPC request may go unanswered unless the caller says otherwise. */
export const DEFAULT_RPC_TIMEOUT_MS = 30_000;

export interface ProviderOptions {
  /** How often ethers polls for new blocks and receipts. */
  pollingIntervalMs?: number;
  /** How long the initial eth_chainId probe may take. */
  timeoutMs?: number;
  /**
   * How long any one JSON-RPC request may take before it fails with a
   * retryable RPC_UNAVAILABLE naming the endpoint (default DEFAULT_RPC_TIMEOUT_MS).
   * An RPC that accepts connections but never answers would otherwise hold
   * every call (and the node's chain watcher) silently.
   */
  requestTimeoutMs?: number;
}

/**
 * The RPC URL as it may appear in logs and errors: scheme, host and port.
 * Providers put API keys in the path (".../v3/<key>"), the query or the
 * user info, so whatever else the URL holds is replaced by "[redacted]".
 */
export function redactRpcUrl(rpcUrl: string): string {
  let url: URL;
  try {
    url = new URL(rpcUrl);
  } catch {
    return "(an RPC URL that does not parse)";
  }
  const credentials = url.username !== "" || url.password !== "" ? "[redacted]@" : "";
  const rest = (url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "" ? "/[redacted]" : "";
  return `${url.protocol}//${credentials}${url.host}${rest}`;
}

function checkHttpUrl(rpcUrl: string): void {
  if (rpcUrl.trim() === "") throw new ConsortError("CONFIG_INVALID", "no RPC URL was given");
  let protocol: string;
  try {
    protocol = new URL(rpcUrl).protocol;
  } catch (cause) {
    throw new ConsortError("CONFIG_INVALID", `the RPC URL ${redactRpcUrl(rpcUrl)} is not a URL`, { cause });
  }
  if (protocol !== "http:" && protocol !== "https:") {
    throw new ConsortError("CONFIG_INVALID", `the RPC URL ${redactRpcUrl(rpcUrl)} uses ${protocol.slice(0, -1)}; Consort talks JSON-RPC over http or https only`, {
      details: { rpcUrl: redactRpcUrl(rpcUrl) },
    });
  }
}

/**
 * ethers' own Node transport only rejects on an idle socket timeout and leaves
 * the connection open, so a silent RPC would gather one open socket per poll.
 * This one holds the whole request (connect, send, answer) to `req.timeout`
 * and destroys the connection when it runs out or the request is cancelled.
 */
async function getUrlWithDeadline(req: FetchRequest, signal?: FetchCancelSignal): Promise<GetUrlResponse> {
  const url = new URL(req.url);
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise<GetUrlResponse>((resolve, reject) => {
    const request = send(req.url, { method: req.method, headers: { ...req.headers } });
    const timer = setTimeout(() => {
      request.destroy(makeError("request timeout", "TIMEOUT", { operation: "request.send", reason: "timeout" }));
    }, req.timeout);
    const settle = () => clearTimeout(timer);
    signal?.addListener(() => request.destroy(makeError("request cancelled", "CANCELLED")));
    request.once("error", (error) => {
      settle();
      reject(error);
    });
    request.once("response", (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.once("error", (error) => {
        settle();
        reject(error);
      });
      response.once("end", () => {
        settle();
        let body = Buffer.concat(chunks);
        try {
          if (response.headers["content-encoding"] === "gzip" && body.length > 0) body = gunzipSync(body);
        } catch (error) {
          reject(error);
          return;
        }
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(response.headers)) {
          if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
        }
        resolve({ statusCode: response.statusCode ?? 0, statusMessage: response.statusMessage ?? "", headers, body: new Uint8Array(body) });
      });
    });
    if (req.body !== null) request.write(Buffer.from(req.body));
    request.end();
  });
}

function jsonRpcRequest(rpcUrl: string, timeoutMs: number): FetchRequest {
  const request = new FetchRequest(rpcUrl);
  request.timeout = timeoutMs;
  request.getUrlFunc = getUrlWithDeadline;
  return request;
}

function methodsOf(payload: JsonRpcPayload | JsonRpcPayload[]): string {
  return Array.isArray(payload) ? [...new Set(payload.map((p) => p.method))].join(", ") : payload.method;
}

/**
 * A failed JSON-RPC exchange as a ConsortError naming the endpoint without
 * its secrets. The original error is not kept as the cause: ethers puts the
 * full request URL into its messages.
 */
export function rpcRequestError(rpcUrl: string, method: string, timeoutMs: number, error: unknown): ConsortError {
  if (error instanceof ConsortError) return error;
  const where = `RPC endpoint ${redactRpcUrl(rpcUrl)}`;
  const e = error as { code?: unknown; response?: { statusCode?: unknown } } | null;
  const code = typeof e?.code === "string" ? e.code : undefined;
  const details = { rpcUrl: redactRpcUrl(rpcUrl), method, ...(code === undefined ? {} : { reason: code }) };
  if (code === "TIMEOUT") {
    return new ConsortError("RPC_UNAVAILABLE", `${where} did not answer ${method} within ${timeoutMs} ms`, {
      retryable: true,
      details: { ...details, timeoutMs },
    });
  }
  const status = typeof e?.response?.statusCode === "number" ? e.response.statusCode : undefined;
  if (status === 599) {
    // ethers' own status for giving up after retrying HTTP 429 (rate limited) answers.
    return new ConsortError("RPC_UNAVAILABLE", `${where} kept refusing ${method} with HTTP 429 (rate limited); ethers stopped retrying`, {
      retryable: true,
      details: { ...details, status: 429 },
    });
  }
  if (status !== undefined && status !== 0) {
    // 401 and 403 mean the key or the plan: asking again will not help.
    const retryable = status !== 401 && status !== 403;
    return new ConsortError("RPC_UNAVAILABLE", `${where} answered ${method} with HTTP ${status}`, {
      retryable,
      details: { ...details, status },
    });
  }
  if (code === "BAD_DATA" || code === "UNSUPPORTED_OPERATION" || code === "CANCELLED") {
    const what = code === "BAD_DATA" ? "answered with something other than JSON-RPC" : code === "CANCELLED" ? "request was cancelled" : "cannot be used";
    return new ConsortError("RPC_UNAVAILABLE", `${where} ${what} (during ${method})`, { retryable: code !== "UNSUPPORTED_OPERATION", details });
  }
  return new ConsortError("RPC_UNAVAILABLE", `${where} is unreachable (${code === undefined ? "" : `${code}, `}during ${method})`, {
    retryable: true,
    details,
  });
}

/**
 * The provider every Consort component uses: each request carries the
 * deadline, and every transport failure is a ConsortError naming the
 * endpoint without its secrets. Replies that are JSON-RPC errors (reverts,
 * bad parameters) go through ethers' usual decoding unchanged.
 */
class DeadlineJsonRpcProvider extends JsonRpcProvider {
  readonly #rpcUrl: string;
  readonly #timeoutMs: number;

  constructor(rpcUrl: string, timeoutMs: number, network: Network, pollingIntervalMs: number) {
    super(jsonRpcRequest(rpcUrl, timeoutMs), network, { staticNetwork: true, pollingInterval: pollingIntervalMs, batchMaxCount: 1 });
    this.#rpcUrl = rpcUrl;
    this.#timeoutMs = timeoutMs;
  }

  override async _send(payload: JsonRpcPayload | JsonRpcPayload[]): Promise<JsonRpcResult[]> {
    try {
      return await super._send(payload);
    } catch (error) {
      throw rpcRequestError(this.#rpcUrl, methodsOf(payload), this.#timeoutMs, error);
    }
  }
}

/**
 * Asks an RPC endpoint for its chain id with one plain JSON-RPC call.
 * ethers' JsonRpcProvider retries network detection forever (logging to the
 * console) when the endpoint is down; we probe first so that an RPC that is
 * down becomes one clear, retryable error naming the URL (without secrets).
 */
export async function probeChainId(rpcUrl: string, timeoutMs = 5_000): Promise<bigint> {
  checkHttpUrl(rpcUrl);
  const request = jsonRpcRequest(rpcUrl, timeoutMs);
  request.body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] });
  request.setHeader("content-type", "application/json");
  let status = 0;
  let body: unknown;
  try {
    const response = await request.send();
    status = response.statusCode;
    response.assertOk();
    body = response.bodyJson;
  } catch (error) {
    throw rpcRequestError(rpcUrl, "eth_chainId", timeoutMs, error);
  }
  const result = (body as { result?: unknown } | null)?.result;
  if (typeof result !== "string" || !/^0x[0-9a-fA-F]+$/.test(result)) {
    throw new ConsortError("RPC_UNAVAILABLE", `RPC endpoint ${redactRpcUrl(rpcUrl)} did not return a chain id`, {
      retryable: true,
      details: { rpcUrl: redactRpcUrl(rpcUrl), status },
    });
  }
  return BigInt(result);
}

/**
 * A JsonRpcProvider pinned to the chain the endpoint reported, so ethers never
 * re-detects it, with a deadline on every request (see ProviderOptions).
 */
export async function connectProvider(rpcUrl: string, options: ProviderOptions = {}): Promise<JsonRpcProvider> {
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_RPC_TIMEOUT_MS;
  if (!Number.isSafeInteger(requestTimeoutMs) || requestTimeoutMs <= 0) {
    throw new ConsortError("CONFIG_INVALID", `the RPC request timeout must be a positive whole number of milliseconds, got ${requestTimeoutMs}`);
  }
  const chainId = await probeChainId(rpcUrl, options.timeoutMs);
  const pollingIntervalMs = options.pollingIntervalMs ?? 1_000;
  const provider = new DeadlineJsonRpcProvider(rpcUrl, requestTimeoutMs, Network.from(chainId), pollingIntervalMs);
  provider.pollingInterval = pollingIntervalMs;
  return provider;
}

/**
 * The chain's clock: the latest block's timestamp, unix seconds. Deadlines
 * are set and judged by it, not by the local clock, which may differ. A
 * failed read is a retryable RPC_UNAVAILABLE.
 */
export async function chainNow(provider: Provider): Promise<bigint> {
  let block;
  try {
    block = await provider.getBlock("latest");
  } catch (error) {
    if (error instanceof ConsortError) throw error;
    throw new ConsortError("RPC_UNAVAILABLE", "reading the latest block failed", { retryable: true, cause: error });
  }
  if (block === null) throw new ConsortError("RPC_UNAVAILABLE", "the RPC endpoint has no latest block", { retryable: true });
  return BigInt(block.timestamp);
}
