// Shared by the ConsortRegistry test files: a typed view of the contract, the EIP-712 attestation types, and
// signature helpers. Hardhat's mocha runner loads every .ts file under test/, so this module must stay free of
// side effects (no network connection, no describe blocks).
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { computeAddress, getBytes, hexlify, keccak256, toBeHex, SigningKey, TypedDataEncoder } from "ethers";
import type {
  BaseContract,
  BigNumberish,
  BytesLike,
  ContractRunner,
  ContractTransactionResponse,
  Signer,
  TypedDataDomain,
  TypedDataField,
} from "ethers";

// The generated typechain bindings use `export namespace`, which erasableSyntaxOnly rejects, so the tests
// describe the registry's ABI surface themselves.

/** IConsortRegistry.TaskState, as the bigint ethers decodes a uint8 enum to. */
export const TaskState = {
  None: 0n,
  AwaitingInputs: 1n,
  Computing: 2n,
  Finalized: 3n,
  Expired: 4n,
} as const;
export type TaskStateValue = (typeof TaskState)[keyof typeof TaskState];

export interface TaskParams {
  program: BytesLike;
  parties: string[];
  dataOwners: string[];
  threshold: BigNumberish;
  inputDeadline: BigNumberish;
  resultDeadline: BigNumberish;
}

export interface PartyRecord {
  encryptionKey: string;
  endpoint: string;
  registeredAt: bigint;
  updatedAt: bigint;
}

export interface TaskRecord {
  programHash: string;
  requester: string;
  threshold: bigint;
  createdAtBlock: bigint;
  inputDeadline: bigint;
  resultDeadline: bigint;
  inputsCommitted: bigint;
  finalizedAtBlock: bigint;
  expiredAtBlock: bigint;
  resultHash: string;
  parties: string[];
  dataOwners: string[];
}

type Send<A extends unknown[]> = ((...args: A) => Promise<ContractTransactionResponse>) & {
  estimateGas(...args: A): Promise<bigint>;
};

export interface ConsortRegistry extends BaseContract {
  connect(runner: ContractRunner | null): ConsortRegistry;
  registerParty: Send<[encryptionKey: BytesLike, endpoint: string]>;
  updateParty: Send<[encryptionKey: BytesLike, endpoint: string]>;
  createTask: Send<[params: TaskParams]> & { staticCall(params: TaskParams): Promise<bigint> };
  commitInput: Send<[taskId: BigNumberish, commitment: BytesLike]>;
  finalizeTask: Send<[taskId: BigNumberish, result: BytesLike, signatures: BytesLike[]]>;
  expireTask: Send<[taskId: BigNumberish]>;
  getParty(account: string): Promise<PartyRecord>;
  isRegistered(account: string): Promise<boolean>;
  getTask(taskId: BigNumberish): Promise<TaskRecord>;
  taskState(taskId: BigNumberish): Promise<bigint>;
  inputCommitments(taskId: BigNumberish): Promise<string[]>;
  attestationDigest(taskId: BigNumberish, resultHash: BytesLike): Promise<string>;
  taskCount(): Promise<bigint>;
  eip712Domain(): Promise<[string, string, string, bigint, string, string, bigint[]]>;
}

/** EIP-712 types of the struct a party signs (IConsortRegistry.attestationDigest). */
export const ATTESTATION_TYPES: Record<string, TypedDataField[]> = {
  ResultAttestation: [
    { name: "taskId", type: "uint256" },
    { name: "programHash", type: "bytes32" },
    { name: "inputCommitments", type: "bytes32[]" },
    { name: "resultHash", type: "bytes32" },
  ],
};

export interface Attestation {
  taskId: bigint;
  programHash: string;
  inputCommitments: string[];
  resultHash: string;
}

export async function attestationDomain(registry: ConsortRegistry, chainId: bigint): Promise<TypedDataDomain> {
  return { name: "ConsortRegistry", version: "1", chainId, verifyingContract: await registry.getAddress() };
}

/** The attestation a party would sign for `result` on the task as it is stored now. */
export async function attestationFor(
  registry: ConsortRegistry,
  taskId: bigint,
  result: BytesLike
): Promise<Attestation> {
  const task = await registry.getTask(taskId);
  return {
    taskId,
    programHash: task.programHash,
    inputCommitments: [...(await registry.inputCommitments(taskId))],
    resultHash: keccak256(result),
  };
}

export function attestationHash(domain: TypedDataDomain, value: Attestation): string {
  return TypedDataEncoder.hash(domain, ATTESTATION_TYPES, value);
}

export async function signAttestation(signer: Signer, domain: TypedDataDomain, value: Attestation): Promise<string> {
  return signer.signTypedData(domain, ATTESTATION_TYPES, value);
}

/** A deterministic SEC1-compressed secp256k1 public key, as a party would register for share encryption. */
export function encryptionKeyFor(label: string): string {
  return new SigningKey(keccak256(new TextEncoder().encode(`consort-test-encryption-key:${label}`)))
    .compressedPublicKey;
}

/** secp256k1 group order n (SEC 2, section 2.4.1). */
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/**
 * The malleated twin (r, n - s, v ^ 1) of a 65-byte signature: it recovers to the same signer, which is why
 * EIP-2 / OpenZeppelin's ECDSA refuse any s above n / 2.
 */
export function highSTwin(signature: string): string {
  const bytes = getBytes(signature);
  if (bytes.length !== 65) throw new Error(`expected a 65-byte signature, got ${bytes.length} bytes`);
  const s = BigInt(hexlify(bytes.slice(32, 64)));
  const v = bytes[64] === 27 ? 28 : 27;
  return hexlify(new Uint8Array([...bytes.slice(0, 32), ...getBytes(toBeHex(SECP256K1_N - s, 32)), v]));
}

/**
 * The address that plain secp256k1 public-key recovery (SEC 1 v2, section 4.1.6) yields for a 65-byte (r, s, v)
 * signature, without the low-s rule ethers and OpenZeppelin enforce: it shows that a high-s twin is a valid
 * signature of the same key, refused by policy only.
 */
export function recoverWithoutLowS(digest: string, signature: string): string {
  const bytes = getBytes(signature);
  const v = bytes[64];
  if (bytes.length !== 65 || (v !== 27 && v !== 28)) throw new Error(`expected a 65-byte signature with v 27 or 28`);
  const point = secp256k1.Signature.fromBytes(bytes.slice(0, 64), "compact")
    .addRecoveryBit(v - 27)
    .recoverPublicKey(getBytes(digest));
  return computeAddress(hexlify(point.toBytes(false)));
}
