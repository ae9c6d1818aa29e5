import type { Interface, Log, Provider, Result } from "ethers";
import { ConsortError, toConsortError } from "../errors.ts";
import { toChainError } from "./chain-errors.ts";

/** The last block whose events were applied. */
export interface ChainCursor {
  readonly blockNumber: number;
  readonly blockHash: string;
}

/** What a rewind undid: at least the ids of the tasks it changed (the node's store reports more). */
export interface RewindOutcome {
  readonly touchedTaskIds: readonly bigint[];
}

/** Where the watcher keeps its position (the node's store implements it). */
export interface WatcherCursorStore<R extends RewindOutcome = RewindOutcome> {
  loadCursor(): ChainCursor | undefined;
  /** Processed range ends, newest first. */
  cursorHistory(): ChainCursor[];
  /**
   * Forget processed positions above `cursor` (all when undefined) and undo
   * what the events of the blocks above it applied, atomically: a crash
   * leaves either the old chain's state or the fork point's, never a mix.
   */
  rewindTo(cursor: ChainCursor | undefined): R;
}

export interface WatchedEvent {
  readonly name: string;
  readonly args: Result;
  readonly blockNumber: number;
  readonly blockHash: string;
  readonly transactionHash: string;
  readonly logIndex: number;
  /** `${transactionHash}:${logIndex}`: unique per log, stable across restarts. */
  readonly key: string;
}

/**
 * Applies one block range's events and records `cursor` as processed. It must
 * do both atomically (one store transaction), which is what makes a restart
 * neither miss nor repeat an event.
 */
export type ApplyEvents = (events: readonly WatchedEvent[], cursor: ChainCursor) => void | Promise<void>;

export interface EventWatcherOptions<R extends RewindOutcome = RewindOutcome> {
  provider: Provider;
  address: string;
  iface: Interface;
  /** First block to scan when nothing was processed yet (the registry's deployment block). */
  startBlock: number;
  /** Blocks a log must be buried under before it is applied (0 = apply at the head). */
  confirmations: number;
  pollIntervalMs: number;
  /** Largest block range per eth_getLogs call. */
  maxBlockRange?: number;
  store: WatcherCursorStore<R>;
  apply: ApplyEvents;
  onError?: (error: ConsortError) => void;
  /** After a rewind to the fork point `to` (undefined: the start block): `rewound` is what the store undid. */
  onReorg?: (from: ChainCursor, to: ChainCursor | undefined, rewound: R) => void;
}

/**
 * Follows the registry's logs from a persisted cursor.
 *
 * Only blocks at least `confirmations` deep are applied. Each poll first checks
 * that the block hash at the cursor is still on the canonical chain; if not
 * (a reorg deeper than the confirmation depth), it walks back through the
 * stored range ends to the newest one still canonical and re-applies from
 * there; the store's rewind undoes what the removed blocks' events applied.
 * Handlers must be idempotent per event key (the store's applied-event table
 * makes them so), and the node re-reads contract state before acting, so an
 * event that vanished in a reorg cannot make it act wrongly.
 */
export class EventWatcher<R extends RewindOutcome = RewindOutcome> {
  private readonly options: Required<Omit<EventWatcherOptions<R>, "onError" | "onReorg">> &
    Pick<EventWatcherOptions<R>, "onError" | "onReorg">;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  constructor(options: EventWatcherOptions<R>) {
    if (!Number.isInteger(options.confirmations) || options.confirmations < 0) {
      throw new ConsortError("CONFIG_INVALID", `confirmations must be a whole number >= 0, got ${options.confirmations}`);
    }
    this.options = { maxBlockRange: 2_000, ...options };
  }

  /** Polls until stop(); errors go to onError and the next poll tries again. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const loop = async (): Promise<void> => {
      if (this.stopped) return;
      this.running = this.pollOnce()
        .then(() => undefined)
        .catch((error: unknown) => this.options.onError?.(toConsortError(error)));
      await this.running;
      if (!this.stopped) this.timer = setTimeout(() => void loop(), this.options.pollIntervalMs);
    };
    void loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
  }

  private async call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw toChainError(error, this.options.iface, action);
    }
  }

  private async blockHash(blockNumber: number): Promise<string | undefined> {
    const block = await this.call(`eth_getBlockByNumber(${blockNumber})`, () => this.options.provider.getBlock(blockNumber));
    return block?.hash ?? undefined;
  }

  /** Finds where the stored chain and the node's RPC chain agree again. */
  private async reconcile(cursor: ChainCursor): Promise<ChainCursor | undefined> {
    const canonical = await this.blockHash(cursor.blockNumber);
    if (canonical === cursor.blockHash) return cursor;
    let agreed: ChainCursor | undefined;
    for (const candidate of this.options.store.cursorHistory()) {
      if (candidate.blockNumber >= cursor.blockNumber) continue;
      if ((await this.blockHash(candidate.blockNumber)) === candidate.blockHash) {
        agreed = candidate;
        break;
      }
    }
    const rewound = this.options.store.rewindTo(agreed);
    this.options.onReorg?.(cursor, agreed, rewound);
    return agreed;
  }

  /** Applies every confirmed block after the cursor; returns the new cursor. */
  async pollOnce(): Promise<ChainCursor | undefined> {
    const { provider, address, iface, confirmations, store } = this.options;
    const head = await this.call("eth_blockNumber", () => provider.getBlockNumber());
    const safeHead = head - confirmations;
    let cursor = store.loadCursor();
    if (cursor !== undefined) cursor = await this.reconcile(cursor);
    let from = cursor === undefined ? this.options.startBlock : cursor.blockNumber + 1;
    while (from <= safeHead) {
      const to = Math.min(from + this.options.maxBlockRange - 1, safeHead);
      const hashBefore = await this.blockHash(to);
      const logs: Log[] = await this.call(`eth_getLogs(${from}..${to})`, () =>
        provider.getLogs({ address, fromBlock: from, toBlock: to }),
      );
      const hashAfter = await this.blockHash(to);
      // A reorg between the two reads would pair these logs with the wrong
      // chain; read the range again on the next poll.
      if (hashBefore === undefined || hashBefore !== hashAfter) return cursor;
      // The range only continues what was applied if the previous range end is
      // still canonical now that the logs are read: a reorg since (e.g. while
      // the previous range was being applied) replaced blocks already applied,
      // and the next poll's reconcile must rewind to the fork point first.
      if (cursor !== undefined && (await this.blockHash(cursor.blockNumber)) !== cursor.blockHash) return cursor;
      const events: WatchedEvent[] = [];
      for (const log of logs) {
        if (log.removed) continue;
        const parsed = iface.parseLog(log);
        if (parsed === null) continue;
        events.push({
          name: parsed.name,
          args: parsed.args,
          blockNumber: log.blockNumber,
          blockHash: log.blockHash,
          transactionHash: log.transactionHash,
          logIndex: log.index,
          key: `${log.transactionHash}:${log.index}`,
        });
      }
      events.sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
      const next = { blockNumber: to, blockHash: hashBefore };
      await this.options.apply(events, next);
      cursor = next;
      from = to + 1;
    }
    return cursor;
  }
}
