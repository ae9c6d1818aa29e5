import { setMaxListeners } from "node:events";
import type { Wallet } from "ethers";
import { ConsortError, toConsortError } from "../errors.ts";
import { postMessage } from "../transport/http-client.ts";
import { labelKey, sealPayload, signPeerMessage, type MessageLabel, type PeerMessageContext } from "../transport/peer-message.ts";
import type { PeerSessions } from "../transport/peer-sessions.ts";
import type { NodeStore } from "../store/node-store.ts";
import type { PartyDirectory } from "./party-directory.ts";
import type { PeerMailbox } from "./peer-mailbox.ts";

/** Where a receive looks for a message that arrived before this process waited for it (after a restart). */
export type MessageLookup = Pick<NodeStore, "getMessage">;

/** Peer frames (../transport/peer-sessions.ts): pairwise session keys, batched signatures, one stream per peer. */
export interface SessionChannelOptions {
  sessions: PeerSessions;
  store: MessageLookup;
  mailbox: PeerMailbox;
  /** How long a receive waits (sends use the sessions' own deadline). */
  timeoutMs: number;
}

/**
 * @deprecated The per-message ECIES + ECDSA messages of ../transport/peer-message.ts over
 * POST /v1/messages (~15 ms per message); kept until the node uses SessionChannelOptions.
 */
export interface LegacyChannelOptions {
  chainId: bigint;
  registry: string;
  wallet: Wallet;
  directory: PartyDirectory;
  store: NodeStore;
  mailbox: PeerMailbox;
  /** How long one send keeps retrying a peer that is down or not ready, and how long a receive waits. */
  timeoutMs: number;
  /** Per-HTTP-request timeout. */
  requestTimeoutMs?: number;
  onRetry?: (info: { to: string; label: string; attempt: number; error: ConsortError }) => void;
}

export type PeerChannelOptions = SessionChannelOptions | LegacyChannelOptions;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Labelled, encrypted, signed byte messages between the parties of a task,
 * over the peers' HTTP APIs (rule 7: every message is labelled by task, round
 * and gate and signed by its sender's registered key). Sends retry while the
 * peer is unreachable or not ready (it may not have seen the task yet);
 * receives wait on the mailbox, which falls back to the store.
 *
 * exchange() is one all-to-all round. It returns as soon as every peer's
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

  constructor(options: PeerChannelOptions) {
    this.o = options;
    this.self = "sessions" in options ? options.sessions.address : options.wallet.address;
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
   * One all-to-all round of a task whose ordered parties are `parties` (this
   * party among them): sends outgoing[j] to parties[j] for every peer j and
   * resolves with received[j], what parties[j] sent under `label`
   * (received[self] = outgoing[self]). Rejects with the first failure of a
   * send or receive (PEER_UNREACHABLE, PEER_REJECTED, PROTOCOL_TIMEOUT, ...).
   */
  async exchange(label: MessageLabel, parties: readonly string[], outgoing: readonly Uint8Array[]): Promise<Uint8Array[]> {
    const self = parties.findIndex((p) => p.toLowerCase() === this.self.toLowerCase());
    if (self < 0) throw new ConsortError("NOT_A_PARTY", `this party ${this.self} is not among the parties of task ${label.taskId}`);
    if (outgoing.length !== parties.length) {
      throw new ConsortError("INTERNAL", `exchange needs one outgoing message per party (${parties.length}), got ${outgoing.length}`);
    }
    const failure = this.failureOf(label.taskId);
    parties.forEach((party, j) => {
      if (j === self) return;
      // Not awaited: the round is over when the peers' messages are in (see the class comment).
      this.send(label, party, outgoing[j]!).catch((error: unknown) => failure.abort(toConsortError(error)));
    });
    return Promise.all(parties.map((party, j) => (j === self ? Promise.resolve(outgoing[self]!) : this.receive(label, party))));
  }

  async send(label: MessageLabel, to: string, payload: Uint8Array): Promise<void> {
    if ("sessions" in this.o) {
      await this.o.sessions.send(label, to, payload);
      return;
    }
    await this.sendLegacy(this.o, label, to, payload);
  }

  private async sendLegacy(o: LegacyChannelOptions, label: MessageLabel, to: string, payload: Uint8Array): Promise<void> {
    const peer = await o.directory.get(to);
    const context: PeerMessageContext = { chainId: o.chainId, registry: o.registry, label, from: this.self, to: peer.address };
    const sealed = sealPayload(peer.encryptionKey, context, payload);
    const signed = signPeerMessage({ ...context, sealed }, o.wallet);
    const deadline = Date.now() + o.timeoutMs;
    let delay = 50;
    for (let attempt = 1; ; attempt++) {
      try {
        await postMessage(peer.endpoint, signed, { timeoutMs: o.requestTimeoutMs ?? 30_000 });
        return;
      } catch (raw) {
        const error = toConsortError(raw);
        if (!error.retryable || Date.now() + delay > deadline) {
          throw new ConsortError(
            error.retryable ? "PEER_UNREACHABLE" : error.code,
            `sending ${labelKey(label)} to party ${peer.address} at ${peer.endpoint} failed: ${error.message}`,
            { retryable: error.retryable, cause: error, details: { to: peer.address, label: labelKey(label) } },
          );
        }
        o.onRetry?.({ to: peer.address, label: labelKey(label), attempt, error });
        await sleep(delay);
        delay = Math.min(delay * 2, 1_000);
      }
    }
  }

  /**
   * The payload `from` sent under `label`; PROTOCOL_TIMEOUT (retryable) after
   * `timeoutMs`, or the error of a send of this task that failed for good.
   */
  receive(label: MessageLabel, from: string, timeoutMs = this.o.timeoutMs): Promise<Uint8Array> {
    const store = this.o.store;
    return this.o.mailbox.wait(
      labelKey(label),
      from,
      timeoutMs,
      () => store.getMessage(label.taskId, label.round, label.gate, from),
      this.failureOf(label.taskId).signal,
    );
  }

  /**
   * Forgets a task: its recorded send failure, the early arrivals the mailbox
   * holds for it and (with sessions) its keys and sessions. Call when the task
   * is over, and before running its computation again.
   */
  forgetTask(taskId: bigint): void {
    this.failures.delete(taskId.toString());
    this.o.mailbox.forget(`task/${taskId}/`);
    if ("sessions" in this.o) this.o.sessions.forgetTask(taskId);
  }
}
