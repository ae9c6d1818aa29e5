import { createSecretKey, hash } from "node:crypto";
import { chacha20 } from "@noble/ciphers/chacha.js";
import { poly1305 } from "@noble/ciphers/_poly1305.js";
import { expect } from "chai";
import fc from "fast-check";
import { ConsortError } from "../../node/errors.ts";
import { FrameKeystream, KEYSTREAM_BYTES, STREAM_KEY_BYTES, STREAM_MAX_PAYLOAD, frameStreamKeys, streamTagMatches } from "../../node/transport/frame-keystream.ts";
import { FRAME_FLAG_STREAM, TAG_BYTES, openStreamFrame, parseFrame, recordBytesOf, sealStreamFrame } from "../../node/transport/peer-frame.ts";
import { LoopbackLink, TASK, World, loopNode, party, rejection } from "./peer-fixtures.ts";

const DIRECTION_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i + 1));
const CIPHER_KEY = hash("sha256", Buffer.concat([Buffer.from("consort/frame-stream-cipher/v2"), DIRECTION_KEY]), "buffer");

/** The RFC 8439 ChaCha20 keystream of `key` (zero nonce, counter 0), bytes [0, length), from noble (an independent implementation). */
function referenceStream(key: Uint8Array, length: number): Uint8Array {
  return chacha20(key, new Uint8Array(12), new Uint8Array(length));
}

describe("transport/frame-keystream", () => {
  it("derives its cipher key from the direction key under its own domain", () => {
    const keys = frameStreamKeys(createSecretKey(DIRECTION_KEY));
    expect(keys.cipherKey.export().equals(CIPHER_KEY)).to.equal(true);
  });

  it("seals as specified: a 32-byte one-time Poly1305 key, then the payload's pad, from the keystream at the frame's offset (noble's ChaCha20 and Poly1305 as reference)", () => {
    const sender = new FrameKeystream(frameStreamKeys(createSecretKey(DIRECTION_KEY)).cipherKey);
    const receiver = new FrameKeystream(frameStreamKeys(createSecretKey(DIRECTION_KEY)).cipherKey);
    const reference = referenceStream(CIPHER_KEY, 3 * (STREAM_KEY_BYTES + 64) + 2 * STREAM_KEY_BYTES + 5_000);
    const sessionBody = Buffer.alloc(221, 7);
    const sizes = [32, 0, 64, 4_096];
    let offset = 0;
    for (const [i, n] of sizes.entries()) {
      const payload = Buffer.alloc(n, i + 1);
      const record = recordBytesOf(sealStreamFrame({ sessionBody, keystream: sender, offset: sender.position, round: i, gate: `mul:${i}`, payload }));
      const frame = parseFrame(record);
      expect(frame.offset).to.equal(offset);
      const pad = reference.subarray(offset + STREAM_KEY_BYTES, offset + STREAM_KEY_BYTES + n);
      const ciphertext = frame.ciphertextAndTag.subarray(0, n);
      expect(Buffer.from(ciphertext.map((c, k) => c ^ pad[k]!)).equals(payload)).to.equal(true);
      const tagAt = record.length - TAG_BYTES;
      expect(Buffer.from(record.subarray(tagAt)).equals(Buffer.from(poly1305(record.subarray(0, tagAt), reference.subarray(offset, offset + STREAM_KEY_BYTES))))).to.equal(true);
      // A forged tag is refused, and moves nothing; the genuine frame then opens.
      const forged = Buffer.from(record);
      forged[tagAt]! ^= 1;
      const before = receiver.position;
      let refused: unknown;
      try {
        openStreamFrame(receiver, parseFrame(forged));
      } catch (error) {
        refused = error;
      }
      expect(refused).to.be.instanceOf(ConsortError);
      expect((refused as ConsortError).code).to.equal("DECRYPTION_FAILED");
      expect(receiver.position).to.equal(before);
      expect(openStreamFrame(receiver, frame).equals(payload)).to.equal(true);
      offset += STREAM_KEY_BYTES + n;
      expect(sender.position).to.equal(offset);
      expect(receiver.position).to.equal(offset);
    }
    expect(streamTagMatches(reference, Buffer.from("x"), 0, 1, Buffer.alloc(15))).to.equal(false);
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

  it("peeks at the same bytes without moving anything, ahead, behind or far away (property)", () => {
    const key = Buffer.from(Array.from({ length: 32 }, (_, i) => 3 * i));
    const span = 150_000;
    const reference = referenceStream(key, span + STREAM_KEY_BYTES + STREAM_MAX_PAYLOAD);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: span }), fc.integer({ min: 0, max: STREAM_KEY_BYTES + STREAM_MAX_PAYLOAD })), { minLength: 1, maxLength: 40 }),
        (ops) => {
          const stream = new FrameKeystream(createSecretKey(key));
          for (const [peek, offset, length] of ops) {
            const before = stream.position;
            const got = peek ? stream.peek(offset, length) : stream.read(offset, length);
            expect(Buffer.from(got).equals(Buffer.from(reference.subarray(offset, offset + length))), `${peek ? "peek" : "read"} ${offset}+${length}`).to.equal(true);
            expect(stream.position).to.equal(peek ? before : Math.max(before, offset + length));
          }
        },
      ),
      { seed: 20261203, numRuns: 60 },
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
        expectedOffset += STREAM_KEY_BYTES + size;
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
