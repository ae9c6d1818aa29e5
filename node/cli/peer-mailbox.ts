import { ConsortError } from "../errors.ts";

interface Waiter {
  resolve(payload: Uint8Array): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
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
 */
export class PeerMailbox {
  private readonly waiters = new Map<string, Set<Waiter>>();
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
    const set = this.waiters.get(key);
    if (set !== undefined) {
      this.waiters.delete(key);
      for (const w of set) {
        clearTimeout(w.timer);
        w.resolve(payload);
      }
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
      let set = this.waiters.get(key);
      if (set === undefined) {
        set = new Set();
        this.waiters.set(key, set);
      }
      const waiters = set;
      const leave = () => {
        clearTimeout(waiter.timer);
        signal?.removeEventListener("abort", onAbort);
        waiters.delete(waiter);
        if (waiters.size === 0 && this.waiters.get(key) === waiters) this.waiters.delete(key);
      };
      const onAbort = () => {
        leave();
        reject(signal!.reason as Error);
      };
      const waiter: Waiter = {
        resolve: (payload) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(payload);
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
        timer: setTimeout(() => {
          leave();
          reject(
            new ConsortError("PROTOCOL_TIMEOUT", `no message from party ${from} for ${label} within ${timeoutMs} ms`, {
              retryable: true,
              details: { label, from },
            }),
          );
        }, timeoutMs),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      waiters.add(waiter);
    });
  }

  /** Payloads held for waits that have not come yet (for monitoring and tests). */
  get earlyCount(): number {
    return this.early.size;
  }

  /** Drops the early arrivals whose label starts with `labelPrefix` (e.g. `task/7/` once task 7 is over). */
  forget(labelPrefix: string): void {
    for (const [key, payload] of this.early) {
      if (key.startsWith(labelPrefix)) {
        this.early.delete(key);
        this.earlyBytes -= payload.length;
      }
    }
  }

  /** Rejects every waiter (node shutting down). */
  close(reason: string): void {
    for (const set of this.waiters.values()) {
      for (const w of set) {
        clearTimeout(w.timer);
        w.reject(new ConsortError("PROTOCOL_ABORTED", reason, { retryable: true }));
      }
    }
    this.waiters.clear();
    this.early.clear();
    this.earlyBytes = 0;
  }
}
