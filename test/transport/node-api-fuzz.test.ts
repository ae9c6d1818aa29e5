import { get } from "node:http";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { expect } from "chai";
import fc from "fast-check";
import { ConsortError } from "../../node/errors.ts";
import { createNodeApi, startNodeApi } from "../../node/transport/http-server.ts";
import type { RunningNodeApi } from "../../node/transport/http-server.ts";
import { parseShareSubmission } from "../../node/transport/share-submission.ts";
import { PeerSessions } from "../../node/transport/peer-sessions.ts";
import { CHAIN_ID, REGISTRY, TASK, World, party } from "./peer-fixtures.ts";

/** Generated requests, each on its own connection. */
const REQUESTS = 10_000;
/** Connections in flight at once (held idle and half-open ones come on top). */
const CONCURRENCY = 48;
const SHARE_LIMIT = 8 * 1024;

/** One generated piece of abuse: the bytes to write, and whether to leave the socket open without waiting for an answer. */
interface Abuse {
  bytes: Buffer;
  hold: boolean;
}

const methods = fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW", "get");
const paths = fc.oneof(
  fc.constantFrom("/v1/health", "/v1/tasks/5", "/v1/tasks/5/shares", "/v1/tasks/6/shares", "/v1/tasks/5/outputs", "/v1/programs/0x12", "/v1/messages", "/v1/frames", "/v1/frames/stream", "/", "/v1/tasks/%E0%A4%A/shares", "/v1/tasks/99999999999999999999999999999999999999999999999999999999999999999999999999999999/shares"),
  fc.string({ maxLength: 40 }).map((s) => `/${encodeURIComponent(s)}`),
);
const headerValue = fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, ""));
const extraHeaders = fc.array(fc.tuple(fc.constantFrom("content-type", "content-encoding", "transfer-encoding", "x-junk", "upgrade", "connection", "expect"), headerValue), { maxLength: 4 });
const contentType = fc.constantFrom("application/json", "application/json; charset=latin1", "text/plain", "application/octet-stream", "");
const encoding = fc.constantFrom("identity", "gzip", "deflate", "br", "compress", "gzip, br");

function request(method: string, path: string, headers: Array<[string, string]>, body: Buffer, declared?: number): Buffer {
  const lines = [`${method} ${path} HTTP/1.1`, "host: fuzz"];
  for (const [k, v] of headers) lines.push(`${k}: ${v}`);
  lines.push(`content-length: ${declared ?? body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), body]);
}

const abuse: fc.Arbitrary<Abuse> = fc.oneof(
  // Any method, path and headers, with or without a body.
  fc.record({ m: methods, p: paths, h: extraHeaders, b: fc.uint8Array({ maxLength: 256 }) }).map(({ m, p, h, b }) => ({ bytes: request(m, p, h, Buffer.from(b)), hold: false })),
  // Share submissions: bad JSON, random JSON, wrong types.
  fc.record({ t: contentType, j: fc.oneof(fc.json(), fc.string({ maxLength: 200 })) }).map(({ t, j }) => ({
    bytes: request("POST", "/v1/tasks/5/shares", t === "" ? [] : [["content-type", t]], Buffer.from(j)),
    hold: false,
  })),
  // Oversized: declared beyond the limit, or sent beyond it, or declared huge for an unknown task.
  fc.record({ n: fc.integer({ min: SHARE_LIMIT + 1, max: 4 * SHARE_LIMIT }), task: fc.constantFrom(5, 6), lie: fc.boolean() }).map(({ n, task, lie }) => ({
    bytes: request("POST", `/v1/tasks/${task}/shares`, [["content-type", "application/json"]], Buffer.alloc(lie ? 64 : n, 0x20), lie ? 100_000_000 : n),
    hold: false,
  })),
  // Compressed bodies: corrupt, truncated, or a bomb.
  fc.record({ e: encoding, kind: fc.constantFrom("random", "truncated", "bomb"), b: fc.uint8Array({ minLength: 1, maxLength: 200 }) }).map(({ e, kind, b }) => {
    const plain = Buffer.from(JSON.stringify({ junk: Buffer.from(b).toString("hex") }));
    const body =
      kind === "random" ? Buffer.from(b)
      : kind === "truncated" ? (e === "br" ? brotliCompressSync(plain) : gzipSync(plain)).subarray(0, Math.max(1, b.length % 30))
      : e === "br" ? brotliCompressSync(Buffer.alloc(64 * SHARE_LIMIT, 0x20)) : gzipSync(Buffer.alloc(64 * SHARE_LIMIT, 0x20));
    return { bytes: request("POST", "/v1/tasks/5/shares", [["content-type", "application/json"], ["content-encoding", e]], body), hold: false };
  }),
  // Half-sent headers and idle sockets, left open.
  fc.record({ cut: fc.integer({ min: 0, max: 30 }) }).map(({ cut }) => ({ bytes: Buffer.from("GET /v1/health HTTP/1.1\r\nhost: fuzz\r\nx-slow: 1".slice(0, cut), "latin1"), hold: true })),
  // Frame stream upgrades with no, bad or random hellos, then garbage on the socket.
  fc.record({ hello: fc.option(fc.oneof(fc.base64String({ maxLength: 300 }), fc.string({ maxLength: 50 }).map((s) => s.replace(/[\r\n]/g, "")))), tail: fc.uint8Array({ maxLength: 512 }) }).map(({ hello, tail }) => ({
    bytes: Buffer.concat([
      Buffer.from(`GET /v1/frames/stream HTTP/1.1\r\nhost: fuzz\r\nconnection: Upgrade\r\nupgrade: consort-frames/1\r\n${hello === null ? "" : `consort-link-hello: ${hello}\r\n`}\r\n`, "latin1"),
      Buffer.from(tail),
    ]),
    hold: false,
  })),
  // Raw garbage.
  fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => ({ bytes: Buffer.from(b), hold: false })),
);

/** Writes `bytes` on a new connection; resolves with the status line codes seen once the server closes it or answers. */
function exchange(port: number, bytes: Buffer): Promise<number[]> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    const done = () => {
      socket.destroy();
      resolve([...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])));
    };
    socket.setTimeout(3_000, done);
    socket.on("data", (c: Buffer) => {
      text += c.toString("latin1");
      // One answer is all a single request gets; an idle keep-alive socket is not waited out.
      if (/\r\n\r\n/.test(text) && !/content-length: [1-9]/i.test(text.split("\r\n\r\n")[0]!)) done();
      else if (/content-length: (\d+)/i.test(text)) {
        const length = Number(/content-length: (\d+)/i.exec(text)![1]);
        const at = text.indexOf("\r\n\r\n");
        if (at >= 0 && text.length - at - 4 >= length) done();
      }
    });
    socket.on("error", done);
    socket.on("close", done);
    socket.write(bytes);
  });
}

function health(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = get({ host: "127.0.0.1", port, path: "/v1/health", agent: false, timeout: 5_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

describe("transport/node API under generated abuse (fuzz)", function () {
  this.timeout(60_000);
  let api: RunningNodeApi;
  let sessions: PeerSessions;
  const failures: Array<Record<string, unknown>> = [];

  before(async () => {
    const world = new World();
    const [alice, bob] = [party("alice", 0x71), party("bob", 0x72)];
    world.tasks.set(TASK, [alice.wallet.address, bob.wallet.address]);
    sessions = new PeerSessions({
      chainId: CHAIN_ID,
      registry: REGISTRY,
      signingKey: alice.wallet,
      encryptionPrivateKey: alice.encryption.privateKey,
      lookupParty: world.lookup,
      taskParties: world.parties,
      deliver: () => {},
      timeoutMs: 2_000,
    });
    const app = createNodeApi(
      {
        health: async () => ({ status: "ok" }),
        taskStatus: async (taskId) => ({ taskId }),
        shareBodyLimit: (taskId) => {
          if (taskId !== 5n) throw new ConsortError("UNKNOWN_TASK", `task ${taskId} is unknown`, { retryable: true });
          return SHARE_LIMIT;
        },
        submitShare: async (submission) => {
          parseShareSubmission(submission);
          throw new ConsortError("BAD_SIGNATURE", "not checked in this test");
        },
      },
      { logger: (event) => (event.status as number) >= 500 && failures.push(event) },
    );
    api = await startNodeApi(
      app,
      { host: "127.0.0.1", port: 0 },
      {
        frames: {
          receive: (record) => sessions.take(record),
          authenticate: (hello) => sessions.authenticateLink(hello),
          maxRecordBytes: 1 << 20,
          logger: (event) => (event.status as number) >= 500 && failures.push(event),
        },
        limits: { maxConnections: 512, maxConnectionsPerSource: 128 },
        timeouts: { headersTimeoutMs: 500, requestTimeoutMs: 2_000, keepAliveTimeoutMs: 500, checkIntervalMs: 100 },
      },
    );
  });

  after(async () => {
    await sessions.close(0);
    await api.close();
  });

  it("answers every generated request with 1xx-4xx, closes held sockets, keeps memory bounded and keeps serving", async () => {
    const port = Number(new URL(api.url).port);
    const samples = fc.sample(abuse, { numRuns: REQUESTS, seed: 20261204 });
    const statuses = new Map<number, number>();
    const held: Promise<void>[] = [];
    const healthy: number[] = [];
    let abusing = true;
    // A legitimate client, on fresh connections, throughout.
    const legit = (async () => {
      while (abusing) healthy.push(await health(port));
    })();
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < samples.length) {
          const { bytes, hold } = samples[next++]!;
          if (hold) {
            const socket: Socket = connect(port, "127.0.0.1");
            socket.on("error", () => {});
            // Read what the server says, or "close" never comes.
            socket.resume();
            if (bytes.length > 0) socket.write(bytes);
            held.push(new Promise((resolve) => socket.on("close", () => resolve())));
            continue;
          }
          for (const status of await exchange(port, bytes)) statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (next % 500 === 0) rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
        }
      }),
    );
    // Every held socket (idle, half-sent headers) is closed by the server: the headers timeout holds.
    await Promise.all(held);
    abusing = false;
    await legit;
    const seconds = (performance.now() - started) / 1000;
    const rssGrowthMb = (rssPeak - rssBefore) / 2 ** 20;
    console.log(
      `      ${REQUESTS} requests (${held.length} held open) in ${seconds.toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries(statuses))}; ` +
        `RSS +${rssGrowthMb.toFixed(0)} MB at peak; ${healthy.length} health checks; connections ${JSON.stringify(api.connections())}`,
    );
    expect([...statuses.keys()].filter((s) => s >= 500), "5xx answers").to.deep.equal([]);
    expect(failures).to.deep.equal([]);
    expect(held.length).to.be.greaterThan(0);
    expect(healthy.length).to.be.greaterThan(0);
    expect(healthy.filter((s) => s !== 200), "health checks during the abuse").to.deep.equal([]);
    // The bodies were never buffered whole: the process grew by far less than what was declared (GBs).
    expect(rssGrowthMb).to.be.below(200);
    expect(await health(port)).to.equal(200);
  });
});
