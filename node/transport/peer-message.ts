/**
 * The signed, encrypted protocol message one party sends another.
 *
 * Binary on the wire (batches of field elements can be megabytes), version 1:
 *
 *   offset  size  field
 *   0       1     version = 0x01
 *   1       32    chainId            uint256 big-endian
 *   33      20    registry           address
 *   53      32    label.taskId       uint256 big-endian
 *   85      4     label.round        uint32 big-endian
 *   89      1     gate length L      1..128
 *   90      L     label.gate         visible ASCII
 *   90+L    20    from               address (the sender's registered signing address)
 *   110+L   20    to                 address
 *   130+L   4     sealed length S    uint32 big-endian
 *   134+L   S     sealed             envelope (./envelope.ts)
 *   134+L+S 65    signature          r || s || v, v in {27, 28}, low s (EIP-2)
 *
 * The signature is plain secp256k1 ECDSA by the sender's Ethereum key over
 * peerMessageDigest: keccak256 of a Consort-specific domain tag followed by
 * every field, the payload by its SHA-256 hash. The tag keeps these
 * signatures from ever being valid for a transaction, an EIP-191 message or an
 * EIP-712 result signed by the same key.
 */
import { createHash } from "node:crypto";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { computeAddress, getBytes, hexlify, recoverAddress } from "ethers";
import type { BaseWallet, SigningKey } from "ethers";
import { ConsortError } from "../errors.ts";
import {
  ByteReader,
  ByteWriter,
  UINT256_MAX,
  UINT32_MAX,
  addressToBytes,
  bytesToUint256,
  describeValue,
  toChecksumAddress,
  uint256ToBytes,
} from "./binary-codec.ts";
import { openSealed, sealTo } from "./envelope.ts";

export const PEER_MESSAGE_VERSION = 0x01;
export const MAX_GATE_BYTES = 128;
const DIGEST_DOMAIN = utf8ToBytes("consort/peer-message/v1");
const PAYLOAD_AAD_DOMAIN = utf8ToBytes("consort/peer-payload/v1");
const SIGNATURE_BYTES = 65;
/** Visible ASCII, no spaces or control characters, so label keys print and sort cleanly. */
const GATE_PATTERN = /^[\x21-\x7e]+$/;
const SECP256K1_N = secp256k1.Point.CURVE().n;

/** Deterministic name of one protocol message, agreed by all parties without coordination. */
export interface MessageLabel {
  taskId: bigint;
  round: number;
  /** Gate range, e.g. "open:0-3" or "mul:12-99"; visible ASCII, 1..128 bytes. */
  gate: string;
}

export interface PeerMessage {
  chainId: bigint;
  /** The registry contract the task lives in. */
  registry: string;
  label: MessageLabel;
  /** Sender's registered signing address. */
  from: string;
  /** Recipient's registered signing address. */
  to: string;
  /** Envelope to the recipient's encryption key (see sealPayload). */
  sealed: Uint8Array;
}

export interface SignedPeerMessage extends PeerMessage {
  /** 65 bytes: r || s || v. */
  signature: Uint8Array;
}

/** A message's routing fields: everything but the payload. */
export type PeerMessageContext = Omit<PeerMessage, "sealed">;

function badRequest(field: string, message: string): ConsortError {
  return new ConsortError("BAD_REQUEST", `${field}: ${message}`, { details: { field } });
}

function badSignature(message: string, details: Record<string, unknown> = {}): ConsortError {
  return new ConsortError("BAD_SIGNATURE", message, { details });
}

/** BAD_REQUEST naming the field unless `label` is well-formed. */
export function assertMessageLabel(label: MessageLabel): void {
  if (label === null || typeof label !== "object") throw badRequest("label", `expected an object, got ${describeValue(label)}`);
  // A range check, not uint256ToBytes: this runs on every message of every round.
  if (typeof label.taskId !== "bigint" || label.taskId < 0n || label.taskId > UINT256_MAX) {
    throw badRequest("label.taskId", `expected an unsigned 256-bit integer, got ${describeValue(label.taskId)}`);
  }
  if (!Number.isInteger(label.round) || label.round < 0 || label.round > UINT32_MAX) {
    throw badRequest("label.round", `expected an integer in 0..${UINT32_MAX}, got ${describeValue(label.round)}`);
  }
  if (typeof label.gate !== "string" || label.gate.length === 0 || label.gate.length > MAX_GATE_BYTES) {
    throw badRequest("label.gate", `expected 1..${MAX_GATE_BYTES} ASCII characters, got ${describeValue(label.gate)}`);
  }
  if (!GATE_PATTERN.test(label.gate)) {
    throw badRequest("label.gate", `only visible ASCII (0x21-0x7e) is allowed, got ${describeValue(label.gate)}`);
  }
}

/** Canonical string for maps and store keys, e.g. "task/7/round/2/gate/open:0-3". Injective: the gate is last. */
export function labelKey(label: MessageLabel): string {
  assertMessageLabel(label);
  return `task/${label.taskId.toString()}/round/${label.round}/gate/${label.gate}`;
}

interface EncodedHeader {
  chainId: Uint8Array;
  registry: Uint8Array;
  taskId: Uint8Array;
  round: number;
  gate: Uint8Array;
  from: Uint8Array;
  to: Uint8Array;
}

function encodeHeader(msg: PeerMessageContext): EncodedHeader {
  if (msg === null || typeof msg !== "object") throw badRequest("message", `expected an object, got ${describeValue(msg)}`);
  assertMessageLabel(msg.label);
  return {
    chainId: uint256ToBytes(msg.chainId, "chainId"),
    registry: addressToBytes(msg.registry, "registry"),
    taskId: uint256ToBytes(msg.label.taskId, "label.taskId"),
    round: msg.label.round,
    gate: utf8ToBytes(msg.label.gate),
    from: addressToBytes(msg.from, "from"),
    to: addressToBytes(msg.to, "to"),
  };
}

const HEADER_FIXED_BYTES = 32 + 20 + 32 + 4 + 1 + 20 + 20;

function writeHeader(w: ByteWriter, h: EncodedHeader): void {
  w.bytes(h.chainId).bytes(h.registry).bytes(h.taskId).u32(h.round).u8(h.gate.length).bytes(h.gate).bytes(h.from).bytes(h.to);
}

function assertSealed(sealed: unknown): asserts sealed is Uint8Array {
  if (!(sealed instanceof Uint8Array)) throw badRequest("sealed", `expected bytes, got ${describeValue(sealed)}`);
  if (sealed.length > UINT32_MAX) throw badRequest("sealed", `${sealed.length} bytes exceeds the 4 GiB frame limit`);
}

/**
 * The canonical bytes the signature covers (after the domain tag): the header
 * fields in wire order followed by SHA-256(sealed) instead of the payload,
 * so a multi-megabyte batch is hashed exactly once. The payload hash is
 * SHA-256 from Node's native crypto rather than keccak256 because this
 * digest never goes on chain and noble's pure-JS keccak runs at about
 * 7 MB/s here: 0.5 s of blocked event loop per 100,000-element batch,
 * against about 10 ms natively. The outer digest stays keccak256 (Ethereum's
 * signing convention) over the short header.
 */
export function encodeUnsignedPeerMessage(msg: PeerMessage): Uint8Array {
  const h = encodeHeader(msg);
  assertSealed(msg.sealed);
  const w = new ByteWriter(HEADER_FIXED_BYTES + h.gate.length + 32);
  writeHeader(w, h);
  w.bytes(createHash("sha256").update(msg.sealed).digest());
  return w.finish();
}

/** keccak256(utf8("consort/peer-message/v1") || encodeUnsignedPeerMessage(msg)). */
export function peerMessageDigest(msg: PeerMessage): Uint8Array {
  const body = encodeUnsignedPeerMessage(msg);
  const pre = new Uint8Array(DIGEST_DOMAIN.length + body.length);
  pre.set(DIGEST_DOMAIN, 0);
  pre.set(body, DIGEST_DOMAIN.length);
  return keccak_256(pre);
}

/**
 * Signs `msg` with the sender's Ethereum key. The key's address must be `msg.from`
 * (KEY_INVALID otherwise: signing as someone else is a configuration bug).
 */
export function signPeerMessage(msg: PeerMessage, signingKey: SigningKey | BaseWallet): SignedPeerMessage {
  // Duck-typed rather than instanceof: Wallet and HDNodeWallet share only BaseWallet, and
  // ethers' ESM and CJS builds have distinct classes.
  const key: unknown = (signingKey as { signingKey?: unknown })?.signingKey ?? signingKey;
  if (typeof (key as SigningKey)?.sign !== "function" || typeof (key as SigningKey)?.publicKey !== "string") {
    throw new ConsortError("KEY_INVALID", "signPeerMessage needs an ethers SigningKey or Wallet");
  }
  return signWith(msg, key as SigningKey);
}

function signWith(msg: PeerMessage, key: SigningKey): SignedPeerMessage {
  const from = toChecksumAddress(msg.from, "from");
  const signer = computeAddress(key.publicKey);
  if (signer !== from) {
    throw new ConsortError("KEY_INVALID", `signing key belongs to ${signer}, not to the message sender ${from}`, {
      details: { signer, from },
    });
  }
  const sig = key.sign(peerMessageDigest(msg));
  // ethers produces canonical low-s signatures with v in {27, 28}, the only form verification accepts.
  return {
    chainId: msg.chainId,
    registry: toChecksumAddress(msg.registry, "registry"),
    label: { taskId: msg.label.taskId, round: msg.label.round, gate: msg.label.gate },
    from,
    to: toChecksumAddress(msg.to, "to"),
    sealed: msg.sealed,
    signature: getBytes(sig.serialized),
  };
}

/** The wire encoding (see the layout at the top of this file). */
export function encodeSignedPeerMessage(m: SignedPeerMessage): Uint8Array {
  const h = encodeHeader(m);
  assertSealed(m.sealed);
  if (!(m.signature instanceof Uint8Array) || m.signature.length !== SIGNATURE_BYTES) {
    throw badRequest("signature", `expected ${SIGNATURE_BYTES} bytes, got ${describeValue(m.signature)}`);
  }
  const w = new ByteWriter(1 + HEADER_FIXED_BYTES + h.gate.length + 4 + m.sealed.length + SIGNATURE_BYTES);
  w.u8(PEER_MESSAGE_VERSION);
  writeHeader(w, h);
  w.u32(m.sealed.length).bytes(m.sealed).bytes(m.signature);
  return w.finish();
}

/**
 * Strictly decodes the wire encoding: unknown version, truncation, trailing bytes,
 * a bad gate or a length that does not match -> BAD_REQUEST naming the field.
 * Does not check the signature: call verifyPeerMessageSignature.
 */
export function decodeSignedPeerMessage(bytes: Uint8Array): SignedPeerMessage {
  if (!(bytes instanceof Uint8Array)) throw badRequest("encoding", `expected bytes, got ${describeValue(bytes)}`);
  const r = new ByteReader(bytes);
  const version = r.u8("version");
  if (version !== PEER_MESSAGE_VERSION) {
    throw badRequest("version", `unsupported peer message version ${version}, expected ${PEER_MESSAGE_VERSION}`);
  }
  const chainId = r.uint256("chainId");
  const registry = r.address("registry");
  const taskId = r.uint256("label.taskId");
  const round = r.u32("label.round");
  const gateLength = r.u8("label.gate");
  if (gateLength === 0 || gateLength > MAX_GATE_BYTES) {
    throw badRequest("label.gate", `length ${gateLength} is outside 1..${MAX_GATE_BYTES}`);
  }
  const gateBytes = r.bytes(gateLength, "label.gate");
  // Visible ASCII is a subset of UTF-8, so after this check the decode is exact.
  for (const b of gateBytes) {
    if (b < 0x21 || b > 0x7e) throw badRequest("label.gate", `byte 0x${b.toString(16).padStart(2, "0")} is not visible ASCII`);
  }
  const gate = new TextDecoder().decode(gateBytes);
  const from = r.address("from");
  const to = r.address("to");
  const sealedLength = r.u32("sealed");
  if (sealedLength + SIGNATURE_BYTES !== r.remaining) {
    throw badRequest(
      "sealed",
      `declared length ${sealedLength} plus a ${SIGNATURE_BYTES}-byte signature does not match the ${r.remaining} bytes left`,
    );
  }
  const sealed = r.bytes(sealedLength, "sealed");
  const signature = r.bytes(SIGNATURE_BYTES, "signature");
  r.end();
  return { chainId, registry, label: { taskId, round, gate }, from, to, sealed, signature };
}

/**
 * Recovers the signer of `m` and returns its checksummed address. BAD_SIGNATURE if the
 * signature is malformed or non-canonical (v not 27/28, r or s out of range, high s:
 * EIP-2 malleability) or recovers to anyone but `m.from`. Membership (is `from` a party of
 * this task?) is the caller's check.
 */
export function verifyPeerMessageSignature(m: SignedPeerMessage): string {
  const from = toChecksumAddress(m.from, "from");
  const signer = recoverSigner(peerMessageDigest(m), m.signature);
  if (signer !== from) {
    throw badSignature(`peer message signed by ${signer}, not by its sender ${from}`, { signer, from });
  }
  return signer;
}

/**
 * Recovers the address that produced the 65-byte r||s||v `signature` over the 32-byte
 * `digest`, accepting only canonical signatures; BAD_SIGNATURE otherwise.
 */
export function recoverSigner(digest: Uint8Array, signature: Uint8Array): string {
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) {
    throw badSignature(`signature must be ${SIGNATURE_BYTES} bytes, got ${describeValue(signature)}`);
  }
  const r = bytesToUint256(signature.subarray(0, 32));
  const s = bytesToUint256(signature.subarray(32, 64));
  const v = signature[64];
  if (v !== 27 && v !== 28) throw badSignature(`signature v must be 27 or 28, got ${v}`);
  if (r === 0n || r >= SECP256K1_N) throw badSignature("signature r is out of range");
  if (s === 0n || s > SECP256K1_N / 2n) throw badSignature("signature s is zero or not in the lower half order (EIP-2)");
  try {
    return recoverAddress(digest, hexlify(signature));
  } catch (cause) {
    // r is not the x-coordinate of any curve point.
    throw new ConsortError("BAD_SIGNATURE", "signature does not recover to a public key", { cause });
  }
}

/**
 * The AAD of a peer payload: the label key plus chain, registry, sender and recipient.
 * Binding the label stops a ciphertext being replayed under another label; binding
 * the sender stops a corrupt party re-signing an honest party's ciphertext as its own.
 */
export function peerPayloadAad(context: PeerMessageContext): Uint8Array {
  const h = encodeHeader(context);
  const key = utf8ToBytes(labelKey(context.label));
  const w = new ByteWriter(PAYLOAD_AAD_DOMAIN.length + 32 + 20 + 20 + 20 + key.length);
  w.bytes(PAYLOAD_AAD_DOMAIN).bytes(h.chainId).bytes(h.registry).bytes(h.from).bytes(h.to).bytes(key);
  return w.finish();
}

/** Encrypts `payload` to the recipient's encryption key for the message described by `context`. */
export function sealPayload(recipientPublicKey: Uint8Array, context: PeerMessageContext, payload: Uint8Array): Uint8Array {
  return sealTo(recipientPublicKey, payload, peerPayloadAad(context));
}

/**
 * Decrypts the payload of a received message with the recipient's encryption key;
 * DECRYPTION_FAILED if it was sealed for another key or another context.
 */
export function openPayload(privateKey: Uint8Array, msg: PeerMessage): Uint8Array {
  return openSealed(privateKey, msg.sealed, peerPayloadAad(msg));
}
