/**
 * Shared set-up of the Hardhat scripts. `npx hardhat run` passes no script
 * arguments, so the scripts read CONSORT_* environment variables; the
 * network comes from `--network` (e.g. localhost for `npx hardhat node`).
 * The scripts stay thin: all logic lives in node/.
 */
import { network } from "hardhat";
import type { Signer } from "ethers";
import { loadDeployment } from "../node/chain/deployments.ts";
import { RegistryClient } from "../node/chain/registry-client.ts";
import { ConsortError, toConsortError } from "../node/errors.ts";
import { parsePrivateKey } from "../node/chain/signing-key.ts";

export function requireEnv(name: string, what: string): string {
  const value = process.env[name];
  if (value === undefined || value.trim() === "") {
    throw new ConsortError("CONFIG_INVALID", `set ${name} to ${what}`);
  }
  return value.trim();
}

/**
 * The signer: CONSORT_PRIVATE_KEY when set, else the network's account
 * number CONSORT_ACCOUNT (default 0; Hardhat's funded development accounts).
 */
export async function scriptSigner(): Promise<{ signer: Signer; address: string; chainId: bigint; provider: NonNullable<Signer["provider"]> }> {
  const { ethers } = await network.getOrCreate();
  const provider = ethers.provider;
  const chainId = (await provider.getNetwork()).chainId;
  const key = process.env.CONSORT_PRIVATE_KEY;
  let signer: Signer;
  if (key !== undefined && key !== "") {
    signer = parsePrivateKey(key, "CONSORT_PRIVATE_KEY").connect(provider);
  } else {
    const index = Number(process.env.CONSORT_ACCOUNT ?? "0");
    const signers = await ethers.getSigners();
    const chosen = signers[index];
    if (!Number.isInteger(index) || chosen === undefined) {
      throw new ConsortError("CONFIG_INVALID", `CONSORT_ACCOUNT=${process.env.CONSORT_ACCOUNT} is not one of the network's ${signers.length} accounts`);
    }
    signer = chosen;
  }
  return { signer, address: await signer.getAddress(), chainId, provider };
}

/** The registry recorded for this chain (or CONSORT_REGISTRY), bound to `signer`. */
export async function scriptRegistry(signer: Signer, chainId: bigint): Promise<RegistryClient> {
  const address = process.env.CONSORT_REGISTRY ?? loadDeployment(chainId).registry;
  return RegistryClient.connect(signer, address);
}

/** Runs a script body, printing one line and exiting non-zero on failure. */
export async function runScript(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    const e = toConsortError(error);
    process.stderr.write(`${e.code}: ${e.message}\n`);
    process.exitCode = 1;
  }
}
