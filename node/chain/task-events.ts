import { getAddress, getBytes, type Log, type Result } from "ethers";
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

export interface PartyUpdatedEvent extends EventPosition {
  readonly party: string;
}

/** Every registry event a node acts on, decoded once, by name. */
export type RegistryEvent =
  | ({ readonly name: "TaskCreated" } & TaskCreatedEvent)
  | ({ readonly name: "InputCommitted" } & InputCommittedEvent)
  | ({ readonly name: "TaskFinalized" } & TaskFinalizedEvent)
  | ({ readonly name: "TaskExpired" } & TaskExpiredEvent)
  | ({ readonly name: "PartyUpdated" } & PartyUpdatedEvent);

/**
 * Decodes a parsed registry log (its event name and arguments) into a typed
 * event with checksummed addresses; undefined for events a node does not act
 * on. The one decoder behind the node's chain follower and the audit's look-ups.
 */
export function decodeRegistryEvent(name: string, a: Result, at: EventPosition): RegistryEvent | undefined {
  switch (name) {
    case "TaskCreated":
      return {
        name,
        ...at,
        taskId: a.getValue("taskId") as bigint,
        requester: getAddress(a.getValue("requester") as string),
        programHash: (a.getValue("programHash") as string).toLowerCase(),
        parties: (a.getValue("parties") as string[]).map((p) => getAddress(p)),
        dataOwners: (a.getValue("dataOwners") as string[]).map((o) => getAddress(o)),
        threshold: Number(a.getValue("threshold")),
        inputDeadline: a.getValue("inputDeadline") as bigint,
        resultDeadline: a.getValue("resultDeadline") as bigint,
        program: getBytes(a.getValue("program") as string),
      };
    case "InputCommitted":
      return {
        name,
        ...at,
        taskId: a.getValue("taskId") as bigint,
        dataOwner: getAddress(a.getValue("dataOwner") as string),
        commitment: (a.getValue("commitment") as string).toLowerCase(),
        inputsCommitted: Number(a.getValue("inputsCommitted")),
      };
    case "TaskFinalized":
      return {
        name,
        ...at,
        taskId: a.getValue("taskId") as bigint,
        resultHash: a.getValue("resultHash") as string,
        result: getBytes(a.getValue("result") as string),
        signers: (a.getValue("signers") as string[]).map((p) => getAddress(p)),
        signatures: [...(a.getValue("signatures") as string[])],
        submitter: getAddress(a.getValue("submitter") as string),
      };
    case "TaskExpired":
      return { name, ...at, taskId: a.getValue("taskId") as bigint, inputsCommitted: Number(a.getValue("inputsCommitted")), by: getAddress(a.getValue("by") as string) };
    case "PartyUpdated":
      return { name, ...at, party: getAddress(a.getValue("party") as string) };
    default:
      return undefined;
  }
}

function decodeLog<N extends RegistryEvent["name"]>(log: Log, name: N): Extract<RegistryEvent, { name: N }> {
  const event = decodeRegistryEvent(name, parse(log), position(log));
  if (event?.name !== name) throw new ConsortError("INTERNAL", `registry log in ${log.transactionHash} is not a ${name} event`);
  return event as Extract<RegistryEvent, { name: N }>;
}

function withoutName<T extends { name: string }>({ name: _name, ...rest }: T): Omit<T, "name"> {
  return rest;
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
  return withoutName(decodeLog(log, "TaskCreated"));
}

export async function findInputsCommitted(client: RegistryClient, taskId: bigint, fromBlock = 0): Promise<InputCommittedEvent[]> {
  return (await taskLogs(client, "InputCommitted", taskId, fromBlock)).map((log) => withoutName(decodeLog(log, "InputCommitted")));
}

export async function findTaskFinalized(client: RegistryClient, taskId: bigint, fromBlock = 0): Promise<TaskFinalizedEvent | undefined> {
  const log = (await taskLogs(client, "TaskFinalized", taskId, fromBlock))[0];
  if (log === undefined) return undefined;
  return withoutName(decodeLog(log, "TaskFinalized"));
}

export async function findTaskExpired(client: RegistryClient, taskId: bigint, fromBlock = 0): Promise<TaskExpiredEvent | undefined> {
  const log = (await taskLogs(client, "TaskExpired", taskId, fromBlock))[0];
  if (log === undefined) return undefined;
  return withoutName(decodeLog(log, "TaskExpired"));
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
