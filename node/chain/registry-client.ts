import {
  Contract,
  getAddress,
  hexlify,
  type ContractRunner,
  type ContractTransactionResponse,
  type Provider,
  type TransactionReceipt,
} from "ethers";
import { ConsortError, isConsortError } from "../errors.ts";
import { toChainError } from "./chain-errors.ts";
import { loadRegistryArtifact } from "./registry-artifact.ts";
import { taskStateName, type TaskStateName } from "./task-state.ts";

export interface PartyRecord {
  readonly address: string;
  /** 0x-hex of the 33-byte compressed secp256k1 encryption key. */
  readonly encryptionKey: string;
  readonly endpoint: string;
  readonly registeredAt: bigint;
  readonly updatedAt: bigint;
}

export interface TaskRecord {
  readonly taskId: bigint;
  readonly programHash: string;
  readonly requester: string;
  readonly threshold: number;
  readonly createdAtBlock: bigint;
  readonly inputDeadline: bigint;
  readonly resultDeadline: bigint;
  readonly inputsCommitted: number;
  readonly finalizedAtBlock: bigint;
  readonly expiredAtBlock: bigint;
  readonly resultHash: string;
  readonly parties: readonly string[];
  readonly dataOwners: readonly string[];
}

export interface CreateTaskParams {
  readonly program: Uint8Array;
  readonly parties: readonly string[];
  readonly dataOwners: readonly string[];
  readonly threshold: number;
  /** Unix seconds. */
  readonly inputDeadline: bigint;
  /** Unix seconds. */
  readonly resultDeadline: bigint;
}

export interface TxOptions {
  /** Blocks to wait for after the receipt (1 = mined). */
  confirmations?: number;
}

/**
 * Typed bindings to a deployed ConsortRegistry. Reads go through the runner's
 * provider; writes need a Signer runner. Every failure is a ConsortError:
 * reverts name the decoded custom error, an RPC that is down is retryable.
 */
export class RegistryClient {
  readonly address: string;
  readonly contract: Contract;
  readonly provider: Provider;

  private constructor(address: string, contract: Contract, provider: Provider) {
    this.address = address;
    this.contract = contract;
    this.provider = provider;
  }

  /** Binds to the registry at `address`, checking that code is deployed there. */
  static async connect(runner: ContractRunner, address: string): Promise<RegistryClient> {
    const provider = runner.provider;
    if (provider === null || provider === undefined) {
      throw new ConsortError("CONFIG_INVALID", "the registry client needs a runner connected to a provider");
    }
    let checksummed: string;
    try {
      checksummed = getAddress(address);
    } catch (cause) {
      throw new ConsortError("CONFIG_INVALID", `registry address ${address} is not an address`, { cause });
    }
    const { abi, iface } = loadRegistryArtifact();
    let code: string;
    try {
      code = await provider.getCode(checksummed);
    } catch (error) {
      throw toChainError(error, iface, "eth_getCode");
    }
    if (code === "0x") {
      throw new ConsortError("CONTRACT_NOT_FOUND", `no contract is deployed at ${checksummed} on this chain`, {
        details: { address: checksummed },
      });
    }
    return new RegistryClient(checksummed, new Contract(checksummed, abi, runner), provider);
  }

  /** The same registry, with another runner (e.g. a different signer). */
  connectRunner(runner: ContractRunner): RegistryClient {
    const provider = runner.provider ?? this.provider;
    return new RegistryClient(this.address, new Contract(this.address, loadRegistryArtifact().abi, runner), provider);
  }

  async chainId(): Promise<bigint> {
    try {
      return (await this.provider.getNetwork()).chainId;
    } catch (error) {
      throw toChainError(error, loadRegistryArtifact().iface, "eth_chainId");
    }
  }

  private async read<T>(action: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      const e = toChainError(error, loadRegistryArtifact().iface, action);
      // A view that reverts for a missing task is a lookup that found nothing, not a failed transaction.
      if (e.code === "TX_REVERTED" && e.details.error === "ConsortUnknownTask") {
        const taskId = (e.details.args as Record<string, string>).taskId;
        throw new ConsortError("UNKNOWN_TASK", `registry ${this.address} has no task ${taskId}`, { cause: e, details: { ...e.details, taskId } });
      }
      throw e;
    }
  }

  private method(name: string): (...args: unknown[]) => Promise<unknown> {
    const fn = this.contract.getFunction(name);
    return (...args: unknown[]) => fn(...args) as Promise<unknown>;
  }

  async isRegistered(account: string): Promise<boolean> {
    return this.read("isRegistered", async () => (await this.method("isRegistered")(account)) as boolean);
  }

  /** The party, or undefined when `account` is not registered. */
  async findParty(account: string): Promise<PartyRecord | undefined> {
    if (!(await this.isRegistered(account))) return undefined;
    return this.getParty(account);
  }

  async getParty(account: string): Promise<PartyRecord> {
    return this.read(`getParty(${account})`, async () => {
      const p = (await this.method("getParty")(account)) as {
        encryptionKey: string;
        endpoint: string;
        registeredAt: bigint;
        updatedAt: bigint;
      };
      return {
        address: getAddress(account),
        encryptionKey: hexlify(p.encryptionKey),
        endpoint: p.endpoint,
        registeredAt: p.registeredAt,
        updatedAt: p.updatedAt,
      };
    });
  }

  async getTask(taskId: bigint): Promise<TaskRecord> {
    return this.read(`getTask(${taskId})`, async () => {
      const t = (await this.method("getTask")(taskId)) as Record<string, unknown> & {
        parties: string[];
        dataOwners: string[];
      };
      return {
        taskId,
        programHash: t.programHash as string,
        requester: t.requester as string,
        threshold: Number(t.threshold),
        createdAtBlock: t.createdAtBlock as bigint,
        inputDeadline: t.inputDeadline as bigint,
        resultDeadline: t.resultDeadline as bigint,
        inputsCommitted: Number(t.inputsCommitted),
        finalizedAtBlock: t.finalizedAtBlock as bigint,
        expiredAtBlock: t.expiredAtBlock as bigint,
        resultHash: t.resultHash as string,
        parties: [...t.parties],
        dataOwners: [...t.dataOwners],
      };
    });
  }

  async taskState(taskId: bigint): Promise<TaskStateName> {
    return this.read(`taskState(${taskId})`, async () => taskStateName((await this.method("taskState")(taskId)) as bigint));
  }

  async taskCount(): Promise<bigint> {
    return this.read("taskCount", async () => (await this.method("taskCount")()) as bigint);
  }

  async inputCommitments(taskId: bigint): Promise<string[]> {
    return this.read(`inputCommitments(${taskId})`, async () => [
      ...((await this.method("inputCommitments")(taskId)) as string[]),
    ]);
  }

  async attestationDigest(taskId: bigint, resultHash: string): Promise<string> {
    return this.read(
      `attestationDigest(${taskId})`,
      async () => (await this.method("attestationDigest")(taskId, resultHash)) as string,
    );
  }

  // ---------------------------------------------------------------- writes

  private async send(action: string, args: unknown[], options: TxOptions): Promise<TransactionReceipt> {
    const { iface } = loadRegistryArtifact();
    let response: ContractTransactionResponse;
    try {
      response = (await this.method(action)(...args)) as ContractTransactionResponse;
    } catch (error) {
      throw toChainError(error, iface, action);
    }
    let receipt: TransactionReceipt | null;
    try {
      receipt = await response.wait(options.confirmations ?? 1);
    } catch (error) {
      throw toChainError(error, iface, action);
    }
    if (receipt === null || receipt.status !== 1) {
      throw new ConsortError("TX_REVERTED", `${action} transaction ${response.hash} reverted`, {
        details: { txHash: response.hash },
      });
    }
    return receipt;
  }

  async registerParty(encryptionKey: Uint8Array | string, endpoint: string, options: TxOptions = {}): Promise<TransactionReceipt> {
    return this.send("registerParty", [encryptionKey, endpoint], options);
  }

  async updateParty(encryptionKey: Uint8Array | string, endpoint: string, options: TxOptions = {}): Promise<TransactionReceipt> {
    return this.send("updateParty", [encryptionKey, endpoint], options);
  }

  /** Creates a task and returns its id (read from the TaskCreated event of the receipt). */
  async createTask(params: CreateTaskParams, options: TxOptions = {}): Promise<{ taskId: bigint; receipt: TransactionReceipt }> {
    const receipt = await this.send(
      "createTask",
      [
        {
          program: params.program,
          parties: [...params.parties],
          dataOwners: [...params.dataOwners],
          threshold: params.threshold,
          inputDeadline: params.inputDeadline,
          resultDeadline: params.resultDeadline,
        },
      ],
      options,
    );
    const { iface } = loadRegistryArtifact();
    for (const log of receipt.logs) {
      if (getAddress(log.address) !== this.address) continue;
      const parsed = iface.parseLog(log);
      if (parsed?.name === "TaskCreated") return { taskId: parsed.args.getValue("taskId") as bigint, receipt };
    }
    throw new ConsortError("INTERNAL", `createTask transaction ${receipt.hash} emitted no TaskCreated event`);
  }

  async commitInput(taskId: bigint, commitment: string, options: TxOptions = {}): Promise<TransactionReceipt> {
    return this.send("commitInput", [taskId, commitment], options);
  }

  async finalizeTask(taskId: bigint, result: Uint8Array, signatures: readonly string[], options: TxOptions = {}): Promise<TransactionReceipt> {
    return this.send("finalizeTask", [taskId, result, [...signatures]], options);
  }

  /**
   * Records that a task missed its deadline (anyone may). The registry
   * decides; its refusal becomes UNKNOWN_TASK, TASK_NOT_EXPIRED (naming the
   * deadline that applies and the chain's time), TASK_FINALIZED or
   * TASK_ALREADY_EXPIRED (someone else recorded it first, which a caller that
   * only wants the task ended may treat as done).
   */
  async expireTask(taskId: bigint, options: TxOptions = {}): Promise<TransactionReceipt> {
    try {
      return await this.send("expireTask", [taskId], options);
    } catch (error) {
      if (!isConsortError(error, "TX_REVERTED")) throw error;
      if (error.details.error === "ConsortUnknownTask") {
        throw new ConsortError("UNKNOWN_TASK", `registry ${this.address} has no task ${taskId}`, {
          cause: error,
          details: { taskId: taskId.toString() },
        });
      }
      if (error.details.error === "ConsortTaskNotExpirable") {
        const state = (error.details.args as Record<string, string> | undefined)?.state;
        throw await this.notExpirable(taskId, state === undefined ? await this.taskState(taskId) : taskStateName(BigInt(state)), error);
      }
      throw error;
    }
  }

  /** Why `taskId` (in `state`, as the registry saw it) cannot be expired now, with what the chain says about when. */
  private async notExpirable(taskId: bigint, state: TaskStateName, cause: ConsortError): Promise<ConsortError> {
    const task = await this.getTask(taskId);
    if (state === "Finalized" || task.finalizedAtBlock !== 0n) {
      return new ConsortError("TASK_FINALIZED", `task ${taskId} was finalized in block ${task.finalizedAtBlock}; a task with a result cannot expire`, {
        cause,
        details: { taskId: taskId.toString(), state: "Finalized", finalizedAtBlock: task.finalizedAtBlock.toString() },
      });
    }
    if (state === "Expired" || task.expiredAtBlock !== 0n) {
      return new ConsortError("TASK_ALREADY_EXPIRED", `task ${taskId}'s expiry is already recorded, in block ${task.expiredAtBlock}`, {
        cause,
        details: { taskId: taskId.toString(), state: "Expired", expiredAtBlock: task.expiredAtBlock.toString() },
      });
    }
    const chainTime = await this.read("eth_getBlockByNumber(latest)", async () => BigInt((await this.provider.getBlock("latest"))?.timestamp ?? 0));
    const expiry = taskExpiry(task);
    const wait = expiry.expirableFrom > chainTime ? expiry.expirableFrom - chainTime : 0n;
    const inputs = `${task.inputsCommitted} of ${task.dataOwners.length} inputs committed`;
    const otherwise =
      expiry.deadline === "input"
        ? `; if every input is committed before then, the result deadline ${chainTimeText(task.resultDeadline)} applies instead`
        : "";
    return new ConsortError(
      "TASK_NOT_EXPIRED",
      `task ${taskId} is ${state} (${inputs}) and can be expired once the chain's time passes its ${expiry.deadline} deadline ` +
        `${chainTimeText(expiry.deadline === "input" ? task.inputDeadline : task.resultDeadline)}, from ${chainTimeText(expiry.expirableFrom)} ` +
        `(the chain's time is ${chainTimeText(chainTime)}, ${wait} s before that)${otherwise}`,
      {
        cause,
        details: {
          taskId: taskId.toString(),
          state,
          deadline: expiry.deadline,
          expirableFrom: expiry.expirableFrom.toString(),
          chainTime: chainTime.toString(),
        },
      },
    );
  }
}

/**
 * When a task that is still open can first be expired, by the chain's clock:
 * the input deadline applies while inputs are missing, the result deadline
 * once all are committed. Deadlines are inclusive on chain, so the task is
 * expirable from the second after.
 */
export function taskExpiry(task: Pick<TaskRecord, "inputsCommitted" | "dataOwners" | "inputDeadline" | "resultDeadline">): {
  deadline: "input" | "result";
  expirableFrom: bigint;
} {
  return task.inputsCommitted < task.dataOwners.length
    ? { deadline: "input", expirableFrom: task.inputDeadline + 1n }
    : { deadline: "result", expirableFrom: task.resultDeadline + 1n };
}

/** A chain time (unix seconds) as ISO 8601, or as plain seconds when no Date can hold it (a uint64 deadline may not fit). */
export function chainTimeText(unixSeconds: bigint): string {
  const ms = Number(unixSeconds) * 1000;
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${unixSeconds} (unix seconds)`;
}
