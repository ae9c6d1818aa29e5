import { expect } from "chai";
import { keccak256 } from "ethers";
import { startLocalCluster, submitLocalTasksAtOnce, type LocalCluster } from "../../node/dev/local-cluster.ts";
import { evaluatePlain } from "../../node/program/plain-evaluator.ts";
import type { Program } from "../../node/program/program.ts";
import { encodeResult } from "../../node/program/result-encoding.ts";
import { maxAndArgmax, standardInputName, totalAndMean } from "../../node/program/standard-programs.ts";
import { getJson } from "../../node/transport/http-client.ts";

/**
 * End to end under concurrency: twenty tasks created at once on three node
 * processes, every owner submitting to all of them at once, half of them
 * comparisons (many rounds each), so the nodes run every task together and
 * interleave their rounds over the same peer connections. Every task must
 * finalize with its own plaintext result, on chain and in each node's store,
 * with no task failed anywhere.
 */
describe("e2e: twenty concurrent tasks on three nodes", function () {
  this.timeout(180_000);

  let cluster: LocalCluster;

  before(async () => {
    cluster = await startLocalCluster({
      parties: 3,
      owners: 3,
      name: "consort-e2e-concurrent",
      config: { confirmations: 0, pollIntervalMs: 100, logLevel: "warn" },
    });
  });

  after(async () => {
    await cluster?.stop();
  });

  it("finalizes every task with its plaintext result", async () => {
    const programs = [totalAndMean({ owners: 3, valuesPerOwner: 1, bits: 32 }), maxAndArgmax({ owners: 3, valuesPerOwner: 1, bits: 16 })];
    // Distinct inputs per task, so a result delivered to the wrong task cannot pass.
    const tasks = Array.from({ length: 20 }, (_, t) => ({
      program: programs[t % 2]!,
      inputs: [0, 1, 2].map((o) => [BigInt(((t + 1) * 7_919 + (o + 1) * 4_241) % 30_011) - 15_000n]),
    }));
    const submitted = await submitLocalTasksAtOnce(cluster, tasks, 1);
    expect(new Set(submitted.map((s) => s.taskId)).size).to.equal(tasks.length);

    const expectedHash = (program: Program, inputs: readonly (readonly bigint[])[]) =>
      keccak256(encodeResult(program, evaluatePlain(program, Object.fromEntries(inputs.map((v, o) => [standardInputName(o), v])))));
    // Each node marks a task finalized once it has applied the chain's TaskFinalized event.
    const statusAt = async (url: string, taskId: bigint) =>
      (await getJson(url, `/v1/tasks/${taskId}`, { timeoutMs: 10_000 })) as { status: string; resultHash: string | null };
    const deadline = Date.now() + 150_000;
    const pending = new Set(submitted.flatMap((s) => cluster.nodes.map((n) => `${s.taskId}@${n.url}`)));
    while (pending.size > 0) {
      for (const key of [...pending]) {
        const [id, url] = key.split("@") as [string, string];
        const { status } = await statusAt(url, BigInt(id));
        expect(["failed", "expired"], `task ${id} at ${url}; logs in ${cluster.workDir}`).to.not.include(status);
        if (status === "finalized") pending.delete(key);
      }
      if (pending.size === 0) break;
      if (Date.now() > deadline) throw new Error(`not finalized: ${[...pending].join(", ")}; logs in ${cluster.workDir}`);
      await new Promise((r) => setTimeout(r, 500));
    }

    for (const [t, { taskId }] of submitted.entries()) {
      const want = expectedHash(tasks[t]!.program, tasks[t]!.inputs);
      expect((await cluster.registry.getTask(taskId)).resultHash, `task ${taskId} on chain`).to.equal(want);
      for (const node of cluster.nodes) expect((await statusAt(node.url, taskId)).resultHash, `task ${taskId} at ${node.name}`).to.equal(want);
    }
  });
});
