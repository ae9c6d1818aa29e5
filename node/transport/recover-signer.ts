/**
 * secp256k1 signer recovery for the signed JSON requests of data owners and
 * requesters (./share-submission.ts, ./output-request.ts) and for frame-key
 * certificates (./peer-frame.ts).
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { hexlify, recoverAddress } from "ethers";
import { ConsortError } from "../errors.ts";
import { bytesToUint256, describeValue } from "./binary-codec.ts";

const SIGNATURE_BYTES = 65;
const SECP256K1_N = secp256k1.Point.CURVE().n;

function badSignature(message: string): ConsortError {
  return new ConsortError("BAD_SIGNATURE", message, { details: {} });
}

/**
 * Recovers the address that produced the 65-byte r||s||v `signature` over the 32-byte
 * `digest`, accepting only canonical signatures; BAD_SIGNATURE otherwise.
 */
export function recoverSigner(digest: Uint8Array, signature: Uint8Array): string {
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) {
    throw badSignature(`signature must be ${SIGNATURE_BYTES} bytes, got ${describeValue(signature)}`);
  }
  const r = bytesToUint256(signature.subarray(0, 32));
  const s = bytesToUint256(signature.subarray(32, 64));
  const v = signature[64];
  if (v !== 27 && v !== 28) throw badSignature(`signature v must be 27 or 28, got ${v}`);
  if (r === 0n || r >= SECP256K1_N) throw badSignature("signature r is out of range");
  if (s === 0n || s > SECP256K1_N / 2n) throw badSignature("signature s is zero or not in the lower half order (EIP-2)");
  try {
    return recoverAddress(digest, hexlify(signature));
  } catch (cause) {
    // r is not the x-coordinate of any curve point.
    throw new ConsortError("BAD_SIGNATURE", "signature does not recover to a public key", { cause });
  }
}
