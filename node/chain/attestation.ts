import { TypedDataEncoder, keccak256, recoverAddress, type Signature, type TypedDataDomain, type Signer } from "ethers";

/**
 * EIP-712 typed data for a party's attestation of a task result. It must
 * match ConsortRegistry.attestationDigest exactly: domain (name
 * "ConsortRegistry", version "1", chain id, registry address) and the struct
 * ResultAttestation(uint256 taskId,bytes32 programHash,bytes32[] inputCommitments,bytes32 resultHash).
 * Binding chain id and registry in the domain stops an attestation from being
 * replayed on another chain or another deployment (EIP-712 §"Definition of domainSeparator").
 */
export const RESULT_ATTESTATION_TYPES = {
  ResultAttestation: [
    { name: "taskId", type: "uint256" },
    { name: "programHash", type: "bytes32" },
    { name: "inputCommitments", type: "bytes32[]" },
    { name: "resultHash", type: "bytes32" },
  ],
} as const;

export interface ResultAttestation {
  readonly taskId: bigint;
  readonly programHash: string;
  readonly inputCommitments: readonly string[];
  readonly resultHash: string;
}

export function attestationDomain(chainId: bigint, registry: string): TypedDataDomain {
  return { name: "ConsortRegistry", version: "1", chainId, verifyingContract: registry };
}

function mutableTypes(): Record<string, { name: string; type: string }[]> {
  return { ResultAttestation: RESULT_ATTESTATION_TYPES.ResultAttestation.map((f) => ({ ...f })) };
}

function value(a: ResultAttestation): Record<string, unknown> {
  return { taskId: a.taskId, programHash: a.programHash, inputCommitments: [...a.inputCommitments], resultHash: a.resultHash };
}

/** The digest the registry recovers signers from. */
export function attestationDigest(chainId: bigint, registry: string, attestation: ResultAttestation): string {
  return TypedDataEncoder.hash(attestationDomain(chainId, registry), mutableTypes(), value(attestation));
}

export async function signAttestation(signer: Signer, chainId: bigint, registry: string, attestation: ResultAttestation): Promise<string> {
  return signer.signTypedData(attestationDomain(chainId, registry), mutableTypes(), value(attestation));
}

export function recoverAttestationSigner(
  chainId: bigint,
  registry: string,
  attestation: ResultAttestation,
  signature: string | Signature,
): string {
  return recoverAddress(attestationDigest(chainId, registry, attestation), signature);
}

export function resultHashOf(result: Uint8Array): string {
  return keccak256(result);
}
