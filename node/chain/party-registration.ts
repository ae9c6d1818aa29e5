import { hexlify } from "ethers";
import type { RegistryClient } from "./registry-client.ts";

export type RegistrationOutcome = "registered" | "updated" | "unchanged";

/**
 * Makes the registry hold (encryptionKey, endpoint) for the client's signer:
 * registers it, updates it if either changed, or does nothing. Running it
 * twice is safe, so operators can run the register script on every deploy.
 */
export async function ensurePartyRegistered(
  registry: RegistryClient,
  account: string,
  encryptionKey: Uint8Array,
  endpoint: string,
): Promise<{ outcome: RegistrationOutcome; txHash: string | undefined }> {
  const existing = await registry.findParty(account);
  const key = hexlify(encryptionKey);
  if (existing === undefined) {
    const receipt = await registry.registerParty(encryptionKey, endpoint);
    return { outcome: "registered", txHash: receipt.hash };
  }
  if (existing.encryptionKey.toLowerCase() === key.toLowerCase() && existing.endpoint === endpoint) {
    return { outcome: "unchanged", txHash: undefined };
  }
  const receipt = await registry.updateParty(encryptionKey, endpoint);
  return { outcome: "updated", txHash: receipt.hash };
}
