/**
 * The node's HTTP API: routing, body reading, input validation, signature
 * format checks, error mapping and connection limits, and nothing else.
 * Protocol decisions (is this sender a party of the task? is the task
 * accepting inputs?) belong to the handlers the daemon passes in.
 *
 *   GET  /v1/health                   -> handlers.health()
 *   GET  /v1/tasks/:taskId            -> handlers.taskStatus(taskId)
 *   POST /v1/tasks/:taskId/shares     -> handlers.submitShare(submission)      application/json
 *   GET  /v1/programs/:hash           -> handlers.getProgram(hash)             application/octet-stream
 *   POST /v1/tasks/:taskId/outputs    -> handlers.requesterOutputs(request)    application/json
 *
 * and, when startNodeApi is given `frames`, outside express (./frame-server.ts):
 *
 *   GET  /v1/frames/stream            upgraded to consort-frames/1 for an authenticated peer
 *
 * Bodies: nothing is read before the route is known and the body's size is
 * bounded for it. A share submission's bound comes from the task
 * (handlers.shareBodyLimit: its program fixes how many values a data owner
 * sends, so an unknown task is refused, and a known one's bound is the size
 * of its largest legitimate submission, before a byte of the body is read);
 * other JSON bodies are small signed requests (maxJsonBytes). A body is
 * read as it arrives and counted: a declared or actual size over the bound
 * is answered 413 and the connection closed, so the rest is never read.
 * gzip, deflate and br bodies are accepted and bounded after decoding; a
 * corrupt one is 400. The data owner named in a body is not known before it
 * is read, so the bound is the task's largest submission, not the owner's:
 * a header naming the owner would be as unauthenticated as the body.
 *
 * Every error is JSON `{ "error": { code, message, retryable, details } }`.
 * Unexpected exceptions become a generic 500 INTERNAL: their text goes to the
 * logger, never to the client. Errors reading a request are never 500.
 */
import { parseOutputRequest, type OutputRequest } from "./output-request.ts";
import { createServer } from "node:http";
import type { IncomingMessage, Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex, Readable } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import express from "express";
import type { NextFunction, Request, Response } from "express";
import { ConsortError, isConsortError } from "../errors.ts";
import { UINT256_MAX, describeValue } from "./binary-codec.ts";
import { ConnectionGuard } from "./connection-guard.ts";
import type { ConnectionCounts, ConnectionLimits } from "./connection-guard.ts";
import { createFrameRoutes } from "./frame-server.ts";
import type { FrameRoutesOptions } from "./frame-server.ts";
import { endSocket, errorResponse, failureEvent, jsonText, rawErrorResponse, requestError } from "./http-errors.ts";
import type { JsonErrorBody } from "./http-errors.ts";
import { parseShareSubmission } from "./share-submission.ts";
import type { ShareSubmission } from "./share-submission.ts";

export type { JsonErrorBody };

export interface NodeApiHandlers {
  /** GET /v1/health */
  health(): Promise<Record<string, unknown>>;
  /** GET /v1/tasks/:taskId */
  taskStatus(taskId: bigint): Promise<Record<string, unknown>>;
  /**
   * The largest body a share submission for `taskId` can have, in bytes
   * (share-submission.ts maxShareSubmissionBytes for the task's program and
   * parties); throws (UNKNOWN_TASK, ...) to refuse before the body is read.
   * Without it, options.maxShareBytes bounds every submission.
   */
  shareBodyLimit?(taskId: bigint): Promise<number> | number;
  /** POST /v1/tasks/:taskId/shares; the submission is parsed but its signature is NOT yet verified. */
  submitShare(submission: ShareSubmission): Promise<Record<string, unknown>>;
  /** GET /v1/programs/:hash (0x-hex32, lower case); absent -> 404. */
  getProgram?(programHash: string): Promise<Uint8Array>;
  /** POST /v1/tasks/:taskId/outputs; the request is parsed, its signature and requester are the handler's checks. */
  requesterOutputs?(request: OutputRequest): Promise<Record<string, unknown>>;
}

export const DEFAULT_MAX_JSON_BYTES = 64 * 1024;
export const DEFAULT_MAX_SHARE_BYTES = 1024 * 1024;

export interface NodeApiOptions {
  /** Largest JSON body of the routes other than share submissions (413 beyond); defaults to 64 KiB. */
  maxJsonBytes?: number;
  /** Largest share submission body when handlers.shareBodyLimit is absent; defaults to 1 MiB. */
  maxShareBytes?: number;
  /** Receives one structured event per failed request (level, status, code, and for 500s the real error). */
  logger?: (event: Record<string, unknown>) => void;
}

/** Parses a decimal uint256 path segment (no sign, no leading zeros); BAD_REQUEST naming `field`. */
export function parseTaskId(value: unknown, field = "taskId"): bigint {
  if (typeof value !== "string" || !/^(0|[1-9][0-9]{0,77})$/.test(value) || BigInt(value) > UINT256_MAX) {
    throw new ConsortError("BAD_REQUEST", `${field}: expected a decimal uint256, got ${describeValue(value)}`, {
      details: { field },
    });
  }
  return BigInt(value);
}

/** JSON with bigints as decimal strings (task ids and counters are bigints throughout the node). */
function sendJson(res: Response, status: number, body: unknown): void {
  res.status(status).type("application/json").send(jsonText(body));
}

function requireContentType(req: Request, type: string): void {
  if (!req.is(type)) {
    throw requestError(415, `content type must be ${type}, got ${describeValue(req.get("content-type") ?? "none")}`, {
      field: "content-type",
      expected: type,
    });
  }
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.get("content-type") ?? "")?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    throw requestError(415, `charset must be utf-8, got ${describeValue(charset)}`, { field: "content-type" });
  }
}

const DECODERS: Record<string, () => NodeJS.ReadWriteStream> = {
  gzip: createGunzip,
  "x-gzip": createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

function tooLarge(limit: number): ConsortError {
  return requestError(413, `request body exceeds the ${limit}-byte limit`, { field: "body", limit });
}

/**
 * Reads a JSON body of at most `limit` bytes (on the wire and after
 * decoding) as it arrives, and parses it. 413 as soon as the declared or
 * counted size passes the limit, 415 for an unknown content encoding, 400
 * for a corrupt encoding, a cut-short body or bad JSON.
 */
function readJsonBody(req: Request, limit: number): Promise<unknown> {
  const declared = req.get("content-length");
  if (declared !== undefined && !(Number(declared) <= limit)) return Promise.reject(tooLarge(limit));
  const encoding = (req.get("content-encoding") ?? "identity").trim().toLowerCase();
  let decoder: NodeJS.ReadWriteStream | undefined;
  if (encoding !== "identity" && encoding !== "") {
    const make = DECODERS[encoding];
    if (make === undefined) {
      return Promise.reject(
        requestError(415, `content encoding must be identity, gzip, deflate or br, got ${describeValue(encoding)}`, { field: "content-encoding" }),
      );
    }
    decoder = make();
  }
  return new Promise<unknown>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let wire = 0;
    let total = 0;
    let done = false;
    const fail = (error: ConsortError) => {
      if (done) return;
      done = true;
      chunks.length = 0;
      req.off("data", onWire);
      if (decoder !== undefined) {
        req.unpipe(decoder as unknown as NodeJS.WritableStream);
        (decoder as unknown as Readable).destroy();
      }
      // What is left of the body is not read: pause, and the error response closes the connection.
      req.pause();
      reject(error);
    };
    const onWire = (chunk: Buffer) => {
      wire += chunk.length;
      if (wire > limit) fail(tooLarge(limit));
    };
    const onBody = (chunk: Buffer) => {
      if (done) return;
      total += chunk.length;
      if (total > limit) fail(tooLarge(limit));
      else chunks.push(chunk);
    };
    const onEnd = () => {
      if (done) return;
      done = true;
      const text = Buffer.concat(chunks, total).toString("utf8");
      chunks.length = 0;
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(requestError(400, "request body is not valid JSON", { field: "body" }));
      }
    };
    const cutShort = () => fail(requestError(400, "request body was cut short", { field: "body" }));
    req.on("aborted", cutShort);
    req.on("error", cutShort);
    req.on("close", () => {
      if (!req.complete) cutShort();
    });
    if (decoder === undefined) {
      req.on("data", (chunk: Buffer) => {
        onWire(chunk);
        onBody(chunk);
      });
      req.on("end", onEnd);
      return;
    }
    const out = decoder as unknown as Readable;
    req.on("data", onWire);
    out.on("data", onBody);
    out.on("end", onEnd);
    out.on("error", () => fail(requestError(400, `request body is not valid ${encoding}`, { field: "content-encoding", encoding })));
    req.pipe(decoder as unknown as NodeJS.WritableStream);
  });
}

/** A 4xx error thrown by express or node:http itself (a bad percent-escape in the path, ...) as the ConsortError a client sees. */
function fromHttpError(err: unknown): ConsortError | undefined {
  const status = (err as { status?: unknown; statusCode?: unknown } | null)?.status ?? (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status !== "number" || status < 400 || status > 499) return undefined;
  return requestError(status, status === 413 ? "request body is too large" : "request could not be read", { field: "request" });
}

/**
 * The express app. Handlers may throw ConsortErrors to choose the response; anything else
 * is logged and answered with 500 INTERNAL. No exception escapes to the process.
 */
export function createNodeApi(handlers: NodeApiHandlers, options: NodeApiOptions = {}): express.Express {
  const maxJsonBytes = options.maxJsonBytes ?? DEFAULT_MAX_JSON_BYTES;
  const maxShareBytes = options.maxShareBytes ?? DEFAULT_MAX_SHARE_BYTES;
  for (const [name, value] of [["maxJsonBytes", maxJsonBytes], ["maxShareBytes", maxShareBytes]] as const) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new ConsortError("CONFIG_INVALID", `${name} must be a positive integer, got ${describeValue(value)}`);
  }
  const log = (event: Record<string, unknown>) => {
    try {
      options.logger?.(event);
    } catch {
      // A failing logger must not turn a response into a crash.
    }
  };
  const shareLimit = async (taskId: bigint): Promise<number> => {
    if (handlers.shareBodyLimit === undefined) return maxShareBytes;
    const limit = await handlers.shareBodyLimit(taskId);
    if (!Number.isSafeInteger(limit) || limit <= 0) throw new ConsortError("INTERNAL", `shareBodyLimit gave ${describeValue(limit)} for task ${taskId}`);
    return limit;
  };

  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  app.get("/v1/health", async (_req, res) => {
    sendJson(res, 200, await handlers.health());
  });

  app.get("/v1/tasks/:taskId", async (req, res) => {
    const taskId = parseTaskId(req.params.taskId);
    sendJson(res, 200, await handlers.taskStatus(taskId));
  });

  app.post("/v1/tasks/:taskId/shares", async (req, res) => {
    const taskId = parseTaskId(req.params.taskId);
    requireContentType(req, "application/json");
    const submission = parseShareSubmission(await readJsonBody(req, await shareLimit(taskId)));
    if (BigInt(submission.taskId) !== taskId) {
      throw new ConsortError("BAD_REQUEST", `taskId: body says ${submission.taskId} but the path says ${taskId}`, {
        details: { field: "taskId", path: taskId.toString(), body: submission.taskId },
      });
    }
    sendJson(res, 200, await handlers.submitShare(submission));
  });

  app.post("/v1/tasks/:taskId/outputs", async (req, res) => {
    const taskId = parseTaskId(req.params.taskId);
    requireContentType(req, "application/json");
    if (handlers.requesterOutputs === undefined) throw new ConsortError("NOT_FOUND", "this node does not serve requester outputs");
    const request = parseOutputRequest(await readJsonBody(req, maxJsonBytes));
    if (BigInt(request.taskId) !== taskId) {
      throw new ConsortError("BAD_REQUEST", `taskId: body says ${request.taskId} but the path says ${taskId}`, { details: { field: "taskId" } });
    }
    sendJson(res, 200, await handlers.requesterOutputs(request));
  });

  app.get("/v1/programs/:hash", async (req, res) => {
    const hash = req.params.hash;
    if (typeof hash !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(hash)) {
      throw new ConsortError("BAD_REQUEST", `programHash: expected 0x and 64 hex digits, got ${describeValue(hash)}`, {
        details: { field: "programHash" },
      });
    }
    if (handlers.getProgram === undefined) {
      throw new ConsortError("NOT_FOUND", "this node does not serve programs");
    }
    const bytes = await handlers.getProgram(hash.toLowerCase());
    res.status(200).type("application/octet-stream").send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new ConsortError("NOT_FOUND", `no route ${req.method} ${describeValue(req.path)}`, { details: { method: req.method, path: req.path.slice(0, 200) } }));
  });

  // Express recognises error middleware by its four parameters.
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    const error: ConsortError | undefined = isConsortError(err) ? err : fromHttpError(err);
    const response = errorResponse(error);
    log(failureEvent(req.method, req.path, response, err));

    if (res.headersSent) {
      // Too late for a JSON error: let express close the connection.
      next(err);
      return;
    }
    if (response.status === 503) res.set("Retry-After", "1");
    // A body left unread (refused before or while reading it) is not read to find the next request.
    if (!req.complete) res.set("Connection", "close");
    sendJson(res, response.status, response.body);
  });

  return app;
}

export interface RunningNodeApi {
  /** e.g. "http://127.0.0.1:41234" (the real port when 0 was asked for). */
  url: string;
  server: Server;
  /** Open sockets, and how many were closed to make room or refused by the connection limits. */
  connections(): ConnectionCounts;
  close(): Promise<void>;
}

export interface ServerTimeouts {
  /** A request's headers must be complete this long after its connection opened or its previous request ended; defaults to 10 s. */
  headersTimeoutMs?: number;
  /** A whole request (headers and body) must arrive within this; defaults to 60 s. */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this; defaults to 5 s. */
  keepAliveTimeoutMs?: number;
  /** How often the two timeouts above are checked (node:http checks them by sweep); defaults to 1 s. */
  checkIntervalMs?: number;
}

export interface StartNodeApiOptions {
  /** Serve the upgraded frame stream (./frame-server.ts) outside express. */
  frames?: FrameRoutesOptions;
  /** Connection caps (./connection-guard.ts). */
  limits?: ConnectionLimits;
  timeouts?: ServerTimeouts;
}

/** Listens on host:port (port 0 picks a free one). CONFIG_INVALID if the address cannot be bound or a limit is not a positive integer. */
export function startNodeApi(
  app: express.Express,
  where: { host: string; port: number },
  options: StartNodeApiOptions = {},
): Promise<RunningNodeApi> {
  const guard = new ConnectionGuard(options.limits);
  const t = options.timeouts ?? {};
  const timeouts = {
    headersTimeout: t.headersTimeoutMs ?? 10_000,
    requestTimeout: t.requestTimeoutMs ?? 60_000,
    keepAliveTimeout: t.keepAliveTimeoutMs ?? 5_000,
    connectionsCheckingInterval: t.checkIntervalMs ?? 1_000,
  };
  for (const [name, value] of Object.entries(timeouts)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new ConsortError("CONFIG_INVALID", `${name} must be a positive integer of ms, got ${describeValue(value)}`);
  }
  if (timeouts.requestTimeout < timeouts.headersTimeout) {
    throw new ConsortError("CONFIG_INVALID", `requestTimeoutMs (${timeouts.requestTimeout}) must not be below headersTimeoutMs (${timeouts.headersTimeout})`);
  }
  const frames =
    options.frames === undefined
      ? undefined
      : createFrameRoutes({
          ...options.frames,
          onAuthenticating: (socket) => {
            guard.busy(socket);
            options.frames?.onAuthenticating?.(socket);
          },
          onUpgraded: (socket, peer) => {
            guard.hold(socket);
            options.frames?.onUpgraded?.(socket, peer);
          },
        });
  // Nagle off: a frame of a dependent round is one small write that must leave at once.
  const server = createServer({ noDelay: true, keepAlive: true, ...timeouts }, (req, res) => {
    const socket = req.socket;
    guard.busy(socket);
    res.once("close", () => guard.idle(socket));
    app(req, res);
  });
  server.keepAliveTimeout = timeouts.keepAliveTimeout;
  server.on("connection", (socket: Socket) => guard.admit(socket));
  // A client that breaks the HTTP syntax gets a 400 and the socket is closed (node:http's default, kept explicit).
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === "ECONNRESET") {
      socket.destroy();
      return;
    }
    const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
    endSocket(socket, rawErrorResponse(errorResponse(requestError(status, status === 408 ? "request timed out" : "malformed HTTP request", { field: "request" }))));
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (frames?.upgrade(req, socket, head)) return;
    endSocket(socket, rawErrorResponse(errorResponse(new ConsortError("NOT_FOUND", `no upgrade route ${describeValue(req.url ?? "")}`))));
  });
  return new Promise((resolve, reject) => {
    const onError = (cause: unknown) => {
      const code = (cause as { code?: unknown }).code;
      reject(
        new ConsortError("CONFIG_INVALID", `cannot listen on ${where.host}:${where.port}: ${String(code ?? cause)}`, {
          cause,
          details: { host: where.host, port: where.port },
        }),
      );
    };
    server.once("error", onError);
    server.once("listening", () => {
      server.off("error", onError);
      const address = server.address() as AddressInfo;
      const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
      resolve({
        url: `http://${host}:${address.port}`,
        server,
        connections: () => guard.counts,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            // Upgraded streams are no longer the server's: end them so close() does not wait for them.
            frames?.closeStreams();
            // Idle keep-alive sockets would otherwise hold close() open for keepAliveTimeout.
            server.closeIdleConnections();
          }),
      });
    });
    server.listen(where.port, where.host);
  });
}
