import { expect } from "chai";
import { network } from "hardhat";
import { Wallet, getAddress, getBytes, hexlify, keccak256, sha256, solidityPacked, toUtf8Bytes } from "ethers";
import { isConsortError } from "../../node/errors.ts";
import type { ConsortErrorCode } from "../../node/errors.ts";
import { shareDigest, shareDigestOfEncoded } from "../../node/math/commitment.ts";
import { FR_MODULUS, encodeFieldVector } from "../../node/math/field.ts";
import { frVecToBigints } from "../../node/math/fr-vec.ts";
import { generateEncryptionKey } from "../../node/transport/envelope.ts";
import {
  maxShareSubmissionBytes,
  openSharePayload,
  sealEncodedSharePayload,
  parseShareSubmission,
  sealSharePayload,
  shareSubmissionDigest,
  signShareSubmission,
  verifyShareSubmission,
} from "../../node/transport/share-submission.ts";
import type { ShareSubmission, UnsignedShareSubmission } from "../../node/transport/share-submission.ts";

async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

async function expectCode(fn: () => unknown, code: ConsortErrorCode, field?: string): Promise<void> {
  const err = await caught(fn);
  expect(isConsortError(err), `expected ${code}, got ${String(err)}`).to.equal(true);
  expect((err as { code: string }).code).to.equal(code);
  if (field !== undefined) expect((err as { details: Record<string, unknown> }).details.field).to.equal(field);
}

const owner = new Wallet("0x" + "31".repeat(32));
const stranger = new Wallet("0x" + "32".repeat(32));
const party = new Wallet("0x" + "33".repeat(32));
const registry = getAddress("0x" + "5e".repeat(20));
const partyKey = generateEncryptionKey();
const salt = Uint8Array.from({ length: 32 }, (_, i) => 200 - i);
const shareValues = [0n, 1n, 42n, FR_MODULUS - 1n];

function unsignedSubmission(overrides: Partial<UnsignedShareSubmission> = {}): UnsignedShareSubmission {
  const base = {
    version: 1 as const,
    chainId: "31337",
    registry,
    taskId: "12",
    dataOwner: owner.address,
    party: party.address,
  };
  const sealed = hexlify(sealSharePayload(partyKey.publicKey, salt, shareValues, base));
  return {
    ...base,
    digests: [keccak256("0x01"), keccak256("0x02"), keccak256("0x03")],
    sealed,
    ...overrides,
  };
}

describe("transport/share-submission", () => {
  let signed: ShareSubmission;

  before(async () => {
    signed = await signShareSubmission(unsignedSubmission(), owner);
  });

  it("bounds the JSON of a submission by its value and party counts (the node API reads no more)", async () => {
    for (const [values, parties] of [[1, 1], [4, 3], [1000, 7], [20_000, 2]] as const) {
      const base = { version: 1 as const, chainId: (2n ** 256n - 1n).toString(), registry, taskId: (2n ** 256n - 1n).toString(), dataOwner: owner.address, party: party.address };
      const sealed = hexlify(sealSharePayload(partyKey.publicKey, salt, Array.from({ length: values }, (_, i) => FR_MODULUS - 1n - BigInt(i)), base));
      const sub = await signShareSubmission({ ...base, digests: Array.from({ length: parties }, (_, i) => keccak256(`0x0${i % 10}`)), sealed }, owner);
      const bytes = Buffer.byteLength(JSON.stringify(sub));
      const bound = maxShareSubmissionBytes(values, parties);
      expect(bytes, `${values} values, ${parties} parties`).to.be.at.most(bound);
      // Tight: the bound exceeds the real size by little more than its fixed allowance for ids, keys and whitespace.
      expect(bytes + 64, `${values} values`).to.be.above(maxShareSubmissionBytes(values, parties) - 4096);
      expect(maxShareSubmissionBytes(values + 1, parties)).to.be.above(bound);
    }
    await expectCode(() => maxShareSubmissionBytes(-1, 3), "BAD_REQUEST");
    await expectCode(() => maxShareSubmissionBytes(1, 0), "BAD_REQUEST");
  });

  it("signs, survives JSON, parses and verifies", () => {
    const parsed = parseShareSubmission(JSON.parse(JSON.stringify(signed)));
    expect(parsed).to.deep.equal(signed);
    verifyShareSubmission(parsed);
  });

  it("defines the digest as documented (independent solidityPacked recomputation)", () => {
    const s = signed;
    const expected = keccak256(
      solidityPacked(
        ["bytes", "uint256", "address", "uint256", "address", "address", "bytes32", "bytes32[]"],
        [toUtf8Bytes("consort/share-submission/v2"), s.chainId, s.registry, s.taskId, s.dataOwner, s.party, sha256(s.sealed), s.digests],
      ),
    );
    expect(hexlify(shareSubmissionDigest(s))).to.equal(expected);
  });

  it("accepts a Hardhat account as the data owner's signer (EIP-191)", async () => {
    const { ethers } = await network.create();
    const [account] = await ethers.getSigners();
    if (account === undefined) throw new Error("no hardhat account");
    const sub = await signShareSubmission(unsignedSubmission({ dataOwner: account.address }), account);
    verifyShareSubmission(parseShareSubmission(JSON.parse(JSON.stringify(sub))));
  });

  it("opens the sealed payload for the party, bound to its context", () => {
    const context = signed;
    const digestContext = { chainId: 31337n, registry: getBytes(context.registry), taskId: BigInt(context.taskId), dataOwner: getBytes(context.dataOwner) };
    const opened = openSharePayload(partyKey.privateKey, signed.sealed, context);
    expect(opened.salt).to.deep.equal(salt);
    expect(frVecToBigints(opened.vector)).to.deep.equal(shareValues);
    // The encoded values are the owner's bytes, which the digest commits to.
    expect(opened.encoded).to.deep.equal(encodeFieldVector(shareValues));
    expect(hexlify(shareDigestOfEncoded(digestContext, 1, salt, opened.encoded))).to.equal(hexlify(shareDigest(digestContext, 1, salt, shareValues)));
    expect(frVecToBigints(openSharePayload(partyKey.privateKey, getBytes(signed.sealed), { ...context, chainId: 31337n, taskId: 12n }, 4).vector)).to.deep.equal(
      shareValues,
    );
  });

  it("refuses to open under another context or key (DECRYPTION_FAILED)", async () => {
    const other = getAddress("0x" + "77".repeat(20));
    for (const context of [
      { ...signed, chainId: "1" },
      { ...signed, registry: other },
      { ...signed, taskId: "13" },
      { ...signed, dataOwner: other },
      { ...signed, party: other },
    ]) {
      await expectCode(() => openSharePayload(partyKey.privateKey, signed.sealed, context), "DECRYPTION_FAILED");
    }
    await expectCode(() => openSharePayload(generateEncryptionKey().privateKey, signed.sealed, signed), "DECRYPTION_FAILED");
    await expectCode(() => openSharePayload(partyKey.privateKey, "0xnothex", signed), "DECRYPTION_FAILED");
  });

  it("rejects a payload with the wrong number of values (BAD_REQUEST)", async () => {
    await expectCode(() => openSharePayload(partyKey.privateKey, signed.sealed, signed, 5), "BAD_REQUEST", "sealed");
  });

  it("rejects bad seal arguments", async () => {
    await expectCode(() => sealSharePayload(partyKey.publicKey, new Uint8Array(31), shareValues, signed), "BAD_REQUEST", "salt");
    await expectCode(() => sealSharePayload(partyKey.publicKey, salt, [FR_MODULUS], signed), "MATH_INVALID_ARGUMENT");
    await expectCode(() => sealSharePayload(partyKey.publicKey, salt, shareValues, { ...signed, taskId: "0x1" }), "BAD_REQUEST", "taskId");
    await expectCode(() => sealSharePayload(new Uint8Array(33), salt, shareValues, signed), "KEY_INVALID");
    await expectCode(() => sealEncodedSharePayload(partyKey.publicKey, salt, new Uint8Array(33), signed), "BAD_REQUEST", "shares");
    await expectCode(() => sealEncodedSharePayload(partyKey.publicKey, new Uint8Array(31), encodeFieldVector(shareValues), signed), "BAD_REQUEST", "salt");
  });

  it("seals encoded shares as sealSharePayload seals the values", () => {
    const sealed = sealEncodedSharePayload(partyKey.publicKey, salt, encodeFieldVector(shareValues), signed);
    const opened = openSharePayload(partyKey.privateKey, sealed, signed, shareValues.length);
    expect(opened.salt).to.deep.equal(salt);
    expect(frVecToBigints(opened.vector)).to.deep.equal(shareValues);
  });

  it("rejects signatures by anyone but the data owner, and any tampered field (BAD_SIGNATURE)", async () => {
    const byStranger = await signShareSubmission(unsignedSubmission({ dataOwner: stranger.address }), stranger);
    await expectCode(() => verifyShareSubmission({ ...byStranger, dataOwner: owner.address }), "BAD_SIGNATURE");
    const other = getAddress("0x" + "77".repeat(20));
    const tampered: ShareSubmission[] = [
      { ...signed, chainId: "1" },
      { ...signed, registry: other },
      { ...signed, taskId: "13" },
      { ...signed, party: other },
      { ...signed, digests: [...signed.digests.slice(0, 2), keccak256("0x04")] },
      { ...signed, digests: signed.digests.slice(0, 2) },
      { ...signed, sealed: signed.sealed.slice(0, -2) + (signed.sealed.endsWith("00") ? "01" : "00") },
    ];
    for (const t of tampered) await expectCode(() => verifyShareSubmission(t), "BAD_SIGNATURE");
  });

  it("refuses to sign for another data owner (KEY_INVALID)", async () => {
    await expectCode(() => signShareSubmission(unsignedSubmission(), stranger), "KEY_INVALID");
  });

  it("names the first bad field when parsing", async () => {
    const json = JSON.parse(JSON.stringify(signed)) as Record<string, unknown>;
    const badChecksum = "0x" + owner.address.slice(2).toLowerCase().replace(/[a-f]/, (c) => c.toUpperCase());
    const { party: _party, ...withoutParty } = json;
    const cases: Array<[unknown, string]> = [
      [null, "submission"],
      ["submission", "submission"],
      [[], "submission"],
      [{ ...json, version: 2 }, "version"],
      [{ ...json, version: "1" }, "version"],
      [{ ...json, chainId: 31337 }, "chainId"],
      [{ ...json, chainId: "031337" }, "chainId"],
      [{ ...json, chainId: "-1" }, "chainId"],
      [{ ...json, chainId: (1n << 256n).toString() }, "chainId"],
      [{ ...json, registry: "0x1234" }, "registry"],
      [{ ...json, taskId: "1.5" }, "taskId"],
      [{ ...json, taskId: "" }, "taskId"],
      [{ ...json, dataOwner: badChecksum }, "dataOwner"],
      [withoutParty, "party"],
      [{ ...json, digests: [] }, "digests"],
      [{ ...json, digests: "0x" }, "digests"],
      [{ ...json, digests: [signed.digests[0], "0x1234", signed.digests[2]] }, "digests[1]"],
      [{ ...json, sealed: "0x123" }, "sealed"],
      [{ ...json, sealed: "0x1234" }, "sealed"],
      [{ ...json, sealed: "deadbeef" }, "sealed"],
      [{ ...json, signature: "0x" + "00".repeat(64) }, "signature"],
      [{ ...json, signature: 5 }, "signature"],
      [{ ...json, extra: true }, "extra"],
    ];
    for (const [input, field] of cases) {
      await expectCode(() => parseShareSubmission(input), "BAD_REQUEST", field);
    }
  });

  it("normalises addresses to checksum case and hex to lower case", () => {
    const json = JSON.parse(JSON.stringify(signed)) as ShareSubmission;
    const parsed = parseShareSubmission({
      ...json,
      registry: json.registry.toLowerCase(),
      digests: json.digests.map((d) => d.toUpperCase().replace("0X", "0x")),
    });
    expect(parsed.registry).to.equal(registry);
    expect(parsed.digests).to.deep.equal(signed.digests);
    verifyShareSubmission(parsed);
  });
});
