// Property tests of ConsortRegistry: each property drives the contract with random inputs and compares every
// outcome (success with its event, or the exact custom error and its arguments) with a small reference model.
import { expect } from "chai";
import fc from "fast-check";
import { network } from "hardhat";
import { hexlify, keccak256, recoverAddress, toUtf8Bytes, Wallet, zeroPadValue } from "ethers";
import type { TypedDataDomain } from "ethers";
import {
  ATTESTATION_TYPES,
  TaskState,
  attestationDomain,
  attestationFor,
  encryptionKeyFor,
  highSTwin,
} from "./consort-registry-helpers.ts";
import type { ConsortRegistry, TaskParams, TaskStateValue } from "./consort-registry-helpers.ts";

const { ethers, networkHelpers } = await network.create();
const { time } = networkHelpers;

const RESULT = hexlify(toUtf8Bytes('{"mean":"42.5"}'));
const ZERO = zeroPadValue("0x", 32);

function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no item at index ${index} (length ${items.length})`);
  return item;
}

/** Funded wallets with deterministic keys, so a failing seed replays with the same addresses. */
async function fundedWallets(label: string, count: number): Promise<Wallet[]> {
  const wallets = Array.from(
    { length: count },
    (_, i) => new Wallet(keccak256(toUtf8Bytes(`${label}-${i}`)), ethers.provider)
  );
  for (const wallet of wallets) await networkHelpers.setBalance(wallet.address, 10n ** 18n);
  return wallets;
}

async function deployRegistry(): Promise<{ registry: ConsortRegistry; domain: TypedDataDomain }> {
  const registry = (await ethers.deployContract("ConsortRegistry")) as unknown as ConsortRegistry;
  const { chainId } = await ethers.provider.getNetwork();
  return { registry, domain: await attestationDomain(registry, chainId) };
}

async function register(registry: ConsortRegistry, parties: readonly Wallet[]): Promise<void> {
  for (const [i, party] of parties.entries()) {
    await registry.connect(party).registerParty(encryptionKeyFor(`fuzz-${i}`), `http://127.0.0.1:${7100 + i}`);
  }
}

/** Which kinds of outcome a property produced, so a test can show its generator reached every branch. */
function tally(): { seen: Set<string>; note(kind: string): void } {
  const seen = new Set<string>();
  return { seen, note: (kind) => seen.add(kind) };
}

// ---------------------------------------------------------------- finalizeTask

const PARTY_COUNT = 7;
const OUTSIDER_COUNT = 3;
const MALFORMED_KINDS = 3;

/** Three Computing tasks over the same seven parties with thresholds 1, 2 and 3, and every signature a run may use. */
async function finalizeFixture() {
  const { registry, domain } = await deployRegistry();
  const parties = await fundedWallets("fuzz-party", PARTY_COUNT);
  const [owner, submitter] = await fundedWallets("fuzz-account", 2);
  if (owner === undefined || submitter === undefined) throw new Error("no funded accounts");
  const outsiders = Array.from(
    { length: OUTSIDER_COUNT },
    (_, i) => new Wallet(keccak256(toUtf8Bytes(`fuzz-outsider-${i}`)))
  );
  await register(registry, parties);
  const now = await time.latest();
  const tasks = [];
  for (const threshold of [1, 2, 3]) {
    const params: TaskParams = {
      program: hexlify(toUtf8Bytes(`program with threshold ${threshold}`)),
      parties: parties.map((p) => p.address),
      dataOwners: [owner.address],
      threshold,
      inputDeadline: now + 1_000,
      resultDeadline: now + 2_000,
    };
    await registry.createTask(params);
    const taskId = BigInt(threshold);
    await registry.connect(owner).commitInput(taskId, keccak256(toUtf8Bytes(`input ${threshold}`)));
    const attestation = await attestationFor(registry, taskId, RESULT);
    const digest = await registry.attestationDigest(taskId, attestation.resultHash);
    const partySignatures = await Promise.all(
      parties.map((p) => p.signTypedData(domain, ATTESTATION_TYPES, attestation))
    );
    const outsiderSignatures = await Promise.all(
      outsiders.map((o) => o.signTypedData(domain, ATTESTATION_TYPES, attestation))
    );
    tasks.push({ taskId, threshold, digest, partySignatures, outsiderSignatures });
  }
  return { registry, parties, outsiders, submitter, tasks };
}

type Token =
  | { kind: "party"; index: number }
  | { kind: "outsider"; index: number }
  /** A party's valid signature over another task's attestation: it recovers to an unrelated address. */
  | { kind: "foreign"; index: number }
  | { kind: "malformed"; index: number };

type FinalizeOutcome =
  | { kind: "finalized"; signers: string[] }
  | { kind: "ConsortInvalidSignature"; index: number }
  | { kind: "ConsortSignerNotAParty"; signer: string }
  | { kind: "ConsortDuplicateSigner"; signer: string }
  | { kind: "ConsortQuorumNotReached"; count: number };

const tokenArb: fc.Arbitrary<Token> = fc.oneof(
  fc.record({ kind: fc.constant("outsider" as const), index: fc.nat({ max: OUTSIDER_COUNT - 1 }) }),
  fc.record({ kind: fc.constant("foreign" as const), index: fc.nat({ max: PARTY_COUNT - 1 }) }),
  fc.record({ kind: fc.constant("malformed" as const), index: fc.nat({ max: MALFORMED_KINDS - 1 }) }),
  fc.record({ kind: fc.constant("party" as const), index: fc.nat({ max: PARTY_COUNT - 1 }) })
);

/** A shuffled subset of the parties, with a few repeats, outsiders and bad signatures spliced in at random places. */
const signatureListArb = fc
  .tuple(
    fc.shuffledSubarray(
      Array.from({ length: PARTY_COUNT }, (_, i) => i),
      { minLength: 0, maxLength: PARTY_COUNT }
    ),
    fc.array(fc.tuple(fc.nat(), tokenArb), { maxLength: 3 })
  )
  .map(([order, splices]) => {
    const tokens: Token[] = order.map((index) => ({ kind: "party", index }));
    for (const [position, token] of splices) tokens.splice(position % (tokens.length + 1), 0, token);
    return tokens;
  });

describe("ConsortRegistry properties", function () {
  it("finalizeTask succeeds iff the signers are >= t + 1 distinct parties, and otherwise names the first fault", async function () {
    const fixture = await networkHelpers.loadFixture(finalizeFixture);
    const { parties, outsiders, submitter, tasks } = fixture;
    const partyAddresses = new Set(parties.map((p) => p.address));
    const outcomes = tally();

    const signatureOf = (task: (typeof tasks)[number], token: Token): string => {
      switch (token.kind) {
        case "party":
          return at(task.partySignatures, token.index);
        case "outsider":
          return at(task.outsiderSignatures, token.index);
        case "foreign": {
          const other = at(tasks, (tasks.indexOf(task) + 1) % tasks.length);
          return at(other.partySignatures, token.index);
        }
        case "malformed": {
          const good = at(task.partySignatures, token.index);
          if (token.index === 0) return hexlify(ethers.getBytes(good).slice(0, 64)); // compact length
          if (token.index === 1) return highSTwin(good); // EIP-2 forbids s > n/2
          return good.slice(0, -2) + "1c1c"; // 66 bytes
        }
      }
    };

    // The reference model: the contract's rules, applied in order to the recovered signers.
    const expected = (task: (typeof tasks)[number], tokens: Token[], signatures: string[]): FinalizeOutcome => {
      const seen = new Set<string>();
      for (const [index, token] of tokens.entries()) {
        if (token.kind === "malformed") return { kind: "ConsortInvalidSignature", index };
        const signer = recoverAddress(task.digest, at(signatures, index));
        if (token.kind === "outsider") expect(signer).to.equal(at(outsiders, token.index).address);
        if (!partyAddresses.has(signer)) return { kind: "ConsortSignerNotAParty", signer };
        if (seen.has(signer)) return { kind: "ConsortDuplicateSigner", signer };
        seen.add(signer);
      }
      if (tokens.length < task.threshold + 1) return { kind: "ConsortQuorumNotReached", count: tokens.length };
      return { kind: "finalized", signers: [...seen] };
    };

    await fc.assert(
      fc.asyncProperty(fc.nat({ max: tasks.length - 1 }), signatureListArb, async (taskIndex, tokens) => {
        const { registry } = await networkHelpers.loadFixture(finalizeFixture);
        const task = at(tasks, taskIndex);
        const signatures = tokens.map((token) => signatureOf(task, token));
        const outcome = expected(task, tokens, signatures);
        outcomes.note(outcome.kind);
        const call = registry.connect(submitter).finalizeTask(task.taskId, RESULT, signatures);
        switch (outcome.kind) {
          case "finalized": {
            await expect(call)
              .to.emit(registry, "TaskFinalized")
              .withArgs(task.taskId, keccak256(RESULT), RESULT, outcome.signers, signatures, submitter.address);
            expect(await registry.taskState(task.taskId)).to.equal(TaskState.Finalized);
            expect((await registry.getTask(task.taskId)).resultHash).to.equal(keccak256(RESULT));
            break;
          }
          case "ConsortInvalidSignature":
            await expect(call)
              .to.be.revertedWithCustomError(registry, outcome.kind)
              .withArgs(task.taskId, outcome.index);
            break;
          case "ConsortSignerNotAParty":
          case "ConsortDuplicateSigner":
            await expect(call)
              .to.be.revertedWithCustomError(registry, outcome.kind)
              .withArgs(task.taskId, outcome.signer);
            break;
          case "ConsortQuorumNotReached":
            await expect(call)
              .to.be.revertedWithCustomError(registry, outcome.kind)
              .withArgs(task.taskId, outcome.count, task.threshold + 1);
            break;
        }
        if (outcome.kind !== "finalized") expect(await registry.taskState(task.taskId)).to.equal(TaskState.Computing);
      }),
      { seed: 42, numRuns: 90 }
    );
    expect([...outcomes.seen].sort()).to.deep.equal(
      [
        "finalized",
        "ConsortInvalidSignature",
        "ConsortSignerNotAParty",
        "ConsortDuplicateSigner",
        "ConsortQuorumNotReached",
      ].sort()
    );
  });

  // ------------------------------------------------------------ life cycle

  it("follows the computed life cycle through random time jumps, commits, finalizations and expiries", async function () {
    async function lifecycleFixture() {
      const { registry, domain } = await deployRegistry();
      const parties = await fundedWallets("life-party", 3);
      const owners = await fundedWallets("life-owner", 3);
      const [outsider] = await fundedWallets("life-outsider", 1);
      if (outsider === undefined) throw new Error("no outsider");
      await register(registry, parties);
      return { registry, domain, parties, owners, outsider };
    }

    type Action =
      | { type: "wait"; seconds: number }
      | { type: "commit"; who: number; zero: boolean }
      | { type: "finalize"; signers: number }
      | { type: "expire" };

    const actionArb: fc.Arbitrary<Action> = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          type: fc.constant("wait" as const),
          seconds: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 40 })),
        }),
      },
      {
        weight: 4,
        arbitrary: fc.record({
          type: fc.constant("commit" as const),
          who: fc.nat({ max: 3 }),
          zero: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 7, arbitrary: fc.constant(false) }),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({ type: fc.constant("finalize" as const), signers: fc.integer({ min: 1, max: 3 }) }),
      },
      { weight: 1, arbitrary: fc.record({ type: fc.constant("expire" as const) }) }
    );

    const outcomes = tally();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 20 }),
        fc.integer({ min: 1, max: 20 }),
        // Half the runs start with every owner committing, so the later states are reached often enough.
        fc.boolean(),
        fc.array(actionArb, { minLength: 1, maxLength: 14 }),
        async (inputWindow, resultGap, prefill, drawn) => {
          const actions: Action[] = prefill
            ? [...[0, 1, 2].map((who): Action => ({ type: "commit", who, zero: false })), ...drawn]
            : drawn;
          const { registry, domain, parties, owners, outsider } = await networkHelpers.loadFixture(lifecycleFixture);
          const createdAt = (await time.latest()) + 1;
          const inputDeadline = createdAt + inputWindow;
          const resultDeadline = inputDeadline + resultGap;
          await time.setNextBlockTimestamp(createdAt);
          await registry.createTask({
            program: "0x5ca1ab1e",
            parties: parties.map((p) => p.address),
            dataOwners: owners.map((o) => o.address),
            threshold: 1,
            inputDeadline,
            resultDeadline,
          });
          const taskId = await registry.taskCount();

          // The model: what has been recorded, and the state rule of IConsortRegistry.taskState.
          const commitments: string[] = owners.map(() => ZERO);
          let committed = 0;
          let finalized = false;
          let expiryRecorded = false;
          const stateAt = (timestamp: number): TaskStateValue => {
            if (finalized) return TaskState.Finalized;
            if (expiryRecorded) return TaskState.Expired;
            if (committed < owners.length)
              return timestamp > inputDeadline ? TaskState.Expired : TaskState.AwaitingInputs;
            return timestamp > resultDeadline ? TaskState.Expired : TaskState.Computing;
          };

          for (const action of actions) {
            const now = await time.latest();
            const txTime = now + 1;
            const state = stateAt(txTime);
            switch (action.type) {
              case "wait":
                await time.increaseTo(now + action.seconds);
                break;
              case "commit": {
                const sender = action.who < owners.length ? at(owners, action.who) : outsider;
                const commitment = action.zero ? ZERO : keccak256(toUtf8Bytes(`${action.who}@${txTime}`));
                await time.setNextBlockTimestamp(txTime);
                const call = registry.connect(sender).commitInput(taskId, commitment);
                if (state !== TaskState.AwaitingInputs) {
                  outcomes.note(`commit:InvalidTaskState:${state}`);
                  await expect(call)
                    .to.be.revertedWithCustomError(registry, "ConsortInvalidTaskState")
                    .withArgs(taskId, state, TaskState.AwaitingInputs);
                } else if (action.who >= owners.length) {
                  outcomes.note("commit:NotADataOwner");
                  await expect(call)
                    .to.be.revertedWithCustomError(registry, "ConsortNotADataOwner")
                    .withArgs(taskId, sender.address);
                } else if (action.zero) {
                  outcomes.note("commit:ZeroCommitment");
                  await expect(call)
                    .to.be.revertedWithCustomError(registry, "ConsortZeroCommitment")
                    .withArgs(taskId, sender.address);
                } else if (commitments[action.who] !== ZERO) {
                  outcomes.note("commit:AlreadyCommitted");
                  await expect(call)
                    .to.be.revertedWithCustomError(registry, "ConsortInputAlreadyCommitted")
                    .withArgs(taskId, sender.address, commitments[action.who]);
                } else {
                  outcomes.note("commit:ok");
                  committed += 1;
                  commitments[action.who] = commitment;
                  await expect(call)
                    .to.emit(registry, "InputCommitted")
                    .withArgs(taskId, sender.address, commitment, committed);
                }
                break;
              }
              case "finalize": {
                const attestation = await attestationFor(registry, taskId, RESULT);
                const signatures = await Promise.all(
                  parties.slice(0, action.signers).map((p) => p.signTypedData(domain, ATTESTATION_TYPES, attestation))
                );
                await time.setNextBlockTimestamp(txTime);
                const call = registry.connect(outsider).finalizeTask(taskId, RESULT, signatures);
                if (state !== TaskState.Computing) {
                  outcomes.note(`finalize:InvalidTaskState:${state}`);
                  await expect(call)
                    .to.be.revertedWithCustomError(registry, "ConsortInvalidTaskState")
                    .withArgs(taskId, state, TaskState.Computing);
                } else if (action.signers < 2) {
                  outcomes.note("finalize:QuorumNotReached");
                  await expect(call)
                    .to.be.revertedWithCustomError(registry, "ConsortQuorumNotReached")
                    .withArgs(taskId, action.signers, 2);
                } else {
                  outcomes.note("finalize:ok");
                  finalized = true;
                  await expect(call).to.emit(registry, "TaskFinalized");
                }
                break;
              }
              case "expire": {
                await time.setNextBlockTimestamp(txTime);
                const call = registry.connect(outsider).expireTask(taskId);
                if (state === TaskState.Expired && !expiryRecorded) {
                  outcomes.note(committed < owners.length ? "expire:ok:inputs" : "expire:ok:result");
                  expiryRecorded = true;
                  await expect(call).to.emit(registry, "TaskExpired").withArgs(taskId, committed, outsider.address);
                } else {
                  outcomes.note(`expire:NotExpirable:${state}`);
                  await expect(call)
                    .to.be.revertedWithCustomError(registry, "ConsortTaskNotExpirable")
                    .withArgs(taskId, state);
                }
                break;
              }
            }
            // Views run against the latest block, so the model is evaluated at that block's timestamp.
            const latest = await time.latest();
            expect(await registry.taskState(taskId), `after ${JSON.stringify(action)} at ${latest}`).to.equal(
              stateAt(latest)
            );
            const task = await registry.getTask(taskId);
            expect(task.inputsCommitted).to.equal(BigInt(committed));
            expect(task.finalizedAtBlock !== 0n).to.equal(finalized);
            expect(task.expiredAtBlock !== 0n).to.equal(expiryRecorded);
            expect(await registry.inputCommitments(taskId)).to.deep.equal(commitments);
          }
        }
      ),
      { seed: 7, numRuns: 40 }
    );
    for (const kind of [
      "commit:ok",
      "commit:NotADataOwner",
      "commit:AlreadyCommitted",
      "commit:ZeroCommitment",
      `commit:InvalidTaskState:${TaskState.Computing}`,
      `commit:InvalidTaskState:${TaskState.Expired}`,
      `commit:InvalidTaskState:${TaskState.Finalized}`,
      "finalize:ok",
      "finalize:QuorumNotReached",
      `finalize:InvalidTaskState:${TaskState.AwaitingInputs}`,
      `finalize:InvalidTaskState:${TaskState.Expired}`,
      `finalize:InvalidTaskState:${TaskState.Finalized}`,
      "expire:ok:inputs",
      "expire:ok:result",
      `expire:NotExpirable:${TaskState.AwaitingInputs}`,
      `expire:NotExpirable:${TaskState.Expired}`,
      `expire:NotExpirable:${TaskState.Finalized}`,
    ]) {
      expect(outcomes.seen.has(kind), `the generator never produced ${kind}`).to.equal(true);
    }
  });

  // ------------------------------------------------------------ createTask

  it("createTask accepts exactly the well-formed tasks and names the first fault of the others", async function () {
    async function createFixture() {
      const { registry } = await deployRegistry();
      const registered = await fundedWallets("create-party", 6);
      const [requester] = await fundedWallets("create-requester", 1);
      if (requester === undefined) throw new Error("no requester");
      await register(registry, registered);
      const unregistered = Array.from(
        { length: 2 },
        (_, i) => new Wallet(keccak256(toUtf8Bytes(`create-stranger-${i}`))).address
      );
      const owners = Array.from(
        { length: 4 },
        (_, i) => new Wallet(keccak256(toUtf8Bytes(`create-owner-${i}`))).address
      );
      return {
        registry,
        requester,
        candidates: [...registered.map((p) => p.address), ...unregistered],
        registered: new Set(registered.map((p) => p.address)),
        owners,
      };
    }

    const paramsArb = fc.record({
      programLength: fc.oneof(
        { weight: 1, arbitrary: fc.constant(0) },
        { weight: 9, arbitrary: fc.integer({ min: 1, max: 64 }) }
      ),
      parties: fc.oneof(
        { weight: 3, arbitrary: fc.shuffledSubarray([0, 1, 2, 3, 4, 5], { minLength: 3 }) },
        { weight: 2, arbitrary: fc.array(fc.nat({ max: 7 }), { maxLength: 8 }) }
      ),
      threshold: fc.oneof(
        { weight: 3, arbitrary: fc.integer({ min: 1, max: 2 }) },
        { weight: 1, arbitrary: fc.nat({ max: 255 }) }
      ),
      owners: fc.oneof(
        { weight: 3, arbitrary: fc.shuffledSubarray([0, 1, 2, 3], { minLength: 1 }) },
        { weight: 1, arbitrary: fc.array(fc.nat({ max: 3 }), { maxLength: 6 }) }
      ),
      inputOffset: fc.integer({ min: -3, max: 50 }),
      resultOffset: fc.integer({ min: -3, max: 50 }),
    });

    const outcomes = tally();
    await fc.assert(
      fc.asyncProperty(paramsArb, async (draw) => {
        const { registry, requester, candidates, registered, owners } = await networkHelpers.loadFixture(createFixture);
        const now = (await time.latest()) + 1;
        const params: TaskParams = {
          program: hexlify(Uint8Array.from({ length: draw.programLength }, (_, i) => i + 1)),
          parties: draw.parties.map((i) => at(candidates, i)),
          dataOwners: draw.owners.map((i) => at(owners, i)),
          threshold: draw.threshold,
          inputDeadline: now + draw.inputOffset,
          resultDeadline: now + draw.inputOffset + draw.resultOffset,
        };
        const n = params.parties.length;
        const firstRepeat = (list: string[]) => list.find((item, i) => list.indexOf(item) !== i);
        const firstPartyFault = params.parties.find((p, i) => !registered.has(p) || params.parties.indexOf(p) !== i);
        const inputDeadline = now + draw.inputOffset;
        const resultDeadline = inputDeadline + draw.resultOffset;

        await time.setNextBlockTimestamp(now);
        const call = registry.connect(requester).createTask(params);
        // The contract checks sizes, threshold and deadlines before it walks the address lists.
        if (draw.programLength === 0) {
          outcomes.note("EmptyProgram");
          await expect(call).to.be.revertedWithCustomError(registry, "ConsortEmptyProgram");
        } else if (n === 0 || n > 64) {
          outcomes.note("InvalidPartyCount");
          await expect(call).to.be.revertedWithCustomError(registry, "ConsortInvalidPartyCount").withArgs(n, 64);
        } else if (draw.threshold === 0 || 2 * draw.threshold + 1 > n) {
          outcomes.note("InvalidThreshold");
          await expect(call)
            .to.be.revertedWithCustomError(registry, "ConsortInvalidThreshold")
            .withArgs(draw.threshold, n);
        } else if (params.dataOwners.length === 0) {
          outcomes.note("InvalidDataOwnerCount");
          await expect(call).to.be.revertedWithCustomError(registry, "ConsortInvalidDataOwnerCount").withArgs(0, 256);
        } else if (!(now < inputDeadline && inputDeadline < resultDeadline)) {
          outcomes.note("InvalidDeadlines");
          await expect(call)
            .to.be.revertedWithCustomError(registry, "ConsortInvalidDeadlines")
            .withArgs(now, inputDeadline, resultDeadline);
        } else if (firstPartyFault !== undefined) {
          const unknown = !registered.has(firstPartyFault);
          outcomes.note(unknown ? "UnknownParty" : "DuplicateParty");
          await expect(call)
            .to.be.revertedWithCustomError(registry, unknown ? "ConsortUnknownParty" : "ConsortDuplicateParty")
            .withArgs(firstPartyFault);
        } else if (firstRepeat(params.dataOwners) !== undefined) {
          outcomes.note("DuplicateDataOwner");
          await expect(call)
            .to.be.revertedWithCustomError(registry, "ConsortDuplicateDataOwner")
            .withArgs(firstRepeat(params.dataOwners));
        } else {
          outcomes.note("created");
          await expect(call)
            .to.emit(registry, "TaskCreated")
            .withArgs(
              1n,
              requester.address,
              keccak256(params.program),
              params.parties,
              params.dataOwners,
              draw.threshold,
              inputDeadline,
              resultDeadline,
              params.program
            );
          expect(await registry.taskState(1n)).to.equal(TaskState.AwaitingInputs);
          return;
        }
        expect(await registry.taskCount()).to.equal(0n);
      }),
      { seed: 1234, numRuns: 120 }
    );
    expect([...outcomes.seen].sort()).to.deep.equal(
      [
        "EmptyProgram",
        "InvalidPartyCount",
        "InvalidThreshold",
        "InvalidDataOwnerCount",
        "InvalidDeadlines",
        "UnknownParty",
        "DuplicateParty",
        "DuplicateDataOwner",
        "created",
      ].sort()
    );
  });
});
