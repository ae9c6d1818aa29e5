/**
 * How the MPC engine talks to its peers, independent of any transport.
 *
 * The engine is a pure function of the program, its shares, its randomness
 * and what the network delivers. Communication is in synchronous rounds: in
 * each round a party sends at most one message to each other party under
 * the same label and waits for one message from each party the program
 * says sends to it (every peer, except in rounds of only ring
 * multiplications, where each party hears from one). A
 * message is a packed field vector (node/math/fr-vec.ts: 32-byte
 * little-endian canonical elements, possibly empty), which is also its wire
 * format, so a transport moves the bytes as they are. One round carries
 * everything the program can do at that point (every multiplication of a
 * layer, every comparison step, the preprocessing), so the number of rounds
 * follows the program's depth, not its size.
 *
 * Labels are derived from the program alone (a round counter and the range of
 * gates the round serves), so all parties agree on them without negotiation;
 * a transport uses (task, label, sender) to route and de-duplicate messages
 * and to authenticate them.
 */
import { ConsortError } from "../errors.ts";
import { MAX_PARTIES } from "../math/shamir.ts";
import type { Rng } from "../math/rng.ts";

export interface ProtocolLabel {
  /** 0-based round counter of this run. */
  readonly round: number;
  /**
   * What the round serves, e.g. "mul+open:3-7" (the kinds of work and the
   * range of gate ids); 1..128 visible ASCII characters, for logs and routing.
   */
  readonly gate: string;
}

/** "3/open:3-7": a label as one string (mailbox keys, logs). */
export function labelKey(label: ProtocolLabel): string {
  return `${label.round}/${label.gate}`;
}

export interface RoundNetwork {
  /**
   * One round. `outgoing` has one entry per party (index = party):
   * outgoing[j] goes to party j, undefined sends party j nothing,
   * outgoing[self] is looped back. `from` says which peers send this party a
   * message in this round (default: every peer); the engine derives both
   * from the program, so sender and receiver always agree (a round of ring
   * multiplications sends to one peer and hears from another). Resolves with
   * `received`, one vector per party: received[j] is the bytes party j sent
   * to this party under `label` (an empty vector for a peer not in `from`),
   * received[self] = outgoing[self] (empty if undefined). The network does
   * not interpret the bytes; the engine checks lengths and canonicity and
   * blames the sender (PROTOCOL_INVALID_MESSAGE). Rejects with
   * PROTOCOL_TIMEOUT (a peer did not answer in time) or PROTOCOL_ABORTED
   * (the run was cancelled).
   */
  exchange(label: ProtocolLabel, outgoing: readonly (Uint8Array | undefined)[], from?: readonly boolean[]): Promise<readonly Uint8Array[]>;
}

/**
 * Checks the arguments of RoundNetwork.exchange for `parties` parties
 * (INTERNAL, naming what is wrong) and returns `from` with its default
 * (every peer of `self`).
 */
export function checkExchangeArguments(
  parties: number,
  self: number,
  key: string,
  outgoing: readonly (Uint8Array | undefined)[],
  from: readonly boolean[] | undefined,
): readonly boolean[] {
  if (!Array.isArray(outgoing) || outgoing.length !== parties || outgoing.some((v) => v !== undefined && !(v instanceof Uint8Array))) {
    throw new ConsortError("INTERNAL", `exchange ${key}: outgoing must hold one vector (or undefined) per party (${parties})`);
  }
  if (from === undefined) return Array.from({ length: parties }, (_, j) => j !== self);
  if (!Array.isArray(from) || from.length !== parties || from.some((b) => typeof b !== "boolean")) {
    throw new ConsortError("INTERNAL", `exchange ${key}: from must hold one boolean per party (${parties})`);
  }
  return from;
}

/** One party's view of a run. */
export interface PartyContext {
  /** This party's index (0-based) in the task's ordered party list; its Shamir x is self + 1. */
  readonly self: number;
  /** n, the number of computing parties. */
  readonly parties: number;
  /** t, the Shamir degree: honest majority needs 1 <= t and 2t + 1 <= n. */
  readonly threshold: number;
  /** Randomness for this party's protocol messages (a CSPRNG in production). */
  readonly rng: Rng;
  readonly network: RoundNetwork;
}

/**
 * Throws CONFIG_INVALID unless (parties, threshold) describe an
 * honest-majority setting: 3 <= n <= 255, 1 <= t and 2t + 1 <= n (BGW's
 * bound for degree reduction of products, which later phases need).
 */
export function checkHonestMajority(parties: number, threshold: number): void {
  if (!Number.isSafeInteger(parties) || parties < 3 || parties > MAX_PARTIES) {
    throw new ConsortError("CONFIG_INVALID", `number of parties must be an integer in [3, ${MAX_PARTIES}], got ${String(parties)}`, {
      details: { parties: String(parties) },
    });
  }
  if (!Number.isSafeInteger(threshold) || threshold < 1 || 2 * threshold + 1 > parties) {
    throw new ConsortError(
      "CONFIG_INVALID",
      `threshold must be an integer with 1 <= t and 2t + 1 <= n = ${parties} (honest majority), got ${String(threshold)}`,
      { details: { threshold: String(threshold), parties } },
    );
  }
}

/** Throws CONFIG_INVALID unless ctx is an honest-majority setting (checkHonestMajority) with 0 <= self < n, an rng and a network. */
export function checkPartyContext(ctx: PartyContext): void {
  if (typeof ctx !== "object" || ctx === null) throw new ConsortError("CONFIG_INVALID", "party context must be an object");
  const { self, parties, threshold } = ctx;
  checkHonestMajority(parties, threshold);
  if (!Number.isSafeInteger(self) || self < 0 || self >= parties) {
    throw new ConsortError("CONFIG_INVALID", `party index must be an integer in [0, ${parties - 1}], got ${String(self)}`, {
      details: { self: String(self), parties },
    });
  }
  if (typeof ctx.rng !== "function") throw new ConsortError("CONFIG_INVALID", "party context needs an rng function");
  if (typeof ctx.network !== "object" || ctx.network === null || typeof ctx.network.exchange !== "function") {
    throw new ConsortError("CONFIG_INVALID", "party context needs a network with an exchange function");
  }
}

/** Largest request the engine passes to ctx.rng: crypto.getRandomValues (noble's randomBytes) refuses more than 65536 bytes. */
export const RNG_CHUNK_BYTES = 65_536;

/**
 * `rng` behind requests of any size: larger ones are served by consecutive
 * calls of at most RNG_CHUNK_BYTES, concatenated. For a stream rng (e.g.
 * deterministicRng) the bytes are the same as one large call would give.
 */
export function chunkedRng(rng: Rng): Rng {
  return (byteLength: number): Uint8Array => {
    if (byteLength <= RNG_CHUNK_BYTES) return rng(byteLength);
    const out = new Uint8Array(byteLength);
    for (let offset = 0; offset < byteLength; offset += RNG_CHUNK_BYTES) {
      const size = Math.min(RNG_CHUNK_BYTES, byteLength - offset);
      const chunk = rng(size);
      if (!(chunk instanceof Uint8Array) || chunk.length !== size) {
        throw new ConsortError("INTERNAL", `rng returned ${chunk instanceof Uint8Array ? chunk.length : typeof chunk} bytes, expected ${size}`);
      }
      out.set(chunk, offset);
    }
    return out;
  };
}
