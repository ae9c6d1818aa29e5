import { createHmac, createSecretKey, hash } from "node:crypto";
import { chacha20 } from "@noble/ciphers/chacha.js";
import { expect } from "chai";
import fc from "fast-check";
import { FrameKeystream, KEYSTREAM_BYTES, STREAM_MAX_PAYLOAD, frameStreamKeys, streamTag, streamTagMatches } from "../../node/transport/frame-keystream.ts";
import type { FrameStreamKeys } from "../../node/transport/frame-keystream.ts";
import { FRAME_FLAG_STREAM, parseFrame, recordBytesOf } from "../../node/transport/peer-frame.ts";
import { LoopbackLink, TASK, World, loopNode, party, rejection } from "./peer-fixtures.ts";

const DIRECTION_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i + 1));

/** The RFC 8439 ChaCha20 keystream of `key` (zero nonce, counter 0), bytes [0, length), from noble (an independent implementation). */
function referenceStream(key: Uint8Array, length: number): Uint8Array {
  return chacha20(key, new Uint8Array(12), new Uint8Array(length));
}

/** HMAC keys laid out as frameStreamKeys lays them out, for a given MAC key (RFC 4231 vectors). */
function hmacKeys(macKey: Uint8Array): FrameStreamKeys {
  const inner = Buffer.alloc(64, 0x36);
  const outer = Buffer.alloc(64, 0x5c);
  macKey.forEach((b, i) => {
    inner[i]! ^= b;
    outer[i]! ^= b;
  });
  return { cipherKey: createSecretKey(Buffer.alloc(32)), inner, outer };
}

describe("transport/frame-keystream", () => {
  it("derives its cipher and MAC keys from the direction key under their own domains", () => {
    const keys = frameStreamKeys(createSecretKey(DIRECTION_KEY));
    const cipherKey = hash("sha256", Buffer.concat([Buffer.from("consort/frame-stream-cipher/v1"), DIRECTION_KEY]), "buffer");
    const macKey = hash("sha256", Buffer.concat([Buffer.from("consort/frame-stream-mac/v1"), DIRECTION_KEY]), "buffer");
    expect(keys.cipherKey.export().equals(cipherKey)).to.equal(true);
    expect(macKey.equals(cipherKey)).to.equal(false);
    const data = Buffer.from("a frame header and its ciphertext");
    expect(streamTag(keys, data).equals(createHmac("sha256", macKey).update(data).digest().subarray(0, 16))).to.equal(true);
  });

  it("tags with HMAC-SHA256 truncated to 16 bytes (RFC 4231 test cases 2 and 6)", () => {
    const jefe = hmacKeys(Buffer.from("Jefe"));
    expect(streamTag(jefe, Buffer.from("what do ya want for nothing?")).toString("hex")).to.equal("5bdcc146bf60754e6a042426089575c7");
    // Test case 6 has a 131-byte key, longer than the block: HMAC hashes it first (SHA-256, 32 bytes).
    const long = hmacKeys(hash("sha256", Buffer.alloc(131, 0xaa), "buffer"));
    expect(streamTag(long, Buffer.from("Test Using Larger Than Block-Size Key - Hash Key First")).toString("hex")).to.equal("60e431591ee0b67f0d8a26aacbf5b77f");
    expect(streamTagMatches(jefe, Buffer.from("what do ya want for nothing?"), Buffer.from("5bdcc146bf60754e6a042426089575c7", "hex"))).to.equal(true);
    expect(streamTagMatches(jefe, Buffer.from("what do ya want for nothing!"), Buffer.from("5bdcc146bf60754e6a042426089575c7", "hex"))).to.equal(false);
    expect(streamTagMatches(jefe, Buffer.from("x"), Buffer.alloc(15))).to.equal(false);
  });

  it("reads the RFC 8439 keystream by offset, however the reads are ordered: running, skipping, restarting or behind (property)", () => {
    const key = Buffer.from(Array.from({ length: 32 }, (_, i) => 255 - i));
    const span = 200_000;
    const reference = referenceStream(key, span + STREAM_MAX_PAYLOAD);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: span }), fc.integer({ min: 0, max: STREAM_MAX_PAYLOAD })), { minLength: 1, maxLength: 40 }),
        fc.boolean(),
        (reads, sequentialFirst) => {
          const stream = new FrameKeystream(createSecretKey(key));
          // A sender's pattern first (back to back from 0), then arbitrary offsets.
          let at = 0;
          if (sequentialFirst) {
            for (const [, length] of reads) {
              expect(Buffer.from(stream.read(at, length)).equals(Buffer.from(reference.subarray(at, at + length)))).to.equal(true);
              at += length;
              expect(stream.position).to.equal(at);
            }
          }
          for (const [offset, length] of reads) {
            const got = stream.read(offset, length);
            expect(Buffer.from(got).equals(Buffer.from(reference.subarray(offset, offset + length))), `offset ${offset}, length ${length}`).to.equal(true);
          }
        },
      ),
      { seed: 20261122, numRuns: 60 },
    );
  });
});

describe("transport/peer-sessions stream-sealed frames", () => {
  const label = (round: number) => ({ taskId: TASK, round, gate: `mul:${round}-${round}` });

  function pair() {
    const world = new World();
    const link = new LoopbackLink();
    const [alice, bob] = [party("alice", 0x61), party("bob", 0x62)];
    const a = loopNode(alice!, world, link);
    const b = loopNode(bob!, world, link);
    world.tasks.set(TASK, [a.party.wallet.address, b.party.wallet.address]);
    return { a, b, close: () => Promise.all([a, b].map((n) => n.sessions.close(0))) };
  }

  it("seals payloads up to STREAM_MAX_PAYLOAD from the keystream, back to back, and larger ones with the per-frame AEAD", async () => {
    const t = pair();
    const to = t.b.party.wallet.address;
    const sizes = [0, 32, 1000, STREAM_MAX_PAYLOAD, STREAM_MAX_PAYLOAD + 1, 32];
    let expectedOffset = 0;
    for (const [i, size] of sizes.entries()) {
      const frame = parseFrame(recordBytesOf(await t.a.sessions.seal(label(i + 1), to, new Uint8Array(size).fill(i))));
      if (size <= STREAM_MAX_PAYLOAD) {
        expect(frame.flags & FRAME_FLAG_STREAM).to.equal(FRAME_FLAG_STREAM);
        expect(frame.offset).to.equal(expectedOffset);
        expectedOffset += size;
      } else {
        expect(frame.flags & FRAME_FLAG_STREAM).to.equal(0);
        expect(frame.offset).to.equal(undefined);
      }
      const opened = await t.b.sessions.acceptFrame(frame.bytes);
      expect(Buffer.from(opened.payload).equals(Buffer.alloc(size, i))).to.equal(true);
    }
    await t.close();
  });

  it("opens frames in any order, retransmitted or not, and a forged frame moves no keystream (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 12 }),
        fc.func(fc.integer()),
        fc.nat(),
        async (sizes, order, forgeAt) => {
          const t = pair();
          const to = t.b.party.wallet.address;
          const frames: Buffer[] = [];
          for (const [i, size] of sizes.entries()) {
            frames.push(Buffer.from(recordBytesOf(await t.a.sessions.seal(label(i + 1), to, new Uint8Array(size).fill(i + 1)))));
          }
          // Every frame at least once, some twice, shuffled; a tampered copy of one of them in between.
          const deliveries = [...frames.keys(), ...frames.keys()].filter((k) => k % 2 === 0 || order(k) % 2 === 0);
          deliveries.sort((x, y) => order(x * 31 + y) - order(y * 31 + x) || x - y);
          const forged = Buffer.from(frames[forgeAt % frames.length]!);
          forged[forged.length - 1]! ^= 0x80;
          expect((await rejection(t.b.sessions.acceptFrame(forged))).code).to.equal("DECRYPTION_FAILED");
          for (const k of deliveries) {
            const opened = await t.b.sessions.acceptFrame(frames[k]!);
            expect(opened.label.round).to.equal(k + 1);
            expect(Buffer.from(opened.payload).equals(Buffer.alloc(sizes[k]!, k + 1))).to.equal(true);
          }
          await t.close();
        },
      ),
      { seed: 42, numRuns: 25 },
    );
  });

  it("refuses an offset that would run past the keystream (BAD_REQUEST naming it)", async () => {
    const t = pair();
    const frame = Buffer.from(recordBytesOf(await t.a.sessions.seal(label(1), t.b.party.wallet.address, new Uint8Array(32))));
    const L = frame[227]!;
    const offsetAt = 228 + L + 4;
    const past = Buffer.from(frame);
    past.writeUInt32BE(Math.floor(KEYSTREAM_BYTES / 0x1_0000_0000), offsetAt);
    const error = await rejection(t.b.sessions.acceptFrame(past));
    expect([error.code, error.details.field]).to.deep.equal(["BAD_REQUEST", "offset"]);
    await t.close();
  });
});
