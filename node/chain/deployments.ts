import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ContractFactory, getAddress, type Signer } from "ethers";
import { ConsortError } from "../errors.ts";
import { toChainError } from "./chain-errors.ts";
import { loadRegistryArtifact } from "./registry-artifact.ts";

/** Where a registry was deployed on one chain; the scripts and the CLI find it here by chain id. */
export interface DeploymentRecord {
  readonly chainId: string;
  readonly registry: string;
  readonly blockNumber: number;
  readonly txHash: string;
  readonly deployer: string;
  readonly deployedAt: string;
}

/** `deployments/` at the project root, unless CONSORT_DEPLOYMENTS_DIR says otherwise. */
export function defaultDeploymentsDir(): string {
  const fromEnv = process.env.CONSORT_DEPLOYMENTS_DIR;
  if (fromEnv !== undefined && fromEnv !== "") return resolve(fromEnv);
  return fileURLToPath(new URL("../../deployments/", import.meta.url));
}

function deploymentFile(dir: string, chainId: bigint | string): string {
  return join(dir, `${chainId.toString()}.json`);
}

export function saveDeployment(record: DeploymentRecord, dir = defaultDeploymentsDir()): string {
  mkdirSync(dir, { recursive: true });
  const file = deploymentFile(dir, record.chainId);
  // Write then rename, so a reader never sees half a file.
  writeFileSync(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  return file;
}

export function loadDeployment(chainId: bigint | string, dir = defaultDeploymentsDir()): DeploymentRecord {
  const file = deploymentFile(dir, chainId);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw new ConsortError(
      "DEPLOYMENT_NOT_FOUND",
      `no registry deployment is recorded for chain ${chainId} (looked for ${file}); deploy one with scripts/deploy.ts or pass --registry`,
      { cause, details: { chainId: chainId.toString(), file } },
    );
  }
  return parseDeploymentRecord(text, file, chainId.toString());
}

/** Checks a deployment file's fields, so a hand-edited or truncated file is one clear error naming the file. */
function parseDeploymentRecord(text: string, file: string, chainId: string): DeploymentRecord {
  const invalid = (what: string, cause?: unknown) =>
    new ConsortError("CONFIG_INVALID", `deployment record ${file} is invalid: ${what}`, { cause, details: { chainId, file } });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw invalid("not JSON", cause);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw invalid("not a JSON object");
  const r = json as Record<string, unknown>;
  for (const field of ["chainId", "registry", "txHash", "deployer", "deployedAt"] as const) {
    if (typeof r[field] !== "string") throw invalid(`${field} must be a string`);
  }
  if (r.chainId !== chainId) throw invalid(`it records chain ${String(r.chainId)}, not chain ${chainId}`);
  if (typeof r.blockNumber !== "number" || !Number.isSafeInteger(r.blockNumber) || r.blockNumber < 0) {
    throw invalid(`blockNumber must be a whole number >= 0, got ${JSON.stringify(r.blockNumber)}`);
  }
  let registry: string;
  let deployer: string;
  try {
    registry = getAddress(r.registry as string);
    deployer = getAddress(r.deployer as string);
  } catch (cause) {
    throw invalid(`registry ${JSON.stringify(r.registry)} or deployer ${JSON.stringify(r.deployer)} is not an address`, cause);
  }
  return {
    chainId,
    registry,
    blockNumber: r.blockNumber,
    txHash: r.txHash as string,
    deployer,
    deployedAt: r.deployedAt as string,
  };
}

/** Deploys a ConsortRegistry with `signer` and waits for the receipt. */
export async function deployRegistry(signer: Signer): Promise<DeploymentRecord> {
  const { abi, bytecode, iface } = loadRegistryArtifact();
  const provider = signer.provider;
  if (provider === null) throw new ConsortError("CONFIG_INVALID", "the deployer signer has no provider");
  try {
    const factory = new ContractFactory(abi, bytecode, signer);
    const contract = await factory.deploy();
    const tx = contract.deploymentTransaction();
    const receipt = tx === null ? null : await tx.wait(1);
    if (receipt === null || receipt.status !== 1 || receipt.contractAddress === null) {
      throw new ConsortError("TX_REVERTED", "the registry deployment transaction failed");
    }
    const { chainId } = await provider.getNetwork();
    return {
      chainId: chainId.toString(),
      registry: getAddress(receipt.contractAddress),
      blockNumber: receipt.blockNumber,
      txHash: receipt.hash,
      deployer: await signer.getAddress(),
      deployedAt: new Date().toISOString(),
    };
  } catch (error) {
    throw toChainError(error, iface, "deploy ConsortRegistry");
  }
}
