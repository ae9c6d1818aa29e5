import { generateKeyPairSync, hkdfSync } from "node:crypto";
import { expect } from "chai";
import { TypedDataEncoder, Wallet, getAddress, verifyTypedData } from "ethers";
import fc from "fast-check";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import {
  CHECKPOINT_RECORD,
  FRAME_KEY_TYPES,
  FRAME_RECORD,
  SESSION_END,
  decodeSession,
  ed25519RawPublicKey,
  encodeSessionBody,
  frameDigest,
  frameKeyCertificateDigest,
  frameKeyDomain,
  fnv1a64,
  frameNonce,
  openFrame,
  parseCheckpoint,
  parseFrame,
  MAX_CHECKPOINT_FRAMES,
  recordBytesOf,
  sealCheckpoint,
  sealFrame,
  verifyCheckpoint,
  verifyFrameEvidence,
  verifyFrameKeyCertificate,
} from "../../node/transport/peer-frame.ts";
import type { FrameSession } from "../../node/transport/peer-frame.ts";
import { StaticSecrets, directionKey } from "../../node/transport/session-keys.ts";
import { CHAIN_ID, REGISTRY, TASK, party, thrown } from "./peer-fixtures.ts";

const alice = party("alice", 0x61);
const bob = party("bob", 0x62);

/** A certified session of `from` to `to` for `taskId`, with its Ed25519 key. */
function session(taskId = TASK, signer: Wallet = alice.wallet, from = alice.wallet.address) {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const frameKey = ed25519RawPublicKey(publicKey);
  const digest = frameKeyCertificateDigest(CHAIN_ID, REGISTRY, taskId, from, frameKey);
  const certificate = Buffer.from(signer.signingKey.sign(digest).serialized.slice(2), "hex");
  const fields: FrameSession = { chainId: CHAIN_ID, registry: REGISTRY, taskId, from, to: bob.wallet.address, frameKey, certificate };
  const secrets = new StaticSecrets(alice.encryption.privateKey);
  const key = directionKey({
    shared: secrets.sharedSecret(bob.encryption.publicKey),
    chainId: Buffer.from(CHAIN_ID.toString(16).padStart(64, "0"), "hex"),
    registry: Buffer.from(REGISTRY.slice(2), "hex"),
    taskId: Buffer.from(taskId.toString(16).padStart(64, "0"), "hex"),
    from: Buffer.from(from.slice(2), "hex"),
    to: Buffer.from(bob.wallet.address.slice(2), "hex"),
    frameKey,
  });
  return { fields, body: encodeSessionBody(fields), key, signer: privateKey, frameKey };
}

function frame(s: ReturnType<typeof session>, round: number, gate: string, payload: Uint8Array, signed: boolean) {
  return sealFrame({ sessionBody: s.body, key: s.key, round, gate: Buffer.from(gate, "latin1"), payload, ...(signed ? { signer: s.signer } : {}) });
}

describe("transport/peer-frame", () => {
  describe("layout", () => {
    it("puts every field at its documented offset and round-trips the payload", () => {
      const s = session();
      const payload = Buffer.from("a 32-byte field element, say....");
      const sealed = frame(s, 5, "mul:0-0", payload, true);
      const bytes = recordBytesOf(sealed);
      expect(sealed.parts[0]!.readUInt32BE(0)).to.equal(bytes.length);
      expect(bytes[0]).to.equal(FRAME_RECORD);
      expect(bytes[1]).to.equal(1);
      expect(bytes.readBigUInt64BE(26)).to.equal(CHAIN_ID);
      expect(getAddress(`0x${bytes.toString("hex", 34, 54)}`)).to.equal(REGISTRY);
      expect(bytes.readBigUInt64BE(78)).to.equal(TASK);
      expect(getAddress(`0x${bytes.toString("hex", 86, 106)}`)).to.equal(alice.wallet.address);
      expect(getAddress(`0x${bytes.toString("hex", 106, 126)}`)).to.equal(bob.wallet.address);
      expect(bytes.subarray(126, 158).equals(s.frameKey)).to.equal(true);
      expect(bytes.subarray(158, 223).equals(Buffer.from(s.fields.certificate))).to.equal(true);
      expect(bytes.readUInt32BE(223)).to.equal(5);
      expect(bytes[227]).to.equal(7);
      expect(bytes.toString("latin1", 228, 235)).to.equal("mul:0-0");
      expect(bytes.readUInt32BE(235)).to.equal(payload.length + 16);
      expect(bytes.length).to.equal(239 + payload.length + 16 + 64);

      const parsed = parseFrame(bytes);
      expect(parsed.round).to.equal(5);
      expect(parsed.gate).to.equal("mul:0-0");
      expect(parsed.signature?.length).to.equal(64);
      expect(frameDigest(parsed.unsigned).equals(sealed.digest!)).to.equal(true);
      expect(openFrame(s.key, parsed).equals(payload)).to.equal(true);
      expect(decodeSession(bytes)).to.deep.include({ chainId: CHAIN_ID, registry: REGISTRY, taskId: TASK, from: alice.wallet.address, to: bob.wallet.address });
    });

    it("sends large frames as header, ciphertext and trailer without copying, small ones as one buffer", () => {
      const s = session();
      expect(frame(s, 1, "g", new Uint8Array(100), false).parts).to.have.length(1);
      const big = frame(s, 2, "g", new Uint8Array(100_000), false);
      expect(big.parts).to.have.length(3);
      expect(openFrame(s.key, parseFrame(recordBytesOf(big))).equals(Buffer.alloc(100_000))).to.equal(true);
    });

    it("round-trips random payloads and labels, with and without a signature (property)", () => {
      const s = session();
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 2_000 }),
          fc.integer({ min: 0, max: 0xffff_ffff }),
          fc.stringMatching(/^[\x21-\x7e]{1,128}$/),
          fc.boolean(),
          (payload, round, gate, signed) => {
            const parsed = parseFrame(recordBytesOf(frame(s, round, gate, payload, signed)));
            expect(parsed.round).to.equal(round);
            expect(parsed.gate).to.equal(gate);
            expect(parsed.signature !== undefined).to.equal(signed);
            expect(openFrame(s.key, parsed).equals(Buffer.from(payload))).to.equal(true);
          },
        ),
        { seed: 42, numRuns: 150 },
      );
    });

    it("rejects malformed frames with BAD_REQUEST naming the field", () => {
      const good = recordBytesOf(frame(session(), 1, "mul:0-1", new Uint8Array(32), true));
      const mutate = (f: (b: Buffer) => Buffer | void) => {
        const b = Buffer.from(good);
        return f(b) ?? b;
      };
      const cases: Array<[string, Uint8Array, string]> = [
        ["truncated", good.subarray(0, 100), "frame"],
        ["no header", good.subarray(0, 230), "frame"],
        ["wrong type", mutate((b) => void (b[0] = CHECKPOINT_RECORD)), "type"],
        ["unknown flag", mutate((b) => void (b[1] = b[1]! | 0x04)), "flags"],
        ["signed flag cleared", mutate((b) => void (b[1] = 0)), "ciphertext"],
        ["gate length 0", mutate((b) => void (b[227] = 0)), "label.gate"],
        ["gate length 129", mutate((b) => void (b[227] = 129)), "label.gate"],
        ["gate byte not visible ASCII", mutate((b) => void (b[228] = 0x20)), "label.gate"],
        ["ciphertext shorter than a tag", mutate((b) => void b.writeUInt32BE(15, 235)), "ciphertext"],
        ["declared length too long", mutate((b) => void b.writeUInt32BE(49, 235)), "ciphertext"],
        ["trailing byte", Buffer.concat([good, Buffer.of(0)]), "ciphertext"],
      ];
      for (const [what, bytes, field] of cases) {
        const error = thrown(() => parseFrame(bytes));
        expect(error.code, what).to.equal("BAD_REQUEST");
        expect(error.details.field, what).to.equal(field);
      }
      expect(thrown(() => parseFrame("frame" as unknown as Uint8Array)).code).to.equal("BAD_REQUEST");
    });

    it("fails to open under another key, nonce or header (DECRYPTION_FAILED)", () => {
      const s = session();
      const bytes = recordBytesOf(frame(s, 1, "mul:0-1", new Uint8Array(32).fill(3), false));
      expect(thrown(() => openFrame(session().key, parseFrame(bytes))).code).to.equal("DECRYPTION_FAILED");
      const otherRound = Buffer.from(bytes);
      otherRound.writeUInt32BE(2, 223);
      expect(thrown(() => openFrame(s.key, parseFrame(otherRound))).code).to.equal("DECRYPTION_FAILED");
      const otherTag = Buffer.from(bytes);
      otherTag[otherTag.length - 1]! ^= 1;
      expect(thrown(() => openFrame(s.key, parseFrame(otherTag))).code).to.equal("DECRYPTION_FAILED");
    });
  });

  describe("keys and nonces", () => {
    it("gives both ends of a direction the same key, and every other direction, task or run another", () => {
      const a = new StaticSecrets(alice.encryption.privateKey);
      const b = new StaticSecrets(bob.encryption.privateKey);
      expect(a.sharedSecret(bob.encryption.publicKey).equals(b.sharedSecret(alice.encryption.publicKey))).to.equal(true);
      expect(a.publicKey.equals(Buffer.from(alice.encryption.publicKey))).to.equal(true);
      const base = {
        shared: a.sharedSecret(bob.encryption.publicKey),
        chainId: Buffer.alloc(32, 1),
        registry: Buffer.alloc(20, 2),
        taskId: Buffer.alloc(32, 3),
        from: Buffer.alloc(20, 4),
        to: Buffer.alloc(20, 5),
        frameKey: Buffer.alloc(32, 6),
      };
      const exported = (input: typeof base) => directionKey(input).export();
      const reference = exported(base);
      // RFC 5869 HKDF-SHA256 with the documented salt and info.
      const info = Buffer.concat([Buffer.from("consort/frame-key/v1"), base.from, base.to, Buffer.of(0), base.frameKey]);
      expect(reference.equals(Buffer.from(hkdfSync("sha256", base.shared, Buffer.concat([base.chainId, base.registry, base.taskId]), info, 32)))).to.equal(true);
      const variants = [
        { ...base, from: base.to, to: base.from },
        { ...base, taskId: Buffer.alloc(32, 9) },
        { ...base, chainId: Buffer.alloc(32, 9) },
        { ...base, registry: Buffer.alloc(20, 9) },
        { ...base, frameKey: Buffer.alloc(32, 9) },
        { ...base, shared: Buffer.alloc(32, 9) },
      ];
      const keys = new Set([reference.toString("hex"), ...variants.map((v) => exported(v).toString("hex"))]);
      expect(keys.size).to.equal(variants.length + 1);
    });

    it("rejects bad encryption keys with KEY_INVALID, never echoing a private key", () => {
      expect(thrown(() => new StaticSecrets(new Uint8Array(31))).code).to.equal("KEY_INVALID");
      const zero = thrown(() => new StaticSecrets(new Uint8Array(32)));
      expect(zero.code).to.equal("KEY_INVALID");
      const a = new StaticSecrets(alice.encryption.privateKey);
      expect(thrown(() => a.sharedSecret(new Uint8Array(33).fill(7))).code).to.equal("KEY_INVALID");
    });

    it("derives the nonce as round || FNV-1a-64(gate), big-endian (published FNV vectors)", () => {
      // Vectors of the FNV reference code (draft-eastlake-fnv, test suite).
      const hex = (gate: string) => fnv1a64(Buffer.from(gate, "latin1")).map((w) => w.toString(16).padStart(8, "0")).join("");
      expect(hex("")).to.equal("cbf29ce484222325");
      expect(hex("a")).to.equal("af63dc4c8601ec8c");
      expect(hex("foobar")).to.equal("85944171f73967e8");
      expect(frameNonce(0x01020304, Buffer.from("foobar", "latin1")).toString("hex")).to.equal("0102030485944171f73967e8");
    });

    it("derives distinct nonces for distinct labels and the same one for the same label (property)", () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 0xffff_ffff }),
          fc.integer({ min: 0, max: 0xffff_ffff }),
          fc.stringMatching(/^[\x21-\x7e]{1,128}$/),
          fc.stringMatching(/^[\x21-\x7e]{1,128}$/),
          (r1, r2, g1, g2) => {
            const n1 = frameNonce(r1, Buffer.from(g1, "latin1"));
            expect(n1.length).to.equal(12);
            expect(n1.equals(frameNonce(r1, Buffer.from(g1, "latin1")))).to.equal(true);
            if (r1 !== r2 || g1 !== g2) expect(n1.equals(frameNonce(r2, Buffer.from(g2, "latin1")))).to.equal(false);
          },
        ),
        { seed: 42, numRuns: 300 },
      );
    });
  });

  describe("certificates", () => {
    it("are EIP-712 signatures a wallet produces and ethers verifies", async () => {
      const s = session();
      const typed = await alice.wallet.signTypedData(
        frameKeyDomain(CHAIN_ID, REGISTRY),
        { FrameKey: FRAME_KEY_TYPES.FrameKey.map((f) => ({ ...f })) },
        { taskId: TASK, party: alice.wallet.address, ed25519PublicKey: s.frameKey },
      );
      expect(Buffer.from(typed.slice(2), "hex").equals(Buffer.from(s.fields.certificate))).to.equal(true);
      const recovered = verifyTypedData(
        frameKeyDomain(CHAIN_ID, REGISTRY),
        { FrameKey: FRAME_KEY_TYPES.FrameKey.map((f) => ({ ...f })) },
        { taskId: TASK, party: alice.wallet.address, ed25519PublicKey: s.frameKey },
        typed,
      );
      expect(recovered).to.equal(alice.wallet.address);
      expect(Buffer.from(frameKeyCertificateDigest(CHAIN_ID, REGISTRY, TASK, alice.wallet.address, s.frameKey)).toString("hex")).to.equal(
        TypedDataEncoder.hash(frameKeyDomain(CHAIN_ID, REGISTRY), { FrameKey: FRAME_KEY_TYPES.FrameKey.map((f) => ({ ...f })) }, {
          taskId: TASK,
          party: alice.wallet.address,
          ed25519PublicKey: s.frameKey,
        }).slice(2),
      );
      verifyFrameKeyCertificate(s.fields);
    });

    it("are refused when signed by another key, for another task, or malleated (BAD_SIGNATURE)", () => {
      const forged = session(TASK, bob.wallet, alice.wallet.address);
      expect(thrown(() => verifyFrameKeyCertificate(forged.fields)).code).to.equal("BAD_SIGNATURE");
      const s = session();
      expect(thrown(() => verifyFrameKeyCertificate({ ...s.fields, taskId: TASK + 1n })).code).to.equal("BAD_SIGNATURE");
      expect(thrown(() => verifyFrameKeyCertificate({ ...s.fields, frameKey: session().frameKey })).code).to.equal("BAD_SIGNATURE");
      // (r, n - s, v ^ 1) is the same signature in high-s form: EIP-2 forbids it.
      const cert = Buffer.from(s.fields.certificate);
      const n = secp256k1.Point.CURVE().n;
      const high = n - BigInt(`0x${cert.toString("hex", 32, 64)}`);
      const malleated = Buffer.concat([cert.subarray(0, 32), Buffer.from(high.toString(16).padStart(64, "0"), "hex"), Buffer.of(cert[64] === 27 ? 28 : 27)]);
      expect(thrown(() => verifyFrameKeyCertificate({ ...s.fields, certificate: malleated })).code).to.equal("BAD_SIGNATURE");
    });
  });

  describe("third-party evidence", () => {
    it("verifies a self-signed frame, and a checkpointed one with its checkpoint, from public data alone", () => {
      const s = session();
      const signed = recordBytesOf(frame(s, 3, "open:0-0", new Uint8Array(32).fill(1), true));
      const evidence = verifyFrameEvidence(signed);
      expect(evidence).to.deep.include({ chainId: CHAIN_ID, registry: REGISTRY, from: alice.wallet.address, to: bob.wallet.address, signedBy: "frame" });
      expect(evidence.label).to.deep.equal({ taskId: TASK, round: 3, gate: "open:0-0" });

      const f1 = frame(s, 4, "mul:0-0", new Uint8Array(32).fill(2), false);
      const f2 = frame(s, 5, "mul:1-1", new Uint8Array(32).fill(3), false);
      const checkpoint = recordBytesOf(sealCheckpoint(s.body, [f1.digest!, f2.digest!], s.signer));
      expect(verifyFrameEvidence(recordBytesOf(f2), checkpoint).signedBy).to.equal("checkpoint");
      expect(verifyFrameEvidence(recordBytesOf(f1), checkpoint).label.round).to.equal(4);
    });

    it("refuses evidence that does not hold up (BAD_SIGNATURE)", () => {
      const s = session();
      const unsigned = recordBytesOf(frame(s, 4, "mul:0-0", new Uint8Array(32), false));
      const unlisted = frame(s, 5, "mul:1-1", new Uint8Array(32), false);
      const other = session();
      const codes = [
        thrown(() => verifyFrameEvidence(unsigned)),
        thrown(() => verifyFrameEvidence(unsigned, recordBytesOf(sealCheckpoint(s.body, [unlisted.digest!], s.signer)))),
        thrown(() => verifyFrameEvidence(unsigned, recordBytesOf(sealCheckpoint(other.body, [parseFrame(unsigned).bytes.subarray(0, 32)], other.signer)))),
        thrown(() => verifyFrameEvidence(unsigned, recordBytesOf(sealCheckpoint(s.body, [frameDigest(parseFrame(unsigned).unsigned)], other.signer)))),
        thrown(() => verifyFrameEvidence(recordBytesOf(frame(session(TASK, bob.wallet, alice.wallet.address), 1, "g", new Uint8Array(0), true)))),
      ].map((e) => e.code);
      expect(codes).to.deep.equal(["BAD_SIGNATURE", "BAD_SIGNATURE", "BAD_SIGNATURE", "BAD_SIGNATURE", "BAD_SIGNATURE"]);
      const signed = Buffer.from(recordBytesOf(frame(s, 6, "g", new Uint8Array(32), true)));
      signed[signed.length - 1]! ^= 1;
      expect(thrown(() => verifyFrameEvidence(signed)).code).to.equal("BAD_SIGNATURE");
    });
  });

  describe("checkpoints", () => {
    it("round-trip, verify only under their session's frame key, and reject malformed records", () => {
      const s = session();
      const digests = [Buffer.alloc(32, 1), Buffer.alloc(32, 2), Buffer.alloc(32, 3)];
      const bytes = recordBytesOf(sealCheckpoint(s.body, digests, s.signer));
      expect(bytes.length).to.equal(SESSION_END + 4 + 96 + 64);
      const parsed = parseCheckpoint(bytes);
      expect(parsed.digests.map((d) => d[0])).to.deep.equal([1, 2, 3]);
      expect(verifyCheckpoint(verifyFrameKeyCertificate(s.fields), parsed)).to.equal(true);
      expect(verifyCheckpoint(verifyFrameKeyCertificate(session().fields), parsed)).to.equal(false);
      const tampered = Buffer.from(bytes);
      tampered[SESSION_END + 4]! ^= 1;
      expect(verifyCheckpoint(verifyFrameKeyCertificate(s.fields), parseCheckpoint(tampered))).to.equal(false);

      const bad = (f: (b: Buffer) => void) => {
        const b = Buffer.from(bytes);
        f(b);
        return thrown(() => parseCheckpoint(b));
      };
      expect(bad((b) => void (b[0] = FRAME_RECORD)).details.field).to.equal("type");
      expect(bad((b) => void (b[1] = 1)).details.field).to.equal("flags");
      expect(bad((b) => void b.writeUInt32BE(MAX_CHECKPOINT_FRAMES + 1, SESSION_END)).details.field).to.equal("count");
      // Count 0 with three digests' bytes after it: the length does not add up.
      expect(bad((b) => void b.writeUInt32BE(0, SESSION_END)).details.field).to.equal("checkpoint");
      // An announcement: a checkpoint of no frames, signed like any other.
      const announcement = parseCheckpoint(recordBytesOf(sealCheckpoint(s.body, [], s.signer)));
      expect(announcement.digests).to.deep.equal([]);
      expect(verifyCheckpoint(verifyFrameKeyCertificate(s.fields), announcement)).to.equal(true);
      expect(bad((b) => void b.writeUInt32BE(4, SESSION_END)).details.field).to.equal("checkpoint");
      expect(thrown(() => parseCheckpoint(bytes.subarray(0, 100))).code).to.equal("BAD_REQUEST");
    });
  });
});
