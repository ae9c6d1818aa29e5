import { expect } from "chai";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Wallet, getAddress, hexlify, keccak256 } from "ethers";
import { ConsortError } from "../../node/errors.ts";
import type { ConsortErrorCode } from "../../node/errors.ts";
import { generateEncryptionKey } from "../../node/transport/envelope.ts";
import { getBytes, getJson, postShareSubmission, withRetry } from "../../node/transport/http-client.ts";
import { createNodeApi, startNodeApi } from "../../node/transport/http-server.ts";
import type { NodeApiHandlers, RunningNodeApi } from "../../node/transport/http-server.ts";
import { sealSharePayload, signShareSubmission } from "../../node/transport/share-submission.ts";
import type { ShareSubmission } from "../../node/transport/share-submission.ts";

const alice = new Wallet("0x" + "51".repeat(32));
const bob = new Wallet("0x" + "52".repeat(32));
const owner = new Wallet("0x" + "53".repeat(32));
const registry = getAddress("0x" + "5e".repeat(20));
const bobKey = generateEncryptionKey();
const TIMEOUT = { timeoutMs: 2_000 };

async function submission(): Promise<ShareSubmission> {
  const base = { version: 1 as const, chainId: "31337", registry, taskId: "9", dataOwner: owner.address, party: bob.address };
  const sealed = hexlify(sealSharePayload(bobKey.publicKey, new Uint8Array(32), [5n], base));
  return signShareSubmission({ ...base, digests: [keccak256("0x01")], sealed }, owner);
}

async function rejection(promise: Promise<unknown>): Promise<ConsortError> {
  try {
    await promise;
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(ConsortError);
    return err as ConsortError;
  }
  return expect.fail("expected a rejection");
}

/** A bare node:http server for behaviours the node API never shows (hanging, HTML errors, redirects). */
async function rawServer(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("transport/http-client", () => {
  let api: RunningNodeApi;
  let failWith: unknown;
  let delivered: ShareSubmission[];
  const program = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7) & 0xff);

  before(async () => {
    const handlers: NodeApiHandlers = {
      health: async () => ({ ok: true }),
      taskStatus: async (taskId) => {
        if (failWith !== undefined) throw failWith;
        return { taskId, state: "accepting" };
      },
      submitShare: async (s) => {
        if (failWith !== undefined) throw failWith;
        delivered.push(s);
        return { accepted: true, party: s.party };
      },
      getProgram: async () => program,
    };
    api = await startNodeApi(createNodeApi(handlers), { host: "127.0.0.1", port: 0 });
  });

  after(async () => {
    await api.close();
  });

  beforeEach(() => {
    failWith = undefined;
    delivered = [];
  });

  describe("against a real node API", () => {
    it("posts a share submission and returns the answer", async () => {
      const sub = await submission();
      expect(await postShareSubmission(api.url, sub, TIMEOUT)).to.deep.equal({ accepted: true, party: bob.address });
      expect(delivered).to.deep.equal([sub]);
    });

    it("gets JSON and bytes", async () => {
      expect(await getJson(api.url, "/v1/tasks/9", TIMEOUT)).to.deep.equal({ taskId: "9", state: "accepting" });
      expect(await getBytes(`${api.url}/`, `/v1/programs/${keccak256(program)}`, TIMEOUT)).to.deep.equal(program);
    });

    it("turns a 409 into PEER_REJECTED with the remote code and message", async () => {
      failWith = new ConsortError("DUPLICATE_MESSAGE", "message task/9/round/0/gate/open:0-1 from alice already received");
      const err = await rejection(postShareSubmission(api.url, await submission(), TIMEOUT));
      expect(err.code).to.equal("PEER_REJECTED");
      expect(err.retryable).to.equal(false);
      expect(err.details.remoteCode).to.equal("DUPLICATE_MESSAGE");
      expect(err.details.status).to.equal(409);
      expect(err.details.url).to.equal(`${api.url}/v1/tasks/9/shares`);
      expect(err.message).to.include("already received");
    });

    it("keeps the remote's retryable flag on a rejection", async () => {
      failWith = new ConsortError("UNKNOWN_TASK", "task 9 not seen yet", { retryable: true });
      const err = await rejection(postShareSubmission(api.url, await submission(), TIMEOUT));
      expect([err.code, err.retryable, err.details.remoteCode]).to.deep.equal(["PEER_REJECTED", true, "UNKNOWN_TASK"]);
    });

    it("turns 5xx answers into retryable PEER_UNREACHABLE", async () => {
      const cases: Array<[unknown, number, string]> = [
        [new Error("boom"), 500, "INTERNAL"],
        [new ConsortError("RPC_UNAVAILABLE", "rpc down", { retryable: true }), 503, "RPC_UNAVAILABLE"],
      ];
      for (const [thrown, status, remoteCode] of cases) {
        failWith = thrown;
        const err = await rejection(getJson(api.url, "/v1/tasks/9", TIMEOUT));
        expect([err.code, err.retryable, err.details.status, err.details.remoteCode]).to.deep.equal([
          "PEER_UNREACHABLE",
          true,
          status,
          remoteCode,
        ]);
      }
    });

    it("enforces maxResponseBytes", async () => {
      const err = await rejection(getBytes(api.url, `/v1/programs/${keccak256(program)}`, { timeoutMs: 2_000, maxResponseBytes: 1000 }));
      expect(err.code).to.equal("PROTOCOL_INVALID_MESSAGE");
    });
  });

  it("reports a server that is down as retryable PEER_UNREACHABLE naming the URL", async () => {
    const down = await rawServer((_req, res) => res.end());
    await down.close();
    const err = await rejection(postShareSubmission(down.url, await submission(), TIMEOUT));
    expect([err.code, err.retryable]).to.deep.equal(["PEER_UNREACHABLE", true]);
    expect(err.details.url).to.equal(`${down.url}/v1/tasks/9/shares`);
    expect(err.message).to.include(down.url);
    expect(err.details.reason).to.equal("ECONNREFUSED");
  });

  it("times out on a server that never answers (PEER_UNREACHABLE)", async () => {
    const hang = await rawServer(() => {});
    try {
      const started = Date.now();
      const err = await rejection(getJson(hang.url, "/v1/health", { timeoutMs: 200 }));
      expect([err.code, err.retryable, err.details.reason]).to.deep.equal(["PEER_UNREACHABLE", true, "timeout"]);
      expect(Date.now() - started).to.be.lessThan(1_500);
    } finally {
      await hang.close();
    }
  });

  it("times out on a server that stalls mid-body", async () => {
    const stall = await rawServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": "100" });
      res.write(new Uint8Array(10));
    });
    try {
      const err = await rejection(getBytes(stall.url, "/v1/programs/x", { timeoutMs: 200 }));
      expect([err.code, err.details.reason]).to.deep.equal(["PEER_UNREACHABLE", "timeout"]);
    } finally {
      await stall.close();
    }
  });

  it("handles non-JSON errors, redirects, bad JSON and oversize bodies from odd servers", async () => {
    const seen: string[] = [];
    const odd = await rawServer((req, res) => {
      seen.push(req.url ?? "");
      if (req.url?.endsWith("/html")) res.writeHead(400, { "content-type": "text/html" }).end("<h1>Bad</h1>");
      else if (req.url?.endsWith("/redirect")) res.writeHead(302, { location: "http://example.com/" }).end();
      else if (req.url?.endsWith("/not-json")) res.writeHead(200, { "content-type": "application/json" }).end("{nope");
      else if (req.url?.endsWith("/too-many")) res.writeHead(429).end();
      else {
        // Chunked, so the client has to count while reading.
        res.writeHead(200, { "content-type": "application/octet-stream" });
        res.write(new Uint8Array(600));
        res.end(new Uint8Array(600));
      }
    });
    try {
      const html = await rejection(getJson(`${odd.url}/prefix/`, "/html", TIMEOUT));
      expect([html.code, html.retryable, html.details.remoteCode, html.details.status]).to.deep.equal(["PEER_REJECTED", false, undefined, 400]);
      expect(seen[0]).to.equal("/prefix/html");
      expect((await rejection(getJson(odd.url, "/redirect", TIMEOUT))).code).to.equal("PEER_REJECTED");
      expect((await rejection(getJson(odd.url, "/not-json", TIMEOUT))).code).to.equal("PROTOCOL_INVALID_MESSAGE");
      const busy = await rejection(getJson(odd.url, "/too-many", TIMEOUT));
      expect([busy.code, busy.retryable]).to.deep.equal(["PEER_UNREACHABLE", true]);
      expect((await rejection(getBytes(odd.url, "/big", { timeoutMs: 2_000, maxResponseBytes: 1000 }))).code).to.equal(
        "PROTOCOL_INVALID_MESSAGE",
      );
      expect((await getBytes(odd.url, "/big", TIMEOUT)).length).to.equal(1200);
    } finally {
      await odd.close();
    }
  });

  it("rejects bad peer URLs and timeouts with CONFIG_INVALID", async () => {
    expect((await rejection(getJson("not a url", "/v1/health", TIMEOUT))).code).to.equal("CONFIG_INVALID");
    expect((await rejection(getJson("ftp://127.0.0.1", "/v1/health", TIMEOUT))).code).to.equal("CONFIG_INVALID");
    expect((await rejection(getJson(api.url, "/v1/health", { timeoutMs: 0 }))).code).to.equal("CONFIG_INVALID");
  });

  describe("withRetry", () => {
    const fast = { attempts: 4, initialDelayMs: 1, maxDelayMs: 4 };
    const fail = (code: ConsortErrorCode, retryable: boolean) => new ConsortError(code, "x", { retryable });

    it("retries retryable errors until success", async () => {
      let calls = 0;
      const result = await withRetry(async (attempt) => {
        calls++;
        expect(attempt).to.equal(calls);
        if (calls < 3) throw fail("PEER_UNREACHABLE", true);
        return "done";
      }, fast);
      expect([result, calls]).to.deep.equal(["done", 3]);
    });

    it("gives up after `attempts` tries with the last error", async () => {
      let calls = 0;
      const err = await rejection(
        withRetry(async () => {
          calls++;
          throw new ConsortError("PEER_UNREACHABLE", `try ${calls}`, { retryable: true });
        }, fast),
      );
      expect(calls).to.equal(4);
      expect(err.message).to.equal("try 4");
    });

    it("does not retry non-retryable errors or foreign exceptions", async () => {
      for (const thrown of [fail("PEER_REJECTED", false), new Error("plain"), "string"]) {
        let calls = 0;
        let caught: unknown;
        try {
          await withRetry(async () => {
            calls++;
            throw thrown;
          }, fast);
        } catch (err) {
          caught = err;
        }
        expect(caught).to.equal(thrown);
        expect(calls).to.equal(1);
      }
    });

    it("backs off exponentially with jitter, capped", async () => {
      const delays: number[] = [];
      await rejection(
        withRetry(
          async () => {
            throw fail("PEER_UNREACHABLE", true);
          },
          { attempts: 5, initialDelayMs: 2, maxDelayMs: 8, onRetry: (_e, _a, d) => delays.push(d) },
        ),
      );
      const caps = [2, 4, 8, 8];
      expect(delays).to.have.length(4);
      delays.forEach((d, i) => {
        expect(d).to.be.within((caps[i] as number) / 2, caps[i] as number);
      });
    });

    it("honours a custom isRetryable", async () => {
      let calls = 0;
      await rejection(
        withRetry(
          async () => {
            calls++;
            throw fail("PEER_UNREACHABLE", true);
          },
          { ...fast, isRetryable: (e) => e instanceof ConsortError && e.code !== "PEER_UNREACHABLE" },
        ),
      );
      expect(calls).to.equal(1);
    });

    it("rejects bad options with CONFIG_INVALID", async () => {
      for (const bad of [
        { attempts: 0, initialDelayMs: 1, maxDelayMs: 1 },
        { attempts: 1.5, initialDelayMs: 1, maxDelayMs: 1 },
        { attempts: 2, initialDelayMs: 5, maxDelayMs: 1 },
        { attempts: 2, initialDelayMs: -1, maxDelayMs: 1 },
      ]) {
        expect((await rejection(withRetry(async () => 1, bad))).code).to.equal("CONFIG_INVALID");
      }
    });
  });
});
