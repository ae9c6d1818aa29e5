import { getAddress, getBytes, hexlify, type Wallet } from "ethers";
import { recoverAttestationSigner, signAttestation } from "../chain/attestation.ts";
import { ConsortError, toConsortError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { NodeStore, StoredTask } from "../store/node-store.ts";
import type { PeerChannel } from "../transport/peer-channel.ts";
import type { MessageLabel } from "../transport/message-label.ts";
import { ATTESTATION_GATE, attemptGate } from "./compute-runner.ts";
import { sameAddress } from "../transport/binary-codec.ts";

/** After the quorum is in, how long to wait for the remaining attestations (the finalize transaction carries all it has). */
const LATE_ATTESTATION_GRACE_MS = 1_000;

export interface ResultAttestorOptions {
  wallet: Wallet;
  chainId: bigint;
  registry: string;
  store: NodeStore;
  channel: PeerChannel;
  logger: Logger;
  /** The registry's input commitments of the task, in data-owner order. */
  inputCommitments(task: StoredTask): Promise<string[]>;
}

interface Attestation {
  taskId: bigint;
  programHash: string;
  inputCommitments: string[];
  resultHash: string;
}


/**
 * Signs this party's EIP-712 attestation of a task's result, sends it to
 * every peer and collects theirs. Idempotent: run again (after a failure or
 * a restart) it sends the same signature (RFC 6979 signatures are
 * deterministic) and counts what is stored already.
 */
export class ResultAttestor {
  readonly #o: ResultAttestorOptions;

  constructor(options: ResultAttestorOptions) {
    this.#o = options;
  }

  /** Valid attestations of the task's own result held here. */
  count(task: StoredTask): number {
    return this.#o.store.getAttestations(task.taskId).filter((a) => a.resultHash === task.resultHash).length;
  }

  /**
   * Attests and collects, under the label of the attempt whose run gave the
   * result (a result computed again later is attested under its own);
   * resolves with the number of valid attestations held, PROTOCOL_TIMEOUT
   * (retryable) below the quorum.
   */
  async attest(task: StoredTask, resultAttempt: number): Promise<number> {
    const { wallet, chainId, registry, store, channel, logger } = this.#o;
    if (task.result === undefined || task.resultHash === undefined) throw new ConsortError("INTERNAL", `task ${task.taskId} has no result to attest`);
    const address = wallet.address;
    const attestation: Attestation = {
      taskId: task.taskId,
      programHash: task.programHash,
      inputCommitments: await this.#o.inputCommitments(task),
      resultHash: task.resultHash,
    };
    const signature = await signAttestation(wallet, chainId, registry, attestation);
    store.putAttestation(task.taskId, { signer: address, resultHash: task.resultHash, signature });
    const label: MessageLabel = { taskId: task.taskId, round: 0, gate: attemptGate(resultAttempt, ATTESTATION_GATE) };
    const payload = new Uint8Array([...getBytes(task.resultHash), ...getBytes(signature)]);
    const peers = task.parties.filter((p) => !sameAddress(p, address));
    // Send to every peer and collect theirs; one peer failing must not stop the others.
    const sends = Promise.allSettled(peers.map((p) => channel.send(label, p, payload)));
    const quorum = task.threshold + 1;
    const collected = await this.#collect(task, label, attestation, peers, quorum);
    void sends.then((results) =>
      results.forEach((r, i) => {
        if (r.status === "rejected") logger.warn({ taskId: task.taskId.toString(), to: peers[i] }, `attestation not delivered: ${toConsortError(r.reason).message}`);
      }),
    );
    if (collected < quorum) {
      throw new ConsortError("PROTOCOL_TIMEOUT", `task ${task.taskId}: only ${collected} of the ${quorum} attestations needed arrived`, { retryable: true });
    }
    return collected;
  }

  /** Waits for peers' attestations (all of them, or the quorum plus a short grace); returns how many valid ones are stored. */
  async #collect(task: StoredTask, label: MessageLabel, attestation: Attestation, peers: readonly string[], quorum: number): Promise<number> {
    const { chainId, registry, store, channel, logger } = this.#o;
    const count = () => this.count(task);
    const held = new Set(store.getAttestations(task.taskId).map((a) => a.signer.toLowerCase()));
    let quorumReached: (() => void) | undefined;
    const quorumPromise = new Promise<void>((resolve) => (quorumReached = resolve));
    const waits = peers
      .filter((peer) => !held.has(peer.toLowerCase()))
      .map(async (peer) => {
        const payload = await channel.receive(label, peer);
        if (payload.length !== 32 + 65) throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `attestation from ${peer} has ${payload.length} bytes`);
        const resultHash = hexlify(payload.subarray(0, 32));
        const signature = hexlify(payload.subarray(32));
        if (resultHash !== task.resultHash) {
          logger.error({ taskId: task.taskId.toString(), peer, theirs: resultHash, ours: task.resultHash }, "a party attested a different result");
          return;
        }
        const signer = recoverAttestationSigner(chainId, registry, { ...attestation, resultHash }, signature);
        if (!sameAddress(signer, peer)) {
          logger.error({ taskId: task.taskId.toString(), peer, signer }, "attestation signature does not match its sender");
          return;
        }
        store.putAttestation(task.taskId, { signer: getAddress(peer), resultHash, signature });
        if (count() >= quorum) quorumReached?.();
      });
    if (count() >= quorum) quorumReached?.();
    const all = Promise.allSettled(waits);
    await Promise.race([all, quorumPromise]);
    if (count() < peers.length + 1) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise((r) => (timer = setTimeout(r, LATE_ATTESTATION_GRACE_MS)))]);
      clearTimeout(timer);
    }
    return count();
  }
}
