import type { Interface } from "ethers";
import { ConsortError } from "../errors.ts";

const TRANSIENT_CODES = new Set(["NETWORK_ERROR", "SERVER_ERROR", "TIMEOUT", "UNKNOWN_ERROR", "ECONNREFUSED", "ECONNRESET"]);

function findRevertData(error: unknown, depth = 0): string | undefined {
  if (depth > 6 || error === null || typeof error !== "object") return undefined;
  const e = error as Record<string, unknown>;
  if (typeof e.data === "string" && /^0x[0-9a-fA-F]{8}/.test(e.data)) return e.data;
  for (const key of ["error", "info", "cause", "data"]) {
    const found = findRevertData(e[key], depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

function formatArg(value: unknown): string {
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return `[${value.map(formatArg).join(", ")}]`;
  return String(value);
}

/**
 * Turns whatever ethers threw for a call or transaction into a ConsortError:
 * a contract revert becomes TX_REVERTED naming the decoded custom error and
 * its arguments (e.g. "ConsortUnknownTask(taskId=7)"), a network failure
 * becomes a retryable RPC_UNAVAILABLE, anything else stays INTERNAL.
 */
export function toChainError(error: unknown, iface: Interface, action: string): ConsortError {
  if (error instanceof ConsortError) return error;
  const data = findRevertData(error);
  if (data !== undefined) {
    const parsed = iface.parseError(data);
    if (parsed !== null) {
      const args = parsed.fragment.inputs.map((input, i) => `${input.name}=${formatArg(parsed.args[i])}`);
      const named: Record<string, string> = {};
      parsed.fragment.inputs.forEach((input, i) => (named[input.name] = formatArg(parsed.args[i])));
      return new ConsortError("TX_REVERTED", `${action} reverted: ${parsed.name}(${args.join(", ")})`, {
        cause: error,
        details: { error: parsed.name, args: named },
      });
    }
    return new ConsortError("TX_REVERTED", `${action} reverted with unrecognised data ${data.slice(0, 74)}`, {
      cause: error,
      details: { data },
    });
  }
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === "string" && code === "CALL_EXCEPTION") {
    return new ConsortError("TX_REVERTED", `${action} reverted without a reason`, { cause: error });
  }
  if (code === "NONCE_EXPIRED" || code === "REPLACEMENT_UNDERPRICED" || /nonce too low|nonce has already been used|replacement transaction underpriced/i.test(message)) {
    // Two writes from one key took the same nonce and this one lost: nothing was sent, so sending it again is safe.
    return new ConsortError("NONCE_CONFLICT", `${action} was not sent: another transaction from the same key took its nonce; send it again`, {
      retryable: true,
      cause: error,
    });
  }
  if ((typeof code === "string" && TRANSIENT_CODES.has(code)) || /ECONNREFUSED|ECONNRESET|fetch failed|socket hang up/i.test(message)) {
    return new ConsortError("RPC_UNAVAILABLE", `${action} failed: the RPC endpoint is unavailable`, {
      retryable: true,
      cause: error,
    });
  }
  return new ConsortError("INTERNAL", `${action} failed: ${message.split("\n")[0]}`, { cause: error });
}
