import { createCipheriv, hkdfSync } from "node:crypto";
import { expect } from "chai";
import fc from "fast-check";
import { chacha20KeystreamRng, deterministicRng } from "../../node/math/rng.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

/** ChaCha20 keystream from OpenSSL (node:crypto), an implementation independent of noble. */
function opensslKeystream(key: Uint8Array, length: number, nonce: Uint8Array = new Uint8Array(12)): Uint8Array {
  // OpenSSL's "chacha20" IV is the 32-bit little-endian block counter followed by the 96-bit nonce.
  const iv = Buffer.concat([Buffer.alloc(4), Buffer.from(nonce)]);
  return new Uint8Array(createCipheriv("chacha20", key, iv).update(Buffer.alloc(length)));
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

describe("math/rng", () => {
  it("chacha20KeystreamRng reproduces RFC 8439 A.1 test vectors #1 and #2 (zero key, zero nonce, blocks 0 and 1)", () => {
    const rng = chacha20KeystreamRng(new Uint8Array(32));
    const block0 =
      "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7" +
      "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586";
    const block1 =
      "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed" +
      "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f";
    expect(hex(rng(64))).to.equal(block0);
    expect(hex(rng(64))).to.equal(block1);
  });

  it("chacha20KeystreamRng matches OpenSSL's ChaCha20 keystream for random keys, nonces and request patterns", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.array(fc.integer({ min: 0, max: 9000 }), { minLength: 1, maxLength: 8 }),
        (key, nonce, chunks) => {
          const rng = chacha20KeystreamRng(key, nonce);
          const parts = chunks.map((n) => rng(n));
          parts.forEach((p, i) => expect(p.length).to.equal(chunks[i]));
          const joined = Buffer.concat(parts);
          expect(hex(joined)).to.equal(hex(opensslKeystream(key, joined.length, nonce)));
        },
      ),
      { seed: 42, numRuns: 60 },
    );
  });

  it("deterministicRng is ChaCha20 under HKDF-SHA256(seed, info = consort/deterministic-rng/v1) (checked with node:crypto)", () => {
    for (const seed of ["bench-1", "ünïcödé seed", new Uint8Array([0]), new Uint8Array(100).fill(7)]) {
      const seedBytes = typeof seed === "string" ? new TextEncoder().encode(seed) : seed;
      const key = new Uint8Array(hkdfSync("sha256", seedBytes, new Uint8Array(0), "consort/deterministic-rng/v1", 32));
      expect(hex(deterministicRng(seed)(1000))).to.equal(hex(opensslKeystream(key, 1000)));
    }
  });

  it("same seed gives the same stream, string and UTF-8 bytes are the same seed, different seeds differ", () => {
    expect(hex(deterministicRng("alpha")(256))).to.equal(hex(deterministicRng("alpha")(256)));
    expect(hex(deterministicRng("alpha")(256))).to.equal(hex(deterministicRng(new TextEncoder().encode("alpha"))(256)));
    expect(hex(deterministicRng("alpha")(256))).to.not.equal(hex(deterministicRng("alphb")(256)));
  });

  it("the stream does not depend on how requests are chunked", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 10 }), (chunks) => {
        const total = chunks.reduce((a, b) => a + b, 0);
        const chunked = deterministicRng("chunking");
        const joined = Buffer.concat(chunks.map((n) => chunked(n)));
        expect(hex(joined)).to.equal(hex(deterministicRng("chunking")(total)));
      }),
      { seed: 42, numRuns: 100 },
    );
  });

  it("returns an empty array for zero bytes without advancing the stream", () => {
    const a = deterministicRng("zero");
    expect(a(0).length).to.equal(0);
    expect(hex(a(32))).to.equal(hex(deterministicRng("zero")(32)));
  });

  it("rejects bad seeds, keys, nonces and byte lengths", () => {
    expectCode(() => deterministicRng(""), "MATH_INVALID_ARGUMENT");
    expectCode(() => deterministicRng(new Uint8Array(0)), "MATH_INVALID_ARGUMENT");
    expectCode(() => deterministicRng(42 as unknown as string), "MATH_INVALID_ARGUMENT");
    expectCode(() => chacha20KeystreamRng(new Uint8Array(31)), "MATH_INVALID_ARGUMENT");
    expectCode(() => chacha20KeystreamRng(new Uint8Array(32), new Uint8Array(8)), "MATH_INVALID_ARGUMENT");
    const rng = deterministicRng("lengths");
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "8" as unknown as number]) {
      expectCode(() => rng(bad), "MATH_INVALID_ARGUMENT");
    }
  });
});
