/**
 * The data owner's side of a run: encode an input's values (range-checked,
 * node/program/input-values.ts) and Shamir-share them (node/math/fr-vec.ts)
 * among the task's parties. Party i receives result[i], a packed vector of
 * the input's declared length, and passes it to runProgram under the input
 * name.
 */
import { frVecFromBigints, frVecShare } from "../math/fr-vec.ts";
import type { Rng } from "../math/rng.ts";
import { encodeInputValues, type InputValue } from "../program/input-values.ts";
import type { Program } from "../program/program.ts";
import { checkHonestMajority } from "./round-network.ts";

export interface SharingConfig {
  /** t: the task's Shamir degree. */
  readonly threshold: number;
  /** n: the task's number of computing parties. */
  readonly parties: number;
}

/**
 * Party-major packed shares of input `inputName`: result[i] holds party i's
 * shares (element k = its share of value k). Throws PROGRAM_INVALID /
 * INPUT_OUT_OF_RANGE for bad values (see encodeInputValues) and
 * CONFIG_INVALID unless 3 <= n, 1 <= t, 2t + 1 <= n.
 */
export function shareInput(
  program: Program,
  inputName: string,
  values: readonly InputValue[],
  config: SharingConfig,
  rng: Rng,
): Uint8Array[] {
  // Same (n, t) rules as the engine, so a data owner cannot deal shares the parties would refuse.
  checkHonestMajority(config.parties, config.threshold);
  return frVecShare(frVecFromBigints(encodeInputValues(program, inputName, values)), config, rng);
}
