/** The registry's TaskState enum, by on-chain ordinal (see contracts/IConsortRegistry.sol). */
export const TASK_STATES = ["None", "AwaitingInputs", "Computing", "Finalized", "Expired"] as const;
export type TaskStateName = (typeof TASK_STATES)[number];

export function taskStateName(ordinal: bigint | number): TaskStateName {
  const name = TASK_STATES[Number(ordinal)];
  if (name === undefined) throw new RangeError(`unknown task state ordinal ${ordinal}`);
  return name;
}
