import { randomBytes } from "@noble/hashes/utils.js";
import { keccak256 } from "ethers";
import { ConsortError, toConsortError } from "../errors.ts";
import { frVecCheck } from "../math/fr-vec.ts";
import { ownerInputLayout, splitOwnerVector } from "../program/input-layout.ts";
import { decodeProgram } from "../program/program-encoding.ts";
import { encodeResult } from "../program/result-encoding.ts";
import { runProgram } from "../protocol/program-runner.ts";
import type { RoundNetwork } from "../protocol/round-network.ts";
import type { NodeStore, StoredTask } from "../store/node-store.ts";
import type { PeerChannel } from "../transport/peer-channel.ts";
import type { PeerMailbox } from "../transport/peer-mailbox.ts";
import { labelKey, type MessageLabel } from "../transport/message-label.ts";
import type { AcceptedFrame, PeerSessions } from "../transport/peer-sessions.ts";
import { encodeRequesterShare } from "../transport/requester-share-codec.ts";
import type { Logger } from "../logger.ts";
import { sameAddress } from "../transport/binary-codec.ts";

/** The gate (after the attempt of the run that gave the result) of the message in which a party sends its signed attestation of the result to its peers (round 0). */
export const ATTESTATION_GATE = "attest";

/**
 * A computation's peer labels carry its attempt ahead of the engine's gate,
 * "a<attempt>/<gate>", so a computation run again after a failure or a
 * restart never reuses a label (a label is sealed once: its nonce derives
 * from it). Parties agree on the attempt without a message of their own: a
 * party that restarts, or whose attempt fails, moves to the next one, and a
 * party that receives a frame of a higher attempt abandons its own and joins
 * it, so every party ends up in the highest attempt any of them started.
 */
export function attemptGate(attempt: number, gate: string): string {
  return `a${attempt}/${gate}`;
}

/** The attempt and engine gate of a round frame's gate; undefined for a gate without an attempt (the attestation). */
export function parseAttemptGate(gate: string): { attempt: number; gate: string } | undefined {
  const match = /^a(\d{1,9})\/(.+)$/.exec(gate);
  return match === null ? undefined : { attempt: Number(match[1]), gate: match[2]! };
}

/**
 * Every run opens with an empty frame to each peer under "a<attempt>/start":
 * a party that restarted may send nothing in the engine's first rounds (a
 * ring round sends to one neighbour only), and its peers must still learn at
 * once that it moved to a newer attempt.
 */
const START_GATE = "start";
const EMPTY = new Uint8Array(0);

/** The attempt a labelKey (task/<id>/round/<r>/gate/<gate>) belongs to, if it is a round label. */
function attemptOfLabelKey(key: string): number | undefined {
  const at = key.indexOf("/gate/");
  return at < 0 ? undefined : parseAttemptGate(key.slice(at + 6))?.attempt;
}

/** Failures a new attempt cannot mend: the committed program itself is unusable. */
const FATAL_COMPUTE_CODES = new Set(["PROGRAM_INVALID", "PROGRAM_HASH_MISMATCH"]);

/**
 * A failed run is worth another attempt whatever went wrong with the peers
 * (a timeout, a restart, a refused frame of an abandoned attempt, a bad
 * message): the task keeps trying under new attempts until the registry's
 * result deadline expires it. Only an unusable program fails it for good.
 */
function asRetryable(error: unknown, taskId: bigint, attempt: number): ConsortError {
  const e = toConsortError(error);
  if (e.retryable || FATAL_COMPUTE_CODES.has(e.code)) return e;
  return new ConsortError(e.code, e.message, { retryable: true, cause: e, details: { ...e.details, taskId: taskId.toString(), attempt } });
}

export interface ComputeStats {
  readonly attempt: number;
  readonly ms: number;
  readonly rounds: number;
  readonly payloadBytesSent: number;
  /** This process's CPU time meanwhile (all threads). */
  readonly cpuMs: number;
}

export interface ComputeRunnerOptions {
  address: string;
  store: NodeStore;
  channel: PeerChannel;
  sessions: PeerSessions;
  mailbox: PeerMailbox;
  logger: Logger;
  /** A peer started a newer attempt of the task: run it again now. */
  onNewAttempt(taskId: bigint): void;
}


/**
 * Runs a task's computation on its input shares with its peers, under
 * attempt-numbered labels, and takes in their frames. The attempt lives in
 * the node's job table, so a restarted node never reuses the labels of a run
 * it may have started before it stopped.
 */
export class ComputeRunner {
  readonly #o: ComputeRunnerOptions;
  /** The current attempt per task: the job table's, cached because every round frame consults it. */
  readonly #attempts = new Map<string, number>();
  /** The attempt running now per task. */
  readonly #running = new Map<string, number>();
  /** Tasks whose computation is over here: their round frames are no longer awaited. */
  readonly #over = new Set<string>();
  readonly #stats = new Map<string, ComputeStats>();

  constructor(options: ComputeRunnerOptions) {
    this.#o = options;
  }

  /** The task's current attempt. */
  attemptOf(taskId: bigint): number {
    const key = taskId.toString();
    let attempt = this.#attempts.get(key);
    if (attempt === undefined) {
      attempt = this.#o.store.getJob(taskId)?.attempt ?? 0;
      this.#attempts.set(key, attempt);
    }
    return attempt;
  }

  /** Moves the task to `attempt` if that is newer than its current one; true when it did. */
  #raise(taskId: bigint, attempt: number): boolean {
    if (attempt <= this.attemptOf(taskId)) return false;
    this.#o.store.raiseJobAttempt(taskId, attempt);
    this.#attempts.set(taskId.toString(), attempt);
    return true;
  }

  /** A run that was interrupted (the node stopped during it) is never resumed under its labels: the next run takes a new attempt. */
  abandonInterrupted(taskId: bigint): void {
    this.#raise(taskId, this.attemptOf(taskId) + 1);
  }

  stats(taskId: bigint): ComputeStats | undefined {
    return this.#stats.get(taskId.toString());
  }

  /** The task's computation is over here (result stored, finalized, expired or removed): stop waiting for its rounds. */
  markOver(taskId: bigint, reason: string): void {
    const key = taskId.toString();
    this.#over.add(key);
    if (this.#running.has(key)) {
      this.#o.channel.abortTask(taskId, new ConsortError("PROTOCOL_ABORTED", `task ${key}: ${reason}`, { retryable: true, details: { taskId: key } }));
    }
  }

  /**
   * A reorg removed the task, or the inputs it computed on: whatever runs
   * stops, and the task moves to a newer attempt, so the task the chain now
   * holds under this id (or its computation on the new inputs) never reuses a
   * label of the removed one; its early frames, all of attempts now left,
   * go. A peer that saw the reorg first and already computes the new task
   * joins this party's newer attempt (the highest wins).
   */
  restartAfterReorg(taskId: bigint): void {
    const key = taskId.toString();
    this.markOver(taskId, "rolled back by a chain reorganisation");
    this.#over.delete(key);
    this.#stats.delete(key);
    this.#raise(taskId, this.attemptOf(taskId) + 1);
    this.#o.channel.resetTask(taskId, () => true);
  }

  /**
   * Forgets everything held for the task in memory (a reorg may hand its id
   * to another task, whose frames must be taken). `keepStats`: a task that is
   * over keeps its compute stats, which GET /v1/tasks/:id reports after it.
   */
  forget(taskId: bigint, keepStats = false): void {
    const key = taskId.toString();
    this.#over.delete(key);
    this.#attempts.delete(key);
    if (!keepStats) this.#stats.delete(key);
    this.#o.channel.forgetTask(taskId);
  }

  /**
   * Runs the task's current attempt. Resolves "computed" with the result
   * stored (status attesting), or "superseded" when a peer moved to a newer
   * attempt meanwhile (run again at once). Any other failure moves the task
   * to the next attempt and rejects with it (the driver retries after its
   * backoff; peers still in the old attempt join the new one when its first
   * frame reaches them).
   */
  async compute(task: StoredTask): Promise<"computed" | "superseded"> {
    const key = task.taskId.toString();
    const attempt = this.attemptOf(task.taskId);
    this.#over.delete(key);
    this.#o.channel.resetTask(task.taskId, (label) => {
      const a = attemptOfLabelKey(label);
      return a !== undefined && a < attempt;
    });
    this.#running.set(key, attempt);
    try {
      await this.#run(task, attempt);
      return "computed";
    } catch (error) {
      if (this.attemptOf(task.taskId) > attempt) return "superseded";
      this.#raise(task.taskId, attempt + 1);
      throw asRetryable(error, task.taskId, attempt);
    } finally {
      this.#running.delete(key);
    }
  }

  async #run(task: StoredTask, attempt: number): Promise<void> {
    const { store, sessions, logger } = this.#o;
    const program = decodeProgram(task.program);
    const shares = store.getShares(task.taskId);
    const inputShares = new Map<string, Uint8Array>();
    task.dataOwners.forEach((owner, ownerIndex) => {
      const share = shares.get(owner);
      if (share === undefined) throw new ConsortError("INTERNAL", `task ${task.taskId}: the share of data owner ${owner} is missing`);
      for (const [name, values] of splitOwnerVector(ownerInputLayout(program, ownerIndex), share.values)) inputShares.set(name, values);
    });
    logger.info({ taskId: task.taskId.toString(), attempt }, "computation started");
    // Keys and certificates first: setup the node could do as soon as it knew the task, not protocol time.
    await sessions.prepare(task.taskId, task.parties);
    const start: MessageLabel = { taskId: task.taskId, round: 0, gate: attemptGate(attempt, START_GATE) };
    for (const peer of task.parties) {
      if (sameAddress(peer, this.#o.address)) continue;
      // Only a signal: a peer that cannot take it now learns the attempt from the rounds, or gives up on the old one by itself.
      this.#o.channel.send(start, peer, EMPTY).catch((error: unknown) => logger.debug({ taskId: task.taskId.toString(), to: peer, attempt }, `attempt start not delivered: ${String(error)}`));
    }
    const sent = { bytes: 0 };
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    const run = await runProgram(
      program,
      {
        self: task.parties.findIndex((p) => sameAddress(p, this.#o.address)),
        parties: task.parties.length,
        threshold: task.threshold,
        rng: randomBytes,
        network: this.#roundNetwork(task, attempt, sent),
      },
      inputShares,
    );
    this.#over.add(task.taskId.toString());
    // Every frame the result depends on must be covered by a signed checkpoint before we attest to it.
    await sessions.settled(task.taskId);
    const ms = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    this.#stats.set(task.taskId.toString(), { attempt, ms, rounds: run.rounds, payloadBytesSent: sent.bytes, cpuMs: (cpu.user + cpu.system) / 1000 });
    const result = encodeResult(program, run.opened, run.commitments);
    const resultHash = keccak256(result);
    store.transaction(() => {
      // The chain may have moved on while this ran (finalized, expired, or the task reorged away): keep what it says.
      const now = store.getTask(task.taskId);
      if (now === undefined || now.status !== "computing" || now.programHash !== task.programHash || now.createdBlock !== task.createdBlock) return;
      store.setTaskResult(task.taskId, result, resultHash);
      store.setJobResultAttempt(task.taskId, attempt);
      for (const [name, share] of run.requesterShares) store.putRequesterShare(task.taskId, name, encodeRequesterShare(share));
      store.setTaskStatus(task.taskId, "attesting");
    });
    logger.info({ taskId: task.taskId.toString(), attempt, resultHash, rounds: run.rounds, ms: Math.round(ms), payloadBytesSent: sent.bytes }, "result computed");
  }

  /** The protocol engine's view of the network for one attempt of a task: field vectors in, field vectors out. */
  #roundNetwork(task: StoredTask, attempt: number, sent: { bytes: number }): RoundNetwork {
    const self = task.parties.findIndex((p) => sameAddress(p, this.#o.address));
    return {
      exchange: (label, outgoing, from) => {
        const full: MessageLabel = { taskId: task.taskId, round: label.round, gate: attemptGate(attempt, label.gate) };
        outgoing.forEach((payload, j) => {
          if (j !== self && payload !== undefined) sent.bytes += payload.length;
        });
        return this.#o.channel.exchange(full, task.parties, outgoing, from);
      },
    };
  }

  /**
   * A peer's frame that PeerSessions authenticated (see
   * ../transport/peer-sessions.ts): attestations are stored (they outlive the
   * computation); round frames are checked to be field vectors and handed to
   * the waiting round, unless they belong to an attempt this node has left
   * (refused, so no checkpoint is owed for them) or to a task whose
   * computation is over here (acknowledged and dropped). A frame of a newer
   * attempt moves the task to it.
   */
  acceptFrame(frame: AcceptedFrame): void {
    const { label, from, payload } = frame;
    const { store, mailbox, logger } = this.#o;
    const parsed = parseAttemptGate(label.gate);
    if (parsed === undefined) {
      throw new ConsortError("BAD_REQUEST", `the gate of ${labelKey(label)} from ${from} carries no attempt (a<n>/<gate>)`, { details: { field: "gate" } });
    }
    if (parsed.gate === ATTESTATION_GATE) {
      const outcome = store.putMessage(label.taskId, label.round, label.gate, from, payload);
      if (outcome === "conflict") {
        throw new ConsortError("DUPLICATE_MESSAGE", `party ${from} already sent a different message for ${labelKey(label)}`, {
          details: { label: labelKey(label), from },
        });
      }
      mailbox.deliver(labelKey(label), from, payload);
      return;
    }
    try {
      frVecCheck(payload, "payload");
    } catch (cause) {
      throw new ConsortError("BAD_REQUEST", `the payload of ${labelKey(label)} from ${from} is not a field vector`, { cause });
    }
    const key = label.taskId.toString();
    const current = this.attemptOf(label.taskId);
    if (parsed.attempt < current) {
      throw new ConsortError("STALE_ATTEMPT", `task ${key} has moved on to attempt ${current}; attempt ${parsed.attempt} is over`, {
        details: { taskId: key, attempt: parsed.attempt, current },
      });
    }
    if (parsed.attempt > current) {
      this.#raise(label.taskId, parsed.attempt);
      logger.info({ taskId: key, from, attempt: parsed.attempt, was: current }, "a peer started a newer attempt; joining it");
      // A run in progress stops; so does collecting attestations of a result (it may never reach the quorum
      // without the parties that now compute again).
      if (this.#running.has(key) || this.#over.has(key)) {
        this.#o.channel.abortTask(label.taskId, new ConsortError("PROTOCOL_ABORTED", `task ${key}: ${from} started attempt ${parsed.attempt}`, { retryable: true, details: { taskId: key } }));
      }
      this.#o.onNewAttempt(label.taskId);
    } else if (this.#over.has(key)) {
      return;
    }
    if (parsed.gate === START_GATE) return;
    mailbox.deliver(labelKey(label), from, payload);
  }
}
