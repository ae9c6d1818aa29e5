/**
 * The client side of the frame route (./frame-server.ts): delivers sealed
 * records (./peer-frame.ts) to peers, one persistent connection per peer
 * with Nagle off, opened as GET /v1/frames/stream with
 * "Upgrade: consort-frames/1" and a link hello (./link-hello.ts). After the
 * peer's 101 the connection carries the records one way and the
 * acknowledgements the other. A peer that answers anything else than 101
 * fails the records with its error (PEER_REJECTED, retryable iff it says so).
 *
 * A stream retires itself after maxStreamAgeMs or idleStreamMs without
 * traffic (below the server's idle cut), and any failure (connection reset,
 * peer restarted, no acknowledgement in time) fails its unacknowledged
 * records with retryable PEER_UNREACHABLE: the sender retries them on a
 * fresh stream, and the receiver accepts an identical record twice, so
 * nothing is lost or doubled.
 */
import http from "node:http";
import https from "node:https";
import type { ClientRequest, IncomingMessage } from "node:http";
import { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { ConsortError, isConsortError } from "../errors.ts";
import { describeValue } from "./binary-codec.ts";
import { ACK_STORED, FRAME_STREAM_PATH, FRAME_UPGRADE_PROTOCOL, LINK_HELLO_HEADER } from "./frame-server.ts";
import { remoteError, unreachableError } from "./http-errors.ts";
import type { SealedRecord } from "./peer-frame.ts";

export interface FrameLink {
  /**
   * Delivers one record to the node at `endpoint`: resolves once the peer
   * stored it; rejects with PEER_UNREACHABLE (retryable) when the peer cannot
   * be reached or did not answer within `timeoutMs`, or PEER_REJECTED (with
   * details.remoteCode, retryable iff the peer said so). `hello` makes the
   * link hello if a new connection must be opened for the record.
   */
  deliver(endpoint: string, record: SealedRecord, timeoutMs: number, hello: () => string): Promise<void>;
  /** Ends every connection; records in flight fail with PEER_UNREACHABLE. */
  close(): Promise<void>;
}

export interface HttpFrameLinkOptions {
  /** A stream takes no new records after this long; defaults to 60 s. */
  maxStreamAgeMs?: number;
  /** A stream with nothing in flight for this long is ended; defaults to 15 s (the server cuts idle ones at 20-40 s). */
  idleStreamMs?: number;
  /** Largest error body read from a peer; defaults to 64 KiB. */
  maxErrorBytes?: number;
}

interface Target {
  key: string;
  display: string;
  secure: boolean;
  hostname: string;
  port: number;
  basePath: string;
}

function parseEndpoint(endpoint: string): Target {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ConsortError("CONFIG_INVALID", `peer URL ${describeValue(endpoint)} is not a URL`, { details: { endpoint } });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConsortError("CONFIG_INVALID", `peer URL must be http(s), got ${url.protocol}`, { details: { endpoint: url.origin } });
  }
  const secure = url.protocol === "https:";
  // Keep any path prefix of the base (a node behind a reverse proxy at /consort/).
  const basePath = url.pathname.replace(/\/+$/, "");
  return {
    key: `${url.origin}${basePath}`,
    display: `${url.origin}${basePath}`,
    secure,
    hostname: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port === "" ? (secure ? 443 : 80) : Number(url.port),
    basePath,
  };
}

function networkFailure(display: string, err: unknown): ConsortError {
  if (isConsortError(err)) return err;
  const code = (err as { code?: unknown })?.code;
  const reason = typeof code === "string" ? code : err instanceof Error ? err.message : String(err);
  return unreachableError(display, reason, { reason }, err);
}

function readBody(res: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    res.on("data", (c: Buffer) => {
      if (total < limit) chunks.push(c.subarray(0, limit - total));
      total += c.length;
    });
    res.on("end", () => resolve(Buffer.concat(chunks)));
    res.on("error", () => resolve(Buffer.concat(chunks)));
    res.on("aborted", () => resolve(Buffer.concat(chunks)));
  });
}

interface Pending {
  resolve(): void;
  reject(error: ConsortError): void;
  /** performance.now() by which the acknowledgement must be in. */
  deadline: number;
  record: SealedRecord;
  timeoutMs: number;
}

/** One upgraded frame stream to one peer. */
class FrameStream {
  readonly #link: HttpFrameLink;
  readonly #target: Target;
  readonly #req: ClientRequest;
  /** The connection once the peer answered 101. */
  #socket: Duplex | undefined;
  /** Record parts written before the 101 arrived. */
  #queued: Buffer[] = [];
  readonly #pending = new Map<number, Pending>();
  readonly #created = Date.now();
  #nextSeq = 0;
  #dead = false;
  #retiring = false;
  #idleTimer: NodeJS.Timeout | undefined;
  /** One timer per stream checks acknowledgement deadlines (a timer per record costs more than the record). */
  #deadlineTimer: NodeJS.Timeout | undefined;
  #acks: Buffer = Buffer.alloc(0);

  constructor(link: HttpFrameLink, target: Target, hello: string) {
    this.#link = link;
    this.#target = target;
    const mod = target.secure ? https : http;
    this.#req = mod.request({
      hostname: target.hostname,
      port: target.port,
      method: "GET",
      path: `${target.basePath}${FRAME_STREAM_PATH}`,
      headers: { connection: "Upgrade", upgrade: FRAME_UPGRADE_PROTOCOL, [LINK_HELLO_HEADER]: hello },
      // Its own connection: the stream holds it for its whole life.
      agent: false,
    });
    this.#req.setNoDelay(true);
    this.#req.on("error", (err) => this.#kill(networkFailure(target.display, err)));
    this.#req.on("response", (res) => this.#onResponse(res));
    this.#req.on("upgrade", (res, socket, head) => this.#onUpgrade(res, socket, head));
    this.#req.end();
  }

  /** Whether new records may use this stream. */
  get usable(): boolean {
    return !this.#dead && !this.#retiring && Date.now() - this.#created < this.#link.maxStreamAgeMs;
  }

  send(record: SealedRecord, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const seq = this.#nextSeq++;
      this.#pending.set(seq, { resolve, reject, deadline: performance.now() + timeoutMs, record, timeoutMs });
      if (this.#deadlineTimer === undefined) this.#armDeadlines(timeoutMs);
      if (this.#idleTimer !== undefined) {
        clearTimeout(this.#idleTimer);
        this.#idleTimer = undefined;
      }
      const out = this.#socket;
      if (out === undefined) {
        for (const part of record.parts) this.#queued.push(part);
        return;
      }
      if (record.parts.length === 1) out.write(record.parts[0]!);
      else {
        out.cork();
        for (const part of record.parts) out.write(part);
        process.nextTick(() => out.uncork());
      }
    });
  }

  #onUpgrade(res: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#dead) {
      socket.destroy();
      return;
    }
    if (res.headers.upgrade?.toLowerCase() !== FRAME_UPGRADE_PROTOCOL) {
      socket.destroy();
      this.#kill(new ConsortError("PROTOCOL_INVALID_MESSAGE", `peer ${this.#target.display} upgraded to ${describeValue(res.headers.upgrade ?? "nothing")}, not ${FRAME_UPGRADE_PROTOCOL}`));
      return;
    }
    this.#socket = socket;
    if (socket instanceof Socket) socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onAcks(chunk));
    socket.on("end", () => this.#kill(unreachableError(this.#target.display, "the peer ended the frame stream", { reason: "stream-ended" })));
    socket.on("close", () => this.#kill(unreachableError(this.#target.display, "the frame stream was cut", { reason: "aborted" })));
    socket.on("error", (err) => this.#kill(networkFailure(this.#target.display, err)));
    if (this.#queued.length > 0) {
      socket.cork();
      for (const part of this.#queued) socket.write(part);
      this.#queued = [];
      process.nextTick(() => socket.uncork());
    }
    if (head.length > 0) this.#onAcks(head);
    if (this.#retiring && this.#pending.size === 0) socket.end();
  }

  #armDeadlines(inMs: number): void {
    this.#deadlineTimer = setTimeout(() => {
      this.#deadlineTimer = undefined;
      const now = performance.now();
      let next = Infinity;
      for (const p of this.#pending.values()) {
        if (p.deadline <= now) {
          // A peer that does not acknowledge in time is stuck or gone: drop the whole stream, the sender retries.
          this.#kill(unreachableError(this.#target.display, `no acknowledgement within ${p.timeoutMs} ms`, { timeoutMs: p.timeoutMs, reason: "timeout" }));
          return;
        }
        next = Math.min(next, p.deadline);
      }
      if (next !== Infinity) this.#armDeadlines(next - now);
    }, Math.max(1, Math.ceil(inMs)));
    this.#deadlineTimer.unref();
  }

  /** Takes no new records; ends the stream once every record in flight is acknowledged. */
  retire(): void {
    if (this.#retiring || this.#dead) return;
    this.#retiring = true;
    if (this.#pending.size === 0) this.#endWrites();
  }

  #endWrites(): void {
    if (this.#socket !== undefined) this.#socket.end();
    else this.#kill(unreachableError(this.#target.display, "the frame stream was retired", { reason: "closed" }));
  }

  /** Any answer but 101: the peer refused the stream (its error), or is not a Consort node. */
  #onResponse(res: IncomingMessage): void {
    void readBody(res, this.#link.maxErrorBytes).then((body) => {
      const status = res.statusCode ?? 0;
      this.#kill(
        status >= 200 && status < 300
          ? new ConsortError("PROTOCOL_INVALID_MESSAGE", `peer ${this.#target.display} answered the frame stream upgrade with ${status}, not 101`)
          : remoteError(this.#target.display, status, body),
      );
    });
  }

  #onAcks(chunk: Buffer): void {
    let acks = this.#acks.length === 0 ? chunk : Buffer.concat([this.#acks, chunk]);
    let at = 0;
    while (acks.length - at >= 6) {
      const seq = acks.readUInt32BE(at);
      const status = acks.readUInt16BE(at + 4);
      let errorBody: Buffer | undefined;
      let size = 6;
      if (status !== ACK_STORED) {
        if (acks.length - at < 10) break;
        const length = acks.readUInt32BE(at + 6);
        if (length > this.#link.maxErrorBytes) {
          this.#kill(new ConsortError("PROTOCOL_INVALID_MESSAGE", `peer ${this.#target.display} sent a ${length}-byte error record`));
          return;
        }
        if (acks.length - at < 10 + length) break;
        errorBody = acks.subarray(at + 10, at + 10 + length);
        size = 10 + length;
      }
      at += size;
      const pending = this.#pending.get(seq);
      if (pending === undefined) {
        this.#kill(new ConsortError("PROTOCOL_INVALID_MESSAGE", `peer ${this.#target.display} acknowledged record ${seq}, which is not in flight`));
        return;
      }
      this.#pending.delete(seq);
      if (errorBody === undefined) pending.resolve();
      else pending.reject(remoteError(this.#target.display, status, errorBody));
    }
    this.#acks = at === acks.length ? Buffer.alloc(0) : Buffer.from(acks.subarray(at));
    if (this.#pending.size === 0) {
      if (this.#retiring) this.#endWrites();
      else if (this.#idleTimer === undefined) {
        this.#idleTimer = setTimeout(() => this.retire(), this.#link.idleStreamMs);
        this.#idleTimer.unref();
      }
    }
  }

  /** Fails everything in flight with `error` and closes the connection. */
  #kill(error: ConsortError): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
    if (!this.#dead) {
      this.#dead = true;
      this.#link.forget(this.#target.key, this);
      this.#req.destroy();
      this.#socket?.destroy();
      this.#queued = [];
    }
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
  }

  destroy(): void {
    this.#kill(unreachableError(this.#target.display, "the frame link was closed", { reason: "closed" }));
  }
}

/** Delivers records over upgraded HTTP/1.1 connections (see the top of this file). */
export class HttpFrameLink implements FrameLink {
  readonly maxStreamAgeMs: number;
  readonly idleStreamMs: number;
  readonly maxErrorBytes: number;
  readonly #streams = new Map<string, FrameStream>();
  readonly #targets = new Map<string, Target>();
  #closed = false;

  constructor(options: HttpFrameLinkOptions = {}) {
    this.maxStreamAgeMs = options.maxStreamAgeMs ?? 60_000;
    this.idleStreamMs = options.idleStreamMs ?? 15_000;
    this.maxErrorBytes = options.maxErrorBytes ?? 64 * 1024;
    for (const [name, value] of [["maxStreamAgeMs", this.maxStreamAgeMs], ["idleStreamMs", this.idleStreamMs], ["maxErrorBytes", this.maxErrorBytes]] as const) {
      if (!Number.isSafeInteger(value) || value <= 0) throw new ConsortError("CONFIG_INVALID", `${name} must be a positive integer, got ${describeValue(value)}`);
    }
  }

  deliver(endpoint: string, record: SealedRecord, timeoutMs: number, hello: () => string): Promise<void> {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      return Promise.reject(new ConsortError("CONFIG_INVALID", `timeoutMs must be a positive number, got ${describeValue(timeoutMs)}`));
    }
    if (this.#closed) return Promise.reject(new ConsortError("PEER_UNREACHABLE", "the frame link is closed", { retryable: true }));
    try {
      let target = this.#targets.get(endpoint);
      if (target === undefined) {
        target = parseEndpoint(endpoint);
        this.#targets.set(endpoint, target);
      }
      let stream = this.#streams.get(target.key);
      if (stream === undefined || !stream.usable) {
        stream?.retire();
        stream = new FrameStream(this, target, hello());
        this.#streams.set(target.key, stream);
      }
      return stream.send(record, timeoutMs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** @internal A dead stream leaves the map. */
  forget(key: string, stream: FrameStream): void {
    if (this.#streams.get(key) === stream) this.#streams.delete(key);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const stream of [...this.#streams.values()]) stream.destroy();
    this.#streams.clear();
  }
}
