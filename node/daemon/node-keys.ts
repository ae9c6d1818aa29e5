import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { ConsortError } from "../errors.ts";
import { encryptionPublicKey, generateEncryptionKey, type EncryptionKeyPair } from "../transport/envelope.ts";

/** The file in a node's data directory that holds its encryption key. */
export const ENCRYPTION_KEY_FILE = "encryption-key.json";

/**
 * Loads the node's encryption key from its data directory, creating one on
 * first start. It is a different key from the signing key on purpose: the
 * signing key authorises on chain, this one only decrypts shares, and either
 * can be rotated without the other (updateParty). The file is written 0600.
 */
export function loadOrCreateEncryptionKey(dataDir: string): EncryptionKeyPair & { created: boolean } {
  const file = join(dataDir, ENCRYPTION_KEY_FILE);
  if (existsSync(file)) {
    let privateKey: Uint8Array;
    try {
      const json = JSON.parse(readFileSync(file, "utf8")) as { privateKey?: unknown };
      if (typeof json.privateKey !== "string" || !/^[0-9a-f]{64}$/.test(json.privateKey)) throw new Error("no 32-byte hex privateKey");
      privateKey = hexToBytes(json.privateKey);
    } catch (cause) {
      throw new ConsortError("KEY_INVALID", `the encryption key file ${file} is unreadable or malformed`, { cause });
    }
    return { privateKey, publicKey: encryptionPublicKey(privateKey), created: false };
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const pair = generateEncryptionKey();
  const body = JSON.stringify({ version: 1, curve: "secp256k1", privateKey: bytesToHex(pair.privateKey), publicKey: bytesToHex(pair.publicKey) }, null, 2);
  writeFileSync(`${file}.tmp`, `${body}\n`, { mode: 0o600 });
  chmodSync(`${file}.tmp`, 0o600);
  renameSync(`${file}.tmp`, file);
  return { ...pair, created: true };
}
