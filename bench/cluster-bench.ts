/**
 * A benchmark cluster: an embedded chain, the registry, n Consort nodes as
 * separate OS processes (real HTTP on 127.0.0.1), and data owners. Nodes
 * apply events at the chain head (confirmations 0; the local chain mines
 * every transaction at once) and poll every 50 ms, so the figures measure
 * Consort, not block times.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { HDNodeWallet, JsonRpcProvider } from "ethers";
import { deployRegistry } from "../node/chain/deployments.ts";
import { RegistryClient } from "../node/chain/registry-client.ts";
import { connectProvider } from "../node/chain/rpc-provider.ts";
import { chainNow } from "../node/client/client-connection.ts";
import { submitInput } from "../node/client/data-owner-client.ts";
import { devWallet, prepareLocalNode, startLocalChain, startLocalNode, type LocalChain, type LocalNode } from "../node/dev/local-cluster.ts";
import { registerNodeParty } from "../node/daemon/register-node-party.ts";
import { getJson } from "../node/transport/http-client.ts";
import { encodeProgram } from "../node/program/program-encoding.ts";
import type { Program } from "../node/program/program.ts";

export interface BenchCluster {
  readonly chain: LocalChain;
  readonly provider: JsonRpcProvider;
  readonly registry: RegistryClient;
  readonly nodes: readonly LocalNode[];
  readonly owners: readonly HDNodeWallet[];
  readonly workDir: string;
  stop(): Promise<void>;
}

export async function startBenchCluster(parties: number, owners: number): Promise<BenchCluster> {
  const workDir = mkdtempSync(join(tmpdir(), "consort-bench-"));
  const chain = await startLocalChain(workDir);
  const provider = await connectProvider(chain.rpcUrl, { pollingIntervalMs: 50 });
  const deployment = await deployRegistry(devWallet(0).connect(provider));
  const prepared = [];
  for (let i = 0; i < parties; i++) {
    const wallet = devWallet(1 + i);
    const spec = {
      name: `party-${i}`,
      wallet,
      rpcUrl: chain.rpcUrl,
      registry: deployment.registry,
      deploymentsDir: join(workDir, "deployments"),
      workDir,
      config: { confirmations: 0, pollIntervalMs: 100, logLevel: "warn" as const, protocolTimeoutMs: 120_000 },
    };
    const p = await prepareLocalNode(spec);
    await registerNodeParty(await RegistryClient.connect(wallet.connect(provider), deployment.registry), wallet.address, p.dataDir, p.url);
    prepared.push({ spec, p });
  }
  const nodes = await Promise.all(prepared.map(({ spec, p }) => startLocalNode(spec, p)));
  const registry = await RegistryClient.connect(devWallet(0).connect(provider), deployment.registry);
  const ownerWallets = Array.from({ length: owners }, (_, i) => devWallet(1 + parties + i));
  return {
    chain,
    provider,
    registry,
    nodes,
    owners: ownerWallets,
    workDir,
    stop: async () => {
      provider.destroy();
      await Promise.allSettled(nodes.map((n) => n.stop()));
      await chain.stop();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

export interface TaskTiming {
  readonly taskId: bigint;
  /** From sending createTask to seeing the task Finalized on chain. */
  readonly totalMs: number;
  /** From the last input delivered to Finalized: computation, attestation and the finalize transaction. */
  readonly computeMs: number;
}

/**
 * Runs one task end to end: create, every owner submits `inputs[i]`, wait for
 * finalization, asking the chain every `pollMs` (the end-to-end figure wants
 * it small; the others time the computation inside the nodes and want the
 * machine quiet).
 */
export async function runTask(cluster: BenchCluster, program: Program, inputs: readonly (readonly bigint[])[], threshold: number, pollMs = 50): Promise<TaskTiming> {
  const started = performance.now();
  const now = await chainNow(cluster.provider);
  const { taskId } = await cluster.registry.createTask({
    program: encodeProgram(program),
    parties: cluster.nodes.map((n) => n.address),
    dataOwners: cluster.owners.slice(0, inputs.length).map((o) => o.address),
    threshold,
    inputDeadline: now + 3_600n,
    resultDeadline: now + 7_200n,
  });
  await Promise.all(
    inputs.map(async (values, i) => {
      const owner = cluster.owners[i]!.connect(cluster.provider);
      await submitInput({
        registry: await RegistryClient.connect(owner, cluster.registry.address),
        signer: owner,
        taskId,
        values,
        stateDir: join(cluster.workDir, "inputs"),
      });
    }),
  );
  const delivered = performance.now();
  for (;;) {
    const state = await cluster.registry.taskState(taskId);
    if (state === "Finalized") break;
    if (state === "Expired") throw new Error(`task ${taskId} expired`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
  const done = performance.now();
  return { taskId, totalMs: done - started, computeMs: done - delivered };
}

/** Sum of the bytes every node reports having sent to peers (GET /v1/health). */
export async function bytesSent(cluster: BenchCluster): Promise<number> {
  let total = 0;
  for (const node of cluster.nodes) {
    const health = (await getJson(node.url, "/v1/health", { timeoutMs: 5_000 })) as { peerBytesSent?: number };
    total += health.peerBytesSent ?? 0;
  }
  return total;
}
