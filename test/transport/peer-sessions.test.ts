import { createHash } from "node:crypto";
import { expect } from "chai";
import { Wallet, getAddress } from "ethers";
import { ConsortError } from "../../node/errors.ts";
import { addressToBytes, uint256ToBytes } from "../../node/transport/binary-codec.ts";
import { CHECKPOINT_RECORD, FRAME_FLAG_STREAM, FRAME_RECORD, decodeSession, frameDigest, parseFrame, recordBytesOf, sealFrame, verifyFrameEvidence } from "../../node/transport/peer-frame.ts";
import { StaticSecrets, directionKey } from "../../node/transport/session-keys.ts";
import { PeerSessions } from "../../node/transport/peer-sessions.ts";
import type { FrameSigning } from "../../node/transport/peer-sessions.ts";
import { CHAIN_ID, LoopbackLink, OTHER_TASK, REGISTRY, TASK, World, loopNode, party, rejection, thrown } from "./peer-fixtures.ts";
import type { Node } from "./peer-fixtures.ts";

const label = (round: number, gate = `mul:${round}-${round}`, taskId = TASK) => ({ taskId, round, gate });
const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

function setup(signing: FrameSigning, options: { checkpointIntervalMs?: number } = {}) {
  const world = new World();
  const link = new LoopbackLink();
  const [alice, bob, carol, oscar] = [party("alice", 0x61), party("bob", 0x62), party("carol", 0x63), party("oscar", 0x6f)];
  const nodes = [alice, bob, carol, oscar].map((p) => loopNode(p!, world, link, { signing, ...options }));
  const [a, b, c, o] = nodes as [Node, Node, Node, Node];
  world.tasks.set(TASK, [a, b, c].map((n) => n.party.wallet.address));
  world.tasks.set(OTHER_TASK, [a, b, c].map((n) => n.party.wallet.address));
  return { world, link, a, b, c, o, close: () => Promise.all(nodes.map((n) => n.sessions.close(0))) };
}

/** A frame `from` seals for `to` (not delivered). */
async function sealed(from: Node, to: Node, l: ReturnType<typeof label>, payload: Uint8Array): Promise<Buffer> {
  return Buffer.from(recordBytesOf(await from.sessions.seal(l, to.party.wallet.address, payload)));
}

for (const signing of ["checkpoint", "frame"] as const) {
  describe(`transport/peer-sessions (${signing} signing)`, () => {
    let t: ReturnType<typeof setup>;
    beforeEach(() => {
      t = setup(signing);
    });
    afterEach(async () => {
      await t.close();
    });

    it("delivers a frame: label, checksummed sender and payload", async () => {
      await t.a.sessions.send(label(1), t.b.party.wallet.address.toLowerCase(), bytes(64, 9));
      expect(t.b.received).to.have.length(1);
      const got = t.b.received[0]!;
      expect(got.label).to.deep.equal(label(1));
      expect(got.from).to.equal(t.a.party.wallet.address);
      expect(Buffer.from(got.payload).equals(Buffer.from(bytes(64, 9)))).to.equal(true);
      expect(t.a.sessions.address).to.equal(t.a.party.wallet.address);
      // Both directions, several rounds, empty payloads too.
      for (let r = 2; r < 6; r++) {
        await t.b.sessions.send(label(r), t.a.party.wallet.address, bytes(r * 32, r));
        await t.a.sessions.send(label(r), t.b.party.wallet.address, new Uint8Array(0));
      }
      expect(t.a.received.map((f) => f.payload.length)).to.deep.equal([64, 96, 128, 160]);
      expect(t.b.received.slice(1).every((f) => f.payload.length === 0)).to.equal(true);
    });

    it("rejects every single-byte change with the code of the field it hit", async () => {
      const frame = await sealed(t.a, t.b, label(3, "open:0-0"), bytes(32, 5));
      const L = frame[227]!;
      const gateEnd = 228 + L;
      const bodyCode = signing === "frame" ? "BAD_SIGNATURE" : "DECRYPTION_FAILED";
      const streamed = (frame[1]! & FRAME_FLAG_STREAM) !== 0;
      expect(streamed, "a 32-byte payload is stream-sealed").to.equal(true);
      const expected = (i: number, flipped: number): string => {
        if (i < 2) return "BAD_REQUEST"; // type, flags
        if (i < 54) return "BAD_REQUEST"; // chain id, registry: not this node's
        if (i < 86) return "UNKNOWN_TASK"; // task id
        if (i < 126) return "NOT_A_PARTY"; // from: not a party; to: not this node
        if (i < 223) return "BAD_SIGNATURE"; // frame key, certificate
        if (i < 227) return bodyCode; // round
        if (i === 227) return "BAD_REQUEST"; // gate length
        if (i < gateEnd) return flipped < 0x21 || flipped > 0x7e ? "BAD_REQUEST" : bodyCode; // gate
        if (i < gateEnd + 4) return "BAD_REQUEST"; // ciphertext length
        // Stream-sealed (a small payload): the keystream offset. Its top 28 bits put any payload past
        // the 2^38-byte keystream; the rest only changes what the tag covers.
        if (streamed && i < gateEnd + 7) return "BAD_REQUEST";
        if (streamed && i < gateEnd + 12) return bodyCode;
        if (i < frame.length - (signing === "frame" ? 64 : 0)) return bodyCode; // ciphertext and tag
        return "BAD_SIGNATURE"; // signature
      };
      for (let i = 0; i < frame.length; i++) {
        const tampered = Buffer.from(frame);
        tampered[i]! ^= 0x01;
        const error = await rejection(t.b.sessions.acceptFrame(tampered));
        expect(error.code, `byte ${i}`).to.equal(expected(i, tampered[i]!));
        if (error.code === "UNKNOWN_TASK") expect(error.retryable, `byte ${i}`).to.equal(true);
      }
      // The original is still good after all that (nothing was poisoned or cached).
      expect((await t.b.sessions.acceptFrame(frame)).label).to.deep.equal(label(3, "open:0-0"));
    });

    it("rejects a frame replayed under another label, task or recipient", async () => {
      const frame = await sealed(t.a, t.b, label(4, "mul:0-9"), bytes(32, 4));
      const bodyCode = signing === "frame" ? "BAD_SIGNATURE" : "DECRYPTION_FAILED";

      const otherRound = Buffer.from(frame);
      otherRound.writeUInt32BE(5, 223);
      expect((await rejection(t.b.sessions.acceptFrame(otherRound))).code).to.equal(bodyCode);
      const otherGate = Buffer.from(frame);
      otherGate.write("mul:0-8", 228, "latin1");
      expect((await rejection(t.b.sessions.acceptFrame(otherGate))).code).to.equal(bodyCode);

      // Another task of the same parties: the certificate names the task.
      const otherTask = Buffer.from(frame);
      otherTask.writeBigUInt64BE(OTHER_TASK, 78);
      expect((await rejection(t.b.sessions.acceptFrame(otherTask))).code).to.equal("BAD_SIGNATURE");

      // To another party: as is it is not addressed to carol; readdressed, her key does not open it.
      expect((await rejection(t.c.sessions.acceptFrame(frame))).code).to.equal("NOT_A_PARTY");
      const readdressed = Buffer.from(frame);
      Buffer.from(t.c.party.wallet.address.slice(2), "hex").copy(readdressed, 106);
      expect((await rejection(t.c.sessions.acceptFrame(readdressed))).code).to.equal(bodyCode);

      // The same frame again to its recipient is the same message (a retry), not a new one.
      const first = await t.b.sessions.acceptFrame(frame);
      const again = await t.b.sessions.acceptFrame(frame);
      expect(Buffer.from(again.payload).equals(Buffer.from(first.payload))).to.equal(true);
    });

    it("rejects a frame whose certificate is by another key than its sender's (BAD_SIGNATURE)", async () => {
      // Oscar seals a frame as himself, then claims it is Alice's (a party, so membership passes).
      t.world.tasks.set(TASK, [t.a, t.b, t.c, t.o].map((n) => n.party.wallet.address));
      const frame = await sealed(t.o, t.b, label(1), bytes(32, 1));
      t.world.tasks.set(TASK, [t.a, t.b, t.c].map((n) => n.party.wallet.address));
      const forged = Buffer.from(frame);
      Buffer.from(t.a.party.wallet.address.slice(2), "hex").copy(forged, 86);
      expect((await rejection(t.b.sessions.acceptFrame(forged))).code).to.equal("BAD_SIGNATURE");
      // And Alice's own certificate under Oscar's frame key does not verify either.
      const genuine = await sealed(t.a, t.b, label(2), bytes(32, 2));
      const grafted = Buffer.from(frame);
      genuine.copy(grafted, 86, 86, 106);
      genuine.copy(grafted, 158, 158, 223);
      expect((await rejection(t.b.sessions.acceptFrame(grafted))).code).to.equal("BAD_SIGNATURE");
    });

    it("rejects frames from a registered party that is not in the task (NOT_A_PARTY, via taskParties)", async () => {
      const error = await rejection(t.o.sessions.send(label(1), t.b.party.wallet.address, bytes(32, 1)));
      expect(error.code).to.equal("NOT_A_PARTY");
      expect(error.retryable).to.equal(false);
      expect(t.b.received).to.have.length(0);
    });

    it("answers UNKNOWN_TASK (retryable) until the task is known, then accepts the same frame", async () => {
      const frame = await sealed(t.a, t.b, label(1, "g", 99n), bytes(32, 1));
      const error = await rejection(t.b.sessions.acceptFrame(frame));
      expect(error.code).to.equal("UNKNOWN_TASK");
      expect(error.retryable).to.equal(true);
      t.world.tasks.set(99n, [t.a.party.wallet.address, t.b.party.wallet.address, t.c.party.wallet.address]);
      expect((await t.b.sessions.acceptFrame(frame)).label.taskId).to.equal(99n);
    });

    it("rejects frames for another chain or registry (BAD_REQUEST) and to itself", async () => {
      const other = new PeerSessions({
        chainId: CHAIN_ID + 1n,
        registry: REGISTRY,
        signingKey: t.a.party.wallet,
        encryptionPrivateKey: t.a.party.encryption.privateKey,
        lookupParty: t.world.lookup,
        taskParties: t.world.parties,
        timeoutMs: 1_000,
        signing,
      });
      const frame = Buffer.from(recordBytesOf(await other.seal(label(1), t.b.party.wallet.address, bytes(32, 1))));
      expect((await rejection(t.b.sessions.acceptFrame(frame))).code).to.equal("BAD_REQUEST");
      expect((await rejection(t.a.sessions.send(label(1), t.a.party.wallet.address, bytes(1, 1)))).code).to.equal("BAD_REQUEST");
      await other.close(0);
    });

    it("fails to decrypt (DECRYPTION_FAILED) when the sender sealed to a key that is not the recipient's", async () => {
      // Alice's view of Bob's encryption key is stale: her signature is fine, the AEAD is not.
      const stale = new World();
      for (const [address, contact] of t.world.contacts) stale.contacts.set(address, contact);
      stale.contacts.set(t.b.party.wallet.address, { encryptionKey: party("x", 1).encryption.publicKey, endpoint: "loop://bob" });
      const confused = new PeerSessions({
        chainId: CHAIN_ID,
        registry: REGISTRY,
        signingKey: t.a.party.wallet,
        encryptionPrivateKey: t.a.party.encryption.privateKey,
        lookupParty: stale.lookup,
        taskParties: t.world.parties,
        timeoutMs: 1_000,
        signing,
      });
      const frame = Buffer.from(recordBytesOf(await confused.seal(label(1), t.b.party.wallet.address, bytes(32, 1))));
      expect((await rejection(t.b.sessions.acceptFrame(frame))).code).to.equal("DECRYPTION_FAILED");
      await confused.close(0);
    });

    it("seals a label once: the same payload again is the identical frame, another payload is refused", async () => {
      const to = t.b.party.wallet.address;
      const first = recordBytesOf(await t.a.sessions.seal(label(1), to, bytes(32, 1)));
      const again = recordBytesOf(await t.a.sessions.seal(label(1), to, bytes(32, 1)));
      expect(again.equals(first)).to.equal(true);
      const refused = await rejection(t.a.sessions.seal(label(1), to, bytes(32, 2)));
      expect(refused.code).to.equal("DUPLICATE_MESSAGE");
      expect(refused.retryable).to.equal(false);
      expect((await rejection(t.a.sessions.send(label(1), to, bytes(32, 2)))).code).to.equal("DUPLICATE_MESSAGE");
      // Other labels and other recipients are other nonces or other keys.
      await t.a.sessions.seal(label(2), to, bytes(32, 2));
      await t.a.sessions.seal(label(1), t.c.party.wallet.address, bytes(32, 2));
      // A forgotten task starts over with a fresh frame key, hence fresh keys: the label may carry new bytes.
      t.a.sessions.forgetTask(TASK);
      const fresh = recordBytesOf(await t.a.sessions.seal(label(1), to, bytes(32, 2)));
      expect(fresh.subarray(126, 158).equals(first.subarray(126, 158))).to.equal(false);
      expect((await t.b.sessions.acceptFrame(fresh)).payload[0]).to.equal(2);
    });

    it("delivers a retransmitted frame once, and refuses a different frame under a delivered label (DUPLICATE_MESSAGE)", async () => {
      const l = label(4);
      const frame = await sealed(t.a, t.b, l, bytes(32, 1));
      await t.b.sessions.receive(frame);
      await t.b.sessions.receive(frame);
      expect(t.b.received).to.have.length(1);
      // The same sender run, the same label, another payload: only a dishonest sender can make this.
      const session = decodeSession(frame);
      const key = directionKey({
        shared: new StaticSecrets(t.a.party.encryption.privateKey).sharedSecret(t.b.party.encryption.publicKey),
        chainId: uint256ToBytes(CHAIN_ID, "chainId"),
        registry: addressToBytes(REGISTRY, "registry"),
        taskId: uint256ToBytes(TASK, "taskId"),
        from: addressToBytes(t.a.party.wallet.address, "from"),
        to: addressToBytes(t.b.party.wallet.address, "to"),
        frameKey: session.frameKey,
      });
      const forged = recordBytesOf(sealFrame({ sessionBody: frame.subarray(2, 223), key, round: l.round, gate: Buffer.from(l.gate), payload: bytes(32, 2) }));
      const refused = await rejection(t.b.sessions.receive(forged));
      expect([refused.code, refused.details["from"]]).to.deep.equal(["DUPLICATE_MESSAGE", t.a.party.wallet.address]);
      expect(t.b.received).to.have.length(1);
      // A delivery that failed is not remembered: the sender's retry of the same frame gets through.
      let attempts = 0;
      const delivered: number[] = [];
      const flaky = loopNode(party("flaky", 0x66), t.world, t.link, {
        deliver: (f) => {
          if (++attempts === 1) throw new ConsortError("MAILBOX_FULL", "full", { retryable: true });
          delivered.push(f.payload[0]!);
        },
      });
      t.world.tasks.set(OTHER_TASK, [t.a.party.wallet.address, flaky.party.wallet.address]);
      const toFlaky = Buffer.from(recordBytesOf(await t.a.sessions.seal(label(1, "g", OTHER_TASK), flaky.party.wallet.address, bytes(32, 3))));
      expect((await rejection(flaky.sessions.receive(toFlaky))).code).to.equal("MAILBOX_FULL");
      await flaky.sessions.receive(toFlaky);
      await flaky.sessions.receive(toFlaky);
      expect(delivered).to.deep.equal([3]);
      await flaky.sessions.close(0);
    });

    it("lets a third party verify every accepted frame from the sender's address alone", async () => {
      t.link.hold = [];
      await t.a.sessions.send(label(1), t.b.party.wallet.address, bytes(32, 1));
      await t.a.sessions.send(label(2), t.b.party.wallet.address, bytes(32, 2));
      await t.a.sessions.flush(TASK);
      const frames = t.link.hold.filter((r) => r[0] === 0x01);
      const checkpoints = t.link.hold.filter((r) => r[0] === 0x02);
      expect(frames).to.have.length(2);
      expect(checkpoints).to.have.length(signing === "checkpoint" ? 1 : 0);
      for (const f of frames) {
        const evidence = verifyFrameEvidence(f, checkpoints[0]);
        expect(evidence.from).to.equal(t.a.party.wallet.address);
        expect(evidence.signedBy).to.equal(signing === "checkpoint" ? "checkpoint" : "frame");
      }
    });
  });
}

describe("transport/peer-sessions prepare", () => {
  it("opens the outbound sessions of a task ahead of its first frame, announces them, and leaves a peer it cannot look up to send()", async () => {
    const world = new World();
    const link = new LoopbackLink();
    const [alice, bob, carol] = [party("alice", 0x61), party("bob", 0x62), party("carol", 0x63)];
    const looked: string[] = [];
    const bobLooked: string[] = [];
    const a = loopNode(alice!, world, link, { lookupParty: (address) => (looked.push(address), world.lookup(address)) });
    const b = loopNode(bob!, world, link, { lookupParty: (address) => (bobLooked.push(address), world.lookup(address)) });
    const stranger = party("stranger", 0x73).wallet.address;
    world.tasks.set(TASK, [a, b].map((n) => n.party.wallet.address));
    await a.sessions.prepare(TASK, [alice!.wallet.address, bob!.wallet.address.toLowerCase(), carol!.wallet.address, stranger]);
    await a.sessions.flush(TASK);
    // Its own address is skipped; carol and the stranger are not registered.
    expect(new Set(looked)).to.deep.equal(new Set([bob!.wallet.address, carol!.wallet.address, stranger]));
    // Bob got the announcement, a checkpoint of no frames, and opened the session from it.
    expect(link.delivered.map((r) => [r[0], r.readUInt32BE(223)])).to.deep.equal([[CHECKPOINT_RECORD, 0]]);
    expect(bobLooked).to.deep.equal([alice!.wallet.address]);
    looked.length = 0;
    await a.sessions.seal(label(1), bob!.wallet.address, bytes(32, 1));
    expect(looked).to.deep.equal([]);
    await a.sessions.send(label(2), bob!.wallet.address, bytes(32, 2));
    expect(b.received.map((f) => f.label.round)).to.deep.equal([2]);
    expect(bobLooked).to.have.length(1);
    // Announcing twice sends nothing more; the task settles (an announcement signs nothing).
    await a.sessions.prepare(TASK, [bob!.wallet.address]);
    await a.sessions.flush(TASK);
    await b.sessions.settled(TASK, 1_000);
    expect(link.delivered.filter((r) => r[0] === CHECKPOINT_RECORD && r.readUInt32BE(223) === 0)).to.have.length(1);
    await Promise.all([a, b].map((n) => n.sessions.close(0)));
  });
});

describe("transport/peer-sessions checkpoints", () => {
  let t: ReturnType<typeof setup>;
  beforeEach(() => {
    // A long interval: checkpoints go out only when flushed or settled.
    t = setup("checkpoint", { checkpointIntervalMs: 60_000 });
  });
  afterEach(async () => {
    await t.close();
  });

  it("settles a task once every accepted frame is covered by a verified checkpoint", async () => {
    t.link.hold = [];
    await t.a.sessions.send(label(1), t.b.party.wallet.address, bytes(32, 1));
    await t.c.sessions.send(label(1), t.b.party.wallet.address, bytes(32, 2));
    const [fromA, fromC] = t.link.hold.splice(0) as [Buffer, Buffer];
    await t.b.sessions.receive(fromA);
    await t.b.sessions.receive(fromC);
    expect(t.b.received).to.have.length(2);

    const timeout = await rejection(t.b.sessions.settled(TASK, 50));
    expect(timeout.code).to.equal("PROTOCOL_TIMEOUT");
    expect(timeout.retryable).to.equal(true);
    expect(timeout.details.from).to.have.members([t.a.party.wallet.address, t.c.party.wallet.address]);

    await t.a.sessions.flush(TASK);
    const [checkpointA] = t.link.hold.splice(0) as [Buffer];
    const pending = t.b.sessions.settled(TASK, 2_000);
    await t.b.sessions.receive(checkpointA);
    expect((await rejection(t.b.sessions.settled(TASK, 20))).details.from).to.deep.equal([t.c.party.wallet.address]);
    await t.c.sessions.flush(TASK);
    await t.b.sessions.receive(t.link.hold.splice(0)[0]!);
    await pending;
    await t.b.sessions.settled(TASK, 20);
    // Another task has nothing to wait for.
    await t.b.sessions.settled(OTHER_TASK, 20);
  });

  it("covers frames a checkpoint lists in delivery order at once, and matches them by digest when the order differs", async () => {
    t.link.hold = [];
    const to = t.b.party.wallet.address;
    for (const r of [1, 2, 3]) await t.a.sessions.send(label(r), to, bytes(32, r));
    await t.a.sessions.flush(TASK);
    const inOrder = t.link.hold.splice(0);
    expect(inOrder.map((r) => r[0])).to.deep.equal([FRAME_RECORD, FRAME_RECORD, FRAME_RECORD, CHECKPOINT_RECORD]);
    for (const record of inOrder) await t.b.sessions.receive(record);
    await t.b.sessions.settled(TASK, 20);
    // Frames 5 then 4, then the checkpoint listing 4 and 5.
    for (const r of [4, 5]) await t.a.sessions.send(label(r), to, bytes(32, r));
    await t.a.sessions.flush(TASK);
    const [f4, f5, checkpoint] = t.link.hold.splice(0) as [Buffer, Buffer, Buffer];
    await t.b.sessions.receive(f5);
    await t.b.sessions.receive(f4);
    await t.b.sessions.receive(checkpoint);
    await t.b.sessions.settled(TASK, 20);
    // A frame no checkpoint lists yet keeps the task unsettled, in either path.
    await t.a.sessions.send(label(6), to, bytes(32, 6));
    await t.b.sessions.receive(t.link.hold.splice(0)[0]!);
    expect((await rejection(t.b.sessions.settled(TASK, 20))).code).to.equal("PROTOCOL_TIMEOUT");
    await t.a.sessions.flush(TASK);
    await t.b.sessions.receive(t.link.hold.splice(0)[0]!);
    await t.b.sessions.settled(TASK, 20);
    expect(t.b.received.map((f) => f.label.round)).to.deep.equal([1, 2, 3, 5, 4, 6]);
  });

  it("counts a frame whose checkpoint came first as covered, and a re-delivered frame once", async () => {
    t.link.hold = [];
    await t.a.sessions.send(label(1), t.b.party.wallet.address, bytes(32, 1));
    await t.a.sessions.flush(TASK);
    const [frame, checkpoint] = t.link.hold.splice(0) as [Buffer, Buffer];
    await t.b.sessions.receive(checkpoint);
    await t.b.sessions.receive(frame);
    await t.b.sessions.settled(TASK, 20);
    await t.b.sessions.receive(frame);
    await t.b.sessions.settled(TASK, 20);
  });

  it("refuses forged or tampered checkpoints (BAD_SIGNATURE) without blocking the genuine one", async () => {
    t.link.hold = [];
    await t.a.sessions.send(label(1), t.b.party.wallet.address, bytes(32, 1));
    await t.a.sessions.flush(TASK);
    const [frame, checkpoint] = t.link.hold.splice(0) as [Buffer, Buffer];
    await t.b.sessions.receive(frame);
    const badSignature = Buffer.from(checkpoint);
    badSignature[badSignature.length - 1]! ^= 1;
    expect((await rejection(t.b.sessions.receive(badSignature))).code).to.equal("BAD_SIGNATURE");
    const otherDigest = Buffer.from(checkpoint);
    otherDigest[230]! ^= 1;
    expect((await rejection(t.b.sessions.receive(otherDigest))).code).to.equal("BAD_SIGNATURE");
    expect((await rejection(t.b.sessions.settled(TASK, 20))).code).to.equal("PROTOCOL_TIMEOUT");
    await t.b.sessions.receive(checkpoint);
    await t.b.sessions.settled(TASK, 20);
  });

  it("goes out on its own after checkpointIntervalMs, and at once after checkpointMaxFrames", async () => {
    const fast = setup("checkpoint", { checkpointIntervalMs: 5 });
    await fast.a.sessions.send(label(1), fast.b.party.wallet.address, bytes(32, 1));
    await new Promise((r) => setTimeout(r, 50));
    await fast.b.sessions.settled(TASK, 1);
    await fast.close();

    const world = new World();
    const link = new LoopbackLink();
    const a = loopNode(party("alice", 0x61), world, link, { checkpointIntervalMs: 60_000, checkpointMaxFrames: 3 });
    const b = loopNode(party("bob", 0x62), world, link, { checkpointIntervalMs: 60_000 });
    world.tasks.set(TASK, [a.party.wallet.address, b.party.wallet.address]);
    link.hold = [];
    for (let r = 1; r <= 3; r++) await a.sessions.send(label(r), b.party.wallet.address, bytes(32, r));
    // The third frame fills the checkpoint, which leaves at once (its order against that frame does not matter).
    expect(link.hold.map((x) => x[0]).sort()).to.deep.equal([1, 1, 1, 2]);
    await Promise.all([a.sessions.close(0), b.sessions.close(0)]);
  });

  it("reports the digest its checkpoints sign: BLAKE2b-512 of the frame without signature, truncated", async () => {
    t.link.hold = [];
    await t.a.sessions.send(label(1), t.b.party.wallet.address, bytes(32, 1));
    const frame = parseFrame(t.link.hold[0]!);
    const accepted = await t.b.sessions.acceptFrame(t.link.hold[0]!);
    const independent = createHash("blake2b512").update(t.link.hold[0]!.subarray(0, frame.bytes.length - (frame.signature?.length ?? 0))).digest();
    expect(Buffer.from(accepted.digest).equals(independent.subarray(0, 32))).to.equal(true);
    expect(frameDigest(frame.unsigned).equals(independent.subarray(0, 32))).to.equal(true);
  });
});

describe("transport/peer-sessions options and delivery", () => {
  const alice = party("alice", 0x61);
  const base = {
    chainId: CHAIN_ID,
    registry: REGISTRY,
    signingKey: alice.wallet,
    encryptionPrivateKey: alice.encryption.privateKey,
    lookupParty: () => ({ encryptionKey: alice.encryption.publicKey, endpoint: "loop://nowhere" }),
    taskParties: () => undefined,
    timeoutMs: 1_000,
  };

  it("rejects bad configuration with CONFIG_INVALID or KEY_INVALID", () => {
    const codes = [
      thrown(() => new PeerSessions({ ...base, chainId: 0n })),
      thrown(() => new PeerSessions({ ...base, registry: "0x12" })),
      thrown(() => new PeerSessions({ ...base, signingKey: {} as Wallet })),
      thrown(() => new PeerSessions({ ...base, encryptionPrivateKey: new Uint8Array(5) })),
      thrown(() => new PeerSessions({ ...base, signing: "never" as FrameSigning })),
      thrown(() => new PeerSessions({ ...base, timeoutMs: 0 })),
      thrown(() => new PeerSessions({ ...base, checkpointIntervalMs: -1 })),
      thrown(() => new PeerSessions({ ...base, checkpointMaxFrames: 5_000 })),
    ].map((e) => e.code);
    expect(codes).to.deep.equal(["CONFIG_INVALID", "BAD_REQUEST", "KEY_INVALID", "KEY_INVALID", "CONFIG_INVALID", "CONFIG_INVALID", "CONFIG_INVALID", "CONFIG_INVALID"]);
  });

  it("rejects bad labels, payloads and recipients with BAD_REQUEST naming the field", async () => {
    const sessions = new PeerSessions(base);
    const bob = getAddress("0x" + "b0".repeat(20));
    const cases: Array<[Promise<unknown>, string]> = [
      [sessions.seal({ taskId: -1n, round: 1, gate: "g" }, bob, new Uint8Array(1)), "label.taskId"],
      [sessions.seal({ taskId: 1n, round: 2 ** 32, gate: "g" }, bob, new Uint8Array(1)), "label.round"],
      [sessions.seal({ taskId: 1n, round: 1, gate: "with space" }, bob, new Uint8Array(1)), "label.gate"],
      [sessions.seal({ taskId: 1n, round: 1, gate: "" }, bob, new Uint8Array(1)), "label.gate"],
      [sessions.seal({ taskId: 1n, round: 1, gate: "g" }, bob, "payload" as unknown as Uint8Array), "payload"],
      [sessions.seal({ taskId: 1n, round: 1, gate: "g" }, "bob", new Uint8Array(1)), "to"],
    ];
    for (const [promise, field] of cases) {
      const error = await rejection(promise);
      expect(error.code, field).to.equal("BAD_REQUEST");
      expect(error.details.field, field).to.equal(field);
    }
    await sessions.close(0);
  });

  it("retries a retryable failure until the deadline, then fails with PEER_UNREACHABLE naming peer and label", async () => {
    let attempts = 0;
    const retries: number[] = [];
    const sessions = new PeerSessions({
      ...base,
      timeoutMs: 300,
      // Only the frame's delivery: no checkpoint goes out during the test.
      checkpointIntervalMs: 60_000,
      link: {
        deliver: async () => {
          attempts++;
          throw new ConsortError("PEER_UNREACHABLE", "down", { retryable: true });
        },
        close: async () => {},
      },
      onRetry: ({ attempt }) => retries.push(attempt),
    });
    const bob = getAddress("0x" + "b0".repeat(20));
    const started = Date.now();
    const error = await rejection(sessions.send({ taskId: 1n, round: 1, gate: "g" }, bob, new Uint8Array(1)));
    expect(error.code).to.equal("PEER_UNREACHABLE");
    expect(error.retryable).to.equal(true);
    expect(error.details).to.deep.include({ to: bob, label: "task/1/round/1/gate/g" });
    expect(Date.now() - started).to.be.within(100, 1_500);
    expect(attempts).to.be.greaterThan(2);
    expect(retries).to.deep.equal(Array.from({ length: attempts - 1 }, (_, i) => i + 1));
    await sessions.close(0);
  });

  it("does not retry a refusal, and keeps the peer's code", async () => {
    let attempts = 0;
    const sessions = new PeerSessions({
      ...base,
      link: {
        deliver: async () => {
          attempts++;
          throw new ConsortError("PEER_REJECTED", "no", { details: { remoteCode: "NOT_A_PARTY" } });
        },
        close: async () => {},
      },
    });
    const error = await rejection(sessions.send({ taskId: 1n, round: 1, gate: "g" }, getAddress("0x" + "b0".repeat(20)), new Uint8Array(1)));
    expect(error.code).to.equal("PEER_REJECTED");
    expect(error.details.remoteCode).to.equal("NOT_A_PARTY");
    expect(attempts).to.equal(1);
    await sessions.close(0);
  });
});
