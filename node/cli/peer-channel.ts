import type { Wallet } from "ethers";
import { ConsortError, toConsortError } from "../errors.ts";
import { postMessage } from "../transport/http-client.ts";
import { labelKey, sealPayload, signPeerMessage, type MessageLabel, type PeerMessageContext } from "../transport/peer-message.ts";
import type { NodeStore } from "../store/node-store.ts";
import type { PartyDirectory } from "./party-directory.ts";
import type { PeerMailbox } from "./peer-mailbox.ts";

export interface PeerChannelOptions {
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Labelled, encrypted, signed byte messages between the parties of a task,
 * over the peers' HTTP APIs (rule 7: every message is labelled by task, round
 * and gate and signed by its sender's registered key). Sends retry while the
 * peer is unreachable or not ready (it may not have seen the task yet);
 * receives wait on the store-backed mailbox.
 */
export class PeerChannel {
  private readonly o: PeerChannelOptions;
  readonly self: string;

  constructor(options: PeerChannelOptions) {
    this.o = options;
    this.self = options.wallet.address;
  }

  async send(label: MessageLabel, to: string, payload: Uint8Array): Promise<void> {
    const peer = await this.o.directory.get(to);
    const context: PeerMessageContext = { chainId: this.o.chainId, registry: this.o.registry, label, from: this.self, to: peer.address };
    const sealed = sealPayload(peer.encryptionKey, context, payload);
    const signed = signPeerMessage({ ...context, sealed }, this.o.wallet);
    const deadline = Date.now() + this.o.timeoutMs;
    let delay = 50;
    for (let attempt = 1; ; attempt++) {
      try {
        await postMessage(peer.endpoint, signed, { timeoutMs: this.o.requestTimeoutMs ?? 30_000 });
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
        this.o.onRetry?.({ to: peer.address, label: labelKey(label), attempt, error });
        await sleep(delay);
        delay = Math.min(delay * 2, 1_000);
      }
    }
  }

  receive(label: MessageLabel, from: string, timeoutMs = this.o.timeoutMs): Promise<Uint8Array> {
    return this.o.mailbox.wait(labelKey(label), from, timeoutMs, () =>
      this.o.store.getMessage(label.taskId, label.round, label.gate, from),
    );
  }
}
