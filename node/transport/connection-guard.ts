/**
 * Connection limits of the node API (./http-server.ts): at most
 * maxConnections sockets in total and maxConnectionsPerSource from one
 * remote address. A socket is "idle" while it has no request in progress
 * (before its first request's headers are complete, between keep-alive
 * requests), "busy" while one is, and "held" once it is an authenticated
 * frame stream (./frame-server.ts). A new connection beyond a limit closes
 * the oldest idle socket within that limit, so sockets opened and left
 * idle (or sending headers a byte at a time) give way to new clients
 * instead of locking them out; only when every socket within the limit is
 * busy or held is the new one refused.
 */
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { ConsortError } from "../errors.ts";
import { describeValue } from "./binary-codec.ts";

export interface ConnectionLimits {
  /** Sockets open at once; defaults to 1024. */
  maxConnections?: number;
  /** Sockets open at once from one remote address; defaults to 256. */
  maxConnectionsPerSource?: number;
}

export const DEFAULT_MAX_CONNECTIONS = 1024;
export const DEFAULT_MAX_CONNECTIONS_PER_SOURCE = 256;

interface Entry {
  readonly source: string;
  /** Requests in progress (pipelined ones count each). */
  busy: number;
  held: boolean;
}

export interface ConnectionCounts {
  open: number;
  /** Idle sockets closed to make room for new ones, since the start. */
  evicted: number;
  /** New sockets closed at once because every socket within a limit was busy or held. */
  refused: number;
}

export class ConnectionGuard {
  readonly maxConnections: number;
  readonly maxConnectionsPerSource: number;
  /** In order of arrival: the first idle one found is the oldest. */
  readonly #all = new Map<Duplex, Entry>();
  readonly #bySource = new Map<string, Map<Duplex, Entry>>();
  #evicted = 0;
  #refused = 0;

  constructor(limits: ConnectionLimits = {}) {
    this.maxConnections = limits.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.maxConnectionsPerSource = limits.maxConnectionsPerSource ?? DEFAULT_MAX_CONNECTIONS_PER_SOURCE;
    for (const [name, value] of [["maxConnections", this.maxConnections], ["maxConnectionsPerSource", this.maxConnectionsPerSource]] as const) {
      if (!Number.isSafeInteger(value) || value <= 0) throw new ConsortError("CONFIG_INVALID", `${name} must be a positive integer, got ${describeValue(value)}`);
    }
  }

  get counts(): ConnectionCounts {
    return { open: this.#all.size, evicted: this.#evicted, refused: this.#refused };
  }

  /** For the server's "connection" event: makes room or refuses, then tracks the socket until it closes. */
  admit(socket: Socket): void {
    const source = socket.remoteAddress ?? "unknown";
    const fromSource = this.#bySource.get(source);
    if ((fromSource !== undefined && fromSource.size >= this.maxConnectionsPerSource && !this.#evictFrom(fromSource)) ||
        (this.#all.size >= this.maxConnections && !this.#evictFrom(this.#all))) {
      this.#refused++;
      socket.destroy();
      return;
    }
    const entry: Entry = { source, busy: 0, held: false };
    this.#all.set(socket, entry);
    let set = fromSource;
    if (set === undefined) this.#bySource.set(source, (set = new Map()));
    set.set(socket, entry);
    socket.once("close", () => this.#forget(socket, entry));
  }

  /** A request on `socket` started. */
  busy(socket: Duplex): void {
    const entry = this.#all.get(socket);
    if (entry !== undefined) entry.busy++;
  }

  /** A request on `socket` ended. */
  idle(socket: Duplex): void {
    const entry = this.#all.get(socket);
    if (entry !== undefined && entry.busy > 0) entry.busy--;
  }

  /** `socket` is an authenticated frame stream: never closed to make room. */
  hold(socket: Duplex): void {
    const entry = this.#all.get(socket);
    if (entry !== undefined) entry.held = true;
  }

  #evictFrom(sockets: Map<Duplex, Entry>): boolean {
    for (const [socket, entry] of sockets) {
      if (entry.busy > 0 || entry.held) continue;
      this.#forget(socket, entry);
      socket.destroy();
      this.#evicted++;
      return true;
    }
    return false;
  }

  #forget(socket: Duplex, entry: Entry): void {
    if (this.#all.get(socket) !== entry) return;
    this.#all.delete(socket);
    const set = this.#bySource.get(entry.source);
    set?.delete(socket);
    if (set !== undefined && set.size === 0) this.#bySource.delete(entry.source);
  }
}
