import { expect } from "chai";
import { network } from "hardhat";
import {
  concat,
  getAddress,
  getBytes,
  hexlify,
  keccak256,
  recoverAddress,
  toBeHex,
  toUtf8Bytes,
  verifyTypedData,
  zeroPadValue,
} from "ethers";
import type { TypedDataDomain } from "ethers";
import {
  ATTESTATION_TYPES,
  TaskState,
  attestationDomain,
  attestationFor,
  attestationHash,
  encryptionKeyFor,
  highSTwin,
  recoverWithoutLowS,
  signAttestation,
} from "./consort-registry-helpers.ts";
import type { ConsortRegistry, TaskParams } from "./consort-registry-helpers.ts";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const MAX_PARTIES = 64;
const MAX_DATA_OWNERS = 256;
/** EIP-7825 (in force since Osaka, Hardhat's default hardfork) caps one transaction's gas at 2^24. */
const TRANSACTION_GAS_CAP = 2n ** 24n;
const INPUT_WINDOW = 1_000;
const RESULT_WINDOW = 2_000;
const RESULT = hexlify(toUtf8Bytes('{"sum":"1234567"}'));

function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no item at index ${index} (length ${items.length})`);
  return item;
}

/** A deterministic program of `length` bytes (the registry treats programs as opaque bytes). */
function programOf(length: number): string {
  return hexlify(Uint8Array.from({ length }, (_, i) => (i * 131 + 7) & 0xff));
}

/** A distinct, keyless address for list-size checks. */
function syntheticAddress(index: number): string {
  return getAddress(zeroPadValue(toBeHex(0xc0de0000 + index), 20));
}

function commitmentFor(label: string): string {
  return keccak256(toUtf8Bytes(`commitment:${label}`));
}

function endpointFor(index: number): string {
  return `http://127.0.0.1:${7001 + index}`;
}

async function deployFixture() {
  const signers = await ethers.getSigners();
  const registry = (await ethers.deployContract("ConsortRegistry")) as unknown as ConsortRegistry;
  const { chainId } = await ethers.provider.getNetwork();
  const domain = await attestationDomain(registry, chainId);
  return {
    registry,
    chainId,
    domain,
    requester: at(signers, 0),
    parties: signers.slice(1, 6),
    owners: signers.slice(6, 9),
    outsider: at(signers, 9),
    spare: signers.slice(10),
  };
}

async function registeredFixture() {
  const base = await deployFixture();
  for (const [i, party] of base.parties.entries()) {
    await base.registry.connect(party).registerParty(encryptionKeyFor(`party-${i}`), endpointFor(i));
  }
  return base;
}

/** Task 1: parties 0..2, threshold 1, three data owners, a 300-byte program; nothing committed yet. */
async function taskFixture() {
  const base = await registeredFixture();
  const now = await time.latest();
  const params: TaskParams = {
    program: programOf(300),
    parties: base.parties.slice(0, 3).map((p) => p.address),
    dataOwners: base.owners.map((o) => o.address),
    threshold: 1,
    inputDeadline: now + INPUT_WINDOW,
    resultDeadline: now + RESULT_WINDOW,
  };
  await base.registry.connect(base.requester).createTask(params);
  return { ...base, taskId: 1n, params, inputDeadline: now + INPUT_WINDOW, resultDeadline: now + RESULT_WINDOW };
}

/** Task 1 with every input committed: Computing. */
async function computingFixture() {
  const base = await taskFixture();
  const commitments = base.owners.map((_, i) => commitmentFor(`owner-${i}`));
  for (const [i, owner] of base.owners.entries()) {
    await base.registry.connect(owner).commitInput(base.taskId, at(commitments, i));
  }
  const attestation = await attestationFor(base.registry, base.taskId, RESULT);
  const taskParties = base.parties.slice(0, 3);
  const signatures = await Promise.all(taskParties.map((p) => signAttestation(p, base.domain, attestation)));
  return { ...base, commitments, attestation, taskParties, signatures };
}

/** The five parties plus 64 funded, registered wallets with deterministic keys, for the widest tasks. */
async function wideFixture() {
  const base = await registeredFixture();
  const wallets = Array.from(
    { length: MAX_PARTIES },
    (_, i) => new ethers.Wallet(keccak256(toUtf8Bytes(`wide-party-${i}`)), ethers.provider)
  );
  for (const [i, wallet] of wallets.entries()) {
    await networkHelpers.setBalance(wallet.address, 10n ** 18n);
    await base.registry.connect(wallet).registerParty(encryptionKeyFor(`wide-${i}`), endpointFor(i));
  }
  return { ...base, wallets };
}

describe("ConsortRegistry", function () {
  describe("deployment", function () {
    it("exposes the EIP-712 domain ConsortRegistry/1 of this chain and contract (EIP-5267)", async function () {
      const { registry, chainId } = await networkHelpers.loadFixture(deployFixture);
      const [fields, name, version, domainChainId, verifyingContract, salt, extensions] = await registry.eip712Domain();
      expect(fields).to.equal("0x0f"); // name, version, chainId, verifyingContract
      expect(name).to.equal("ConsortRegistry");
      expect(version).to.equal("1");
      expect(domainChainId).to.equal(chainId);
      expect(verifyingContract).to.equal(await registry.getAddress());
      expect(salt).to.equal(zeroPadValue("0x", 32));
      expect(extensions).to.deep.equal([]);
    });

    it("starts with no tasks", async function () {
      const { registry } = await networkHelpers.loadFixture(deployFixture);
      expect(await registry.taskCount()).to.equal(0n);
      expect(await registry.taskState(0n)).to.equal(TaskState.None);
      expect(await registry.taskState(1n)).to.equal(TaskState.None);
    });
  });

  describe("registerParty", function () {
    it("records the key, endpoint and timestamps and emits PartyRegistered", async function () {
      const { registry, parties } = await networkHelpers.loadFixture(deployFixture);
      const party = at(parties, 0);
      const key = encryptionKeyFor("fresh");
      const registeredAt = (await time.latest()) + 7;
      await time.setNextBlockTimestamp(registeredAt);
      await expect(registry.connect(party).registerParty(key, endpointFor(0)))
        .to.emit(registry, "PartyRegistered")
        .withArgs(party.address, key, endpointFor(0));
      const record = await registry.getParty(party.address);
      expect(record.encryptionKey).to.equal(key);
      expect(record.endpoint).to.equal(endpointFor(0));
      expect(record.registeredAt).to.equal(BigInt(registeredAt));
      expect(record.updatedAt).to.equal(BigInt(registeredAt));
      expect(await registry.isRegistered(party.address)).to.equal(true);
      expect(await registry.isRegistered(at(parties, 1).address)).to.equal(false);
    });

    it("accepts both compressed-point prefixes and endpoints of 1 and 256 bytes", async function () {
      const { registry, parties } = await networkHelpers.loadFixture(deployFixture);
      const key02 = concat(["0x02", keccak256("0x01")]);
      const key03 = concat(["0x03", keccak256("0x02")]);
      await expect(registry.connect(at(parties, 0)).registerParty(key02, "h")).to.emit(registry, "PartyRegistered");
      const longest = "http://" + "a".repeat(256 - 7);
      expect(toUtf8Bytes(longest).length).to.equal(256);
      await expect(registry.connect(at(parties, 1)).registerParty(key03, longest))
        .to.emit(registry, "PartyRegistered")
        .withArgs(at(parties, 1).address, key03, longest);
      expect((await registry.getParty(at(parties, 1).address)).endpoint).to.equal(longest);
    });

    it("reverts ConsortPartyAlreadyRegistered on a second registration", async function () {
      const { registry, parties } = await networkHelpers.loadFixture(registeredFixture);
      const party = at(parties, 0);
      await expect(registry.connect(party).registerParty(encryptionKeyFor("again"), "http://x"))
        .to.be.revertedWithCustomError(registry, "ConsortPartyAlreadyRegistered")
        .withArgs(party.address);
    });

    const badKeys: Array<[string, string]> = [
      ["empty", "0x"],
      ["32 bytes", keccak256("0x01")],
      ["34 bytes", concat(["0x02", keccak256("0x01"), "0x00"])],
      ["uncompressed prefix 0x04", concat(["0x04", keccak256("0x01")])],
      ["prefix 0x00", concat(["0x00", keccak256("0x01")])],
      ["a 65-byte uncompressed key", concat(["0x04", keccak256("0x01"), keccak256("0x02")])],
    ];
    for (const [label, key] of badKeys) {
      it(`reverts ConsortInvalidEncryptionKey for a key that is ${label}`, async function () {
        const { registry, parties } = await networkHelpers.loadFixture(deployFixture);
        await expect(registry.connect(at(parties, 0)).registerParty(key, "http://x"))
          .to.be.revertedWithCustomError(registry, "ConsortInvalidEncryptionKey")
          .withArgs(key);
      });
    }

    const badEndpoints: Array<[string, string]> = [
      ["empty", ""],
      ["257 bytes", "h".repeat(257)],
      ["258 bytes in 86 characters", "€".repeat(86)],
    ];
    for (const [label, endpoint] of badEndpoints) {
      it(`reverts ConsortInvalidEndpoint for an endpoint that is ${label}`, async function () {
        const { registry, parties } = await networkHelpers.loadFixture(deployFixture);
        await expect(registry.connect(at(parties, 0)).registerParty(encryptionKeyFor("k"), endpoint))
          .to.be.revertedWithCustomError(registry, "ConsortInvalidEndpoint")
          .withArgs(endpoint);
      });
    }
  });

  describe("updateParty", function () {
    it("replaces key and endpoint, keeps registeredAt, moves updatedAt and emits PartyUpdated", async function () {
      const { registry, parties } = await networkHelpers.loadFixture(registeredFixture);
      const party = at(parties, 2);
      const before = await registry.getParty(party.address);
      const key = encryptionKeyFor("rotated");
      const updatedAt = (await time.latest()) + 100;
      await time.setNextBlockTimestamp(updatedAt);
      await expect(registry.connect(party).updateParty(key, "https://node.example:8443"))
        .to.emit(registry, "PartyUpdated")
        .withArgs(party.address, key, "https://node.example:8443")
        .and.not.to.emit(registry, "PartyRegistered");
      const after = await registry.getParty(party.address);
      expect(after.encryptionKey).to.equal(key);
      expect(after.endpoint).to.equal("https://node.example:8443");
      expect(after.registeredAt).to.equal(before.registeredAt);
      expect(after.updatedAt).to.equal(BigInt(updatedAt));
    });

    it("leaves existing tasks' party lists as they were", async function () {
      const { registry, parties, taskId, params } = await networkHelpers.loadFixture(taskFixture);
      await registry.connect(at(parties, 0)).updateParty(encryptionKeyFor("rotated"), "http://moved");
      expect((await registry.getTask(taskId)).parties).to.deep.equal(params.parties);
    });

    it("reverts ConsortUnknownParty for an unregistered sender", async function () {
      const { registry, outsider } = await networkHelpers.loadFixture(registeredFixture);
      await expect(registry.connect(outsider).updateParty(encryptionKeyFor("k"), "http://x"))
        .to.be.revertedWithCustomError(registry, "ConsortUnknownParty")
        .withArgs(outsider.address);
    });

    it("reverts ConsortInvalidEncryptionKey and ConsortInvalidEndpoint like registerParty", async function () {
      const { registry, parties } = await networkHelpers.loadFixture(registeredFixture);
      const party = at(parties, 0);
      const badKey = concat(["0x05", keccak256("0x01")]);
      await expect(registry.connect(party).updateParty(badKey, "http://x"))
        .to.be.revertedWithCustomError(registry, "ConsortInvalidEncryptionKey")
        .withArgs(badKey);
      await expect(registry.connect(party).updateParty(encryptionKeyFor("k"), ""))
        .to.be.revertedWithCustomError(registry, "ConsortInvalidEndpoint")
        .withArgs("");
      await expect(registry.connect(party).updateParty(encryptionKeyFor("k"), "x".repeat(257)))
        .to.be.revertedWithCustomError(registry, "ConsortInvalidEndpoint")
        .withArgs("x".repeat(257));
    });
  });

  describe("getParty", function () {
    it("reverts ConsortUnknownParty for an unregistered account", async function () {
      const { registry, outsider } = await networkHelpers.loadFixture(registeredFixture);
      await expect(registry.getParty(outsider.address))
        .to.be.revertedWithCustomError(registry, "ConsortUnknownParty")
        .withArgs(outsider.address);
    });
  });

  describe("createTask", function () {
    async function baseParams(fixture: Awaited<ReturnType<typeof registeredFixture>>): Promise<TaskParams> {
      const now = await time.latest();
      return {
        program: programOf(300),
        parties: fixture.parties.slice(0, 3).map((p) => p.address),
        dataOwners: fixture.owners.map((o) => o.address),
        threshold: 1,
        inputDeadline: now + INPUT_WINDOW,
        resultDeadline: now + RESULT_WINDOW,
      };
    }

    it("stores the task, returns id 1 and emits TaskCreated with the program bytes", async function () {
      const fixture = await networkHelpers.loadFixture(registeredFixture);
      const { registry, requester } = fixture;
      const params = await baseParams(fixture);
      expect(await registry.connect(requester).createTask.staticCall(params)).to.equal(1n);
      const tx = registry.connect(requester).createTask(params);
      await expect(tx)
        .to.emit(registry, "TaskCreated")
        .withArgs(
          1n,
          requester.address,
          keccak256(params.program),
          params.parties,
          params.dataOwners,
          1n,
          params.inputDeadline,
          params.resultDeadline,
          params.program
        );
      const receipt = await (await tx).wait();
      const task = await registry.getTask(1n);
      expect(task.programHash).to.equal(keccak256(params.program));
      expect(task.requester).to.equal(requester.address);
      expect(task.threshold).to.equal(1n);
      expect(task.createdAtBlock).to.equal(BigInt(receipt?.blockNumber ?? -1));
      expect(task.inputDeadline).to.equal(BigInt(params.inputDeadline));
      expect(task.resultDeadline).to.equal(BigInt(params.resultDeadline));
      expect(task.inputsCommitted).to.equal(0n);
      expect(task.finalizedAtBlock).to.equal(0n);
      expect(task.expiredAtBlock).to.equal(0n);
      expect(task.resultHash).to.equal(zeroPadValue("0x", 32));
      expect(task.parties).to.deep.equal(params.parties);
      expect(task.dataOwners).to.deep.equal(params.dataOwners);
      expect(await registry.taskCount()).to.equal(1n);
      expect(await registry.taskState(1n)).to.equal(TaskState.AwaitingInputs);
      expect(await registry.inputCommitments(1n)).to.deep.equal(params.dataOwners.map(() => zeroPadValue("0x", 32)));
    });

    it("numbers tasks 1, 2, 3 and lets anyone be the requester", async function () {
      const fixture = await networkHelpers.loadFixture(registeredFixture);
      const { registry, outsider, parties } = fixture;
      const params = await baseParams(fixture);
      for (const [expectedId, sender] of [
        [1n, outsider],
        [2n, at(parties, 0)],
        [3n, outsider],
      ] as const) {
        await expect(registry.connect(sender).createTask(params))
          .to.emit(registry, "TaskCreated")
          .withArgs(
            expectedId,
            sender.address,
            keccak256(params.program),
            params.parties,
            params.dataOwners,
            1n,
            params.inputDeadline,
            params.resultDeadline,
            params.program
          );
        expect((await registry.getTask(expectedId)).requester).to.equal(sender.address);
      }
      expect(await registry.taskCount()).to.equal(3n);
    });

    it("accepts the thresholds allowed by 2t + 1 <= n and a one-byte program", async function () {
      const fixture = await networkHelpers.loadFixture(registeredFixture);
      const { registry, parties } = fixture;
      const base = await baseParams(fixture);
      const cases: Array<[number, number]> = [
        [3, 1],
        [4, 1],
        [5, 1],
        [5, 2],
      ];
      for (const [n, t] of cases) {
        const params = { ...base, program: "0x00", parties: parties.slice(0, n).map((p) => p.address), threshold: t };
        await expect(registry.createTask(params)).to.emit(registry, "TaskCreated");
      }
    });

    it("accepts data owners that are also parties, or the requester", async function () {
      const fixture = await networkHelpers.loadFixture(registeredFixture);
      const { registry, requester, parties } = fixture;
      const params = { ...(await baseParams(fixture)), dataOwners: [at(parties, 0).address, requester.address] };
      await expect(registry.connect(requester).createTask(params)).to.emit(registry, "TaskCreated");
    });

    it("reverts ConsortEmptyProgram", async function () {
      const fixture = await networkHelpers.loadFixture(registeredFixture);
      const params = { ...(await baseParams(fixture)), program: "0x" };
      await expect(fixture.registry.createTask(params)).to.be.revertedWithCustomError(
        fixture.registry,
        "ConsortEmptyProgram"
      );
    });

    it("reverts ConsortInvalidPartyCount for 0 and for 65 parties", async function () {
      const fixture = await networkHelpers.loadFixture(registeredFixture);
      const { registry } = fixture;
      const base = await baseParams(fixture);
      await expect(registry.createTask({ ...base, parties: [] }))
        .to.be.revertedWithCustomError(registry, "ConsortInvalidPartyCount")
        .withArgs(0n, BigInt(MAX_PARTIES));
      const tooMany = Array.from({ length: MAX_PARTIES + 1 }, (_, i) => syntheticAddress(i));
      await expect(registry.createTask({ ...base, parties: tooMany, threshold: 1 }))
        .to.be.revertedWithCustomError(registry, "ConsortInvalidPartyCount")
        .withArgs(BigInt(MAX_PARTIES + 1), BigInt(MAX_PARTIES));
    });

    it("reverts ConsortUnknownParty naming the first unregistered party", async function () {
      const fixture = await networkHelpers.loadFixture(registeredFixture);
      const { registry, parties, outsider } = fixture;
      const base = await baseParams(fixture);
      const list = [at(parties, 0).address, at(parties, 1).address, outsider.address];
      await expect(registry.createTask({ ...base, parties: list }))
        .to.be.revertedWithCustomError(registry, "ConsortUnknownParty")
        .withArgs(outsider.address);
    });

    it("reverts ConsortDuplicateParty", async function () {
      const fixture = await networkHelpers.loadFixture(registeredFixture);
      const { registry, parties } = fixture;
      const base = await baseParams(fixture);
      const list = [at(parties, 0).address, at(parties, 1).address, at(parties, 0).address];
      await expect(registry.createTask({ ...base, parties: list }))
        .to.be.revertedWithCustomError(registry, "ConsortDuplicateParty")
        .withArgs(at(parties, 0).address);
    });

    const badThresholds: Array<[number, number]> = [
      [3, 0],
      [3, 2],
      [4, 2],
      [5, 3],
      [1, 1],
      [2, 1],
      [5, 255],
    ];
    for (const [n, t] of badThresholds) {
      it(`reverts ConsortInvalidThreshold for t = ${t} with ${n} parties`, async function () {
        const fixture = await networkHelpers.loadFixture(registeredFixture);
        const { registry, parties } = fixture;
        const params = {
          ...(await baseParams(fixture)),
          parties: parties.slice(0, n).map((p) => p.address),
          threshold: t,
        };
        await expect(registry.createTask(params))
          .to.be.revertedWithCustomError(registry, "ConsortInvalidThreshold")
          .withArgs(BigInt(t), BigInt(n));
      });
    }

    it("reverts ConsortInvalidDataOwnerCount for 0 and for 257 data owners", async function () {
      const fixture = await networkHelpers.loadFixture(registeredFixture);
      const { registry } = fixture;
      const base = await baseParams(fixture);
      await expect(registry.createTask({ ...base, dataOwners: [] }))
        .to.be.revertedWithCustomError(registry, "ConsortInvalidDataOwnerCount")
        .withArgs(0n, BigInt(MAX_DATA_OWNERS));
      const tooMany = Array.from({ length: MAX_DATA_OWNERS + 1 }, (_, i) => syntheticAddress(i));
      await expect(registry.createTask({ ...base, dataOwners: tooMany }))
        .to.be.revertedWithCustomError(registry, "ConsortInvalidDataOwnerCount")
        .withArgs(BigInt(MAX_DATA_OWNERS + 1), BigInt(MAX_DATA_OWNERS));
    });

    it("reverts ConsortDuplicateDataOwner", async function () {
      const fixture = await networkHelpers.loadFixture(registeredFixture);
      const { registry, owners } = fixture;
      const list = [at(owners, 0).address, at(owners, 1).address, at(owners, 2).address, at(owners, 1).address];
      await expect(registry.createTask({ ...(await baseParams(fixture)), dataOwners: list }))
        .to.be.revertedWithCustomError(registry, "ConsortDuplicateDataOwner")
        .withArgs(at(owners, 1).address);
    });

    it("reverts ConsortInvalidDeadlines unless now < inputDeadline < resultDeadline", async function () {
      const fixture = await networkHelpers.loadFixture(registeredFixture);
      const { registry } = fixture;
      const base = await baseParams(fixture);
      const now = (await time.latest()) + 10;
      const cases: Array<[number, number]> = [
        [now, now + 100], // input deadline is the current second
        [now - 1, now + 100], // input deadline in the past
        [now + 50, now + 50], // no time to compute
        [now + 50, now + 49], // result deadline before input deadline
      ];
      for (const [inputDeadline, resultDeadline] of cases) {
        await time.setNextBlockTimestamp(now);
        await expect(registry.createTask({ ...base, inputDeadline, resultDeadline }))
          .to.be.revertedWithCustomError(registry, "ConsortInvalidDeadlines")
          .withArgs(BigInt(now), BigInt(inputDeadline), BigInt(resultDeadline));
      }
      await time.setNextBlockTimestamp(now);
      await expect(registry.createTask({ ...base, inputDeadline: now + 1, resultDeadline: now + 2 })).to.emit(
        registry,
        "TaskCreated"
      );
    });

    it("takes the maximum of 64 parties (t = 31), refuses t = 32, and finalizes with the last 32 parties' signatures", async function () {
      const fixture = await networkHelpers.loadFixture(wideFixture);
      const { registry, owners, domain, wallets } = fixture;
      const base = await baseParams(fixture);
      const params = { ...base, parties: wallets.map((w) => w.address), dataOwners: [at(owners, 0).address] };
      await expect(registry.createTask({ ...params, threshold: 32 }))
        .to.be.revertedWithCustomError(registry, "ConsortInvalidThreshold")
        .withArgs(32n, 64n);
      await registry.createTask({ ...params, threshold: 31 });
      await registry.connect(at(owners, 0)).commitInput(1n, commitmentFor("wide"));
      const attestation = await attestationFor(registry, 1n, RESULT);
      // The last 32 parties exercise the high bits of the signer bitmap (party index 63 is bit 63).
      const signers = wallets.slice(32).reverse();
      const signatures = await Promise.all(signers.map((w) => w.signTypedData(domain, ATTESTATION_TYPES, attestation)));
      await expect(registry.finalizeTask(1n, RESULT, signatures.slice(1)))
        .to.be.revertedWithCustomError(registry, "ConsortQuorumNotReached")
        .withArgs(1n, 31n, 32n);
      await expect(registry.finalizeTask(1n, RESULT, [...signatures.slice(1), at(signatures, 1)]))
        .to.be.revertedWithCustomError(registry, "ConsortDuplicateSigner")
        .withArgs(1n, at(signers, 1).address);
      await expect(registry.finalizeTask(1n, RESULT, signatures))
        .to.emit(registry, "TaskFinalized")
        .withArgs(
          1n,
          keccak256(RESULT),
          RESULT,
          signers.map((w) => w.address),
          signatures,
          fixture.requester.address
        );
    });

    it("fits the largest task (64 parties, 256 data owners, 24 KB program) in one transaction under the EIP-7825 cap", async function () {
      const fixture = await networkHelpers.loadFixture(wideFixture);
      const { registry, requester, wallets } = fixture;
      const params: TaskParams = {
        ...(await baseParams(fixture)),
        program: programOf(24_000),
        parties: wallets.map((w) => w.address),
        dataOwners: Array.from({ length: MAX_DATA_OWNERS }, (_, i) => syntheticAddress(i)),
        threshold: 31,
      };
      const receipt = await (await registry.connect(requester).createTask(params)).wait();
      expect(receipt?.gasUsed).to.be.a("bigint").and.to.be.lessThan(TRANSACTION_GAS_CAP);
      const task = await registry.getTask(1n);
      expect(task.dataOwners).to.deep.equal(params.dataOwners);
      expect(task.parties).to.deep.equal(params.parties);
      expect(await registry.inputCommitments(1n)).to.have.length(MAX_DATA_OWNERS);
    });
  });

  describe("taskState", function () {
    it("is AwaitingInputs up to and including the input deadline second, then Expired", async function () {
      const { registry, taskId, inputDeadline } = await networkHelpers.loadFixture(taskFixture);
      expect(await registry.taskState(taskId)).to.equal(TaskState.AwaitingInputs);
      await time.increaseTo(inputDeadline - 1);
      expect(await registry.taskState(taskId)).to.equal(TaskState.AwaitingInputs);
      await time.increaseTo(inputDeadline);
      expect(await registry.taskState(taskId)).to.equal(TaskState.AwaitingInputs);
      await time.increaseTo(inputDeadline + 1);
      expect(await registry.taskState(taskId)).to.equal(TaskState.Expired);
    });

    it("stays Expired with some inputs missing even before the result deadline", async function () {
      const { registry, taskId, owners, inputDeadline, resultDeadline } = await networkHelpers.loadFixture(taskFixture);
      await registry.connect(at(owners, 0)).commitInput(taskId, commitmentFor("a"));
      await registry.connect(at(owners, 1)).commitInput(taskId, commitmentFor("b"));
      await time.increaseTo(inputDeadline + 1);
      expect(await registry.taskState(taskId)).to.equal(TaskState.Expired);
      await time.increaseTo(resultDeadline - 1);
      expect(await registry.taskState(taskId)).to.equal(TaskState.Expired);
    });

    it("is Computing once every input is committed, up to and including the result deadline, then Expired", async function () {
      const { registry, taskId, inputDeadline, resultDeadline } = await networkHelpers.loadFixture(computingFixture);
      expect(await registry.taskState(taskId)).to.equal(TaskState.Computing);
      await time.increaseTo(inputDeadline + 1);
      expect(await registry.taskState(taskId)).to.equal(TaskState.Computing);
      await time.increaseTo(resultDeadline);
      expect(await registry.taskState(taskId)).to.equal(TaskState.Computing);
      await time.increaseTo(resultDeadline + 1);
      expect(await registry.taskState(taskId)).to.equal(TaskState.Expired);
    });

    it("is Finalized for good once a result is recorded, past both deadlines", async function () {
      const { registry, taskId, signatures, resultDeadline } = await networkHelpers.loadFixture(computingFixture);
      await registry.finalizeTask(taskId, RESULT, signatures);
      expect(await registry.taskState(taskId)).to.equal(TaskState.Finalized);
      await time.increaseTo(resultDeadline + 1_000_000);
      expect(await registry.taskState(taskId)).to.equal(TaskState.Finalized);
    });

    it("is None for id 0 and for ids past taskCount", async function () {
      const { registry } = await networkHelpers.loadFixture(taskFixture);
      expect(await registry.taskState(0n)).to.equal(TaskState.None);
      expect(await registry.taskState(2n)).to.equal(TaskState.None);
      expect(await registry.taskState(2n ** 256n - 1n)).to.equal(TaskState.None);
    });
  });

  describe("commitInput", function () {
    it("records commitments in data-owner order, counts them and emits InputCommitted", async function () {
      const { registry, taskId, owners } = await networkHelpers.loadFixture(taskFixture);
      const order = [2, 0, 1];
      const expected = owners.map(() => zeroPadValue("0x", 32));
      for (const [k, i] of order.entries()) {
        const owner = at(owners, i);
        const commitment = commitmentFor(`owner-${i}`);
        expected[i] = commitment;
        await expect(registry.connect(owner).commitInput(taskId, commitment))
          .to.emit(registry, "InputCommitted")
          .withArgs(taskId, owner.address, commitment, BigInt(k + 1));
        expect(await registry.inputCommitments(taskId)).to.deep.equal(expected);
        expect((await registry.getTask(taskId)).inputsCommitted).to.equal(BigInt(k + 1));
        expect(await registry.taskState(taskId)).to.equal(
          k + 1 < owners.length ? TaskState.AwaitingInputs : TaskState.Computing
        );
      }
    });

    it("accepts a commit in the input deadline second itself", async function () {
      const { registry, taskId, owners, inputDeadline } = await networkHelpers.loadFixture(taskFixture);
      await time.setNextBlockTimestamp(inputDeadline);
      await expect(registry.connect(at(owners, 0)).commitInput(taskId, commitmentFor("late")))
        .to.emit(registry, "InputCommitted")
        .withArgs(taskId, at(owners, 0).address, commitmentFor("late"), 1n);
    });

    it("reverts ConsortInvalidTaskState(Expired) one second after the input deadline", async function () {
      const { registry, taskId, owners, inputDeadline } = await networkHelpers.loadFixture(taskFixture);
      await time.setNextBlockTimestamp(inputDeadline + 1);
      await expect(registry.connect(at(owners, 0)).commitInput(taskId, commitmentFor("too late")))
        .to.be.revertedWithCustomError(registry, "ConsortInvalidTaskState")
        .withArgs(taskId, TaskState.Expired, TaskState.AwaitingInputs);
    });

    it("reverts ConsortUnknownTask before any other check", async function () {
      const { registry, outsider } = await networkHelpers.loadFixture(taskFixture);
      for (const id of [0n, 2n]) {
        await expect(registry.connect(outsider).commitInput(id, zeroPadValue("0x", 32)))
          .to.be.revertedWithCustomError(registry, "ConsortUnknownTask")
          .withArgs(id);
      }
    });

    it("reverts ConsortInvalidTaskState(Computing) once every input is in", async function () {
      const { registry, taskId, owners } = await networkHelpers.loadFixture(computingFixture);
      await expect(registry.connect(at(owners, 0)).commitInput(taskId, commitmentFor("again")))
        .to.be.revertedWithCustomError(registry, "ConsortInvalidTaskState")
        .withArgs(taskId, TaskState.Computing, TaskState.AwaitingInputs);
    });

    it("reverts ConsortInvalidTaskState(Finalized) after finalization, for owners and outsiders alike", async function () {
      const { registry, taskId, owners, outsider, signatures } = await networkHelpers.loadFixture(computingFixture);
      await registry.finalizeTask(taskId, RESULT, signatures);
      for (const sender of [at(owners, 0), outsider]) {
        await expect(registry.connect(sender).commitInput(taskId, commitmentFor("x")))
          .to.be.revertedWithCustomError(registry, "ConsortInvalidTaskState")
          .withArgs(taskId, TaskState.Finalized, TaskState.AwaitingInputs);
      }
    });

    it("reverts ConsortNotADataOwner for parties, the requester and outsiders", async function () {
      const { registry, taskId, parties, requester, outsider } = await networkHelpers.loadFixture(taskFixture);
      for (const sender of [at(parties, 0), requester, outsider]) {
        await expect(registry.connect(sender).commitInput(taskId, commitmentFor("x")))
          .to.be.revertedWithCustomError(registry, "ConsortNotADataOwner")
          .withArgs(taskId, sender.address);
      }
    });

    it("reverts ConsortZeroCommitment", async function () {
      const { registry, taskId, owners } = await networkHelpers.loadFixture(taskFixture);
      await expect(registry.connect(at(owners, 1)).commitInput(taskId, zeroPadValue("0x", 32)))
        .to.be.revertedWithCustomError(registry, "ConsortZeroCommitment")
        .withArgs(taskId, at(owners, 1).address);
    });

    it("reverts ConsortInputAlreadyCommitted with the stored commitment", async function () {
      const { registry, taskId, owners } = await networkHelpers.loadFixture(taskFixture);
      const owner = at(owners, 1);
      await registry.connect(owner).commitInput(taskId, commitmentFor("first"));
      await expect(registry.connect(owner).commitInput(taskId, commitmentFor("second")))
        .to.be.revertedWithCustomError(registry, "ConsortInputAlreadyCommitted")
        .withArgs(taskId, owner.address, commitmentFor("first"));
      expect(await registry.inputCommitments(taskId)).to.deep.equal([
        zeroPadValue("0x", 32),
        commitmentFor("first"),
        zeroPadValue("0x", 32),
      ]);
    });

    it("keeps tasks apart: an owner of one task is not an owner of another", async function () {
      const fixture = await networkHelpers.loadFixture(taskFixture);
      const { registry, requester, owners, outsider, params } = fixture;
      await registry.connect(requester).createTask({ ...params, dataOwners: [outsider.address] });
      await expect(registry.connect(at(owners, 0)).commitInput(2n, commitmentFor("x")))
        .to.be.revertedWithCustomError(registry, "ConsortNotADataOwner")
        .withArgs(2n, at(owners, 0).address);
      await expect(registry.connect(outsider).commitInput(2n, commitmentFor("x")))
        .to.emit(registry, "InputCommitted")
        .withArgs(2n, outsider.address, commitmentFor("x"), 1n);
      expect(await registry.inputCommitments(1n)).to.deep.equal(params.dataOwners.map(() => zeroPadValue("0x", 32)));
    });
  });

  describe("attestationDigest", function () {
    it("equals the EIP-712 hash ethers computes, and ethers' signTypedData signs it", async function () {
      const { registry, taskId, domain, attestation, taskParties, signatures } = await networkHelpers.loadFixture(
        computingFixture
      );
      const digest = await registry.attestationDigest(taskId, attestation.resultHash);
      expect(digest).to.equal(attestationHash(domain, attestation));
      for (const [i, party] of taskParties.entries()) {
        expect(recoverAddress(digest, at(signatures, i))).to.equal(party.address);
        expect(verifyTypedData(domain, ATTESTATION_TYPES, attestation, at(signatures, i))).to.equal(party.address);
      }
    });

    it("commits to the task id, program, every input commitment and the result", async function () {
      const fixture = await networkHelpers.loadFixture(taskFixture);
      const { registry, domain, owners, requester, params } = fixture;
      const resultHash = keccak256(RESULT);
      const digests = new Set<string>();
      const record = async (taskId: bigint) => {
        const digest = await registry.attestationDigest(taskId, resultHash);
        expect(digest).to.equal(attestationHash(domain, await attestationFor(registry, taskId, RESULT)));
        digests.add(digest);
      };
      await record(1n); // all commitments zero
      await registry.connect(at(owners, 1)).commitInput(1n, commitmentFor("b"));
      await record(1n);
      await registry.connect(requester).createTask({ ...params, program: programOf(301) });
      await record(2n); // same owners, other program
      await registry.connect(requester).createTask(params);
      await record(3n); // same program and commitments as task 2 had, other id
      expect(digests.size).to.equal(4);
      expect(await registry.attestationDigest(1n, keccak256("0x00"))).to.not.equal(
        await registry.attestationDigest(1n, resultHash)
      );
    });

    it("changes with the chain's domain: a signature for another verifying contract does not recover the party", async function () {
      const { registry, taskId, domain, attestation, taskParties } = await networkHelpers.loadFixture(computingFixture);
      const foreign: TypedDataDomain = { ...domain, verifyingContract: syntheticAddress(0) };
      const signature = await signAttestation(at(taskParties, 0), foreign, attestation);
      const digest = await registry.attestationDigest(taskId, attestation.resultHash);
      expect(recoverAddress(digest, signature)).to.not.equal(at(taskParties, 0).address);
    });

    it("reverts ConsortUnknownTask", async function () {
      const { registry } = await networkHelpers.loadFixture(taskFixture);
      for (const id of [0n, 2n]) {
        await expect(registry.attestationDigest(id, keccak256(RESULT)))
          .to.be.revertedWithCustomError(registry, "ConsortUnknownTask")
          .withArgs(id);
      }
    });
  });

  describe("finalizeTask", function () {
    it("records a quorum-signed result submitted by anyone and emits TaskFinalized with signers in signature order", async function () {
      const { registry, taskId, outsider, taskParties, signatures } = await networkHelpers.loadFixture(
        computingFixture
      );
      const order = [2, 0];
      const chosen = order.map((i) => at(signatures, i));
      const tx = registry.connect(outsider).finalizeTask(taskId, RESULT, chosen);
      await expect(tx)
        .to.emit(registry, "TaskFinalized")
        .withArgs(
          taskId,
          keccak256(RESULT),
          RESULT,
          order.map((i) => at(taskParties, i).address),
          chosen,
          outsider.address
        );
      const receipt = await (await tx).wait();
      const task = await registry.getTask(taskId);
      expect(task.resultHash).to.equal(keccak256(RESULT));
      expect(task.finalizedAtBlock).to.equal(BigInt(receipt?.blockNumber ?? -1));
      expect(task.expiredAtBlock).to.equal(0n);
      expect(await registry.taskState(taskId)).to.equal(TaskState.Finalized);
    });

    it("accepts every party's signature, beyond the quorum", async function () {
      const { registry, taskId, taskParties, signatures, requester } = await networkHelpers.loadFixture(
        computingFixture
      );
      await expect(registry.finalizeTask(taskId, RESULT, signatures))
        .to.emit(registry, "TaskFinalized")
        .withArgs(
          taskId,
          keccak256(RESULT),
          RESULT,
          taskParties.map((p) => p.address),
          signatures,
          requester.address
        );
    });

    it("accepts signatures from a party that rotated its encryption key", async function () {
      const { registry, taskId, taskParties, signatures } = await networkHelpers.loadFixture(computingFixture);
      await registry.connect(at(taskParties, 0)).updateParty(encryptionKeyFor("rotated"), "http://moved");
      await expect(registry.finalizeTask(taskId, RESULT, signatures.slice(0, 2))).to.emit(registry, "TaskFinalized");
    });

    it("accepts a result in the result deadline second itself and refuses it one second later", async function () {
      const { registry, taskId, signatures, resultDeadline } = await networkHelpers.loadFixture(computingFixture);
      const snapshot = await networkHelpers.takeSnapshot();
      await time.setNextBlockTimestamp(resultDeadline);
      await expect(registry.finalizeTask(taskId, RESULT, signatures)).to.emit(registry, "TaskFinalized");
      await snapshot.restore();
      await time.setNextBlockTimestamp(resultDeadline + 1);
      await expect(registry.finalizeTask(taskId, RESULT, signatures))
        .to.be.revertedWithCustomError(registry, "ConsortInvalidTaskState")
        .withArgs(taskId, TaskState.Expired, TaskState.Computing);
    });

    it("reverts ConsortUnknownTask", async function () {
      const { registry, signatures } = await networkHelpers.loadFixture(computingFixture);
      for (const id of [0n, 2n]) {
        await expect(registry.finalizeTask(id, RESULT, signatures))
          .to.be.revertedWithCustomError(registry, "ConsortUnknownTask")
          .withArgs(id);
      }
    });

    it("reverts ConsortInvalidTaskState(AwaitingInputs) while inputs are missing", async function () {
      const { registry, taskId, domain, parties } = await networkHelpers.loadFixture(taskFixture);
      const attestation = await attestationFor(registry, taskId, RESULT);
      const signatures = await Promise.all(parties.slice(0, 3).map((p) => signAttestation(p, domain, attestation)));
      await expect(registry.finalizeTask(taskId, RESULT, signatures))
        .to.be.revertedWithCustomError(registry, "ConsortInvalidTaskState")
        .withArgs(taskId, TaskState.AwaitingInputs, TaskState.Computing);
    });

    it("reverts ConsortInvalidTaskState(Finalized) on a second result", async function () {
      const { registry, taskId, signatures } = await networkHelpers.loadFixture(computingFixture);
      await registry.finalizeTask(taskId, RESULT, signatures);
      await expect(registry.finalizeTask(taskId, RESULT, signatures))
        .to.be.revertedWithCustomError(registry, "ConsortInvalidTaskState")
        .withArgs(taskId, TaskState.Finalized, TaskState.Computing);
    });

    it("reverts ConsortInvalidTaskState(Expired) once expiry is recorded", async function () {
      const { registry, taskId, signatures, resultDeadline } = await networkHelpers.loadFixture(computingFixture);
      await time.increaseTo(resultDeadline + 1);
      await registry.expireTask(taskId);
      await expect(registry.finalizeTask(taskId, RESULT, signatures))
        .to.be.revertedWithCustomError(registry, "ConsortInvalidTaskState")
        .withArgs(taskId, TaskState.Expired, TaskState.Computing);
    });

    it("reverts ConsortEmptyResult", async function () {
      const { registry, taskId, signatures } = await networkHelpers.loadFixture(computingFixture);
      await expect(registry.finalizeTask(taskId, "0x", signatures))
        .to.be.revertedWithCustomError(registry, "ConsortEmptyResult")
        .withArgs(taskId);
    });

    it("reverts ConsortInvalidSignature with the index of a malformed signature", async function () {
      const { registry, taskId, signatures, attestation, taskParties } = await networkHelpers.loadFixture(
        computingFixture
      );
      const good = at(signatures, 0);
      const twin = highSTwin(at(signatures, 1));
      // The malleated twin is a valid secp256k1 signature of the same party: only the EIP-2 low-s rule refuses it.
      const digest = await registry.attestationDigest(taskId, attestation.resultHash);
      expect(recoverWithoutLowS(digest, twin)).to.equal(at(taskParties, 1).address);
      const badV = hexlify(concat([getBytes(good).slice(0, 64), "0x1d"]));
      const zeroR = hexlify(concat([zeroPadValue("0x", 32), getBytes(good).slice(32)]));
      const malformed: Array<[string, string]> = [
        ["empty", "0x"],
        ["64 bytes (ERC-2098 compact form)", hexlify(getBytes(good).slice(0, 64))],
        ["66 bytes", concat([good, "0x00"])],
        ["s above n / 2", twin],
        ["v = 29", badV],
        ["r = 0", zeroR],
      ];
      for (const [label, bad] of malformed) {
        for (const index of [0, 2]) {
          const list = index === 0 ? [bad, ...signatures] : [at(signatures, 0), at(signatures, 2), bad];
          await expect(registry.finalizeTask(taskId, RESULT, list), label)
            .to.be.revertedWithCustomError(registry, "ConsortInvalidSignature")
            .withArgs(taskId, BigInt(index));
        }
      }
    });

    it("reverts ConsortSignerNotAParty for an outsider's, a non-member party's or another result's signature", async function () {
      const { registry, taskId, domain, outsider, parties, attestation, signatures } = await networkHelpers.loadFixture(
        computingFixture
      );
      const outsiderSignature = await signAttestation(outsider, domain, attestation);
      const nonMemberSignature = await signAttestation(at(parties, 4), domain, attestation);
      await expect(registry.finalizeTask(taskId, RESULT, [at(signatures, 0), outsiderSignature]))
        .to.be.revertedWithCustomError(registry, "ConsortSignerNotAParty")
        .withArgs(taskId, outsider.address);
      await expect(registry.finalizeTask(taskId, RESULT, [nonMemberSignature, ...signatures]))
        .to.be.revertedWithCustomError(registry, "ConsortSignerNotAParty")
        .withArgs(taskId, at(parties, 4).address);
      // Signatures over another result recover to unrelated addresses: the result is bound by the digest.
      const other = hexlify(toUtf8Bytes('{"sum":"7"}'));
      const digest = await registry.attestationDigest(taskId, keccak256(other));
      await expect(registry.finalizeTask(taskId, other, signatures))
        .to.be.revertedWithCustomError(registry, "ConsortSignerNotAParty")
        .withArgs(taskId, recoverAddress(digest, at(signatures, 0)));
    });

    it("reverts ConsortDuplicateSigner", async function () {
      const { registry, taskId, signatures, taskParties } = await networkHelpers.loadFixture(computingFixture);
      await expect(registry.finalizeTask(taskId, RESULT, [at(signatures, 1), at(signatures, 0), at(signatures, 1)]))
        .to.be.revertedWithCustomError(registry, "ConsortDuplicateSigner")
        .withArgs(taskId, at(taskParties, 1).address);
    });

    it("reverts ConsortQuorumNotReached below threshold + 1 signatures", async function () {
      const { registry, taskId, signatures } = await networkHelpers.loadFixture(computingFixture);
      await expect(registry.finalizeTask(taskId, RESULT, []))
        .to.be.revertedWithCustomError(registry, "ConsortQuorumNotReached")
        .withArgs(taskId, 0n, 2n);
      await expect(registry.finalizeTask(taskId, RESULT, [at(signatures, 2)]))
        .to.be.revertedWithCustomError(registry, "ConsortQuorumNotReached")
        .withArgs(taskId, 1n, 2n);
    });
  });

  describe("expireTask", function () {
    it("records expiry after a missed input deadline and emits TaskExpired with the commit count", async function () {
      const { registry, taskId, owners, outsider, inputDeadline } = await networkHelpers.loadFixture(taskFixture);
      await registry.connect(at(owners, 0)).commitInput(taskId, commitmentFor("a"));
      await time.increaseTo(inputDeadline + 1);
      const tx = registry.connect(outsider).expireTask(taskId);
      await expect(tx).to.emit(registry, "TaskExpired").withArgs(taskId, 1n, outsider.address);
      const receipt = await (await tx).wait();
      const task = await registry.getTask(taskId);
      expect(task.expiredAtBlock).to.equal(BigInt(receipt?.blockNumber ?? -1));
      expect(task.finalizedAtBlock).to.equal(0n);
      expect(await registry.taskState(taskId)).to.equal(TaskState.Expired);
    });

    it("records expiry after a missed result deadline", async function () {
      const { registry, taskId, requester, resultDeadline } = await networkHelpers.loadFixture(computingFixture);
      await time.setNextBlockTimestamp(resultDeadline + 1);
      await expect(registry.connect(requester).expireTask(taskId))
        .to.emit(registry, "TaskExpired")
        .withArgs(taskId, 3n, requester.address);
    });

    it("reverts ConsortTaskNotExpirable in the deadline seconds themselves", async function () {
      const task = await networkHelpers.loadFixture(taskFixture);
      await time.setNextBlockTimestamp(task.inputDeadline);
      await expect(task.registry.expireTask(task.taskId))
        .to.be.revertedWithCustomError(task.registry, "ConsortTaskNotExpirable")
        .withArgs(task.taskId, TaskState.AwaitingInputs);
      const computing = await networkHelpers.loadFixture(computingFixture);
      await time.setNextBlockTimestamp(computing.resultDeadline);
      await expect(computing.registry.expireTask(computing.taskId))
        .to.be.revertedWithCustomError(computing.registry, "ConsortTaskNotExpirable")
        .withArgs(computing.taskId, TaskState.Computing);
    });

    it("reverts ConsortTaskNotExpirable(Finalized) even after the deadlines", async function () {
      const { registry, taskId, signatures, resultDeadline } = await networkHelpers.loadFixture(computingFixture);
      await registry.finalizeTask(taskId, RESULT, signatures);
      await time.increaseTo(resultDeadline + 1);
      await expect(registry.expireTask(taskId))
        .to.be.revertedWithCustomError(registry, "ConsortTaskNotExpirable")
        .withArgs(taskId, TaskState.Finalized);
    });

    it("reverts ConsortTaskNotExpirable(Expired) when expiry is already recorded", async function () {
      const { registry, taskId, inputDeadline } = await networkHelpers.loadFixture(taskFixture);
      await time.increaseTo(inputDeadline + 1);
      await registry.expireTask(taskId);
      const recorded = (await registry.getTask(taskId)).expiredAtBlock;
      await expect(registry.expireTask(taskId))
        .to.be.revertedWithCustomError(registry, "ConsortTaskNotExpirable")
        .withArgs(taskId, TaskState.Expired);
      expect((await registry.getTask(taskId)).expiredAtBlock).to.equal(recorded);
    });

    it("reverts ConsortUnknownTask", async function () {
      const { registry } = await networkHelpers.loadFixture(taskFixture);
      for (const id of [0n, 2n]) {
        await expect(registry.expireTask(id))
          .to.be.revertedWithCustomError(registry, "ConsortUnknownTask")
          .withArgs(id);
      }
    });
  });

  describe("getTask and inputCommitments", function () {
    it("revert ConsortUnknownTask for id 0 and ids past taskCount", async function () {
      const { registry } = await networkHelpers.loadFixture(taskFixture);
      for (const id of [0n, 2n]) {
        await expect(registry.getTask(id)).to.be.revertedWithCustomError(registry, "ConsortUnknownTask").withArgs(id);
        await expect(registry.inputCommitments(id))
          .to.be.revertedWithCustomError(registry, "ConsortUnknownTask")
          .withArgs(id);
      }
    });
  });

  describe("gas", function () {
    it("stays within budget for registerParty, createTask (3 parties, 3 owners, 300-byte program), commitInput and finalizeTask (3 signatures)", async function () {
      const { registry, parties, owners, requester, domain } = await networkHelpers.loadFixture(deployFixture);
      const gas: Record<string, bigint> = {};
      const used = async (label: string, sent: Promise<{ wait(): Promise<{ gasUsed: bigint } | null> }>) => {
        const receipt = await (await sent).wait();
        if (receipt === null) throw new Error(`${label}: no receipt`);
        gas[label] = receipt.gasUsed;
      };
      for (const [i, party] of parties.slice(0, 3).entries()) {
        await used(
          i === 0 ? "registerParty" : `registerParty#${i}`,
          registry.connect(party).registerParty(encryptionKeyFor(`g${i}`), endpointFor(i))
        );
      }
      const now = await time.latest();
      await used(
        "createTask",
        registry.connect(requester).createTask({
          program: programOf(300),
          parties: parties.slice(0, 3).map((p) => p.address),
          dataOwners: owners.map((o) => o.address),
          threshold: 1,
          inputDeadline: now + INPUT_WINDOW,
          resultDeadline: now + RESULT_WINDOW,
        })
      );
      for (const [i, owner] of owners.entries()) {
        await used(`commitInput#${i + 1}`, registry.connect(owner).commitInput(1n, commitmentFor(`g${i}`)));
      }
      const attestation = await attestationFor(registry, 1n, RESULT);
      const signatures = await Promise.all(parties.slice(0, 3).map((p) => signAttestation(p, domain, attestation)));
      await used("finalizeTask", registry.finalizeTask(1n, RESULT, signatures));
      console.log(
        `      gas used: ${Object.entries(gas)
          .map(([k, v]) => `${k}=${v}`)
          .join(", ")}`
      );
      const budgets: Record<string, bigint> = {
        registerParty: 150_000n,
        createTask: 500_000n,
        "commitInput#1": 70_000n,
        "commitInput#3": 70_000n,
        finalizeTask: 120_000n,
      };
      for (const [label, budget] of Object.entries(budgets)) {
        expect(gas[label], label).to.be.a("bigint").and.to.be.lessThan(budget);
      }
    });
  });
});
