import { ConsortError } from "../errors.ts";

interface Waiter {
  readonly key: string;
  readonly label: string;
  readonly from: string;
  readonly resolve: (payload: Uint8Array) => void;
  readonly reject: (error: Error) => void;
  /** performance.now() after which it fails with PROTOCOL_TIMEOUT. */
  readonly deadline: number;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  /** The waiters sharing its signal's abort listener (set by watch). */
  signalWaiters: Set<Waiter> | undefined;
}

export interface PeerMailboxOptions {
  /** Most payloads held for waits that have not come yet; defaults to 4,096. */
  maxEarlyMessages?: number;
  /** Most bytes held for them; defaults to 256 MiB. */
  maxEarlyBytes?: number;
}

/**
 * Wakes protocol code waiting for a peer's message, and holds the messages
 * that arrive before anyone waits for them. Round messages live only here
 * (a peer is at most a round ahead, since it needs this party's messages to
 * go on); the store is asked (`lookup`) only for what it keeps, the
 * attestations.
 *
 * Every operation is O(1) in the number of messages: one map lookup per
 * deliver and per wait. The early-arrival buffer is bounded in messages and
 * bytes; nothing is ever evicted, since a round message exists nowhere else:
 * a delivery that would overflow it is refused with MAILBOX_FULL
 * (retryable), which the sender's transport retries until the waits have
 * made room.
 *
 * A wait costs no timer and no event listener of its own (a round waits for
 * a message every few hundred µs, and a timer plus an AbortSignal listener
 * per wait measured ~3 µs hot): one sweep timer fires at the earliest
 * deadline, and each AbortSignal gets one listener for all its waiters.
 */
export class PeerMailbox {
  /** Waiters by key: nearly always one (a round waits once per peer), so an array, not a set. */
  private readonly waiters = new Map<string, Waiter[]>();
  /** Parked waiters, over all keys. */
  private count = 0;
  /** The waiters of each signal some wait was given (one abort listener per signal). */
  private readonly bySignal = new WeakMap<AbortSignal, Set<Waiter>>();
  private lastSignal: AbortSignal | undefined;
  private lastSignalWaiters: Set<Waiter> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** performance.now() the sweep timer is armed for. */
  private timerAt = Infinity;
  /** Insertion order = arrival order, so the first key is the oldest. */
  private readonly early = new Map<string, Uint8Array>();
  private earlyBytes = 0;
  private readonly maxEarlyMessages: number;
  private readonly maxEarlyBytes: number;

  constructor(options: PeerMailboxOptions = {}) {
    this.maxEarlyMessages = options.maxEarlyMessages ?? 4_096;
    this.maxEarlyBytes = options.maxEarlyBytes ?? 256 * 1024 * 1024;
    for (const [name, value] of [["maxEarlyMessages", this.maxEarlyMessages], ["maxEarlyBytes", this.maxEarlyBytes]] as const) {
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new ConsortError("CONFIG_INVALID", `${name} must be a non-negative integer, got ${String(value)}`);
      }
    }
  }

  private static key(label: string, from: string): string {
    return `${label}#${from}`;
  }

  /**
   * Hands a message from `from` under `label` to its waiters, or keeps it
   * for the wait to come; MAILBOX_FULL (retryable) if keeping it would
   * exceed the bounds.
   */
  deliver(label: string, from: string, payload: Uint8Array): void {
    const key = PeerMailbox.key(label, from);
    const waiting = this.waiters.get(key);
    if (waiting !== undefined) {
      this.waiters.delete(key);
      for (const w of waiting) {
        this.release(w);
        w.resolve(payload);
      }
      this.idle();
      return;
    }
    const previous = this.early.get(key);
    // A re-delivery (the sender retried): keep one copy.
    const freed = previous?.length ?? 0;
    if (previous === undefined && this.early.size + 1 > this.maxEarlyMessages) throw this.full(label, from, "messages");
    if (this.earlyBytes - freed + payload.length > this.maxEarlyBytes) throw this.full(label, from, "bytes");
    this.early.set(key, payload);
    this.earlyBytes += payload.length - freed;
  }

  private full(label: string, from: string, what: "messages" | "bytes"): ConsortError {
    const limit = what === "messages" ? this.maxEarlyMessages : this.maxEarlyBytes;
    return new ConsortError("MAILBOX_FULL", `already holding ${limit} ${what} of early peer messages; ${label} from ${from} must be sent again later`, {
      retryable: true,
      details: { label, from, limit, what },
    });
  }

  /**
   * Resolves with the message from `from` under `label`: from the early-arrival
   * buffer, else from `lookup` (the store, for what it keeps), else when it is
   * delivered; rejects
   * with PROTOCOL_TIMEOUT after `timeoutMs`, or with `signal.reason` when `signal`
   * aborts first.
   */
  wait(
    label: string,
    from: string,
    timeoutMs: number,
    lookup?: () => Uint8Array | undefined,
    signal?: AbortSignal,
  ): Promise<Uint8Array> {
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    const key = PeerMailbox.key(label, from);
    const early = this.early.get(key);
    if (early !== undefined) {
      this.early.delete(key);
      this.earlyBytes -= early.length;
      return Promise.resolve(early);
    }
    const stored = lookup?.();
    if (stored !== undefined) return Promise.resolve(stored);
    return new Promise<Uint8Array>((resolve, reject) => {
      const waiter: Waiter = { key, label, from, resolve, reject, deadline: performance.now() + timeoutMs, timeoutMs, signal, signalWaiters: undefined };
      const waiting = this.waiters.get(key);
      if (waiting === undefined) this.waiters.set(key, [waiter]);
      else waiting.push(waiter);
      this.count++;
      if (signal !== undefined) this.watch(signal, waiter);
      this.arm(waiter.deadline);
    });
  }

  /** Waiters currently parked (for monitoring and tests). */
  get waitingCount(): number {
    return this.count;
  }

  /** Joins `waiter` to the one abort listener of its signal. */
  private watch(signal: AbortSignal, waiter: Waiter): void {
    // A task's rounds all pass its one signal: skip the WeakMap for the signal seen last.
    let set = signal === this.lastSignal ? this.lastSignalWaiters : this.bySignal.get(signal);
    if (set === undefined) {
      const members = new Set<Waiter>();
      set = members;
      this.bySignal.set(signal, members);
      signal.addEventListener(
        "abort",
        () => {
          this.bySignal.delete(signal);
          if (this.lastSignal === signal) {
            this.lastSignal = undefined;
            this.lastSignalWaiters = undefined;
          }
          for (const w of [...members]) {
            this.remove(w);
            w.reject(signal.reason as Error);
          }
          this.idle();
        },
        { once: true },
      );
    }
    this.lastSignal = signal;
    this.lastSignalWaiters = set;
    set.add(waiter);
    waiter.signalWaiters = set;
  }

  /** Forgets a waiter that resolved (its key's entry is already gone). */
  private release(w: Waiter): void {
    this.count--;
    w.signalWaiters?.delete(w);
  }

  /** Takes a waiter out of its key's entry and releases it. */
  private remove(w: Waiter): void {
    const waiting = this.waiters.get(w.key);
    const at = waiting === undefined ? -1 : waiting.indexOf(w);
    if (at < 0) return;
    waiting!.splice(at, 1);
    if (waiting!.length === 0) this.waiters.delete(w.key);
    this.release(w);
  }

  /** The sweep timer fires by `deadline` (it is re-armed only when a deadline comes before the armed one). */
  private arm(deadline: number): void {
    if (this.timer !== undefined) {
      this.timer.ref();
      if (deadline >= this.timerAt) return;
      clearTimeout(this.timer);
    }
    this.timerAt = deadline;
    this.timer = setTimeout(() => this.sweep(), Math.max(1, Math.ceil(deadline - performance.now())));
  }

  /** With nobody waiting, the armed sweep must not keep the process alive. */
  private idle(): void {
    if (this.count === 0) this.timer?.unref();
  }

  /** Fails every wait past its deadline with PROTOCOL_TIMEOUT and re-arms for the next one. */
  private sweep(): void {
    this.timer = undefined;
    const now = performance.now();
    let next = Infinity;
    const expired: Waiter[] = [];
    for (const waiting of this.waiters.values()) {
      for (const w of waiting) {
        if (w.deadline <= now) expired.push(w);
        else next = Math.min(next, w.deadline);
      }
    }
    for (const w of expired) {
      this.remove(w);
      w.reject(
        new ConsortError("PROTOCOL_TIMEOUT", `no message from party ${w.from} for ${w.label} within ${w.timeoutMs} ms`, {
          retryable: true,
          details: { label: w.label, from: w.from },
        }),
      );
    }
    if (next !== Infinity) this.arm(next);
  }

  /** Payloads held for waits that have not come yet (for monitoring and tests). */
  get earlyCount(): number {
    return this.early.size;
  }

  /**
   * Drops the early arrivals whose label starts with `labelPrefix` (e.g.
   * `task/7/` once task 7 is over) and, given `matches`, only those whose
   * label it accepts (e.g. an abandoned attempt's).
   */
  forget(labelPrefix: string, matches?: (label: string) => boolean): void {
    for (const [key, payload] of this.early) {
      if (key.startsWith(labelPrefix) && (matches === undefined || matches(key.slice(0, key.lastIndexOf("#"))))) {
        this.early.delete(key);
        this.earlyBytes -= payload.length;
      }
    }
  }

  /** Rejects every waiter (node shutting down). */
  close(reason: string): void {
    const all = [...this.waiters.values()].flat();
    this.waiters.clear();
    for (const w of all) {
      this.release(w);
      w.reject(new ConsortError("PROTOCOL_ABORTED", reason, { retryable: true }));
    }
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.early.clear();
    this.earlyBytes = 0;
  }
}
