import { expect } from "chai";
import { PeerChannel } from "../../node/transport/peer-channel.ts";
import { PeerMailbox } from "../../node/transport/peer-mailbox.ts";
import { ConsortError } from "../../node/errors.ts";
import { NodeStore } from "../../node/store/node-store.ts";
import { labelKey } from "../../node/transport/message-label.ts";
import { LoopbackLink, TASK, World, loopNode, party, rejection, thrown } from "./peer-fixtures.ts";

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe("cli/peer-mailbox", () => {
  it("hands an early message to its wait without asking the store, and wakes a parked wait on delivery", async () => {
    const mailbox = new PeerMailbox();
    let lookups = 0;
    const lookup = () => {
      lookups++;
      return undefined;
    };
    mailbox.deliver("task/1/round/1/gate/g", "0xA", bytes(4, 1));
    expect(mailbox.earlyCount).to.equal(1);
    expect((await mailbox.wait("task/1/round/1/gate/g", "0xA", 1_000, lookup))[0]).to.equal(1);
    expect(lookups).to.equal(0);
    expect(mailbox.earlyCount).to.equal(0);

    const parked = mailbox.wait("task/1/round/2/gate/g", "0xA", 1_000, lookup);
    const second = mailbox.wait("task/1/round/2/gate/g", "0xA", 1_000);
    mailbox.deliver("task/1/round/2/gate/g", "0xA", bytes(4, 2));
    expect([(await parked)[0], (await second)[0]]).to.deep.equal([2, 2]);
    expect(lookups).to.equal(1);
    // Delivered to waiters, so not kept.
    expect(mailbox.earlyCount).to.equal(0);
  });

  it("refuses what would overflow its bounds (MAILBOX_FULL, retryable) and loses nothing it accepted; asks the store for the rest", async () => {
    const mailbox = new PeerMailbox({ maxEarlyMessages: 2, maxEarlyBytes: 10 });
    mailbox.deliver("l1", "0xA", bytes(4, 1));
    mailbox.deliver("l2", "0xA", bytes(4, 2));
    const full = thrown(() => mailbox.deliver("l3", "0xA", bytes(4, 3)));
    expect([full.code, full.retryable, full.details["what"]]).to.deep.equal(["MAILBOX_FULL", true, "messages"]);
    // Both accepted messages are still there.
    expect((await mailbox.wait("l1", "0xA", 100))[0]).to.equal(1);
    expect((await mailbox.wait("l2", "0xA", 100))[0]).to.equal(2);
    // The sender's retry gets in once the waits have made room; a waiter takes a message whatever its size.
    mailbox.deliver("l3", "0xA", bytes(4, 3));
    expect(thrown(() => mailbox.deliver("l4", "0xA", bytes(7, 4))).details["what"]).to.equal("bytes");
    const parked = mailbox.wait("big", "0xA", 100);
    mailbox.deliver("big", "0xA", bytes(64, 9));
    expect((await parked).length).to.equal(64);
    // What the mailbox does not hold comes from the store (attestations), if there.
    const store = new Map([["a#0xA", bytes(4, 7)]]);
    expect((await mailbox.wait("a", "0xA", 100, () => store.get("a#0xA")))[0]).to.equal(7);
    expect((await rejection(mailbox.wait("b", "0xA", 20, () => store.get("b#0xA")))).code).to.equal("PROTOCOL_TIMEOUT");
  });

  it("keeps one copy of a re-delivered message", () => {
    const mailbox = new PeerMailbox();
    mailbox.deliver("l", "0xA", bytes(4, 1));
    mailbox.deliver("l", "0xA", bytes(4, 1));
    expect(mailbox.earlyCount).to.equal(1);
  });

  it("times out with PROTOCOL_TIMEOUT (retryable) naming label and sender, and stops waiting on abort", async () => {
    const mailbox = new PeerMailbox();
    const timeout = await rejection(mailbox.wait("task/1/round/1/gate/g", "0xA", 20));
    expect(timeout.code).to.equal("PROTOCOL_TIMEOUT");
    expect(timeout.retryable).to.equal(true);
    expect(timeout.details).to.deep.equal({ label: "task/1/round/1/gate/g", from: "0xA" });

    const controller = new AbortController();
    const waiting = mailbox.wait("l", "0xA", 60_000, undefined, controller.signal);
    controller.abort(new ConsortError("PEER_UNREACHABLE", "gone", { retryable: true }));
    expect((await rejection(waiting)).code).to.equal("PEER_UNREACHABLE");
    // The aborted waiter is gone: the message is kept for the next wait instead.
    mailbox.deliver("l", "0xA", bytes(1, 1));
    expect(mailbox.earlyCount).to.equal(1);
    expect((await rejection(mailbox.wait("m", "0xA", 1_000, undefined, controller.signal))).code).to.equal("PEER_UNREACHABLE");
  });

  it("times each wait out on its own deadline with one sweep timer, and aborts the waits of one signal together", async () => {
    const mailbox = new PeerMailbox();
    const long = mailbox.wait("long", "0xA", 60_000);
    const started = performance.now();
    // A shorter deadline after a longer one re-arms the sweep earlier.
    const short = await rejection(mailbox.wait("short", "0xA", 30));
    expect(short.code).to.equal("PROTOCOL_TIMEOUT");
    expect(performance.now() - started).to.be.below(5_000);
    expect(mailbox.waitingCount).to.equal(1);
    mailbox.deliver("long", "0xA", bytes(1, 5));
    expect((await long)[0]).to.equal(5);
    expect(mailbox.waitingCount).to.equal(0);

    const controller = new AbortController();
    const a = mailbox.wait("a", "0xA", 60_000, undefined, controller.signal);
    const b = mailbox.wait("b", "0xB", 60_000, undefined, controller.signal);
    const other = mailbox.wait("c", "0xA", 60_000);
    mailbox.deliver("a", "0xA", bytes(1, 1));
    expect((await a)[0]).to.equal(1);
    controller.abort(new ConsortError("PEER_REJECTED", "refused"));
    expect((await rejection(b)).code).to.equal("PEER_REJECTED");
    expect(mailbox.waitingCount).to.equal(1);
    mailbox.deliver("c", "0xA", bytes(1, 3));
    expect((await other)[0]).to.equal(3);
    expect(mailbox.waitingCount).to.equal(0);
  });

  it("forgets a task's early messages and aborts every waiter on close", async () => {
    const mailbox = new PeerMailbox();
    mailbox.deliver("task/7/round/1/gate/g", "0xA", bytes(1, 1));
    mailbox.deliver("task/70/round/1/gate/g", "0xA", bytes(1, 1));
    mailbox.forget("task/7/");
    expect(mailbox.earlyCount).to.equal(1);
    const waiting = mailbox.wait("x", "0xA", 60_000);
    mailbox.close("stopping");
    const error = await rejection(waiting);
    expect([error.code, error.retryable]).to.deep.equal(["PROTOCOL_ABORTED", true]);
    expect(mailbox.earlyCount).to.equal(0);
    expect(thrown(() => new PeerMailbox({ maxEarlyMessages: -1 })).code).to.equal("CONFIG_INVALID");
  });

  it("serves many interleaved early and parked messages, each to its own wait", async () => {
    const mailbox = new PeerMailbox({ maxEarlyMessages: 100_000 });
    const n = 20_000;
    const waits: Promise<Uint8Array>[] = [];
    for (let i = 0; i < n; i++) {
      mailbox.deliver(`task/1/round/${i}/gate/g`, "0xA", bytes(1, i & 0xff));
      waits.push(mailbox.wait(`task/1/round/${n + i}/gate/g`, "0xA", 60_000));
    }
    for (let i = 0; i < n; i++) mailbox.deliver(`task/1/round/${n + i}/gate/g`, "0xA", bytes(1, i & 0xff));
    const got = await Promise.all(waits);
    expect(got.every((b, i) => b[0] === (i & 0xff))).to.equal(true);
    const early = await Promise.all(Array.from({ length: n }, (_, i) => mailbox.wait(`task/1/round/${i}/gate/g`, "0xA", 1)));
    expect(early.every((b, i) => b[0] === (i & 0xff))).to.equal(true);
    expect(mailbox.earlyCount).to.equal(0);
  });
});

describe("cli/peer-channel over peer sessions", () => {
  function setup() {
    const world = new World();
    const link = new LoopbackLink();
    const names = [party("alice", 0x61), party("bob", 0x62), party("carol", 0x63)];
    const parties = names.map((p) => p.wallet.address);
    world.tasks.set(TASK, parties);
    const channels = names.map((p) => {
      const store = NodeStore.open(":memory:");
      const mailbox = new PeerMailbox();
      const node = loopNode(p, world, link, {
        deliver: ({ label, from, payload }) => {
          if (store.putMessage(label.taskId, label.round, label.gate, from, payload) === "conflict") {
            throw new ConsortError("DUPLICATE_MESSAGE", `conflict from ${from}`);
          }
          mailbox.deliver(labelKey(label), from, payload);
        },
      });
      return { channel: new PeerChannel({ sessions: node.sessions, store, mailbox, timeoutMs: 2_000 }), sessions: node.sessions, store, mailbox };
    });
    return { world, link, parties, channels, close: () => Promise.all(channels.map((c) => c.sessions.close(0))) };
  }

  it("exchanges one round: received[j] is what party j sent, received[self] is its own", async () => {
    const t = setup();
    const label = { taskId: TASK, round: 1, gate: "open:0-0" };
    const results = await Promise.all(t.channels.map((c, i) => c.channel.exchange(label, t.parties, t.parties.map((_, j) => bytes(2, 10 * i + j)))));
    results.forEach((received, i) => expect(received.map((b) => b[0])).to.deep.equal(t.parties.map((_, j) => 10 * j + i)));
    expect(t.channels[0]!.channel.self).to.equal(t.parties[0]);
    // A receive after the fact is served by the store.
    expect((await t.channels[0]!.channel.receive(label, t.parties[1]!))[0]).to.equal(10);
    await t.close();
  });

  it("fails the round, and every later receive of the task, with a send that failed for good", async () => {
    const t = setup();
    const [alice] = t.channels as [(typeof t.channels)[0]];
    // Bob already holds another message from Alice under this label: he refuses hers (DUPLICATE_MESSAGE).
    t.channels[1]!.store.putMessage(TASK, 1, "g", t.parties[0]!, bytes(2, 99));
    const label = { taskId: TASK, round: 1, gate: "g" };
    const failed = await rejection(alice.channel.exchange(label, t.parties, [bytes(2, 0), bytes(2, 1), bytes(2, 2)]));
    expect(failed.code).to.equal("DUPLICATE_MESSAGE");
    const later = await rejection(alice.channel.receive({ taskId: TASK, round: 2, gate: "g" }, t.parties[2]!));
    expect(later.code).to.equal("DUPLICATE_MESSAGE");
    // Another task is unaffected, and forgetting the task clears the failure.
    t.world.tasks.set(TASK + 1n, t.parties);
    await t.channels[2]!.channel.send({ taskId: TASK + 1n, round: 1, gate: "g" }, t.parties[0]!, bytes(1, 5));
    expect((await alice.channel.receive({ taskId: TASK + 1n, round: 1, gate: "g" }, t.parties[2]!))[0]).to.equal(5);
    alice.channel.forgetTask(TASK);
    await t.channels[2]!.channel.send({ taskId: TASK, round: 2, gate: "g" }, t.parties[0]!, bytes(1, 6));
    expect((await alice.channel.receive({ taskId: TASK, round: 2, gate: "g" }, t.parties[2]!))[0]).to.equal(6);
    await t.close();
  });

  it("refuses an exchange it is not part of, or with the wrong number of messages", async () => {
    const t = setup();
    const label = { taskId: TASK, round: 1, gate: "g" };
    expect((await rejection(t.channels[0]!.channel.exchange(label, t.parties.slice(1), [bytes(1, 0), bytes(1, 0)]))).code).to.equal("NOT_A_PARTY");
    expect((await rejection(t.channels[0]!.channel.exchange(label, t.parties, [bytes(1, 0)]))).code).to.equal("INTERNAL");
    await t.close();
  });
});
