import { hexlify } from "ethers";
import { ConsortError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { decodeProgram } from "../program/program-encoding.ts";
import { decodeResult } from "../program/result-encoding.ts";
import type { NodeStore } from "../store/node-store.ts";
import { toHex } from "../transport/binary-codec.ts";
import { sealOutputResponse, verifyOutputRequest, type OutputRequest } from "../transport/output-request.ts";
import type { ComputeStats } from "./compute-runner.ts";

export interface NodeQueriesOptions {
  address: string;
  chainId: bigint;
  registry: string;
  encryptionPublicKey: Uint8Array;
  store: NodeStore;
  logger: Logger;
  computeStats(taskId: bigint): ComputeStats | undefined;
}

/** The node API's read side: health, a task's status, programs by hash, and requester outputs. */
export class NodeQueries {
  readonly #o: NodeQueriesOptions;

  constructor(options: NodeQueriesOptions) {
    this.#o = options;
  }

  health(): Record<string, unknown> {
    const { store } = this.#o;
    const cursor = store.loadCursor();
    return {
      status: "ok",
      party: this.#o.address,
      chainId: this.#o.chainId.toString(),
      registry: this.#o.registry,
      encryptionKey: hexlify(this.#o.encryptionPublicKey),
      processedBlock: cursor?.blockNumber ?? null,
      tasks: store.listTasks().length,
    };
  }

  /** Serves the bytes of a program this node holds (any task it is a party of), so peers and users can fetch a program by hash. */
  programByHash(hash: string): Uint8Array {
    const wanted = hash.toLowerCase();
    const task = this.#o.store.listTasks().find((t) => t.programHash.toLowerCase() === wanted);
    if (task === undefined) {
      throw new ConsortError("NOT_FOUND", `party ${this.#o.address} holds no program with hash ${hash}`, { details: { programHash: hash } });
    }
    return task.program;
  }

  /** What the node knows and is doing about a task: its record, inputs, attestations and its job (step, attempt, last error, next run). */
  taskStatus(taskId: bigint): Record<string, unknown> {
    const { store } = this.#o;
    const task = store.getTask(taskId);
    if (task === undefined) {
      throw new ConsortError("UNKNOWN_TASK", `task ${taskId} is unknown to party ${this.#o.address}`, { details: { taskId: taskId.toString() } });
    }
    const shares = store.getShares(taskId);
    const commitments = store.getCommitments(taskId);
    let result: unknown = null;
    if (task.result !== undefined) {
      try {
        result = decodeResult(decodeProgram(task.program), task.result).outputs;
      } catch {
        result = null;
      }
    }
    const job = store.getJob(taskId);
    return {
      taskId: taskId.toString(),
      status: task.status,
      error: task.error ?? null,
      programHash: task.programHash,
      parties: task.parties,
      threshold: task.threshold,
      dataOwners: task.dataOwners.map((owner) => ({ address: owner, committed: commitments.has(owner), shareReceived: shares.has(owner) })),
      resultHash: task.resultHash ?? null,
      result,
      attestations: store.getAttestations(taskId).map((a) => a.signer),
      finalizedBlock: task.finalizedBlock ?? null,
      finalizeTx: task.finalizeTx ?? null,
      job:
        job === undefined
          ? null
          : {
              step: job.step ?? null,
              attempt: job.attempt,
              failures: job.failures,
              lastError: job.lastError ?? null,
              nextRunAt: job.nextRunAt === undefined ? null : new Date(job.nextRunAt).toISOString(),
            },
      compute: this.#o.computeStats(taskId) ?? null,
    };
  }

  /**
   * This party's shares of a finalized task's requester-only outputs, sealed to
   * the ephemeral key in the requester's signed request (../transport/output-request.ts).
   */
  requesterOutputs(request: OutputRequest): Record<string, unknown> {
    const { store, logger } = this.#o;
    const task = store.getTask(BigInt(request.taskId));
    if (task === undefined) {
      throw new ConsortError("UNKNOWN_TASK", `task ${request.taskId} is unknown to party ${this.#o.address}`, { details: { taskId: request.taskId } });
    }
    verifyOutputRequest(request, { chainId: this.#o.chainId, registry: this.#o.registry, requester: task.requester, nowSeconds: Math.floor(Date.now() / 1000) });
    if (task.status !== "finalized") {
      throw new ConsortError("TASK_NOT_ACCEPTING", `task ${request.taskId} is ${task.status}; requester outputs are released once it is finalized`, {
        retryable: task.status === "computing" || task.status === "attesting" || task.status === "awaiting-inputs",
      });
    }
    const shares = [...store.getRequesterShares(task.taskId).values()].map((payload) => hexlify(payload));
    const sealed = sealOutputResponse(request, this.#o.address, new TextEncoder().encode(JSON.stringify(shares)));
    logger.info({ taskId: request.taskId, outputs: shares.length }, "requester outputs released to the requester");
    return { party: this.#o.address, sealed: toHex(sealed) };
  }
}
