import { getBytes, hexlify } from "ethers";
import { ConsortError } from "../errors.ts";
import type { RequesterOutputShare } from "../protocol/requester-output.ts";

/** A party's requester-output shares as stored and as sealed to the requester: JSON, bytes as hex. */
export function encodeRequesterShare(share: RequesterOutputShare): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      output: share.output,
      party: share.party,
      shares: hexlify(share.shares),
      salt: hexlify(share.salt),
      digests: share.digests.map((d) => hexlify(d)),
      commitment: share.commitment,
    }),
  );
}

export function decodeRequesterShare(bytes: Uint8Array): RequesterOutputShare {
  try {
    const j = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    if (typeof j.output !== "string" || typeof j.party !== "number" || !Array.isArray(j.digests) || typeof j.commitment !== "string") {
      throw new Error("missing fields");
    }
    return {
      output: j.output,
      party: j.party,
      shares: getBytes(String(j.shares)),
      salt: getBytes(String(j.salt)),
      digests: j.digests.map((d) => getBytes(String(d))),
      commitment: j.commitment,
    };
  } catch (cause) {
    throw new ConsortError("PROTOCOL_INVALID_MESSAGE", "a requester share is malformed", { cause });
  }
}
