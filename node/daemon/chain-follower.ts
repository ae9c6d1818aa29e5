import type { ChainCursor, WatchedEvent } from "../chain/event-watcher.ts";
import { decodeRegistryEvent, type RegistryEvent } from "../chain/task-events.ts";
import { ConsortError, toConsortError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { decodeProgram, programHash } from "../program/program-encoding.ts";
import { programDataOwnerCount } from "../program/program.ts";
import type { NodeStore } from "../store/node-store.ts";
import { sameAddress } from "../transport/binary-codec.ts";

export interface ChainFollowerOptions {
  address: string;
  store: NodeStore;
  logger: Logger;
  /** A party's registration changed (its keys or endpoint): forget what is cached of it. */
  onPartyUpdated(party: string): void;
  /** The task's computation is over (finalized or expired on chain): stop its rounds, drop its messages. */
  onTaskOver(taskId: bigint, how: "finalized" | "expired"): void;
  /** These tasks changed: decide their next step. */
  onTasksTouched(taskIds: readonly bigint[]): void;
}


/**
 * Applies the registry's confirmed events to the node's store: the
 * EventWatcher's `apply`. One block range's events and the cursor are
 * written in one store transaction, so a restart neither misses nor repeats
 * an event; the tasks they touched are handed to the task driver afterwards.
 */
export class ChainFollower {
  readonly #o: ChainFollowerOptions;

  constructor(options: ChainFollowerOptions) {
    this.#o = options;
  }

  apply(events: readonly WatchedEvent[], cursor: ChainCursor): void {
    const { store } = this.#o;
    const touched = new Set<bigint>();
    const over: [bigint, "finalized" | "expired"][] = [];
    store.transaction(() => {
      for (const watched of events) {
        const event = decodeRegistryEvent(watched.name, watched.args, watched);
        const taskId = event !== undefined && "taskId" in event ? event.taskId : undefined;
        if (!store.markEventApplied(watched.key, watched.blockNumber, watched.name, taskId)) continue;
        if (event !== undefined) this.#applyEvent(event, touched, over);
      }
      store.advanceCursor(cursor);
    });
    for (const [taskId, how] of over) this.#o.onTaskOver(taskId, how);
    if (touched.size > 0) this.#o.onTasksTouched([...touched]);
  }

  #applyEvent(event: RegistryEvent, touched: Set<bigint>, over: [bigint, "finalized" | "expired"][]): void {
    const { store, logger } = this.#o;
    switch (event.name) {
      case "TaskCreated": {
        if (!event.parties.some((p) => sameAddress(p, this.#o.address))) return;
        const error = this.#checkProgram(event);
        store.insertTask({
          taskId: event.taskId,
          programHash: event.programHash,
          program: event.program,
          requester: event.requester,
          parties: event.parties,
          dataOwners: event.dataOwners,
          threshold: event.threshold,
          inputDeadline: event.inputDeadline,
          resultDeadline: event.resultDeadline,
          createdBlock: event.blockNumber,
          ...(error === undefined ? {} : { status: "failed" as const, error }),
        });
        if (error !== undefined) logger.error({ taskId: event.taskId.toString(), error }, "refusing task: its program is not valid");
        else logger.info({ taskId: event.taskId.toString(), programHash: event.programHash }, "task created with this party");
        touched.add(event.taskId);
        return;
      }
      case "InputCommitted": {
        if (store.getTask(event.taskId) === undefined) return;
        store.putCommitment(event.taskId, event.dataOwner, event.commitment);
        touched.add(event.taskId);
        return;
      }
      case "TaskFinalized": {
        if (store.getTask(event.taskId) === undefined) return;
        store.setTaskFinalized(event.taskId, event.result, event.resultHash, event.blockNumber, event.transactionHash);
        // The messages held shares of intermediate values; the task is over.
        store.deleteMessages(event.taskId);
        over.push([event.taskId, "finalized"]);
        touched.add(event.taskId);
        logger.info({ taskId: event.taskId.toString(), block: event.blockNumber }, "task finalized on chain");
        return;
      }
      case "TaskExpired": {
        if (store.getTask(event.taskId) === undefined) return;
        store.setTaskStatus(event.taskId, "expired");
        store.deleteMessages(event.taskId);
        over.push([event.taskId, "expired"]);
        touched.add(event.taskId);
        logger.info({ taskId: event.taskId.toString(), block: event.blockNumber }, "task expired on chain");
        return;
      }
      case "PartyUpdated":
        this.#o.onPartyUpdated(event.party);
        return;
    }
  }

  /** Why the task's program cannot be run, or undefined. */
  #checkProgram(event: Extract<RegistryEvent, { name: "TaskCreated" }>): string | undefined {
    try {
      const decoded = decodeProgram(event.program);
      if (programHash(event.program) !== event.programHash) throw new ConsortError("PROGRAM_HASH_MISMATCH", "program bytes do not hash to the program hash");
      if (programDataOwnerCount(decoded) !== event.dataOwners.length) {
        throw new ConsortError(
          "PROGRAM_INVALID",
          `the program reads inputs from ${programDataOwnerCount(decoded)} data owners but the task lists ${event.dataOwners.length}`,
        );
      }
      return undefined;
    } catch (e) {
      const error = toConsortError(e);
      return `${error.code}: ${error.message}`;
    }
  }
}
