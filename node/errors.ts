/**
 * The one error base class of Consort's node code. Every error a node, the
 * CLI or a library function throws on purpose is a ConsortError with a
 * stable `code` (tests assert codes, never messages) and a `retryable` flag:
 * retryable errors are transient (a peer that has not answered yet, an RPC
 * that is down, a task the node has not seen yet) and the caller may try the
 * same thing again; fatal ones will fail the same way every time.
 *
 * Messages name what was wrong (the offending task id, party, field) but never
 * carry secrets: no private keys, no shares, no plaintext inputs.
 */
export type ConsortErrorCode =
  // configuration and start-up
  | "CONFIG_INVALID"
  | "KEY_INVALID"
  // math
  | "MATH_INVALID_ARGUMENT"
  | "MATH_NOT_ENOUGH_SHARES"
  | "MATH_INCONSISTENT_SHARES"
  // programs and protocol
  | "PROGRAM_INVALID"
  | "PROGRAM_HASH_MISMATCH"
  | "PROTOCOL_INVALID_MESSAGE"
  | "PROTOCOL_TIMEOUT"
  | "PROTOCOL_ABORTED"
  /** A round frame of a computation attempt the recipient has left for a newer one (final for that frame). */
  | "STALE_ATTEMPT"
  // transport
  | "BAD_REQUEST"
  | "BAD_SIGNATURE"
  | "DECRYPTION_FAILED"
  | "UNKNOWN_TASK"
  | "NOT_A_PARTY"
  | "NOT_A_DATA_OWNER"
  | "NOT_REQUESTER"
  | "DUPLICATE_INPUT"
  | "DUPLICATE_MESSAGE"
  | "COMMITMENT_MISMATCH"
  | "COMMITMENT_NOT_FOUND"
  /** The chain holds a commitment for this data owner other than the one at hand (fatal: a commitment cannot be replaced). */
  | "COMMITMENT_CONFLICT"
  | "INPUT_OUT_OF_RANGE"
  | "TASK_NOT_ACCEPTING"
  | "PEER_UNREACHABLE"
  | "PEER_REJECTED"
  /** A node holds as many early peer messages as it may: the sender should retry shortly (retryable). */
  | "MAILBOX_FULL"
  // chain
  | "RPC_UNAVAILABLE"
  | "TX_REVERTED"
  /** A signed transaction is broadcast but not mined yet (retryable: the same transaction is awaited again). */
  | "TX_PENDING"
  /** Another transaction took a signed transaction's nonce before it was mined (retryable: it is signed again). */
  | "TX_REPLACED"
  /** A write lost a race for its key's nonce to another write and was not sent (retryable: send it again). */
  | "NONCE_CONFLICT"
  | "CONTRACT_NOT_FOUND"
  | "DEPLOYMENT_NOT_FOUND"
  | "TASK_FAILED"
  /** expireTask: the task's deadline has not passed yet by the chain's clock. */
  | "TASK_NOT_EXPIRED"
  /** expireTask: the task has a result and can no longer expire. */
  | "TASK_FINALIZED"
  /** expireTask: the task's expiry is already recorded. */
  | "TASK_ALREADY_EXPIRED"
  /** The node's record of a task disagrees with the chain: a reorg it has not processed yet (retryable). */
  | "CHAIN_NOT_SYNCED"
  // store
  | "STORE_FAILED"
  // generic
  | "NOT_FOUND"
  | "INTERNAL";

export interface ConsortErrorOptions {
  /** Whether trying the same operation again may succeed. Defaults to false. */
  retryable?: boolean;
  /** The underlying error, kept for logs (never shown to remote peers). */
  cause?: unknown;
  /** Structured, non-secret facts about the failure (task id, party, field). */
  details?: Record<string, unknown>;
}

export class ConsortError extends Error {
  readonly code: ConsortErrorCode;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ConsortErrorCode, message: string, options: ConsortErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ConsortError";
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  /** The JSON body sent to HTTP clients and printed by the CLI. */
  toJSON(): { code: ConsortErrorCode; message: string; retryable: boolean; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, retryable: this.retryable, details: { ...this.details } };
  }
}

export function isConsortError(value: unknown, code?: ConsortErrorCode): value is ConsortError {
  return value instanceof ConsortError && (code === undefined || value.code === code);
}

/** Wraps anything thrown into a ConsortError, keeping ConsortErrors as they are. */
export function toConsortError(value: unknown, fallback: ConsortErrorCode = "INTERNAL"): ConsortError {
  if (value instanceof ConsortError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new ConsortError(fallback, message, { cause: value });
}
