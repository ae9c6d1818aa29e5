import { readFileSync } from "node:fs";
import { Interface, type InterfaceAbi } from "ethers";
import { ConsortError } from "../errors.ts";

export interface RegistryArtifact {
  readonly abi: InterfaceAbi;
  readonly bytecode: string;
  readonly iface: Interface;
}

const ARTIFACT_URL = new URL("../../artifacts/contracts/ConsortRegistry.sol/ConsortRegistry.json", import.meta.url);
let cached: RegistryArtifact | undefined;

/**
 * The registry's ABI and bytecode, read from Hardhat's build output (the one
 * source of truth: no hand-copied ABI to drift from the contract).
 */
export function loadRegistryArtifact(): RegistryArtifact {
  if (cached !== undefined) return cached;
  let json: { abi: InterfaceAbi; bytecode: string };
  try {
    json = JSON.parse(readFileSync(ARTIFACT_URL, "utf8")) as { abi: InterfaceAbi; bytecode: string };
  } catch (cause) {
    throw new ConsortError(
      "CONTRACT_NOT_FOUND",
      "the ConsortRegistry artifact is missing: run `npx hardhat build` (npm run compile) first",
      { cause },
    );
  }
  cached = Object.freeze({ abi: json.abi, bytecode: json.bytecode, iface: new Interface(json.abi) });
  return cached;
}
