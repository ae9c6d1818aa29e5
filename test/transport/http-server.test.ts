import { expect } from "chai";
import { Wallet, getAddress, hexlify, keccak256 } from "ethers";
import { ConsortError } from "../../node/errors.ts";
import type { ConsortErrorCode } from "../../node/errors.ts";
import { generateEncryptionKey } from "../../node/transport/envelope.ts";
import { createNodeApi, startNodeApi } from "../../node/transport/http-server.ts";
import type { NodeApiHandlers, RunningNodeApi } from "../../node/transport/http-server.ts";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { gzipSync, brotliCompressSync } from "node:zlib";
import { sealSharePayload, signShareSubmission } from "../../node/transport/share-submission.ts";
import type { ShareSubmission } from "../../node/transport/share-submission.ts";

/** Tasks 5 and 7 take share bodies up to this; task 6 is unknown. */
const SHARE_LIMIT = 16 * 1024;
const MAX_JSON_BYTES = 4 * 1024;
const alice = new Wallet("0x" + "41".repeat(32));
const bob = new Wallet("0x" + "42".repeat(32));
const owner = new Wallet("0x" + "43".repeat(32));
const registry = getAddress("0x" + "5e".repeat(20));
const bobKey = generateEncryptionKey();

interface Calls {
  taskStatus: bigint[];
  submitShare: ShareSubmission[];
  shareBodyLimit: bigint[];
  getProgram: string[];
}

async function submission(): Promise<ShareSubmission> {
  const base = { version: 1 as const, chainId: "31337", registry, taskId: "5", dataOwner: owner.address, party: bob.address };
  const sealed = hexlify(sealSharePayload(bobKey.publicKey, new Uint8Array(32), [1n, 2n], base));
  return signShareSubmission({ ...base, digests: [keccak256("0x01"), keccak256("0x02")], sealed }, owner);
}

async function json(res: Response): Promise<Record<string, unknown>> {
  expect(res.headers.get("content-type")).to.match(/^application\/json/);
  return (await res.json()) as Record<string, unknown>;
}

async function expectError(res: Response, status: number, code: string, field?: string): Promise<Record<string, unknown>> {
  expect(res.status, `status for ${code}`).to.equal(status);
  const body = await json(res);
  const error = body.error as Record<string, unknown>;
  expect(error.code).to.equal(code);
  expect(error.message).to.be.a("string");
  expect(error.retryable).to.be.a("boolean");
  expect(error.details).to.be.an("object");
  if (field !== undefined) expect((error.details as Record<string, unknown>).field).to.equal(field);
  return error;
}

describe("transport/http-server", () => {
  let api: RunningNodeApi;
  let calls: Calls;
  let failWith: unknown;
  let events: Array<Record<string, unknown>>;
  let sub: ShareSubmission;
  const program = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
  const programHash = keccak256(program);

  const maybeFail = () => {
    if (failWith !== undefined) throw failWith;
  };

  before(async () => {
    sub = await submission();
    const handlers: NodeApiHandlers = {
      async health() {
        maybeFail();
        return { ok: true, blockNumber: 12n };
      },
      async taskStatus(taskId) {
        maybeFail();
        calls.taskStatus.push(taskId);
        return { taskId, state: "running" };
      },
      async submitShare(s) {
        maybeFail();
        calls.submitShare.push(s);
        return { accepted: true, digest: s.digests[1] };
      },
      shareBodyLimit(taskId) {
        calls.shareBodyLimit.push(taskId);
        if (taskId !== 5n && taskId !== 7n) throw new ConsortError("UNKNOWN_TASK", `task ${taskId} is unknown`, { retryable: true });
        return SHARE_LIMIT;
      },
      async getProgram(hash) {
        maybeFail();
        calls.getProgram.push(hash);
        if (hash !== programHash) throw new ConsortError("NOT_FOUND", `no program ${hash}`);
        return program;
      },
    };
    const app = createNodeApi(handlers, { maxJsonBytes: MAX_JSON_BYTES, logger: (e) => events.push(e) });
    api = await startNodeApi(app, { host: "127.0.0.1", port: 0 });
  });

  after(async () => {
    await api.close();
  });

  beforeEach(() => {
    calls = { taskStatus: [], submitShare: [], shareBodyLimit: [], getProgram: [] };
    failWith = undefined;
    events = [];
  });

  const get = (path: string) => fetch(`${api.url}${path}`);
  const post = (path: string, body: string | Uint8Array, contentType: string, headers: Record<string, string> = {}) =>
    fetch(`${api.url}${path}`, { method: "POST", body, headers: { "content-type": contentType, ...headers } });

  /** Writes `request` on a fresh socket; resolves with what came back once the server closes it (or after the answer, if it does not). */
  function rawExchange(request: string): Promise<{ text: string; closed: boolean }> {
    const url = new URL(api.url);
    return new Promise((resolve, reject) => {
      const socket: Socket = connect(Number(url.port), url.hostname);
      let text = "";
      socket.on("data", (c: Buffer) => (text += c.toString("latin1")));
      socket.on("error", reject);
      socket.on("close", () => resolve({ text, closed: true }));
      socket.write(request);
    });
  }

  it("listens on a real port", () => {
    expect(api.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(api.url.endsWith(":0")).to.equal(false);
  });

  describe("routes", () => {
    it("GET /v1/health", async () => {
      const res = await get("/v1/health");
      expect(res.status).to.equal(200);
      expect(await json(res)).to.deep.equal({ ok: true, blockNumber: "12" });
    });

    it("GET /v1/tasks/:taskId parses a uint256 task id", async () => {
      const big = (1n << 256n) - 1n;
      const res = await get(`/v1/tasks/${big}`);
      expect(res.status).to.equal(200);
      expect(await json(res)).to.deep.equal({ taskId: big.toString(), state: "running" });
      expect(calls.taskStatus).to.deep.equal([big]);
    });

    it("GET /v1/tasks/:taskId rejects bad task ids", async () => {
      for (const bad of ["07", "-1", "abc", "0x10", (1n << 256n).toString(), "1e3"]) {
        await expectError(await get(`/v1/tasks/${bad}`), 400, "BAD_REQUEST", "taskId");
      }
      expect(calls.taskStatus).to.deep.equal([]);
    });

    it("POST /v1/tasks/:taskId/shares hands the parsed submission to the handler", async () => {
      const res = await post("/v1/tasks/5/shares", JSON.stringify(sub), "application/json");
      expect(res.status).to.equal(200);
      expect(await json(res)).to.deep.equal({ accepted: true, digest: sub.digests[1] });
      expect(calls.submitShare).to.deep.equal([sub]);
    });

    it("POST /v1/tasks/:taskId/shares rejects a path/body task id mismatch", async () => {
      await expectError(await post("/v1/tasks/7/shares", JSON.stringify(sub), "application/json"), 400, "BAD_REQUEST", "taskId");
      expect(calls.submitShare).to.deep.equal([]);
    });

    it("POST /v1/tasks/:taskId/shares names a bad field", async () => {
      const bad = { ...sub, digests: [sub.digests[0], "0xzz"] };
      await expectError(await post("/v1/tasks/5/shares", JSON.stringify(bad), "application/json"), 400, "BAD_REQUEST", "digests[1]");
    });

    it("GET /v1/programs/:hash serves bytes", async () => {
      const res = await get(`/v1/programs/${programHash.toUpperCase().replace("0X", "0x")}`);
      expect(res.status).to.equal(200);
      expect(res.headers.get("content-type")).to.equal("application/octet-stream");
      expect(new Uint8Array(await res.arrayBuffer())).to.deep.equal(program);
      expect(calls.getProgram).to.deep.equal([programHash]);
      await expectError(await get(`/v1/programs/${keccak256("0x00")}`), 404, "NOT_FOUND");
      await expectError(await get(`/v1/programs/0x1234`), 400, "BAD_REQUEST", "programHash");
    });

    it("GET /v1/programs/:hash is 404 when the node serves no programs", async () => {
      const app = createNodeApi(
        { health: async () => ({}), taskStatus: async () => ({}), submitShare: async () => ({}) },
      );
      const other = await startNodeApi(app, { host: "127.0.0.1", port: 0 });
      try {
        await expectError(await fetch(`${other.url}/v1/programs/${programHash}`), 404, "NOT_FOUND");
      } finally {
        await other.close();
      }
    });

    it("answers unknown routes and methods with 404 NOT_FOUND JSON", async () => {
      await expectError(await get("/nope"), 404, "NOT_FOUND");
      await expectError(await post("/v1/messages", new Uint8Array(8), "application/octet-stream"), 404, "NOT_FOUND");
      await expectError(await post("/v1/frames", new Uint8Array(8), "application/octet-stream"), 404, "NOT_FOUND");
      await expectError(await post("/v1/frames/stream", new Uint8Array(8), "application/octet-stream"), 404, "NOT_FOUND");
      await expectError(await post("/v1/health", "{}", "application/json"), 404, "NOT_FOUND");
    });
  });

  describe("bodies", () => {
    it("answers malformed JSON with 400 BAD_REQUEST", async () => {
      await expectError(await post("/v1/tasks/5/shares", '{"version": 1,', "application/json"), 400, "BAD_REQUEST", "body");
      await expectError(await post("/v1/tasks/5/shares", '"just a string"', "application/json"), 400, "BAD_REQUEST");
    });

    it("answers a wrong content type with 415 BAD_REQUEST", async () => {
      await expectError(await post("/v1/tasks/5/shares", JSON.stringify(sub), "text/plain"), 415, "BAD_REQUEST", "content-type");
      expect(calls.submitShare).to.deep.equal([]);
    });

    it("refuses a share body over the task's limit with 413 and never hands it on", async () => {
      const big = JSON.stringify({ ...sub, padding: "x".repeat(SHARE_LIMIT) });
      const error = await expectError(await post("/v1/tasks/5/shares", big, "application/json"), 413, "BAD_REQUEST", "body");
      expect((error.details as Record<string, unknown>).limit).to.equal(SHARE_LIMIT);
      expect(calls.shareBodyLimit).to.deep.equal([5n]);
      expect(calls.submitShare).to.deep.equal([]);
      // Just under it is read (and then refused by the schema, not by size).
      const fits = JSON.stringify({ ...sub, padding: "x".repeat(SHARE_LIMIT - JSON.stringify(sub).length - 20) });
      await expectError(await post("/v1/tasks/5/shares", fits, "application/json"), 400, "BAD_REQUEST");
    });

    it("refuses a share for an unknown task before reading its body, and closes the connection", async () => {
      // The request declares 100 MB and sends only its headers: the answer comes without the body.
      const answer = await rawExchange(
        "POST /v1/tasks/6/shares HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n{",
      );
      expect(answer.text).to.match(/^HTTP\/1\.1 404 /);
      expect(answer.text.toLowerCase()).to.include("connection: close");
      expect(answer.text).to.include('"UNKNOWN_TASK"');
      expect(answer.closed).to.equal(true);
      expect(calls.submitShare).to.deep.equal([]);
      // A declared size over the limit is refused the same way, before the body.
      const declared = await rawExchange(
        "POST /v1/tasks/5/shares HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n{",
      );
      expect(declared.text).to.match(/^HTTP\/1\.1 413 /);
      expect(declared.closed).to.equal(true);
    });

    it("refuses an output request before reading it when the node serves no outputs", async () => {
      const big = JSON.stringify({ padding: "x".repeat(2 * MAX_JSON_BYTES) });
      await expectError(await post("/v1/tasks/5/outputs", big, "application/json"), 404, "NOT_FOUND");
    });

    it("reads gzip, deflate and br bodies, and answers a corrupt one with 400 (never 500)", async () => {
      const text = JSON.stringify(sub);
      for (const [encoding, body] of [["gzip", gzipSync(text)], ["br", brotliCompressSync(text)]] as const) {
        const res = await post("/v1/tasks/5/shares", body, "application/json", { "content-encoding": encoding });
        expect(res.status, encoding).to.equal(200);
      }
      for (const encoding of ["gzip", "deflate", "br"]) {
        await expectError(await post("/v1/tasks/5/shares", new Uint8Array(64).fill(7), "application/json", { "content-encoding": encoding }), 400, "BAD_REQUEST", "content-encoding");
      }
      const truncated = gzipSync(text).subarray(0, 40);
      await expectError(await post("/v1/tasks/5/shares", truncated, "application/json", { "content-encoding": "gzip" }), 400, "BAD_REQUEST");
      await expectError(await post("/v1/tasks/5/shares", text, "application/json", { "content-encoding": "compress" }), 415, "BAD_REQUEST", "content-encoding");
      expect(events.filter((e) => (e.status as number) >= 500)).to.deep.equal([]);
      expect(events.some((e) => "error" in e)).to.equal(false);
    });

    it("bounds a compressed body by its decoded size (a small bomb is 413)", async () => {
      const bomb = gzipSync(Buffer.alloc(50 * SHARE_LIMIT, 0x20));
      expect(bomb.length).to.be.below(SHARE_LIMIT);
      await expectError(await post("/v1/tasks/5/shares", bomb, "application/json", { "content-encoding": "gzip" }), 413, "BAD_REQUEST", "body");
    });
  });

  describe("handler errors", () => {
    const mapped: Array<[ConsortErrorCode, number]> = [
      ["BAD_REQUEST", 400],
      ["PROTOCOL_INVALID_MESSAGE", 400],
      ["BAD_SIGNATURE", 401],
      ["NOT_A_PARTY", 403],
      ["NOT_A_DATA_OWNER", 403],
      ["UNKNOWN_TASK", 404],
      ["NOT_FOUND", 404],
      ["DUPLICATE_INPUT", 409],
      ["DUPLICATE_MESSAGE", 409],
      ["TASK_NOT_ACCEPTING", 409],
      ["COMMITMENT_MISMATCH", 422],
      ["DECRYPTION_FAILED", 422],
    ];

    for (const [code, status] of mapped) {
      it(`maps ${code} to ${status} with its code, message and details`, async () => {
        failWith = new ConsortError(code, `task 5: ${code.toLowerCase()}`, { details: { taskId: "5" } });
        const error = await expectError(await post("/v1/tasks/5/shares", JSON.stringify(sub), "application/json"), status, code);
        expect(error).to.deep.equal({ code, message: `task 5: ${code.toLowerCase()}`, retryable: false, details: { taskId: "5" } });
      });
    }

    it("maps a retryable error with no specific status to 503 with Retry-After", async () => {
      failWith = new ConsortError("RPC_UNAVAILABLE", "chain RPC is down", { retryable: true });
      const res = await get("/v1/tasks/5");
      expect(res.headers.get("retry-after")).to.equal("1");
      const error = await expectError(res, 503, "RPC_UNAVAILABLE");
      expect(error.retryable).to.equal(true);
    });

    it("keeps the specific status of a retryable mapped error and its retryable flag", async () => {
      failWith = new ConsortError("UNKNOWN_TASK", "task 5 not seen yet", { retryable: true });
      const error = await expectError(await post("/v1/tasks/5/shares", JSON.stringify(sub), "application/json"), 404, "UNKNOWN_TASK");
      expect(error.retryable).to.equal(true);
    });

    it("hides a non-retryable unmapped ConsortError behind 500 INTERNAL", async () => {
      failWith = new ConsortError("STORE_FAILED", "disk /var/lib/consort full");
      const res = await get("/v1/health");
      const text = await res.text();
      expect(res.status).to.equal(500);
      expect(JSON.parse(text)).to.deep.equal({ error: { code: "INTERNAL", message: "internal error", retryable: false, details: {} } });
      expect(text).to.not.include("disk");
      expect(events.some((e) => e.originalCode === "STORE_FAILED")).to.equal(true);
    });

    it("answers a plain Error with 500 INTERNAL without leaking it, and logs it", async () => {
      failWith = new Error("secret share 0xdeadbeef leaked?");
      for (const res of [await get("/v1/health"), await post("/v1/tasks/5/shares", JSON.stringify(sub), "application/json")]) {
        const text = await res.text();
        expect(res.status).to.equal(500);
        expect(JSON.parse(text).error.code).to.equal("INTERNAL");
        expect(text).to.not.include("deadbeef");
      }
      const logged = events.filter((e) => e.status === 500);
      expect(logged).to.have.length(2);
      expect(JSON.stringify(logged[0])).to.include("0xdeadbeef");
    });

    it("survives non-Error throws and a throwing logger, and keeps serving", async () => {
      failWith = "a string";
      await expectError(await get("/v1/health"), 500, "INTERNAL");
      failWith = undefined;
      const app = createNodeApi(
        {
          health: () => {
            throw new Error("sync throw");
          },
          taskStatus: async () => ({}),
          submitShare: async () => ({}),
                  },
        {
          logger: () => {
            throw new Error("logger broke");
          },
        },
      );
      const other = await startNodeApi(app, { host: "127.0.0.1", port: 0 });
      try {
        await expectError(await fetch(`${other.url}/v1/health`), 500, "INTERNAL");
        expect((await fetch(`${other.url}/v1/tasks/1`)).status).to.equal(200);
      } finally {
        await other.close();
      }
      expect((await get("/v1/health")).status).to.equal(200);
    });
  });

  it("rejects bad options with CONFIG_INVALID", () => {
    const handlers = { health: async () => ({}), taskStatus: async () => ({}), submitShare: async () => ({}) };
    expect(() => createNodeApi(handlers, { maxJsonBytes: 0 })).to.throw(ConsortError).with.property("code", "CONFIG_INVALID");
    expect(() => createNodeApi(handlers, { maxShareBytes: 1.5 })).to.throw(ConsortError).with.property("code", "CONFIG_INVALID");
  });

  it("fails to listen on a taken port with CONFIG_INVALID", async () => {
    const port = Number(new URL(api.url).port);
    const app = createNodeApi(
      { health: async () => ({}), taskStatus: async () => ({}), submitShare: async () => ({}) },
    );
    let err: unknown;
    try {
      const second = await startNodeApi(app, { host: "127.0.0.1", port });
      await second.close();
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ConsortError);
    expect((err as ConsortError).code).to.equal("CONFIG_INVALID");
  });
});
