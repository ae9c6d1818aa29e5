import { Wallet, type JsonRpcProvider } from "ethers";
import { loadDeployment } from "../chain/deployments.ts";
import { RegistryClient } from "../chain/registry-client.ts";
import { connectProvider } from "../chain/rpc-provider.ts";
import { loadSigningKey } from "../chain/signing-key.ts";

/** Options shared by every client command (requester, data owner, auditor, operator). */
export interface ConnectionOptions {
  rpc: string;
  registry?: string | undefined;
  deploymentsDir?: string | undefined;
  keyFile?: string | undefined;
}

export interface ClientConnection {
  readonly provider: JsonRpcProvider;
  readonly chainId: bigint;
  readonly registry: RegistryClient;
  /** The signer, when the command needs one (see `withSigner`). */
  readonly wallet: Wallet | undefined;
  close(): void;
}

/**
 * Connects to the chain and the registry: `--registry` when given, else the
 * deployment recorded for the chain's id. With `withSigner`, also loads the
 * key (from --key-file or CONSORT_PRIVATE_KEY) and binds the registry to it.
 */
export async function connectClient(options: ConnectionOptions, withSigner: boolean): Promise<ClientConnection> {
  const provider = await connectProvider(options.rpc, { pollingIntervalMs: 200 });
  try {
    const chainId = (await provider.getNetwork()).chainId;
    const address = options.registry ?? loadDeployment(chainId, options.deploymentsDir).registry;
    const wallet = withSigner ? loadSigningKey(options.keyFile).connect(provider) : undefined;
    const registry = await RegistryClient.connect(wallet ?? provider, address);
    return { provider, chainId, registry, wallet, close: () => provider.destroy() };
  } catch (error) {
    provider.destroy();
    throw error;
  }
}

