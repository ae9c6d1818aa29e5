/**
 * The name of one protocol message: task, round and gate range. Every party
 * derives the same label for the same message without coordination, so it
 * keys mailboxes, stores and the nonces of peer frames (./peer-frame.ts).
 */
import { ConsortError } from "../errors.ts";
import { UINT256_MAX, UINT32_MAX, describeValue } from "./binary-codec.ts";

export const MAX_GATE_BYTES = 128;
/** Visible ASCII, no spaces or control characters, so label keys print and sort cleanly. */
const GATE_PATTERN = /^[\x21-\x7e]+$/;

/** Deterministic name of one protocol message, agreed by all parties without coordination. */
export interface MessageLabel {
  taskId: bigint;
  round: number;
  /** Gate range, e.g. "open:0-3" or "mul:12-99"; visible ASCII, 1..128 bytes. */
  gate: string;
}

function badRequest(field: string, message: string): ConsortError {
  return new ConsortError("BAD_REQUEST", `${field}: ${message}`, { details: { field } });
}

/** BAD_REQUEST naming the field unless `label` is well-formed. */
export function assertMessageLabel(label: MessageLabel): void {
  if (label === null || typeof label !== "object") throw badRequest("label", `expected an object, got ${describeValue(label)}`);
  // A range check, not uint256ToBytes: this runs on every message of every round.
  if (typeof label.taskId !== "bigint" || label.taskId < 0n || label.taskId > UINT256_MAX) {
    throw badRequest("label.taskId", `expected an unsigned 256-bit integer, got ${describeValue(label.taskId)}`);
  }
  if (!Number.isInteger(label.round) || label.round < 0 || label.round > UINT32_MAX) {
    throw badRequest("label.round", `expected an integer in 0..${UINT32_MAX}, got ${describeValue(label.round)}`);
  }
  if (typeof label.gate !== "string" || label.gate.length === 0 || label.gate.length > MAX_GATE_BYTES) {
    throw badRequest("label.gate", `expected 1..${MAX_GATE_BYTES} ASCII characters, got ${describeValue(label.gate)}`);
  }
  if (!GATE_PATTERN.test(label.gate)) {
    throw badRequest("label.gate", `only visible ASCII (0x21-0x7e) is allowed, got ${describeValue(label.gate)}`);
  }
}

/** Canonical string for maps and store keys, e.g. "task/7/round/2/gate/open:0-3". Injective: the gate is last. */
export function labelKey(label: MessageLabel): string {
  assertMessageLabel(label);
  return `task/${label.taskId.toString()}/round/${label.round}/gate/${label.gate}`;
}
