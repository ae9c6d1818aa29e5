import { once } from "node:events";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from "node:net";
import { expect } from "chai";
import { Interface } from "ethers";
import { EventWatcher, type ChainCursor } from "../../node/chain/event-watcher.ts";
import { connectProvider, probeChainId, redactRpcUrl } from "../../node/chain/rpc-provider.ts";
import type { ConsortError } from "../../node/errors.ts";
import { expectRejection } from "../support/consort-error-assertions.ts";

const SECRET = "s3cr3t-api-key-0123456789";

/** Every socket a server accepted, to await their closing. */
function trackSockets(server: TcpServer | HttpServer): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  return sockets;
}

async function listen(server: TcpServer | HttpServer): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

async function close(server: TcpServer | HttpServer, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  server.close();
  await once(server, "close");
}

/** Resolves when every socket the server holds now has closed. */
async function allClosed(sockets: Set<Socket>): Promise<void> {
  await Promise.all([...sockets].map((s) => (s.destroyed ? undefined : once(s, "close"))));
}

function expectNamesEndpointWithoutSecret(error: ConsortError, port: number): void {
  expect(error.message).to.include(`http://127.0.0.1:${port}/[redacted]`);
  expect(error.message + JSON.stringify(error.details)).to.not.include(SECRET);
  expect(error.details.rpcUrl).to.equal(`http://127.0.0.1:${port}/[redacted]`);
}

describe("chain/rpc-provider", function () {
  this.timeout(20_000);

  it("redactRpcUrl keeps scheme, host and port and hides path, query and credentials", () => {
    expect(redactRpcUrl("http://127.0.0.1:8545")).to.equal("http://127.0.0.1:8545");
    expect(redactRpcUrl("http://127.0.0.1:8545/")).to.equal("http://127.0.0.1:8545");
    expect(redactRpcUrl(`https://mainnet.infura.io/v3/${SECRET}`)).to.equal("https://mainnet.infura.io/[redacted]");
    expect(redactRpcUrl(`https://rpc.example/?apikey=${SECRET}`)).to.equal("https://rpc.example/[redacted]");
    expect(redactRpcUrl(`https://user:${SECRET}@rpc.example:8443`)).to.equal("https://[redacted]@rpc.example:8443");
    expect(redactRpcUrl(`not a url ${SECRET}`)).to.not.include(SECRET);
  });

  it("refuses an RPC URL that is not http(s) with CONFIG_INVALID, without echoing its secrets", async () => {
    const error = await expectRejection(connectProvider(`wss://rpc.example/ws/${SECRET}`), "CONFIG_INVALID");
    expect(error.message).to.include("wss://rpc.example/[redacted]");
    expect(error.message).to.not.include(SECRET);
    await expectRejection(probeChainId(`nonsense ${SECRET}`), "CONFIG_INVALID");
  });

  describe("an RPC that accepts connections and never answers", () => {
    let server: TcpServer;
    let sockets: Set<Socket>;
    let port: number;
    beforeEach(async () => {
      // Accept, read and discard (so the server sees the client hang up), never answer.
      server = createTcpServer((socket) => socket.resume());
      sockets = trackSockets(server);
      port = await listen(server);
    });
    afterEach(() => close(server, sockets));

    it("probeChainId fails with a retryable RPC_UNAVAILABLE naming the endpoint and the wait, and closes the connection", async () => {
      const error = await expectRejection(probeChainId(`http://127.0.0.1:${port}/v3/${SECRET}`, 150), "RPC_UNAVAILABLE");
      expect(error.retryable).to.equal(true);
      expect(error.message).to.include("did not answer eth_chainId within 150 ms");
      expect(error.details).to.include({ method: "eth_chainId", timeoutMs: 150 });
      expectNamesEndpointWithoutSecret(error, port);
      await allClosed(sockets);
      expect(sockets.size).to.equal(0);
    });
  });

  describe("an RPC that answers eth_chainId, then falls silent", () => {
    let server: HttpServer;
    let sockets: Set<Socket>;
    let port: number;
    let mode: "chainId-only" | { status: number };
    let requests: string[];
    beforeEach(async () => {
      mode = "chainId-only";
      requests = [];
      server = createHttpServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { id: number; method: string };
          requests.push(body.method);
          if (typeof mode === "object") {
            // Retry-After is read by ethers as milliseconds: keeps its throttling retries quick.
            res.writeHead(mode.status, { "content-type": "text/plain", "retry-after": "1" }).end("no");
          } else if (body.method === "eth_chainId") {
            res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: body.id, result: "0x7a69" }));
          }
          // anything else: read, never answered
        });
      });
      sockets = trackSockets(server);
      port = await listen(server);
    });
    afterEach(() => close(server, sockets));

    it("a provider call fails after the request timeout with a retryable RPC_UNAVAILABLE, and the connection is closed", async () => {
      const provider = await connectProvider(`http://127.0.0.1:${port}/v3/${SECRET}`, { requestTimeoutMs: 200, pollingIntervalMs: 50 });
      try {
        const error = await expectRejection(provider.getBlockNumber(), "RPC_UNAVAILABLE");
        expect(error.retryable).to.equal(true);
        expect(error.message).to.include("did not answer eth_blockNumber within 200 ms");
        expectNamesEndpointWithoutSecret(error, port);
        await allClosed(sockets);
        expect(sockets.size).to.equal(0);
      } finally {
        provider.destroy();
      }
    });

    it("the event watcher reports the silence through onError on every poll, and stops", async () => {
      const provider = await connectProvider(`http://127.0.0.1:${port}/rpc?key=${SECRET}`, { requestTimeoutMs: 150, pollingIntervalMs: 20 });
      const errors: ConsortError[] = [];
      let secondError: () => void = () => undefined;
      const twoErrors = new Promise<void>((resolve) => (secondError = resolve));
      const watcher = new EventWatcher({
        provider,
        address: "0x0000000000000000000000000000000000000001",
        iface: new Interface([]),
        startBlock: 0,
        confirmations: 0,
        pollIntervalMs: 20,
        store: {
          loadCursor: (): ChainCursor | undefined => undefined,
          cursorHistory: () => [],
          rewindTo: () => ({ touchedTaskIds: [] }),
        },
        apply: () => expect.fail("nothing can be applied from a silent RPC"),
        onError: (error) => {
          errors.push(error);
          if (errors.length === 2) secondError();
        },
      });
      try {
        watcher.start();
        await twoErrors;
      } finally {
        await watcher.stop();
        provider.destroy();
      }
      for (const error of errors) {
        expect(error.code).to.equal("RPC_UNAVAILABLE");
        expect(error.retryable).to.equal(true);
        expect(error.message).to.include("did not answer eth_blockNumber within 150 ms");
        expectNamesEndpointWithoutSecret(error, port);
      }
    });

    it("an HTTP error status names the status; 401 and 403 are not retryable, 429 (after ethers' retries) and 503 are", async () => {
      const url = `http://127.0.0.1:${port}/v3/${SECRET}`;
      const provider = await connectProvider(url, { requestTimeoutMs: 2_000 });
      try {
        mode = { status: 401 };
        const denied = await expectRejection(provider.getBlockNumber(), "RPC_UNAVAILABLE");
        expect(denied.retryable).to.equal(false);
        expect(denied.details).to.include({ status: 401, method: "eth_blockNumber" });
        expectNamesEndpointWithoutSecret(denied, port);
        mode = { status: 429 };
        // (provider.send: getBlockNumber would share the 401 call's result, which ethers keeps briefly.)
        const throttled = await expectRejection(provider.send("eth_gasPrice", []), "RPC_UNAVAILABLE");
        expect(throttled.retryable).to.equal(true);
        expect(throttled.message).to.include("eth_gasPrice with HTTP 429 (rate limited)");
        expect(requests.filter((m) => m === "eth_gasPrice").length).to.be.greaterThan(2);
        mode = { status: 503 };
        const down = await expectRejection(probeChainId(url, 2_000), "RPC_UNAVAILABLE");
        expect(down.retryable).to.equal(true);
        expect(down.message).to.include("HTTP 503");
        expectNamesEndpointWithoutSecret(down, port);
      } finally {
        provider.destroy();
      }
    });
  });

  it("CONFIG_INVALID for a request timeout that is not a positive whole number", async () => {
    await expectRejection(connectProvider("http://127.0.0.1:9", { requestTimeoutMs: 0 }), "CONFIG_INVALID");
  });
});
