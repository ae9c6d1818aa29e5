import { poly1305 } from "@noble/ciphers/_poly1305.js";
import { expect } from "chai";
import fc from "fast-check";
import { POLY1305_TAG_BYTES, poly1305Into } from "../../node/transport/poly1305.ts";

const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/g, ""), "hex");

function tag(key: Uint8Array, msg: Uint8Array): string {
  const out = new Uint8Array(POLY1305_TAG_BYTES);
  poly1305Into(key, 0, msg, 0, msg.length, out, 0);
  return Buffer.from(out).toString("hex");
}

describe("transport/poly1305", () => {
  it("matches RFC 8439 §2.5.2 and the Appendix A.3 vectors", () => {
    // §2.5.2
    expect(tag(hex("85:d6:be:78:57:55:6d:33:7f:44:52:fe:42:d5:06:a8:01:03:80:8a:fb:0d:b2:fd:4a:bf:f6:af:41:49:f5:1b"), Buffer.from("Cryptographic Forum Research Group"))).to.equal(
      "a8061dc1305136c6c22b8baf0c0127a9",
    );
    // A.3 #1: all zero.
    expect(tag(new Uint8Array(32), new Uint8Array(64))).to.equal("00000000000000000000000000000000");
    // A.3 #5: r = 2, s = 0, h reaches 2^130 - 5 + 3 (the final reduction).
    expect(tag(hex("02" + "00".repeat(31)), hex("ff".repeat(16)))).to.equal("03000000000000000000000000000000");
    // A.3 #6: r = 2, s = 2^128 - 1: the addition of s wraps.
    expect(tag(hex("02" + "00".repeat(15) + "ff".repeat(16)), hex("02" + "00".repeat(15)))).to.equal("03000000000000000000000000000000");
    // A.3 #7: r = 1, s = 0, carries through every limb.
    expect(tag(hex("01" + "00".repeat(31)), hex("ffffffffffffffffffffffffffffffff f0ffffffffffffffffffffffffffffff 11000000000000000000000000000000"))).to.equal(
      "05000000000000000000000000000000",
    );
  });

  it("equals noble's Poly1305 on any key, message and byte ranges (property)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 400 }),
        fc.nat({ max: 20 }),
        fc.nat({ max: 20 }),
        fc.nat({ max: 8 }),
        fc.boolean(),
        (key, body, before, after, outAt, saturate) => {
          // Saturated keys and messages exercise every carry (clamping, limbs at their maximum).
          if (saturate) {
            key.fill(0xff);
            body.fill(0xff);
          }
          const msg = new Uint8Array(before + body.length + after);
          msg.set(body, before);
          const keyAt = new Uint8Array(32 + before);
          keyAt.set(key, before);
          const out = new Uint8Array(outAt + POLY1305_TAG_BYTES + 3).fill(0xee);
          poly1305Into(keyAt, before, msg, before, before + body.length, out, outAt);
          expect(Buffer.from(out.subarray(outAt, outAt + POLY1305_TAG_BYTES)).equals(Buffer.from(poly1305(body, key)))).to.equal(true);
          // Nothing outside the tag is written.
          expect(out.subarray(0, outAt).every((b) => b === 0xee) && out.subarray(outAt + POLY1305_TAG_BYTES).every((b) => b === 0xee)).to.equal(true);
        },
      ),
      { seed: 8439, numRuns: 2_000 },
    );
  });

  it("refuses ranges outside its buffers", () => {
    const out = new Uint8Array(16);
    expect(() => poly1305Into(new Uint8Array(31), 0, new Uint8Array(4), 0, 4, out, 0)).to.throw(RangeError);
    expect(() => poly1305Into(new Uint8Array(32), 0, new Uint8Array(4), 2, 5, out, 0)).to.throw(RangeError);
    expect(() => poly1305Into(new Uint8Array(32), 0, new Uint8Array(4), 3, 2, out, 0)).to.throw(RangeError);
    expect(() => poly1305Into(new Uint8Array(32), 0, new Uint8Array(4), 0, 4, out, 1)).to.throw(RangeError);
  });
});
