import { createHash } from "node:crypto";
import { expect } from "chai";
import fc from "fast-check";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { concatBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { SigningKey, Wallet, getAddress, hexlify } from "ethers";
import { isConsortError } from "../../node/errors.ts";
import { generateEncryptionKey } from "../../node/transport/envelope.ts";
import {
  decodeSignedPeerMessage,
  encodeSignedPeerMessage,
  encodeUnsignedPeerMessage,
  labelKey,
  openPayload,
  peerMessageDigest,
  sealPayload,
  signPeerMessage,
  verifyPeerMessageSignature,
} from "../../node/transport/peer-message.ts";
import type { MessageLabel, PeerMessage, SignedPeerMessage } from "../../node/transport/peer-message.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

// Fixed keys so failures reproduce.
const alice = new Wallet("0x" + "11".repeat(32));
const bob = new Wallet("0x" + "22".repeat(32));
const registry = getAddress("0x" + "ab".repeat(20));
const N = secp256k1.Point.CURVE().n;

function baseMessage(overrides: Partial<PeerMessage> = {}): PeerMessage {
  return {
    chainId: 31337n,
    registry,
    label: { taskId: 7n, round: 2, gate: "open:0-3" },
    from: alice.address,
    to: bob.address,
    sealed: Uint8Array.from({ length: 16 }, (_, i) => i),
    ...overrides,
  };
}

const uint256 = fc.bigInt({ min: 0n, max: (1n << 256n) - 1n });
const gate = fc
  .array(fc.integer({ min: 0x21, max: 0x7e }), { minLength: 1, maxLength: 128 })
  .map((cs) => String.fromCharCode(...cs));
const label: fc.Arbitrary<MessageLabel> = fc.record({ taskId: uint256, round: fc.integer({ min: 0, max: 2 ** 32 - 1 }), gate });
const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => getAddress(hexlify(b)));

describe("transport/peer-message", () => {
  describe("labels", () => {
    it("has a canonical key", () => {
      expect(labelKey({ taskId: 7n, round: 2, gate: "open:0-3" })).to.equal("task/7/round/2/gate/open:0-3");
      expect(labelKey({ taskId: (1n << 256n) - 1n, round: 0, gate: "mul:12-99" })).to.equal(
        `task/${(1n << 256n) - 1n}/round/0/gate/mul:12-99`,
      );
    });

    it("rejects bad labels naming the field", () => {
      const ok = { taskId: 1n, round: 0, gate: "g" };
      expectCode(() => labelKey({ ...ok, taskId: -1n }), "BAD_REQUEST", { field: "label.taskId" });
      expectCode(() => labelKey({ ...ok, taskId: 1n << 256n }), "BAD_REQUEST", { field: "label.taskId" });
      expectCode(() => labelKey({ ...ok, taskId: 1 as unknown as bigint }), "BAD_REQUEST", { field: "label.taskId" });
      expectCode(() => labelKey({ ...ok, round: -1 }), "BAD_REQUEST", { field: "label.round" });
      expectCode(() => labelKey({ ...ok, round: 2 ** 32 }), "BAD_REQUEST", { field: "label.round" });
      expectCode(() => labelKey({ ...ok, round: 1.5 }), "BAD_REQUEST", { field: "label.round" });
      expectCode(() => labelKey({ ...ok, gate: "" }), "BAD_REQUEST", { field: "label.gate" });
      expectCode(() => labelKey({ ...ok, gate: "x".repeat(129) }), "BAD_REQUEST", { field: "label.gate" });
      expectCode(() => labelKey({ ...ok, gate: "open 0-3" }), "BAD_REQUEST", { field: "label.gate" });
      expectCode(() => labelKey({ ...ok, gate: "öpen" }), "BAD_REQUEST", { field: "label.gate" });
      expectCode(() => labelKey({ ...ok, gate: "a\nb" }), "BAD_REQUEST", { field: "label.gate" });
      expect(labelKey({ ...ok, gate: "x".repeat(128) })).to.have.length(`task/1/round/0/gate/`.length + 128);
    });
  });

  describe("digest", () => {
    it("is keccak256 of the domain tag and the canonical fields", () => {
      const msg = baseMessage();
      const body = encodeUnsignedPeerMessage(msg);
      expect(peerMessageDigest(msg)).to.deep.equal(keccak_256(concatBytes(utf8ToBytes("consort/peer-message/v1"), body)));
      // The payload enters by its SHA-256 hash (native, fast on large batches): the last 32 bytes.
      expect(body.subarray(body.length - 32)).to.deep.equal(new Uint8Array(createHash("sha256").update(msg.sealed).digest()));
    });

    it("changes when any covered field changes", () => {
      const msg = baseMessage();
      const digest = hexlify(peerMessageDigest(msg));
      const variants: PeerMessage[] = [
        { ...msg, chainId: 1n },
        { ...msg, registry: getAddress("0x" + "ac".repeat(20)) },
        { ...msg, label: { ...msg.label, taskId: 8n } },
        { ...msg, label: { ...msg.label, round: 3 } },
        { ...msg, label: { ...msg.label, gate: "open:0-4" } },
        { ...msg, from: bob.address },
        { ...msg, to: alice.address },
        { ...msg, sealed: concatBytes(msg.sealed, new Uint8Array(1)) },
      ];
      const seen = new Set([digest]);
      for (const v of variants) seen.add(hexlify(peerMessageDigest(v)));
      expect(seen.size).to.equal(variants.length + 1);
    });
  });

  describe("encoding", () => {
    it("round-trips random messages and verifies (property)", () => {
      const signers = [alice, bob];
      fc.assert(
        fc.property(
          uint256,
          address,
          label,
          fc.integer({ min: 0, max: 1 }),
          address,
          fc.uint8Array({ maxLength: 2048 }),
          (chainId, reg, lbl, signerIndex, to, sealed) => {
            const signer = signers[signerIndex] as Wallet;
            const signed = signPeerMessage({ chainId, registry: reg, label: lbl, from: signer.address, to, sealed }, signer);
            const bytes = encodeSignedPeerMessage(signed);
            expect(bytes.length).to.equal(1 + 32 + 20 + 32 + 4 + 1 + lbl.gate.length + 20 + 20 + 4 + sealed.length + 65);
            const decoded = decodeSignedPeerMessage(bytes);
            expect(decoded).to.deep.equal(signed);
            expect(verifyPeerMessageSignature(decoded)).to.equal(signer.address);
          },
        ),
        { seed: 42, numRuns: 40 },
      );
    });

    it("accepts a SigningKey as well as a Wallet, and lower-case addresses", () => {
      const msg = baseMessage({ from: alice.address.toLowerCase(), to: bob.address.toLowerCase() });
      const signed = signPeerMessage(msg, new SigningKey(alice.privateKey));
      expect(signed.from).to.equal(alice.address);
      expect(signed.to).to.equal(bob.address);
      expect(verifyPeerMessageSignature(decodeSignedPeerMessage(encodeSignedPeerMessage(signed)))).to.equal(alice.address);
    });

    it("detects every flipped bit: decoding or signature verification fails", () => {
      const bytes = encodeSignedPeerMessage(signPeerMessage(baseMessage(), alice));
      // Every byte, with the flipped bit cycling through all eight positions.
      for (let i = 0; i < bytes.length; i++) {
        const flipped = bytes.slice();
        flipped[i] = (flipped[i] as number) ^ (1 << i % 8);
        const err = caught(() => verifyPeerMessageSignature(decodeSignedPeerMessage(flipped)));
        expect(isConsortError(err), `byte ${i}: ${String(err)}`).to.equal(true);
        expect(["BAD_REQUEST", "BAD_SIGNATURE"], `byte ${i}`).to.include((err as { code: string }).code);
      }
    });

    it("detects flipped bits in random messages (property)", () => {
      fc.assert(
        fc.property(label, fc.uint8Array({ minLength: 1, maxLength: 256 }), fc.nat(), (lbl, sealed, position) => {
          const bytes = encodeSignedPeerMessage(signPeerMessage(baseMessage({ label: lbl, sealed }), alice));
          const bit = position % (bytes.length * 8);
          bytes[bit >> 3] = (bytes[bit >> 3] as number) ^ (1 << (bit & 7));
          const err = caught(() => verifyPeerMessageSignature(decodeSignedPeerMessage(bytes)));
          expect(isConsortError(err), String(err)).to.equal(true);
          expect(["BAD_REQUEST", "BAD_SIGNATURE"]).to.include((err as { code: string }).code);
        }),
        { seed: 42, numRuns: 60 },
      );
    });

    it("rejects malformed encodings with BAD_REQUEST naming the field", () => {
      const bytes = encodeSignedPeerMessage(signPeerMessage(baseMessage(), alice));
      const gateAt = 1 + 32 + 20 + 32 + 4;
      const sealedLengthAt = gateAt + 1 + "open:0-3".length + 40;
      const set = (offset: number, value: number) => {
        const b = bytes.slice();
        b[offset] = value;
        return b;
      };
      expectCode(() => decodeSignedPeerMessage(new Uint8Array(0)), "BAD_REQUEST", { field: "version" });
      expectCode(() => decodeSignedPeerMessage(set(0, 2)), "BAD_REQUEST", { field: "version" });
      expectCode(() => decodeSignedPeerMessage(bytes.subarray(0, 40)), "BAD_REQUEST", { field: "registry" });
      expectCode(() => decodeSignedPeerMessage(set(gateAt, 0)), "BAD_REQUEST", { field: "label.gate" });
      expectCode(() => decodeSignedPeerMessage(set(gateAt, 129)), "BAD_REQUEST", { field: "label.gate" });
      expectCode(() => decodeSignedPeerMessage(set(gateAt + 1, 0x20)), "BAD_REQUEST", { field: "label.gate" });
      expectCode(() => decodeSignedPeerMessage(set(gateAt + 1, 0xc3)), "BAD_REQUEST", { field: "label.gate" });
      expectCode(() => decodeSignedPeerMessage(set(sealedLengthAt + 3, 17)), "BAD_REQUEST", { field: "sealed" });
      expectCode(() => decodeSignedPeerMessage(set(sealedLengthAt, 0xff)), "BAD_REQUEST", { field: "sealed" });
      expectCode(() => decodeSignedPeerMessage(bytes.subarray(0, bytes.length - 1)), "BAD_REQUEST", { field: "sealed" });
      expectCode(() => decodeSignedPeerMessage(concatBytes(bytes, new Uint8Array(1))), "BAD_REQUEST", { field: "sealed" });
    });

    it("rejects bad fields when encoding, naming them", () => {
      const signed = signPeerMessage(baseMessage(), alice);
      expectCode(() => encodeSignedPeerMessage({ ...signed, registry: "0x1234" }), "BAD_REQUEST", { field: "registry" });
      expectCode(() => encodeSignedPeerMessage({ ...signed, to: "bob" }), "BAD_REQUEST", { field: "to" });
      // Mixed case with a wrong EIP-55 checksum.
      const badChecksum = alice.address.slice(0, 2) + alice.address.slice(2).replace(/[a-f]/, (c) => c.toUpperCase());
      expectCode(() => encodeSignedPeerMessage({ ...signed, from: badChecksum }), "BAD_REQUEST", { field: "from" });
      expectCode(() => encodeSignedPeerMessage({ ...signed, chainId: -1n }), "BAD_REQUEST", { field: "chainId" });
      expectCode(() => encodeSignedPeerMessage({ ...signed, signature: new Uint8Array(64) }), "BAD_REQUEST", { field: "signature" });
      expectCode(() => encodeSignedPeerMessage({ ...signed, label: { ...signed.label, gate: "" } }), "BAD_REQUEST", { field: "label.gate" });
    });
  });

  describe("signatures", () => {
    it("rejects a message signed by another key", () => {
      const forged: SignedPeerMessage = { ...signPeerMessage(baseMessage({ from: bob.address }), bob), from: alice.address };
      expectCode(() => verifyPeerMessageSignature(forged), "BAD_SIGNATURE");
      const decoded = decodeSignedPeerMessage(encodeSignedPeerMessage(forged));
      expectCode(() => verifyPeerMessageSignature(decoded), "BAD_SIGNATURE");
    });

    it("refuses to sign as someone else (KEY_INVALID)", () => {
      expectCode(() => signPeerMessage(baseMessage({ from: bob.address }), alice), "KEY_INVALID");
      expectCode(() => signPeerMessage(baseMessage(), {} as unknown as Wallet), "KEY_INVALID");
    });

    it("rejects malleated and non-canonical signatures", () => {
      const signed = signPeerMessage(baseMessage(), alice);
      const sig = signed.signature;
      const s = BigInt(hexlify(sig.subarray(32, 64)));
      // (r, n - s, flipped v) is the same ECDSA signature mathematically (EIP-2 malleability).
      const highS = sig.slice();
      highS.set(Uint8Array.from(Buffer.from((N - s).toString(16).padStart(64, "0"), "hex")), 32);
      highS[64] = sig[64] === 27 ? 28 : 27;
      expectCode(() => verifyPeerMessageSignature({ ...signed, signature: highS }), "BAD_SIGNATURE");
      const v01 = sig.slice();
      v01[64] = (sig[64] as number) - 27;
      expectCode(() => verifyPeerMessageSignature({ ...signed, signature: v01 }), "BAD_SIGNATURE");
      const rZero = sig.slice();
      rZero.fill(0, 0, 32);
      expectCode(() => verifyPeerMessageSignature({ ...signed, signature: rZero }), "BAD_SIGNATURE");
      const rHigh = sig.slice();
      rHigh.fill(0xff, 0, 32);
      expectCode(() => verifyPeerMessageSignature({ ...signed, signature: rHigh }), "BAD_SIGNATURE");
      expectCode(() => verifyPeerMessageSignature({ ...signed, signature: sig.subarray(0, 64) }), "BAD_SIGNATURE");
    });
  });

  describe("payloads", () => {
    it("seal to the recipient and open under the same label and parties", () => {
      const bobKey = generateEncryptionKey();
      const context = baseMessage();
      const payload = Uint8Array.from({ length: 320 }, (_, i) => i & 0xff);
      const msg = { ...context, sealed: sealPayload(bobKey.publicKey, context, payload) };
      const received = decodeSignedPeerMessage(encodeSignedPeerMessage(signPeerMessage(msg, alice)));
      expect(openPayload(bobKey.privateKey, received)).to.deep.equal(payload);
    });

    it("cannot be replayed under another label, chain, registry or sender", () => {
      const bobKey = generateEncryptionKey();
      const context = baseMessage();
      const sealed = sealPayload(bobKey.publicKey, context, utf8ToBytes("round 2 batch"));
      const replays: PeerMessage[] = [
        { ...context, sealed, label: { ...context.label, round: 3 } },
        { ...context, sealed, label: { ...context.label, gate: "open:4-7" } },
        { ...context, sealed, label: { ...context.label, taskId: 8n } },
        { ...context, sealed, chainId: 1n },
        { ...context, sealed, registry: getAddress("0x" + "cd".repeat(20)) },
        // A corrupt party re-signing an honest party's ciphertext as its own.
        { ...context, sealed, from: getAddress("0x" + "ef".repeat(20)) },
      ];
      for (const replay of replays) expectCode(() => openPayload(bobKey.privateKey, replay), "DECRYPTION_FAILED");
      expectCode(() => openPayload(generateEncryptionKey().privateKey, { ...context, sealed }), "DECRYPTION_FAILED");
    });
  });
});
