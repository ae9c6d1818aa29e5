/**
 * The client side of the frame routes (./frame-server.ts): delivers sealed
 * records (./peer-frame.ts) to peers over persistent HTTP/1.1 connections
 * with Nagle off.
 *
 * "upgrade" mode (the default) opens GET /v1/frames/stream with
 * "Upgrade: consort-frames/1"; after the peer's 101 the connection carries
 * the records one way and the acknowledgements the other, exactly as a
 * streamed POST's body and response do, minus chunked coding and the HTTP
 * parser per record (~5-8% less CPU per small round here). A peer that
 * answers the upgrade with anything else than 101 gets a streamed POST.
 *
 * "stream" mode keeps one long POST /v1/frames/stream per
 * peer: each record is one chunk of the request body and the peer's
 * acknowledgements come back, concurrently, as the response body. That
 * halves the syscalls and removes the per-request parsing of a POST per
 * record (measured ~100 µs against ~300 µs of CPU per frame on the 2-core
 * machine of issue 3). A stream retires itself after maxStreamAgeMs (below
 * the server's 120 s requestTimeout) or idleStreamMs without traffic, and
 * any failure (connection reset, peer restarted, no acknowledgement in
 * time) fails its unacknowledged records with retryable PEER_UNREACHABLE:
 * the sender retries them on a fresh stream, and the receiver accepts an
 * identical record twice, so nothing is lost or doubled.
 *
 * "request" mode sends one POST /v1/frames per record over a keep-alive
 * agent. It is the fallback for a peer that does not serve streams (404)
 * and for paths through proxies that buffer request bodies.
 */
import http from "node:http";
import https from "node:https";
import type { ClientRequest, IncomingMessage } from "node:http";
import { Socket } from "node:net";
import type { Duplex, Writable } from "node:stream";
import { ConsortError, isConsortError } from "../errors.ts";
import { describeValue } from "./binary-codec.ts";
import { ACK_STORED, FRAMES_PATH, FRAME_CONTENT_TYPE, FRAME_STREAM_PATH, FRAME_UPGRADE_PROTOCOL } from "./frame-server.ts";
import { remoteError, unreachableError } from "./http-errors.ts";
import type { SealedRecord } from "./peer-frame.ts";

export interface FrameLink {
  /**
   * Delivers one record to the node at `endpoint`: resolves once the peer
   * stored it; rejects with PEER_UNREACHABLE (retryable) when the peer cannot
   * be reached or did not answer within `timeoutMs`, or PEER_REJECTED (with
   * details.remoteCode, retryable iff the peer said so).
   */
  deliver(endpoint: string, record: SealedRecord, timeoutMs: number): Promise<void>;
  /** Ends every connection; records in flight fail with PEER_UNREACHABLE. */
  close(): Promise<void>;
}

/**
 * "upgrade" (the default): one connection per peer, upgraded from HTTP/1.1 to
 * consort-frames/1; "stream": one streamed POST per peer; "request": one POST
 * per record. Each steps down to the next for a peer that does not serve it.
 */
export type FrameLinkMode = "upgrade" | "stream" | "request";

export interface HttpFrameLinkOptions {
  mode?: FrameLinkMode;
  /** A stream takes no new records after this long; defaults to 60 s (the server cuts requests at 120 s). */
  maxStreamAgeMs?: number;
  /** A stream with nothing in flight for this long is ended; defaults to 15 s. */
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

/** How a FrameStream reaches the peer: an upgraded connection, or a streamed (chunked) POST. */
type StreamTransport = "upgrade" | "chunked";

/** One frame stream to one peer: GET /v1/frames/stream upgraded to consort-frames/1, or a streamed POST of it. */
class FrameStream {
  readonly #link: HttpFrameLink;
  readonly #target: Target;
  readonly #transport: StreamTransport;
  readonly #req: ClientRequest;
  /** Upgrade: the connection once the peer answered 101. */
  #socket: Duplex | undefined;
  /** Upgrade: record parts written before the 101 arrived. */
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

  constructor(link: HttpFrameLink, target: Target, transport: StreamTransport) {
    this.#link = link;
    this.#target = target;
    this.#transport = transport;
    const mod = target.secure ? https : http;
    const path = `${target.basePath}${FRAME_STREAM_PATH}`;
    this.#req =
      transport === "upgrade"
        ? mod.request({
            hostname: target.hostname,
            port: target.port,
            method: "GET",
            path,
            headers: { connection: "Upgrade", upgrade: FRAME_UPGRADE_PROTOCOL },
            // Its own connection: the stream holds it for its whole life.
            agent: false,
          })
        : mod.request({
            hostname: target.hostname,
            port: target.port,
            method: "POST",
            path,
            headers: { "content-type": FRAME_CONTENT_TYPE, "transfer-encoding": "chunked" },
            agent: false,
          });
    this.#req.setNoDelay(true);
    this.#req.on("error", (err) => this.#kill(networkFailure(target.display, err)));
    this.#req.on("response", (res) => this.#onResponse(res));
    if (transport === "upgrade") {
      this.#req.on("upgrade", (res, socket, head) => this.#onUpgrade(res, socket, head));
      this.#req.end();
    }
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
      if (this.#transport === "upgrade" && this.#socket === undefined) {
        for (const part of record.parts) this.#queued.push(part);
        return;
      }
      const out: Writable = this.#socket ?? this.#req;
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
    if (this.#transport === "chunked") this.#req.end();
    else if (this.#socket !== undefined) this.#socket.end();
    else this.#kill(unreachableError(this.#target.display, "the frame stream was retired", { reason: "closed" }));
  }

  #onResponse(res: IncomingMessage): void {
    if (this.#transport === "upgrade" || res.statusCode !== 200) {
      void readBody(res, this.#link.maxErrorBytes).then((body) => {
        const status = res.statusCode ?? 0;
        const error =
          this.#transport === "upgrade" && status === 200
            ? new ConsortError("PROTOCOL_INVALID_MESSAGE", `peer ${this.#target.display} answered the frame stream upgrade with 200, not 101`)
            : remoteError(this.#target.display, status, body);
        if (status === 404 || status === 405 || (this.#transport === "upgrade" && status >= 200 && status < 500)) {
          // The peer (an older node, or a proxy in the way) does not serve this kind of stream: step down.
          if (this.#transport === "upgrade") this.#link.markUpgradeless(this.#target.key);
          else this.#link.markStreamless(this.#target.key);
          // Out of the link's map first, so the records re-sent below open the next kind of stream.
          this.#retiring = true;
          this.#link.forget(this.#target.key, this);
          this.#fallBack();
        }
        this.#kill(error);
      });
      return;
    }
    res.on("data", (chunk: Buffer) => this.#onAcks(chunk));
    res.on("end", () => this.#kill(unreachableError(this.#target.display, "the peer ended the frame stream", { reason: "stream-ended" })));
    res.on("error", (err) => this.#kill(networkFailure(this.#target.display, err)));
    res.on("aborted", () => this.#kill(unreachableError(this.#target.display, "the frame stream was cut", { reason: "aborted" })));
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

  /** Re-sends what is in flight the way the link now uses for this peer (the peer refused this kind of stream). */
  #fallBack(): void {
    this.#queued = [];
    for (const [seq, p] of this.#pending) {
      this.#pending.delete(seq);
      this.#link.redeliver(this.#target, p.record, Math.max(1, p.deadline - performance.now())).then(p.resolve, p.reject);
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

/** Delivers records over HTTP (see the top of this file). */
export class HttpFrameLink implements FrameLink {
  readonly mode: FrameLinkMode;
  readonly maxStreamAgeMs: number;
  readonly idleStreamMs: number;
  readonly maxErrorBytes: number;
  readonly #streams = new Map<string, FrameStream>();
  readonly #streamless = new Set<string>();
  readonly #upgradeless = new Set<string>();
  readonly #targets = new Map<string, Target>();
  readonly #httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16, scheduling: "lifo" });
  readonly #httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16, scheduling: "lifo" });
  #closed = false;

  constructor(options: HttpFrameLinkOptions = {}) {
    this.mode = options.mode ?? "upgrade";
    if (this.mode !== "upgrade" && this.mode !== "stream" && this.mode !== "request") {
      throw new ConsortError("CONFIG_INVALID", `frame link mode must be "upgrade", "stream" or "request", got ${describeValue(this.mode)}`);
    }
    this.maxStreamAgeMs = options.maxStreamAgeMs ?? 60_000;
    this.idleStreamMs = options.idleStreamMs ?? 15_000;
    this.maxErrorBytes = options.maxErrorBytes ?? 64 * 1024;
    for (const [name, value] of [["maxStreamAgeMs", this.maxStreamAgeMs], ["idleStreamMs", this.idleStreamMs], ["maxErrorBytes", this.maxErrorBytes]] as const) {
      if (!Number.isSafeInteger(value) || value <= 0) throw new ConsortError("CONFIG_INVALID", `${name} must be a positive integer, got ${describeValue(value)}`);
    }
  }

  deliver(endpoint: string, record: SealedRecord, timeoutMs: number): Promise<void> {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      return Promise.reject(new ConsortError("CONFIG_INVALID", `timeoutMs must be a positive number, got ${describeValue(timeoutMs)}`));
    }
    if (this.#closed) return Promise.reject(new ConsortError("PEER_UNREACHABLE", "the frame link is closed", { retryable: true }));
    let target = this.#targets.get(endpoint);
    if (target === undefined) {
      try {
        target = parseEndpoint(endpoint);
      } catch (error) {
        return Promise.reject(error);
      }
      this.#targets.set(endpoint, target);
    }
    return this.redeliver(target, record, timeoutMs);
  }

  /** @internal Delivers to a parsed target the best way the peer is known to serve. */
  redeliver(target: Target, record: SealedRecord, timeoutMs: number): Promise<void> {
    if (this.mode === "request" || this.#streamless.has(target.key)) return this.post(target, record, timeoutMs);
    let stream = this.#streams.get(target.key);
    if (stream === undefined || !stream.usable) {
      stream?.retire();
      const transport = this.mode === "upgrade" && !this.#upgradeless.has(target.key) ? "upgrade" : "chunked";
      stream = new FrameStream(this, target, transport);
      this.#streams.set(target.key, stream);
    }
    return stream.send(record, timeoutMs);
  }

  /** One POST /v1/frames. */
  post(target: Target, record: SealedRecord, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const mod = target.secure ? https : http;
      const req = mod.request(
        {
          hostname: target.hostname,
          port: target.port,
          method: "POST",
          path: `${target.basePath}${FRAMES_PATH}`,
          headers: { "content-type": FRAME_CONTENT_TYPE, "content-length": record.recordBytes },
          agent: target.secure ? this.#httpsAgent : this.#httpAgent,
        },
        (res) => {
          if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) {
            res.resume();
            res.on("end", () => {
              clearTimeout(timer);
              resolve();
            });
            return;
          }
          void readBody(res, this.maxErrorBytes).then((body) => {
            clearTimeout(timer);
            reject(remoteError(target.display, res.statusCode ?? 0, body));
          });
        },
      );
      const timer = setTimeout(
        () => req.destroy(unreachableError(target.display, `no answer within ${timeoutMs} ms`, { timeoutMs, reason: "timeout" })),
        timeoutMs,
      );
      req.setNoDelay(true);
      req.on("error", (err) => {
        clearTimeout(timer);
        reject(networkFailure(target.display, err));
      });
      const first = record.parts[0]!;
      // The stream framing's length prefix is not part of a plain POST body.
      req.write(first.subarray(4));
      for (let i = 1; i < record.parts.length; i++) req.write(record.parts[i]!);
      req.end();
    });
  }

  /** @internal A peer does not upgrade to frame streams: use streamed POSTs from now on. */
  markUpgradeless(key: string): void {
    this.#upgradeless.add(key);
  }

  /** @internal A peer's streams are not served: use plain POSTs from now on. */
  markStreamless(key: string): void {
    this.#streamless.add(key);
  }

  /** @internal A dead stream leaves the map. */
  forget(key: string, stream: FrameStream): void {
    if (this.#streams.get(key) === stream) this.#streams.delete(key);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const stream of [...this.#streams.values()]) stream.destroy();
    this.#streams.clear();
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }
}
