import { join } from "node:path";
import { getBytes, hexlify, type JsonRpcProvider, type Wallet } from "ethers";
import { loadDeployment } from "../chain/deployments.ts";
import { EventWatcher, type ChainCursor } from "../chain/event-watcher.ts";
import { loadRegistryArtifact } from "../chain/registry-artifact.ts";
import { RegistryClient } from "../chain/registry-client.ts";
import { chainNow, connectProvider } from "../chain/rpc-provider.ts";
import { assertTaskOnChain } from "../chain/task-identity.ts";
import type { TaskStateName } from "../chain/task-state.ts";
import { TxSubmitter } from "../chain/tx-submitter.ts";
import { ConsortError, isConsortError, toConsortError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { inputCommitment } from "../math/commitment.ts";
import { NodeStore, type ReorgRollback, type StoredTask } from "../store/node-store.ts";
import { createNodeApi, startNodeApi, type RunningNodeApi } from "../transport/http-server.ts";
import { PeerChannel } from "../transport/peer-channel.ts";
import { maxFrameBytes } from "../transport/peer-frame.ts";
import { PeerMailbox } from "../transport/peer-mailbox.ts";
import { PeerSessions } from "../transport/peer-sessions.ts";
import { ChainFollower } from "./chain-follower.ts";
import { ATTESTATION_GATE, ComputeRunner, parseAttemptGate } from "./compute-runner.ts";
import type { NodeConfig, NodeSecrets } from "./node-config.ts";
import { loadOrCreateEncryptionKey } from "./node-keys.ts";
import { NodeQueries } from "./node-queries.ts";
import { PartyDirectory } from "./party-directory.ts";
import { ResultAttestor } from "./result-attestor.ts";
import { ShareIntake } from "./share-intake.ts";
import { TaskDriver, type StepOutcome } from "./task-driver.ts";
import { RECHECK_MS, nextStep, submitterRank, type TaskView } from "./task-lifecycle.ts";
import { sameAddress } from "../transport/binary-codec.ts";

export interface ConsortNodeOptions {
  config: NodeConfig;
  secrets: NodeSecrets;
  logger: Logger;
}

/**
 * Keeps the daemon process up through promise rejections nobody awaited. When
 * a computation stops midway (a peer's newer attempt, a timeout, the task
 * finalized elsewhere), the engine's other rounds in flight reject with the
 * same error after the run is already over; its job has handled the failure,
 * so they are logged (with their task) and the process goes on. Call once, in
 * the process that runs the node.
 */
export function survivePendingRejections(logger: Logger): void {
  process.on("unhandledRejection", (reason) => {
    const e = toConsortError(reason);
    const fields = { code: e.code, ...(typeof e.details.taskId === "string" ? { taskId: e.details.taskId } : {}) };
    // A frame a peer refused because it moved on to a newer attempt is final for that frame, not an error:
    // the attempt's other rounds in flight end that way whenever a restarted party rejoins.
    const abandoned = e.code === "STALE_ATTEMPT" || e.details.remoteCode === "STALE_ATTEMPT";
    if (e.retryable || abandoned) logger.debug(fields, `a stopped computation's pending round: ${e.message}`);
    else logger.error(fields, `unhandled rejection: ${e.message}`);
  });
}


const finalizeKey = (taskId: bigint) => `finalize/${taskId}`;
const expireKey = (taskId: bigint) => `expire/${taskId}`;

/**
 * A Consort compute party: the composition root over a durable task life
 * cycle. The chain follower writes confirmed registry events to the store;
 * the share intake and the peer frames feed it too; every change wakes the
 * task's job, and the task driver runs one step at a time, decided by
 * `nextStep` (./task-lifecycle.ts) from the store and the registry's state:
 * wait, compute, attest, finalize, expire. Jobs, attempts and signed
 * transactions live in the store, so a node killed at any point resumes
 * where it was: an interrupted computation runs again under a new attempt,
 * a signed transaction is sent again rather than signed twice.
 */
export class ConsortNode {
  readonly config: NodeConfig;
  readonly address: string;
  readonly chainId: bigint;
  readonly registry: RegistryClient;
  readonly store: NodeStore;
  private readonly provider: JsonRpcProvider;
  private readonly logger: Logger;
  private readonly encryptionKey: { privateKey: Uint8Array; publicKey: Uint8Array };
  private readonly mailbox = new PeerMailbox();
  private readonly directory: PartyDirectory;
  private readonly sessions: PeerSessions;
  private readonly channel: PeerChannel;
  private readonly watcher: EventWatcher<ReorgRollback>;
  private readonly driver: TaskDriver;
  private readonly runner: ComputeRunner;
  private readonly attestor: ResultAttestor;
  private readonly intake: ShareIntake;
  private readonly queries: NodeQueries;
  private readonly submitter: TxSubmitter;
  private api: RunningNodeApi | undefined;
  private stopping = false;

  private constructor(args: {
    config: NodeConfig;
    wallet: Wallet;
    provider: JsonRpcProvider;
    chainId: bigint;
    registry: RegistryClient;
    startBlock: number;
    store: NodeStore;
    logger: Logger;
    encryptionKey: { privateKey: Uint8Array; publicKey: Uint8Array };
  }) {
    const { config, wallet, store, logger, registry } = args;
    this.config = config;
    this.address = wallet.address;
    this.provider = args.provider;
    this.chainId = args.chainId;
    this.registry = registry;
    this.store = store;
    this.logger = logger;
    this.encryptionKey = args.encryptionKey;
    this.directory = new PartyDirectory(registry);
    this.sessions = new PeerSessions({
      chainId: this.chainId,
      registry: registry.address,
      signingKey: wallet,
      encryptionPrivateKey: this.encryptionKey.privateKey,
      lookupParty: (address) => this.directory.get(address),
      taskParties: (taskId) => store.getTask(taskId)?.parties,
      deliver: (frame) => this.runner.acceptFrame(frame),
      timeoutMs: config.protocolTimeoutMs,
      onRetry: ({ to, label, attempt, error }) => logger.debug({ to, label, attempt, code: error.code }, "peer not ready; retrying"),
      onError: (error, info) => logger.warn({ ...info, code: error.code }, error.message),
    });
    this.channel = new PeerChannel({
      sessions: this.sessions,
      // Only attestations are stored; round messages are asked of the mailbox alone.
      store: { getMessage: (taskId, round, gate, from) => (parseAttemptGate(gate)?.gate === ATTESTATION_GATE ? store.getMessage(taskId, round, gate, from) : undefined) },
      mailbox: this.mailbox,
      timeoutMs: config.protocolTimeoutMs,
    });
    this.driver = new TaskDriver({
      jobs: store,
      run: (taskId) => this.runTask(taskId),
      onFailure: (taskId, error, failures) => this.taskFailed(taskId, error, failures),
    });
    const wake = (taskId: bigint) => this.driver.wake(taskId);
    this.runner = new ComputeRunner({ address: this.address, store, channel: this.channel, sessions: this.sessions, mailbox: this.mailbox, logger, onNewAttempt: wake });
    this.attestor = new ResultAttestor({
      wallet,
      chainId: this.chainId,
      registry: registry.address,
      store,
      channel: this.channel,
      logger,
      inputCommitments: (task) => this.inputCommitmentsInOrder(task),
    });
    this.intake = new ShareIntake({
      address: this.address,
      chainId: this.chainId,
      registry,
      store,
      encryptionPrivateKey: this.encryptionKey.privateKey,
      logger,
      onShare: wake,
    });
    this.queries = new NodeQueries({
      address: this.address,
      chainId: this.chainId,
      registry: registry.address,
      encryptionPublicKey: this.encryptionKey.publicKey,
      store,
      logger,
      computeStats: (taskId) => this.runner.stats(taskId),
    });
    this.submitter = new TxSubmitter({
      wallet,
      to: registry.address,
      iface: loadRegistryArtifact().iface,
      journal: store,
      receiptTimeoutMs: Math.max(config.protocolTimeoutMs, 30_000),
      onBroadcast: (tx) => logger.info({ taskId: tx.key.slice(tx.key.indexOf("/") + 1), intent: tx.key, tx: tx.hash, nonce: tx.nonce }, "transaction broadcast"),
    });
    const follower = new ChainFollower({
      address: this.address,
      store,
      logger,
      onPartyUpdated: (party) => this.directory.invalidate(party),
      onTaskOver: (taskId, how) => this.runner.markOver(taskId, `${how} on chain`),
      onTasksTouched: (taskIds) => taskIds.forEach(wake),
    });
    this.watcher = new EventWatcher({
      provider: this.provider,
      address: registry.address,
      iface: loadRegistryArtifact().iface,
      startBlock: args.startBlock,
      confirmations: config.confirmations,
      pollIntervalMs: config.pollIntervalMs,
      store,
      apply: (events, cursor) => follower.apply(events, cursor),
      onError: (error) => logger.warn({ code: error.code, retryable: error.retryable }, `chain watcher: ${error.message}`),
      onReorg: (from, to, rollback) => this.afterReorg(from, to, rollback),
    });
  }

  /** Connects to the chain, opens the store, serves the API and starts watching. */
  static async start({ config, secrets, logger }: ConsortNodeOptions): Promise<ConsortNode> {
    const provider = await connectProvider(config.rpcUrl, { pollingIntervalMs: config.pollIntervalMs });
    const chainId = (await provider.getNetwork()).chainId;
    let registryAddress = config.registry;
    let startBlock = 0;
    try {
      const deployment = loadDeployment(chainId, config.deploymentsDir);
      if (registryAddress === undefined || sameAddress(deployment.registry, registryAddress)) {
        registryAddress = deployment.registry;
        startBlock = deployment.blockNumber;
      }
    } catch (error) {
      if (!isConsortError(error, "DEPLOYMENT_NOT_FOUND") || registryAddress === undefined) throw error;
    }
    const wallet = secrets.wallet.connect(provider);
    const registry = await RegistryClient.connect(wallet, registryAddress);
    const encryptionKey = loadOrCreateEncryptionKey(config.dataDir);
    const party = await registry.findParty(wallet.address);
    if (party === undefined) {
      logger.warn({ party: wallet.address }, "this key is not a registered party yet: register it (consort party register) to be chosen for tasks");
    } else if (party.encryptionKey.toLowerCase() !== hexlify(encryptionKey.publicKey).toLowerCase()) {
      throw new ConsortError(
        "KEY_INVALID",
        `party ${wallet.address} is registered with encryption key ${party.encryptionKey}, but ${config.dataDir} holds the key for ${hexlify(encryptionKey.publicKey)}; run \`consort party register\` to update the registration`,
      );
    }
    const store = NodeStore.open(join(config.dataDir, "node.sqlite"));
    const node = new ConsortNode({ config, wallet, provider, chainId, registry, startBlock, store, logger, encryptionKey });
    try {
      await node.listen();
      const pendingTxs = await node.submitter.rebroadcastJournaled();
      if (pendingTxs > 0) logger.info({ pendingTxs }, "sent the transactions signed before the restart again");
    } catch (error) {
      await node.api?.close();
      store.close();
      provider.destroy();
      throw error;
    }
    node.resume();
    node.watcher.start();
    node.driver.start();
    logger.info(
      { party: node.address, registry: registry.address, chainId: chainId.toString(), url: node.url, confirmations: config.confirmations },
      "consort node started",
    );
    return node;
  }

  get url(): string {
    return this.api?.url ?? this.config.publicUrl;
  }

  /** After a (re)start: interrupted computations take a new attempt, and every unfinished task is looked at now. */
  private resume(): void {
    for (const task of this.store.listTasks()) {
      if (task.status === "computing") this.runner.abandonInterrupted(task.taskId);
      else if (task.status !== "awaiting-inputs") this.runner.markOver(task.taskId, `already ${task.status}`);
      if (task.status !== "finalized" && task.status !== "expired") this.driver.wake(task.taskId);
    }
  }

  private async listen(): Promise<void> {
    const app = createNodeApi(
      {
        health: async () => this.queries.health(),
        taskStatus: async (taskId) => this.queries.taskStatus(taskId),
        shareBodyLimit: (taskId) => this.intake.bodyLimit(taskId),
        submitShare: async (submission) => this.intake.accept(submission),
        getProgram: async (hash) => this.queries.programByHash(hash),
        requesterOutputs: async (request) => this.queries.requesterOutputs(request),
      },
      { logger: (event) => this.logger.warn(event, "api request failed") },
    );
    this.api = await startNodeApi(
      app,
      { host: this.config.host, port: this.config.port },
      {
        frames: {
          receive: (record) => this.sessions.take(record),
          authenticate: (hello) => this.sessions.authenticateLink(hello),
          maxRecordBytes: maxFrameBytes(this.config.maxMessageBytes),
          logger: (event) => this.logger.warn(event, "peer frame rejected"),
        },
        limits: { maxConnections: this.config.maxConnections, maxConnectionsPerSource: this.config.maxConnectionsPerSource },
      },
    );
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.watcher.stop();
    this.mailbox.close("the node is stopping");
    await this.sessions.close();
    await this.api?.close();
    await this.driver.stop();
    this.store.close();
    this.provider.destroy();
    this.logger.info("consort node stopped");
  }

  /**
   * The store has rolled back what the removed blocks applied (in the same
   * transaction as the watcher's rewind). A task removed, or sent back to
   * awaiting inputs, stops its computation and forgets its rounds (its id may
   * be handed out again); every touched task decides its next step afresh.
   */
  private afterReorg(from: ChainCursor, to: ChainCursor | undefined, rollback: ReorgRollback): void {
    this.logger.warn(
      {
        from: from.blockNumber,
        to: to?.blockNumber ?? null,
        removedTasks: rollback.removedTasks.map(String),
        removedCommitments: rollback.removedCommitments.map((c) => ({ taskId: c.taskId.toString(), dataOwner: c.dataOwner })),
        revertedTasks: rollback.revertedTasks.map(String),
      },
      "chain reorganisation detected; rolled back the removed blocks and re-reading from the fork point",
    );
    for (const taskId of rollback.touchedTaskIds) {
      const task = this.store.getTask(taskId);
      if (task === undefined || task.status === "awaiting-inputs") this.runner.restartAfterReorg(taskId);
      this.driver.wake(taskId);
    }
  }

  // ------------------------------------------------------------- the life cycle

  /** One run of a task's job: gather what is known, decide the next step (./task-lifecycle.ts), take it. */
  private async runTask(taskId: bigint): Promise<StepOutcome> {
    const now = Date.now();
    const task = this.store.getTask(taskId);
    if (task === undefined) {
      // Removed by a reorg. The job stays, with its attempt: if the id comes back, its labels must not repeat the old task's.
      this.finish(taskId, false);
      return { step: "gone: removed by a chain reorganisation", nextRunAt: undefined };
    }
    if (task.status === "finalized" || task.status === "expired") {
      this.finish(taskId, true);
      return { step: "done", nextRunAt: undefined };
    }
    const chain = await this.registry.taskState(taskId);
    if (chain === "Finalized" || chain === "Expired") this.runner.markOver(taskId, `${chain.toLowerCase()} on chain`);
    const view = await this.view(task, chain, now);
    const step = nextStep(view, this.config.takeoverDelayMs);
    const id = taskId.toString();
    switch (step.kind) {
      case "done":
        this.finish(taskId, true);
        return { step: "done", nextRunAt: undefined };
      case "wait":
        return { step: `wait: ${step.reason}`, nextRunAt: step.until };
      case "await-turn":
        this.store.setJobTurn(taskId, step.until);
        return { step: `${step.then} at its turn`, nextRunAt: step.until };
      case "compute": {
        this.store.setTaskStatus(taskId, "computing");
        const outcome = await this.runner.compute(task);
        if (outcome === "superseded") this.logger.info({ taskId: id, attempt: this.runner.attemptOf(taskId) }, "computation moved to a peer's newer attempt");
        return { step: "compute", nextRunAt: Date.now() };
      }
      case "recompute":
        this.store.clearTaskResult(taskId);
        this.logger.info({ taskId: id, attempt: this.runner.attemptOf(taskId) }, "a peer computes again and this result has no quorum: computing again with it");
        return { step: "recompute", nextRunAt: Date.now() };
      case "attest": {
        const collected = await this.attestor.attest(task, this.store.getJob(taskId)?.resultAttempt ?? 0);
        this.logger.info({ taskId: id, attestations: collected }, "quorum of attestations collected");
        return { step: "attest", nextRunAt: Date.now() };
      }
      case "finalize":
        await this.finalize(task);
        return { step: "finalize", nextRunAt: Date.now() + RECHECK_MS };
      case "expire":
        await this.expire(task);
        return { step: "expire", nextRunAt: Date.now() + RECHECK_MS };
    }
  }

  private async view(task: StoredTask, chain: TaskStateName, now: number): Promise<TaskView> {
    const job = this.store.getJob(task.taskId);
    const hasResult = task.result !== undefined && task.resultHash !== undefined;
    const self = task.parties.findIndex((p) => sameAddress(p, this.address));
    const deciding = chain === "Computing" && !hasResult && task.status !== "failed";
    return {
      status: task.status,
      chain,
      chainAgrees: deciding ? await this.chainAgrees(task) : true,
      inputsComplete: deciding ? this.inputsComplete(task) : false,
      hasResult,
      attestations: hasResult ? this.attestor.count(task) : 0,
      quorum: task.threshold + 1,
      rank: submitterRank(self, task.parties.length, task.taskId),
      actAfter: job?.actAfter,
      pendingTx: this.submitter.pending(finalizeKey(task.taskId)) !== undefined ? "finalize" : this.submitter.pending(expireKey(task.taskId)) !== undefined ? "expire" : undefined,
      attempt: this.runner.attemptOf(task.taskId),
      resultAttempt: job?.resultAttempt,
      deadline: chain === "AwaitingInputs" ? task.inputDeadline : task.resultDeadline,
      chainTime: await chainNow(this.provider),
      now,
    };
  }

  /**
   * Every data owner's commitment is applied and this party holds a share
   * that opens it. A share that no longer matches (its commitment was
   * replaced after a reorg) is dropped, so the owner's next delivery is taken.
   */
  private inputsComplete(task: StoredTask): boolean {
    const commitments = this.store.getCommitments(task.taskId);
    const shares = this.store.getShares(task.taskId);
    let complete = true;
    for (const owner of task.dataOwners) {
      const commitment = commitments.get(owner);
      const share = shares.get(owner);
      if (commitment === undefined || share === undefined) {
        complete = false;
        continue;
      }
      const digests = [];
      for (let i = 0; i < share.digests.length; i += 32) digests.push(share.digests.subarray(i, i + 32));
      const ctx = { chainId: this.chainId, registry: getBytes(this.registry.address), taskId: task.taskId, dataOwner: getBytes(owner) };
      if (hexlify(inputCommitment(ctx, digests)) !== commitment.toLowerCase()) {
        this.store.deleteShare(task.taskId, owner);
        this.logger.warn({ taskId: task.taskId.toString(), dataOwner: owner }, "dropped a share that does not open the data owner's current commitment; waiting for it again");
        complete = false;
      }
    }
    return complete;
  }

  /**
   * The registry holds, at its head, the task and the input commitments this
   * node applied: a node never computes on what the chain does not hold (a
   * reorg its watcher has not processed yet).
   */
  private async chainAgrees(task: StoredTask): Promise<boolean> {
    try {
      await assertTaskOnChain(this.registry, task);
    } catch (error) {
      if (toConsortError(error).code !== "CHAIN_NOT_SYNCED") throw error;
      this.logger.warn({ taskId: task.taskId.toString() }, `waiting for the watcher: ${toConsortError(error).message}`);
      return false;
    }
    const onChain = await this.registry.inputCommitments(task.taskId);
    const stored = this.store.getCommitments(task.taskId);
    const agrees = task.dataOwners.every((o, i) => stored.get(o)?.toLowerCase() === onChain[i]?.toLowerCase());
    if (!agrees) this.logger.info({ taskId: task.taskId.toString() }, "the registry holds input commitments this node has not applied yet; waiting for the watcher");
    return agrees;
  }

  private async inputCommitmentsInOrder(task: StoredTask): Promise<string[]> {
    const stored = this.store.getCommitments(task.taskId);
    if (task.dataOwners.every((o) => stored.has(o))) return task.dataOwners.map((o) => stored.get(o)!);
    return this.registry.inputCommitments(task.taskId);
  }

  /** Submits the quorum-signed result (once: a restart resumes the same transaction). Another party finalizing first is success. */
  private async finalize(task: StoredTask): Promise<void> {
    if (task.result === undefined || task.resultHash === undefined) throw new ConsortError("INTERNAL", `task ${task.taskId} has no result to finalize`);
    const signatures = this.store
      .getAttestations(task.taskId)
      .filter((a) => a.resultHash === task.resultHash)
      .map((a) => a.signature);
    const key = finalizeKey(task.taskId);
    try {
      const receipt = await this.submitter.submit(key, "finalizeTask", [task.taskId, task.result, signatures]);
      this.logger.info(
        { taskId: task.taskId.toString(), tx: receipt.hash, block: receipt.blockNumber, signatures: signatures.length, gasUsed: receipt.gasUsed.toString() },
        "submitted the quorum-signed result",
      );
    } catch (error) {
      const e = toConsortError(error);
      if (e.code !== "TX_REVERTED") throw e;
      this.submitter.forget(key);
      if ((await this.registry.taskState(task.taskId)) !== "Finalized") throw e;
    }
  }

  /** Records on chain that the task's deadline passed, so no one has to send the transaction by hand. */
  private async expire(task: StoredTask): Promise<void> {
    const key = expireKey(task.taskId);
    try {
      const receipt = await this.submitter.submit(key, "expireTask", [task.taskId]);
      this.logger.info({ taskId: task.taskId.toString(), tx: receipt.hash, block: receipt.blockNumber }, "recorded the task's expiry on chain");
    } catch (error) {
      const e = toConsortError(error);
      if (e.code !== "TX_REVERTED") throw e;
      this.submitter.forget(key);
      const record = await this.registry.getTask(task.taskId);
      if (record.expiredAtBlock === 0n && record.finalizedAtBlock === 0n) throw e;
    }
  }

  /**
   * The task is over here, or gone (removed by a reorg): its computation
   * stops, what is held for it in memory and its unsent transactions go. An
   * over task's late round frames are still dropped and its job is deleted;
   * a gone task keeps its job (and attempt), since its id may come back as
   * another task whose frames must be taken.
   */
  private finish(taskId: bigint, over: boolean): void {
    this.runner.markOver(taskId, over ? "over" : "removed by a chain reorganisation");
    this.runner.forget(taskId, over);
    this.submitter.forget(finalizeKey(taskId));
    this.submitter.forget(expireKey(taskId));
    if (over) {
      this.runner.markOver(taskId, "over");
      this.store.deleteJob(taskId);
    }
  }

  /** A step threw: log it with its task; a fatal error fails the task here (the chain still finalizes or expires it). */
  private taskFailed(taskId: bigint, error: ConsortError, failures: number): void {
    const id = taskId.toString();
    if (this.stopping) return;
    if (error.retryable) {
      this.logger.warn({ taskId: id, code: error.code, failures }, `task ${id}: ${error.message}; trying again`);
      return;
    }
    this.logger.error({ taskId: id, code: error.code }, `task ${id}: ${error.message}`);
    const task = this.store.getTask(taskId);
    if (task !== undefined && task.status !== "finalized" && task.status !== "expired") this.store.setTaskStatus(taskId, "failed", `${error.code}: ${error.message}`);
  }
}
