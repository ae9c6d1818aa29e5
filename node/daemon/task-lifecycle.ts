import type { TaskStateName } from "../chain/task-state.ts";
import type { LocalTaskStatus } from "../store/node-store.ts";

/**
 * What a node knows of one task when it decides its next step: its own
 * record (the store) and the registry's state read just now. Gathered by the
 * daemon; decided by `nextStep`, which does no I/O, so every decision the
 * node makes can be tested from a table.
 */
export interface TaskView {
  readonly status: LocalTaskStatus;
  /** The registry's computed state, read for this decision. */
  readonly chain: TaskStateName;
  /** The registry holds the program, parties and input commitments this node stored (at the depth it applies events). */
  readonly chainAgrees: boolean;
  /** Every data owner's commitment applied and its share to this party held. */
  readonly inputsComplete: boolean;
  readonly hasResult: boolean;
  /** Valid attestations of this node's result held here, its own included. */
  readonly attestations: number;
  /** t + 1. */
  readonly quorum: number;
  /** The task's current computation attempt, and the attempt whose run gave the result held (if one is). */
  readonly attempt: number;
  readonly resultAttempt: number | undefined;
  /** This party's place in the task's submitter rotation (0 acts first). */
  readonly rank: number;
  /** When this party's turn to send a finalize or expire transaction comes, once decided (epoch ms). */
  readonly actAfter: number | undefined;
  /** A transaction for this task is signed and not yet mined (resume it whatever the turn). */
  readonly pendingTx: "finalize" | "expire" | undefined;
  /** The registry's deadline that applies now (input deadline while awaiting inputs, else result deadline), unix seconds. */
  readonly deadline: bigint;
  /** The chain's clock: the latest block's timestamp, unix seconds (deadlines are by it, not by this node's clock). */
  readonly chainTime: bigint;
  readonly now: number;
}

export type TaskStep =
  /** Nothing to do until an event (a share, a chain event) or `until`. */
  | { readonly kind: "wait"; readonly reason: string; readonly until?: number }
  /** Wait for this party's turn to send `then`'s transaction: store `until` as the turn. */
  | { readonly kind: "await-turn"; readonly then: "finalize" | "expire"; readonly until: number }
  | { readonly kind: "compute" }
  | { readonly kind: "attest" }
  /** Drop a result short of the quorum: peers compute again (they lost theirs), and the quorum needs this party with them. */
  | { readonly kind: "recompute" }
  | { readonly kind: "finalize" }
  | { readonly kind: "expire" }
  /** The task is over here: clean up and drop the job. */
  | { readonly kind: "done" };

/** How often a waiting task is looked at again even without an event (a missed event must not strand it). */
export const RECHECK_MS = 30_000;
export const DEADLINE_RECHECK_MS = 2_000;

/**
 * The task life cycle, one step at a time. The chain is the authority: a
 * task the registry says is finalized or expired is never computed, and a
 * result is only submitted while the registry says Computing. Transactions
 * take turns (rank × takeoverDelayMs), so one party pays and the others
 * stand by; a transaction already signed is always seen through first.
 */
export function nextStep(view: TaskView, takeoverDelayMs: number): TaskStep {
  const { status, chain, now } = view;
  // A wait ends at the next recheck, or just after the deadline by the chain's clock when that comes first: the
  // registry then says Expired, and the nodes record it. Once the deadline is reached but the chain has not moved
  // past it (no new block yet), look again every DEADLINE_RECHECK_MS.
  const remainingMs = Number(view.deadline - view.chainTime) * 1000;
  const until = remainingMs >= 0 ? Math.min(now + RECHECK_MS, now + remainingMs + DEADLINE_RECHECK_MS / 2) : now + DEADLINE_RECHECK_MS;
  if (status === "finalized" || status === "expired") return { kind: "done" };
  if (view.pendingTx !== undefined) return { kind: view.pendingTx };
  if (chain === "Finalized") return { kind: "wait", reason: "finalized on chain; waiting for the TaskFinalized event at the confirmation depth", until: now + RECHECK_MS };
  if (chain === "Expired") return turn(view, "expire", takeoverDelayMs);
  if (chain === "None") return { kind: "wait", reason: "the registry does not hold this task at its head (a reorg?); waiting for the watcher", until: now + RECHECK_MS };
  if (status === "failed") return { kind: "wait", reason: "failed here; waiting for the chain to finalize or expire it", until };
  if (chain === "AwaitingInputs") return { kind: "wait", reason: "data owners have not all committed", until };
  // Computing.
  if (!view.chainAgrees) return { kind: "wait", reason: "the registry and this node's store disagree on the task; waiting for the watcher", until };
  if (!view.hasResult) {
    if (!view.inputsComplete) return { kind: "wait", reason: "waiting for data owners' shares", until };
    if (status !== "awaiting-inputs" && status !== "computing") return { kind: "wait", reason: `${status} without a result`, until };
    return { kind: "compute" };
  }
  if (view.attestations < view.quorum) {
    return view.resultAttempt !== undefined && view.attempt > view.resultAttempt ? { kind: "recompute" } : { kind: "attest" };
  }
  return turn(view, "finalize", takeoverDelayMs);
}

function turn(view: TaskView, then: "finalize" | "expire", takeoverDelayMs: number): TaskStep {
  if (view.actAfter === undefined) return { kind: "await-turn", then, until: view.now + view.rank * takeoverDelayMs };
  if (view.now < view.actAfter) return { kind: "await-turn", then, until: view.actAfter };
  return { kind: then };
}

/** The submitter rotation: parties take turns in an order rotated by task id, so no single party always pays gas. */
export function submitterRank(selfIndex: number, parties: number, taskId: bigint): number {
  return (selfIndex - Number(taskId % BigInt(parties)) + parties) % parties;
}

/** Backoff after `failures` consecutive failed runs: 1 s, 2 s, 4 s, … at most 30 s. */
export function retryDelayMs(failures: number): number {
  return Math.min(30_000, 1_000 * 2 ** Math.max(0, Math.min(failures, 15)));
}
