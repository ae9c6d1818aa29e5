import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { get } from "node:http";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { expect } from "chai";
import type { JsonRpcProvider } from "ethers";
import { deployRegistry, saveDeployment } from "../../node/chain/deployments.ts";
import { RegistryClient } from "../../node/chain/registry-client.ts";
import { connectProvider } from "../../node/chain/rpc-provider.ts";
import { submitInput } from "../../node/client/data-owner-client.ts";
import { registerNodeParty } from "../../node/daemon/register-node-party.ts";
import { devWallet, prepareLocalNode, startLocalChain, startLocalNode } from "../../node/dev/local-cluster.ts";
import type { LocalChain, LocalNode, LocalNodeSpec } from "../../node/dev/local-cluster.ts";
import { encodeProgram } from "../../node/program/program-encoding.ts";
import { totalAndMean } from "../../node/program/standard-programs.ts";

/** One kind of abuse, aimed at `port` until `stop()`; counts what it sent. */
class Abuser {
  readonly #port: number;
  readonly #taskId: () => bigint;
  readonly #held = new Set<Socket>();
  #running = true;
  sent = 0;

  constructor(port: number, taskId: () => bigint) {
    this.#port = port;
    this.#taskId = taskId;
  }

  #open(bytes: Buffer | string | undefined, hold: boolean): Promise<void> {
    return new Promise((resolve) => {
      const socket = connect(this.#port, "127.0.0.1");
      socket.on("error", () => {});
      socket.resume();
      socket.on("close", () => {
        this.#held.delete(socket);
        resolve();
      });
      if (bytes !== undefined) socket.write(bytes);
      this.sent++;
      if (hold) this.#held.add(socket);
      else socket.setTimeout(2_000, () => socket.destroy());
    });
  }

  /** Keeps `count` idle or half-sent sockets open, reopening those the node closes. */
  async hold(count: number): Promise<void> {
    const slot = async (i: number) => {
      while (this.#running) await this.#open(i % 2 === 0 ? undefined : "GET /v1/health HTTP/1.1\r\nhost: x\r\nx-slow", true);
    };
    await Promise.all(Array.from({ length: count }, (_, i) => slot(i)));
  }

  /** Oversized, corrupt and unauthenticated requests, `concurrency` at a time. */
  async flood(concurrency: number): Promise<void> {
    const kinds = [
      () => `POST /v1/tasks/${this.#taskId()}/shares HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n${" ".repeat(65_536)}`,
      () => Buffer.concat([Buffer.from(`POST /v1/tasks/${this.#taskId()}/shares HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\ncontent-length: 64\r\n\r\n`), Buffer.alloc(64, 7)]),
      () => Buffer.concat([Buffer.from(`POST /v1/tasks/${this.#taskId()}/shares HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n`), Buffer.from(`content-length: ${BOMB.length}\r\n\r\n`), BOMB]),
      () => "GET /v1/frames/stream HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: consort-frames/1\r\nconsort-link-hello: AAAA\r\n\r\n\u0000\u0000\u0010\u0000garbage",
      () => "GET /v1/frames/stream HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: consort-frames/1\r\n\r\n",
      () => "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello",
      () => "\u0016\u0003\u0001garbage\r\n\r\n",
    ];
    const worker = async (w: number) => {
      for (let i = w; this.#running; i += concurrency) await this.#open(kinds[i % kinds.length]!(), false);
    };
    await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  }

  stop(): void {
    this.#running = false;
    for (const socket of this.#held) socket.destroy();
  }
}

const BOMB = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));

function health(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get(`${url}/v1/health`, { agent: false, timeout: 5_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

/**
 * End to end under abuse: three real node processes on a local chain finalize
 * a task while every node is flooded with idle and half-sent sockets,
 * oversized, corrupt and compressed-bomb bodies, and unauthenticated
 * upgrades, all from the address their peers and data owners use.
 */
describe("e2e: a task finalizes while the nodes are abused", function () {
  this.timeout(300_000);

  let workDir: string;
  let chain: LocalChain;
  let provider: JsonRpcProvider;
  let registryAddress: string;
  const nodes: LocalNode[] = [];

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), "consort-abuse-"));
    chain = await startLocalChain(workDir);
    provider = await connectProvider(chain.rpcUrl, { pollingIntervalMs: 200 });
    const deployment = await deployRegistry(devWallet(0).connect(provider));
    const deploymentsDir = join(workDir, "deployments");
    saveDeployment(deployment, deploymentsDir);
    registryAddress = deployment.registry;
    const specs = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const wallet = devWallet(1 + i);
        const spec: LocalNodeSpec = {
          name: `bank-${i}`,
          wallet,
          rpcUrl: chain.rpcUrl,
          registry: deployment.registry,
          deploymentsDir,
          workDir,
          config: { takeoverDelayMs: 2_000 },
        };
        const prepared = await prepareLocalNode(spec);
        return { spec, prepared, wallet };
      }),
    );
    for (const { prepared, wallet } of specs) {
      await registerNodeParty(await RegistryClient.connect(wallet.connect(provider), deployment.registry), wallet.address, prepared.dataDir, prepared.url);
    }
    nodes.push(...(await Promise.all(specs.map(({ spec, prepared }) => startLocalNode(spec, prepared)))));
  });

  after(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    provider?.destroy();
    await chain?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  it("finalizes the total, keeps /v1/health answering, and never answers 500", async () => {
    const requester = await RegistryClient.connect(devWallet(0).connect(provider), registryAddress);
    const owners = [devWallet(4), devWallet(5), devWallet(6)];
    let taskId = 1n;
    const abusers = nodes.map((n) => new Abuser(Number(new URL(n.url).port), () => taskId));
    // 300 held sockets per node (more than its per-source cap of 256) and 8 floods at a time.
    const abuse = Promise.all(abusers.flatMap((a) => [a.hold(300), a.flood(8)]));
    const checks: number[] = [];
    let checking = true;
    const checker = (async () => {
      while (checking) {
        for (const n of nodes) checks.push(await health(n.url));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      const now = BigInt((await provider.getBlock("latest"))!.timestamp);
      ({ taskId } = await requester.createTask({
        program: encodeProgram(totalAndMean({ owners: 3, valuesPerOwner: 1, bits: 64 })),
        parties: nodes.map((n) => n.address),
        dataOwners: owners.map((o) => o.address),
        threshold: 1,
        inputDeadline: now + 600n,
        resultDeadline: now + 1_200n,
      }));
      const values = [1_250_000n, -40_000n, 777n];
      await Promise.all(
        owners.map(async (o, i) => {
          const owner = o.connect(provider);
          await submitInput({
            registry: await RegistryClient.connect(owner, registryAddress),
            signer: owner,
            taskId,
            values: [values[i]!],
            stateDir: join(workDir, `inputs-${i}`),
            deliveryTimeoutMs: 120_000,
          });
        }),
      );
      const deadline = Date.now() + 120_000;
      while ((await requester.taskState(taskId)) !== "Finalized") {
        if (Date.now() > deadline) throw new Error(`task ${taskId} not finalized under abuse; logs in ${workDir}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      checking = false;
      for (const a of abusers) a.stop();
      await Promise.all([abuse, checker]);
    }
    const sent = abusers.reduce((n, a) => n + a.sent, 0);
    console.log(`      ${sent} abusive connections during the task; ${checks.length} health checks, ${checks.filter((s) => s === 200).length} answered 200`);
    expect(sent).to.be.greaterThan(1_000);
    expect(checks.length).to.be.greaterThan(0);
    expect(checks.filter((s) => s !== 200)).to.deep.equal([]);
    for (const n of nodes) {
      const log = readFileSync(join(workDir, n.name, "node.log"), "utf8");
      expect(log, `${n.name} answered a 500`).to.not.match(/"status":5\d\d/);
    }
  });
});
