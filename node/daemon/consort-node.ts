import { join } from "node:path";
import { getAddress, getBytes, hexlify, keccak256, type JsonRpcProvider, type Wallet } from "ethers";
import { randomBytes } from "@noble/hashes/utils.js";
import { recoverAttestationSigner, signAttestation } from "../chain/attestation.ts";
import { loadDeployment } from "../chain/deployments.ts";
import { EventWatcher, type WatchedEvent } from "../chain/event-watcher.ts";
import { loadRegistryArtifact } from "../chain/registry-artifact.ts";
import { RegistryClient } from "../chain/registry-client.ts";
import { assertTaskOnChain } from "../chain/task-identity.ts";
import { connectProvider } from "../chain/rpc-provider.ts";
import { ConsortError, isConsortError, toConsortError } from "../errors.ts";
import { toHex } from "../transport/binary-codec.ts";
import { inputCommitment, shareDigestOfEncoded, type InputContext } from "../math/commitment.ts";
import { decodeProgram, programHash } from "../program/program-encoding.ts";
import { programDataOwnerCount } from "../program/program.ts";
import { decodeResult, encodeResult } from "../program/result-encoding.ts";
import { frVecCheck } from "../math/fr-vec.ts";
import { runProgram } from "../protocol/program-runner.ts";
import type { RoundNetwork } from "../protocol/round-network.ts";
import { NodeStore, type ReorgRollback, type StoredTask } from "../store/node-store.ts";
import { createNodeApi, startNodeApi, type RunningNodeApi } from "../transport/http-server.ts";
import { labelKey, openPayload, verifyPeerMessageSignature, type MessageLabel, type SignedPeerMessage } from "../transport/peer-message.ts";
import { openSharePayload, verifyShareSubmission, type ShareSubmission } from "../transport/share-submission.ts";
import { sealOutputResponse, verifyOutputRequest, type OutputRequest } from "../transport/output-request.ts";
import { ownerInputLayout, splitOwnerVector } from "../program/input-layout.ts";
import { encodeRequesterShare } from "../transport/requester-share-codec.ts";
import type { Logger } from "../logger.ts";
import type { NodeConfig, NodeSecrets } from "./node-config.ts";
import { loadOrCreateEncryptionKey } from "./node-keys.ts";
import { PartyDirectory } from "./party-directory.ts";
import { PeerChannel } from "../transport/peer-channel.ts";
import { PeerSessions, type AcceptedFrame } from "../transport/peer-sessions.ts";
import { maxFrameBytes } from "../transport/peer-frame.ts";
import { PeerMailbox } from "../transport/peer-mailbox.ts";

/** The label of the message in which a party sends its signed attestation of the result to its peers. */
const ATTESTATION_ROUND = 0;
const ATTESTATION_GATE = "attest";
const TASK_EVENTS = new Set(["TaskCreated", "InputCommitted", "TaskFinalized", "TaskExpired"]);
/** How long to wait before trying a task again after a transient failure (a peer down, an RPC hiccup). */
const RETRY_DELAY_MS = 2_000;
/** After the quorum is in, how long the submitter waits for the remaining attestations. */
const LATE_ATTESTATION_GRACE_MS = 1_000;

export interface ConsortNodeOptions {
  config: NodeConfig;
  secrets: NodeSecrets;
  logger: Logger;
}

function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/**
 * A Consort compute party: watches the registry, accepts data owners' shares,
 * runs committed programs with its peers, attests to results and, when its
 * turn comes, finalizes them on chain.
 *
 * Events are triggers; the chain is the authority. Before acting (starting a
 * computation, submitting a result) the node re-reads the task's state from
 * the registry, so a reorged-away event cannot make it act wrongly.
 */
export class ConsortNode {
  readonly config: NodeConfig;
  readonly address: string;
  readonly chainId: bigint;
  readonly registry: RegistryClient;
  readonly store: NodeStore;
  private readonly wallet: Wallet;
  private readonly provider: JsonRpcProvider;
  private readonly logger: Logger;
  private readonly encryptionKey: { privateKey: Uint8Array; publicKey: Uint8Array };
  private readonly mailbox = new PeerMailbox();
  /** Tasks whose computation is over here: their round messages are no longer awaited. */
  private readonly computed = new Set<string>();
  private readonly directory: PartyDirectory;
  private readonly channel: PeerChannel;
  private readonly sessions: PeerSessions;
  private readonly watcher: EventWatcher<ReorgRollback>;
  private readonly active = new Map<string, Promise<void>>();
  /** How the last computation of each task went (for operators and benchmarks; not persisted). */
  /** Per task: wall time of the computation, its rounds, payload bytes sent, and this process's CPU time meanwhile (all threads). */
  private readonly computeStats = new Map<string, { ms: number; rounds: number; payloadBytesSent: number; cpuMs: number }>();
  private readonly rerun = new Set<string>();
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
    this.config = args.config;
    this.wallet = args.wallet;
    this.address = args.wallet.address;
    this.provider = args.provider;
    this.chainId = args.chainId;
    this.registry = args.registry;
    this.store = args.store;
    this.logger = args.logger;
    this.encryptionKey = args.encryptionKey;
    this.directory = new PartyDirectory(args.registry);
    this.sessions = new PeerSessions({
      chainId: this.chainId,
      registry: this.registry.address,
      signingKey: this.wallet,
      encryptionPrivateKey: this.encryptionKey.privateKey,
      lookupParty: (address) => this.directory.get(address),
      taskParties: (taskId) => this.store.getTask(taskId)?.parties,
      deliver: (frame) => this.storeFrame(frame),
      timeoutMs: this.config.protocolTimeoutMs,
      onRetry: ({ to, label, attempt, error }) =>
        this.logger.debug({ to, label, attempt, code: error.code }, "peer not ready; retrying"),
      onError: (error, info) => this.logger.warn({ ...info, code: error.code }, error.message),
    });
    this.channel = new PeerChannel({
      sessions: this.sessions,
      // Only attestations are stored (storeFrame); round messages are asked of the mailbox alone.
      store: { getMessage: (taskId, round, gate, from) => (gate === ATTESTATION_GATE ? this.store.getMessage(taskId, round, gate, from) : undefined) },
      mailbox: this.mailbox,
      timeoutMs: this.config.protocolTimeoutMs,
    });
    this.watcher = new EventWatcher({
      provider: this.provider,
      address: this.registry.address,
      iface: loadRegistryArtifact().iface,
      startBlock: args.startBlock,
      confirmations: this.config.confirmations,
      pollIntervalMs: this.config.pollIntervalMs,
      store: this.store,
      apply: (events, cursor) => this.applyEvents(events, cursor),
      onError: (error) => this.logger.warn({ code: error.code, retryable: error.retryable }, `chain watcher: ${error.message}`),
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
    } catch (error) {
      store.close();
      provider.destroy();
      throw error;
    }
    node.watcher.start();
    for (const task of store.listTasks(["awaiting-inputs", "computing", "attesting"])) node.schedule(task.taskId);
    logger.info(
      { party: node.address, registry: registry.address, chainId: chainId.toString(), url: node.url, confirmations: config.confirmations },
      "consort node started",
    );
    return node;
  }

  get url(): string {
    return this.api?.url ?? this.config.publicUrl;
  }

  private async listen(): Promise<void> {
    const app = createNodeApi(
      {
        health: async () => this.health(),
        taskStatus: async (taskId) => this.taskStatus(taskId),
        submitShare: async (submission) => this.acceptShare(submission),
        deliverMessage: async (message) => this.acceptMessage(message),
        getProgram: async (hash) => this.programByHash(hash),
        requesterOutputs: async (request) => this.requesterOutputs(request),
      },
      {
        maxMessageBytes: this.config.maxMessageBytes,
        logger: (event) => this.logger.warn(event, "api request failed"),
      },
    );
    this.api = await startNodeApi(
      app,
      { host: this.config.host, port: this.config.port },
      {
        frames: {
          receive: (record) => this.sessions.take(record),
          maxRecordBytes: maxFrameBytes(this.config.maxMessageBytes),
          logger: (event) => this.logger.warn(event, "peer frame rejected"),
        },
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
    await Promise.allSettled([...this.active.values()]);
    this.store.close();
    this.provider.destroy();
    this.logger.info("consort node stopped");
  }

  // -------------------------------------------------------------- API handlers

  private health(): Record<string, unknown> {
    const cursor = this.store.loadCursor();
    return {
      status: "ok",
      party: this.address,
      chainId: this.chainId.toString(),
      registry: this.registry.address,
      encryptionKey: hexlify(this.encryptionKey.publicKey),
      processedBlock: cursor?.blockNumber ?? null,
      tasks: this.store.listTasks().length,
    };
  }

  /** Serves the bytes of a program this node holds (any task it is a party of), so peers and users can fetch a program by hash. */
  private programByHash(hash: string): Uint8Array {
    const wanted = hash.toLowerCase();
    const task = this.store.listTasks().find((t) => t.programHash.toLowerCase() === wanted);
    if (task === undefined) {
      throw new ConsortError("NOT_FOUND", `party ${this.address} holds no program with hash ${hash}`, { details: { programHash: hash } });
    }
    return task.program;
  }

  /**
   * This party's shares of a finalized task's requester-only outputs, sealed to
   * the ephemeral key in the requester's signed request (node/transport/output-request.ts).
   */
  private requesterOutputs(request: OutputRequest): Record<string, unknown> {
    const task = this.store.getTask(BigInt(request.taskId));
    if (task === undefined) {
      throw new ConsortError("UNKNOWN_TASK", `task ${request.taskId} is unknown to party ${this.address}`, { details: { taskId: request.taskId } });
    }
    verifyOutputRequest(request, { chainId: this.chainId, registry: this.registry.address, requester: task.requester, nowSeconds: Math.floor(Date.now() / 1000) });
    if (task.status !== "finalized") {
      throw new ConsortError("TASK_NOT_ACCEPTING", `task ${request.taskId} is ${task.status}; requester outputs are released once it is finalized`, {
        retryable: task.status === "computing" || task.status === "attesting" || task.status === "awaiting-inputs",
      });
    }
    const shares = [...this.store.getRequesterShares(task.taskId).values()].map((payload) => hexlify(payload));
    const sealed = sealOutputResponse(request, this.address, new TextEncoder().encode(JSON.stringify(shares)));
    this.logger.info({ taskId: request.taskId, outputs: shares.length }, "requester outputs released to the requester");
    return { party: this.address, sealed: toHex(sealed) };
  }

  private knownTask(taskId: bigint): StoredTask {
    const task = this.store.getTask(taskId);
    if (task === undefined) {
      throw new ConsortError(
        "UNKNOWN_TASK",
        `task ${taskId} is unknown to party ${this.address} (not created, not confirmed yet, or this party is not in it)`,
        { retryable: true, details: { taskId: taskId.toString() } },
      );
    }
    return task;
  }

  private taskStatus(taskId: bigint): Record<string, unknown> {
    const task = this.store.getTask(taskId);
    if (task === undefined) {
      throw new ConsortError("UNKNOWN_TASK", `task ${taskId} is unknown to party ${this.address}`, {
        details: { taskId: taskId.toString() },
      });
    }
    const shares = this.store.getShares(taskId);
    const commitments = this.store.getCommitments(taskId);
    let result: unknown = null;
    if (task.result !== undefined) {
      try {
        result = decodeResult(decodeProgram(task.program), task.result).outputs;
      } catch {
        result = null;
      }
    }
    return {
      taskId: taskId.toString(),
      status: task.status,
      error: task.error ?? null,
      programHash: task.programHash,
      parties: task.parties,
      threshold: task.threshold,
      dataOwners: task.dataOwners.map((owner) => ({
        address: owner,
        committed: commitments.has(owner),
        shareReceived: shares.has(owner),
      })),
      resultHash: task.resultHash ?? null,
      result,
      attestations: this.store.getAttestations(taskId).map((a) => a.signer),
      finalizedBlock: task.finalizedBlock ?? null,
      finalizeTx: task.finalizeTx ?? null,
      compute: this.computeStats.get(taskId.toString()) ?? null,
    };
  }

  private inputContext(taskId: bigint, dataOwner: string): InputContext {
    return {
      chainId: this.chainId,
      registry: getBytes(this.registry.address),
      taskId,
      dataOwner: getBytes(dataOwner),
    };
  }

  /** A data owner's share for this party: verified in full before anything is stored. */
  private async acceptShare(submission: ShareSubmission): Promise<Record<string, unknown>> {
    verifyShareSubmission(submission);
    if (BigInt(submission.chainId) !== this.chainId || !sameAddress(submission.registry, this.registry.address)) {
      throw new ConsortError(
        "BAD_REQUEST",
        `the submission is for chain ${submission.chainId} registry ${submission.registry}; this node serves chain ${this.chainId} registry ${this.registry.address}`,
      );
    }
    if (!sameAddress(submission.party, this.address)) {
      throw new ConsortError("NOT_A_PARTY", `the submission is addressed to ${submission.party}, not to this party ${this.address}`);
    }
    const taskId = BigInt(submission.taskId);
    const task = this.knownTask(taskId);
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
    await assertTaskOnChain(this.registry, task);
    if (submission.digests.length !== task.parties.length) {
      throw new ConsortError(
        "BAD_REQUEST",
        `digests: expected one per party (${task.parties.length}), got ${submission.digests.length}`,
        { details: { field: "digests" } },
      );
    }
    const selfIndex = task.parties.findIndex((p) => sameAddress(p, this.address));
    const layout = ownerInputLayout(decodeProgram(task.program), ownerIndex);
    const { salt, encoded, vector } = openSharePayload(
      this.encryptionKey.privateKey,
      submission.sealed,
      { chainId: this.chainId, registry: this.registry.address, taskId, dataOwner, party: this.address },
      layout.length,
    );
    const ctx = this.inputContext(taskId, dataOwner);
    const digests = submission.digests.map((d) => getBytes(d));
    if (hexlify(shareDigestOfEncoded(ctx, selfIndex, salt, encoded)) !== hexlify(digests[selfIndex]!)) {
      throw new ConsortError("COMMITMENT_MISMATCH", `the share does not match digest #${selfIndex} of data owner ${dataOwner}'s submission`, {
        details: { taskId: submission.taskId, dataOwner },
      });
    }
    const storedCommitment = this.store.getCommitments(taskId).get(dataOwner);
    let commitment = storedCommitment;
    if (commitment === undefined) {
      // The watcher may not have applied the InputCommitted event yet (confirmations): read the chain directly.
      const onChain = (await this.registry.inputCommitments(taskId))[ownerIndex];
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
        const onChain = (await this.registry.inputCommitments(taskId))[ownerIndex];
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
    const outcome = this.store.putShare(taskId, {
      dataOwner,
      salt,
      values: vector,
      digests: concatenated,
      receivedAt: Date.now(),
      commitment: commitment.toLowerCase(),
    });
    if (outcome !== "inserted") {
      throw new ConsortError("DUPLICATE_INPUT", `party ${this.address} already holds data owner ${dataOwner}'s share for task ${taskId}`, {
        details: { taskId: submission.taskId, dataOwner, identical: outcome === "identical" },
      });
    }
    this.logger.info({ taskId: submission.taskId, dataOwner }, "input share accepted");
    this.schedule(taskId);
    return { status: "accepted", taskId: submission.taskId, dataOwner, party: this.address };
  }

  /**
   * A peer's frame that PeerSessions has authenticated (pairwise AEAD under
   * keys derived from both parties' registered keys, Ed25519 frame key
   * certified by the sender's registered address), found to come from a
   * party of the task and not to contradict an earlier frame under its
   * label: validated, then handed to the waiting round. Round messages stay
   * in memory (the mailbox): a computation that stops midway is run again,
   * never resumed, so writing them to disk only cost time on every round.
   * Attestations are stored (they outlive the computation). Round messages
   * of a task whose computation is over are acknowledged and dropped (a
   * late retransmission must not sit in the mailbox).
   */
  private storeFrame(frame: AcceptedFrame): void {
    const { label, from, payload } = frame;
    if (label.gate === ATTESTATION_GATE) {
      const outcome = this.store.putMessage(label.taskId, label.round, label.gate, from, payload);
      if (outcome === "conflict") {
        throw new ConsortError("DUPLICATE_MESSAGE", `party ${from} already sent a different message for ${labelKey(label)}`, {
          details: { label: labelKey(label), from },
        });
      }
    } else {
      try {
        frVecCheck(payload, "payload");
      } catch (cause) {
        throw new ConsortError("BAD_REQUEST", `the payload of ${labelKey(label)} from ${from} is not a field vector`, { cause });
      }
      if (this.computed.has(label.taskId.toString())) return;
    }
    this.mailbox.deliver(labelKey(label), from, payload);
  }

  /** A peer's protocol message on the older per-message route (POST /v1/messages): signed by a party of the task, sealed to us, stored before it is acknowledged. */
  private async acceptMessage(message: SignedPeerMessage): Promise<void> {
    const from = verifyPeerMessageSignature(message);
    if (message.chainId !== this.chainId || !sameAddress(message.registry, this.registry.address)) {
      throw new ConsortError("BAD_REQUEST", `the message is for chain ${message.chainId} registry ${message.registry}; this node serves chain ${this.chainId} registry ${this.registry.address}`);
    }
    if (!sameAddress(message.to, this.address)) {
      throw new ConsortError("NOT_A_PARTY", `the message is addressed to ${message.to}, not to this party ${this.address}`);
    }
    const task = this.knownTask(message.label.taskId);
    if (!task.parties.some((p) => sameAddress(p, from))) {
      throw new ConsortError("NOT_A_PARTY", `${from} is not a party of task ${task.taskId}`, {
        details: { taskId: task.taskId.toString(), from },
      });
    }
    const payload = openPayload(this.encryptionKey.privateKey, message);
    if (message.label.gate !== ATTESTATION_GATE) {
      // Reject bytes that are not a canonical packed field vector here, at the boundary, rather than mid-protocol.
      try {
        frVecCheck(payload, "payload");
      } catch (cause) {
        throw new ConsortError("BAD_REQUEST", `the payload of ${labelKey(message.label)} from ${from} is not a field vector`, { cause });
      }
    }
    const { taskId, round, gate } = message.label;
    const outcome = this.store.putMessage(taskId, round, gate, getAddress(from), payload);
    if (outcome === "conflict") {
      throw new ConsortError("DUPLICATE_MESSAGE", `party ${from} already sent a different message for ${labelKey(message.label)}`, {
        details: { label: labelKey(message.label), from },
      });
    }
    this.mailbox.deliver(labelKey(message.label), getAddress(from), payload);
  }

  // ------------------------------------------------------------- chain events

  private applyEvents(events: readonly WatchedEvent[], cursor: { blockNumber: number; blockHash: string }): void {
    const touched = new Set<bigint>();
    this.store.transaction(() => {
      for (const event of events) {
        const taskId = TASK_EVENTS.has(event.name) ? (event.args.getValue("taskId") as bigint) : undefined;
        if (!this.store.markEventApplied(event.key, event.blockNumber, event.name, taskId)) continue;
        this.applyEvent(event, touched);
      }
      this.store.advanceCursor(cursor);
    });
    for (const taskId of touched) this.schedule(taskId);
  }

  private applyEvent(event: WatchedEvent, touched: Set<bigint>): void {
    const a = event.args;
    switch (event.name) {
      case "TaskCreated": {
        const parties = (a.getValue("parties") as string[]).map((p) => getAddress(p));
        if (!parties.some((p) => sameAddress(p, this.address))) return;
        const taskId = a.getValue("taskId") as bigint;
        const program = getBytes(a.getValue("program") as string);
        const hash = a.getValue("programHash") as string;
        const dataOwners = (a.getValue("dataOwners") as string[]).map((o) => getAddress(o));
        let error: string | undefined;
        try {
          const decoded = decodeProgram(program);
          if (programHash(program) !== hash.toLowerCase()) throw new ConsortError("PROGRAM_HASH_MISMATCH", "program bytes do not hash to the program hash");
          if (programDataOwnerCount(decoded) !== dataOwners.length) {
            throw new ConsortError(
              "PROGRAM_INVALID",
              `the program reads inputs from ${programDataOwnerCount(decoded)} data owners but the task lists ${dataOwners.length}`,
            );
          }
        } catch (e) {
          error = `${toConsortError(e).code}: ${toConsortError(e).message}`;
        }
        this.store.insertTask({
          taskId,
          programHash: hash,
          program,
          requester: getAddress(a.getValue("requester") as string),
          parties,
          dataOwners,
          threshold: Number(a.getValue("threshold")),
          inputDeadline: a.getValue("inputDeadline") as bigint,
          resultDeadline: a.getValue("resultDeadline") as bigint,
          createdBlock: event.blockNumber,
          ...(error === undefined ? {} : { status: "failed" as const, error }),
        });
        if (error !== undefined) this.logger.error({ taskId: taskId.toString(), error }, "refusing task: its program is not valid");
        else this.logger.info({ taskId: taskId.toString(), programHash: hash }, "task created with this party");
        touched.add(taskId);
        return;
      }
      case "InputCommitted": {
        const taskId = a.getValue("taskId") as bigint;
        if (this.store.getTask(taskId) === undefined) return;
        this.store.putCommitment(taskId, getAddress(a.getValue("dataOwner") as string), (a.getValue("commitment") as string).toLowerCase());
        touched.add(taskId);
        return;
      }
      case "TaskFinalized": {
        const taskId = a.getValue("taskId") as bigint;
        if (this.store.getTask(taskId) === undefined) return;
        this.store.setTaskFinalized(
          taskId,
          getBytes(a.getValue("result") as string),
          a.getValue("resultHash") as string,
          event.blockNumber,
          event.transactionHash,
        );
        // The messages held shares of intermediate values; the task is over.
        this.computed.add(taskId.toString());
        this.store.deleteMessages(taskId);
        this.channel.forgetTask(taskId);
        this.logger.info({ taskId: taskId.toString(), block: event.blockNumber }, "task finalized on chain");
        return;
      }
      case "TaskExpired": {
        const taskId = a.getValue("taskId") as bigint;
        if (this.store.getTask(taskId) === undefined) return;
        this.store.setTaskStatus(taskId, "expired");
        this.computed.add(taskId.toString());
        this.store.deleteMessages(taskId);
        this.channel.forgetTask(taskId);
        return;
      }
      case "PartyUpdated": {
        this.directory.invalidate(getAddress(a.getValue("party") as string));
        return;
      }
      default:
        return;
    }
  }

  /**
   * The store has rolled back what the removed blocks applied (in the same
   * transaction as the watcher's rewind): forget in-memory state of removed
   * or reset tasks (a removed task's id may be handed out again) and take
   * every touched task up again from what the store now holds.
   */
  private afterReorg(from: { blockNumber: number }, to: { blockNumber: number } | undefined, rollback: ReorgRollback): void {
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
      if (task === undefined || task.status === "awaiting-inputs") {
        this.computed.delete(taskId.toString());
        this.channel.forgetTask(taskId);
      }
      if (task !== undefined) this.schedule(taskId);
    }
  }

  // ---------------------------------------------------------------- tasks

  /** Runs `advance(taskId)` now, or once more after the run in progress. */
  private schedule(taskId: bigint): void {
    if (this.stopping) return;
    const key = taskId.toString();
    if (this.active.has(key)) {
      this.rerun.add(key);
      return;
    }
    const run = this.advance(taskId)
      .catch((error: unknown) => {
        const e = toConsortError(error);
        if (this.stopping) return;
        this.logger.error({ taskId: key, code: e.code, retryable: e.retryable }, `task ${key}: ${e.message}`);
        if (!e.retryable) this.store.setTaskStatus(taskId, "failed", `${e.code}: ${e.message}`);
        else setTimeout(() => this.schedule(taskId), RETRY_DELAY_MS).unref();
      })
      .finally(() => {
        this.active.delete(key);
        if (this.rerun.delete(key)) this.schedule(taskId);
      });
    this.active.set(key, run);
  }

  private async advance(taskId: bigint): Promise<void> {
    const task = this.store.getTask(taskId);
    if (task === undefined) return;
    if (task.status === "awaiting-inputs" || task.status === "computing") {
      const commitments = this.store.getCommitments(taskId);
      const shares = this.store.getShares(taskId);
      if (task.dataOwners.some((o) => !commitments.has(o) || !shares.has(o))) return;
      const state = await this.registry.taskState(taskId);
      if (state !== "Computing") {
        if (state === "Expired") this.store.setTaskStatus(taskId, "expired");
        return;
      }
      await assertTaskOnChain(this.registry, task);
      this.store.setTaskStatus(taskId, "computing");
      await this.compute(task);
    }
    const current = this.store.getTask(taskId);
    if (current?.status === "attesting") await this.attestAndFinalize(current);
  }

  private async compute(task: StoredTask): Promise<void> {
    const program = decodeProgram(task.program);
    const shares = this.store.getShares(task.taskId);
    const inputShares = new Map<string, Uint8Array>();
    task.dataOwners.forEach((owner, ownerIndex) => {
      const share = shares.get(owner);
      if (share === undefined) throw new ConsortError("INTERNAL", `missing share of ${owner}`);
      for (const [name, values] of splitOwnerVector(ownerInputLayout(program, ownerIndex), share.values)) {
        inputShares.set(name, values);
      }
    });
    // Keys and certificates first: setup the node could do as soon as it knew the task, not protocol time.
    await this.sessions.prepare(task.taskId, task.parties);
    const sent = { bytes: 0 };
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    const run = await runProgram(program, {
      self: task.parties.findIndex((p) => sameAddress(p, this.address)),
      parties: task.parties.length,
      threshold: task.threshold,
      rng: randomBytes,
      network: this.roundNetwork(task, sent),
    }, inputShares);
    this.computed.add(task.taskId.toString());
    // Every frame the result depends on must be covered by a signed checkpoint before we attest to it.
    await this.sessions.settled(task.taskId);
    const ms = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    this.computeStats.set(task.taskId.toString(), { ms, rounds: run.rounds, payloadBytesSent: sent.bytes, cpuMs: (cpu.user + cpu.system) / 1000 });
    const result = encodeResult(program, run.opened, run.commitments);
    const resultHash = keccak256(result);
    this.store.transaction(() => {
      // A reorg may have removed or reset the task meanwhile: this result is of a task or inputs it no longer has.
      const now = this.store.getTask(task.taskId);
      if (now === undefined || now.status === "awaiting-inputs" || now.programHash !== task.programHash || now.createdBlock !== task.createdBlock) {
        throw new ConsortError("CHAIN_NOT_SYNCED", `task ${task.taskId} changed while it was computed (chain reorganisation); taking it up again`, { retryable: true });
      }
      this.store.setTaskResult(task.taskId, result, resultHash);
      for (const [name, share] of run.requesterShares) this.store.putRequesterShare(task.taskId, name, encodeRequesterShare(share));
      this.store.setTaskStatus(task.taskId, "attesting");
    });
    this.logger.info({ taskId: task.taskId.toString(), resultHash, rounds: run.rounds, ms: Math.round(ms), payloadBytesSent: sent.bytes }, "result computed");
  }

  /** The protocol engine's view of the network for one task: field vectors in, field vectors out. */
  private roundNetwork(task: StoredTask, sent: { bytes: number }): RoundNetwork {
    const self = task.parties.findIndex((p) => sameAddress(p, this.address));
    return {
      exchange: (label, outgoing, from) => {
        const full: MessageLabel = { taskId: task.taskId, round: label.round, gate: label.gate };
        outgoing.forEach((payload, j) => {
          if (j !== self && payload !== undefined) sent.bytes += payload.length;
        });
        return this.channel.exchange(full, task.parties, outgoing, from);
      },
    };
  }

  private async inputCommitmentsInOrder(task: StoredTask): Promise<string[]> {
    const stored = this.store.getCommitments(task.taskId);
    if (task.dataOwners.every((o) => stored.has(o))) return task.dataOwners.map((o) => stored.get(o)!);
    return this.registry.inputCommitments(task.taskId);
  }

  private async attestAndFinalize(task: StoredTask): Promise<void> {
    if (task.result === undefined || task.resultHash === undefined) throw new ConsortError("INTERNAL", `task ${task.taskId} has no result`);
    const attestation = {
      taskId: task.taskId,
      programHash: task.programHash,
      inputCommitments: await this.inputCommitmentsInOrder(task),
      resultHash: task.resultHash,
    };
    const signature = await signAttestation(this.wallet, this.chainId, this.registry.address, attestation);
    this.store.putAttestation(task.taskId, { signer: this.address, resultHash: task.resultHash, signature });
    const label: MessageLabel = { taskId: task.taskId, round: ATTESTATION_ROUND, gate: ATTESTATION_GATE };
    const payload = new Uint8Array([...getBytes(task.resultHash), ...getBytes(signature)]);
    const peers = task.parties.filter((p) => !sameAddress(p, this.address));
    // Send to every peer and collect theirs; one peer failing must not stop the others.
    const sends = Promise.allSettled(peers.map((p) => this.channel.send(label, p, payload)));
    const quorum = task.threshold + 1;
    const collected = await this.collectAttestations(task, label, attestation, peers, quorum);
    void sends.then((results) =>
      results.forEach((r, i) => {
        if (r.status === "rejected") this.logger.warn({ taskId: task.taskId.toString(), to: peers[i] }, `attestation not delivered: ${toConsortError(r.reason).message}`);
      }),
    );
    if (collected < quorum) {
      throw new ConsortError("PROTOCOL_TIMEOUT", `task ${task.taskId}: only ${collected} of the ${quorum} attestations needed arrived`, { retryable: true });
    }
    await this.finalizeWhenDue(task);
  }

  /** Waits for peers' attestations (all of them, or the quorum plus a short grace); returns how many valid ones are stored. */
  private async collectAttestations(
    task: StoredTask,
    label: MessageLabel,
    attestation: { taskId: bigint; programHash: string; inputCommitments: string[]; resultHash: string },
    peers: readonly string[],
    quorum: number,
  ): Promise<number> {
    const count = () => this.store.getAttestations(task.taskId).filter((a) => a.resultHash === task.resultHash).length;
    let quorumReached: (() => void) | undefined;
    const quorumPromise = new Promise<void>((resolve) => (quorumReached = resolve));
    const waits = peers.map(async (peer) => {
      const payload = await this.channel.receive(label, peer);
      if (payload.length !== 32 + 65) throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `attestation from ${peer} has ${payload.length} bytes`);
      const resultHash = hexlify(payload.subarray(0, 32));
      const signature = hexlify(payload.subarray(32));
      if (resultHash !== task.resultHash) {
        this.logger.error({ taskId: task.taskId.toString(), peer, theirs: resultHash, ours: task.resultHash }, "a party attested a different result");
        return;
      }
      const signer = recoverAttestationSigner(this.chainId, this.registry.address, { ...attestation, resultHash }, signature);
      if (!sameAddress(signer, peer)) {
        this.logger.error({ taskId: task.taskId.toString(), peer, signer }, "attestation signature does not match its sender");
        return;
      }
      this.store.putAttestation(task.taskId, { signer: getAddress(peer), resultHash, signature });
      if (count() >= quorum) quorumReached?.();
    });
    if (count() >= quorum) quorumReached?.();
    const all = Promise.allSettled(waits);
    await Promise.race([all, quorumPromise]);
    if (count() < peers.length + 1) {
      await Promise.race([all, new Promise((r) => setTimeout(r, LATE_ATTESTATION_GRACE_MS))]);
    }
    return count();
  }

  /**
   * One submitter at a time: parties take turns in an order rotated by task id
   * (so no single party always pays gas). The first submits at once; each next
   * one waits takeoverDelayMs more and submits only if the task is still not
   * finalized, so a submitter that crashed or ran out of gas is replaced.
   */
  private async finalizeWhenDue(task: StoredTask): Promise<void> {
    const n = task.parties.length;
    const self = task.parties.findIndex((p) => sameAddress(p, this.address));
    const rank = (self - Number(task.taskId % BigInt(n)) + n) % n;
    const deadline = Date.now() + rank * this.config.takeoverDelayMs;
    while (Date.now() < deadline) {
      if (this.stopping || this.store.getTask(task.taskId)?.status === "finalized") return;
      await new Promise((r) => setTimeout(r, Math.min(250, deadline - Date.now())));
    }
    if (this.store.getTask(task.taskId)?.status === "finalized") return;
    const state = await this.registry.taskState(task.taskId);
    if (state !== "Computing") return;
    const current = this.store.getTask(task.taskId);
    if (current?.result === undefined || current.resultHash === undefined) return;
    const signatures = this.store
      .getAttestations(task.taskId)
      .filter((a) => a.resultHash === current.resultHash)
      .map((a) => a.signature);
    try {
      const receipt = await this.registry.finalizeTask(task.taskId, current.result, signatures);
      this.logger.info(
        { taskId: task.taskId.toString(), tx: receipt.hash, block: receipt.blockNumber, signatures: signatures.length, gasUsed: receipt.gasUsed.toString() },
        "submitted the quorum-signed result",
      );
    } catch (error) {
      const e = toConsortError(error);
      // Another party finalized first: that is success.
      if (e.code === "TX_REVERTED" && (await this.registry.taskState(task.taskId)) === "Finalized") return;
      throw e;
    }
  }

}
