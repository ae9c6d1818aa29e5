import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { expect } from "chai";
import fc from "fast-check";
import { XCHACHA_TAG_BYTES, hchacha20, xchachaOpen, xchachaSeal } from "../../node/transport/xchacha20-poly1305.ts";

const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/g, ""), "hex");
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// draft-irtf-cfrg-xchacha-03 §2.2.1 and Appendix A.3.1.
const KEY = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
const NONCE = hex("404142434445464748494a4b4c4d4e4f5051525354555657");
const AAD = hex("50515253c0c1c2c3c4c5c6c7");
const PLAINTEXT = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
const CIPHERTEXT =
  "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e";
const TAG = "c0875924c1c7987947deafd8780acf49";

describe("transport/xchacha20-poly1305", () => {
  it("matches the draft's HChaCha20 vector (§2.2.1)", () => {
    const key = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    expect(toHex(hchacha20(key, hex("000000090000004a0000000031415927")))).to.equal(
      "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc",
    );
  });

  it("matches the draft's XChaCha20-Poly1305 vector (A.3.1), both ways", () => {
    expect(toHex(xchachaSeal(KEY, NONCE, PLAINTEXT, AAD))).to.equal(CIPHERTEXT + TAG);
    expect(Buffer.from(xchachaOpen(KEY, NONCE, hex(CIPHERTEXT + TAG), AAD)).toString()).to.equal(PLAINTEXT.toString());
  });

  it("seals exactly as noble's xchacha20poly1305 and opens what it seals (property)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 24, maxLength: 24 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 64 }),
        (key, nonce, plaintext, aad) => {
          const ours = xchachaSeal(key, nonce, plaintext, aad);
          const theirs = xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
          expect(toHex(ours)).to.equal(toHex(theirs));
          expect(toHex(xchachaOpen(key, nonce, theirs, aad))).to.equal(toHex(plaintext));
        },
      ),
      { seed: 0x5eed, numRuns: 300 },
    );
  });

  it("agrees with noble on a megabyte and writes into a given output", () => {
    const plaintext = new Uint8Array(1 << 20).map((_, i) => (i * 31) & 0xff);
    const out = new Uint8Array(plaintext.length + XCHACHA_TAG_BYTES);
    expect(xchachaSeal(KEY, NONCE, plaintext, AAD, out)).to.equal(out);
    expect(toHex(out)).to.equal(toHex(xchacha20poly1305(KEY, NONCE, AAD).encrypt(plaintext)));
    expect(toHex(xchachaOpen(KEY, NONCE, out, AAD))).to.equal(toHex(plaintext));
  });

  it("refuses a tampered byte, another aad, another nonce or a truncated tag (property)", () => {
    const sealed = xchachaSeal(KEY, NONCE, PLAINTEXT, AAD);
    fc.assert(
      fc.property(fc.nat({ max: sealed.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, flip) => {
        const bad = Uint8Array.from(sealed);
        bad[at] = bad[at]! ^ flip;
        expect(() => xchachaOpen(KEY, NONCE, bad, AAD)).to.throw();
      }),
      { seed: 0xbad, numRuns: 200 },
    );
    expect(() => xchachaOpen(KEY, NONCE, sealed, hex("50515253c0c1c2c3c4c5c6c8"))).to.throw();
    const otherNonce = Uint8Array.from(NONCE);
    otherNonce[23] = otherNonce[23]! ^ 1;
    expect(() => xchachaOpen(KEY, otherNonce, sealed, AAD)).to.throw();
    expect(() => xchachaOpen(KEY, NONCE, sealed.subarray(0, sealed.length - 1), AAD)).to.throw();
    expect(() => xchachaOpen(KEY, NONCE, new Uint8Array(XCHACHA_TAG_BYTES - 1), AAD)).to.throw(RangeError);
  });

  it("refuses keys, nonces and outputs of the wrong size", () => {
    expect(() => xchachaSeal(KEY.subarray(1), NONCE, PLAINTEXT, AAD)).to.throw(RangeError, /32-byte key/);
    expect(() => xchachaSeal(KEY, NONCE.subarray(1), PLAINTEXT, AAD)).to.throw(RangeError, /24-byte nonce/);
    expect(() => xchachaSeal(KEY, NONCE, PLAINTEXT, AAD, new Uint8Array(PLAINTEXT.length))).to.throw(RangeError, /output must be/);
    expect(() => hchacha20(KEY, NONCE)).to.throw(RangeError, /16-byte input/);
  });
});
