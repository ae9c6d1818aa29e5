import { JsonRpcProvider, Network } from "ethers";
import { ConsortError } from "../errors.ts";

export interface ProviderOptions {
  /** How often ethers polls for new blocks and receipts. */
  pollingIntervalMs?: number;
  /** How long the initial eth_chainId probe may take. */
  timeoutMs?: number;
}

/**
 * Asks an RPC endpoint for its chain id with one plain JSON-RPC call.
 * ethers' JsonRpcProvider retries network detection forever (logging to the
 * console) when the endpoint is down; we probe first so that an RPC that is
 * down becomes one clear, retryable error naming the URL.
 */
export async function probeChainId(rpcUrl: string, timeoutMs = 5_000): Promise<bigint> {
  let response: Response;
  try {
    response = await fetch(rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (cause) {
    throw new ConsortError("RPC_UNAVAILABLE", `RPC endpoint ${rpcUrl} is unreachable`, {
      retryable: true,
      cause,
      details: { rpcUrl },
    });
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch (cause) {
    throw new ConsortError("RPC_UNAVAILABLE", `RPC endpoint ${rpcUrl} answered HTTP ${response.status} without JSON`, {
      retryable: true,
      cause,
      details: { rpcUrl, status: response.status },
    });
  }
  const result = (body as { result?: unknown }).result;
  if (typeof result !== "string" || !/^0x[0-9a-fA-F]+$/.test(result)) {
    throw new ConsortError("RPC_UNAVAILABLE", `RPC endpoint ${rpcUrl} did not return a chain id`, {
      retryable: true,
      details: { rpcUrl, status: response.status },
    });
  }
  return BigInt(result);
}

/** A JsonRpcProvider pinned to the chain the endpoint reported, so ethers never re-detects it. */
export async function connectProvider(rpcUrl: string, options: ProviderOptions = {}): Promise<JsonRpcProvider> {
  const chainId = await probeChainId(rpcUrl, options.timeoutMs);
  const provider = new JsonRpcProvider(rpcUrl, Network.from(chainId), {
    staticNetwork: true,
    pollingInterval: options.pollingIntervalMs ?? 1_000,
    batchMaxCount: 1,
  });
  provider.pollingInterval = options.pollingIntervalMs ?? 1_000;
  return provider;
}
