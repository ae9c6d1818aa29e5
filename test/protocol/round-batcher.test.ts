import { expect } from "chai";
import { ConsortError } from "../../node/errors.ts";
import { frVecFromBigints, frVecToBigints } from "../../node/math/fr-vec.ts";
import { deterministicRng } from "../../node/math/rng.ts";
import { LocalNetwork } from "../../node/protocol/local-network.ts";
import { PROGRAM_GATE, RoundBatcher } from "../../node/protocol/round-batcher.ts";
import { RNG_CHUNK_BYTES, chunkedRng, type PartyContext } from "../../node/protocol/round-network.ts";

const vec = (...xs: bigint[]): Uint8Array => frVecFromBigints(xs);

function contexts(n: number, network: LocalNetwork): PartyContext[] {
  return Array.from({ length: n }, (_, self) => ({ self, parties: n, threshold: 1, rng: deterministicRng(`b${self}`), network: network.endpoint(self) }));
}

describe("RoundBatcher", () => {
  it("merges every request filed before the flush into one message per peer, in (gate, sequence) order", async () => {
    const network = new LocalNetwork({ parties: 3, recordTraffic: true });
    const batchers = contexts(3, network).map((ctx) => new RoundBatcher(ctx));
    const results = await Promise.all(
      batchers.map(async (b, self) => {
        // Filed in a different order at each party: the order on the wire must not depend on it.
        const asks = [
          { gate: 7, kind: "mul", value: 70n + BigInt(self) },
          { gate: 2, kind: "open", value: 20n + BigInt(self) },
          { gate: PROGRAM_GATE, kind: "prep", value: 100n + BigInt(self) },
        ];
        if (self === 1) asks.reverse();
        const replies = await Promise.all(
          asks.map((a) => b.request({ gate: a.gate, kind: a.kind, send: [0, 1, 2].map(() => vec(a.value)), expect: [1, 1, 1] }).then((r) => [a.gate, r.map((v) => frVecToBigints(v)[0])] as const)),
        );
        return { replies: new Map(replies), rounds: b.rounds };
      }),
    );
    for (const [self, { replies, rounds }] of results.entries()) {
      expect(rounds).to.equal(1);
      expect(replies.get(7)).to.deep.equal([70n, 71n, 72n]);
      expect(replies.get(2)).to.deep.equal([20n, 21n, 22n]);
      expect(replies.get(PROGRAM_GATE)).to.deep.equal([100n, 101n, 102n]);
      expect(network.stats(self).messagesSent).to.equal(2);
    }
    // One label for the round: the kinds and the range of gates served.
    expect(new Set(network.traffic.map((m) => m.label))).to.deep.equal(new Set(["0/mul+open+prep:2-7"]));
    // On the wire: prep (gate -1), then gate 2, then gate 7.
    const from0 = network.traffic.find((m) => m.from === 0 && m.to === 1)!;
    expect(frVecToBigints(from0.bytes)).to.deep.equal([100n, 20n, 70n]);
    network.close();
  });

  it("waits for every task that can still run without the network: a request filed after a long chain of awaits shares the round", async () => {
    const network = new LocalNetwork({ parties: 3, recordTraffic: true });
    // Per party, how many promise hops the late task takes before it files (different at each party),
    // and where the run starts from: synchronous code, a microtask, a tick.
    const hops = [1, 200, 1_000];
    const starts: ((f: () => void) => void)[] = [(f) => f(), (f) => queueMicrotask(f), (f) => process.nextTick(f)];
    await Promise.all(
      contexts(3, network).map(
        (ctx, self) =>
          new Promise<void>((done, fail) => {
            starts[self]!(() => {
              const b = new RoundBatcher(ctx);
              const one = [0, 1, 2].map(() => vec(1n));
              const early = b.request({ gate: 1, kind: "mul", send: one, expect: [1, 1, 1] });
              const late = (async () => {
                for (let i = 0; i < hops[self]!; i++) await Promise.resolve();
                return b.request({ gate: 2, kind: "mul", send: one, expect: [1, 1, 1] });
              })();
              Promise.all([early, late])
                .then(() => {
                  expect(b.rounds).to.equal(1);
                  done();
                })
                .catch(fail);
            });
          }),
      ),
    );
    expect([...new Set(network.traffic.map((m) => m.label))]).to.deep.equal(["0/mul:1-2"]);
    // One message per peer: both requests travelled together.
    for (let self = 0; self < 3; self++) expect(network.stats(self).messagesSent).to.equal(2);
    network.close();
  });

  it("runs requests filed after a round in the next round, with the next label", async () => {
    const network = new LocalNetwork({ parties: 3, recordTraffic: true });
    await Promise.all(
      contexts(3, network).map(async (ctx) => {
        const b = new RoundBatcher(ctx);
        const one = [0, 1, 2].map(() => vec(1n));
        await b.request({ gate: 0, kind: "mul", send: one, expect: [1, 1, 1] });
        await b.request({ gate: 4, kind: "open", send: one, expect: [1, 1, 1] });
        expect(b.rounds).to.equal(2);
      }),
    );
    expect([...new Set(network.traffic.map((m) => m.label))]).to.deep.equal(["0/mul:0", "1/open:4"]);
    network.close();
  });

  it("lets parties send nothing to some peers and different amounts to others", async () => {
    const network = new LocalNetwork({ parties: 3 });
    const got = await Promise.all(
      contexts(3, network).map((ctx) => {
        const b = new RoundBatcher(ctx);
        // Only party 0 sends (two elements to each); everyone expects that.
        const send = ctx.self === 0 ? [vec(1n, 2n), vec(3n, 4n), vec(5n, 6n)] : [undefined, undefined, undefined];
        return b.request({ gate: 1, kind: "mul", send, expect: [2, 0, 0] });
      }),
    );
    expect(frVecToBigints(got[2]![0]!)).to.deep.equal([5n, 6n]);
    expect(got[2]![1]!.length).to.equal(0);
    network.close();
  });

  it("builds lazy sends in batch order when the round goes out, and runs every onDelivered hook before any request resumes", async () => {
    const network = new LocalNetwork({ parties: 3 });
    const logs = await Promise.all(
      contexts(3, network).map(async (ctx) => {
        const b = new RoundBatcher(ctx);
        const log: string[] = [];
        const everyone = (x: bigint) => [vec(x), vec(x), vec(x)];
        const lazy = (gate: number) => () => {
          log.push(`send ${gate}/${b.nextSequence(gate)}`);
          return everyone(BigInt(gate));
        };
        // Filed out of gate order; the batch runs in (gate, sequence) order.
        expect(b.nextSequence(7)).to.equal(0);
        const late = b.request({ gate: 7, kind: "mul", send: lazy(7), expect: [1, 1, 1], onDelivered: (r) => log.push(`hook 7 ${frVecToBigints(r[(ctx.self + 1) % 3]!)}`) });
        expect(b.nextSequence(7)).to.equal(1);
        const early = b.request({ gate: 2, kind: "mul", send: lazy(2), expect: [1, 1, 1], onDelivered: () => log.push("hook 2") });
        expect(log).to.deep.equal([]);
        await Promise.all([late.then(() => log.push("resume 7")), early.then(() => log.push("resume 2"))]);
        return log;
      }),
    );
    for (const log of logs) expect(log).to.deep.equal(["send 2/1", "send 7/1", "hook 2", "hook 7 7", "resume 2", "resume 7"]);
    network.close();
  });

  it("rejects a message of the wrong length or with a non-canonical element, naming the sender; later requests fail too", async () => {
    for (const bad of [new Uint8Array(64 + 32), new Uint8Array(64).fill(0xff), new Uint8Array(63)]) {
      const network = new LocalNetwork({ parties: 3, intercept: (m) => (m.from === 2 && m.to === 0 ? bad : undefined) });
      const ctxs = contexts(3, network);
      const b0 = new RoundBatcher(ctxs[0]!);
      const all = ctxs.map((ctx, i) => (i === 0 ? b0 : new RoundBatcher(ctx)).request({ gate: 3, kind: "open", send: [0, 1, 2].map(() => vec(1n, 2n)), expect: [2, 2, 2] }));
      const [first] = await Promise.allSettled(all);
      expect(first!.status).to.equal("rejected");
      const error = (first as PromiseRejectedResult).reason as ConsortError;
      expect(error.code).to.equal("PROTOCOL_INVALID_MESSAGE");
      expect(error.details["party"]).to.equal(2);
      const later = await b0.request({ gate: 4, kind: "open", send: [0, 1, 2].map(() => vec(1n)), expect: [1, 1, 1] }).catch((e: unknown) => e);
      expect((later as ConsortError).code).to.equal("PROTOCOL_INVALID_MESSAGE");
      network.close();
    }
  });

  it("refuses requests that are not sized for the parties (INTERNAL)", async () => {
    const network = new LocalNetwork({ parties: 3 });
    const b = new RoundBatcher(contexts(3, network)[0]!);
    const sizes = await b.request({ gate: 0, kind: "mul", send: [vec(1n), vec(1n)], expect: [1, 1] }).catch((e: unknown) => e);
    expect((sizes as ConsortError).code).to.equal("INTERNAL");
    const own = await b.request({ gate: 0, kind: "mul", send: [vec(1n), vec(1n), vec(1n)], expect: [2, 1, 1] }).catch((e: unknown) => e);
    expect((own as ConsortError).code).to.equal("INTERNAL");
    network.close();
  });
});

describe("chunkedRng", () => {
  it("serves large requests in chunks the CSPRNG accepts, giving the same stream as one call", () => {
    const calls: number[] = [];
    const inner = deterministicRng("chunks");
    const limited = (bytes: number): Uint8Array => {
      if (bytes > RNG_CHUNK_BYTES) throw new RangeError("too large");
      calls.push(bytes);
      return inner(bytes);
    };
    const big = chunkedRng(limited)(2 * RNG_CHUNK_BYTES + 5);
    expect(calls).to.deep.equal([RNG_CHUNK_BYTES, RNG_CHUNK_BYTES, 5]);
    expect(big).to.deep.equal(deterministicRng("chunks")(2 * RNG_CHUNK_BYTES + 5));
    expect(() => chunkedRng(() => new Uint8Array(1))(RNG_CHUNK_BYTES + 1)).to.throw(ConsortError);
  });
});
