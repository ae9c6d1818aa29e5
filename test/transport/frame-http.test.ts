import { request } from "node:http";
import { connect, createServer } from "node:net";
import type { Socket } from "node:net";
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
import { labelKey } from "../../node/transport/message-label.ts";
import { createLinkHello } from "../../node/transport/link-hello.ts";
import { StaticSecrets } from "../../node/transport/session-keys.ts";
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
};

interface HttpNode {
  party: Party;
  sessions: PeerSessions;
  channel: PeerChannel;
  store: NodeStore;
  api: RunningNodeApi;
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
    createNodeApi(handlers),
    { host: "127.0.0.1", port: options.port ?? 0 },
    {
      frames: {
        receive: (record) => sessions.receive(record),
        authenticate: (hello) => sessions.authenticateLink(hello),
        maxRecordBytes: options.maxRecordBytes ?? 8 * 1024 * 1024,
        ...(options.upgradedIdleMs === undefined ? {} : { upgradedIdleMs: options.upgradedIdleMs }),
      },
    },
  );
  let upgrades = 0;
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

/** A hello from `from` to `to` for TASK, as their sessions would make it. */
function helloFrom(from: Party, to: Party, taskId = TASK): string {
  const shared = new StaticSecrets(from.encryption.privateKey).sharedSecret(to.encryption.publicKey);
  return createLinkHello({ chainId: CHAIN_ID, registry: REGISTRY, taskId, from: from.wallet.address, to: to.wallet.address }, shared);
}

/** Sends an upgrade request with `headers` on a raw socket; resolves with the socket and what came back first. */
function rawUpgrade(url: string, headers: Record<string, string>): Promise<{ socket: Socket; head: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    socket.write(`GET /v1/frames/stream HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: consort-frames/1\r\n${lines}\r\n`);
    socket.once("data", (chunk: Buffer) => resolve({ socket, head: chunk.toString("latin1") }));
    socket.once("error", reject);
  });
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

  it("runs sequential all-to-all rounds between three parties, stores every message and settles", async () => {
    await start();
    await rounds(nodes, 40, 1);
    for (const n of nodes) await n.sessions.settled(TASK, 5_000);
    const stored = nodes[1]!.store.getMessage(TASK, 7, "mul:7", alice.wallet.address);
    expect(Buffer.from(stored!).equals(Buffer.from(payloadFor(0, 1, 7, 1)))).to.equal(true);
    // Each node serves one upgraded stream per peer.
    expect(nodes.map((n) => n.upgrades())).to.deep.equal([2, 2, 2]);
  });

  it("answers 101 only to a peer whose link hello authenticates it", async () => {
    await start();
    const url = nodes[0]!.api.url;
    const refused = async (headers: Record<string, string>) => {
      const { socket, head } = await rawUpgrade(url, headers);
      socket.destroy();
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]);
      const code = (JSON.parse(head.slice(head.indexOf("\r\n\r\n") + 4)) as { error: { code: string } }).error.code;
      return [status, code];
    };
    expect(await refused({})).to.deep.equal([401, "BAD_SIGNATURE"]);
    expect(await refused({ "consort-link-hello": "garbage" })).to.deep.equal([400, "BAD_REQUEST"]);
    // Oscar is no party of the task; bob's hello to carol is not addressed to alice.
    expect(await refused({ "consort-link-hello": helloFrom(oscar, alice) })).to.deep.equal([403, "NOT_A_PARTY"]);
    expect(await refused({ "consort-link-hello": helloFrom(bob, carol) })).to.deep.equal([403, "NOT_A_PARTY"]);
    // Claiming to be bob without bob's key does not authenticate.
    const shared = new StaticSecrets(oscar.encryption.privateKey).sharedSecret(alice.encryption.publicKey);
    const wrongKey = createLinkHello({ chainId: CHAIN_ID, registry: REGISTRY, taskId: TASK, from: bob.wallet.address, to: alice.wallet.address }, shared);
    expect(await refused({ "consort-link-hello": wrongKey })).to.deep.equal([401, "BAD_SIGNATURE"]);
    expect(await refused({ "consort-link-hello": helloFrom(bob, alice, 12345n) })).to.deep.equal([404, "UNKNOWN_TASK"]);
    // A good hello is answered 101, once: the same hello again is a replay.
    const hello = helloFrom(bob, alice);
    const good = await rawUpgrade(url, { "consort-link-hello": hello });
    expect(good.head).to.match(/^HTTP\/1\.1 101 /);
    good.socket.destroy();
    expect(await refused({ "consort-link-hello": hello })).to.deep.equal([401, "BAD_SIGNATURE"]);
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
    // The per-frame and streamed POST routes are gone.
    for (const path of ["/v1/frames", "/v1/frames/stream"]) {
      const gone = await post(url, path, "application/octet-stream", new Uint8Array(300));
      expect([gone.status, (gone.json?.error as Record<string, unknown>).code]).to.deep.equal([404, "NOT_FOUND"]);
    }
  });

  it("acknowledges an unreadable stream record with its error and ends the stream", async () => {
    await start({ maxRecordBytes: 4_096 });
    const ack = async (prefix: Buffer) => {
      const { socket, head } = await rawUpgrade(nodes[0]!.api.url, { "consort-link-hello": helloFrom(bob, alice) });
      expect(head).to.match(/^HTTP\/1\.1 101 /);
      const chunks: Buffer[] = [];
      const firstAt = head.indexOf("\r\n\r\n") + 4;
      if (firstAt < head.length) chunks.push(Buffer.from(head.slice(firstAt), "latin1"));
      return new Promise<Buffer>((resolve) => {
        socket.on("data", (c: Buffer) => chunks.push(c));
        socket.on("close", () => resolve(Buffer.concat(chunks)));
        socket.write(prefix);
      });
    };
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
