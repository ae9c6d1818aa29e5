/**
 * How the MPC engine talks to its peers, independent of any transport.
 *
 * The engine is a pure function of the program, its shares, its randomness
 * and what the network delivers. Communication is in synchronous rounds: in
 * each round every party sends exactly one message (a vector of field
 * elements, possibly empty) to every other party under the same label and
 * waits for one message from each of them. A round carries a whole layer of
 * gates (all openings, later all multiplications of one depth), so the number
 * of rounds is the multiplicative depth plus one, whatever the data size.
 *
 * Labels are derived from the program alone (a round counter and the range of
 * wires the round serves), so all parties agree on them without negotiation;
 * a transport uses (task, label, sender) to route and de-duplicate messages
 * and to authenticate them.
 */
import { ConsortError } from "../errors.ts";
import { MAX_PARTIES } from "../math/shamir.ts";
import type { Rng } from "../math/rng.ts";

export interface ProtocolLabel {
  /** 0-based round counter of this run. */
  readonly round: number;
  /** What the round serves, e.g. "open:3-7" (opening of wires 3..7); for logs and routing. */
  readonly gate: string;
}

/** "3/open:3-7": a label as one string (mailbox keys, logs). */
export function labelKey(label: ProtocolLabel): string {
  return `${label.round}/${label.gate}`;
}

export interface RoundNetwork {
  /**
   * One all-to-all round. `outgoing` has one vector per party (index = party):
   * outgoing[j] goes to party j (an empty vector is still sent, so every
   * receiver knows the round is complete), outgoing[self] is looped back.
   * Resolves with `received`, one vector per party: received[j] is what party
   * j sent to this party under `label`, received[self] = outgoing[self].
   * Rejects with PROTOCOL_TIMEOUT (a peer did not answer in time),
   * PROTOCOL_INVALID_MESSAGE (a peer's bytes do not decode) or
   * PROTOCOL_ABORTED (the run was cancelled).
   */
  exchange(label: ProtocolLabel, outgoing: readonly (readonly bigint[])[]): Promise<readonly (readonly bigint[])[]>;
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
