/**
 * A node's party-to-party transport: per-task pairwise sessions over which
 * it sends and accepts peer frames (./peer-frame.ts) for the MPC rounds.
 *
 * Sending: the first frame of a task to a peer sets up an outbound session
 * (the task's Ed25519 frame key and its certificate by the registered key,
 * the direction key from static-static ECDH, ./session-keys.ts); each
 * frame is then one AEAD seal plus either an Ed25519 signature ("frame"
 * signing) or an entry in the next checkpoint ("checkpoint" signing, the
 * default). send() retries an unreachable or not-ready peer until its
 * deadline, re-sending the same bytes, so a retry never seals twice.
 *
 * Receiving: acceptFrame() runs every check on a frame and returns its
 * label, sender and plaintext. The first frame of a session pays for the
 * membership check, the certificate (one secp256k1 recovery, ~4 ms here)
 * and the key derivation; later frames cost a map lookup and the AEAD. A
 * frame that a checkpoint signs is digested later, in a batch: the sender
 * when it makes the checkpoint, the recipient when one arrives or
 * settled() asks (one small hash in a loaded node's round measured ~25 µs,
 * in a warm batch ~3 µs). Until then a frame stands for itself by its
 * AEAD tag, which is the same for a retransmission and differs for another
 * payload under the label. Once a session is open, sending and receiving
 * are synchronous: no microtask hop between the socket and the round.
 *
 * Checkpoint signing (see ./peer-frame.ts for why): a recipient uses a frame
 * as soon as its AEAD verifies (only the two parties hold the direction key,
 * so it can only come from the sender), and settled(taskId) waits until a
 * signed checkpoint covers every frame accepted for the task, which is what
 * makes them third-party verifiable. A node must await settled() before it
 * attests a result; a sender flushes its checkpoints every
 * checkpointIntervalMs and when settled() is called, so this costs one
 * round trip at the end of a task.
 *
 * Memory: each session remembers the label and tag of every frame it sealed
 * and delivered, and the digest of a delivered frame that a checkpoint did
 * not cover in delivery order (to refuse a nonce twice, to count a
 * retransmitted frame once, and to refuse a second, different frame under
 * one label: the receiving side's DUPLICATE_MESSAGE, with no store on the
 * round path), ~150-250 bytes a frame,
 * until forgetTask(taskId); a delivered frame's bytes are held until its
 * digest is taken.
 */
import { generateKeyPairSync } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { computeAddress } from "ethers";
import type { BaseWallet, SigningKey } from "ethers";
import { ConsortError, toConsortError } from "../errors.ts";
import { addressToBytes, describeValue, toChecksumAddress, uint256ToBytes } from "./binary-codec.ts";
import { HttpFrameLink } from "./frame-link.ts";
import type { FrameLink } from "./frame-link.ts";
import {
  CHECKPOINT_RECORD,
  LazyFrameDigest,
  MAX_CHECKPOINT_FRAMES,
  SESSION_END,
  SESSION_START,
  TASK_ID_OFFSET,
  TAG_BYTES,
  decodeSession,
  ed25519RawPublicKey,
  encodeSessionBody,
  frameDigest,
  frameKeyCertificateDigest,
  frameNonce,
  openFrame,
  openStreamFrame,
  parseCheckpoint,
  parseFrame,
  sealCheckpoint,
  sealFrame,
  sealStreamFrame,
  verifyCheckpoint,
  verifyFrameKeyCertificate,
  verifyFrameSignature,
} from "./peer-frame.ts";
import type { ParsedFrame, SealedRecord } from "./peer-frame.ts";
import { FrameKeystream, KEYSTREAM_BYTES, STREAM_KEY_BYTES, STREAM_MAX_PAYLOAD, frameStreamKeys } from "./frame-keystream.ts";
import { assertMessageLabel, labelKey } from "./message-label.ts";
import type { MessageLabel } from "./message-label.ts";
import { StaticSecrets, directionKey } from "./session-keys.ts";
import { HelloNonces, createLinkHello, parseLinkHello, verifyLinkHello } from "./link-hello.ts";

/** "checkpoint": frames are signed in batches (the default, see the top of this file); "frame": each frame carries its own signature. */
export type FrameSigning = "checkpoint" | "frame";

/** What the registry says about a party. */
export interface PeerContact {
  /** 33-byte compressed secp256k1 key registered for encryption. */
  readonly encryptionKey: Uint8Array;
  /** Base URL of its node API. */
  readonly endpoint: string;
}

/** A frame that passed every check. */
export interface AcceptedFrame {
  readonly label: MessageLabel;
  /** The sender's checksummed registered address. */
  readonly from: string;
  readonly payload: Uint8Array;
  /** The frame digest its signature or checkpoint covers. */
  readonly digest: Uint8Array;
}

export interface PeerSessionsOptions {
  chainId: bigint;
  /** The ConsortRegistry the tasks live in. */
  registry: string;
  /** This party's registered Ethereum key (signs one frame-key certificate per task). */
  signingKey: SigningKey | BaseWallet;
  /** This party's registered encryption key (static ECDH with peers' registered keys). */
  encryptionPrivateKey: Uint8Array;
  /** A registered party's encryption key and endpoint; NOT_A_PARTY (or a retryable error) otherwise. */
  lookupParty(address: string): Promise<PeerContact> | PeerContact;
  /**
   * The ordered parties of a task this node knows, undefined if it does not know
   * the task (yet). A known task's parties never change (the registry fixes them
   * at creation), so the answer is used for the whole session.
   */
  taskParties(taskId: bigint): readonly string[] | undefined | Promise<readonly string[] | undefined>;
  /** Where receive() hands accepted frames (store, then wake waiters); a throw rejects the frame. */
  deliver?(frame: AcceptedFrame): void | Promise<void>;
  /** Defaults to "checkpoint". */
  signing?: FrameSigning;
  /** Longest a sent frame waits for its checkpoint; defaults to 50 ms. */
  checkpointIntervalMs?: number;
  /** A checkpoint goes out at once when this many frames wait; defaults to 256. */
  checkpointMaxFrames?: number;
  /** How long one send keeps retrying a peer that is down or not ready. */
  timeoutMs: number;
  /** Deadline of one attempt; defaults to min(30 s, timeoutMs). */
  requestTimeoutMs?: number;
  /** Defaults to a streaming HttpFrameLink. */
  link?: FrameLink;
  onRetry?(info: { to: string; label: string; attempt: number; error: ConsortError }): void;
  /** Failures nobody awaits (a checkpoint that could not be delivered). */
  onError?(error: ConsortError, info: Record<string, unknown>): void;
}

interface TaskKey {
  readonly signer: KeyObject;
  readonly publicKey: Buffer;
  readonly certificate: Buffer;
}

interface Outbound {
  readonly taskId: bigint;
  readonly taskKey: string;
  readonly to: string;
  readonly key: KeyObject;
  /** Where small frames are sealed from (./frame-keystream.ts). */
  readonly keystream: FrameKeystream;
  readonly body: Buffer;
  readonly signer: KeyObject;
  /** "round/gate" -> tag (latin1) and keystream offset (stream-sealed) of every frame sealed in this session. */
  readonly sealed: Map<string, { readonly tag: string; readonly offset: number | undefined }>;
  /** AEAD nonce (latin1) -> the "round/gate" sealed under it: two labels must not share a nonce. */
  readonly nonces: Map<string, string>;
  /** Frames waiting for a checkpoint (their digests are taken when it is made). */
  unsigned: SealedRecord[];
  timer: NodeJS.Timeout | undefined;
  /** Whether prepare() sent the peer an announcement. */
  announced: boolean;
}

const UNCOVERED = 0;
const COVERED = 1;
/** A verified checkpoint listed it before the frame itself arrived. */
const PRECOVERED = 2;
/** Most digests one inbound session tracks (a peer listing junk in checkpoints cannot grow it beyond). */
const MAX_TRACKED_DIGESTS = 1 << 22;

interface Inbound {
  /** Bytes [2, SESSION_END) of its records (the session fields after type and flags). */
  readonly body: Buffer;
  readonly taskId: bigint;
  readonly taskKey: string;
  readonly from: string;
  readonly frameKey: KeyObject;
  readonly key: KeyObject;
  readonly keystream: FrameKeystream;
  readonly digests: Map<string, number>;
  /** Entries of `digests` that are UNCOVERED or PRECOVERED. */
  pending: number;
  /** "round/gate" -> AEAD tag (latin1) of the frame delivered under that label. */
  readonly labels: Map<string, string>;
  /** Frames delivered but not yet digested, by "round/gate" (see #digestDelivered). */
  readonly undigested: Map<string, Uint8Array>;
}

/** An AcceptedFrame whose digest is taken when first asked (a class: one is made per frame received). */
class DeliveredFrame extends LazyFrameDigest implements AcceptedFrame {
  readonly label: MessageLabel;
  readonly from: string;
  readonly payload: Uint8Array;

  constructor(label: MessageLabel, from: string, payload: Uint8Array, unsigned: Uint8Array, digest: Buffer | undefined) {
    super(unsigned, digest);
    this.label = label;
    this.from = from;
    this.payload = payload;
  }
}

/** A frame that passed acceptFrame's checks, with what receive() needs to deliver it once. */
interface Accepted {
  readonly frame: AcceptedFrame;
  readonly session: Inbound;
  /** "round/gate". */
  readonly labelKey: string;
  /** The frame's AEAD tag as latin1: equal for a retransmission, different for another frame under the label. */
  readonly tagKey: string;
  /** The bytes its digest covers, when a checkpoint must sign it (it carries no signature). */
  readonly unsigned: Uint8Array | undefined;
}

interface Coverage {
  uncovered: number;
  readonly waiters: Set<() => void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new ConsortError("CONFIG_INVALID", `${name} must be a positive integer, got ${describeValue(value)}`);
  }
  return value;
}

export class PeerSessions {
  /** This party's checksummed registered address. */
  readonly address: string;
  readonly signing: FrameSigning;
  readonly #o: PeerSessionsOptions;
  readonly #chainId: bigint;
  readonly #registry: string;
  readonly #selfBytes: Uint8Array;
  readonly #chainIdBytes: Uint8Array;
  readonly #registryBytes: Uint8Array;
  readonly #signingKey: SigningKey;
  readonly #secrets: StaticSecrets;
  readonly #link: FrameLink;
  readonly #timeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #checkpointIntervalMs: number;
  readonly #checkpointMaxFrames: number;
  readonly #taskKeys = new Map<string, TaskKey>();
  readonly #outbound = new Map<string, Outbound | Promise<Outbound>>();
  readonly #inbound = new Map<string, Inbound | Promise<Inbound>>();
  /** The session of the last frame accepted from the map (see #accept). */
  #lastInbound: Inbound | undefined;
  /** The outbound session found last (see #outboundSession). */
  #lastOutbound: Outbound | undefined;
  readonly #coverage = new Map<string, Coverage>();
  readonly #addresses = new Map<string, string>();
  readonly #pending = new Set<Promise<void>>();
  readonly #helloNonces = new HelloNonces();
  #closed = false;

  constructor(options: PeerSessionsOptions) {
    this.#o = options;
    if (typeof options.chainId !== "bigint" || options.chainId <= 0n) {
      throw new ConsortError("CONFIG_INVALID", `chainId must be a positive bigint, got ${describeValue(options.chainId)}`);
    }
    this.#chainId = options.chainId;
    this.#chainIdBytes = uint256ToBytes(options.chainId, "chainId");
    this.#registry = toChecksumAddress(options.registry, "registry");
    this.#registryBytes = addressToBytes(this.#registry, "registry");
    // Duck-typed rather than instanceof: Wallet and HDNodeWallet share only BaseWallet, and
    // ethers' ESM and CJS builds have distinct classes.
    const key: unknown = (options.signingKey as { signingKey?: unknown })?.signingKey ?? options.signingKey;
    if (typeof (key as SigningKey)?.sign !== "function" || typeof (key as SigningKey)?.publicKey !== "string") {
      throw new ConsortError("KEY_INVALID", "PeerSessions needs an ethers SigningKey or Wallet");
    }
    this.#signingKey = key as SigningKey;
    this.address = computeAddress(this.#signingKey.publicKey);
    this.#selfBytes = addressToBytes(this.address, "address");
    this.#secrets = new StaticSecrets(options.encryptionPrivateKey);
    this.signing = options.signing ?? "checkpoint";
    if (this.signing !== "checkpoint" && this.signing !== "frame") {
      throw new ConsortError("CONFIG_INVALID", `signing must be "checkpoint" or "frame", got ${describeValue(this.signing)}`);
    }
    this.#timeoutMs = positiveInteger("timeoutMs", options.timeoutMs);
    this.#requestTimeoutMs = positiveInteger("requestTimeoutMs", options.requestTimeoutMs ?? Math.min(30_000, options.timeoutMs));
    this.#checkpointIntervalMs = positiveInteger("checkpointIntervalMs", options.checkpointIntervalMs ?? 50);
    this.#checkpointMaxFrames = positiveInteger("checkpointMaxFrames", options.checkpointMaxFrames ?? 256);
    if (this.#checkpointMaxFrames > MAX_CHECKPOINT_FRAMES) {
      throw new ConsortError("CONFIG_INVALID", `checkpointMaxFrames must be at most ${MAX_CHECKPOINT_FRAMES}, got ${this.#checkpointMaxFrames}`);
    }
    this.#link = options.link ?? new HttpFrameLink();
  }

  // ------------------------------------------------------------------ sending

  /**
   * Seals `payload` for `to` under `label` and delivers it, retrying while the
   * peer is unreachable or not ready until timeoutMs has passed. Rejects with
   * PEER_UNREACHABLE (retryable) after the deadline, PEER_REJECTED (details.remoteCode)
   * if the peer refused it, DUPLICATE_MESSAGE if this label was already sent to
   * `to` with a different payload (its nonce must not be reused), BAD_REQUEST for a
   * bad label, address or payload. Sending the same label and payload again is
   * allowed and sends the identical frame.
   */
  send(label: MessageLabel, to: string, payload: Uint8Array): Promise<void> {
    // No await on the way to the socket once the session is open: a round's frame goes out in the
    // same turn of the event loop as the engine made it (each await is a microtask hop).
    let sealed: SealedRecord | Promise<SealedRecord>;
    let recipient: string;
    try {
      sealed = this.#seal(label, to, payload);
      recipient = this.#checksummed(to);
    } catch (error) {
      return Promise.reject(error);
    }
    if (sealed instanceof Promise) return sealed.then((record) => this.#deliver(recipient, () => labelKey(label), record));
    return this.#deliver(recipient, () => labelKey(label), sealed);
  }

  /**
   * Opens this party's outbound sessions of `taskId` to `peers` ahead of the
   * first frame: the task's frame key, its certificate (an ECDSA signature,
   * ~1-2 ms) and each direction key, which the first round would otherwise
   * wait for. Each peer is then sent an announcement (a checkpoint signing
   * no frame) in the background, so that it checks the certificate (a
   * secp256k1 recovery, ~4 ms) before the first frame instead of on it.
   * Best effort: a peer that cannot be looked up now is left to send(),
   * which retries.
   */
  async prepare(taskId: bigint, peers: readonly string[]): Promise<void> {
    await Promise.all(
      peers.map(async (peer) => {
        let out: Outbound;
        try {
          const to = this.#checksummed(peer);
          if (to === this.address) return;
          out = await this.#outboundSession(taskId, to);
        } catch {
          // send() opens the session itself, with retries and a clear error.
          return;
        }
        if (out.announced) return;
        out.announced = true;
        this.#background(this.#deliver(out.to, () => `the announcement of task ${taskId}`, sealCheckpoint(out.body, [], out.signer)), {
          taskId: taskId.toString(),
          to: out.to,
          frames: 0,
        });
      }),
    );
  }

  /** The sealed record send() would deliver (for callers with their own delivery, and tests). */
  async seal(label: MessageLabel, to: string, payload: Uint8Array): Promise<SealedRecord> {
    return this.#seal(label, to, payload);
  }

  /** seal(), synchronous once the outbound session is open. */
  #seal(label: MessageLabel, to: string, payload: Uint8Array): SealedRecord | Promise<SealedRecord> {
    assertMessageLabel(label);
    if (!(payload instanceof Uint8Array)) {
      throw new ConsortError("BAD_REQUEST", `payload: expected bytes, got ${describeValue(payload)}`, { details: { field: "payload" } });
    }
    const recipient = this.#checksummed(to);
    if (recipient === this.address) {
      throw new ConsortError("BAD_REQUEST", `to: a party does not send frames to itself (${recipient})`, { details: { field: "to" } });
    }
    const out = this.#outboundSession(label.taskId, recipient);
    if (out instanceof Promise) return out.then((session) => this.#sealIn(session, label, recipient, payload));
    return this.#sealIn(out, label, recipient, payload);
  }

  #sealIn(out: Outbound, label: MessageLabel, recipient: string, payload: Uint8Array): SealedRecord {
    const key = `${label.round}/${label.gate}`;
    const prior = out.sealed.get(key);
    const signer = this.signing === "frame" ? out.signer : undefined;
    // Small payloads are sealed from the session's keystream, at its next offset (or, sealing a label
    // again, at the offset it had: the same payload then gives the identical frame).
    const offset = prior !== undefined ? prior.offset : payload.length <= STREAM_MAX_PAYLOAD && out.keystream.position + STREAM_KEY_BYTES + payload.length <= KEYSTREAM_BYTES ? out.keystream.position : undefined;
    let record: SealedRecord;
    let nonceKey: string | undefined;
    if (offset !== undefined) {
      record = sealStreamFrame({ sessionBody: out.body, keystream: out.keystream, offset, round: label.round, gate: label.gate, payload, ...(signer === undefined ? {} : { signer }) });
    } else {
      const gate = Buffer.from(label.gate, "latin1");
      const nonce = frameNonce(label.round, gate);
      nonceKey = nonce.toString("latin1");
      const holder = out.nonces.get(nonceKey);
      if (holder !== undefined && holder !== key) {
        // FNV-1a-64 of two gates collided (~2^-64 a pair): the second label cannot be sealed under this key.
        throw new ConsortError("DUPLICATE_MESSAGE", `${labelKey(label)} would reuse the nonce of round/gate ${holder}; a nonce is used once per key`, {
          details: { label: labelKey(label), to: recipient },
        });
      }
      record = sealFrame({ sessionBody: out.body, key: out.key, round: label.round, gate, payload, nonce, ...(signer === undefined ? {} : { signer }) });
    }
    // The tag stands for the frame: under one key and nonce (or offset) the same payload gives
    // the same tag, another payload another one; the digest is left for the checkpoint.
    const tagKey = record.tag!.toString("latin1");
    if (prior !== undefined) {
      if (prior.tag === tagKey) return record;
      throw new ConsortError(
        "DUPLICATE_MESSAGE",
        `${labelKey(label)} was already sent to ${recipient} with a different payload; a label is sealed once (its nonce must not repeat)`,
        { details: { label: labelKey(label), to: recipient } },
      );
    }
    out.sealed.set(key, { tag: tagKey, offset });
    if (nonceKey !== undefined) out.nonces.set(nonceKey, key);
    if (this.signing === "checkpoint") this.#awaitCheckpoint(out, record);
    return record;
  }

  #checksummed(address: string): string {
    let checksummed = this.#addresses.get(address);
    if (checksummed === undefined) {
      checksummed = toChecksumAddress(address, "to");
      if (this.#addresses.size > 10_000) this.#addresses.clear();
      this.#addresses.set(address, checksummed);
    }
    return checksummed;
  }

  /** The party's contact: a value when lookupParty has it at hand, else a promise. */
  #lookup(address: string): PeerContact | Promise<PeerContact> {
    const found = this.#o.lookupParty(address);
    return found instanceof Promise ? found.then((contact) => this.#checkContact(address, contact)) : this.#checkContact(address, found);
  }

  #checkContact(address: string, contact: PeerContact): PeerContact {
    if (contact === null || typeof contact !== "object" || !(contact.encryptionKey instanceof Uint8Array) || typeof contact.endpoint !== "string") {
      throw new ConsortError("INTERNAL", `lookupParty(${address}) did not return an encryption key and an endpoint`);
    }
    return contact;
  }

  /** The Ed25519 frame key of a task and its certificate by the registered key, made on first use. */
  #taskKey(taskId: bigint): TaskKey {
    const id = taskId.toString();
    let taskKey = this.#taskKeys.get(id);
    if (taskKey === undefined) {
      const { privateKey, publicKey } = generateKeyPairSync("ed25519");
      const raw = ed25519RawPublicKey(publicKey);
      const digest = frameKeyCertificateDigest(this.#chainId, this.#registry, taskId, this.address, raw);
      // ethers signs canonical low-s with v in {27, 28}, the only form verification accepts.
      const certificate = Buffer.from(this.#signingKey.sign(digest).serialized.slice(2), "hex");
      taskKey = { signer: privateKey, publicKey: raw, certificate };
      this.#taskKeys.set(id, taskKey);
    }
    return taskKey;
  }

  #outboundSession(taskId: bigint, to: string): Outbound | Promise<Outbound> {
    // A round sends to the same peer of the same task as the last one did: no key string to build.
    const last = this.#lastOutbound;
    if (last !== undefined && last.taskId === taskId && last.to === to) return last;
    const id = `${taskId}/${to}`;
    const cached = this.#outbound.get(id);
    if (cached !== undefined) {
      if (!(cached instanceof Promise)) this.#lastOutbound = cached;
      return cached;
    }
    const opening = (async (): Promise<Outbound> => {
      const contact = await this.#lookup(to);
      const taskKey = this.#taskKey(taskId);
      const toBytes = addressToBytes(to, "to");
      const key = directionKey({
        shared: this.#secrets.sharedSecret(contact.encryptionKey),
        chainId: this.#chainIdBytes,
        registry: this.#registryBytes,
        taskId: uint256ToBytes(taskId, "label.taskId"),
        from: this.#selfBytes,
        to: toBytes,
        frameKey: taskKey.publicKey,
      });
      const body = encodeSessionBody({
        chainId: this.#chainId,
        registry: this.#registry,
        taskId,
        from: this.address,
        to,
        frameKey: taskKey.publicKey,
        certificate: taskKey.certificate,
      });
      return {
        taskId,
        taskKey: taskId.toString(),
        to,
        key,
        keystream: new FrameKeystream(frameStreamKeys(key).cipherKey),
        body,
        signer: taskKey.signer,
        sealed: new Map(),
        nonces: new Map(),
        unsigned: [],
        timer: undefined,
        announced: false,
      };
    })();
    this.#outbound.set(id, opening);
    opening.then(
      (session) => {
        if (this.#outbound.get(id) === opening) this.#outbound.set(id, session);
      },
      () => {
        if (this.#outbound.get(id) === opening) this.#outbound.delete(id);
      },
    );
    return opening;
  }

  /**
   * Delivers with retries until the deadline (the semantics of the former
   * PeerChannel.send). The first attempt starts synchronously when the
   * recipient's contact is cached; retries wait and look it up again.
   */
  #deliver(to: string, what: () => string, record: SealedRecord): Promise<void> {
    const deadline = Date.now() + this.#timeoutMs;
    if (this.#closed) return this.#retry(to, what, record, deadline, 1);
    let contact: PeerContact | Promise<PeerContact>;
    try {
      contact = this.#lookup(to);
    } catch (error) {
      return this.#retry(to, what, record, deadline, 1, { error, endpoint: undefined });
    }
    if (contact instanceof Promise) return this.#retry(to, what, record, deadline, 1);
    const endpoint = contact.endpoint;
    return this.#link
      .deliver(endpoint, record, Math.max(1, Math.min(this.#requestTimeoutMs, this.#timeoutMs)), this.#helloFor(to, record, contact))
      .catch((error: unknown) => this.#retry(to, what, record, deadline, 1, { error, endpoint }));
  }

  /** Attempts `attempt`, `attempt + 1`, ... until one delivers or the deadline passes; `failed` is an attempt already made. */
  async #retry(
    to: string,
    what: () => string,
    record: SealedRecord,
    deadline: number,
    attempt: number,
    failed?: { error: unknown; endpoint: string | undefined },
  ): Promise<void> {
    let delay = 50;
    let pending = failed;
    for (; ; attempt++) {
      let endpoint: string | undefined;
      try {
        if (pending !== undefined) {
          endpoint = pending.endpoint;
          const { error } = pending;
          pending = undefined;
          throw error;
        }
        if (this.#closed) throw new ConsortError("PROTOCOL_ABORTED", "the peer sessions are closed");
        const contact = await this.#lookup(to);
        endpoint = contact.endpoint;
        await this.#link.deliver(endpoint, record, Math.max(1, Math.min(this.#requestTimeoutMs, deadline - Date.now())), this.#helloFor(to, record, contact));
        return;
      } catch (raw) {
        const error = toConsortError(raw);
        if (!error.retryable || this.#closed || Date.now() + delay > deadline) {
          const details: Record<string, unknown> = { to, label: what() };
          if (error.details.remoteCode !== undefined) details.remoteCode = error.details.remoteCode;
          throw new ConsortError(
            error.retryable ? "PEER_UNREACHABLE" : error.code,
            `sending ${what()} to party ${to}${endpoint === undefined ? "" : ` at ${endpoint}`} failed: ${error.message}`,
            { retryable: error.retryable, cause: error, details },
          );
        }
        this.#o.onRetry?.({ to, label: what(), attempt, error });
        await sleep(delay);
        delay = Math.min(delay * 2, 1_000);
      }
    }
  }

  /** The link hello a new stream to `to` opens with, bound to the task of `record` (its session fields). */
  #helloFor(to: string, record: SealedRecord, contact: PeerContact): () => string {
    return () => {
      // parts[0] starts with the stream's u32 length prefix, then the record's session fields.
      const taskId = BigInt(`0x${record.parts[0]!.toString("hex", 4 + TASK_ID_OFFSET, 4 + TASK_ID_OFFSET + 32)}`);
      return createLinkHello(
        { chainId: this.#chainId, registry: this.#registry, taskId, from: this.address, to },
        this.#secrets.sharedSecret(contact.encryptionKey),
      );
    };
  }

  /**
   * Checks a link hello (./link-hello.ts) and returns the sender's address:
   * for the frame routes, before a peer's stream is upgraded. In order:
   * structure (BAD_REQUEST), chain and registry (BAD_REQUEST), recipient is
   * this party (NOT_A_PARTY), task known (UNKNOWN_TASK, retryable), both are
   * parties of it (NOT_A_PARTY), MAC, freshness and nonce (BAD_SIGNATURE).
   * Only the last step needs the sender's registered key, so forged hellos
   * naming strangers or unknown tasks are refused without a registry lookup.
   */
  async authenticateLink(text: string): Promise<string> {
    const hello = parseLinkHello(text);
    if (hello.chainId !== this.#chainId || hello.registry !== this.#registry) {
      throw new ConsortError("BAD_REQUEST", `the link hello is for chain ${hello.chainId} registry ${hello.registry}; this node serves chain ${this.#chainId} registry ${this.#registry}`, {
        details: { field: "consort-link-hello" },
      });
    }
    if (hello.to !== this.address) {
      throw new ConsortError("NOT_A_PARTY", `the link hello is addressed to ${hello.to}, not to this party ${this.address}`, { details: { to: hello.to } });
    }
    const taskId = hello.taskId.toString();
    const parties = await this.#o.taskParties(hello.taskId);
    if (parties === undefined) {
      throw new ConsortError("UNKNOWN_TASK", `task ${taskId} is unknown to party ${this.address} (not created, not confirmed yet, or this party is not in it)`, {
        retryable: true,
        details: { taskId },
      });
    }
    const member = (address: string) => parties.some((p) => p.toLowerCase() === address.toLowerCase());
    if (!member(hello.from) || !member(this.address)) {
      throw new ConsortError("NOT_A_PARTY", `${hello.from} and ${this.address} are not both parties of task ${taskId}`, { details: { taskId, from: hello.from } });
    }
    const contact = await this.#lookup(hello.from);
    verifyLinkHello(hello, this.#secrets.sharedSecret(contact.encryptionKey), this.#helloNonces);
    return hello.from;
  }

  #awaitCheckpoint(out: Outbound, record: SealedRecord): void {
    out.unsigned.push(record);
    if (out.unsigned.length >= this.#checkpointMaxFrames) this.#emitCheckpoint(out);
    else if (out.timer === undefined) out.timer = setTimeout(() => this.#emitCheckpoint(out), this.#checkpointIntervalMs);
  }

  /** Tracks a delivery nobody awaits (flush() and close() wait for it); its failure goes to onError. */
  #background(delivery: Promise<void>, info: Record<string, unknown>): void {
    const tracked = delivery.catch((raw: unknown) => this.#o.onError?.(toConsortError(raw), info));
    this.#pending.add(tracked);
    void tracked.finally(() => this.#pending.delete(tracked));
  }

  /** Signs what waits in `out` and delivers it in the background. */
  #emitCheckpoint(out: Outbound): void {
    if (out.timer !== undefined) {
      clearTimeout(out.timer);
      out.timer = undefined;
    }
    while (out.unsigned.length > 0) {
      const batch = out.unsigned.splice(0, MAX_CHECKPOINT_FRAMES);
      const record = sealCheckpoint(
        out.body,
        batch.map((r) => r.digest!),
        out.signer,
      );
      this.#background(this.#deliver(out.to, () => `a checkpoint of ${batch.length} frames of task ${out.taskId}`, record), {
        taskId: out.taskId.toString(),
        to: out.to,
        frames: batch.length,
      });
    }
  }

  /**
   * Signs and sends the checkpoints waiting for `taskId` (every task if omitted)
   * now; resolves once they are delivered or have failed (onError).
   */
  async flush(taskId?: bigint): Promise<void> {
    const id = taskId?.toString();
    for (const entry of this.#outbound.values()) {
      if (entry instanceof Promise) continue;
      if (id === undefined || entry.taskKey === id) this.#emitCheckpoint(entry);
    }
    await Promise.all([...this.#pending]);
  }

  // ---------------------------------------------------------------- receiving

  /**
   * Takes one record from the wire: a frame is checked by acceptFrame and
   * handed to `deliver`; a checkpoint by acceptCheckpoint.
   */
  async receive(record: Uint8Array): Promise<void> {
    await this.take(record);
  }

  /**
   * receive(), synchronous when it can be: returns nothing once a frame of an
   * open session is delivered, throws what receive() rejects with, and
   * returns a promise only when it must wait (a session to open, a
   * checkpoint, an asynchronous deliver). The frame routes call this: from
   * the socket to the waiting round without a microtask hop.
   */
  take(record: Uint8Array): void | Promise<void> {
    if (record instanceof Uint8Array && record[0] === CHECKPOINT_RECORD) return this.acceptCheckpoint(record);
    if (this.#o.deliver === undefined) throw new ConsortError("INTERNAL", "PeerSessions has no deliver callback");
    const accepted = this.#accept(record);
    if (accepted instanceof Promise) return accepted.then((a) => this.#handOver(a));
    return this.#handOver(accepted);
  }

  #handOver(accepted: Accepted): void | Promise<void> {
    const { frame, session, labelKey: key, tagKey } = accepted;
    // A retransmission of a frame already delivered (its acknowledgement was lost): acknowledge, deliver nothing.
    if (session.labels.get(key) === tagKey) return;
    const delivered = this.#o.deliver!(frame);
    if (delivered instanceof Promise) return delivered.then(() => this.#delivered(accepted));
    this.#delivered(accepted);
  }

  /** Records a delivered frame: its label's tag, and (unsigned) that a checkpoint must cover it. */
  #delivered({ session, labelKey: key, tagKey, unsigned }: Accepted): void {
    session.labels.set(key, tagKey);
    if (unsigned !== undefined) session.undigested.set(key, unsigned);
  }

  /**
   * Every check on one frame, in order: structure (BAD_REQUEST naming the field),
   * chain and registry (BAD_REQUEST), recipient is this party (NOT_A_PARTY), task
   * known (UNKNOWN_TASK, retryable), sender and recipient are parties of it
   * (NOT_A_PARTY), certificate by the sender's registered key and the frame's own
   * signature if it has one (BAD_SIGNATURE), AEAD (DECRYPTION_FAILED), and no
   * different frame delivered under its label before (DUPLICATE_MESSAGE).
   */
  async acceptFrame(record: Uint8Array): Promise<AcceptedFrame> {
    return (await this.#accept(record)).frame;
  }

  /** acceptFrame's checks; synchronous once the frame's session is open. */
  #accept(record: Uint8Array): Accepted | Promise<Accepted> {
    const frame = parseFrame(record);
    // Frames of one session follow each other: comparing its 221 session bytes is cheaper than
    // making them a string to look the session up.
    const last = this.#lastInbound;
    if (last !== undefined && frame.bytes.compare(last.body, 0, last.body.length, SESSION_START, SESSION_END) === 0) return this.#acceptIn(last, frame);
    const cached = this.#inbound.get(frame.sessionKey);
    if (cached === undefined || cached instanceof Promise) return this.#inboundSession(frame.sessionKey, frame.bytes).then((session) => this.#acceptIn(session, frame));
    this.#lastInbound = cached;
    return this.#acceptIn(cached, frame);
  }

  #acceptIn(session: Inbound, frame: ParsedFrame): Accepted {
    let digest: Buffer | undefined;
    if (frame.signature !== undefined) {
      digest = frameDigest(frame.unsigned);
      if (!verifyFrameSignature(session.frameKey, digest, frame.signature)) {
        throw new ConsortError("BAD_SIGNATURE", `the frame signature of ${session.from} for task ${session.taskId} does not verify`, {
          details: { from: session.from, taskId: session.taskId.toString() },
        });
      }
    }
    const payload = frame.offset === undefined ? openFrame(session.key, frame) : openStreamFrame(session.keystream, frame);
    const key = `${frame.round}/${frame.gate}`;
    const body = frame.ciphertextAndTag;
    const tagKey = body.toString("latin1", body.length - TAG_BYTES);
    const prior = session.labels.get(key);
    if (prior !== undefined && prior !== tagKey) {
      const label = labelKey({ taskId: session.taskId, round: frame.round, gate: frame.gate });
      throw new ConsortError("DUPLICATE_MESSAGE", `party ${session.from} already sent a different message for ${label}`, {
        details: { label, from: session.from },
      });
    }
    const unsigned = frame.unsigned;
    return {
      frame: new DeliveredFrame({ taskId: session.taskId, round: frame.round, gate: frame.gate }, session.from, payload, unsigned, digest),
      session,
      labelKey: key,
      tagKey,
      unsigned: frame.signature === undefined ? unsigned : undefined,
    };
  }

  /**
   * Checks a checkpoint (structure, session as for a frame, signature by the
   * certified frame key: BAD_SIGNATURE) and marks the frames it lists as signed.
   */
  async acceptCheckpoint(record: Uint8Array): Promise<void> {
    const checkpoint = parseCheckpoint(record);
    const cached = this.#inbound.get(checkpoint.sessionKey);
    const session = cached === undefined || cached instanceof Promise ? await this.#inboundSession(checkpoint.sessionKey, checkpoint.bytes) : cached;
    // A bad checkpoint is refused but poisons nothing: its session fields are public, so anyone could forge one.
    if (!verifyCheckpoint(session.frameKey, checkpoint)) {
      throw new ConsortError("BAD_SIGNATURE", `checkpoint signature of ${session.from} for task ${session.taskId} does not verify`, {
        details: { from: session.from, taskId: session.taskId.toString() },
      });
    }
    // The usual case on one ordered connection: the checkpoint lists exactly the frames delivered
    // since the last one, in their order, and nothing is owed from before. Then they are covered
    // as they stand, and no digest needs remembering.
    let digested: Buffer[] | undefined;
    const listed = checkpoint.digests;
    if (session.pending === 0 && listed.length > 0 && listed.length === session.undigested.size) {
      digested = [];
      let inOrder = true;
      for (const unsigned of session.undigested.values()) {
        const d = frameDigest(unsigned);
        if (inOrder && !d.equals(listed[digested.length]!)) inOrder = false;
        digested.push(d);
      }
      if (inOrder) {
        session.undigested.clear();
        return;
      }
    }
    this.#digestDelivered(session, digested);
    const coverage = this.#coverageOf(session.taskKey);
    for (const d of listed) {
      const k = d.toString("latin1");
      const state = session.digests.get(k);
      if (state === UNCOVERED) {
        session.digests.set(k, COVERED);
        session.pending--;
        coverage.uncovered--;
      } else if (state === undefined) {
        if (session.digests.size >= MAX_TRACKED_DIGESTS) {
          throw new ConsortError("BAD_REQUEST", `checkpoints of ${session.from} list more than ${MAX_TRACKED_DIGESTS} frames`, {
            details: { field: "digests" },
          });
        }
        session.digests.set(k, PRECOVERED);
        session.pending++;
      }
    }
    if (coverage.uncovered === 0) this.#wake(coverage);
  }

  /**
   * Takes the digests of the frames `session` delivered since the last call
   * and counts the ones no checkpoint covers yet. Done when a checkpoint
   * arrives or settled() asks, not per frame: a batch of small hashes runs
   * warm, one on a loaded node's round path measured ~25 µs instead of ~3.
   * `digested`: their digests in delivery order, when the caller took them.
   */
  #digestDelivered(session: Inbound, digested?: readonly Buffer[]): void {
    if (session.undigested.size === 0) return;
    const coverage = this.#coverageOf(session.taskKey);
    let i = 0;
    for (const unsigned of session.undigested.values()) {
      const k = (digested?.[i++] ?? frameDigest(unsigned)).toString("latin1");
      const state = session.digests.get(k);
      if (state === undefined) {
        session.digests.set(k, UNCOVERED);
        session.pending++;
        coverage.uncovered++;
      } else if (state === PRECOVERED) {
        session.digests.set(k, COVERED);
        session.pending--;
      }
    }
    session.undigested.clear();
  }

  /** #digestDelivered for every open session of `taskKey`. */
  #digestTask(taskKey: string): void {
    for (const entry of this.#inbound.values()) {
      if (!(entry instanceof Promise) && entry.taskKey === taskKey) this.#digestDelivered(entry);
    }
  }

  #coverageOf(taskKey: string): Coverage {
    let coverage = this.#coverage.get(taskKey);
    if (coverage === undefined) {
      coverage = { uncovered: 0, waiters: new Set() };
      this.#coverage.set(taskKey, coverage);
    }
    return coverage;
  }

  #wake(coverage: Coverage): void {
    for (const wake of coverage.waiters) wake();
    coverage.waiters.clear();
  }

  #inboundSession(sessionKey: string, record: Buffer): Promise<Inbound> {
    const cached = this.#inbound.get(sessionKey);
    if (cached !== undefined) return Promise.resolve(cached);
    const opening = this.#openInbound(record);
    this.#inbound.set(sessionKey, opening);
    opening.then(
      (session) => {
        if (this.#inbound.get(sessionKey) === opening) this.#inbound.set(sessionKey, session);
      },
      // Not cached: the task may become known, or the next record may be genuine.
      () => {
        if (this.#inbound.get(sessionKey) === opening) this.#inbound.delete(sessionKey);
      },
    );
    return opening;
  }

  async #openInbound(record: Buffer): Promise<Inbound> {
    const session = decodeSession(record);
    if (session.chainId !== this.#chainId || session.registry !== this.#registry) {
      throw new ConsortError(
        "BAD_REQUEST",
        `the frame is for chain ${session.chainId} registry ${session.registry}; this node serves chain ${this.#chainId} registry ${this.#registry}`,
        { details: { field: "chainId" } },
      );
    }
    if (session.to !== this.address) {
      throw new ConsortError("NOT_A_PARTY", `the frame is addressed to ${session.to}, not to this party ${this.address}`, {
        details: { to: session.to },
      });
    }
    const taskId = session.taskId.toString();
    const parties = await this.#o.taskParties(session.taskId);
    if (parties === undefined) {
      throw new ConsortError(
        "UNKNOWN_TASK",
        `task ${taskId} is unknown to party ${this.address} (not created, not confirmed yet, or this party is not in it)`,
        { retryable: true, details: { taskId } },
      );
    }
    const member = (address: string) => parties.some((p) => p.toLowerCase() === address.toLowerCase());
    if (!member(session.from)) {
      throw new ConsortError("NOT_A_PARTY", `${session.from} is not a party of task ${taskId}`, { details: { taskId, from: session.from } });
    }
    if (!member(this.address)) {
      throw new ConsortError("NOT_A_PARTY", `this party ${this.address} is not a party of task ${taskId}`, { details: { taskId } });
    }
    const frameKey = verifyFrameKeyCertificate(session);
    const contact = await this.#lookup(session.from);
    const key = directionKey({
      shared: this.#secrets.sharedSecret(contact.encryptionKey),
      chainId: this.#chainIdBytes,
      registry: this.#registryBytes,
      taskId: uint256ToBytes(session.taskId, "taskId"),
      from: addressToBytes(session.from, "from"),
      to: this.#selfBytes,
      frameKey: session.frameKey,
    });
    return {
      body: Buffer.from(record.subarray(SESSION_START, SESSION_END)),
      taskId: session.taskId,
      taskKey: taskId,
      from: session.from,
      frameKey,
      key,
      keystream: new FrameKeystream(frameStreamKeys(key).cipherKey),
      digests: new Map(),
      pending: 0,
      labels: new Map(),
      undigested: new Map(),
    };
  }

  /**
   * Resolves once every frame accepted so far for `taskId` is signed (by itself
   * or by a verified checkpoint), so the frames behind a result are third-party
   * verifiable before the node attests it. Sends this node's own waiting
   * checkpoints for the task first (its peers wait on them). PROTOCOL_TIMEOUT
   * (retryable, naming the senders still owing checkpoints) after `timeoutMs`.
   */
  async settled(taskId: bigint, timeoutMs = this.#timeoutMs): Promise<void> {
    void this.flush(taskId);
    this.#digestTask(taskId.toString());
    const coverage = this.#coverage.get(taskId.toString());
    if (coverage === undefined || coverage.uncovered === 0) return;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        coverage.waiters.delete(done);
        const owing = new Set<string>();
        for (const entry of this.#inbound.values()) {
          if (entry instanceof Promise || entry.taskKey !== taskId.toString()) continue;
          for (const state of entry.digests.values()) {
            if (state === UNCOVERED) {
              owing.add(entry.from);
              break;
            }
          }
        }
        reject(
          new ConsortError("PROTOCOL_TIMEOUT", `task ${taskId}: ${coverage.uncovered} frames from ${[...owing].join(", ")} are still unsigned after ${timeoutMs} ms`, {
            retryable: true,
            details: { taskId: taskId.toString(), uncovered: coverage.uncovered, from: [...owing] },
          }),
        );
      }, timeoutMs);
      coverage.waiters.add(done);
    });
  }

  // ---------------------------------------------------------------- lifecycle

  /** Drops every key, session and record of `taskId` (finalized or expired: its frames are no longer needed). */
  forgetTask(taskId: bigint): void {
    const id = taskId.toString();
    for (const [key, entry] of this.#outbound) {
      if (entry instanceof Promise || entry.taskKey !== id) continue;
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      this.#outbound.delete(key);
    }
    for (const [key, entry] of this.#inbound) {
      if (!(entry instanceof Promise) && entry.taskKey === id) this.#inbound.delete(key);
    }
    if (this.#lastInbound?.taskKey === id) this.#lastInbound = undefined;
    if (this.#lastOutbound?.taskKey === id) this.#lastOutbound = undefined;
    this.#taskKeys.delete(id);
    const coverage = this.#coverage.get(id);
    if (coverage !== undefined) {
      coverage.uncovered = 0;
      this.#wake(coverage);
      this.#coverage.delete(id);
    }
  }

  /** Sends waiting checkpoints (waiting at most `graceMs` for them), then closes every connection. */
  async close(graceMs = 1_000): Promise<void> {
    if (this.#closed) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    this.#closed = true;
    for (const entry of this.#outbound.values()) {
      if (!(entry instanceof Promise) && entry.timer !== undefined) clearTimeout(entry.timer);
    }
    await this.#link.close();
  }
}
