import { expect } from "chai";
import { getAddress, hexlify, solidityPackedKeccak256, solidityPackedSha256 } from "ethers";
import fc from "fast-check";
import {
  DIGEST_BYTES,
  SALT_BYTES,
  commitEncodedInputShares,
  commitInputShares,
  inputCommitment,
  shareDigest,
  shareDigestOfEncoded,
  verifyShareAgainstCommitment,
} from "../../node/math/commitment.ts";
import { encodeFieldVector } from "../../node/math/field.ts";
import type { InputContext } from "../../node/math/commitment.ts";
import { deterministicRng } from "../../node/math/rng.ts";
import { splitVector } from "../../node/math/shamir.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

const R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;

// Independent implementation: ethers' abi.encodePacked + sha256 / keccak256 (uint256[] / bytes32[] elements are
// packed as 32-byte words, which is exactly encodeFieldVector / the concatenated digests).
function ethersShareDigest(ctx: InputContext, party: number, salt: Uint8Array, values: readonly bigint[]): string {
  return solidityPackedSha256(
    ["string", "uint256", "address", "uint256", "address", "uint32", "bytes32", "uint256[]"],
    ["consort/input-share/v2", ctx.chainId, getAddress(hexlify(ctx.registry)), ctx.taskId, getAddress(hexlify(ctx.dataOwner)), party, hexlify(salt), values],
  );
}
function ethersInputCommitment(ctx: InputContext, digests: readonly Uint8Array[]): string {
  return solidityPackedKeccak256(
    ["string", "uint256", "address", "uint256", "address", "uint32", "bytes32[]"],
    ["consort/input-commitment/v1", ctx.chainId, getAddress(hexlify(ctx.registry)), ctx.taskId, getAddress(hexlify(ctx.dataOwner)), digests.length, digests.map((d) => hexlify(d))],
  );
}

const fixedCtx: InputContext = {
  chainId: 31337n,
  registry: new Uint8Array(20).map((_, i) => 0x10 + i),
  taskId: 7n,
  dataOwner: new Uint8Array(20).map((_, i) => 0xa0 + i),
};
const bytesFrom = (start: number): Uint8Array => new Uint8Array(32).map((_, i) => start + i);

const contextArb = fc.record({
  chainId: fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }),
  registry: fc.uint8Array({ minLength: 20, maxLength: 20 }),
  taskId: fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }),
  dataOwner: fc.uint8Array({ minLength: 20, maxLength: 20 }),
});

describe("math/commitment", () => {
  it("fixed vector: digests equal abi.encodePacked + sha256, the commitment abi.encodePacked + keccak256, computed by ethers", () => {
    const d0 = shareDigest(fixedCtx, 0, bytesFrom(32), [4n, 5n, 6n]);
    const d1 = shareDigest(fixedCtx, 1, bytesFrom(0), [1n, 2n, 3n]);
    expect(hexlify(d0)).to.equal(ethersShareDigest(fixedCtx, 0, bytesFrom(32), [4n, 5n, 6n]));
    expect(hexlify(d1)).to.equal(ethersShareDigest(fixedCtx, 1, bytesFrom(0), [1n, 2n, 3n]));
    const commitment = inputCommitment(fixedCtx, [d0, d1]);
    expect(hexlify(commitment)).to.equal(ethersInputCommitment(fixedCtx, [d0, d1]));
    // Pinned so that other implementations (Solidity, clients) can test against the same bytes.
    expect(hexlify(d0)).to.equal("0xbe6690ca5765ac1ac388eb833677a68f83a45084d2d874ad6bc93f523cd82ab9");
    expect(hexlify(d1)).to.equal("0x96e8c1a2e38fc0aea7e2d0ccc513b52967c907f31f63418f7c2bc05d9a3d81f0");
    expect(hexlify(commitment)).to.equal("0xbed6db4fdf39ee981cb77ed085665d242e0c509dacffad37efb21ad81f93add8");
  });

  it("agrees with ethers for random contexts, parties, salts and share vectors", () => {
    fc.assert(
      fc.property(
        contextArb,
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.array(fc.bigInt({ min: 0n, max: R - 1n }), { maxLength: 6 }),
        (ctx, party, salt, values) => {
          const digest = shareDigest(ctx, party, salt, values);
          expect(digest.length).to.equal(DIGEST_BYTES);
          expect(hexlify(digest)).to.equal(ethersShareDigest(ctx, party, salt, values));
          // What a party computes from the bytes it received, without decoding them.
          expect(hexlify(shareDigestOfEncoded(ctx, party, salt, encodeFieldVector(values)))).to.equal(hexlify(digest));
          const digests = [digest, shareDigest(ctx, party, salt, [...values, 1n])];
          expect(hexlify(inputCommitment(ctx, digests))).to.equal(ethersInputCommitment(ctx, digests));
        },
      ),
      { seed: 42, numRuns: 100 },
    );
    expect(hexlify(inputCommitment(fixedCtx, []))).to.equal(ethersInputCommitment(fixedCtx, []));
  });

  it("commitInputShares draws a fresh salt per party and every party verifies its own shares", () => {
    const byParty = splitVector([10n, 20n, 30n], { threshold: 1, parties: 3 }, deterministicRng("inputs"));
    const { salts, digests, commitment } = commitInputShares(fixedCtx, byParty, deterministicRng("salts"));
    expect(salts.length).to.equal(3);
    salts.forEach((s) => expect(s.length).to.equal(SALT_BYTES));
    expect(new Set(salts.map((s) => hexlify(s))).size).to.equal(3);
    // The salts are the rng's next bytes, in party order.
    expect(hexlify(Buffer.concat(salts))).to.equal(hexlify(deterministicRng("salts")(96)));
    expect(hexlify(commitment)).to.equal(ethersInputCommitment(fixedCtx, digests));
    byParty.forEach((values, i) => verifyShareAgainstCommitment(fixedCtx, i, salts[i]!, values, digests, commitment));
    // Same shares, different salt: a different digest (salts make digests hiding).
    expect(hexlify(shareDigest(fixedCtx, 0, bytesFrom(1), byParty[0]!))).to.not.equal(hexlify(digests[0]!));
    // From the encoded shares (what the data owner keeps and seals): the same salts, digests and commitment.
    const encoded = commitEncodedInputShares(fixedCtx, byParty.map((v) => encodeFieldVector(v)), deterministicRng("salts"));
    expect(encoded.salts.map((x) => hexlify(x))).to.deep.equal(salts.map((x) => hexlify(x)));
    expect(encoded.digests.map((x) => hexlify(x))).to.deep.equal(digests.map((x) => hexlify(x)));
    expect(hexlify(encoded.commitment)).to.equal(hexlify(commitment));
  });

  it("verification fails if any byte of salt, share, digest list, commitment or context changes", () => {
    type Tamper =
      | { kind: "salt" | "registry" | "dataOwner" | "commitment"; pos: number; mask: number }
      | { kind: "share"; pos: number; delta: bigint }
      | { kind: "digest"; which: number; pos: number; mask: number }
      | { kind: "chainId" | "taskId"; bit: number }
      | { kind: "party"; shift: number }
      | { kind: "drop" | "append" };
    const mask = fc.integer({ min: 1, max: 255 });
    const tamperArb: fc.Arbitrary<Tamper> = fc.oneof(
      fc.record({ kind: fc.constantFrom("salt" as const, "registry" as const, "dataOwner" as const, "commitment" as const), pos: fc.nat(), mask }),
      fc.record({ kind: fc.constant("share" as const), pos: fc.nat(), delta: fc.bigInt({ min: 1n, max: R - 1n }) }),
      fc.record({ kind: fc.constant("digest" as const), which: fc.nat(), pos: fc.nat(), mask }),
      fc.record({ kind: fc.constantFrom("chainId" as const, "taskId" as const), bit: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant("party" as const), shift: fc.integer({ min: 1, max: 6 }) }),
      fc.record({ kind: fc.constantFrom("drop" as const, "append" as const) }),
    );
    fc.assert(
      fc.property(
        contextArb,
        fc.integer({ min: 3, max: 7 }),
        fc.array(fc.bigInt({ min: 0n, max: R - 1n }), { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ minLength: 1, maxLength: 8 }),
        fc.nat(),
        tamperArb,
        (ctx, n, secrets, seed, pickParty, tamper) => {
          const rng = deterministicRng(seed);
          const byParty = splitVector(secrets, { threshold: Math.floor((n - 1) / 2), parties: n }, rng);
          const { salts, digests, commitment } = commitInputShares(ctx, byParty, rng);
          const party = pickParty % n;
          let vctx: InputContext = { ...ctx };
          let vparty = party;
          const vsalt = salts[party]!.slice();
          const vshares = [...byParty[party]!];
          let vdigests = digests.map((d) => d.slice());
          const vcommitment = commitment.slice();
          let expected: "share-digest" | "input-commitment";
          switch (tamper.kind) {
            case "salt":
              vsalt[tamper.pos % 32]! ^= tamper.mask;
              expected = "share-digest";
              break;
            case "share": {
              const k = tamper.pos % vshares.length;
              vshares[k] = (vshares[k]! + tamper.delta) % R;
              expected = "share-digest";
              break;
            }
            case "party":
              vparty = (party + tamper.shift) % n === party ? (party + 1) % n : (party + tamper.shift) % n;
              expected = "share-digest";
              break;
            case "digest":
              vdigests[tamper.which % n]![tamper.pos % 32]! ^= tamper.mask;
              expected = "input-commitment";
              break;
            case "commitment":
              vcommitment[tamper.pos % 32]! ^= tamper.mask;
              expected = "input-commitment";
              break;
            case "registry":
            case "dataOwner": {
              const address = ctx[tamper.kind].slice();
              address[tamper.pos % 20]! ^= tamper.mask;
              vctx = { ...ctx, [tamper.kind]: address };
              expected = "input-commitment";
              break;
            }
            case "chainId":
            case "taskId":
              vctx = { ...ctx, [tamper.kind]: ctx[tamper.kind] ^ (1n << BigInt(tamper.bit)) };
              expected = "input-commitment";
              break;
            case "drop":
              vdigests = vdigests.filter((_, i) => i !== (party + 1) % n);
              expected = "input-commitment";
              break;
            case "append":
              vdigests = [...vdigests, vdigests[0]!];
              expected = "input-commitment";
              break;
          }
          // The untampered original still verifies ...
          verifyShareAgainstCommitment(ctx, party, salts[party]!, byParty[party]!, digests, commitment);
          // ... the tampered one fails, naming the check.
          const error = expectCode(
            () => verifyShareAgainstCommitment(vctx, vparty, vsalt, vshares, vdigests, vcommitment),
            "COMMITMENT_MISMATCH",
          );
          expect(error.details.check).to.equal(expected);
        },
      ),
      { seed: 43, numRuns: 400 },
    );
  });

  it("a party index past the committed list is a share-digest mismatch", () => {
    const d0 = shareDigest(fixedCtx, 0, bytesFrom(0), [1n]);
    const commitment = inputCommitment(fixedCtx, [d0]);
    const error = expectCode(
      () => verifyShareAgainstCommitment(fixedCtx, 1, bytesFrom(0), [1n], [d0], commitment),
      "COMMITMENT_MISMATCH",
    );
    expect(error.details.check).to.equal("share-digest");
  });

  it("rejects malformed arguments", () => {
    const ok = (): void => void shareDigest(fixedCtx, 0, bytesFrom(0), [1n]);
    ok();
    expectCode(() => shareDigest(fixedCtx, 0, new Uint8Array(31), [1n]), "MATH_INVALID_ARGUMENT");
    expectCode(() => shareDigest(fixedCtx, 0, new Uint8Array(33), [1n]), "MATH_INVALID_ARGUMENT");
    expectCode(() => shareDigest({ ...fixedCtx, registry: new Uint8Array(19) }, 0, bytesFrom(0), [1n]), "MATH_INVALID_ARGUMENT");
    expectCode(() => shareDigest({ ...fixedCtx, dataOwner: new Uint8Array(21) }, 0, bytesFrom(0), [1n]), "MATH_INVALID_ARGUMENT");
    expectCode(() => shareDigest({ ...fixedCtx, chainId: -1n }, 0, bytesFrom(0), [1n]), "MATH_INVALID_ARGUMENT");
    expectCode(() => shareDigest({ ...fixedCtx, taskId: 1n << 256n }, 0, bytesFrom(0), [1n]), "MATH_INVALID_ARGUMENT");
    expectCode(() => shareDigest({ ...fixedCtx, chainId: 1 as unknown as bigint }, 0, bytesFrom(0), [1n]), "MATH_INVALID_ARGUMENT");
    expectCode(() => shareDigest(fixedCtx, -1, bytesFrom(0), [1n]), "MATH_INVALID_ARGUMENT");
    expectCode(() => shareDigest(fixedCtx, 2 ** 32, bytesFrom(0), [1n]), "MATH_INVALID_ARGUMENT");
    expectCode(() => shareDigest(fixedCtx, 0.5, bytesFrom(0), [1n]), "MATH_INVALID_ARGUMENT");
    expectCode(() => shareDigest(fixedCtx, 0, bytesFrom(0), [R]), "MATH_INVALID_ARGUMENT");
    expectCode(() => shareDigest(null as unknown as InputContext, 0, bytesFrom(0), [1n]), "MATH_INVALID_ARGUMENT");
    expectCode(() => shareDigestOfEncoded(fixedCtx, 0, bytesFrom(0), new Uint8Array(33)), "MATH_INVALID_ARGUMENT");
    expectCode(() => shareDigestOfEncoded(fixedCtx, 0, bytesFrom(0), [1n] as unknown as Uint8Array), "MATH_INVALID_ARGUMENT");
    const d0 = shareDigest(fixedCtx, 0, bytesFrom(0), [1n]);
    expectCode(() => inputCommitment(fixedCtx, [d0, new Uint8Array(31)]), "MATH_INVALID_ARGUMENT");
    expectCode(() => inputCommitment(fixedCtx, "x" as unknown as Uint8Array[]), "MATH_INVALID_ARGUMENT");
    const commitment = inputCommitment(fixedCtx, [d0]);
    expectCode(() => verifyShareAgainstCommitment(fixedCtx, 0, bytesFrom(0), [1n], [d0], commitment.subarray(1)), "MATH_INVALID_ARGUMENT");
    expectCode(() => verifyShareAgainstCommitment(fixedCtx, 0, new Uint8Array(16), [1n], [d0], commitment), "MATH_INVALID_ARGUMENT");
    expectCode(() => commitInputShares(fixedCtx, [[1n]], () => new Uint8Array(16)), "MATH_INVALID_ARGUMENT");
  });
});
