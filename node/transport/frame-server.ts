/**
 * The raw node:http routes for peer frames (./peer-frame.ts), mounted in
 * front of express by startNodeApi (./http-server.ts). Express adds ~100 µs
 * per request on this class of machine and a round of the MPC engine has a
 * 500 µs budget for six messages, so the hot path is a plain request handler
 * that copies the body once and answers with as few bytes as possible.
 *
 *   POST /v1/frames          body = one record (frame or checkpoint)
 *                            -> 204, or the JSON error of ./http-errors.ts
 *
 *   GET /v1/frames/stream    with "Upgrade: consort-frames/1": answered 101, then the
 *                            connection carries exactly what the streamed POST below
 *                            carries (records in, acknowledgements out), with no
 *                            chunked coding or HTTP parsing per record. The link's
 *                            default; 400/405 for a wrong protocol or method.
 *
 *   POST /v1/frames/stream   body = a stream of records, each as
 *                              u32 length (big-endian) || record
 *                            -> 200, body = a stream of acknowledgements
 *                              u32 seq || u16 status [|| u32 length || JSON error body]
 *                            status 204 = stored; otherwise the HTTP status of the
 *                            error a plain POST would have got, with the same JSON.
 *                            seq numbers the records of this stream from 0. After
 *                            a record it cannot read (empty, oversize, cut short)
 *                            the server acknowledges that seq with the error,
 *                            reads nothing more, and ends the response once the
 *                            records before it are acknowledged.
 *
 * A stream is one long HTTP/1.1 request whose body and response are sent at
 * the same time over one keep-alive connection. Acknowledgements of stored
 * records are batched (ackDelayMs): on loopback a write costs its writer
 * ~60 µs here, because the kernel delivers the segment in the writer's
 * syscall, and an acknowledgement per frame would double the writes of a
 * round. Nobody waits on them in a round (PeerChannel.exchange returns when
 * the peers' frames are in); they free the sender's retransmission buffer. Measured on the 2-core
 * machine of issue 3 (three processes, 1-element frames, no crypto): one
 * POST per frame costs ~1.8 ms of CPU per all-to-all round (~300 µs per
 * frame, request and response parsing on both ends), a stream ~0.6 ms (~100
 * µs per frame). HTTP/2 with one bidirectional stream per peer measured the
 * same for small frames and ~40% slower for 3.2 MB ones, so HTTP/1.1 it is.
 * Records on one stream are processed concurrently (a record waiting for an
 * unknown task must not hold up the others), hence the explicit seq.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Socket } from "node:net";
import type { Duplex, Readable, Writable } from "node:stream";
import { ConsortError, isConsortError } from "../errors.ts";
import { describeValue } from "./binary-codec.ts";
import { errorResponse, failureEvent, jsonText, rawErrorResponse, requestError } from "./http-errors.ts";

export const FRAMES_PATH = "/v1/frames";
export const FRAME_STREAM_PATH = "/v1/frames/stream";
export const FRAME_CONTENT_TYPE = "application/octet-stream";
/** Status of an acknowledgement for a stored record. */
export const ACK_STORED = 204;
/** The protocol token of an upgraded frame stream (GET /v1/frames/stream, "Upgrade: consort-frames/1"). */
export const FRAME_UPGRADE_PROTOCOL = "consort-frames/1";
/** An upgraded connection with no traffic for this long is closed (the client retires idle ones after 15 s). */
const UPGRADED_IDLE_MS = 120_000;
/** Acknowledgements that wait together at most; more are written at once. */
const ACK_BATCH = 256;

export interface FrameRoutesOptions {
  /**
   * Takes one record (a frame or a checkpoint): resolves once it is stored,
   * throws a ConsortError to reject it. The bytes are the handler's to keep.
   */
  receive(record: Uint8Array): Promise<void> | void;
  /** Largest record accepted, in bytes (413 beyond). */
  maxRecordBytes: number;
  /** Records of one stream in processing before reading it pauses; defaults to 64. */
  maxInFlight?: number;
  /**
   * Longest a stream's acknowledgement of a stored record waits to share a
   * write with others; defaults to 10 ms. Rejections are sent at once.
   */
  ackDelayMs?: number;
  /**
   * An upgraded connection with no traffic in either direction for between
   * this and twice this long is closed; defaults to 120 s.
   */
  upgradedIdleMs?: number;
  /** Receives one structured event per rejected record (level, status, code, and for 500s the real error). */
  logger?: (event: Record<string, unknown>) => void;
}

export interface FrameRoutes {
  /** Serves the request if it is one of the frame routes (returns true), else leaves it alone (false). */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /**
   * Takes over the connection if the upgrade request is for the frame stream
   * (returns true; it answers 101, or an HTTP error and closes), else leaves
   * it alone (false).
   */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Ends every open stream (the server is closing). */
  closeStreams(): void;
}

/**
 * Splits a byte stream of `u32 length || record` items into records, whatever
 * the chunk boundaries. Records lying whole in one chunk are returned as
 * views of it (no copy); others are copied once into a buffer of their size.
 * An empty or oversize record throws BAD_REQUEST (details.status 400 or 413).
 */
export class RecordSplitter {
  readonly #maxBytes: number;
  readonly #lengthBytes = Buffer.allocUnsafe(4);
  #lengthHave = 0;
  #record: Buffer | undefined;
  #recordHave = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Whether the stream so far ends inside an item. */
  get partial(): boolean {
    return this.#record !== undefined || this.#lengthHave !== 0;
  }

  push(chunk: Buffer, onRecord: (record: Buffer) => void): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#record === undefined) {
        const take = Math.min(4 - this.#lengthHave, chunk.length - at);
        chunk.copy(this.#lengthBytes, this.#lengthHave, at, at + take);
        this.#lengthHave += take;
        at += take;
        if (this.#lengthHave < 4) return;
        this.#lengthHave = 0;
        const length = this.#lengthBytes.readUInt32BE(0);
        if (length === 0) {
          throw new ConsortError("BAD_REQUEST", "empty record in frame stream", { details: { field: "record", status: 400 } });
        }
        if (length > this.#maxBytes) {
          throw new ConsortError("BAD_REQUEST", `record of ${length} bytes exceeds the ${this.#maxBytes}-byte limit`, {
            details: { field: "record", status: 413, limit: this.#maxBytes },
          });
        }
        if (chunk.length - at >= length) {
          onRecord(chunk.subarray(at, at + length));
          at += length;
          continue;
        }
        this.#record = Buffer.allocUnsafe(length);
        this.#recordHave = 0;
      }
      const record = this.#record;
      const take = Math.min(record.length - this.#recordHave, chunk.length - at);
      chunk.copy(record, this.#recordHave, at, at + take);
      this.#recordHave += take;
      at += take;
      if (this.#recordHave === record.length) {
        this.#record = undefined;
        onRecord(record);
      }
    }
  }
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return "";
  const q = url.indexOf("?");
  return q < 0 ? url : url.slice(0, q);
}

function isOctetStream(req: IncomingMessage): boolean {
  const type = req.headers["content-type"];
  return typeof type === "string" && type.toLowerCase().startsWith(FRAME_CONTENT_TYPE);
}

/** The acknowledgement record for `seq` (204 = stored, else status + JSON error). */
function ackRecord(seq: number, status: number, errorJson?: string): Buffer {
  if (errorJson === undefined) {
    const out = Buffer.allocUnsafe(6);
    out.writeUInt32BE(seq, 0);
    out.writeUInt16BE(status, 4);
    return out;
  }
  const json = Buffer.from(errorJson, "utf8");
  const out = Buffer.allocUnsafe(10 + json.length);
  out.writeUInt32BE(seq, 0);
  out.writeUInt16BE(status, 4);
  out.writeUInt32BE(json.length, 6);
  json.copy(out, 10);
  return out;
}

export function createFrameRoutes(options: FrameRoutesOptions): FrameRoutes {
  if (!Number.isSafeInteger(options.maxRecordBytes) || options.maxRecordBytes <= 0 || options.maxRecordBytes > 0xffff_ffff) {
    throw new ConsortError("CONFIG_INVALID", `maxRecordBytes must be an integer in 1..2^32-1, got ${describeValue(options.maxRecordBytes)}`);
  }
  const maxInFlight = options.maxInFlight ?? 64;
  if (!Number.isSafeInteger(maxInFlight) || maxInFlight <= 0) {
    throw new ConsortError("CONFIG_INVALID", `maxInFlight must be a positive integer, got ${describeValue(maxInFlight)}`);
  }
  const ackDelayMs = options.ackDelayMs ?? 10;
  if (!Number.isFinite(ackDelayMs) || ackDelayMs < 0) {
    throw new ConsortError("CONFIG_INVALID", `ackDelayMs must be a non-negative number, got ${describeValue(ackDelayMs)}`);
  }
  const upgradedIdleMs = options.upgradedIdleMs ?? UPGRADED_IDLE_MS;
  if (!Number.isSafeInteger(upgradedIdleMs) || upgradedIdleMs <= 0) {
    throw new ConsortError("CONFIG_INVALID", `upgradedIdleMs must be a positive integer, got ${describeValue(upgradedIdleMs)}`);
  }
  const maxBytes = options.maxRecordBytes;
  /** Sockets of open streams, streamed POSTs and upgraded connections alike. */
  const streams = new Set<Duplex>();
  /**
   * Upgraded connections and their traffic (bytes read + written) at the
   * last sweep. Idle ones are found by a sweep every upgradedIdleMs, not by
   * socket.setTimeout: that re-arms a timer on every read and write, a few
   * µs per frame on the round path.
   */
  const upgraded = new Map<Socket, number>();
  let sweep: NodeJS.Timeout | undefined;
  const sweepIdle = () => {
    for (const [socket, seen] of upgraded) {
      const traffic = socket.bytesRead + socket.bytesWritten;
      if (traffic === seen) socket.destroy();
      else upgraded.set(socket, traffic);
    }
    if (upgraded.size === 0) {
      clearInterval(sweep);
      sweep = undefined;
    }
  };
  const log = (event: Record<string, unknown>) => {
    try {
      options.logger?.(event);
    } catch {
      // A failing logger must not turn a response into a crash.
    }
  };

  /** What a peer is told about one record: stored (204), or the error response it may see. */
  interface Outcome {
    status: number;
    json?: string;
  }
  const STORED: Outcome = { status: ACK_STORED };
  const refused = (err: unknown, path: string): Outcome => {
    const response = errorResponse(isConsortError(err) ? err : undefined);
    log(failureEvent("POST", path, response, err));
    return { status: response.status, json: jsonText(response.body) };
  };

  /**
   * Runs the handler and turns whatever it throws into the response a peer
   * may see: an Outcome at once when the handler finished synchronously (a
   * round's frame on an open session: its acknowledgement is queued in the
   * same turn), else a promise of it.
   */
  function handleRecord(record: Uint8Array, path: string): Outcome | Promise<Outcome> {
    let pending: void | Promise<void>;
    try {
      pending = options.receive(record);
    } catch (err) {
      return refused(err, path);
    }
    if (pending === undefined) return STORED;
    return pending.then(
      () => STORED,
      (err: unknown) => refused(err, path),
    );
  }

  function sendError(res: ServerResponse, error: ConsortError, close: boolean): void {
    const response = errorResponse(error);
    log(failureEvent("POST", "frames", response, error));
    const body = jsonText(response.body);
    const headers: Record<string, string | number> = { "content-type": "application/json", "content-length": Buffer.byteLength(body) };
    if (close) headers.connection = "close";
    res.writeHead(response.status, headers);
    res.end(body);
  }

  function single(req: IncomingMessage, res: ServerResponse): void {
    if (!isOctetStream(req)) {
      const error = requestError(415, `content type must be ${FRAME_CONTENT_TYPE}, got ${describeValue(req.headers["content-type"] ?? "none")}`, {
        field: "content-type",
        expected: FRAME_CONTENT_TYPE,
      });
      req.resume();
      sendError(res, error, false);
      return;
    }
    const declared = req.headers["content-length"] === undefined ? undefined : Number(req.headers["content-length"]);
    if (declared !== undefined && declared > maxBytes) {
      // Do not read a body we will refuse; close so the rest of it is not parsed as a request.
      sendError(res, requestError(413, `request body exceeds the ${maxBytes}-byte limit`, { field: "body", limit: maxBytes }), true);
      req.destroy();
      return;
    }
    // One copy: straight into a buffer of the declared size (chunked bodies are gathered).
    let body: Buffer | undefined = declared === undefined ? undefined : Buffer.allocUnsafe(declared);
    const chunks: Buffer[] = [];
    let received = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      if (received + chunk.length > (declared ?? maxBytes)) {
        failed = true;
        sendError(res, requestError(413, `request body exceeds the ${declared ?? maxBytes}-byte limit`, { field: "body", limit: maxBytes }), true);
        req.destroy();
        return;
      }
      if (body !== undefined) chunk.copy(body, received);
      else chunks.push(chunk);
      received += chunk.length;
    });
    req.on("end", () => {
      if (failed) return;
      if (body === undefined) body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
      else if (received !== body.length) {
        sendError(res, requestError(400, "request body was cut short", { field: "body" }), true);
        return;
      }
      void Promise.resolve(handleRecord(body, FRAMES_PATH)).then(({ status, json }) => {
        if (res.destroyed) return;
        if (json === undefined) {
          res.writeHead(status);
          res.end();
        } else {
          res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(json) });
          res.end(json);
        }
      });
    });
  }

  function stream(req: IncomingMessage, res: ServerResponse): void {
    if (!isOctetStream(req)) {
      req.resume();
      sendError(
        res,
        requestError(415, `content type must be ${FRAME_CONTENT_TYPE}, got ${describeValue(req.headers["content-type"] ?? "none")}`, {
          field: "content-type",
          expected: FRAME_CONTENT_TYPE,
        }),
        false,
      );
      return;
    }
    const socket = req.socket;
    streams.add(socket);
    res.writeHead(200, { "content-type": FRAME_CONTENT_TYPE, "cache-control": "no-store" });
    res.flushHeaders();
    serveRecords(req, res, FRAME_STREAM_PATH);
    req.on("close", () => streams.delete(socket));
  }

  /**
   * GET /v1/frames/stream with "Upgrade: consort-frames/1" (RFC 9110 §7.8):
   * after the 101 the connection carries the same records and
   * acknowledgements as a streamed POST, without chunked coding or the
   * HTTP parser on every record (~5-8% less CPU per small round here).
   */
  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (pathOf(req.url) !== FRAME_STREAM_PATH) return false;
    const refuse = (status: number, message: string, details: Record<string, unknown>) => {
      const response = errorResponse(requestError(status, message, details));
      log(failureEvent(req.method ?? "GET", FRAME_STREAM_PATH, response, undefined));
      socket.end(rawErrorResponse(response));
    };
    if (req.method !== "GET") {
      refuse(405, `upgrade the frame stream with GET, not ${describeValue(req.method)}`, { field: "method" });
      return true;
    }
    const protocol = req.headers.upgrade?.toLowerCase();
    if (protocol !== FRAME_UPGRADE_PROTOCOL) {
      refuse(400, `the frame stream upgrades to ${FRAME_UPGRADE_PROTOCOL}, not ${describeValue(req.headers.upgrade ?? "none")}`, {
        field: "upgrade",
        expected: FRAME_UPGRADE_PROTOCOL,
      });
      return true;
    }
    if (socket instanceof Socket) {
      socket.setNoDelay(true);
      upgraded.set(socket, -1);
      socket.on("close", () => upgraded.delete(socket));
      if (sweep === undefined) {
        sweep = setInterval(sweepIdle, upgradedIdleMs);
        sweep.unref();
      }
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${FRAME_UPGRADE_PROTOCOL}\r\n\r\n`);
    streams.add(socket);
    socket.on("close", () => streams.delete(socket));
    socket.on("error", () => socket.destroy());
    serveRecords(socket, socket, FRAME_STREAM_PATH, head);
    return true;
  }

  /**
   * Reads `u32 length || record` items from `input` and answers each with an
   * acknowledgement on `output` (the stream protocol at the top of this file).
   */
  function serveRecords(input: Readable, output: Writable, path: string, head?: Buffer): void {
    let seq = 0;
    let inFlight = 0;
    let ended = false;
    let stopped = false;
    // Acknowledgements of stored records wait up to ackDelayMs to share one write.
    let acks: Buffer[] = [];
    let ackTimer: NodeJS.Timeout | undefined;

    const flushAcks = () => {
      if (ackTimer !== undefined) {
        clearTimeout(ackTimer);
        ackTimer = undefined;
      }
      if (acks.length === 0 || output.writableEnded || output.destroyed) return;
      output.write(acks.length === 1 ? acks[0]! : Buffer.concat(acks));
      acks = [];
    };
    const writeAck = (ack: Buffer, urgent: boolean) => {
      acks.push(ack);
      if (urgent || acks.length >= ACK_BATCH) flushAcks();
      else if (ackTimer === undefined) ackTimer = setTimeout(flushAcks, ackDelayMs);
    };
    const finish = () => {
      flushAcks();
      if (!output.writableEnded && !output.destroyed) output.end();
    };
    const fail = (status: number, message: string, details: Record<string, unknown>) => {
      stopped = true;
      const error = requestError(status, message, details);
      const response = errorResponse(error);
      log(failureEvent("POST", path, response, error));
      writeAck(ackRecord(seq++, response.status, jsonText(response.body)), true);
      input.removeListener("data", onData);
      input.resume();
      if (inFlight === 0) finish();
    };
    const settle = (mySeq: number, { status, json }: Outcome) => {
      inFlight--;
      // A rejection goes out at once: the sender is waiting to retry or give up.
      writeAck(ackRecord(mySeq, status, json), json !== undefined);
      if (!stopped && input.isPaused() && inFlight < maxInFlight) input.resume();
      if ((ended || stopped) && inFlight === 0) finish();
    };
    const dispatch = (bytes: Buffer) => {
      const mySeq = seq++;
      inFlight++;
      if (inFlight >= maxInFlight) input.pause();
      const outcome = handleRecord(bytes, path);
      if (outcome instanceof Promise) void outcome.then((o) => settle(mySeq, o));
      else settle(mySeq, outcome);
    };
    const splitter = new RecordSplitter(maxBytes);
    const onData = (chunk: Buffer) => {
      if (stopped) return;
      try {
        splitter.push(chunk, dispatch);
      } catch (error) {
        const e = error as ConsortError;
        const status = isConsortError(e) && typeof e.details.status === "number" ? e.details.status : 400;
        fail(status, e.message, { field: "record", limit: maxBytes });
      }
    };
    if (head !== undefined && head.length > 0) onData(head);
    input.on("data", onData);
    input.on("end", () => {
      ended = true;
      if (!stopped && splitter.partial) {
        fail(400, "frame stream ended inside a record", { field: "record" });
        return;
      }
      if (inFlight === 0) finish();
    });
    input.on("close", () => {
      if (ackTimer !== undefined) clearTimeout(ackTimer);
    });
  }

  return {
    handle(req, res) {
      if (req.method !== "POST") return false;
      const path = pathOf(req.url);
      if (path === FRAMES_PATH) single(req, res);
      else if (path === FRAME_STREAM_PATH) stream(req, res);
      else return false;
      return true;
    },
    upgrade,
    closeStreams() {
      for (const socket of streams) socket.destroy();
      streams.clear();
      upgraded.clear();
      clearInterval(sweep);
      sweep = undefined;
    },
  };
}
