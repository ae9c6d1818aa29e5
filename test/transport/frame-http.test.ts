import { request } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:net";
import { expect } from "chai";
import fc from "fast-check";
import { PeerChannel } from "../../node/transport/peer-channel.ts";
import { PeerMailbox } from "../../node/transport/peer-mailbox.ts";
import { ConsortError } from "../../node/errors.ts";
import { NodeStore } from "../../node/store/node-store.ts";
import { HttpFrameLink } from "../../node/transport/frame-link.ts";
import type { HttpFrameLinkOptions } from "../../node/transport/frame-link.ts";
import { RecordSplitter } from "../../node/transport/frame-server.ts";
import { createNodeApi, startNodeApi } from "../../node/transport/http-server.ts";
import type { NodeApiHandlers, RunningNodeApi } from "../../node/transport/http-server.ts";
import { labelKey } from "../../node/transport/peer-message.ts";
import { PeerSessions } from "../../node/transport/peer-sessions.ts";
import type { PeerSessionsOptions } from "../../node/transport/peer-sessions.ts";
import { CHAIN_ID, REGISTRY, TASK, World, party, rejection } from "./peer-fixtures.ts";
import type { Party } from "./peer-fixtures.ts";

const handlers: NodeApiHandlers = {
  health: async () => ({ status: "ok" }),
  taskStatus: async () => ({}),
  submitShare: async () => {
    throw new ConsortError("NOT_FOUND", "no shares here");
  },
  deliverMessage: async () => {
    throw new ConsortError("NOT_FOUND", "no messages here");
  },
};

interface HttpNode {
  party: Party;
  sessions: PeerSessions;
  channel: PeerChannel;
  store: NodeStore;
  api: RunningNodeApi;
  /** Streamed POSTs of /v1/frames/stream this node served. */
  streamRequests: () => number;
  /** Upgrades of /v1/frames/stream this node was asked for. */
  upgrades: () => number;
  stop(): Promise<void>;
}

/** A party as a node wires it: node API with the frame routes, sessions, store-then-mailbox delivery, channel. */
async function httpNode(
  p: Party,
  world: World,
  options: { link?: HttpFrameLinkOptions; sessions?: Partial<PeerSessionsOptions>; port?: number; maxRecordBytes?: number; upgradedIdleMs?: number } = {},
): Promise<HttpNode> {
  const store = NodeStore.open(":memory:");
  const mailbox = new PeerMailbox();
  const sessions = new PeerSessions({
    chainId: CHAIN_ID,
    registry: REGISTRY,
    signingKey: p.wallet,
    encryptionPrivateKey: p.encryption.privateKey,
    lookupParty: world.lookup,
    taskParties: world.parties,
    deliver: ({ label, from, payload }) => {
      if (store.putMessage(label.taskId, label.round, label.gate, from, payload) === "conflict") {
        throw new ConsortError("DUPLICATE_MESSAGE", `${from} sent another message for ${labelKey(label)}`);
      }
      mailbox.deliver(labelKey(label), from, payload);
    },
    timeoutMs: 5_000,
    link: new HttpFrameLink(options.link),
    ...options.sessions,
  });
  const channel = new PeerChannel({ sessions, store, mailbox, timeoutMs: 5_000 });
  const api = await startNodeApi(
    createNodeApi(handlers, { maxMessageBytes: 1024 }),
    { host: "127.0.0.1", port: options.port ?? 0 },
    {
      frames: {
        receive: (record) => sessions.receive(record),
        maxRecordBytes: options.maxRecordBytes ?? 8 * 1024 * 1024,
        ...(options.upgradedIdleMs === undefined ? {} : { upgradedIdleMs: options.upgradedIdleMs }),
      },
    },
  );
  let streams = 0;
  let upgrades = 0;
  api.server.on("request", (req) => {
    if (req.url === "/v1/frames/stream") streams++;
  });
  api.server.on("upgrade", (req) => {
    if (req.url === "/v1/frames/stream") upgrades++;
  });
  world.register(p, api.url);
  return {
    party: p,
    sessions,
    channel,
    store,
    api,
    streamRequests: () => streams,
    upgrades: () => upgrades,
    async stop() {
      mailbox.close("test over");
      await sessions.close(0);
      await api.close();
      store.close();
    },
  };
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function lengthPrefix(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** What party i sends party j in round r: distinct and checkable. */
function payloadFor(i: number, j: number, r: number, elements: number): Uint8Array {
  const out = new Uint8Array(32 * elements);
  for (let k = 0; k < out.length; k++) out[k] = (i * 31 + j * 17 + r * 7 + k) & 0xff;
  return out;
}

async function rounds(nodes: readonly HttpNode[], count: number, elements: number, taskId = TASK): Promise<void> {
  const parties = nodes.map((n) => n.party.wallet.address);
  await Promise.all(
    nodes.map(async (node, i) => {
      for (let r = 1; r <= count; r++) {
        const label = { taskId, round: r, gate: `mul:${r}` };
        const received = await node.channel.exchange(label, parties, parties.map((_, j) => payloadFor(i, j, r, elements)));
        received.forEach((bytes, j) => {
          expect(Buffer.from(bytes).equals(Buffer.from(payloadFor(j, i, r, elements))), `round ${r}, from ${j} to ${i}`).to.equal(true);
        });
      }
    }),
  );
}

async function post(url: string, path: string, contentType: string, body: Uint8Array): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
  const res = await fetch(`${url}${path}`, { method: "POST", headers: { "content-type": contentType }, body });
  const text = await res.text();
  return { status: res.status, json: text === "" ? undefined : (JSON.parse(text) as Record<string, unknown>) };
}

describe("transport/frame-http (real HTTP on 127.0.0.1)", function () {
  this.timeout(30_000);
  const [alice, bob, carol, oscar] = [party("alice", 0x61), party("bob", 0x62), party("carol", 0x63), party("oscar", 0x6f)] as const;
  let world: World;
  let nodes: HttpNode[] = [];

  const start = async (options: Parameters<typeof httpNode>[2] = {}) => {
    world = new World();
    nodes = [await httpNode(alice, world, options), await httpNode(bob, world, options), await httpNode(carol, world, options)];
    world.tasks.set(TASK, nodes.map((n) => n.party.wallet.address));
  };
  afterEach(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    nodes = [];
  });

  for (const mode of ["upgrade", "stream", "request"] as const) {
    it(`runs sequential all-to-all rounds between three parties (${mode} mode), stores every message and settles`, async () => {
      await start({ link: { mode } });
      await rounds(nodes, 40, 1);
      for (const n of nodes) await n.sessions.settled(TASK, 5_000);
      const stored = nodes[1]!.store.getMessage(TASK, 7, "mul:7", alice.wallet.address);
      expect(Buffer.from(stored!).equals(Buffer.from(payloadFor(0, 1, 7, 1)))).to.equal(true);
      // Each node serves one stream per peer, of the kind the mode asks for.
      expect(nodes.map((n) => n.upgrades())).to.deep.equal(mode === "upgrade" ? [2, 2, 2] : [0, 0, 0]);
      expect(nodes.map((n) => n.streamRequests())).to.deep.equal(mode === "stream" ? [2, 2, 2] : [0, 0, 0]);
    });
  }

  it("falls back to a streamed POST for a peer that refuses the upgrade, then to a POST per frame", async () => {
    await start();
    // Bob's server answers every upgrade with 404, like a node from before upgraded streams.
    const server = nodes[1]!.api.server;
    server.removeAllListeners("upgrade");
    server.on("upgrade", (_req, socket: import("node:stream").Duplex) => {
      socket.end("HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}");
    });
    const send = (round: number) => nodes[0]!.sessions.send({ taskId: TASK, round, gate: "g" }, bob.wallet.address, new Uint8Array(32).fill(round));
    await send(1);
    await send(2);
    expect(nodes[1]!.streamRequests()).to.equal(1);
    expect(nodes[1]!.store.getMessage(TASK, 1, "g", alice.wallet.address)?.[0]).to.equal(1);
    expect(nodes[1]!.store.getMessage(TASK, 2, "g", alice.wallet.address)?.[0]).to.equal(2);
    // Carol serves neither upgrades nor streams: single POSTs.
    const carolServer = nodes[2]!.api.server;
    carolServer.removeAllListeners("upgrade");
    carolServer.on("upgrade", (_req, socket: import("node:stream").Duplex) => {
      socket.end("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    });
    const [serve] = carolServer.listeners("request") as ((req: IncomingMessage, res: ServerResponse) => void)[];
    carolServer.removeAllListeners("request");
    carolServer.on("request", (req: IncomingMessage, res: ServerResponse) => {
      if (req.url !== "/v1/frames/stream") return serve!(req, res);
      req.resume();
      res.writeHead(404, { "content-type": "application/json" });
      res.end("{}");
    });
    await nodes[0]!.sessions.send({ taskId: TASK, round: 3, gate: "g" }, carol.wallet.address, new Uint8Array(32).fill(3));
    expect(nodes[2]!.store.getMessage(TASK, 3, "g", alice.wallet.address)?.[0]).to.equal(3);
  });

  it("answers a bad upgrade with an HTTP error and closes the connection", async () => {
    await start();
    const url = new URL(nodes[0]!.api.url);
    const upgradeTo = (path: string, protocol: string, method = "GET") =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ hostname: url.hostname, port: url.port, path, method, headers: { connection: "Upgrade", upgrade: protocol } });
        req.on("upgrade", () => reject(new Error("upgraded")));
        req.on("response", (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.end();
      });
    const wrongProtocol = await upgradeTo("/v1/frames/stream", "websocket");
    expect([wrongProtocol.status, (JSON.parse(wrongProtocol.body) as { error: { code: string; details: { field: string } } }).error.details.field]).to.deep.equal([400, "upgrade"]);
    expect((await upgradeTo("/v1/frames/stream", "consort-frames/1", "PUT")).status).to.equal(405);
    const elsewhere = await upgradeTo("/v1/health", "consort-frames/1");
    expect([elsewhere.status, (JSON.parse(elsewhere.body) as { error: { code: string } }).error.code]).to.deep.equal([404, "NOT_FOUND"]);
  });

  it("closes an upgraded connection that carries nothing for the idle time, and keeps a busy one", async () => {
    // Clients that keep streams open far longer than the server's idle time.
    await start({ upgradedIdleMs: 300, link: { idleStreamMs: 60_000 } });
    await rounds(nodes, 1, 1);
    expect(nodes.map((n) => n.upgrades())).to.deep.equal([2, 2, 2]);
    // Busy: a round every ~50 ms for over two idle times rides the same connections.
    const task = (id: bigint) => {
      world.tasks.set(id, nodes.map((n) => n.party.wallet.address));
      return id;
    };
    for (let r = 0; r < 12; r++) {
      await rounds(nodes, 1, 1, task(TASK + 1n + BigInt(r)));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(nodes.map((n) => n.upgrades())).to.deep.equal([2, 2, 2]);
    // Idle for more than twice the idle time: the servers close them, and the next round opens new ones.
    await new Promise((resolve) => setTimeout(resolve, 750));
    await rounds(nodes, 1, 1, task(TASK + 20n));
    expect(nodes.map((n) => n.upgrades())).to.deep.equal([4, 4, 4]);
  });

  it("carries multi-megabyte frames intact over a stream", async () => {
    await start();
    await rounds(nodes, 2, 40_000);
  });

  it("keeps serving the express routes, and answers bad frame requests with JSON errors", async () => {
    await start({ maxRecordBytes: 4_096 });
    const url = nodes[0]!.api.url;
    expect(((await (await fetch(`${url}/v1/health`)).json()) as Record<string, unknown>).status).to.equal("ok");
    const wrongType = await post(url, "/v1/frames", "text/plain", new Uint8Array(300));
    expect([wrongType.status, (wrongType.json?.error as Record<string, unknown>).code]).to.deep.equal([415, "BAD_REQUEST"]);
    const garbage = await post(url, "/v1/frames", "application/octet-stream", new Uint8Array(300).fill(1));
    expect([garbage.status, (garbage.json?.error as Record<string, unknown>).code]).to.deep.equal([400, "BAD_REQUEST"]);
    const oversize = await post(url, "/v1/frames", "application/octet-stream", new Uint8Array(5_000));
    expect([oversize.status, (oversize.json?.error as Record<string, unknown>).code]).to.deep.equal([413, "BAD_REQUEST"]);
    const streamWrongType = await post(url, "/v1/frames/stream", "text/plain", new Uint8Array(8));
    expect(streamWrongType.status).to.equal(415);
    const get = await fetch(`${url}/v1/frames`);
    expect(get.status).to.equal(404);
    expect(((await get.json()) as { error: { code: string } }).error.code).to.equal("NOT_FOUND");
  });

  it("acknowledges an unreadable stream record with its error and ends the stream", async () => {
    await start({ maxRecordBytes: 4_096 });
    const ack = async (prefix: Buffer) =>
      new Promise<Buffer>((resolve, reject) => {
        const req = request(`${nodes[0]!.api.url}/v1/frames/stream`, { method: "POST", headers: { "content-type": "application/octet-stream" } }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve(Buffer.concat(chunks)));
        });
        req.on("error", reject);
        req.write(prefix);
      });
    for (const [length, status] of [[0, 400], [5_000, 413]] as const) {
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32BE(length);
      const body = await ack(prefix);
      expect(body.readUInt32BE(0)).to.equal(0);
      expect(body.readUInt16BE(4)).to.equal(status);
      const json = JSON.parse(body.toString("utf8", 10, 10 + body.readUInt32BE(6))) as { error: { code: string } };
      expect(json.error.code).to.equal("BAD_REQUEST");
    }
  });

  it("reports a peer that is down as retryable PEER_UNREACHABLE after the deadline", async () => {
    await start({ sessions: { timeoutMs: 400 } });
    world.register(bob, `http://127.0.0.1:${await deadPort()}`);
    const started = Date.now();
    const error = await rejection(nodes[0]!.sessions.send({ taskId: TASK, round: 1, gate: "g" }, bob.wallet.address, new Uint8Array(32)));
    expect(error.code).to.equal("PEER_UNREACHABLE");
    expect(error.retryable).to.equal(true);
    expect(error.details.to).to.equal(bob.wallet.address);
    expect(Date.now() - started).to.be.within(250, 3_000);
    // The round fails with it too, long before its receive would have timed out.
    const exchange = await rejection(
      nodes[0]!.channel.exchange({ taskId: TASK, round: 2, gate: "g" }, nodes.map((n) => n.party.wallet.address), [new Uint8Array(32), new Uint8Array(32), new Uint8Array(32)]),
    );
    expect(exchange.code).to.equal("PEER_UNREACHABLE");
  });

  it("retries a peer that does not know the task yet, and delivers once it does", async () => {
    await start();
    const late = 99n;
    setTimeout(() => world.tasks.set(late, nodes.map((n) => n.party.wallet.address)), 300);
    const retries: string[] = [];
    const a = new PeerSessions({
      chainId: CHAIN_ID,
      registry: REGISTRY,
      signingKey: alice.wallet,
      encryptionPrivateKey: alice.encryption.privateKey,
      lookupParty: world.lookup,
      taskParties: world.parties,
      timeoutMs: 5_000,
      onRetry: ({ error }) => retries.push(String(error.details.remoteCode)),
    });
    await a.send({ taskId: late, round: 1, gate: "g" }, bob.wallet.address, new Uint8Array(32).fill(4));
    expect(retries.length).to.be.greaterThan(0);
    expect(new Set(retries)).to.deep.equal(new Set(["UNKNOWN_TASK"]));
    expect(nodes[1]!.store.getMessage(late, 1, "g", alice.wallet.address)?.[0]).to.equal(4);
    await a.close(0);
  });

  it("turns a refusal into PEER_REJECTED carrying the remote code, without retrying", async () => {
    await start();
    const outsider = await httpNode(oscar, world);
    nodes.push(outsider);
    const error = await rejection(outsider.sessions.send({ taskId: TASK, round: 1, gate: "g" }, bob.wallet.address, new Uint8Array(32)));
    expect(error.code).to.equal("PEER_REJECTED");
    expect(error.details.remoteCode).to.equal("NOT_A_PARTY");
    expect(error.retryable).to.equal(false);
  });

  it("reconnects after the peer restarts, and ends idle streams", async () => {
    await start({ link: { idleStreamMs: 100 } });
    await rounds(nodes, 3, 1);
    // Bob restarts on the same port; his new process has fresh sessions and an empty store.
    const port = Number(new URL(nodes[1]!.api.url).port);
    await nodes[1]!.stop();
    nodes[1] = await httpNode(bob, world, { port, link: { idleStreamMs: 100 } });
    await nodes[0]!.sessions.send({ taskId: TASK, round: 10, gate: "g" }, bob.wallet.address, new Uint8Array(32).fill(10));
    expect(nodes[1]!.store.getMessage(TASK, 10, "g", alice.wallet.address)?.[0]).to.equal(10);
    // Idle streams end (after the acknowledgement delay and idleStreamMs); the next frame opens a new one.
    const before = nodes[1]!.upgrades();
    await new Promise((r) => setTimeout(r, 400));
    await nodes[0]!.sessions.send({ taskId: TASK, round: 11, gate: "g" }, bob.wallet.address, new Uint8Array(32));
    expect(nodes[1]!.upgrades()).to.equal(before + 1);
  });

  it("splits a stream into its records whatever the chunk boundaries (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 10 }), (records, cuts) => {
        const stream = Buffer.concat(records.flatMap((r) => [lengthPrefix(r.length), Buffer.from(r)]));
        const splitter = new RecordSplitter(1_000);
        const out: Buffer[] = [];
        let at = 0;
        let k = 0;
        while (at < stream.length) {
          const n = cuts[k++ % cuts.length]!;
          splitter.push(stream.subarray(at, at + n), (rec) => out.push(Buffer.from(rec)));
          at += n;
        }
        expect(splitter.partial).to.equal(false);
        expect(out.map((b) => b.toString("hex"))).to.deep.equal(records.map((r) => Buffer.from(r).toString("hex")));
      }),
      { seed: 42, numRuns: 200 },
    );
    const half = new RecordSplitter(10);
    half.push(Buffer.from([0, 0]), () => {});
    expect(half.partial).to.equal(true);
    const codes = [lengthPrefix(0), lengthPrefix(11)].map((prefix) => {
      try {
        new RecordSplitter(10).push(prefix, () => {});
      } catch (error) {
        return [(error as ConsortError).code, (error as ConsortError).details.status];
      }
      return undefined;
    });
    expect(codes).to.deep.equal([
      ["BAD_REQUEST", 400],
      ["BAD_REQUEST", 413],
    ]);
  });
});
