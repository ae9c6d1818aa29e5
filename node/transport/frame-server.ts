/**
 * The peer frame route (./peer-frame.ts), served by startNodeApi
 * (./http-server.ts) outside express: the round path must not pay for
 * express's routing on every record.
 *
 *   GET /v1/frames/stream    with "Upgrade: consort-frames/1" and a link hello in the
 *                            "consort-link-hello" header (./link-hello.ts): the hello
 *                            is checked first (authenticate), and only a party's
 *                            connection is answered 101; anything else gets the
 *                            JSON error of ./http-errors.ts and is closed
 *                            (400/405 for a wrong protocol or method).
 *
 *   After the 101 the connection carries records one way, each as
 *                              u32 length (big-endian) || record
 *   and acknowledgements the other,
 *                              u32 seq || u16 status [|| u32 length || JSON error body]
 *   status 204 = stored; otherwise the HTTP status and JSON of the error. seq
 *   numbers the records of this connection from 0. After a record it cannot
 *   read (empty, oversize, cut short) the server acknowledges that seq with
 *   the error, reads nothing more, and ends the connection once the records
 *   before it are acknowledged.
 *
 * The hello is in the upgrade request so that nobody but a party of a task
 * this node knows can hold an upgraded connection or make it allocate a
 * record buffer: unauthenticated sockets never get past HTTP, where the
 * connection limits of startNodeApi hold. Acknowledgements of stored
 * records are batched (ackDelayMs): nobody waits on them in a round
 * (PeerChannel.exchange returns when the peers' frames are in); they free
 * the sender's retransmission buffer, and one write per acknowledgement
 * would double the writes of a round. Records on one connection are
 * processed concurrently (a record waiting for an unknown task must not hold
 * up the others), hence the explicit seq.
 */
import type { IncomingMessage } from "node:http";
import { Socket } from "node:net";
import type { Duplex, Readable, Writable } from "node:stream";
import { ConsortError, isConsortError } from "../errors.ts";
import { describeValue } from "./binary-codec.ts";
import { endSocket, errorResponse, failureEvent, jsonText, rawErrorResponse, requestError } from "./http-errors.ts";

export const FRAME_STREAM_PATH = "/v1/frames/stream";
/** Status of an acknowledgement for a stored record. */
export const ACK_STORED = 204;
/** The protocol token of an upgraded frame stream (GET /v1/frames/stream, "Upgrade: consort-frames/1"). */
export const FRAME_UPGRADE_PROTOCOL = "consort-frames/1";
/** The request header that carries the link hello (./link-hello.ts). */
export const LINK_HELLO_HEADER = "consort-link-hello";
/** Longest hello header accepted; a real one is 242 characters. */
const MAX_HELLO_CHARS = 1024;
/**
 * An upgraded connection with no traffic for this long is closed. Above the
 * client's 15 s idle retirement, so a client normally ends its own streams.
 */
const UPGRADED_IDLE_MS = 20_000;
/** Longest the hello check may take before the upgrade is refused (503). */
const AUTH_TIMEOUT_MS = 5_000;
/** Upgraded connections one peer may hold; a new one beyond this closes its oldest. */
const STREAMS_PER_PEER = 4;
/** Acknowledgements that wait together at most; more are written at once. */
const ACK_BATCH = 256;

export interface FrameRoutesOptions {
  /**
   * Takes one record (a frame or a checkpoint): resolves once it is stored,
   * throws a ConsortError to reject it. The bytes are the handler's to keep.
   */
  receive(record: Uint8Array): Promise<void> | void;
  /**
   * Checks the link hello of an upgrade request (the consort-link-hello
   * header) and returns the peer's address; throws a ConsortError to refuse
   * the upgrade with that error's status. Runs before the 101.
   */
  authenticate(hello: string): Promise<string> | string;
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
   * this and twice this long is closed; defaults to 20 s.
   */
  upgradedIdleMs?: number;
  /** Longest authenticate() may take before the upgrade is refused with 503; defaults to 5 s. */
  authTimeoutMs?: number;
  /** Upgraded connections one peer may hold at once (a new one closes its oldest); defaults to 4. */
  maxStreamsPerPeer?: number;
  /** Told about an upgrade request's socket before its hello is checked. */
  onAuthenticating?(socket: Duplex): void;
  /** Told about a socket once its peer is authenticated, before the 101. */
  onUpgraded?(socket: Duplex, peer: string): void;
  /** Receives one structured event per rejected record or upgrade (level, status, code, and for 500s the real error). */
  logger?: (event: Record<string, unknown>) => void;
}

export interface FrameRoutes {
  /**
   * Takes over the connection if the upgrade request is for the frame stream
   * (returns true; it authenticates, then answers 101, or an HTTP error and
   * closes), else leaves it alone (false).
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
  if (typeof options.authenticate !== "function") {
    throw new ConsortError("CONFIG_INVALID", "the frame routes need an authenticate callback (an unauthenticated upgrade is never answered 101)");
  }
  const positive = (name: string, value: number) => {
    if (!Number.isSafeInteger(value) || value <= 0) throw new ConsortError("CONFIG_INVALID", `${name} must be a positive integer, got ${describeValue(value)}`);
    return value;
  };
  const maxInFlight = positive("maxInFlight", options.maxInFlight ?? 64);
  const ackDelayMs = options.ackDelayMs ?? 10;
  if (!Number.isFinite(ackDelayMs) || ackDelayMs < 0) {
    throw new ConsortError("CONFIG_INVALID", `ackDelayMs must be a non-negative number, got ${describeValue(ackDelayMs)}`);
  }
  const upgradedIdleMs = positive("upgradedIdleMs", options.upgradedIdleMs ?? UPGRADED_IDLE_MS);
  const authTimeoutMs = positive("authTimeoutMs", options.authTimeoutMs ?? AUTH_TIMEOUT_MS);
  const maxStreamsPerPeer = positive("maxStreamsPerPeer", options.maxStreamsPerPeer ?? STREAMS_PER_PEER);
  const maxBytes = options.maxRecordBytes;
  /** Sockets being authenticated or upgraded. */
  const streams = new Set<Duplex>();
  /** Each peer's upgraded sockets, oldest first. */
  const byPeer = new Map<string, Set<Duplex>>();
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

  /** Checks the hello within authTimeoutMs; a refusal is the ConsortError to answer with. */
  function authenticate(hello: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new ConsortError("PEER_UNREACHABLE", `the link hello could not be checked within ${authTimeoutMs} ms`, { retryable: true })),
        authTimeoutMs,
      );
      Promise.resolve()
        .then(() => options.authenticate(hello))
        .then(resolve, reject)
        .finally(() => clearTimeout(timer));
    });
  }

  /** Keeps at most maxStreamsPerPeer upgraded sockets per peer: a reconnecting peer replaces its stalest. */
  function admit(peer: string, socket: Duplex): void {
    let set = byPeer.get(peer);
    if (set === undefined) byPeer.set(peer, (set = new Set()));
    set.add(socket);
    socket.on("close", () => {
      set.delete(socket);
      if (set.size === 0 && byPeer.get(peer) === set) byPeer.delete(peer);
    });
    for (const old of set) {
      if (set.size <= maxStreamsPerPeer) break;
      set.delete(old);
      old.destroy();
    }
  }

  /**
   * GET /v1/frames/stream with "Upgrade: consort-frames/1" (RFC 9110 §7.8)
   * and a link hello: after the 101 the connection carries the records and
   * acknowledgements of the top of this file, without chunked coding or the
   * HTTP parser on every record.
   */
  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (pathOf(req.url) !== FRAME_STREAM_PATH) return false;
    const refuse = (error: ConsortError, original?: unknown) => {
      const response = errorResponse(error);
      log(failureEvent(req.method ?? "GET", FRAME_STREAM_PATH, response, original ?? error));
      endSocket(socket, rawErrorResponse(response));
    };
    if (req.method !== "GET") {
      refuse(requestError(405, `upgrade the frame stream with GET, not ${describeValue(req.method)}`, { field: "method" }));
      return true;
    }
    const protocol = req.headers.upgrade?.toLowerCase();
    if (protocol !== FRAME_UPGRADE_PROTOCOL) {
      refuse(
        requestError(400, `the frame stream upgrades to ${FRAME_UPGRADE_PROTOCOL}, not ${describeValue(req.headers.upgrade ?? "none")}`, {
          field: "upgrade",
          expected: FRAME_UPGRADE_PROTOCOL,
        }),
      );
      return true;
    }
    const hello = req.headers[LINK_HELLO_HEADER];
    if (typeof hello !== "string" || hello.length === 0 || hello.length > MAX_HELLO_CHARS) {
      refuse(
        new ConsortError("BAD_SIGNATURE", `the frame stream needs a link hello in the ${LINK_HELLO_HEADER} header (at most ${MAX_HELLO_CHARS} characters)`, {
          details: { field: LINK_HELLO_HEADER },
        }),
      );
      return true;
    }
    // Nothing is read before the peer is known: bytes it sends early wait in the kernel.
    socket.pause();
    streams.add(socket);
    socket.on("close", () => streams.delete(socket));
    socket.on("error", () => socket.destroy());
    options.onAuthenticating?.(socket);
    authenticate(hello).then(
      (peer) => {
        if (socket.destroyed || !streams.has(socket)) return;
        if (socket instanceof Socket) {
          socket.setNoDelay(true);
          upgraded.set(socket, -1);
          socket.on("close", () => upgraded.delete(socket));
          if (sweep === undefined) {
            sweep = setInterval(sweepIdle, upgradedIdleMs);
            sweep.unref();
          }
        }
        admit(peer, socket);
        options.onUpgraded?.(socket, peer);
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${FRAME_UPGRADE_PROTOCOL}\r\n\r\n`);
        serveRecords(socket, socket, FRAME_STREAM_PATH, head);
        socket.resume();
      },
      (err: unknown) => {
        if (socket.destroyed) return;
        refuse(isConsortError(err) ? err : new ConsortError("INTERNAL", "the link hello check failed"), err);
      },
    );
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
    upgrade,
    closeStreams() {
      for (const socket of streams) socket.destroy();
      streams.clear();
      upgraded.clear();
      byPeer.clear();
      clearInterval(sweep);
      sweep = undefined;
    },
  };
}
