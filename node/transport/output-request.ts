/**
 * How a task's requester collects its requester-only outputs from the
 * parties. The requester signs (EIP-191, with its Ethereum key: the address
 * that created the task) a short-lived request naming a fresh ephemeral
 * secp256k1 public key; each party checks the signature and the freshness,
 * then answers with its shares sealed (ECIES, ./envelope.ts) to that
 * ephemeral key. Only the holder of the ephemeral private key can read an
 * answer, and only the requester can ask: a party's shares never travel in
 * the clear, and a replayed request is useless to anyone but the requester.
 */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { getAddress, getBytes, hashMessage, hexlify } from "ethers";
import { z } from "zod";
import { ConsortError } from "../errors.ts";
import { ByteWriter, addressToBytes, uint256ToBytes } from "./binary-codec.ts";
import { isValidEncryptionPublicKey, openSealed, sealTo } from "./envelope.ts";
import { recoverSigner } from "./recover-signer.ts";

export const OUTPUT_REQUEST_VERSION = 1;
/** How long a signed request stays valid, either side of the party's clock. */
export const OUTPUT_REQUEST_MAX_SKEW_SECONDS = 300;
const DIGEST_DOMAIN = utf8ToBytes("consort/output-request/v1");
const AAD_DOMAIN = utf8ToBytes("consort/output-response/v1");

const decimal = z.string().regex(/^(0|[1-9][0-9]{0,77})$/, "expected a decimal integer");
const addressField = z.string().refine((s) => {
  try {
    getAddress(s);
    return true;
  } catch {
    return false;
  }
}, "expected an address");

const unsignedFields = {
  version: z.literal(OUTPUT_REQUEST_VERSION),
  chainId: decimal,
  registry: addressField,
  taskId: decimal,
  requester: addressField,
  /** 0x + 33-byte compressed secp256k1 key the answers are sealed to. */
  ephemeralKey: z.string().regex(/^0x0[23][0-9a-fA-F]{64}$/, "expected a 33-byte compressed public key"),
  /** Unix seconds when the requester signed. */
  issuedAt: z.number().int().nonnegative(),
};
const outputRequestSchema = z.strictObject({ ...unsignedFields, signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/, "expected 65 bytes of hex") });

export type UnsignedOutputRequest = z.infer<z.ZodObject<typeof unsignedFields>>;
export type OutputRequest = z.infer<typeof outputRequestSchema>;

/** Validates untrusted JSON; BAD_REQUEST naming the first bad field. */
export function parseOutputRequest(json: unknown): OutputRequest {
  const parsed = outputRequestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue === undefined || issue.path.length === 0 ? "request" : issue.path.join(".");
    throw new ConsortError("BAD_REQUEST", `${field}: ${issue?.message ?? "invalid"}`, { details: { field } });
  }
  return { ...parsed.data, registry: getAddress(parsed.data.registry), requester: getAddress(parsed.data.requester) };
}

/** keccak256 of the domain tag and every field, fixed width, so the encoding is unambiguous. */
export function outputRequestDigest(r: UnsignedOutputRequest): Uint8Array {
  const w = new ByteWriter(DIGEST_DOMAIN.length + 32 + 20 + 32 + 20 + 33 + 8);
  w.bytes(DIGEST_DOMAIN)
    .bytes(uint256ToBytes(BigInt(r.chainId), "chainId"))
    .bytes(addressToBytes(r.registry, "registry"))
    .bytes(uint256ToBytes(BigInt(r.taskId), "taskId"))
    .bytes(addressToBytes(r.requester, "requester"))
    .bytes(getBytes(r.ephemeralKey))
    .bytes(uint256ToBytes(BigInt(r.issuedAt), "issuedAt").subarray(24));
  return keccak_256(w.finish());
}

export async function signOutputRequest(
  unsigned: UnsignedOutputRequest,
  signer: { getAddress(): Promise<string>; signMessage(message: Uint8Array): Promise<string> },
): Promise<OutputRequest> {
  const address = getAddress(await signer.getAddress());
  if (address !== getAddress(unsigned.requester)) {
    throw new ConsortError("KEY_INVALID", `signer ${address} is not the requester ${unsigned.requester}`);
  }
  const signature = await signer.signMessage(outputRequestDigest(unsigned));
  return { ...unsigned, signature: hexlify(getBytes(signature)) };
}

/**
 * Checks a request as a party must before answering it: the signature is the
 * requester's, the request is for this chain and registry, and it was signed
 * within OUTPUT_REQUEST_MAX_SKEW_SECONDS of `nowSeconds`.
 */
export function verifyOutputRequest(r: OutputRequest, expected: { chainId: bigint; registry: string; requester: string; nowSeconds: number }): void {
  if (BigInt(r.chainId) !== expected.chainId || getAddress(r.registry) !== getAddress(expected.registry)) {
    throw new ConsortError("BAD_REQUEST", `the request is for chain ${r.chainId} registry ${r.registry}, not chain ${expected.chainId} registry ${expected.registry}`);
  }
  if (Math.abs(expected.nowSeconds - r.issuedAt) > OUTPUT_REQUEST_MAX_SKEW_SECONDS) {
    throw new ConsortError("BAD_REQUEST", `the request was signed at ${r.issuedAt}, more than ${OUTPUT_REQUEST_MAX_SKEW_SECONDS} s from now (${expected.nowSeconds}); sign a fresh one`, {
      details: { field: "issuedAt" },
    });
  }
  const signer = recoverSigner(getBytes(hashMessage(outputRequestDigest(r))), getBytes(r.signature));
  if (signer !== getAddress(r.requester)) {
    throw new ConsortError("BAD_SIGNATURE", `the request is signed by ${signer}, not by its requester ${getAddress(r.requester)}`);
  }
  if (getAddress(r.requester) !== getAddress(expected.requester)) {
    throw new ConsortError("NOT_REQUESTER", `${getAddress(r.requester)} is not the requester of task ${r.taskId}`, {
      details: { requester: getAddress(expected.requester) },
    });
  }
  if (!isValidEncryptionPublicKey(getBytes(r.ephemeralKey))) {
    throw new ConsortError("BAD_REQUEST", "ephemeralKey: not a point on secp256k1", { details: { field: "ephemeralKey" } });
  }
}

function responseAad(r: UnsignedOutputRequest, party: string): Uint8Array {
  const w = new ByteWriter(AAD_DOMAIN.length + 32 + 20 + 32 + 20 + 33);
  w.bytes(AAD_DOMAIN)
    .bytes(uint256ToBytes(BigInt(r.chainId), "chainId"))
    .bytes(addressToBytes(r.registry, "registry"))
    .bytes(uint256ToBytes(BigInt(r.taskId), "taskId"))
    .bytes(addressToBytes(party, "party"))
    .bytes(getBytes(r.ephemeralKey));
  return w.finish();
}

/** A party's answer: `payload` sealed to the request's ephemeral key, bound to the task and the party. */
export function sealOutputResponse(r: OutputRequest, party: string, payload: Uint8Array): Uint8Array {
  return sealTo(getBytes(r.ephemeralKey), payload, responseAad(r, party));
}

export function openOutputResponse(r: UnsignedOutputRequest, party: string, ephemeralPrivateKey: Uint8Array, sealed: Uint8Array): Uint8Array {
  return openSealed(ephemeralPrivateKey, sealed, responseAad(r, party));
}
