/**
 * Pairwise payload keys for peer frames (./peer-frame.ts).
 *
 *   Z    = x-coordinate of a·B  (SEC 1 v2 §3.3.1 ECDH over secp256k1), a = own
 *          registered encryption key, B = the peer's registered encryption key;
 *          static-static, so computed once per peer key and cached
 *   salt = chainId (32) || registry (20) || taskId (32)
 *   info = "consort/frame-key/v1" || min(from, to) (20) || max(from, to) (20)
 *          || direction (1: 0x00 if from is the smaller address, else 0x01)
 *          || the sender's frame key (32)
 *   key  = HKDF-SHA256(Z, salt, info, 32)                         (RFC 5869)
 *
 * Both parties derive the same key for a direction (ECDH is symmetric; the
 * info names the addresses in canonical order plus the direction), and a
 * different one for each task and direction. The sender's frame key is a
 * fresh Ed25519 key per task and process run, so a node that restarts
 * mid-task derives fresh keys and cannot reuse a nonce it sealed before the
 * restart (nonces come from labels, ./peer-frame.ts frameNonce).
 */
import { createECDH, createSecretKey, hkdfSync } from "node:crypto";
import type { ECDH, KeyObject } from "node:crypto";
import { ConsortError } from "../errors.ts";
import { isValidEncryptionPublicKey } from "./envelope.ts";

const KEY_INFO = Buffer.from("consort/frame-key/v1", "latin1");

/** Own encryption key with a cache of the ECDH secrets it shares with peers' registered keys. */
export class StaticSecrets {
  readonly #ecdh: ECDH;
  readonly #shared = new Map<string, Buffer>();

  constructor(privateKey: Uint8Array) {
    // Only the shape is ever echoed, never the key.
    if (!(privateKey instanceof Uint8Array) || privateKey.length !== 32) {
      const shape = privateKey instanceof Uint8Array ? `${privateKey.length} bytes` : typeof privateKey;
      throw new ConsortError("KEY_INVALID", `encryption private key must be 32 bytes (${shape})`);
    }
    this.#ecdh = createECDH("secp256k1");
    try {
      this.#ecdh.setPrivateKey(privateKey);
    } catch (cause) {
      throw new ConsortError("KEY_INVALID", "encryption private key is not a valid secp256k1 secret key", { cause });
    }
  }

  /** The 33-byte compressed public key. */
  get publicKey(): Buffer {
    return this.#ecdh.getPublicKey(null, "compressed");
  }

  /** Z shared with `peerPublicKey` (33-byte compressed); KEY_INVALID if it is not a secp256k1 point. */
  sharedSecret(peerPublicKey: Uint8Array): Buffer {
    const id = Buffer.from(peerPublicKey).toString("hex");
    let z = this.#shared.get(id);
    if (z === undefined) {
      if (!isValidEncryptionPublicKey(peerPublicKey)) {
        throw new ConsortError("KEY_INVALID", `peer encryption key 0x${id.slice(0, 66)} is not a 33-byte compressed secp256k1 point`);
      }
      z = this.#ecdh.computeSecret(peerPublicKey);
      this.#shared.set(id, z);
    }
    return z;
  }
}

export interface DirectionKeyInput {
  /** Z from StaticSecrets.sharedSecret. */
  shared: Uint8Array;
  chainId: Uint8Array;
  registry: Uint8Array;
  taskId: Uint8Array;
  from: Uint8Array;
  to: Uint8Array;
  /** The sender's 32-byte Ed25519 frame key for this task. */
  frameKey: Uint8Array;
}

/** The ChaCha20-Poly1305 key of one direction of one task (see the top of this file). */
export function directionKey(input: DirectionKeyInput): KeyObject {
  const { shared, chainId, registry, taskId, from, to, frameKey } = input;
  if (chainId.length !== 32 || registry.length !== 20 || taskId.length !== 32 || from.length !== 20 || to.length !== 20 || frameKey.length !== 32) {
    throw new ConsortError("INTERNAL", "directionKey: a field has the wrong length");
  }
  const fromFirst = Buffer.compare(Buffer.from(from), Buffer.from(to)) < 0;
  const salt = Buffer.concat([chainId, registry, taskId]);
  const info = Buffer.concat([KEY_INFO, fromFirst ? from : to, fromFirst ? to : from, Uint8Array.of(fromFirst ? 0 : 1), frameKey]);
  return createSecretKey(Buffer.from(hkdfSync("sha256", shared, salt, info, 32)));
}
