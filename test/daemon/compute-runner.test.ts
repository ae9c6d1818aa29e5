import { expect } from "chai";
import fc from "fast-check";
import { ATTESTATION_GATE, ComputeRunner, attemptGate, parseAttemptGate } from "../../node/daemon/compute-runner.ts";
import { createLogger } from "../../node/logger.ts";
import { frVecFromBigints } from "../../node/math/fr-vec.ts";
import { NodeStore } from "../../node/store/node-store.ts";
import type { MessageLabel } from "../../node/transport/message-label.ts";
import { PeerChannel } from "../../node/transport/peer-channel.ts";
import { PeerMailbox } from "../../node/transport/peer-mailbox.ts";
import type { AcceptedFrame } from "../../node/transport/peer-sessions.ts";
import { LoopbackLink, TASK, World, loopNode, party } from "../transport/peer-fixtures.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

function frame(label: MessageLabel, from: string, payload: Uint8Array): AcceptedFrame {
  return { label, from, payload, digest: new Uint8Array(32) };
}

describe("daemon/compute-runner: attempts and frame intake", () => {
  let store: NodeStore;
  let mailbox: PeerMailbox;
  let channel: PeerChannel;
  let runner: ComputeRunner;
  let newAttempts: bigint[];
  const alice = party("alice", 0x61);
  const bob = party("bob", 0x62);
  const from = bob.wallet.address;

  beforeEach(() => {
    const world = new World();
    world.tasks.set(TASK, [alice.wallet.address, bob.wallet.address]);
    const node = loopNode(alice, world, new LoopbackLink());
    store = NodeStore.open(":memory:");
    mailbox = new PeerMailbox();
    channel = new PeerChannel({ sessions: node.sessions, store, mailbox, timeoutMs: 2_000 });
    newAttempts = [];
    runner = new ComputeRunner({
      address: alice.wallet.address,
      store,
      channel,
      sessions: node.sessions,
      mailbox,
      logger: createLogger("silent"),
      onNewAttempt: (taskId) => newAttempts.push(taskId),
    });
  });

  afterEach(() => {
    mailbox.close("test over");
    store.close();
  });

  it("labels carry the attempt ahead of the engine's gate, and only such gates parse", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999_999_999 }), fc.stringMatching(/^[!-~]{1,100}$/), (attempt, gate) => {
        expect(parseAttemptGate(attemptGate(attempt, gate))).to.deep.equal({ attempt, gate });
      }),
    );
    for (const gate of [ATTESTATION_GATE, "mul:1-2", "a/mul", "ax/mul", "a1", "a1/", "a1234567890/mul"]) expect(parseAttemptGate(gate), gate).to.equal(undefined);
  });

  it("hands a frame of the current attempt to the waiting round", async () => {
    const label = { taskId: TASK, round: 3, gate: attemptGate(0, "mul:0-9") };
    const waiting = channel.receive(label, from);
    runner.acceptFrame(frame(label, from, frVecFromBigints([5n])));
    expect(await waiting).to.deep.equal(frVecFromBigints([5n]));
    expect(newAttempts).to.deep.equal([]);
  });

  it("moves the task to a peer's newer attempt (persisted) and keeps that attempt's frames for its run", async () => {
    const label = { taskId: TASK, round: 1, gate: attemptGate(2, "prep") };
    runner.acceptFrame(frame(label, from, frVecFromBigints([7n])));
    expect(runner.attemptOf(TASK)).to.equal(2);
    expect(store.getJob(TASK)?.attempt).to.equal(2);
    expect(newAttempts).to.deep.equal([TASK]);
    expect(await channel.receive(label, from)).to.deep.equal(frVecFromBigints([7n]));
  });

  it("refuses a frame of an attempt it has left with STALE_ATTEMPT, and holds no start frame", () => {
    runner.abandonInterrupted(TASK);
    runner.abandonInterrupted(TASK);
    expect(store.getJob(TASK)?.attempt).to.equal(2);
    expectCode(() => runner.acceptFrame(frame({ taskId: TASK, round: 1, gate: attemptGate(1, "prep") }, from, frVecFromBigints([1n]))), "STALE_ATTEMPT");
    const before = mailbox.earlyCount;
    runner.acceptFrame(frame({ taskId: TASK, round: 0, gate: attemptGate(3, "start") }, from, new Uint8Array(0)));
    expect(runner.attemptOf(TASK)).to.equal(3);
    expect(mailbox.earlyCount).to.equal(before);
  });

  it("drops the rounds of a task whose computation is over here, and takes them again once it is forgotten (a reorg may reuse the id)", () => {
    const label = { taskId: TASK, round: 1, gate: attemptGate(0, "out") };
    runner.markOver(TASK, "finalized");
    runner.acceptFrame(frame(label, from, frVecFromBigints([1n])));
    expect(mailbox.earlyCount).to.equal(0);
    runner.forget(TASK);
    runner.acceptFrame(frame(label, from, frVecFromBigints([1n])));
    expect(mailbox.earlyCount).to.equal(1);
  });

  it("a task a reorg rolled back moves past every attempt it has seen, and its early frames go", () => {
    runner.acceptFrame(frame({ taskId: TASK, round: 1, gate: attemptGate(0, "out") }, from, frVecFromBigints([1n])));
    runner.acceptFrame(frame({ taskId: TASK, round: 1, gate: attemptGate(1, "out") }, from, frVecFromBigints([2n])));
    expect(runner.attemptOf(TASK)).to.equal(1);
    expect(mailbox.earlyCount).to.equal(2);
    runner.restartAfterReorg(TASK);
    expect(runner.attemptOf(TASK)).to.equal(2);
    expect(store.getJob(TASK)?.attempt).to.equal(2);
    expect(mailbox.earlyCount).to.equal(0);
    runner.acceptFrame(frame({ taskId: TASK, round: 1, gate: attemptGate(3, "out") }, from, frVecFromBigints([3n])));
    runner.restartAfterReorg(TASK);
    expect(runner.attemptOf(TASK)).to.equal(4);
    expect(mailbox.earlyCount).to.equal(0);
  });

  it("a party whose run is over still joins a peer's newer attempt, and its attestation collection stops for it", async () => {
    runner.markOver(TASK, "result computed");
    const attest = { taskId: TASK, round: 0, gate: attemptGate(0, ATTESTATION_GATE) };
    const collecting = channel.receive(attest, from).then(
      () => expect.fail("the peer computes again: no attestation of the old result comes"),
      (e: unknown) => e as { code: string },
    );
    runner.acceptFrame(frame({ taskId: TASK, round: 0, gate: attemptGate(1, "start") }, from, new Uint8Array(0)));
    expect(runner.attemptOf(TASK)).to.equal(1);
    expect(newAttempts).to.deep.equal([TASK]);
    expect((await collecting).code).to.equal("PROTOCOL_ABORTED");
  });

  it("refuses a round frame without an attempt or without a field vector, and stores attestations, refusing a different second one", () => {
    expectCode(() => runner.acceptFrame(frame({ taskId: TASK, round: 1, gate: "mul:0-1" }, from, frVecFromBigints([1n]))), "BAD_REQUEST", { field: "gate" });
    expectCode(() => runner.acceptFrame(frame({ taskId: TASK, round: 0, gate: ATTESTATION_GATE }, from, new Uint8Array(97))), "BAD_REQUEST", { field: "gate" });
    expectCode(() => runner.acceptFrame(frame({ taskId: TASK, round: 1, gate: attemptGate(0, "mul:0-1") }, from, new Uint8Array(31))), "BAD_REQUEST");
    // Attestations are kept whatever the current attempt (a peer may attest a result of an attempt this party left).
    runner.abandonInterrupted(TASK);
    const attest = { taskId: TASK, round: 0, gate: attemptGate(0, ATTESTATION_GATE) };
    runner.acceptFrame(frame(attest, from, new Uint8Array(97).fill(1)));
    expect(store.getMessage(TASK, 0, attest.gate, from)).to.deep.equal(new Uint8Array(97).fill(1));
    runner.acceptFrame(frame(attest, from, new Uint8Array(97).fill(1)));
    expectCode(() => runner.acceptFrame(frame(attest, from, new Uint8Array(97).fill(2))), "DUPLICATE_MESSAGE");
  });
});
