/**
 * Opening secret-shared values to all parties, with error detection.
 *
 * Every party sends its share vector to every other party, then
 * reconstructs each value from ALL n shares: the first t + 1 (by x)
 * determine the degree-t polynomial, the other n - t - 1 must lie on it
 * (Shamir shares form a Reed–Solomon codeword of distance n - t; see
 * node/math/shamir.ts). With t < n/2 corrupted parties and n >= 2t + 1,
 * n - t - 1 >= t, so any wrong share from at most t parties is detected and
 * the run aborts (security with abort) instead of opening a wrong value.
 *
 * Blame. If removing one party's share leaves the others consistent, that
 * party's share is "the one off the polynomial". Naming it is sound only
 * when n >= 2t + 2: then the other n - 1 shares include at least
 * n - 1 - t >= t + 1 honest ones, which pin the true polynomial, so an honest
 * party can never be left over. With n = 2t + 1, t colluding parties can
 * shift their shares so that the others look consistent without an honest
 * party j (they "frame" j), so there the engine only reports j as the
 * single-fault explanation next to the full list of possible culprits.
 * Either way a dishonest data owner could have dealt that party a bad input
 * share; input-sharing checks come with the next protocol phase.
 */
import { ConsortError, isConsortError } from "../errors.ts";
import { isFieldElement } from "../math/field.ts";
import { reconstructVector } from "../math/shamir.ts";
import { labelKey, type PartyContext, type ProtocolLabel } from "./round-network.ts";

/**
 * Checks what a round delivered: one vector per party, received[j] of
 * `expectedLength[j]` field elements. PROTOCOL_INVALID_MESSAGE naming the
 * sender and the label otherwise.
 */
export function checkReceived(
  ctx: PartyContext,
  label: ProtocolLabel,
  received: unknown,
  expectedLength: (party: number) => number,
): readonly (readonly bigint[])[] {
  if (!Array.isArray(received) || received.length !== ctx.parties) {
    throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `round ${labelKey(label)}: the network returned ${Array.isArray(received) ? received.length : typeof received} vectors, expected ${ctx.parties}`, {
      details: { label: labelKey(label) },
    });
  }
  for (let j = 0; j < ctx.parties; j++) {
    const vector: unknown = received[j];
    const expected = expectedLength(j);
    if (!Array.isArray(vector) || vector.length !== expected) {
      throw new ConsortError(
        "PROTOCOL_INVALID_MESSAGE",
        `round ${labelKey(label)}: party ${j} sent ${Array.isArray(vector) ? `${vector.length} elements` : "no vector"}, expected ${expected}`,
        { details: { label: labelKey(label), party: j, expected, got: Array.isArray(vector) ? vector.length : null } },
      );
    }
    for (let k = 0; k < vector.length; k++) {
      if (!isFieldElement(vector[k])) {
        throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `round ${labelKey(label)}: element ${k} from party ${j} is not a field element`, {
          details: { label: labelKey(label), party: j, index: k },
        });
      }
    }
  }
  return received as readonly (readonly bigint[])[];
}

/**
 * Opens `shares` (this party's shares of a vector of secrets) to all parties
 * in one round under `label` and returns the secrets. PROTOCOL_ABORTED if the
 * n shares of some element do not lie on one polynomial of degree t. Its
 * details hold `suspectParty` when the faulty share can be attributed soundly
 * (n >= 2t + 2, see above), otherwise `suspectParties` (everyone but this
 * party, which trusts its own computation) and, when one party alone would
 * explain the disagreement, `singleFaultParty`. `describe(index)` names what
 * element `index` is (e.g. "output total[2]") for the message.
 */
export async function openToAll(
  ctx: PartyContext,
  label: ProtocolLabel,
  shares: readonly bigint[],
  describe: (index: number) => string = (index) => `element ${index}`,
): Promise<bigint[]> {
  const outgoing = Array.from({ length: ctx.parties }, () => shares);
  const received = checkReceived(ctx, label, await ctx.network.exchange(label, outgoing), () => shares.length);
  try {
    return reconstructVector(received, ctx.threshold, ctx.parties);
  } catch (error) {
    if (!isConsortError(error, "MATH_INCONSISTENT_SHARES")) throw error;
    const index = typeof error.details["index"] === "number" ? error.details["index"] : 0;
    const suspect = error.details["suspectParty"];
    const others = Array.from({ length: ctx.parties }, (_, j) => j).filter((j) => j !== ctx.self);
    const what = describe(index);
    const where = `opening ${what} in round ${labelKey(label)}`;
    const located = typeof suspect === "number" ? suspect : undefined;
    const sound = ctx.parties >= 2 * ctx.threshold + 2;
    let message: string;
    let suspects: Record<string, unknown>;
    if (located !== undefined && sound && located !== ctx.self) {
      message = `${where}: the share from party ${located} is not on the degree-${ctx.threshold} polynomial through the others (party ${located} is faulty, or a data owner dealt it an inconsistent input share)`;
      suspects = { suspectParty: located };
    } else if (located !== undefined && sound) {
      // This party computed its share honestly, so its input shares were off.
      message = `${where}: this party's own share is the one off the degree-${ctx.threshold} polynomial through the others; a data owner dealt it an inconsistent input share`;
      suspects = { suspectParty: located };
    } else {
      const hint = located === undefined ? "" : `; a single faulty party would have to be party ${located}, but with n = ${ctx.parties}, t = ${ctx.threshold} colluding parties could fake that`;
      message = `${where}: the shares are inconsistent; one or more of parties ${others.join(", ")} sent a wrong share, or a data owner shared an input inconsistently${hint}`;
      suspects = { suspectParties: others, ...(located === undefined ? {} : { singleFaultParty: located }) };
    }
    throw new ConsortError("PROTOCOL_ABORTED", message, { cause: error, details: { label: labelKey(label), element: what, ...suspects } });
  }
}
