import { ConsortError } from "../errors.ts";
import type { RegistryClient } from "./registry-client.ts";

/** What fixes a task: what it computes, on whose inputs, by whom, and the block that created it. */
export interface TaskIdentity {
  readonly taskId: bigint;
  readonly programHash: string;
  readonly parties: readonly string[];
  readonly dataOwners: readonly string[];
  readonly threshold: number;
  readonly createdBlock: number;
}

function sameAddresses(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x.toLowerCase() === b[i]!.toLowerCase());
}

/**
 * Checks that the registry's task under this id (at the RPC's head) is the
 * task the caller recorded. After a reorg a task id can name another task
 * (the removed one's id is handed out again), so a node whose store has not
 * caught up must not take inputs for, or compute, the task it remembers.
 * Throws CHAIN_NOT_SYNCED (retryable) on any difference.
 */
export async function assertTaskOnChain(registry: RegistryClient, stored: TaskIdentity): Promise<void> {
  const taskId = stored.taskId.toString();
  let onChain;
  try {
    onChain = await registry.getTask(stored.taskId);
  } catch (error) {
    if (error instanceof ConsortError && error.retryable) throw error;
    throw new ConsortError("CHAIN_NOT_SYNCED", `task ${taskId} is recorded here but the chain has no such task (reorganised away)`, {
      retryable: true,
      cause: error,
      details: { taskId },
    });
  }
  const differs: string[] = [];
  if (onChain.programHash.toLowerCase() !== stored.programHash.toLowerCase()) differs.push("programHash");
  if (!sameAddresses(onChain.parties, stored.parties)) differs.push("parties");
  if (!sameAddresses(onChain.dataOwners, stored.dataOwners)) differs.push("dataOwners");
  if (onChain.threshold !== stored.threshold) differs.push("threshold");
  if (Number(onChain.createdAtBlock) !== stored.createdBlock) differs.push("createdBlock");
  if (differs.length > 0) {
    throw new ConsortError("CHAIN_NOT_SYNCED", `task ${taskId} on chain is not the task recorded here (${differs.join(", ")} differ): a reorg not yet processed`, {
      retryable: true,
      details: { taskId, differs },
    });
  }
}
