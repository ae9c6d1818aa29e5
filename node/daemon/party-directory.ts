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
 * and cached until a PartyUpdated event invalidates the entry. A cached
 * contact is returned as a value, not a promise: every frame a node sends
 * looks its recipient up, and a resolved promise still costs the send path
 * a trip through the microtask queue.
 */
export class PartyDirectory {
  private readonly cache = new Map<string, PartyContact | Promise<PartyContact>>();
  private readonly registry: RegistryClient;

  constructor(registry: RegistryClient) {
    this.registry = registry;
  }

  get(address: string): PartyContact | Promise<PartyContact> {
    let entry = this.cache.get(address);
    if (entry === undefined) {
      const loading = this.registry.findParty(address).then((party) => {
        if (party === undefined) {
          throw new ConsortError("NOT_A_PARTY", `${address} is not a registered party`, { details: { address } });
        }
        return { address: party.address, encryptionKey: getBytes(party.encryptionKey), endpoint: party.endpoint.replace(/\/+$/, "") };
      });
      loading.then(
        // Unless invalidated meanwhile, the value replaces the promise.
        (contact) => {
          if (this.cache.get(address) === loading) this.cache.set(address, contact);
        },
        // Do not cache failures (an RPC hiccup must not stick).
        () => {
          if (this.cache.get(address) === loading) this.cache.delete(address);
        },
      );
      this.cache.set(address, loading);
      entry = loading;
    }
    return entry;
  }

  invalidate(address: string): void {
    this.cache.delete(address);
  }
}
