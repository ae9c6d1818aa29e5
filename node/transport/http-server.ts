/**
 * The node's HTTP API: routing, body parsing, input validation, signature
 * format checks and error mapping, and nothing else. Protocol decisions (is
 * this sender a party of the task? is the task accepting inputs?) belong to
 * the handlers the daemon passes in.
 *
 *   GET  /v1/health                   -> handlers.health()
 *   GET  /v1/tasks/:taskId            -> handlers.taskStatus(taskId)
 *   POST /v1/tasks/:taskId/shares     -> handlers.submitShare(submission)      application/json
 *   POST /v1/messages                 -> handlers.deliverMessage(message)      application/octet-stream
 *   GET  /v1/programs/:hash           -> handlers.getProgram(hash)             application/octet-stream
 *   POST /v1/tasks/:taskId/outputs    -> handlers.requesterOutputs(request)    application/json
 *
 * and, when startNodeApi is given `frames`, in front of express (see ./frame-server.ts):
 *
 *   POST /v1/frames                   one peer frame or checkpoint             application/octet-stream
 *   POST /v1/frames/stream            a stream of them, acknowledged in order  application/octet-stream
 *   GET  /v1/frames/stream            the same stream on a connection upgraded to consort-frames/1
 *
 * Every error is JSON `{ "error": { code, message, retryable, details } }`.
 * Unexpected exceptions become a generic 500 INTERNAL: their text goes to the
 * logger, never to the client.
 */
import { parseOutputRequest, type OutputRequest } from "./output-request.ts";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import express from "express";
import type { NextFunction, Request, Response } from "express";
import { ConsortError, isConsortError } from "../errors.ts";
import { UINT256_MAX, describeValue } from "./binary-codec.ts";
import { createFrameRoutes } from "./frame-server.ts";
import type { FrameRoutesOptions } from "./frame-server.ts";
import { errorResponse, failureEvent, jsonText, rawErrorResponse, requestError } from "./http-errors.ts";
import type { JsonErrorBody } from "./http-errors.ts";
import { decodeSignedPeerMessage, verifyPeerMessageSignature } from "./peer-message.ts";
import type { SignedPeerMessage } from "./peer-message.ts";
import { parseShareSubmission } from "./share-submission.ts";
import type { ShareSubmission } from "./share-submission.ts";

export type { JsonErrorBody };

export interface NodeApiHandlers {
  /** GET /v1/health */
  health(): Promise<Record<string, unknown>>;
  /** GET /v1/tasks/:taskId */
  taskStatus(taskId: bigint): Promise<Record<string, unknown>>;
  /** POST /v1/tasks/:taskId/shares; the submission is parsed but its signature is NOT yet verified. */
  submitShare(submission: ShareSubmission): Promise<Record<string, unknown>>;
  /** POST /v1/messages; the signature recovers to `message.from` (membership is the handler's check). */
  deliverMessage(message: SignedPeerMessage): Promise<void>;
  /** GET /v1/programs/:hash (0x-hex32, lower case); absent -> 404. */
  getProgram?(programHash: string): Promise<Uint8Array>;
  /** POST /v1/tasks/:taskId/outputs; the request is parsed, its signature and requester are the handler's checks. */
  requesterOutputs?(request: OutputRequest): Promise<Record<string, unknown>>;
}

export interface NodeApiOptions {
  /** Largest accepted POST /v1/messages body, in bytes (413 beyond). */
  maxMessageBytes: number;
  /** Largest accepted JSON body, in bytes; defaults to 2 * maxMessageBytes (hex doubles the size). */
  maxJsonBytes?: number;
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
}

interface BodyParserError {
  type: string;
  status: number;
}

function isBodyParserError(err: unknown): err is BodyParserError & Error {
  return (
    err instanceof Error &&
    typeof (err as Partial<BodyParserError>).type === "string" &&
    typeof (err as Partial<BodyParserError>).status === "number"
  );
}

/** Maps body-parser/raw-body failures (their `type` strings) to BAD_REQUEST with a client-useful message. */
function fromBodyParserError(err: BodyParserError, limits: { json: number; raw: number }, path: string): ConsortError | undefined {
  if (err.status < 400 || err.status > 499) return undefined;
  switch (err.type) {
    case "entity.too.large": {
      const limit = path === "/v1/messages" ? limits.raw : limits.json;
      return requestError(413, `request body exceeds the ${limit}-byte limit`, { field: "body", limit });
    }
    case "entity.parse.failed":
      return requestError(400, "request body is not valid JSON", { field: "body" });
    case "encoding.unsupported":
    case "charset.unsupported":
      return requestError(415, "unsupported content encoding or charset", { field: "content-encoding" });
    case "request.aborted":
    case "request.size.invalid":
      return requestError(400, "request body was cut short", { field: "body" });
    default:
      return requestError(err.status, "request body could not be read", { field: "body" });
  }
}

/**
 * The express app. Handlers may throw ConsortErrors to choose the response; anything else
 * is logged and answered with 500 INTERNAL. No exception escapes to the process.
 */
export function createNodeApi(handlers: NodeApiHandlers, options: NodeApiOptions): express.Express {
  if (!Number.isSafeInteger(options.maxMessageBytes) || options.maxMessageBytes <= 0) {
    throw new ConsortError("CONFIG_INVALID", `maxMessageBytes must be a positive integer, got ${describeValue(options.maxMessageBytes)}`);
  }
  const maxJsonBytes = options.maxJsonBytes ?? 2 * options.maxMessageBytes;
  if (!Number.isSafeInteger(maxJsonBytes) || maxJsonBytes <= 0) {
    throw new ConsortError("CONFIG_INVALID", `maxJsonBytes must be a positive integer, got ${describeValue(maxJsonBytes)}`);
  }
  const limits = { json: maxJsonBytes, raw: options.maxMessageBytes };
  const log = (event: Record<string, unknown>) => {
    try {
      options.logger?.(event);
    } catch {
      // A failing logger must not turn a response into a crash.
    }
  };

  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  const json = express.json({ limit: maxJsonBytes, strict: true, type: "application/json" });
  const raw = express.raw({ limit: options.maxMessageBytes, type: "application/octet-stream" });

  app.get("/v1/health", async (_req, res) => {
    sendJson(res, 200, await handlers.health());
  });

  app.get("/v1/tasks/:taskId", async (req, res) => {
    const taskId = parseTaskId(req.params.taskId);
    sendJson(res, 200, await handlers.taskStatus(taskId));
  });

  app.post("/v1/tasks/:taskId/shares", json, async (req, res) => {
    const taskId = parseTaskId(req.params.taskId);
    requireContentType(req, "application/json");
    const submission = parseShareSubmission(req.body);
    if (BigInt(submission.taskId) !== taskId) {
      throw new ConsortError("BAD_REQUEST", `taskId: body says ${submission.taskId} but the path says ${taskId}`, {
        details: { field: "taskId", path: taskId.toString(), body: submission.taskId },
      });
    }
    sendJson(res, 200, await handlers.submitShare(submission));
  });

  app.post("/v1/messages", raw, async (req, res) => {
    requireContentType(req, "application/octet-stream");
    const body = req.body as unknown;
    if (!(body instanceof Uint8Array)) throw requestError(400, "request body is missing", { field: "body" });
    const message = decodeSignedPeerMessage(body);
    verifyPeerMessageSignature(message);
    await handlers.deliverMessage(message);
    sendJson(res, 202, { accepted: true });
  });

  app.post("/v1/tasks/:taskId/outputs", json, async (req, res) => {
    const taskId = parseTaskId(req.params.taskId);
    requireContentType(req, "application/json");
    const request = parseOutputRequest(req.body);
    if (BigInt(request.taskId) !== taskId) {
      throw new ConsortError("BAD_REQUEST", `taskId: body says ${request.taskId} but the path says ${taskId}`, { details: { field: "taskId" } });
    }
    if (handlers.requesterOutputs === undefined) throw new ConsortError("NOT_FOUND", "this node does not serve requester outputs");
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
    let error: ConsortError | undefined = isConsortError(err) ? err : undefined;
    if (error === undefined && isBodyParserError(err)) error = fromBodyParserError(err, limits, req.path);

    const response = errorResponse(error);
    log(failureEvent(req.method, req.path, response, err));

    if (res.headersSent) {
      // Too late for a JSON error: let express close the connection.
      next(err);
      return;
    }
    if (response.status === 503) res.set("Retry-After", "1");
    sendJson(res, response.status, response.body);
  });

  return app;
}

export interface RunningNodeApi {
  /** e.g. "http://127.0.0.1:41234" (the real port when 0 was asked for). */
  url: string;
  server: Server;
  close(): Promise<void>;
}

export interface StartNodeApiOptions {
  /**
   * Serve POST /v1/frames and /v1/frames/stream with a raw node:http handler in
   * front of express (./frame-server.ts): express costs ~100 µs per request,
   * a quarter of the whole round budget of the MPC engine.
   */
  frames?: FrameRoutesOptions;
}

/** Listens on host:port (port 0 picks a free one). CONFIG_INVALID if the address cannot be bound. */
export function startNodeApi(
  app: express.Express,
  where: { host: string; port: number },
  options: StartNodeApiOptions = {},
): Promise<RunningNodeApi> {
  const frames = options.frames === undefined ? undefined : createFrameRoutes(options.frames);
  const listener =
    frames === undefined
      ? app
      : (req: IncomingMessage, res: ServerResponse) => {
          if (!frames.handle(req, res)) app(req, res);
        };
  // Nagle off: a frame of a dependent round is one small write that must leave at once.
  const server = createServer({ noDelay: true, keepAlive: true }, listener);
  if (frames !== undefined) {
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (frames.upgrade(req, socket, head)) return;
      socket.end(rawErrorResponse(errorResponse(new ConsortError("NOT_FOUND", `no upgrade route ${describeValue(req.url ?? "")}`))));
    });
  }
  return new Promise((resolve, reject) => {
    // Slow-loris protection: a peer must send headers and body within these limits.
    // (Frame streams retire themselves well within requestTimeout: ./frame-link.ts.)
    server.headersTimeout = 30_000;
    server.requestTimeout = 120_000;
    server.keepAliveTimeout = 5_000;
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
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            // Open frame streams are requests in progress: end them so close() does not wait for their retirement.
            frames?.closeStreams();
            // Idle keep-alive sockets would otherwise hold close() open for keepAliveTimeout.
            server.closeIdleConnections();
          }),
      });
    });
    server.listen(where.port, where.host);
  });
}
