import {
  Contract,
  getAddress,
  hexlify,
  type ContractRunner,
  type ContractTransactionResponse,
  type Provider,
  type TransactionReceipt,
} from "ethers";
import { ConsortError } from "../errors.ts";
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
      throw toChainError(error, loadRegistryArtifact().iface, action);
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

  async expireTask(taskId: bigint, options: TxOptions = {}): Promise<TransactionReceipt> {
    return this.send("expireTask", [taskId], options);
  }
}
