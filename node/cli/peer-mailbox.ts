import { ConsortError } from "../errors.ts";

type Waiter = { resolve: (payload: Uint8Array) => void; reject: (error: Error) => void; timer: NodeJS.Timeout };

/**
 * Wakes protocol code waiting for a peer's message. Messages themselves are
 * persisted by the store before `deliver` is called; the mailbox only holds
 * in-memory waiters, so `wait` first asks `lookup` (the store) and only then
 * parks.
 */
export class PeerMailbox {
  private readonly waiters = new Map<string, Waiter[]>();

  private static key(label: string, from: string): string {
    return `${label}#${from}`;
  }

  /** Called after a message from `from` under `label` was stored. */
  deliver(label: string, from: string, payload: Uint8Array): void {
    const key = PeerMailbox.key(label, from);
    const list = this.waiters.get(key);
    if (list === undefined) return;
    this.waiters.delete(key);
    for (const w of list) {
      clearTimeout(w.timer);
      w.resolve(payload);
    }
  }

  /** Resolves with the message from `from` under `label`, or rejects with PROTOCOL_TIMEOUT after `timeoutMs`. */
  wait(label: string, from: string, timeoutMs: number, lookup: () => Uint8Array | undefined): Promise<Uint8Array> {
    const stored = lookup();
    if (stored !== undefined) return Promise.resolve(stored);
    const key = PeerMailbox.key(label, from);
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        const list = this.waiters.get(key)?.filter((w) => w.timer !== timer) ?? [];
        if (list.length === 0) this.waiters.delete(key);
        else this.waiters.set(key, list);
        reject(
          new ConsortError("PROTOCOL_TIMEOUT", `no message from party ${from} for ${label} within ${timeoutMs} ms`, {
            retryable: true,
            details: { label, from },
          }),
        );
      }, timeoutMs);
      const list = this.waiters.get(key) ?? [];
      list.push({ resolve, reject, timer });
      this.waiters.set(key, list);
    });
  }

  /** Rejects every waiter (node shutting down). */
  close(reason: string): void {
    for (const list of this.waiters.values()) {
      for (const w of list) {
        clearTimeout(w.timer);
        w.reject(new ConsortError("PROTOCOL_ABORTED", reason, { retryable: true }));
      }
    }
    this.waiters.clear();
  }
}
