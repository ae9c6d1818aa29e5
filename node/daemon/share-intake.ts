import { getAddress, getBytes, hexlify } from "ethers";
import type { RegistryClient } from "../chain/registry-client.ts";
import { assertTaskOnChain } from "../chain/task-identity.ts";
import { ConsortError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { inputCommitment, shareDigestOfEncoded, type InputContext } from "../math/commitment.ts";
import { ownerInputLayout } from "../program/input-layout.ts";
import { decodeProgram } from "../program/program-encoding.ts";
import type { NodeStore, StoredTask } from "../store/node-store.ts";
import { maxShareSubmissionBytes, openSharePayload, verifyShareSubmission, type ShareSubmission } from "../transport/share-submission.ts";
import { sameAddress } from "../transport/binary-codec.ts";

export interface ShareIntakeOptions {
  address: string;
  chainId: bigint;
  registry: RegistryClient;
  store: NodeStore;
  encryptionPrivateKey: Uint8Array;
  logger: Logger;
  /** A share was stored for the task. */
  onShare(taskId: bigint): void;
}


/** Data owners' shares for this party: each verified in full against the owner's on-chain commitment before anything is stored. */
export class ShareIntake {
  readonly #o: ShareIntakeOptions;

  constructor(options: ShareIntakeOptions) {
    this.#o = options;
  }

  #knownTask(taskId: bigint): StoredTask {
    const task = this.#o.store.getTask(taskId);
    if (task === undefined) {
      throw new ConsortError(
        "UNKNOWN_TASK",
        `task ${taskId} is unknown to party ${this.#o.address} (not created, not confirmed yet, or this party is not in it)`,
        { retryable: true, details: { taskId: taskId.toString() } },
      );
    }
    return task;
  }

  /** The most a data owner of the task can send this party, so a larger body is refused before it is read (unknown tasks too). */
  bodyLimit(taskId: bigint): number {
    const task = this.#knownTask(taskId);
    if (task.status === "finalized" || task.status === "expired" || task.status === "failed") {
      throw new ConsortError("TASK_NOT_ACCEPTING", `task ${taskId} is ${task.status} and takes no more input`, {
        details: { taskId: taskId.toString(), status: task.status },
      });
    }
    const program = decodeProgram(task.program);
    let values = 0;
    for (let owner = 0; owner < task.dataOwners.length; owner++) values = Math.max(values, ownerInputLayout(program, owner).length);
    return maxShareSubmissionBytes(values, task.parties.length);
  }

  #inputContext(taskId: bigint, dataOwner: string): InputContext {
    return { chainId: this.#o.chainId, registry: getBytes(this.#o.registry.address), taskId, dataOwner: getBytes(dataOwner) };
  }

  /** A data owner's share for this party: verified in full before anything is stored. */
  async accept(submission: ShareSubmission): Promise<Record<string, unknown>> {
    verifyShareSubmission(submission);
    if (BigInt(submission.chainId) !== this.#o.chainId || !sameAddress(submission.registry, this.#o.registry.address)) {
      throw new ConsortError(
        "BAD_REQUEST",
        `the submission is for chain ${submission.chainId} registry ${submission.registry}; this node serves chain ${this.#o.chainId} registry ${this.#o.registry.address}`,
      );
    }
    if (!sameAddress(submission.party, this.#o.address)) {
      throw new ConsortError("NOT_A_PARTY", `the submission is addressed to ${submission.party}, not to this party ${this.#o.address}`);
    }
    const taskId = BigInt(submission.taskId);
    const task = this.#knownTask(taskId);
    if (task.status === "finalized" || task.status === "expired" || task.status === "failed") {
      throw new ConsortError("TASK_NOT_ACCEPTING", `task ${taskId} is ${task.status} and takes no more input`, {
        details: { taskId: submission.taskId, status: task.status },
      });
    }
    const dataOwner = getAddress(submission.dataOwner);
    const ownerIndex = task.dataOwners.findIndex((o) => sameAddress(o, dataOwner));
    if (ownerIndex < 0) {
      throw new ConsortError("NOT_A_DATA_OWNER", `${dataOwner} is not a data owner of task ${taskId}`, {
        details: { taskId: submission.taskId, dataOwner },
      });
    }
    // The id may name another task since a reorg this node has not processed yet.
    await assertTaskOnChain(this.#o.registry, task);
    if (submission.digests.length !== task.parties.length) {
      throw new ConsortError(
        "BAD_REQUEST",
        `digests: expected one per party (${task.parties.length}), got ${submission.digests.length}`,
        { details: { field: "digests" } },
      );
    }
    const selfIndex = task.parties.findIndex((p) => sameAddress(p, this.#o.address));
    const layout = ownerInputLayout(decodeProgram(task.program), ownerIndex);
    const { salt, encoded, vector } = openSharePayload(
      this.#o.encryptionPrivateKey,
      submission.sealed,
      { chainId: this.#o.chainId, registry: this.#o.registry.address, taskId, dataOwner, party: this.#o.address },
      layout.length,
    );
    const ctx = this.#inputContext(taskId, dataOwner);
    const digests = submission.digests.map((d) => getBytes(d));
    if (hexlify(shareDigestOfEncoded(ctx, selfIndex, salt, encoded)) !== hexlify(digests[selfIndex]!)) {
      throw new ConsortError("COMMITMENT_MISMATCH", `the share does not match digest #${selfIndex} of data owner ${dataOwner}'s submission`, {
        details: { taskId: submission.taskId, dataOwner },
      });
    }
    const storedCommitment = this.#o.store.getCommitments(taskId).get(dataOwner);
    let commitment = storedCommitment;
    if (commitment === undefined) {
      // The watcher may not have applied the InputCommitted event yet (confirmations): read the chain directly.
      const onChain = (await this.#o.registry.inputCommitments(taskId))[ownerIndex];
      if (onChain === undefined || /^0x0+$/.test(onChain)) {
        throw new ConsortError("COMMITMENT_NOT_FOUND", `data owner ${dataOwner} has not committed an input to task ${taskId} yet`, {
          retryable: true,
          details: { taskId: submission.taskId, dataOwner },
        });
      }
      commitment = onChain;
    }
    if (hexlify(inputCommitment(ctx, digests)) !== commitment.toLowerCase()) {
      if (storedCommitment !== undefined) {
        const onChain = (await this.#o.registry.inputCommitments(taskId))[ownerIndex];
        if (onChain?.toLowerCase() !== storedCommitment.toLowerCase()) {
          throw new ConsortError("CHAIN_NOT_SYNCED", `data owner ${dataOwner}'s commitment to task ${taskId} changed on chain (a reorg this party has not processed yet)`, {
            retryable: true,
            details: { taskId: submission.taskId, dataOwner },
          });
        }
      }
      throw new ConsortError("COMMITMENT_MISMATCH", `the submitted digests do not match data owner ${dataOwner}'s on-chain commitment ${commitment}`, {
        details: { taskId: submission.taskId, dataOwner, commitment },
      });
    }
    const concatenated = new Uint8Array(32 * digests.length);
    digests.forEach((d, i) => concatenated.set(d, 32 * i));
    const outcome = this.#o.store.putShare(taskId, {
      dataOwner,
      salt,
      values: vector,
      digests: concatenated,
      receivedAt: Date.now(),
      commitment: commitment.toLowerCase(),
    });
    if (outcome !== "inserted") {
      throw new ConsortError("DUPLICATE_INPUT", `party ${this.#o.address} already holds data owner ${dataOwner}'s share for task ${taskId}`, {
        details: { taskId: submission.taskId, dataOwner, identical: outcome === "identical" },
      });
    }
    this.#o.logger.info({ taskId: submission.taskId, dataOwner }, "input share accepted");
    this.#o.onShare(taskId);
    return { status: "accepted", taskId: submission.taskId, dataOwner, party: this.#o.address };
  }
}
