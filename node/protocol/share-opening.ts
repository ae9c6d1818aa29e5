/**
 * Opening secret-shared values to all parties, with error detection.
 *
 * Every party sends its share vector to every other party, then
 * reconstructs each value from ALL n shares: the first d + 1 (by x)
 * determine the degree-d polynomial, the other n - d - 1 must lie on it
 * (Shamir shares form a Reed–Solomon codeword of distance n - d; see
 * node/math/fr-vec.ts frVecReconstruct). For a degree-t sharing with
 * t < n/2, n - t - 1 >= t, so any wrong share from at most t parties is
 * detected and the run aborts (security with abort) instead of opening a
 * wrong value. Degree-2t openings (masked products) are checked only when
 * n > 2t + 1.
 *
 * Blame. If removing one party's share leaves the others consistent, that
 * party's share is "the one off the polynomial". Naming it is sound only
 * when n >= 2d + 2: then the other n - 1 shares include at least
 * n - 1 - d >= d + 1 honest ones, which pin the true polynomial, so an honest
 * party can never be left over. With n = 2t + 1, t colluding parties can
 * shift their shares so that the others look consistent without an honest
 * party j (they "frame" j), so there the engine only reports j as the
 * single-fault explanation next to the full list of possible culprits.
 * Either way a dishonest data owner could have dealt that party a bad input
 * share.
 */
import { ConsortError, isConsortError } from "../errors.ts";
import { frVecReconstruct } from "../math/fr-vec.ts";
import type { RoundBatcher } from "./round-batcher.ts";
import type { PartyContext } from "./round-network.ts";

/**
 * Opens `shares` (this party's shares of a vector of secrets, degree
 * `degree`, t by default) to all parties in the batcher's next round and
 * returns the secrets as a packed vector. PROTOCOL_ABORTED if the n shares
 * of some element do not lie on one polynomial of that degree. Its details
 * hold `suspectParty` when the faulty share can be attributed soundly (see
 * above), otherwise `suspectParties` (everyone but this party, which trusts
 * its own computation) and, when one party alone would explain the
 * disagreement, `singleFaultParty`. `describe(index)` names what element
 * `index` is (e.g. "output total[2]") for the message.
 */
export async function openShares(
  batcher: RoundBatcher,
  ctx: PartyContext,
  gate: number,
  shares: Uint8Array,
  options: { degree?: number; kind?: string; describe?: (index: number) => string } = {},
): Promise<Uint8Array> {
  const degree = options.degree ?? ctx.threshold;
  const count = shares.length / 32;
  const received = await batcher.request({
    gate,
    kind: options.kind ?? "open",
    send: Array.from({ length: ctx.parties }, () => shares),
    expect: Array.from({ length: ctx.parties }, () => count),
  });
  const round = batcher.rounds - 1;
  try {
    return frVecReconstruct(received, degree);
  } catch (error) {
    if (!isConsortError(error, "MATH_INCONSISTENT_SHARES")) throw error;
    throw blameError(ctx, degree, round, error, options.describe ?? ((index) => `element ${index} of gate ${gate}`));
  }
}

/** PROTOCOL_ABORTED for an inconsistent opening, with the sound blame (see the module comment). */
function blameError(ctx: PartyContext, degree: number, round: number, error: ConsortError, describe: (index: number) => string): ConsortError {
  const index = typeof error.details["index"] === "number" ? error.details["index"] : 0;
  const suspect = error.details["suspectParty"];
  const others = Array.from({ length: ctx.parties }, (_, j) => j).filter((j) => j !== ctx.self);
  const where = `opening ${describe(index)} in round ${round}`;
  const located = typeof suspect === "number" ? suspect : undefined;
  const sound = ctx.parties >= 2 * degree + 2;
  let message: string;
  let suspects: Record<string, unknown>;
  if (located !== undefined && sound && located !== ctx.self) {
    message = `${where}: the share from party ${located} is not on the degree-${degree} polynomial through the others (party ${located} is faulty, or a data owner dealt it an inconsistent input share)`;
    suspects = { suspectParty: located };
  } else if (located !== undefined && sound) {
    // This party computed its share honestly, so its input shares were off.
    message = `${where}: this party's own share is the one off the degree-${degree} polynomial through the others; a data owner dealt it an inconsistent input share`;
    suspects = { suspectParty: located };
  } else {
    const hint =
      located === undefined ? "" : `; a single faulty party would have to be party ${located}, but with n = ${ctx.parties}, t = ${ctx.threshold} colluding parties could fake that`;
    message = `${where}: the shares are inconsistent; one or more of parties ${others.join(", ")} sent a wrong share, or a data owner shared an input inconsistently${hint}`;
    suspects = { suspectParties: others, ...(located === undefined ? {} : { singleFaultParty: located }) };
  }
  return new ConsortError("PROTOCOL_ABORTED", message, { cause: error, details: { round, element: describe(index), ...suspects } });
}
