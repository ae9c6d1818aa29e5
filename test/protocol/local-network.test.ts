import { expect } from "chai";
import { ConsortError, type ConsortErrorCode } from "../../node/errors.ts";
import { frVecAdd, frVecFromBigints, frVecToBigints } from "../../node/math/fr-vec.ts";
import { LocalNetwork } from "../../node/protocol/local-network.ts";
import type { ProtocolLabel } from "../../node/protocol/round-network.ts";

async function expectRejects(promise: Promise<unknown>, code: ConsortErrorCode): Promise<ConsortError> {
  const error = await promise.then(
    () => expect.fail(`expected ${code}, but it resolved`),
    (e: unknown) => e,
  );
  expect(error).to.be.instanceOf(ConsortError);
  expect((error as ConsortError).code).to.equal(code);
  return error as ConsortError;
}

const label = (round: number, gate = "test"): ProtocolLabel => ({ round, gate });

/** A RoundNetwork endpoint driven with bigint vectors (packed on the way in, unpacked on the way out). */
function endpoint(net: LocalNetwork, self: number): { exchange: (l: ProtocolLabel, out: readonly (readonly bigint[])[]) => Promise<bigint[][]> } {
  const inner = net.endpoint(self);
  return {
    exchange: async (l, out) => (await inner.exchange(l, out.map((v) => frVecFromBigints(v)))).map((v) => frVecToBigints(v)),
  };
}

/** Party i sends [100·i + j, i] to party j. */
const outgoingOf = (self: number, n: number): bigint[][] => Array.from({ length: n }, (_, j) => [BigInt(100 * self + j), BigInt(self)]);

describe("LocalNetwork", () => {
  it("delivers each party's message to each other party and loops back its own", async () => {
    const n = 4;
    const net = new LocalNetwork({ parties: n });
    const received = await Promise.all(Array.from({ length: n }, (_, self) => endpoint(net, self).exchange(label(0), outgoingOf(self, n))));
    for (let self = 0; self < n; self++) {
      for (let from = 0; from < n; from++) expect(received[self]![from]).to.deep.equal([BigInt(100 * from + self), BigInt(from)]);
    }
    for (let party = 0; party < n; party++) {
      expect(net.stats(party)).to.deep.equal({ bytesSent: 3 * 64, bytesReceived: 3 * 64, messagesSent: 3, messagesReceived: 3, rounds: 1 });
    }
    expect(net.totalBytes()).to.equal(4 * 3 * 64);
    net.close();
  });

  it("keeps rounds apart by label, whatever the order parties reach them in", async () => {
    const net = new LocalNetwork({ parties: 3 });
    // Party 0 runs round 1 before round 0; the others go in order.
    const p0 = Promise.all([endpoint(net, 0).exchange(label(1), [[1n], [1n], [1n]]), endpoint(net, 0).exchange(label(0), [[0n], [0n], [0n]])]);
    const others = [1, 2].map(async (self) => {
      const r0 = await endpoint(net, self).exchange(label(0), [[0n], [0n], [0n]]);
      const r1 = await endpoint(net, self).exchange(label(1), [[1n], [1n], [1n]]);
      return [r0, r1];
    });
    const [[r1, r0]] = await Promise.all([p0, ...others]);
    expect(r0).to.deep.equal([[0n], [0n], [0n]]);
    expect(r1).to.deep.equal([[1n], [1n], [1n]]);
    for (const [q0, q1] of await Promise.all(others)) {
      expect(q0).to.deep.equal([[0n], [0n], [0n]]);
      expect(q1).to.deep.equal([[1n], [1n], [1n]]);
    }
    // Same round number, different gate: a different label.
    const a = await Promise.all([0, 1, 2].map((self) => endpoint(net, self).exchange(label(2, "a"), [[7n], [7n], [7n]])));
    expect(a[0]).to.deep.equal([[7n], [7n], [7n]]);
    net.close();
  });

  it("sends empty vectors as real messages", async () => {
    const net = new LocalNetwork({ parties: 3 });
    const received = await Promise.all([0, 1, 2].map((self) => endpoint(net, self).exchange(label(0), [[], [], []])));
    expect(received[1]).to.deep.equal([[], [], []]);
    expect(net.stats(1).messagesReceived).to.equal(2);
    net.close();
  });

  it("runs sparse rounds: undefined sends nothing, and only the peers in `from` are awaited", async () => {
    const net = new LocalNetwork({ parties: 3, timeoutMs: 2_000 });
    // A ring: party i sends to i - 1 and hears from i + 1.
    const received = await Promise.all(
      [0, 1, 2].map((self) => {
        const out: (Uint8Array | undefined)[] = [undefined, undefined, undefined];
        out[(self + 2) % 3] = frVecFromBigints([BigInt(10 + self)]);
        const from = [0, 1, 2].map((j) => j === (self + 1) % 3);
        return net.endpoint(self).exchange(label(0), out, from);
      }),
    );
    expect(received.map((r) => r.map((v) => frVecToBigints(v)))).to.deep.equal([
      [[], [11n], []],
      [[], [], [12n]],
      [[10n], [], []],
    ]);
    expect([0, 1, 2].map((p) => net.stats(p).messagesSent)).to.deep.equal([1, 1, 1]);
    // Awaiting a peer that sends nothing times out, naming it.
    const lonely = await expectRejects(net.endpoint(0).exchange(label(1), [undefined, undefined, undefined], [false, true, false]), "PROTOCOL_TIMEOUT");
    expect(lonely.details["missing"]).to.deep.equal([1]);
    await expectRejects(net.endpoint(0).exchange(label(2), [undefined, undefined, undefined], [true, false] as never), "INTERNAL");
    net.close();
  });

  it("rejects running the same label twice (DUPLICATE_MESSAGE)", async () => {
    const net = new LocalNetwork({ parties: 3, timeoutMs: 50 });
    const first = endpoint(net, 0).exchange(label(0), [[1n], [1n], [1n]]);
    await expectRejects(endpoint(net, 0).exchange(label(0), [[1n], [1n], [1n]]), "DUPLICATE_MESSAGE");
    await expectRejects(first, "PROTOCOL_TIMEOUT");
    net.close();
  });

  it("times out naming the parties that did not send (PROTOCOL_TIMEOUT, retryable)", async () => {
    const net = new LocalNetwork({ parties: 3, timeoutMs: 30 });
    const waiting = endpoint(net, 0).exchange(label(0), [[1n], [1n], [1n]]);
    void endpoint(net, 1).exchange(label(0), [[2n], [2n], [2n]]).catch(() => undefined);
    const error = await expectRejects(waiting, "PROTOCOL_TIMEOUT");
    expect(error.details["missing"]).to.deep.equal([2]);
    expect(error.retryable).to.equal(true);
    net.close();
  });

  it("aborts pending and later exchanges when closed (PROTOCOL_ABORTED)", async () => {
    const net = new LocalNetwork({ parties: 3 });
    const pending = endpoint(net, 0).exchange(label(0), [[1n], [1n], [1n]]);
    net.close();
    await expectRejects(pending, "PROTOCOL_ABORTED");
    await expectRejects(endpoint(net, 1).exchange(label(1), [[1n], [1n], [1n]]), "PROTOCOL_ABORTED");
  });

  it("rejects malformed calls", async () => {
    const net = new LocalNetwork({ parties: 3 });
    await expectRejects(endpoint(net, 0).exchange(label(0), [[1n], [1n]]), "INTERNAL");
    await expectRejects(net.endpoint(0).exchange(label(0), [[1n], [1n], [1n]] as never), "INTERNAL");
    expect(() => net.endpoint(3)).to.throw(ConsortError).with.property("code", "CONFIG_INVALID");
    expect(() => new LocalNetwork({ parties: 0 })).to.throw(ConsortError).with.property("code", "CONFIG_INVALID");
    expect(() => new LocalNetwork({ parties: 3, timeoutMs: 0 })).to.throw(ConsortError).with.property("code", "CONFIG_INVALID");
    net.close();
  });

  it("applies interceptors: corrupt vectors, raw bytes, drops; and records what was delivered", async () => {
    const net = new LocalNetwork({
      parties: 3,
      timeoutMs: 50,
      recordTraffic: true,
      intercept: (m) => {
        if (m.from === 0 && m.to === 1) return frVecAdd(m.payload, frVecFromBigints([1n]));
        if (m.from === 0 && m.to === 2) return new Uint8Array(33);
        if (m.from === 2 && m.to === 1) return null;
        return undefined;
      },
    });
    const results = await Promise.allSettled([0, 1, 2].map((self) => net.endpoint(self).exchange(label(0), [0, 1, 2].map(() => frVecFromBigints([5n])))));
    expect(results[0]!.status).to.equal("fulfilled");
    expect((results[0] as PromiseFulfilledResult<readonly Uint8Array[]>).value.map((v) => frVecToBigints(v))).to.deep.equal([[5n], [5n], [5n]]);
    const at1 = (results[1] as PromiseRejectedResult).reason as ConsortError;
    expect(at1.code).to.equal("PROTOCOL_TIMEOUT"); // party 2's message to 1 was dropped
    expect(at1.details["missing"]).to.deep.equal([2]);
    // The network delivers bytes as they are; checking them is the engine's job (round-batcher.ts).
    const at2 = (results[2] as PromiseFulfilledResult<readonly Uint8Array[]>).value;
    expect(at2[0]).to.deep.equal(new Uint8Array(33));
    const corrupted = net.traffic.find((m) => m.from === 0 && m.to === 1)!;
    expect(frVecToBigints(corrupted.bytes)).to.deep.equal([6n]);
    expect(net.traffic.some((m) => m.from === 2 && m.to === 1)).to.equal(false);
    expect(net.stats(2).messagesSent).to.equal(2); // the dropped message was sent, never received
    expect(net.stats(1).messagesReceived).to.equal(1);
    net.close();
  });

  it("hands the receiver its own copy of the sender's bytes", async () => {
    const net = new LocalNetwork({ parties: 3 });
    const sent = [0, 1, 2].map(() => frVecFromBigints([9n]));
    const exchanges = [0, 1, 2].map((self) => net.endpoint(self).exchange(label(0), self === 0 ? sent : [0, 1, 2].map(() => frVecFromBigints([1n]))));
    sent[1]!.fill(0); // the sender reuses its buffer right after sending
    const received = await Promise.all(exchanges);
    expect(frVecToBigints(received[1]![0]!)).to.deep.equal([9n]);
    net.close();
  });
});
