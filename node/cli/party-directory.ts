import { getBytes } from "ethers";
import type { RegistryClient } from "../chain/registry-client.ts";
import { ConsortError } from "../errors.ts";

export interface PartyContact {
  readonly address: string;
  readonly encryptionKey: Uint8Array;
  readonly endpoint: string;
}

/**
 * Registered parties' encryption keys and endpoints, read from the registry
 * and cached until a PartyUpdated event invalidates the entry.
 */
export class PartyDirectory {
  private readonly cache = new Map<string, Promise<PartyContact>>();
  private readonly registry: RegistryClient;

  constructor(registry: RegistryClient) {
    this.registry = registry;
  }

  get(address: string): Promise<PartyContact> {
    let entry = this.cache.get(address);
    if (entry === undefined) {
      entry = this.registry.findParty(address).then((party) => {
        if (party === undefined) {
          throw new ConsortError("NOT_A_PARTY", `${address} is not a registered party`, { details: { address } });
        }
        return { address: party.address, encryptionKey: getBytes(party.encryptionKey), endpoint: party.endpoint.replace(/\/+$/, "") };
      });
      // Do not cache failures (an RPC hiccup must not stick).
      entry.catch(() => this.cache.delete(address));
      this.cache.set(address, entry);
    }
    return entry;
  }

  invalidate(address: string): void {
    this.cache.delete(address);
  }
}
