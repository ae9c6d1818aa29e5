import { once } from "node:events";
import { get } from "node:http";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { expect } from "chai";
import { ConsortError } from "../../node/errors.ts";
import { ConnectionGuard } from "../../node/transport/connection-guard.ts";
import { createNodeApi, startNodeApi } from "../../node/transport/http-server.ts";
import type { RunningNodeApi, StartNodeApiOptions } from "../../node/transport/http-server.ts";

const handlers = {
  health: async () => ({ status: "ok" }),
  taskStatus: async () => ({}),
  submitShare: async () => ({}),
};

function health(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = get({ host: "127.0.0.1", port, path: "/v1/health", agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", () => resolve(0));
  });
}

describe("transport/connection limits and timeouts (real server)", function () {
  this.timeout(20_000);
  let api: RunningNodeApi | undefined;
  const sockets: Socket[] = [];

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await api?.close();
    api = undefined;
  });

  /** Starts an API and returns its port and a function that resolves once the server has accepted `n` more connections. */
  async function start(options: StartNodeApiOptions) {
    api = await startNodeApi(createNodeApi(handlers), { host: "127.0.0.1", port: 0 }, options);
    const server = api.server;
    const port = Number(new URL(api.url).port);
    const accepted = async (n: number) => {
      for (let i = 0; i < n; i++) await once(server, "connection");
    };
    return { port, accepted };
  }

  function open(port: number, bytes?: string): Socket {
    const socket = connect(port, "127.0.0.1");
    socket.on("error", () => {});
    // Read what the server sends, or "close" never comes.
    socket.resume();
    if (bytes !== undefined) socket.write(bytes);
    sockets.push(socket);
    return socket;
  }

  it("closes the oldest idle socket of a source at its cap, so a new client is served", async () => {
    const { port, accepted } = await start({ limits: { maxConnectionsPerSource: 8 } });
    const waiting = accepted(8);
    const idle = Array.from({ length: 8 }, () => open(port));
    await waiting;
    const oldestClosed = once(idle[0]!, "close");
    expect(await health(port)).to.equal(200);
    await oldestClosed;
    expect(idle.slice(1).some((s) => s.destroyed)).to.equal(false);
    expect(api!.connections().evicted).to.equal(1);
  });

  it("refuses a new socket when every socket within the cap has a request in progress", async () => {
    const { port } = await start({ limits: { maxConnectionsPerSource: 4 } });
    // Requests whose bodies never finish: busy, not idle.
    const requests = (async () => {
      for (let i = 0; i < 4; i++) await once(api!.server, "request");
    })();
    for (let i = 0; i < 4; i++) open(port, "POST /v1/tasks/1/shares HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{");
    // Once their headers are parsed, the four are busy.
    await requests;
    const late = open(port);
    await once(late, "close");
    expect(api!.connections()).to.include({ refused: 1, evicted: 0, open: 4 });
  });

  it("closes a socket that sends only part of its headers once the headers timeout passes, with 408", async () => {
    const { port } = await start({ timeouts: { headersTimeoutMs: 300, requestTimeoutMs: 1_000, checkIntervalMs: 50 } });
    let answer = "";
    const slow = open(port, "GET /v1/health HTTP/1.1\r\nhost: x\r\nx-half: ");
    slow.on("data", (c: Buffer) => (answer += c.toString("latin1")));
    const silent = open(port);
    const started = performance.now();
    await Promise.all([once(slow, "close"), once(silent, "close")]);
    // Well before node:http's own defaults (headers 60 s, checked every 30 s) would have closed them.
    expect(performance.now() - started).to.be.below(5_000);
    expect(answer).to.match(/^HTTP\/1\.1 408 /);
  });

  it("rejects bad limits and timeouts with CONFIG_INVALID", async () => {
    expect(() => new ConnectionGuard({ maxConnections: 0 })).to.throw(ConsortError).with.property("code", "CONFIG_INVALID");
    expect(() => new ConnectionGuard({ maxConnectionsPerSource: 1.5 })).to.throw(ConsortError).with.property("code", "CONFIG_INVALID");
    const app = createNodeApi(handlers);
    let error: unknown;
    try {
      await startNodeApi(app, { host: "127.0.0.1", port: 0 }, { timeouts: { headersTimeoutMs: 5_000, requestTimeoutMs: 1_000 } });
    } catch (e) {
      error = e;
    }
    expect((error as ConsortError).code).to.equal("CONFIG_INVALID");
  });
});
