import { hexlify } from "ethers";
import { ensurePartyRegistered, type RegistrationOutcome } from "../chain/party-registration.ts";
import type { RegistryClient } from "../chain/registry-client.ts";
import { loadOrCreateEncryptionKey } from "./node-keys.ts";

export interface RegisterNodePartyResult {
  readonly party: string;
  readonly encryptionKey: string;
  readonly endpoint: string;
  readonly outcome: RegistrationOutcome;
  readonly txHash: string | undefined;
}

/**
 * Registers the node whose data directory is `dataDir` as a party, with the
 * registry client's signer as its signing address. The one code path behind
 * scripts/register.ts, `consort party register` and the demo.
 */
export async function registerNodeParty(registry: RegistryClient, account: string, dataDir: string, endpoint: string): Promise<RegisterNodePartyResult> {
  const { publicKey } = loadOrCreateEncryptionKey(dataDir);
  const { outcome, txHash } = await ensurePartyRegistered(registry, account, publicKey, endpoint.replace(/\/+$/, ""));
  return { party: account, encryptionKey: hexlify(publicKey), endpoint, outcome, txHash };
}
