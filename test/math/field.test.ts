import { expect } from "chai";
import fc from "fast-check";
import { randomBytes } from "@noble/hashes/utils.js";
import {
  FR_BYTES,
  FR_MODULUS,
  Fr,
  RANDOM_DRAW_BYTES,
  fillRandomFieldElements,
  SIGNED_MAX,
  SIGNED_MIN,
  assertFieldElement,
  batchInvert,
  decodeFieldVector,
  decodeSigned,
  encodeFieldVector,
  encodeSigned,
  fieldFromBytes,
  fieldInverse,
  fieldToBytes,
  isFieldElement,
  randomFieldElement,
  randomFieldElements,
  toField,
} from "../../node/math/field.ts";
import { deterministicRng } from "../../node/math/rng.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

// Independent oracle: plain BigInt arithmetic with the modulus written out in decimal.
const R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
const mod = (a: bigint): bigint => ((a % R) + R) % R;
function oracleInverse(a: bigint): bigint {
  // Extended Euclid on plain bigints.
  let [oldR, r] = [mod(a), R];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw new Error("not invertible");
  return mod(oldS);
}
const beHex = (x: bigint, bytes: number): string => x.toString(16).padStart(bytes * 2, "0");
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

const edge = [0n, 1n, 2n, R - 1n, R - 2n, (R - 1n) / 2n, (R + 1n) / 2n, 1n << 253n];
const element = fc.oneof(fc.constantFrom(...edge), fc.bigInt({ min: 0n, max: R - 1n }));
const nonZero = element.filter((x) => x !== 0n);

describe("math/field", () => {
  it("is BN254's scalar field with 32-byte elements", () => {
    expect(FR_MODULUS).to.equal(R);
    expect(Fr.ORDER).to.equal(R);
    expect(FR_BYTES).to.equal(32);
    expect(RANDOM_DRAW_BYTES).to.equal(32);
    expect(SIGNED_MAX).to.equal((R - 1n) / 2n);
    expect(SIGNED_MIN).to.equal(-(R - 1n) / 2n);
  });

  it("known answers: 1/2 = (r+1)/2, (r-1)^2 = 1, products and inverses agree with the BigInt oracle", () => {
    expect(fieldInverse(2n)).to.equal((R + 1n) / 2n);
    expect(Fr.mul(R - 1n, R - 1n)).to.equal(1n);
    const a = 0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdefn % R;
    const b = R - 12345678901234567890n;
    expect(Fr.mul(a, b)).to.equal((a * b) % R);
    expect(fieldInverse(a)).to.equal(oracleInverse(a));
    expect(Fr.mul(fieldInverse(b), b)).to.equal(1n);
  });

  it("field laws hold and agree with the oracle (associativity, commutativity, distributivity, identities, inverses)", () => {
    fc.assert(
      fc.property(element, element, element, (a, b, c) => {
        expect(Fr.add(a, b)).to.equal(mod(a + b));
        expect(Fr.sub(a, b)).to.equal(mod(a - b));
        expect(Fr.mul(a, b)).to.equal(mod(a * b));
        expect(Fr.neg(a)).to.equal(mod(-a));
        expect(Fr.add(Fr.add(a, b), c)).to.equal(Fr.add(a, Fr.add(b, c)));
        expect(Fr.mul(Fr.mul(a, b), c)).to.equal(Fr.mul(a, Fr.mul(b, c)));
        expect(Fr.add(a, b)).to.equal(Fr.add(b, a));
        expect(Fr.mul(a, b)).to.equal(Fr.mul(b, a));
        expect(Fr.mul(a, Fr.add(b, c))).to.equal(Fr.add(Fr.mul(a, b), Fr.mul(a, c)));
        expect(Fr.add(a, 0n)).to.equal(a);
        expect(Fr.mul(a, 1n)).to.equal(a);
        expect(Fr.add(a, Fr.neg(a))).to.equal(0n);
      }),
      { seed: 42, numRuns: 300 },
    );
    fc.assert(
      fc.property(nonZero, (a) => {
        const inv = fieldInverse(a);
        expect(inv).to.equal(oracleInverse(a));
        expect(mod(inv * a)).to.equal(1n);
      }),
      { seed: 43, numRuns: 200 },
    );
  });

  it("batchInvert equals element-wise inversion and rejects zero with its index", () => {
    fc.assert(
      fc.property(fc.array(nonZero, { minLength: 0, maxLength: 20 }), (xs) => {
        expect(batchInvert(xs)).to.deep.equal(xs.map(oracleInverse));
      }),
      { seed: 44, numRuns: 100 },
    );
    expect(expectCode(() => batchInvert([1n, 2n, 0n, 3n]), "MATH_INVALID_ARGUMENT").details.index).to.equal(2);
    expect(expectCode(() => batchInvert([1n, R]), "MATH_INVALID_ARGUMENT").details.index).to.equal(1);
    expectCode(() => fieldInverse(0n), "MATH_INVALID_ARGUMENT");
    expectCode(() => fieldInverse(R), "MATH_INVALID_ARGUMENT");
  });

  it("fieldToBytes/fieldFromBytes are 32-byte big-endian and agree with noble's own encoder", () => {
    expect(hex(fieldToBytes(1n))).to.equal("00".repeat(31) + "01");
    expect(hex(fieldToBytes(R - 1n))).to.equal(beHex(R - 1n, 32));
    fc.assert(
      fc.property(element, (x) => {
        const bytes = fieldToBytes(x);
        expect(hex(bytes)).to.equal(beHex(x, 32));
        expect(hex(bytes)).to.equal(hex(Fr.toBytes(x)));
        expect(fieldFromBytes(bytes)).to.equal(x);
      }),
      { seed: 45, numRuns: 300 },
    );
  });

  it("fieldFromBytes rejects values >= r and wrong lengths; fieldToBytes rejects non-elements", () => {
    const bytesOf = (x: bigint): Uint8Array => new Uint8Array(Buffer.from(beHex(x, 32), "hex"));
    expectCode(() => fieldFromBytes(bytesOf(R)), "MATH_INVALID_ARGUMENT");
    expectCode(() => fieldFromBytes(bytesOf((1n << 256n) - 1n)), "MATH_INVALID_ARGUMENT");
    expect(fieldFromBytes(bytesOf(R - 1n))).to.equal(R - 1n);
    expectCode(() => fieldFromBytes(new Uint8Array(31)), "MATH_INVALID_ARGUMENT");
    expectCode(() => fieldFromBytes(new Uint8Array(33)), "MATH_INVALID_ARGUMENT");
    expectCode(() => fieldFromBytes("00" as unknown as Uint8Array), "MATH_INVALID_ARGUMENT");
    // A subarray at an odd offset of a larger buffer decodes like a fresh copy.
    const big = new Uint8Array(70);
    big.set(bytesOf(R - 5n), 3);
    expect(fieldFromBytes(big.subarray(3, 35))).to.equal(R - 5n);
    for (const bad of [R, -1n, 1n << 256n, 5 as unknown as bigint]) {
      expectCode(() => fieldToBytes(bad), "MATH_INVALID_ARGUMENT");
    }
  });

  it("field vectors round-trip and equal the concatenation of single encodings", () => {
    fc.assert(
      fc.property(fc.array(element, { maxLength: 40 }), (xs) => {
        const bytes = encodeFieldVector(xs);
        expect(bytes.length).to.equal(32 * xs.length);
        expect(hex(bytes)).to.equal(xs.map((x) => beHex(x, 32)).join(""));
        expect(decodeFieldVector(bytes)).to.deep.equal(xs);
        expect(decodeFieldVector(bytes, xs.length)).to.deep.equal(xs);
      }),
      { seed: 46, numRuns: 200 },
    );
    expect(decodeFieldVector(new Uint8Array(0))).to.deep.equal([]);
  });

  it("field vectors reject wrong lengths, wrong counts and out-of-range entries (naming the index)", () => {
    expectCode(() => decodeFieldVector(new Uint8Array(33)), "MATH_INVALID_ARGUMENT");
    expectCode(() => decodeFieldVector(new Uint8Array(31)), "MATH_INVALID_ARGUMENT");
    expectCode(() => decodeFieldVector(new Uint8Array(64), 3), "MATH_INVALID_ARGUMENT");
    const bytes = encodeFieldVector([1n, 2n, 3n]);
    bytes.set(Buffer.from(beHex(R, 32), "hex"), 64);
    expect(expectCode(() => decodeFieldVector(bytes), "MATH_INVALID_ARGUMENT").details.index).to.equal(2);
    expect(expectCode(() => encodeFieldVector([0n, 1n, R]), "MATH_INVALID_ARGUMENT").details.index).to.equal(2);
    expect(expectCode(() => encodeFieldVector([-1n]), "MATH_INVALID_ARGUMENT").details.index).to.equal(0);
    expect(expectCode(() => encodeFieldVector([1n, 2 as unknown as bigint]), "MATH_INVALID_ARGUMENT").details.index).to.equal(1);
    expectCode(() => encodeFieldVector("x" as unknown as bigint[]), "MATH_INVALID_ARGUMENT");
  });

  it("signed embedding: known values and round trip over the whole range, especially near ±(r-1)/2", () => {
    expect(encodeSigned(-1n)).to.equal(R - 1n);
    expect(encodeSigned(SIGNED_MAX)).to.equal((R - 1n) / 2n);
    expect(encodeSigned(SIGNED_MIN)).to.equal((R + 1n) / 2n);
    expect(decodeSigned((R + 1n) / 2n)).to.equal(SIGNED_MIN);
    expect(decodeSigned(R - 1n)).to.equal(-1n);
    expect(decodeSigned(0n)).to.equal(0n);
    const nearEdges = fc.oneof(
      fc.bigInt({ min: SIGNED_MIN, max: SIGNED_MAX }),
      fc.bigInt({ min: SIGNED_MAX - 1000n, max: SIGNED_MAX }),
      fc.bigInt({ min: SIGNED_MIN, max: SIGNED_MIN + 1000n }),
      fc.bigInt({ min: -1000n, max: 1000n }),
    );
    fc.assert(
      fc.property(nearEdges, (v) => {
        const x = encodeSigned(v);
        expect(isFieldElement(x)).to.equal(true);
        expect(x).to.equal(mod(v));
        expect(decodeSigned(x)).to.equal(v);
      }),
      { seed: 47, numRuns: 500 },
    );
    // Every field element decodes to a value that encodes back to it (the embedding is a bijection).
    fc.assert(
      fc.property(element, (x) => {
        expect(encodeSigned(decodeSigned(x))).to.equal(x);
      }),
      { seed: 48, numRuns: 300 },
    );
  });

  it("signed embedding is a ring homomorphism for results that stay in range (64-bit inputs)", () => {
    const i64 = fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });
    fc.assert(
      fc.property(i64, i64, (a, b) => {
        expect(decodeSigned(Fr.add(encodeSigned(a), encodeSigned(b)))).to.equal(a + b);
        expect(decodeSigned(Fr.sub(encodeSigned(a), encodeSigned(b)))).to.equal(a - b);
        expect(decodeSigned(Fr.mul(encodeSigned(a), encodeSigned(b)))).to.equal(a * b);
      }),
      { seed: 49, numRuns: 300 },
    );
  });

  it("signed embedding rejects values outside its range", () => {
    expectCode(() => encodeSigned(SIGNED_MAX + 1n), "MATH_INVALID_ARGUMENT");
    expectCode(() => encodeSigned(SIGNED_MIN - 1n), "MATH_INVALID_ARGUMENT");
    expectCode(() => encodeSigned(1 as unknown as bigint), "MATH_INVALID_ARGUMENT");
    expectCode(() => decodeSigned(R), "MATH_INVALID_ARGUMENT");
    expectCode(() => decodeSigned(-1n), "MATH_INVALID_ARGUMENT");
  });

  it("randomFieldElement is rejection sampling: 32-byte big-endian blocks, top two bits cleared, accepted if < r", () => {
    // Oracle over the raw stream.
    const stream = deterministicRng("field-sampling")(32 * 400);
    const expected: bigint[] = [];
    let rejected = 0;
    for (let o = 0; o < stream.length; o += 32) {
      const x = BigInt("0x" + hex(stream.subarray(o, o + 32))) & ((1n << 254n) - 1n);
      if (x < R) expected.push(x);
      else rejected++;
    }
    expect(rejected).to.be.greaterThan(50); // about 24% of blocks are >= r: the rejection path runs
    const rng = deterministicRng("field-sampling");
    for (const x of expected) expect(randomFieldElement(rng)).to.equal(x);
    expect(randomFieldElements(expected.length, deterministicRng("field-sampling"))).to.deep.equal(expected);
    // Batch draws consume the stream exactly like repeated single draws: the next bytes agree.
    const batch = deterministicRng("field-sampling");
    randomFieldElements(expected.length, batch);
    expect(hex(batch(32))).to.equal(hex(rng(32)));
    expect(randomFieldElements(0, deterministicRng("batch"))).to.deep.equal([]);
  });

  it("rejection sampling skips blocks >= r and ignores the top two bits", () => {
    const block = (x: bigint): string => beHex(x, 32);
    const scripted = new Uint8Array(
      Buffer.from(
        block((1n << 256n) - 1n) + // 2^254 - 1 after masking: rejected
          block(R) + // rejected
          block((3n << 254n) | 5n) + // top bits cleared: 5
          block(R - 1n),
        "hex",
      ),
    );
    let pos = 0;
    const rng = (n: number): Uint8Array => scripted.slice(pos, (pos += n));
    expect(randomFieldElement(rng)).to.equal(5n);
    expect(randomFieldElement(rng)).to.equal(R - 1n);
    const out = [9n, 9n, 9n, 9n];
    pos = 0;
    fillRandomFieldElements(out, 1, 2, rng);
    expect(out).to.deep.equal([9n, 5n, R - 1n, 9n]);
  });

  it("random elements are spread over the whole field", () => {
    const xs = randomFieldElements(2000, deterministicRng("spread"));
    expect(new Set(xs).size).to.equal(2000);
    const low = xs.filter((x) => x < R / 2n).length;
    expect(low).to.be.within(900, 1100);
    // Top byte of the 32-byte encoding takes most of its possible values (r < 0x31 · 2^248).
    expect(new Set(xs.map((x) => Number(x >> 248n))).size).to.be.at.least(45);
  });

  it("rejects a misbehaving rng and bad counts", () => {
    expectCode(() => randomFieldElement(() => new Uint8Array(31)), "MATH_INVALID_ARGUMENT");
    expectCode(() => randomFieldElements(3, () => new Uint8Array(32)), "MATH_INVALID_ARGUMENT");
    expectCode(() => fillRandomFieldElements([], -1, 1, deterministicRng("x")), "MATH_INVALID_ARGUMENT");
    expectCode(() => randomFieldElements(-1, deterministicRng("x")), "MATH_INVALID_ARGUMENT");
    expectCode(() => randomFieldElements(1.5, deterministicRng("x")), "MATH_INVALID_ARGUMENT");
  });

  it("helpers: isFieldElement, assertFieldElement, toField", () => {
    expect(isFieldElement(0n)).to.equal(true);
    expect(isFieldElement(R - 1n)).to.equal(true);
    expect(isFieldElement(R)).to.equal(false);
    expect(isFieldElement(-1n)).to.equal(false);
    expect(isFieldElement(1)).to.equal(false);
    expectCode(() => assertFieldElement(R, "x"), "MATH_INVALID_ARGUMENT");
    expect(toField(-1n)).to.equal(R - 1n);
    expect(toField(R * 3n + 7n)).to.equal(7n);
    expectCode(() => toField(1 as unknown as bigint), "MATH_INVALID_ARGUMENT");
  });
});

describe("math/field randomness in bulk", () => {
  it("draws any number of elements from a CSPRNG that refuses more than 64 KiB per call", () => {
    const picky = (n: number): Uint8Array => {
      if (n > 65_536) throw new Error(`asked for ${n} bytes at once`);
      return randomBytes(n);
    };
    const out = randomFieldElements(5_000, picky);
    expect(out).to.have.length(5_000);
    expect(new Set(out.map(String)).size).to.equal(5_000);
    for (const x of out) expect(x < R).to.equal(true);
  });
});
