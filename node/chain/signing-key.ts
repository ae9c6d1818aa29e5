import { readFileSync } from "node:fs";
import { Wallet } from "ethers";
import { ConsortError } from "../errors.ts";

/** Parses an Ethereum private key without ever echoing it. */
export function parsePrivateKey(text: string, source: string): Wallet {
  const trimmed = text.trim();
  const hex = trimmed.startsWith("0x") ? trimmed : `0x${trimmed}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) {
    throw new ConsortError("KEY_INVALID", `the private key from ${source} is not 32 bytes of hex`);
  }
  try {
    return new Wallet(hex);
  } catch (cause) {
    throw new ConsortError("KEY_INVALID", `the private key from ${source} is not a valid secp256k1 key`, { cause });
  }
}

/**
 * Loads the signing key: from `privateKeyFile` when given, else from the
 * CONSORT_PRIVATE_KEY environment variable.
 */
export function loadSigningKey(privateKeyFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Wallet {
  if (privateKeyFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(privateKeyFile, "utf8");
    } catch (cause) {
      throw new ConsortError("KEY_INVALID", `cannot read the private key file ${privateKeyFile}`, { cause });
    }
    return parsePrivateKey(text, privateKeyFile);
  }
  const fromEnv = env.CONSORT_PRIVATE_KEY;
  if (fromEnv === undefined || fromEnv === "") {
    throw new ConsortError("KEY_INVALID", "no signing key: set privateKeyFile in the config or the CONSORT_PRIVATE_KEY environment variable");
  }
  return parsePrivateKey(fromEnv, "CONSORT_PRIVATE_KEY");
}
