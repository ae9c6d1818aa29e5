import { getBytes, type Log } from "ethers";
import { ConsortError } from "../errors.ts";
import { toChainError } from "./chain-errors.ts";
import { loadRegistryArtifact } from "./registry-artifact.ts";
import type { RegistryClient } from "./registry-client.ts";

/** Where a registry event sits on chain. */
export interface EventPosition {
  readonly blockNumber: number;
  readonly blockHash: string;
  readonly transactionHash: string;
  readonly logIndex: number;
}

export interface TaskCreatedEvent extends EventPosition {
  readonly taskId: bigint;
  readonly requester: string;
  readonly programHash: string;
  readonly parties: readonly string[];
  readonly dataOwners: readonly string[];
  readonly threshold: number;
  readonly inputDeadline: bigint;
  readonly resultDeadline: bigint;
  readonly program: Uint8Array;
}

export interface InputCommittedEvent extends EventPosition {
  readonly taskId: bigint;
  readonly dataOwner: string;
  readonly commitment: string;
  readonly inputsCommitted: number;
}

export interface TaskFinalizedEvent extends EventPosition {
  readonly taskId: bigint;
  readonly resultHash: string;
  readonly result: Uint8Array;
  readonly signers: readonly string[];
  readonly signatures: readonly string[];
  readonly submitter: string;
}

export interface TaskExpiredEvent extends EventPosition {
  readonly taskId: bigint;
  readonly inputsCommitted: number;
  readonly by: string;
}

function position(log: Log): EventPosition {
  return { blockNumber: log.blockNumber, blockHash: log.blockHash, transactionHash: log.transactionHash, logIndex: log.index };
}

async function taskLogs(client: RegistryClient, eventName: string, taskId: bigint, fromBlock: number): Promise<Log[]> {
  const { iface } = loadRegistryArtifact();
  const fragment = iface.getEvent(eventName);
  if (fragment === null) throw new ConsortError("INTERNAL", `the registry ABI has no ${eventName} event`);
  const topics = iface.encodeFilterTopics(fragment, [taskId]);
  try {
    return await client.provider.getLogs({ address: client.address, topics, fromBlock, toBlock: "latest" });
  } catch (error) {
    throw toChainError(error, iface, `eth_getLogs(${eventName}, task ${taskId})`);
  }
}

function parse(log: Log) {
  const parsed = loadRegistryArtifact().iface.parseLog(log);
  if (parsed === null) throw new ConsortError("INTERNAL", `unparseable registry log in ${log.transactionHash}`);
  return parsed.args;
}

/** The TaskCreated event of `taskId` (it carries the program bytes). */
export async function findTaskCreated(client: RegistryClient, taskId: bigint, fromBlock = 0): Promise<TaskCreatedEvent> {
  const logs = await taskLogs(client, "TaskCreated", taskId, fromBlock);
  const log = logs[0];
  if (log === undefined) {
    throw new ConsortError("UNKNOWN_TASK", `task ${taskId} has no TaskCreated event on registry ${client.address}`, {
      details: { taskId: taskId.toString() },
    });
  }
  const a = parse(log);
  return {
    ...position(log),
    taskId,
    requester: a.getValue("requester") as string,
    programHash: a.getValue("programHash") as string,
    parties: [...(a.getValue("parties") as string[])],
    dataOwners: [...(a.getValue("dataOwners") as string[])],
    threshold: Number(a.getValue("threshold")),
    inputDeadline: a.getValue("inputDeadline") as bigint,
    resultDeadline: a.getValue("resultDeadline") as bigint,
    program: getBytes(a.getValue("program") as string),
  };
}

export async function findInputsCommitted(client: RegistryClient, taskId: bigint, fromBlock = 0): Promise<InputCommittedEvent[]> {
  return (await taskLogs(client, "InputCommitted", taskId, fromBlock)).map((log) => {
    const a = parse(log);
    return {
      ...position(log),
      taskId,
      dataOwner: a.getValue("dataOwner") as string,
      commitment: a.getValue("commitment") as string,
      inputsCommitted: Number(a.getValue("inputsCommitted")),
    };
  });
}

export async function findTaskFinalized(client: RegistryClient, taskId: bigint, fromBlock = 0): Promise<TaskFinalizedEvent | undefined> {
  const log = (await taskLogs(client, "TaskFinalized", taskId, fromBlock))[0];
  if (log === undefined) return undefined;
  const a = parse(log);
  return {
    ...position(log),
    taskId,
    resultHash: a.getValue("resultHash") as string,
    result: getBytes(a.getValue("result") as string),
    signers: [...(a.getValue("signers") as string[])],
    signatures: [...(a.getValue("signatures") as string[])],
    submitter: a.getValue("submitter") as string,
  };
}

export async function findTaskExpired(client: RegistryClient, taskId: bigint, fromBlock = 0): Promise<TaskExpiredEvent | undefined> {
  const log = (await taskLogs(client, "TaskExpired", taskId, fromBlock))[0];
  if (log === undefined) return undefined;
  const a = parse(log);
  return { ...position(log), taskId, inputsCommitted: Number(a.getValue("inputsCommitted")), by: a.getValue("by") as string };
}

/**
 * The program bytes whose keccak256 is `programHash`, from the first task that
 * committed to it (TaskCreated indexes the program hash), or undefined.
 */
export async function findProgramByHash(client: RegistryClient, programHash: string, fromBlock = 0): Promise<Uint8Array | undefined> {
  const { iface } = loadRegistryArtifact();
  const fragment = iface.getEvent("TaskCreated");
  if (fragment === null) throw new ConsortError("INTERNAL", "the registry ABI has no TaskCreated event");
  const topics = iface.encodeFilterTopics(fragment, [null, null, programHash]);
  let logs: Log[];
  try {
    logs = await client.provider.getLogs({ address: client.address, topics, fromBlock, toBlock: "latest" });
  } catch (error) {
    throw toChainError(error, iface, `eth_getLogs(TaskCreated, program ${programHash})`);
  }
  const log = logs[0];
  return log === undefined ? undefined : getBytes(parse(log).getValue("program") as string);
}
