import { expect } from "chai";
import fc from "fast-check";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { concatBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import {
  ENVELOPE_OVERHEAD,
  encryptionPublicKey,
  generateEncryptionKey,
  isValidEncryptionPublicKey,
  openSealed,
  sealTo,
} from "../../node/transport/envelope.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

const aad = utf8ToBytes("task/1/round/0/gate/open:0-3");

describe("transport/envelope", () => {
  it("round-trips random plaintexts and aads", () => {
    const { privateKey, publicKey } = generateEncryptionKey();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.uint8Array({ maxLength: 256 }), (plaintext, ad) => {
        const sealed = sealTo(publicKey, plaintext, ad);
        expect(sealed.length).to.equal(plaintext.length + ENVELOPE_OVERHEAD);
        expect(openSealed(privateKey, sealed, ad)).to.deep.equal(plaintext);
      }),
      { seed: 42, numRuns: 25 },
    );
  });

  it("round-trips a megabyte", () => {
    const { privateKey, publicKey } = generateEncryptionKey();
    const plaintext = new Uint8Array(1 << 20).map((_, i) => (i * 31) & 0xff);
    expect(openSealed(privateKey, sealTo(publicKey, plaintext, aad), aad)).to.deep.equal(plaintext);
  });

  it("follows the documented construction (ECDH x, HKDF-SHA256 salted with both keys, XChaCha20-Poly1305)", () => {
    const { privateKey, publicKey } = generateEncryptionKey();
    const plaintext = utf8ToBytes("share of input 3");
    const sealed = sealTo(publicKey, plaintext, aad);
    expect(sealed[0]).to.equal(0x01);
    const ephemeral = sealed.subarray(1, 34);
    const nonce = sealed.subarray(34, 58);
    expect(secp256k1.utils.isValidPublicKey(ephemeral, true)).to.equal(true);
    const z = secp256k1.getSharedSecret(privateKey, ephemeral, true).subarray(1);
    const key = hkdf(sha256, z, concatBytes(ephemeral, publicKey), utf8ToBytes("consort/envelope/v1"), 32);
    expect(xchacha20poly1305(key, nonce, aad).decrypt(sealed.subarray(58))).to.deep.equal(plaintext);
  });

  it("uses a fresh ephemeral key and nonce every time", () => {
    const { publicKey } = generateEncryptionKey();
    const a = sealTo(publicKey, utf8ToBytes("same"), aad);
    const b = sealTo(publicKey, utf8ToBytes("same"), aad);
    expect(a.subarray(1, 34)).to.not.deep.equal(b.subarray(1, 34));
    expect(a.subarray(34, 58)).to.not.deep.equal(b.subarray(34, 58));
  });

  it("derives the registered 33-byte public key from the private key", () => {
    const { privateKey, publicKey } = generateEncryptionKey();
    expect(publicKey.length).to.equal(33);
    expect(encryptionPublicKey(privateKey)).to.deep.equal(publicKey);
    expect(isValidEncryptionPublicKey(publicKey)).to.equal(true);
  });

  it("fails with DECRYPTION_FAILED under the wrong key", () => {
    const alice = generateEncryptionKey();
    const bob = generateEncryptionKey();
    const sealed = sealTo(alice.publicKey, utf8ToBytes("for alice"), aad);
    expectCode(() => openSealed(bob.privateKey, sealed, aad), "DECRYPTION_FAILED");
  });

  it("fails with DECRYPTION_FAILED when any byte is tampered with", () => {
    const { privateKey, publicKey } = generateEncryptionKey();
    const sealed = sealTo(publicKey, utf8ToBytes("a small share payload"), aad);
    for (let i = 0; i < sealed.length; i++) {
      const tampered = sealed.slice();
      tampered[i] = (tampered[i] as number) ^ 0x01;
      expectCode(() => openSealed(privateKey, tampered, aad), "DECRYPTION_FAILED");
    }
  });

  it("fails with DECRYPTION_FAILED under a different aad", () => {
    const { privateKey, publicKey } = generateEncryptionKey();
    const sealed = sealTo(publicKey, utf8ToBytes("labelled"), aad);
    expectCode(() => openSealed(privateKey, sealed, utf8ToBytes("task/1/round/0/gate/open:0-4")), "DECRYPTION_FAILED");
    expectCode(() => openSealed(privateKey, sealed, new Uint8Array(0)), "DECRYPTION_FAILED");
  });

  it("fails with DECRYPTION_FAILED when truncated, extended or empty", () => {
    const { privateKey, publicKey } = generateEncryptionKey();
    const sealed = sealTo(publicKey, utf8ToBytes("x"), aad);
    for (let n = 0; n < sealed.length; n++) {
      expectCode(() => openSealed(privateKey, sealed.subarray(0, n), aad), "DECRYPTION_FAILED");
    }
    expectCode(() => openSealed(privateKey, concatBytes(sealed, new Uint8Array(1)), aad), "DECRYPTION_FAILED");
  });

  it("rejects bad public keys with KEY_INVALID", () => {
    const { publicKey } = generateEncryptionKey();
    const uncompressed = secp256k1.Point.fromBytes(publicKey).toBytes(false);
    // x = 5 has no y on secp256k1 (5^3 + 7 = 132 is a non-residue mod p).
    const notOnCurve = new Uint8Array(33);
    notOnCurve[0] = 0x02;
    notOnCurve[32] = 5;
    expect(secp256k1.utils.isValidPublicKey(notOnCurve, true)).to.equal(false);
    const badPrefix = publicKey.slice();
    badPrefix[0] = 0x05;
    for (const bad of [new Uint8Array(0), publicKey.subarray(0, 32), uncompressed, notOnCurve, badPrefix, new Uint8Array(33)]) {
      expectCode(() => sealTo(bad, utf8ToBytes("x"), aad), "KEY_INVALID");
    }
    expectCode(() => sealTo("02ab" as unknown as Uint8Array, utf8ToBytes("x"), aad), "KEY_INVALID");
  });

  it("rejects bad private keys with KEY_INVALID", () => {
    const { publicKey } = generateEncryptionKey();
    const sealed = sealTo(publicKey, utf8ToBytes("x"), aad);
    const order = secp256k1.Point.CURVE().n;
    const n = new Uint8Array(32);
    let v = order;
    for (let i = 31; i >= 0; i--) {
      n[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    for (const bad of [new Uint8Array(32), n, new Uint8Array(31).fill(1), new Uint8Array(33).fill(1)]) {
      expectCode(() => openSealed(bad, sealed, aad), "KEY_INVALID");
      expectCode(() => encryptionPublicKey(bad), "KEY_INVALID");
    }
  });
});
