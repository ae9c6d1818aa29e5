/**
 * An in-memory RoundNetwork for n parties in one process: tests,
 * simulations and benchmarks run the real engine with real message passing.
 *
 * Every message is a packed field vector (node/math/fr-vec.ts), i.e. the
 * wire bytes themselves: the sender's bytes are copied into the receiver's
 * mailbox under (label, sender), exactly as a transport would deliver them,
 * so byte counts are real and malformed bytes reach the engine's checks the
 * way a transport would hand them over. Delivery is asynchronous (a later
 * macrotask), so parties genuinely interleave.
 *
 * Faults can be injected per message with `intercept`: return replacement
 * bytes (corrupt or malformed), or null (drop; the receiver then times out
 * after `timeoutMs`).
 */
import { ConsortError } from "../errors.ts";
import { checkExchangeArguments, labelKey, type ProtocolLabel, type RoundNetwork } from "./round-network.ts";

const EMPTY = new Uint8Array(0);

/** A message on its way, as an interceptor sees it. */
export interface LocalMessage {
  readonly from: number;
  readonly to: number;
  readonly label: ProtocolLabel;
  /** The packed field vector as sent (read-only: return a replacement to change it). */
  readonly payload: Uint8Array;
}

/** Fault injection: undefined = deliver unchanged, null = drop, Uint8Array = deliver these bytes instead. */
export type Interceptor = (message: LocalMessage) => Uint8Array | null | undefined;

export interface LocalNetworkOptions {
  readonly parties: number;
  /** How long a party waits for a round's messages before PROTOCOL_TIMEOUT (default 30 s). */
  readonly timeoutMs?: number;
  readonly intercept?: Interceptor;
  /** Keep every delivered message's bytes in `traffic` (for privacy scans in tests). */
  readonly recordTraffic?: boolean;
}

/** A recorded message (as delivered, after interception). */
export interface TrafficRecord {
  readonly from: number;
  readonly to: number;
  readonly label: string;
  readonly bytes: Uint8Array;
}

export interface PartyTrafficStats {
  /** Payload bytes this party sent (looped-back messages to itself are not counted). */
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly messagesSent: number;
  readonly messagesReceived: number;
  /** exchange() calls this party made. */
  readonly rounds: number;
}

interface Waiter {
  resolve: (bytes: Uint8Array) => void;
}

export class LocalNetwork {
  readonly parties: number;
  readonly timeoutMs: number;
  readonly #intercept: Interceptor | undefined;
  readonly #record: boolean;
  readonly #traffic: TrafficRecord[] = [];
  /** Key `${to}|${from}|${label}` -> delivered bytes not yet taken. */
  readonly #mailbox = new Map<string, Uint8Array>();
  /** Key as above -> a receiver waiting for that message. */
  readonly #waiters = new Map<string, Waiter>();
  /** Keys ever sent / ever awaited, to reject duplicates. */
  readonly #sent = new Set<string>();
  readonly #awaited = new Set<string>();
  readonly #stats: { bytesSent: number; bytesReceived: number; messagesSent: number; messagesReceived: number; rounds: number }[];
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #pending = new Set<(error: ConsortError) => void>();
  #closed = false;

  constructor(options: LocalNetworkOptions) {
    const { parties, timeoutMs = 30_000 } = options;
    if (!Number.isSafeInteger(parties) || parties < 1) {
      throw new ConsortError("CONFIG_INVALID", `local network needs a positive integer number of parties, got ${String(parties)}`);
    }
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new ConsortError("CONFIG_INVALID", `local network timeout must be a positive number of milliseconds, got ${String(timeoutMs)}`);
    }
    this.parties = parties;
    this.timeoutMs = timeoutMs;
    this.#intercept = options.intercept;
    this.#record = options.recordTraffic ?? false;
    this.#stats = Array.from({ length: parties }, () => ({ bytesSent: 0, bytesReceived: 0, messagesSent: 0, messagesReceived: 0, rounds: 0 }));
  }

  /** The RoundNetwork of party `self`. */
  endpoint(self: number): RoundNetwork {
    if (!Number.isSafeInteger(self) || self < 0 || self >= this.parties) {
      throw new ConsortError("CONFIG_INVALID", `party index must be an integer in [0, ${this.parties - 1}], got ${String(self)}`);
    }
    return { exchange: (label, outgoing, from) => this.#exchange(self, label, outgoing, from) };
  }

  /** Traffic counters of one party. */
  stats(party: number): PartyTrafficStats {
    const s = this.#stats[party];
    if (s === undefined) throw new ConsortError("CONFIG_INVALID", `no party ${String(party)} in this local network`);
    return { ...s };
  }

  /** Total payload bytes sent by all parties. */
  totalBytes(): number {
    return this.#stats.reduce((acc, s) => acc + s.bytesSent, 0);
  }

  /** Every delivered message (only with recordTraffic). */
  get traffic(): readonly TrafficRecord[] {
    return this.#traffic;
  }

  /** Rejects every pending exchange with PROTOCOL_ABORTED and refuses new ones. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const reject of this.#pending) reject(new ConsortError("PROTOCOL_ABORTED", "local network closed"));
    this.#pending.clear();
  }

  #send(from: number, to: number, label: ProtocolLabel, payload: Uint8Array): void {
    const key = `${to}|${from}|${labelKey(label)}`;
    if (this.#sent.has(key)) {
      throw new ConsortError("DUPLICATE_MESSAGE", `party ${from} sent to party ${to} twice under label ${labelKey(label)}`, {
        details: { from, to, label: labelKey(label) },
      });
    }
    this.#sent.add(key);
    const verdict = this.#intercept?.({ from, to, label, payload });
    const stats = this.#stats[from]!;
    if (verdict === null) {
      // Dropped on the wire: the sender paid for it, nobody receives it.
      stats.messagesSent++;
      stats.bytesSent += payload.length;
      return;
    }
    // A copy: the sender may reuse its buffer, and the receiver owns what it gets.
    const bytes = (verdict instanceof Uint8Array ? verdict : payload).slice();
    stats.messagesSent++;
    stats.bytesSent += bytes.length;
    if (this.#record) this.#traffic.push({ from, to, label: labelKey(label), bytes });
    setImmediate(() => {
      const receiver = this.#stats[to]!;
      receiver.messagesReceived++;
      receiver.bytesReceived += bytes.length;
      const waiter = this.#waiters.get(key);
      if (waiter !== undefined) {
        this.#waiters.delete(key);
        waiter.resolve(bytes);
      } else {
        this.#mailbox.set(key, bytes);
      }
    });
  }

  #receive(self: number, from: number, label: ProtocolLabel): Promise<Uint8Array> {
    const key = `${self}|${from}|${labelKey(label)}`;
    const ready = this.#mailbox.get(key);
    if (ready !== undefined) {
      this.#mailbox.delete(key);
      return Promise.resolve(ready);
    }
    return new Promise((resolve) => this.#waiters.set(key, { resolve }));
  }

  async #exchange(
    self: number,
    label: ProtocolLabel,
    outgoing: readonly (Uint8Array | undefined)[],
    fromArgument: readonly boolean[] | undefined,
  ): Promise<readonly Uint8Array[]> {
    if (this.#closed) throw new ConsortError("PROTOCOL_ABORTED", "local network closed");
    const key = labelKey(label);
    const from = checkExchangeArguments(this.parties, self, key, outgoing, fromArgument);
    const awaitedKey = `${self}|${key}`;
    if (this.#awaited.has(awaitedKey)) {
      throw new ConsortError("DUPLICATE_MESSAGE", `party ${self} ran round ${key} twice`, { details: { party: self, label: key } });
    }
    this.#awaited.add(awaitedKey);
    this.#stats[self]!.rounds++;

    for (let j = 0; j < this.parties; j++) {
      const v = outgoing[j];
      if (j !== self && v !== undefined) this.#send(self, j, label, v);
    }

    const received: Uint8Array[] = new Array(this.parties);
    received[self] = outgoing[self] ?? EMPTY;
    const missing = new Set<number>();
    const arrivals: Promise<void>[] = [];
    for (let j = 0; j < this.parties; j++) {
      if (j === self) continue;
      if (!from[j]) {
        received[j] = EMPTY;
        continue;
      }
      missing.add(j);
      arrivals.push(
        this.#receive(self, j, label).then((bytes) => {
          missing.delete(j);
          received[j] = bytes;
        }),
      );
    }

    let reject!: (error: ConsortError) => void;
    const cancelled = new Promise<never>((_, rej) => {
      reject = rej;
    });
    this.#pending.add(reject);
    const timer = setTimeout(() => {
      reject(
        new ConsortError("PROTOCOL_TIMEOUT", `round ${key}: party ${self} got no message from party ${[...missing].join(", ")} within ${this.timeoutMs} ms`, {
          retryable: true,
          details: { label: key, party: self, missing: [...missing] },
        }),
      );
    }, this.timeoutMs);
    this.#timers.add(timer);
    try {
      await Promise.race([Promise.all(arrivals), cancelled]);
    } finally {
      clearTimeout(timer);
      this.#timers.delete(timer);
      this.#pending.delete(reject);
      // A timed-out receive must not leave a waiter that swallows a late message silently.
      for (const j of missing) this.#waiters.delete(`${self}|${j}|${key}`);
    }
    return received;
  }
}
