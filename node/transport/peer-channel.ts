import { setMaxListeners } from "node:events";
import { ConsortError, toConsortError } from "../errors.ts";
import { labelKey, type MessageLabel } from "./message-label.ts";
import type { PeerSessions } from "./peer-sessions.ts";
import type { PeerMailbox } from "./peer-mailbox.ts";

const EMPTY = new Uint8Array(0);

/** Where a receive looks for a message that arrived before this process waited for it (after a restart). */
export interface MessageLookup {
  getMessage(taskId: bigint, round: number, gate: string, fromParty: string): Uint8Array | undefined;
}

/** Peer frames (../transport/peer-sessions.ts): pairwise session keys, batched signatures, one stream per peer. */
export interface PeerChannelOptions {
  sessions: PeerSessions;
  store: MessageLookup;
  mailbox: PeerMailbox;
  /** How long a receive waits (sends use the sessions' own deadline). */
  timeoutMs: number;
}

/**
 * Labelled, encrypted, signed byte messages between the parties of a task,
 * over the peers' HTTP APIs (rule 7: every message is labelled by task, round
 * and gate and signed by its sender's registered key). Sends retry while the
 * peer is unreachable or not ready (it may not have seen the task yet);
 * receives wait on the mailbox, which falls back to the store.
 *
 * exchange() is one round (all-to-all, or sparse). It returns as soon as every peer's
 * message is in, without waiting for the peers to acknowledge ours: they
 * cannot have sent theirs for the next round without ours, so waiting would
 * only add the acknowledgement's latency to every round (and its write to
 * every frame; see ../transport/frame-server.ts). A send that finally fails
 * (peer unreachable past the deadline, or refused) fails the task's pending
 * and later receives and exchanges with its error until forgetTask.
 */
export class PeerChannel {
  private readonly o: PeerChannelOptions;
  readonly self: string;
  /** Per task: aborted with the first send that failed for good. */
  private readonly failures = new Map<string, AbortController>();
  private readonly selfIndex = new WeakMap<readonly string[], number>();

  constructor(options: PeerChannelOptions) {
    this.o = options;
    this.self = options.sessions.address;
  }

  private failureOf(taskId: bigint): AbortController {
    const id = taskId.toString();
    let controller = this.failures.get(id);
    if (controller === undefined) {
      controller = new AbortController();
      // Every receive of the task listens to it; a task of 255 parties has 254 at once.
      setMaxListeners(0, controller.signal);
      this.failures.set(id, controller);
    }
    return controller;
  }

  /**
   * One round of a task whose ordered parties are `parties` (this party
   * among them): sends outgoing[j] to parties[j] for every peer j with a
   * message (undefined: nothing to send) and resolves with received[j], what
   * parties[j] sent under `label`, for every peer j with from[j] (default:
   * every peer); received[j] is empty for the others and received[self] =
   * outgoing[self]. Rejects with the first failure of a send or receive
   * (PEER_UNREACHABLE, PEER_REJECTED, PROTOCOL_TIMEOUT, ...).
   */
  exchange(
    label: MessageLabel,
    parties: readonly string[],
    outgoing: readonly (Uint8Array | undefined)[],
    from?: readonly boolean[],
  ): Promise<Uint8Array[]> {
    const self = this.selfIn(parties);
    if (self < 0) return Promise.reject(new ConsortError("NOT_A_PARTY", `this party ${this.self} is not among the parties of task ${label.taskId}`));
    if (outgoing.length !== parties.length || (from !== undefined && from.length !== parties.length)) {
      return Promise.reject(
        new ConsortError("INTERNAL", `exchange needs one outgoing message (or undefined) and one from flag per party (${parties.length}), got ${outgoing.length}`),
      );
    }
    let key: string;
    try {
      key = labelKey(label);
    } catch (error) {
      return Promise.reject(error);
    }
    const failure = this.failureOf(label.taskId);
    const received: Uint8Array[] = new Array(parties.length);
    const waitingFor: number[] = [];
    const waits: Promise<Uint8Array>[] = [];
    for (let j = 0; j < parties.length; j++) {
      const payload = outgoing[j];
      // Not awaited: the round is over when the peers' messages are in (see the class comment).
      if (j !== self && payload !== undefined) this.send(label, parties[j]!, payload).catch((error: unknown) => failure.abort(toConsortError(error)));
      if (j === self) received[j] = outgoing[self] ?? EMPTY;
      else if (from?.[j] === false) received[j] = EMPTY;
      else {
        waitingFor.push(j);
        waits.push(this.#wait(label, key, parties[j]!, this.o.timeoutMs, failure.signal));
      }
    }
    if (waits.length === 0) return Promise.resolve(received);
    // A ring round waits for one peer: one promise, no Promise.all.
    if (waits.length === 1) {
      return waits[0]!.then((payload) => {
        received[waitingFor[0]!] = payload;
        return received;
      });
    }
    return Promise.all(waits).then((payloads) => {
      for (let k = 0; k < payloads.length; k++) received[waitingFor[k]!] = payloads[k]!;
      return received;
    });
  }

  /** This party's index in `parties` (cached per array: a task's rounds pass the same one). */
  private selfIn(parties: readonly string[]): number {
    let self = this.selfIndex.get(parties);
    if (self === undefined) {
      const me = this.self.toLowerCase();
      self = parties.findIndex((p) => p.toLowerCase() === me);
      this.selfIndex.set(parties, self);
    }
    return self;
  }

  send(label: MessageLabel, to: string, payload: Uint8Array): Promise<void> {
    return this.o.sessions.send(label, to, payload);
  }

  /**
   * The payload `from` sent under `label`; PROTOCOL_TIMEOUT (retryable) after
   * `timeoutMs`, or the error of a send of this task that failed for good.
   */
  receive(label: MessageLabel, from: string, timeoutMs = this.o.timeoutMs): Promise<Uint8Array> {
    return this.#wait(label, labelKey(label), from, timeoutMs, this.failureOf(label.taskId).signal);
  }

  #wait(label: MessageLabel, key: string, from: string, timeoutMs: number, signal: AbortSignal): Promise<Uint8Array> {
    const store = this.o.store;
    return this.o.mailbox.wait(key, from, timeoutMs, () => store.getMessage(label.taskId, label.round, label.gate, from), signal);
  }

  /**
   * Fails the task's pending and later receives and exchanges with `reason`
   * (e.g. a peer started a newer attempt of its computation) until resetTask.
   */
  abortTask(taskId: bigint, reason: ConsortError): void {
    this.failureOf(taskId).abort(reason);
  }

  /**
   * Readies a task for another run of its computation under new labels: its
   * recorded failure is cleared (sends of the abandoned run that fail later
   * no longer touch the new one), its sessions start afresh (no frame of the
   * abandoned run is owed a checkpoint), and the early arrivals `stale`
   * accepts are dropped; the others (a peer already in the new run) stay.
   */
  resetTask(taskId: bigint, stale: (label: string) => boolean): void {
    this.failures.delete(taskId.toString());
    this.o.mailbox.forget(`task/${taskId}/`, stale);
    this.o.sessions.forgetTask(taskId);
  }

  /**
   * Forgets a task: its recorded send failure, the early arrivals the mailbox
   * holds for it and its keys and sessions. Call when the task
   * is over, and before running its computation again.
   */
  forgetTask(taskId: bigint): void {
    this.failures.delete(taskId.toString());
    this.o.mailbox.forget(`task/${taskId}/`);
    this.o.sessions.forgetTask(taskId);
  }
}
