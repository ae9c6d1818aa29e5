/**
 * Peer frames: the labelled, encrypted, signed records in which the parties
 * of a task exchange protocol messages, cheap enough for a round every few
 * hundred microseconds (per-message ECIES and ECDSA, which they replaced,
 * cost milliseconds a message); data owners keep the ECIES envelope of
 * ./share-submission.ts.
 *
 * Two records, both binary, big-endian:
 *
 *   offset  size  field                 (a "session": one task, one sender run, one recipient)
 *   0       1     record type           0x01 frame, 0x02 checkpoint
 *   1       1     flags                 frame: bit 0 = carries its own signature,
 *                                       bit 1 = stream-sealed (see below); checkpoint: 0
 *   2       32    chainId               uint256
 *   34      20    registry              address of the ConsortRegistry
 *   54      32    taskId                uint256
 *   86      20    from                  sender's registered address
 *   106     20    to                    recipient's registered address
 *   126     32    frameKey              the sender's Ed25519 key for this task
 *   158     65    certificate           r || s || v (v in {27, 28}, low s): the sender's
 *                                       registered Ethereum key signs frameKey for this
 *                                       task (EIP-712, see frameKeyCertificateDigest)
 *   -- frame --
 *   223     4     round                 uint32
 *   227     1     gate length L         1..128
 *   228     L     gate                  visible ASCII (label = task, round, gate range)
 *   228+L   4     C                     payload length + 16
 *   232+L   8     offset                only with flag bit 1: uint64, the frame's place in
 *                                       the session's keystream
 *   H       C     ciphertext || tag     H = 232+L, or 240+L with flag bit 1.
 *                                       Without flag bit 1: ChaCha20-Poly1305 (RFC 8439),
 *                                       nonce frameNonce(round, gate), AAD = bytes [0, H).
 *                                       With it: payload XOR the session's ChaCha20
 *                                       keystream from offset + 32, tag = Poly1305 under
 *                                       the keystream's 32 bytes at offset, of bytes
 *                                       [0, H + C - 16) (./frame-keystream.ts)
 *   H+C     64    signature             only with flag bit 0: Ed25519(frameKey,
 *                                       "consort/frame-signature/v1" || digest)
 *   -- checkpoint --
 *   223     4     count m               0..MAX_CHECKPOINT_FRAMES (0: an announcement, signing
 *                                       nothing, that lets the recipient open the session
 *                                       before the first frame: PeerSessions.prepare)
 *   227     32m   digests of the frames it signs
 *   227+32m 64    signature             Ed25519(frameKey, "consort/frame-checkpoint/v1" || bytes [0, 227+32m))
 *
 *   digest = the first 32 bytes of BLAKE2b-512 (RFC 7693) of bytes [0, H+C): the whole
 *            frame but its signature. It is only ever signed after a domain tag
 *            (frame signature or checkpoint), and the record type is its first byte.
 *
 * Keys (./session-keys.ts): the payload key is per task and direction, from
 * static-static ECDH between the two parties' registered encryption keys
 * and HKDF bound to chain, registry, task, both addresses, the direction and
 * the sender's frame key. The nonce is derived from the label
 * (frameNonce), so it never repeats under one key as long as a sender seals
 * each label once (PeerSessions refuses a second, different payload); the
 * fresh frame key of every sender run makes the key itself fresh after a
 * restart, when the in-memory record of sealed labels is gone.
 *
 * Signatures: the registered key signs once per task (the certificate),
 * delegating to an Ed25519 key; the frame key then signs either each frame
 * or checkpoints listing frame digests. Measured here (2 vCPUs, OpenSSL 3.5
 * through node:crypto): ECDSA secp256k1 ~1,100 µs to sign and ~900 µs to
 * verify, which alone is 4x the round budget; Ed25519 ~85 µs / ~230 µs;
 * P-256 ~115 µs / ~200 µs (same total, randomised, so Ed25519). Six frames
 * per round of three parties make even Ed25519 cost ~1.9 ms of CPU per
 * round if every frame is signed and checked, hence checkpoints: one
 * signature per session every few milliseconds covers all frames sent
 * meanwhile. Either way every frame is verifiable by a third party from
 * the chain's registered address alone (verifyFrameEvidence): certificate ->
 * frame key -> frame signature or checkpoint listing the frame's digest.
 * Between them the AEAD already authenticates each frame to its recipient
 * (only the two parties can derive the direction key), which is what lets a
 * recipient use a frame before its checkpoint arrives; PeerSessions.settled
 * then holds the result back until every frame used is signed.
 *
 * The digest is BLAKE2b-512 (truncated) because it is the fastest collision-
 * resistant hash node:crypto offers on CPUs without SHA extensions: 3.2 MB
 * in ~5 ms against ~8.5 ms for SHA-256 here, and a 3.2 MB frame is hashed by
 * both ends. One hash over the frame as it lies in memory, with no copy and
 * no second hash, also keeps a 32-byte frame's digest at ~2 µs.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  hash,
  sign as cryptoSign,
  verify as cryptoVerify,
} from "node:crypto";
import type { KeyObject } from "node:crypto";
import { TypedDataEncoder, getAddress } from "ethers";
import { ConsortError } from "../errors.ts";
import { describeValue, toChecksumAddress, uint256ToBytes, addressToBytes } from "./binary-codec.ts";
import { KEYSTREAM_BYTES, STREAM_KEY_BYTES, STREAM_MAX_PAYLOAD, streamTagInto, streamTagMatches } from "./frame-keystream.ts";
import type { FrameKeystream } from "./frame-keystream.ts";
import { MAX_GATE_BYTES } from "./message-label.ts";
import { recoverSigner } from "./recover-signer.ts";
import type { MessageLabel } from "./message-label.ts";

export const FRAME_RECORD = 0x01;
export const CHECKPOINT_RECORD = 0x02;
/** Frame flag: the frame carries its own Ed25519 signature. */
export const FRAME_FLAG_SIGNED = 0x01;
/**
 * Frame flag: sealed from the session's keystream (payloads up to
 * STREAM_MAX_PAYLOAD bytes, ./frame-keystream.ts), with an offset field;
 * without it, ChaCha20-Poly1305 under the label's nonce.
 */
export const FRAME_FLAG_STREAM = 0x02;
/** Bytes of the offset field of a stream-sealed frame. */
const OFFSET_BYTES = 8;

const OFFSET_CHAIN_ID = 2;
/** Bytes [SESSION_START, SESSION_END) are the session fields after type and flags. */
export const SESSION_START = OFFSET_CHAIN_ID;
const OFFSET_REGISTRY = 34;
/** Where a record's taskId (uint256) starts. */
export const TASK_ID_OFFSET = 54;
const OFFSET_TASK_ID = TASK_ID_OFFSET;
const OFFSET_FROM = 86;
const OFFSET_TO = 106;
const OFFSET_FRAME_KEY = 126;
const OFFSET_CERTIFICATE = 158;
/** Bytes [0, SESSION_END) are the same for every record of one session. */
export const SESSION_END = 223;
/** Bytes of the session fields after type and flags. */
export const SESSION_BODY_BYTES = SESSION_END - OFFSET_CHAIN_ID;
export const CERTIFICATE_BYTES = 65;
export const FRAME_KEY_BYTES = 32;
export const TAG_BYTES = 16;
export const SIGNATURE_BYTES = 64;
export const DIGEST_BYTES = 32;
/** Most frames one checkpoint may sign. */
export const MAX_CHECKPOINT_FRAMES = 4096;
/** Bytes a frame adds to its payload besides the gate: session, round, gate length, C, offset (at most), tag. */
export const FRAME_OVERHEAD_BYTES = SESSION_END + 4 + 1 + 4 + OFFSET_BYTES + TAG_BYTES;
/** Upper bound of a frame's size around a payload of `payloadBytes` (longest gate, with a signature). */
export function maxFrameBytes(payloadBytes: number): number {
  return FRAME_OVERHEAD_BYTES + MAX_GATE_BYTES + payloadBytes + SIGNATURE_BYTES;
}

const FRAME_SIGNATURE_DOMAIN = Buffer.from("consort/frame-signature/v1", "latin1");
const CHECKPOINT_DOMAIN = Buffer.from("consort/frame-checkpoint/v1", "latin1");
const DIGEST_HASH = "blake2b512";
/** Frames up to this size are sent as one buffer; larger ones as header, ciphertext and trailer without copying. */
const SINGLE_BUFFER_LIMIT = 16 * 1024;

/**
 * The EIP-712 type of a frame-key certificate. A separate domain name from
 * the registry's ("ConsortRegistry") so nothing signed here is ever an
 * attestation, and a typed struct so wallets and contracts can read it.
 */
export const FRAME_KEY_TYPES = {
  FrameKey: [
    { name: "taskId", type: "uint256" },
    { name: "party", type: "address" },
    { name: "ed25519PublicKey", type: "bytes32" },
  ],
} as const;

export function frameKeyDomain(chainId: bigint, registry: string) {
  return { name: "Consort peer frames", version: "1", chainId, verifyingContract: registry };
}

/** EIP-712 digest the registered key signs to delegate frame signing for one task to `frameKey`. */
export function frameKeyCertificateDigest(chainId: bigint, registry: string, taskId: bigint, party: string, frameKey: Uint8Array): Uint8Array {
  const types = { FrameKey: FRAME_KEY_TYPES.FrameKey.map((f) => ({ ...f })) };
  const hex = TypedDataEncoder.hash(frameKeyDomain(chainId, registry), types, {
    taskId,
    party,
    ed25519PublicKey: Buffer.from(frameKey),
  });
  return Buffer.from(hex.slice(2), "hex");
}

function badRequest(field: string, message: string): ConsortError {
  return new ConsortError("BAD_REQUEST", `${field}: ${message}`, { details: { field } });
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The fields every record of one session repeats. */
export interface FrameSession {
  chainId: bigint;
  registry: string;
  taskId: bigint;
  from: string;
  to: string;
  /** 32-byte Ed25519 public key. */
  frameKey: Uint8Array;
  /** 65-byte certificate by `from`'s registered key. */
  certificate: Uint8Array;
}

/** Bytes [2, 223) of every record of `session`. */
export function encodeSessionBody(session: FrameSession): Buffer {
  if (!(session.frameKey instanceof Uint8Array) || session.frameKey.length !== FRAME_KEY_BYTES) {
    throw badRequest("frameKey", `expected ${FRAME_KEY_BYTES} bytes, got ${describeValue(session.frameKey)}`);
  }
  if (!(session.certificate instanceof Uint8Array) || session.certificate.length !== CERTIFICATE_BYTES) {
    throw badRequest("certificate", `expected ${CERTIFICATE_BYTES} bytes, got ${describeValue(session.certificate)}`);
  }
  const out = Buffer.allocUnsafe(SESSION_BODY_BYTES);
  const at = (offset: number) => offset - OFFSET_CHAIN_ID;
  out.set(uint256ToBytes(session.chainId, "chainId"), at(OFFSET_CHAIN_ID));
  out.set(addressToBytes(session.registry, "registry"), at(OFFSET_REGISTRY));
  out.set(uint256ToBytes(session.taskId, "taskId"), at(OFFSET_TASK_ID));
  out.set(addressToBytes(session.from, "from"), at(OFFSET_FROM));
  out.set(addressToBytes(session.to, "to"), at(OFFSET_TO));
  out.set(session.frameKey, at(OFFSET_FRAME_KEY));
  out.set(session.certificate, at(OFFSET_CERTIFICATE));
  return out;
}

function readUint256(bytes: Buffer, offset: number): bigint {
  return BigInt(`0x${bytes.toString("hex", offset, offset + 32)}`);
}

function readAddress(bytes: Buffer, offset: number): string {
  return getAddress(`0x${bytes.toString("hex", offset, offset + 20)}`);
}

/** Decodes the session fields of a record (at least SESSION_END bytes). */
export function decodeSession(record: Uint8Array): FrameSession {
  const b = asBuffer(record);
  if (b.length < SESSION_END) throw badRequest("record", `truncated: ${b.length} bytes, the session fields alone need ${SESSION_END}`);
  return {
    chainId: readUint256(b, OFFSET_CHAIN_ID),
    registry: readAddress(b, OFFSET_REGISTRY),
    taskId: readUint256(b, OFFSET_TASK_ID),
    from: readAddress(b, OFFSET_FROM),
    to: readAddress(b, OFFSET_TO),
    frameKey: b.subarray(OFFSET_FRAME_KEY, OFFSET_FRAME_KEY + FRAME_KEY_BYTES),
    certificate: b.subarray(OFFSET_CERTIFICATE, SESSION_END),
  };
}

/** The raw 20 bytes of `from` in a record, as lower-case hex without 0x (no checksum work on the hot path). */
export function rawAddressHex(record: Uint8Array, which: "from" | "to"): string {
  return asBuffer(record).toString("hex", which === "from" ? OFFSET_FROM : OFFSET_TO, (which === "from" ? OFFSET_FROM : OFFSET_TO) + 20);
}

/**
 * BAD_SIGNATURE unless `session.certificate` is `session.from`'s signature of
 * its frame key for this chain, registry and task. Returns the frame key as a
 * node:crypto public key.
 */
export function verifyFrameKeyCertificate(session: FrameSession): KeyObject {
  const digest = frameKeyCertificateDigest(session.chainId, session.registry, session.taskId, session.from, session.frameKey);
  const signer = recoverSigner(digest, session.certificate);
  if (signer !== toChecksumAddress(session.from, "from")) {
    throw new ConsortError("BAD_SIGNATURE", `frame key certificate signed by ${signer}, not by the sender ${session.from}`, {
      details: { signer, from: session.from, taskId: session.taskId.toString() },
    });
  }
  return ed25519PublicKey(session.frameKey);
}

/** A node:crypto Ed25519 public key from its 32 raw bytes; BAD_SIGNATURE if they are not a point. */
export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  try {
    return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw).toString("base64url") }, format: "jwk" });
  } catch (cause) {
    throw new ConsortError("BAD_SIGNATURE", "frame key is not an Ed25519 public key", { cause });
  }
}

/** The 32 raw bytes of an Ed25519 public key object. */
export function ed25519RawPublicKey(key: KeyObject): Buffer {
  const x = key.export({ format: "jwk" }).x;
  if (typeof x !== "string") throw new ConsortError("INTERNAL", "Ed25519 key export has no x");
  return Buffer.from(x, "base64url");
}

/**
 * The 96-bit ChaCha20-Poly1305 nonce of a label: the round (u32, big-endian)
 * followed by FNV-1a-64 of the gate bytes (big-endian). Uniqueness is all a
 * nonce needs: the key is per task, direction and sender run, so labels of
 * one key differ only in (round, gate), and the engine sends at most one
 * frame per round and direction. No cryptographic hash is needed, and none
 * is worth its cost here: SHA-256 took ~3 µs hot and ~25 µs inside a loaded
 * node's round (both ends, every frame), FNV-1a ~0.2 µs. A collision could
 * not reuse a nonce anyway: PeerSessions keeps the nonces it sealed and
 * refuses a second, different frame under one (DUPLICATE_MESSAGE).
 */
export function frameNonce(round: number, gate: Uint8Array): Buffer {
  const nonce = Buffer.allocUnsafe(12);
  nonce.writeUInt32BE(round, 0);
  const [hi, lo] = fnv1a64(gate);
  nonce.writeUInt32BE(hi, 4);
  nonce.writeUInt32BE(lo, 8);
  return nonce;
}

/**
 * FNV-1a, 64-bit (L. C. Noll, "FNV Hash", IETF draft-eastlake-fnv): offset
 * basis 0xcbf29ce484222325, prime 2^40 + 0x1b3, as [high, low] 32-bit words.
 * The 64-bit product is done in 32-bit halves: lo · 0x1b3 < 2^41 and
 * hi · 0x1b3 + lo · 2^8 + carry < 2^42 are exact in doubles.
 */
export function fnv1a64(bytes: Uint8Array): [number, number] {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < bytes.length; i++) {
    lo = (lo ^ bytes[i]!) >>> 0;
    const low = lo * 0x1b3;
    hi = (hi * 0x1b3 + lo * 0x100 + Math.floor(low / 0x1_0000_0000)) >>> 0;
    lo = low >>> 0;
  }
  return [hi, lo];
}

/** The frame digest: BLAKE2b-512 of the frame without its signature (one buffer, or its parts in order), first 32 bytes. */
export function frameDigest(unsignedFrame: Uint8Array | readonly Uint8Array[]): Buffer {
  let full: Buffer;
  if (unsignedFrame instanceof Uint8Array) full = hash(DIGEST_HASH, unsignedFrame, "buffer");
  else {
    const h = createHash(DIGEST_HASH);
    for (const part of unsignedFrame) h.update(part);
    full = h.digest();
  }
  return full.subarray(0, DIGEST_BYTES);
}

/** What signFrame/verifyFrameSignature sign: the domain tag and the digest. */
function frameSignatureInput(digest: Uint8Array): Buffer {
  const input = Buffer.allocUnsafe(FRAME_SIGNATURE_DOMAIN.length + DIGEST_BYTES);
  FRAME_SIGNATURE_DOMAIN.copy(input, 0);
  input.set(digest, FRAME_SIGNATURE_DOMAIN.length);
  return input;
}

/**
 * A record ready to send: `parts` concatenated are a 4-byte big-endian
 * length followed by the record (the framing of /v1/frames/stream; a plain
 * POST sends the record without it).
 */
export interface SealedRecord {
  readonly parts: readonly Buffer[];
  /** Bytes of the record, without the length prefix. */
  readonly recordBytes: number;
  /**
   * Frames: the frame digest, computed on first use (a frame signed by a
   * checkpoint has its digest taken when the checkpoint is made, together
   * with the others: in a batch the hash runs warm); checkpoints: undefined.
   */
  readonly digest: Buffer | undefined;
  /** Frames: the AEAD tag (the same bytes for the same label, key and payload); checkpoints: undefined. */
  readonly tag: Buffer | undefined;
}

/**
 * The digest of a frame's bytes without signature (`unsigned`), computed
 * when first asked: a frame signed by a checkpoint has it taken when the
 * checkpoint is made or checked, in a batch. A class, not an object literal
 * with a getter: one is made per frame sent and received on the round path,
 * and a literal with an accessor is built by the runtime, with a fresh
 * getter closure, each time.
 */
export class LazyFrameDigest {
  readonly #unsigned: Uint8Array | readonly Uint8Array[];
  #digest: Buffer | undefined;

  constructor(unsigned: Uint8Array | readonly Uint8Array[], digest: Buffer | undefined) {
    this.#unsigned = unsigned;
    this.#digest = digest;
  }

  get digest(): Buffer {
    this.#digest ??= frameDigest(this.#unsigned);
    return this.#digest;
  }
}

/** A frame's SealedRecord. */
class FrameRecord extends LazyFrameDigest implements SealedRecord {
  readonly parts: readonly Buffer[];
  readonly recordBytes: number;
  readonly tag: Buffer;

  constructor(parts: Buffer[], recordBytes: number, unsigned: Uint8Array | readonly Uint8Array[], tag: Buffer, digest?: Buffer) {
    super(unsigned, digest);
    this.parts = parts;
    this.recordBytes = recordBytes;
    this.tag = tag;
  }
}

/** The record of `sealed` as one buffer (for tests and plain POSTs of small records). */
export function recordBytesOf(sealed: SealedRecord): Buffer {
  const all = sealed.parts.length === 1 ? sealed.parts[0]! : Buffer.concat(sealed.parts as Buffer[]);
  return all.subarray(4);
}

export interface SealFrameArgs {
  /** encodeSessionBody of the session. */
  sessionBody: Buffer;
  /** The direction's ChaCha20-Poly1305 key. */
  key: KeyObject;
  round: number;
  /** Gate as visible ASCII bytes, 1..128 (checked by the caller). */
  gate: Buffer;
  payload: Uint8Array;
  /** Sign the frame itself with this Ed25519 key (else a checkpoint must). */
  signer?: KeyObject;
  /** frameNonce(round, gate), if the caller has it already. */
  nonce?: Buffer;
}

/** Encrypts and (optionally) signs one frame. The nonce is frameNonce(round, gate). */
export function sealFrame(args: SealFrameArgs): SealedRecord {
  const { sessionBody, key, round, gate, payload, signer } = args;
  const L = gate.length;
  const C = payload.length + TAG_BYTES;
  const headerBytes = SESSION_END + 4 + 1 + L + 4;
  const signatureBytes = signer === undefined ? 0 : SIGNATURE_BYTES;
  const recordBytes = headerBytes + C + signatureBytes;
  if (recordBytes > 0xffff_ffff) throw badRequest("payload", `${payload.length} bytes exceeds the 4 GiB frame limit`);
  // Small frames are built in one buffer (length prefix, header, ciphertext, tag, signature);
  // large ones as three parts, so the ciphertext is never copied.
  const single = 4 + recordBytes <= SINGLE_BUFFER_LIMIT;
  const head = Buffer.allocUnsafe(single ? 4 + recordBytes : 4 + headerBytes);
  head.writeUInt32BE(recordBytes, 0);
  head[4] = FRAME_RECORD;
  head[5] = signer === undefined ? 0 : FRAME_FLAG_SIGNED;
  sessionBody.copy(head, 4 + OFFSET_CHAIN_ID);
  head.writeUInt32BE(round, 4 + SESSION_END);
  head[4 + SESSION_END + 4] = L;
  gate.copy(head, 4 + SESSION_END + 5);
  head.writeUInt32BE(C, 4 + SESSION_END + 5 + L);
  const header = head.subarray(4, 4 + headerBytes);

  const cipher = createCipheriv("chacha20-poly1305", key, args.nonce ?? frameNonce(round, gate), { authTagLength: TAG_BYTES });
  cipher.setAAD(header, { plaintextLength: payload.length });
  const ciphertext = cipher.update(payload);
  cipher.final();
  const tag = cipher.getAuthTag();
  if (single) {
    ciphertext.copy(head, 4 + headerBytes);
    tag.copy(head, 4 + headerBytes + payload.length);
    const unsigned = head.subarray(4, 4 + headerBytes + C);
    if (signer === undefined) return new FrameRecord([head], recordBytes, unsigned, tag);
    const digest = frameDigest(unsigned);
    cryptoSign(null, frameSignatureInput(digest), signer).copy(head, 4 + headerBytes + C);
    return new FrameRecord([head], recordBytes, unsigned, tag, digest);
  }
  const unsigned = [header, ciphertext, tag];
  if (signer === undefined) return new FrameRecord([head, ciphertext, tag], recordBytes, unsigned, tag);
  const digest = frameDigest(unsigned);
  return new FrameRecord([head, ciphertext, Buffer.concat([tag, cryptoSign(null, frameSignatureInput(digest), signer)])], recordBytes, unsigned, tag, digest);
}

export interface SealStreamFrameArgs {
  /** encodeSessionBody of the session. */
  sessionBody: Buffer;
  /** The session's keystream (the sender's: it seals at `offset`, normally its position). */
  keystream: FrameKeystream;
  /** Where in the keystream: keystream.position for a new frame, the earlier offset to seal a label again. */
  offset: number;
  round: number;
  /** Gate, visible ASCII, 1..128 characters (checked by the caller). */
  gate: string;
  /** At most STREAM_MAX_PAYLOAD bytes. */
  payload: Uint8Array;
  /** Sign the frame itself with this Ed25519 key (else a checkpoint must). */
  signer?: KeyObject;
}

/**
 * Seals one small frame from the session's keystream (flag bit 1, see the
 * top of this file and ./frame-keystream.ts): one buffer, the ciphertext
 * written in place, the tag over everything before it.
 */
export function sealStreamFrame(args: SealStreamFrameArgs): SealedRecord {
  const { sessionBody, keystream, offset, round, gate, payload, signer } = args;
  const n = payload.length;
  if (n > STREAM_MAX_PAYLOAD || !Number.isSafeInteger(offset) || offset < 0 || offset + STREAM_KEY_BYTES + n > KEYSTREAM_BYTES) {
    throw new ConsortError("INTERNAL", `a stream-sealed frame takes at most ${STREAM_MAX_PAYLOAD} bytes within the keystream, not ${n} at ${offset}`);
  }
  const L = gate.length;
  const C = n + TAG_BYTES;
  const headerBytes = SESSION_END + 4 + 1 + L + 4 + OFFSET_BYTES;
  const recordBytes = headerBytes + C + (signer === undefined ? 0 : SIGNATURE_BYTES);
  const out = Buffer.allocUnsafe(4 + recordBytes);
  out.writeUInt32BE(recordBytes, 0);
  out[4] = FRAME_RECORD;
  out[5] = FRAME_FLAG_STREAM | (signer === undefined ? 0 : FRAME_FLAG_SIGNED);
  sessionBody.copy(out, 4 + OFFSET_CHAIN_ID);
  let at = 4 + SESSION_END;
  out.writeUInt32BE(round, at);
  out[at + 4] = L;
  out.write(gate, at + 5, L, "latin1");
  at += 5 + L;
  out.writeUInt32BE(C, at);
  out.writeUInt32BE(Math.floor(offset / 0x1_0000_0000), at + 4);
  out.writeUInt32BE(offset >>> 0, at + 8);
  at += 4 + OFFSET_BYTES;
  // Keystream [offset, offset + 32) is the frame's one-time Poly1305 key, the bytes after it its pad.
  const stream = keystream.read(offset, STREAM_KEY_BYTES + n);
  for (let i = 0; i < n; i++) out[at + i] = payload[i]! ^ stream[STREAM_KEY_BYTES + i]!;
  streamTagInto(stream, out, 4, at + n, out, at + n);
  const tag = out.subarray(at + n, at + n + TAG_BYTES);
  const unsigned = out.subarray(4, 4 + headerBytes + C);
  if (signer === undefined) return new FrameRecord([out], recordBytes, unsigned, tag);
  const digest = frameDigest(unsigned);
  cryptoSign(null, frameSignatureInput(digest), signer).copy(out, 4 + headerBytes + C);
  return new FrameRecord([out], recordBytes, unsigned, tag, digest);
}

/** A frame split into its fields; nothing is verified but the structure. */
export interface ParsedFrame {
  readonly bytes: Buffer;
  readonly flags: number;
  /** Bytes [2, 223) as a latin1 string: a cheap map key for the session. */
  readonly sessionKey: string;
  readonly round: number;
  readonly gate: string;
  readonly gateBytes: Buffer;
  /** Stream-sealed frames (flag bit 1): the keystream offset; others: undefined. */
  readonly offset: number | undefined;
  /** Bytes [0, H): the AAD (or what the stream tag covers before the ciphertext) and the signed header. */
  readonly header: Buffer;
  readonly ciphertextAndTag: Buffer;
  /** Bytes [0, 232+L+C): what the digest covers. */
  readonly unsigned: Buffer;
  readonly signature: Buffer | undefined;
}

/**
 * Strictly splits a frame: wrong record type, unknown flags, truncation,
 * trailing bytes, a bad gate or a length that does not add up -> BAD_REQUEST
 * naming the field. Checks no key, signature or MAC.
 */
export function parseFrame(record: Uint8Array): ParsedFrame {
  if (!(record instanceof Uint8Array)) throw badRequest("frame", `expected bytes, got ${describeValue(record)}`);
  const b = asBuffer(record);
  if (b.length < SESSION_END + 5) throw badRequest("frame", `truncated: ${b.length} bytes is shorter than any frame`);
  if (b[0] !== FRAME_RECORD) throw badRequest("type", `expected frame record type ${FRAME_RECORD}, got ${b[0]}`);
  const flags = b[1]!;
  if ((flags & ~(FRAME_FLAG_SIGNED | FRAME_FLAG_STREAM)) !== 0) throw badRequest("flags", `unknown flag bits 0x${flags.toString(16)}`);
  const streamed = (flags & FRAME_FLAG_STREAM) !== 0;
  const round = b.readUInt32BE(SESSION_END);
  const L = b[SESSION_END + 4]!;
  if (L === 0 || L > MAX_GATE_BYTES) throw badRequest("label.gate", `length ${L} is outside 1..${MAX_GATE_BYTES}`);
  const gateStart = SESSION_END + 5;
  const headerEnd = gateStart + L + 4 + (streamed ? OFFSET_BYTES : 0);
  if (b.length < headerEnd) throw badRequest("frame", `truncated: ${b.length} bytes, the header needs ${headerEnd}`);
  for (let i = gateStart; i < gateStart + L; i++) {
    const c = b[i]!;
    if (c < 0x21 || c > 0x7e) throw badRequest("label.gate", `byte 0x${c.toString(16).padStart(2, "0")} is not visible ASCII`);
  }
  const C = b.readUInt32BE(gateStart + L);
  let offset: number | undefined;
  if (streamed) {
    const high = b.readUInt32BE(gateStart + L + 4);
    offset = high * 0x1_0000_0000 + b.readUInt32BE(gateStart + L + 8);
    if (C - TAG_BYTES > STREAM_MAX_PAYLOAD || offset + STREAM_KEY_BYTES + C - TAG_BYTES > KEYSTREAM_BYTES) {
      throw badRequest("offset", `a stream-sealed frame holds at most ${STREAM_MAX_PAYLOAD} bytes within the ${KEYSTREAM_BYTES}-byte keystream`);
    }
  }
  const signed = (flags & FRAME_FLAG_SIGNED) !== 0;
  const expected = headerEnd + C + (signed ? SIGNATURE_BYTES : 0);
  if (C < TAG_BYTES) throw badRequest("ciphertext", `length ${C} is shorter than the ${TAG_BYTES}-byte tag`);
  if (b.length !== expected) {
    throw badRequest("ciphertext", `declared length ${C}${signed ? ` plus a ${SIGNATURE_BYTES}-byte signature` : ""} does not match the ${b.length - headerEnd} bytes after the header`);
  }
  return new FrameFields(b, flags, round, gateStart, L, offset, headerEnd, C, signed);
}

/**
 * parseFrame's result. The views and strings are made when first asked:
 * the receiving round path reads a few of them (a session it already knows
 * is found by comparing bytes, not by sessionKey).
 */
class FrameFields implements ParsedFrame {
  readonly bytes: Buffer;
  readonly flags: number;
  readonly round: number;
  readonly offset: number | undefined;
  readonly gate: string;
  readonly #gateStart: number;
  readonly #gateBytes: number;
  readonly #headerEnd: number;
  readonly #C: number;
  readonly #signed: boolean;

  constructor(b: Buffer, flags: number, round: number, gateStart: number, L: number, offset: number | undefined, headerEnd: number, C: number, signed: boolean) {
    this.bytes = b;
    this.flags = flags;
    this.round = round;
    this.offset = offset;
    this.gate = b.toString("latin1", gateStart, gateStart + L);
    this.#gateStart = gateStart;
    this.#gateBytes = L;
    this.#headerEnd = headerEnd;
    this.#C = C;
    this.#signed = signed;
  }

  get sessionKey(): string {
    return this.bytes.toString("latin1", SESSION_START, SESSION_END);
  }

  get gateBytes(): Buffer {
    return this.bytes.subarray(this.#gateStart, this.#gateStart + this.#gateBytes);
  }

  get header(): Buffer {
    return this.bytes.subarray(0, this.#headerEnd);
  }

  get ciphertextAndTag(): Buffer {
    return this.bytes.subarray(this.#headerEnd, this.#headerEnd + this.#C);
  }

  get unsigned(): Buffer {
    return this.bytes.subarray(0, this.#headerEnd + this.#C);
  }

  get signature(): Buffer | undefined {
    return this.#signed ? this.bytes.subarray(this.#headerEnd + this.#C) : undefined;
  }
}

/** Whether `signature` is the frame key's signature of the frame with `digest`. */
export function verifyFrameSignature(frameKey: KeyObject, digest: Uint8Array, signature: Uint8Array): boolean {
  try {
    return cryptoVerify(null, frameSignatureInput(digest), frameKey, signature);
  } catch {
    return false;
  }
}

/**
 * Decrypts a parsed stream-sealed frame (flag bit 1) after checking its tag;
 * DECRYPTION_FAILED, with no further detail, on a mismatch. The tag is
 * checked with keystream bytes peeked at, so a forged frame moves nothing.
 */
export function openStreamFrame(keystream: FrameKeystream, frame: ParsedFrame): Buffer {
  const offset = frame.offset;
  if (offset === undefined) throw new ConsortError("INTERNAL", "openStreamFrame needs a stream-sealed frame");
  const body = frame.ciphertextAndTag;
  const n = body.length - TAG_BYTES;
  const tagAt = frame.bytes.length - (frame.signature === undefined ? 0 : SIGNATURE_BYTES) - TAG_BYTES;
  if (!streamTagMatches(keystream.peek(offset, STREAM_KEY_BYTES + n), frame.bytes, 0, tagAt, body.subarray(n))) {
    throw new ConsortError("DECRYPTION_FAILED", "frame could not be decrypted");
  }
  const stream = keystream.read(offset, STREAM_KEY_BYTES + n);
  const payload = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) payload[i] = body[i]! ^ stream[STREAM_KEY_BYTES + i]!;
  return payload;
}

/** Decrypts a parsed frame with the direction key; DECRYPTION_FAILED, with no further detail, on any mismatch. */
export function openFrame(key: KeyObject, frame: ParsedFrame): Buffer {
  const body = frame.ciphertextAndTag;
  const ciphertext = body.subarray(0, body.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv("chacha20-poly1305", key, frameNonce(frame.round, frame.gateBytes), { authTagLength: TAG_BYTES });
    decipher.setAAD(frame.header, { plaintextLength: ciphertext.length });
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    const payload = decipher.update(ciphertext);
    decipher.final();
    return payload;
  } catch (cause) {
    throw new ConsortError("DECRYPTION_FAILED", "frame could not be decrypted", { cause });
  }
}

/** Signs `digests` (frames of the session) in one checkpoint record. */
export function sealCheckpoint(sessionBody: Buffer, digests: readonly Uint8Array[], signer: KeyObject): SealedRecord {
  if (digests.length > MAX_CHECKPOINT_FRAMES) {
    throw new ConsortError("INTERNAL", `a checkpoint signs 0..${MAX_CHECKPOINT_FRAMES} frames, not ${digests.length}`);
  }
  const signedBytes = SESSION_END + 4 + DIGEST_BYTES * digests.length;
  const recordBytes = signedBytes + SIGNATURE_BYTES;
  const out = Buffer.allocUnsafe(4 + recordBytes);
  out.writeUInt32BE(recordBytes, 0);
  out[4] = CHECKPOINT_RECORD;
  out[5] = 0;
  sessionBody.copy(out, 4 + OFFSET_CHAIN_ID);
  out.writeUInt32BE(digests.length, 4 + SESSION_END);
  digests.forEach((d, i) => out.set(d, 4 + SESSION_END + 4 + DIGEST_BYTES * i));
  const signature = cryptoSign(null, Buffer.concat([CHECKPOINT_DOMAIN, out.subarray(4, 4 + signedBytes)]), signer);
  signature.copy(out, 4 + signedBytes);
  return { parts: [out], recordBytes, digest: undefined, tag: undefined };
}

export interface ParsedCheckpoint {
  readonly bytes: Buffer;
  readonly sessionKey: string;
  /** The signed frame digests (views into `bytes`). */
  readonly digests: readonly Buffer[];
}

/** Strictly splits a checkpoint (BAD_REQUEST naming the field); verifyCheckpoint checks its signature. */
export function parseCheckpoint(record: Uint8Array): ParsedCheckpoint {
  if (!(record instanceof Uint8Array)) throw badRequest("checkpoint", `expected bytes, got ${describeValue(record)}`);
  const b = asBuffer(record);
  if (b.length < SESSION_END + 4) throw badRequest("checkpoint", `truncated: ${b.length} bytes is shorter than any checkpoint`);
  if (b[0] !== CHECKPOINT_RECORD) throw badRequest("type", `expected checkpoint record type ${CHECKPOINT_RECORD}, got ${b[0]}`);
  if (b[1] !== 0) throw badRequest("flags", `checkpoint flags must be 0, got 0x${b[1]!.toString(16)}`);
  const count = b.readUInt32BE(SESSION_END);
  if (count > MAX_CHECKPOINT_FRAMES) throw badRequest("count", `${count} is outside 0..${MAX_CHECKPOINT_FRAMES}`);
  const expected = SESSION_END + 4 + DIGEST_BYTES * count + SIGNATURE_BYTES;
  if (b.length !== expected) throw badRequest("checkpoint", `${count} digests and a signature need ${expected} bytes, got ${b.length}`);
  const digests: Buffer[] = [];
  for (let i = 0; i < count; i++) digests.push(b.subarray(SESSION_END + 4 + DIGEST_BYTES * i, SESSION_END + 4 + DIGEST_BYTES * (i + 1)));
  return { bytes: b, sessionKey: b.toString("latin1", OFFSET_CHAIN_ID, SESSION_END), digests };
}

/** Whether the checkpoint's signature is by `frameKey`. */
export function verifyCheckpoint(frameKey: KeyObject, checkpoint: ParsedCheckpoint): boolean {
  const signedEnd = checkpoint.bytes.length - SIGNATURE_BYTES;
  try {
    return cryptoVerify(
      null,
      Buffer.concat([CHECKPOINT_DOMAIN, checkpoint.bytes.subarray(0, signedEnd)]),
      frameKey,
      checkpoint.bytes.subarray(signedEnd),
    );
  } catch {
    return false;
  }
}

/** What a third party learns from verifyFrameEvidence. */
export interface FrameEvidence {
  chainId: bigint;
  registry: string;
  label: MessageLabel;
  /** The sender; the certificate and signature prove its registered key signed the frame. */
  from: string;
  to: string;
  digest: Uint8Array;
  /** "frame": the frame's own signature; "checkpoint": listed in the given checkpoint. */
  signedBy: "frame" | "checkpoint";
}

/**
 * Third-party verification of a frame, needing no secret: the certificate
 * must be `from`'s registered-key signature of the frame key (EIP-712), and
 * the frame key must have signed the frame (its own signature, or the
 * given checkpoint of the same session listing its digest). BAD_REQUEST for
 * malformed records, BAD_SIGNATURE otherwise. The caller then checks on
 * chain that `from` is the registered address of a party of the task.
 */
export function verifyFrameEvidence(frame: Uint8Array, checkpoint?: Uint8Array): FrameEvidence {
  const parsed = parseFrame(frame);
  const session = decodeSession(parsed.bytes);
  const frameKey = verifyFrameKeyCertificate(session);
  const digest = frameDigest(parsed.unsigned);
  let signedBy: FrameEvidence["signedBy"];
  if (parsed.signature !== undefined) {
    if (!verifyFrameSignature(frameKey, digest, parsed.signature)) throw new ConsortError("BAD_SIGNATURE", "the frame signature does not verify");
    signedBy = "frame";
  } else {
    if (checkpoint === undefined) throw new ConsortError("BAD_SIGNATURE", "the frame is unsigned and no checkpoint was given");
    const cp = parseCheckpoint(checkpoint);
    if (cp.sessionKey !== parsed.sessionKey) throw new ConsortError("BAD_SIGNATURE", "the checkpoint belongs to another session");
    if (!verifyCheckpoint(frameKey, cp)) throw new ConsortError("BAD_SIGNATURE", "the checkpoint signature does not verify");
    if (!cp.digests.some((d) => d.equals(digest))) throw new ConsortError("BAD_SIGNATURE", "the checkpoint does not list this frame");
    signedBy = "checkpoint";
  }
  return {
    chainId: session.chainId,
    registry: session.registry,
    label: { taskId: session.taskId, round: parsed.round, gate: parsed.gate },
    from: session.from,
    to: session.to,
    digest,
    signedBy,
  };
}
