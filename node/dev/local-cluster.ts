import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, Socket, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  AbstractSigner,
  HDNodeWallet,
  Mnemonic,
  type JsonRpcProvider,
  type TransactionRequest,
  type TransactionResponse,
  type TypedDataDomain,
  type TypedDataField,
  type Wallet,
  keccak256,
} from "ethers";
import { deployRegistry } from "../chain/deployments.ts";
import { RegistryClient } from "../chain/registry-client.ts";
import { connectProvider, probeChainId } from "../chain/rpc-provider.ts";
import { chainNow } from "../chain/rpc-provider.ts";
import { submitInput } from "../client/data-owner-client.ts";
import { registerNodeParty } from "../daemon/register-node-party.ts";
import { ConsortError, toConsortError } from "../errors.ts";
import { encodeProgram } from "../program/program-encoding.ts";
import type { Program } from "../program/program.ts";
import { getJson } from "../transport/http-client.ts";
import type { NodeConfigInput } from "../daemon/node-config.ts";

/**
 * Local, single-machine clusters for the demo, the end-to-end tests and the
 * benchmarks: an embedded chain (Hardhat's EDR served over JSON-RPC on
 * 127.0.0.1, or Foundry's anvil where a test needs reorgs) and Consort nodes
 * as separate OS processes. Nothing here is used by a production node.
 */

export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const HARDHAT_CLI = join(PROJECT_ROOT, "node_modules", "hardhat", "dist", "src", "cli.js");
const CONSORT_CLI = join(PROJECT_ROOT, "node", "cli", "consort.ts");
const ANVIL_CLI = join(PROJECT_ROOT, "node_modules", "@foundry-rs", "anvil", "bin.mjs");

/** Hardhat's well-known development mnemonic: its accounts are funded on the local chain and nowhere else. */
const DEV_MNEMONIC = "test test test test test test test test test test test junk";

/** Development account `index` of the local chain (never use these keys on a real network). */
export function devWallet(index: number): HDNodeWallet {
  return HDNodeWallet.fromMnemonic(Mnemonic.fromPhrase(DEV_MNEMONIC), `m/44'/60'/0'/0/${index}`);
}

/** Ports freePort() has handed out in this process. */
const handedOut = new Set<number>();

/**
 * A TCP port that was free a moment ago on 127.0.0.1 and that this process
 * has not handed out before. The port is closed again before it is used, so
 * the kernel may offer it to the next caller: a cluster prepared node by
 * node once got the same port for two nodes, the second could not listen,
 * and the first answered in its place (a bench run failed with NOT_A_PARTY).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.on("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        const chosen = typeof address === "object" && address !== null ? address.port : 0;
        server.close(() => resolve(chosen));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new ConsortError("INTERNAL", "no free TCP port on 127.0.0.1 that this process has not handed out already (100 tries)");
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T>, exited: () => string | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const died = exited();
    if (died !== undefined) throw new ConsortError("INTERNAL", `${what} exited before it was ready: ${died}`);
    try {
      return await probe();
    } catch (error) {
      last = error;
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  throw new ConsortError("INTERNAL", `${what} was not ready within ${timeoutMs} ms: ${last instanceof Error ? last.message : String(last)}`);
}

export interface ManagedProcess {
  readonly child: ChildProcess;
  readonly logFile: string;
  stop(): Promise<void>;
}

function manage(child: ChildProcess, logFile: string): ManagedProcess & { exitInfo: () => string | undefined } {
  let exit: string | undefined;
  child.on("exit", (code, signal) => (exit = `code ${code}, signal ${signal}; see ${logFile}`));
  return {
    child,
    logFile,
    exitInfo: () => exit,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exit !== undefined || child.exitCode !== null) return resolve();
        const kill = setTimeout(() => child.kill("SIGKILL"), 5_000);
        child.once("exit", () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill("SIGTERM");
      }),
  };
}

function spawnLogged(args: string[], logFile: string, env: NodeJS.ProcessEnv): ChildProcess {
  const out = createWriteStream(logFile, { flags: "a" });
  const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  return child;
}

/** Whether `child`'s standard output has printed `marker` yet (watched until it has). */
function announced(child: ChildProcess, marker: string): { seen: () => boolean } {
  let tail = "";
  let seen = false;
  const onData = (chunk: Buffer) => {
    const text = tail + chunk.toString("utf8");
    if (text.includes(marker)) {
      seen = true;
      child.stdout?.off("data", onData);
    } else {
      // Enough of the end to find a marker split across chunks.
      tail = text.slice(-(marker.length - 1));
    }
  };
  child.stdout?.on("data", onData);
  return { seen: () => seen };
}

/**
 * A TCP proxy in front of a local chain's RPC, so a test can take the RPC
 * down (every open connection cut, new ones refused) and bring it back on the
 * same port, as an RPC provider's outage would look to the nodes.
 */
export class RpcProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  readonly port: number;
  private readonly target: number;
  constructor(port: number, target: number) {
    this.port = port;
    this.target = target;
  }
  /** The URL to give clients instead of the chain's own. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get isUp(): boolean {
    return this.server !== undefined;
  }
  async up(): Promise<void> {
    if (this.server !== undefined) return;
    const server = createServer((client) => {
      const upstream = new Socket();
      this.sockets.add(client).add(upstream);
      upstream.connect(this.target, "127.0.0.1");
      client.pipe(upstream).pipe(client);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
  }
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export interface LocalChain extends ManagedProcess {
  readonly rpcUrl: string;
}

/** Starts `hardhat node` on the consortLocal network (automine + a block a second) on 127.0.0.1. */
export async function startLocalChain(workDir: string, port?: number): Promise<LocalChain> {
  mkdirSync(workDir, { recursive: true });
  const chosen = port ?? (await freePort());
  const logFile = join(workDir, "chain.log");
  const child = spawnLogged(
    [HARDHAT_CLI, "node", "--network", "consortLocal", "--hostname", "127.0.0.1", "--port", String(chosen)],
    logFile,
    { ...process.env, FORCE_COLOR: "0" },
  );
  const rpcUrl = `http://127.0.0.1:${chosen}`;
  return chainWhenListening("the local chain", manage(child, logFile), rpcUrl, `JSON-RPC server at ${rpcUrl}/`, 90_000);
}

/**
 * The chain process once it has said it listens at `rpcUrl` and answers
 * there. Only our own process saying so counts: another process on the port
 * (ours could not bind) would answer the probe as well, with a chain that is
 * not ours. Stops the process if it is not ready in time.
 */
async function chainWhenListening(
  what: string,
  managed: ReturnType<typeof manage>,
  rpcUrl: string,
  marker: string,
  timeoutMs: number,
): Promise<LocalChain> {
  const listening = announced(managed.child, marker);
  try {
    await until(what, timeoutMs, async () => {
      if (!listening.seen()) throw new ConsortError("RPC_UNAVAILABLE", `${what} has not said it listens at ${rpcUrl} yet`);
      return probeChainId(rpcUrl, 1_000);
    }, managed.exitInfo);
  } catch (error) {
    await managed.stop();
    throw error;
  }
  return { ...managed, rpcUrl };
}

/**
 * Starts anvil (Foundry's local node) on 127.0.0.1: it mines a block per
 * transaction, funds the development mnemonic's first 20 accounts (the same
 * keys as devWallet), and answers evm_snapshot / evm_revert / anvil_reorg,
 * with which a test replaces blocks the nodes have already applied.
 */
export async function startAnvilChain(workDir: string, port?: number): Promise<LocalChain> {
  mkdirSync(workDir, { recursive: true });
  const chosen = port ?? (await freePort());
  const logFile = join(workDir, "anvil.log");
  const child = spawnLogged(
    [ANVIL_CLI, "--host", "127.0.0.1", "--port", String(chosen), "--mnemonic", DEV_MNEMONIC, "--accounts", "20", "--chain-id", "31337"],
    logFile,
    { ...process.env, NO_COLOR: "1" },
  );
  return chainWhenListening("anvil", manage(child, logFile), `http://127.0.0.1:${chosen}`, `Listening on 127.0.0.1:${chosen}`, 60_000);
}

export interface LocalNodeSpec {
  readonly name: string;
  readonly wallet: HDNodeWallet;
  readonly rpcUrl: string;
  readonly registry: string;
  readonly deploymentsDir: string;
  readonly workDir: string;
  readonly port?: number;
  readonly config?: Partial<NodeConfigInput>;
}

export interface LocalNode extends ManagedProcess {
  readonly name: string;
  readonly address: string;
  readonly url: string;
  readonly dataDir: string;
  readonly configFile: string;
}

/** Writes a node's config and key file, without starting it (so the party can be registered first). */
export async function prepareLocalNode(spec: LocalNodeSpec): Promise<{ dataDir: string; configFile: string; url: string; port: number }> {
  const dir = join(spec.workDir, spec.name);
  const dataDir = join(dir, "data");
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const port = spec.port ?? (await freePort());
  const keyFile = join(dir, "signing-key");
  writeFileSync(keyFile, `${spec.wallet.privateKey}\n`, { mode: 0o600 });
  const config: NodeConfigInput = {
    rpcUrl: spec.rpcUrl,
    registry: spec.registry,
    deploymentsDir: spec.deploymentsDir,
    privateKeyFile: keyFile,
    dataDir,
    host: "127.0.0.1",
    port,
    confirmations: 1,
    pollIntervalMs: 200,
    protocolTimeoutMs: 30_000,
    takeoverDelayMs: 5_000,
    logLevel: "info",
    ...spec.config,
  };
  const configFile = join(dir, "config.json");
  writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
  return { dataDir, configFile, url: `http://127.0.0.1:${port}`, port };
}

/** Starts `consort node start` as its own OS process and waits until its API answers. */
export async function startLocalNode(spec: LocalNodeSpec, prepared: { dataDir: string; configFile: string; url: string }): Promise<LocalNode> {
  const logFile = join(spec.workDir, spec.name, "node.log");
  const child = spawnLogged([CONSORT_CLI, "node", "start", "--config", prepared.configFile], logFile, {
    ...process.env,
    CONSORT_PRIVATE_KEY: "",
  });
  const managed = manage(child, logFile);
  try {
    const health = (await until(`node ${spec.name}`, 60_000, () => getJson(prepared.url, "/v1/health", { timeoutMs: 1_000 }), managed.exitInfo)) as { party?: unknown };
    // Another process on the port (this node could not listen) must not pass for this node.
    if (typeof health.party !== "string" || health.party.toLowerCase() !== spec.wallet.address.toLowerCase()) {
      throw new ConsortError("INTERNAL", `${prepared.url} answers as party ${String(health.party)}, not as ${spec.name} (${spec.wallet.address}): is another process on that port?`);
    }
  } catch (error) {
    await managed.stop();
    throw error;
  }
  return { ...managed, name: spec.name, address: spec.wallet.address, url: prepared.url, dataDir: prepared.dataDir, configFile: prepared.configFile };
}

export interface LocalClusterOptions {
  readonly parties: number;
  readonly owners: number;
  /** Settings every node gets on top of prepareLocalNode's defaults. */
  readonly config?: Partial<NodeConfigInput>;
  /** Prefix of the temporary folder that holds the chain, the nodes and the owners' state. */
  readonly name?: string;
  /** The chain: Hardhat's EDR (the default) or anvil, which can reorganise blocks the nodes have applied. */
  readonly chain?: "hardhat" | "anvil";
  /** Whether the nodes reach the chain through an RpcProxy the caller can take down (the cluster's own provider does not). */
  readonly rpcProxy?: boolean;
}

/**
 * An embedded chain, the registry, n registered Consort nodes as separate OS
 * processes (real HTTP on 127.0.0.1) and data-owner keys: what the
 * benchmarks and the end-to-end tests run on. Nodes can be killed (SIGKILL,
 * as a crash) and started again on the same data directory and port.
 */
export interface LocalCluster {
  readonly chain: LocalChain;
  readonly provider: JsonRpcProvider;
  /** The registry, with the requester's key (development account 0). */
  readonly registry: RegistryClient;
  /** The nodes as they run now (replaced by start()). */
  readonly nodes: LocalNode[];
  readonly owners: readonly HDNodeWallet[];
  readonly workDir: string;
  /** The proxy between the nodes and the chain, when the cluster was asked for one. */
  readonly proxy: RpcProxy | undefined;
  /** Kills node `index` at once (SIGKILL: no clean shutdown, as a crash would). */
  kill(index: number): Promise<void>;
  /** Starts node `index` again on its data directory, port and key. */
  start(index: number): Promise<LocalNode>;
  /** Stops everything and removes the work folder, unless asked to keep it (for a failure's logs). */
  stop(options?: { keepWorkDir?: boolean }): Promise<void>;
}

export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const workDir = mkdtempSync(join(tmpdir(), `${options.name ?? "consort-cluster"}-`));
  const chain = options.chain === "anvil" ? await startAnvilChain(workDir) : await startLocalChain(workDir);
  const proxy = options.rpcProxy === true ? new RpcProxy(await freePort(), Number(new URL(chain.rpcUrl).port)) : undefined;
  await proxy?.up();
  const provider = await connectProvider(chain.rpcUrl, { pollingIntervalMs: 50 });
  const deployment = await deployRegistry(devWallet(0).connect(provider));
  const specs: { spec: LocalNodeSpec; prepared: Awaited<ReturnType<typeof prepareLocalNode>> }[] = [];
  for (let i = 0; i < options.parties; i++) {
    const wallet = devWallet(1 + i);
    const spec: LocalNodeSpec = {
      name: `party-${i}`,
      wallet,
      rpcUrl: proxy?.url ?? chain.rpcUrl,
      registry: deployment.registry,
      deploymentsDir: join(workDir, "deployments"),
      workDir,
      ...(options.config === undefined ? {} : { config: options.config }),
    };
    const prepared = await prepareLocalNode(spec);
    await registerNodeParty(await RegistryClient.connect(wallet.connect(provider), deployment.registry), wallet.address, prepared.dataDir, prepared.url);
    specs.push({ spec, prepared });
  }
  const nodes = await Promise.all(specs.map(({ spec, prepared }) => startLocalNode(spec, prepared)));
  const registry = await RegistryClient.connect(devWallet(0).connect(provider), deployment.registry);
  const owners = Array.from({ length: options.owners }, (_, i) => devWallet(1 + options.parties + i));
  return {
    chain,
    provider,
    registry,
    nodes,
    owners,
    workDir,
    proxy,
    kill: async (index) => {
      const child = nodes[index]!.child;
      if (child.exitCode !== null || child.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      });
    },
    start: async (index) => {
      const { spec, prepared } = specs[index]!;
      nodes[index] = await startLocalNode(spec, prepared);
      return nodes[index]!;
    },
    stop: async (stopOptions) => {
      provider.destroy();
      await Promise.allSettled(nodes.map((n) => n.stop()));
      await proxy?.down();
      await chain.stop();
      if (stopOptions?.keepWorkDir !== true) rmSync(workDir, { recursive: true, force: true });
    },
  };
}

/**
 * Creates a task over the cluster's nodes and its first `inputs.length`
 * owners, and has every owner submit its values through the real client
 * (which retries parties that are down). Resolves with the task id once every
 * owner's shares are delivered.
 */
export async function submitLocalTask(
  cluster: Pick<LocalCluster, "provider" | "registry" | "nodes" | "owners" | "workDir">,
  program: Program,
  inputs: readonly (readonly bigint[])[],
  threshold: number,
  onCreated?: (taskId: bigint) => void | Promise<void>,
): Promise<bigint> {
  const now = await chainNow(cluster.provider);
  const { taskId } = await cluster.registry.createTask({
    program: encodeProgram(program),
    parties: cluster.nodes.map((n) => n.address),
    dataOwners: cluster.owners.slice(0, inputs.length).map((o) => o.address),
    threshold,
    inputDeadline: now + 3_600n,
    resultDeadline: now + 7_200n,
  });
  await onCreated?.(taskId);
  await Promise.all(
    inputs.map(async (values, i) => {
      const owner = cluster.owners[i]!.connect(cluster.provider);
      await submitInput({
        registry: await RegistryClient.connect(owner, cluster.registry.address),
        signer: owner,
        taskId,
        values,
        stateDir: join(cluster.workDir, "inputs"),
        deliveryTimeoutMs: 120_000,
      });
    }),
  );
  return taskId;
}

/**
 * A development key's signer for many concurrent transactions. A plain
 * wallet reads the same pending nonce for concurrent transactions (all but
 * one are refused: "nonce has already been used"); ethers' NonceManager
 * takes the nonce before estimating gas, so a request that fails there
 * leaves a gap every later transaction waits behind. Here a transaction is
 * prepared (gas, fees) first, takes the next nonce only then, and is
 * broadcast concurrently with the others; a broadcast that fails in
 * transport (a keep-alive connection the RPC closed, say) is sent again as
 * the same signed bytes, which the chain includes at most once.
 */
export class ConcurrentTxSigner extends AbstractSigner {
  readonly #wallet: Wallet | HDNodeWallet;
  #nonce: Promise<number> | undefined;

  constructor(wallet: Wallet | HDNodeWallet) {
    super(wallet.provider);
    this.#wallet = wallet;
  }

  override connect(): never {
    throw new ConsortError("INTERNAL", "a ConcurrentTxSigner stays on the provider it was made with");
  }

  override getAddress(): Promise<string> {
    return this.#wallet.getAddress();
  }

  override signTransaction(tx: TransactionRequest): Promise<string> {
    return this.#wallet.signTransaction(tx);
  }

  override signMessage(message: string | Uint8Array): Promise<string> {
    return this.#wallet.signMessage(message);
  }

  override signTypedData(domain: TypedDataDomain, types: Record<string, TypedDataField[]>, value: Record<string, unknown>): Promise<string> {
    return this.#wallet.signTypedData(domain, types, value);
  }

  override async sendTransaction(tx: TransactionRequest): Promise<TransactionResponse> {
    const { nonce: _ignored, ...populated } = await this.#wallet.populateTransaction({ ...tx, nonce: 0 });
    // Taken with no await between reading and advancing: concurrent calls get consecutive nonces.
    const base = this.#nonce ?? this.#wallet.getNonce("pending");
    this.#nonce = base.then((n) => n + 1);
    const signed = await this.#wallet.signTransaction({ ...populated, nonce: await base });
    const provider = this.#wallet.provider!;
    for (let attempt = 1; ; attempt++) {
      try {
        return await provider.broadcastTransaction(signed);
      } catch (error) {
        if (attempt > 1 && /already known|nonce has already been used|nonce too low/i.test(String((error as Error).message))) {
          // An earlier attempt reached the chain after all.
          const hash = keccak256(signed);
          for (;;) {
            const known = await provider.getTransaction(hash);
            if (known !== null) return known;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        if (attempt >= 5 || !toConsortError(error).retryable) {
          // This nonce may now be a gap: the next transaction asks the chain for its pending count, and fills it.
          this.#nonce = undefined;
          throw error;
        }
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }
}

/** When one task of submitLocalTasksAtOnce was created and when its owners' shares were all delivered (performance.now()). */
export interface LocalTaskSubmission {
  readonly taskId: bigint;
  /** The createTask call began. */
  readonly startedAt: number;
  /** Its receipt was read: the task exists on chain. */
  readonly createdAt: number;
  /** Every owner's submitInput resolved: committed on chain and delivered to every party. */
  readonly deliveredAt: number;
  /** createTask and submitInput calls that failed with a retryable error and were run again (submitInput resuming from its pending file). */
  readonly resubmissions: number;
}

/**
 * Creates all `tasks` at once and has every owner submit to all of them at
 * once (what a load test needs). The requester and each owner send their
 * transactions from one key each, through a ConcurrentTxSigner. A createTask or
 * an owner's submitInput that fails with a retryable error is run again, as
 * a data owner would (submitInput resumes from its pending file), up to 5
 * times. Every task uses the cluster's nodes and its first `inputs.length`
 * owners.
 */
export async function submitLocalTasksAtOnce(
  cluster: Pick<LocalCluster, "provider" | "registry" | "nodes" | "owners" | "workDir">,
  tasks: readonly { readonly program: Program; readonly inputs: readonly (readonly bigint[])[] }[],
  threshold: number,
  /** submitInput's progress events, with the task and the owner's index (the load bench times the steps with them). */
  onProgress?: (taskId: bigint, owner: number, event: { step: string; [key: string]: unknown }) => void,
): Promise<LocalTaskSubmission[]> {
  const requester = await RegistryClient.connect(new ConcurrentTxSigner(devWallet(0).connect(cluster.provider)), cluster.registry.address);
  const ownerCount = Math.max(0, ...tasks.map((t) => t.inputs.length));
  const owners = await Promise.all(
    cluster.owners.slice(0, ownerCount).map(async (wallet) => {
      const signer = new ConcurrentTxSigner(wallet.connect(cluster.provider));
      return { signer, registry: await RegistryClient.connect(signer, cluster.registry.address) };
    }),
  );
  const now = await chainNow(cluster.provider);
  return Promise.all(
    tasks.map(async ({ program, inputs }) => {
      const startedAt = performance.now();
      let resubmissions = 0;
      let taskId: bigint | undefined;
      for (let attempt = 1; taskId === undefined; attempt++) {
        try {
          ({ taskId } = await requester.createTask({
            program: encodeProgram(program),
            parties: cluster.nodes.map((n) => n.address),
            dataOwners: cluster.owners.slice(0, inputs.length).map((o) => o.address),
            threshold,
            inputDeadline: now + 3_600n,
            resultDeadline: now + 7_200n,
          }));
        } catch (error) {
          // A read that failed after the broadcast (the receipt) leaves a task nobody submits to: it only expires.
          if (attempt >= 5 || !toConsortError(error).retryable) throw error;
          resubmissions++;
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
      const createdAt = performance.now();
      await Promise.all(
        inputs.map(async (values, i) => {
          for (let attempt = 1; ; attempt++) {
            onProgress?.(taskId, i, { step: "start", attempt });
            try {
              await submitInput({
                registry: owners[i]!.registry,
                signer: owners[i]!.signer,
                taskId,
                values,
                stateDir: join(cluster.workDir, "inputs"),
                deliveryTimeoutMs: 300_000,
                ...(onProgress === undefined ? {} : { onProgress: (event) => onProgress(taskId, i, event) }),
              });
              return;
            } catch (error) {
              const e = toConsortError(error);
              if (attempt >= 5 || !e.retryable) throw error;
              onProgress?.(taskId, i, { step: "resubmit", reason: `${e.code}: ${e.message}` });
              resubmissions++;
              await new Promise((r) => setTimeout(r, 200 * attempt));
            }
          }
        }),
      );
      return { taskId, startedAt, createdAt, deliveredAt: performance.now(), resubmissions };
    }),
  );
}
