import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { network } from "hardhat";
import { JsonRpcProvider, Network, SigningKey, getBytes, keccak256, toUtf8Bytes } from "ethers";
import type { Contract, ContractTransactionResponse, Provider } from "ethers";
import { deployRegistry } from "../../node/chain/deployments.ts";
import { EventWatcher } from "../../node/chain/event-watcher.ts";
import type { ApplyEvents, ChainCursor, EventWatcherOptions, RewindOutcome, WatchedEvent } from "../../node/chain/event-watcher.ts";
import { loadRegistryArtifact } from "../../node/chain/registry-artifact.ts";
import { RegistryClient } from "../../node/chain/registry-client.ts";
import { ConsortError } from "../../node/errors.ts";
import { NodeStore, type ReorgRollback } from "../../node/store/node-store.ts";

const { ethers, networkHelpers } = await network.create();
type Account = Awaited<ReturnType<typeof ethers.getSigners>>[number];

const TASK_EVENTS = new Set(["TaskCreated", "InputCommitted", "TaskFinalized", "TaskExpired"]);

function encryptionKey(label: string): string {
  return new SigningKey(keccak256(toUtf8Bytes(`watcher-test:${label}`))).compressedPublicKey;
}

function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no item at index ${index} (length ${items.length})`);
  return item;
}

/** Events in chain order: strictly increasing (blockNumber, logIndex). */
function expectChainOrder(events: readonly WatchedEvent[]): void {
  for (let i = 1; i < events.length; i++) {
    const a = at(events, i - 1);
    const b = at(events, i);
    expect(a.blockNumber < b.blockNumber || (a.blockNumber === b.blockNumber && a.logIndex < b.logIndex), `${a.key} before ${b.key}`).to.equal(true);
  }
}

function expectNoRepeats(events: readonly WatchedEvent[]): void {
  const keys = events.map((e) => e.key);
  expect(new Set(keys).size, "an event was delivered twice").to.equal(keys.length);
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("chain/event-watcher", function () {
  let accounts: Account[];
  let registry: RegistryClient;
  let deployBlock: number;
  let dir: string;
  let stores: NodeStore[];
  let watchers: { stop(): Promise<void> }[];

  beforeEach(async () => {
    accounts = await ethers.getSigners();
    const deployment = await deployRegistry(at(accounts, 0));
    registry = await RegistryClient.connect(at(accounts, 0), deployment.registry);
    deployBlock = deployment.blockNumber;
    dir = mkdtempSync(join(tmpdir(), "consort-watcher-"));
    stores = [];
    watchers = [];
  });

  afterEach(async () => {
    for (const w of watchers) await w.stop();
    for (const s of stores) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function openStore(name = "node.sqlite"): NodeStore {
    const store = NodeStore.open(join(dir, name));
    stores.push(store);
    return store;
  }

  /** The node's apply (consort-node.ts applyEvents): mark each event, then advance the cursor, in one transaction. */
  function nodeApply(store: NodeStore, received: WatchedEvent[], applied: WatchedEvent[] = []): ApplyEvents {
    return (events, cursor) => {
      received.push(...events);
      store.transaction(() => {
        for (const event of events) {
          const taskId = TASK_EVENTS.has(event.name) ? (event.args.getValue("taskId") as bigint) : undefined;
          if (store.markEventApplied(event.key, event.blockNumber, event.name, taskId)) applied.push(event);
        }
        store.advanceCursor(cursor);
      });
    };
  }

  function watcher<R extends RewindOutcome = RewindOutcome>(
    options: Partial<EventWatcherOptions<R>> & Pick<EventWatcherOptions<R>, "store" | "apply">,
  ): EventWatcher<R> {
    const w = new EventWatcher<R>({
      provider: ethers.provider,
      address: registry.address,
      iface: loadRegistryArtifact().iface,
      startBlock: deployBlock,
      confirmations: 0,
      pollIntervalMs: 10,
      ...options,
    });
    watchers.push(w);
    return w;
  }

  async function register(index: number, label = `party-${index}`): Promise<void> {
    await registry.connectRunner(at(accounts, index)).registerParty(encryptionKey(label), `http://127.0.0.1:${7000 + index}`);
  }

  /** A task over parties 1..3 (registered here if needed) with data owners 4 and 5; returns its id. */
  async function createTask(): Promise<bigint> {
    for (const i of [1, 2, 3]) if (!(await registry.isRegistered(at(accounts, i).address))) await register(i);
    const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
    const { taskId } = await registry.connectRunner(at(accounts, 6)).createTask({
      program: toUtf8Bytes("opaque program bytes"),
      parties: [1, 2, 3].map((i) => at(accounts, i).address),
      dataOwners: [4, 5].map((i) => at(accounts, i).address),
      threshold: 1,
      inputDeadline: now + 10_000n,
      resultDeadline: now + 20_000n,
    });
    return taskId;
  }

  async function commit(taskId: bigint, owner: number): Promise<void> {
    await registry.connectRunner(at(accounts, owner)).commitInput(taskId, keccak256(toUtf8Bytes(`commitment-${taskId}-${owner}`)));
  }

  /** Every registry log from the deployment block on, as the chain reports it now. */
  async function chainEventKeys(): Promise<string[]> {
    const logs = await ethers.provider.getLogs({ address: registry.address, fromBlock: deployBlock, toBlock: "latest" });
    return logs.map((log) => `${log.transactionHash}:${log.index}`);
  }

  /** Sends `count` party registrations in one block (automine off), so that block holds several logs. */
  async function registerInOneBlock(indices: readonly number[]): Promise<number> {
    await ethers.provider.send("evm_setAutomine", [false]);
    try {
      const sent: ContractTransactionResponse[] = [];
      for (const i of indices) {
        const contract = registry.contract.connect(at(accounts, i)) as Contract;
        sent.push((await contract.getFunction("registerParty")(encryptionKey(`batch-${i}`), `http://127.0.0.1:${8000 + i}`)) as ContractTransactionResponse);
      }
      await ethers.provider.send("evm_mine", []);
      const receipts = await Promise.all(sent.map((tx) => ethers.provider.getTransactionReceipt(tx.hash)));
      const blocks = new Set(receipts.map((r) => r?.blockNumber));
      expect(blocks.size, "all registrations mined in one block").to.equal(1);
      return receipts[0]!.blockNumber;
    } finally {
      await ethers.provider.send("evm_setAutomine", [true]);
    }
  }

  it("refuses a negative or fractional confirmation depth", () => {
    const store = openStore();
    for (const confirmations of [-1, 1.5]) {
      let error: unknown;
      try {
        watcher({ store, apply: () => undefined, confirmations });
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(ConsortError);
      expect((error as ConsortError).code).to.equal("CONFIG_INVALID");
    }
  });

  it("delivers every registry event exactly once, in (block, logIndex) order, across many polls and small ranges", async () => {
    const store = openStore();
    const received: WatchedEvent[] = [];
    const cursors: ChainCursor[] = [];
    const apply = nodeApply(store, received);
    const w = watcher({
      store,
      maxBlockRange: 3,
      apply: (events, cursor) => {
        cursors.push(cursor);
        return apply(events, cursor);
      },
    });

    await w.pollOnce();
    await register(1);
    await register(2);
    await w.pollOnce();
    const multiBlock = await registerInOneBlock([7, 8, 9, 10]);
    const taskId = await createTask();
    await networkHelpers.mine(5); // empty blocks: ranges without logs
    await w.pollOnce();
    await commit(taskId, 4);
    await w.pollOnce();
    await w.pollOnce(); // nothing new
    await commit(taskId, 5);
    await registry.connectRunner(at(accounts, 1)).updateParty(encryptionKey("party-1-rotated"), "http://127.0.0.1:9001");
    const last = await w.pollOnce();

    const head = await ethers.provider.getBlockNumber();
    expect(last?.blockNumber).to.equal(head);
    expect(last?.blockHash).to.equal((await ethers.provider.getBlock(head))!.hash);
    expect(received.map((e) => e.key)).to.deep.equal(await chainEventKeys());
    expectNoRepeats(received);
    expectChainOrder(received);
    // 3 + 4 registrations, the task, 2 commitments and an update.
    expect(received.map((e) => e.name)).to.deep.equal([
      "PartyRegistered",
      "PartyRegistered",
      ...Array<string>(4).fill("PartyRegistered"),
      "PartyRegistered", // party 3, registered by createTask()
      "TaskCreated",
      "InputCommitted",
      "InputCommitted",
      "PartyUpdated",
    ]);
    const batch = received.filter((e) => e.blockNumber === multiBlock);
    expect(batch).to.have.length(4);
    expect(batch.map((e) => e.logIndex)).to.deep.equal([...batch.map((e) => e.logIndex)].sort((a, b) => a - b));
    // Decoded arguments and positions are those of the chain.
    const created = received.find((e) => e.name === "TaskCreated")!;
    expect(created.args.getValue("taskId")).to.equal(taskId);
    expect(created.blockHash).to.equal((await ethers.provider.getBlock(created.blockNumber))!.hash);
    // Ranges never exceed maxBlockRange and are contiguous from the deployment block.
    let previous = deployBlock - 1;
    for (const c of cursors) {
      expect(c.blockNumber - previous).to.be.within(1, 3);
      previous = c.blockNumber;
    }
    expect(store.countAppliedEvents()).to.equal(received.length);
    expect(store.loadCursor()).to.deep.equal(last);
  });

  it("applies an event only once `confirmations` blocks are on top of it", async () => {
    const store = openStore();
    const received: WatchedEvent[] = [];
    const w = watcher({ store, confirmations: 3, apply: nodeApply(store, received) });
    await networkHelpers.mine(5);
    await register(1);
    const eventBlock = await ethers.provider.getBlockNumber();

    expect((await w.pollOnce())?.blockNumber).to.equal(eventBlock - 3);
    expect(received).to.deep.equal([]);
    await networkHelpers.mine(2);
    await w.pollOnce();
    expect(received).to.deep.equal([]);
    expect(store.loadCursor()?.blockNumber).to.equal(eventBlock - 1);

    await networkHelpers.mine(1);
    const cursor = await w.pollOnce();
    expect(received.map((e) => [e.name, e.blockNumber])).to.deep.equal([["PartyRegistered", eventBlock]]);
    expect(cursor).to.deep.equal({ blockNumber: eventBlock, blockHash: (await ethers.provider.getBlock(eventBlock))!.hash });
    await networkHelpers.mine(4);
    await w.pollOnce();
    expect(received).to.have.length(1);
  });

  it("resumes from the persisted cursor after a restart: nothing missed, nothing repeated", async () => {
    const file = "restart.sqlite";
    const received: WatchedEvent[] = [];
    const applied: WatchedEvent[] = [];
    const errors: ConsortError[] = [];

    let store = openStore(file);
    const first = watcher({ store, maxBlockRange: 4, apply: nodeApply(store, received, applied), onError: (e) => errors.push(e) });
    first.start();
    first.start(); // a second start is a no-op, not a second loop
    await register(1);
    await register(2);
    const taskId = await createTask();
    const seenHead = await ethers.provider.getBlockNumber();
    await waitFor(() => (store.loadCursor()?.blockNumber ?? -1) >= seenHead, "the first watcher to reach the head");
    await first.stop();
    const appliedBeforeStop = received.length;

    // Emitted while no watcher runs.
    await commit(taskId, 4);
    await commit(taskId, 5);
    await register(11);
    await networkHelpers.mine(6);
    expect(received).to.have.length(appliedBeforeStop);

    store.close();
    store = openStore(file);
    expect(store.loadCursor()?.blockNumber).to.be.at.least(seenHead);
    const second = watcher({ store, maxBlockRange: 4, apply: nodeApply(store, received, applied), onError: (e) => errors.push(e) });
    second.start();
    const head = await ethers.provider.getBlockNumber();
    await waitFor(() => (store.loadCursor()?.blockNumber ?? -1) >= head, "the second watcher to reach the head");
    await second.stop();

    expect(errors).to.deep.equal([]);
    expect(received.map((e) => e.key)).to.deep.equal(await chainEventKeys());
    expect(applied.map((e) => e.key)).to.deep.equal(received.map((e) => e.key));
    expectNoRepeats(received);
    expectChainOrder(received);
    expect(received.slice(appliedBeforeStop).map((e) => e.name)).to.deep.equal(["InputCommitted", "InputCommitted", "PartyRegistered"]);
    expect(store.countAppliedEvents()).to.equal(received.length);
  });

  it("a failing apply commits nothing: the range is delivered again on the next poll", async () => {
    const store = openStore();
    const received: WatchedEvent[] = [];
    const apply = nodeApply(store, received);
    let failNext = true;
    const w = watcher({
      store,
      apply: (events, cursor) =>
        store.transaction(() => {
          void apply(events, cursor); // joins this transaction
          if (failNext && events.length > 0) {
            failNext = false;
            throw new ConsortError("INTERNAL", "handler crashed");
          }
        }),
    });
    await register(1);
    await register(2);
    let error: unknown;
    try {
      await w.pollOnce();
    } catch (e) {
      error = e;
    }
    expect((error as ConsortError).code).to.equal("INTERNAL");
    expect(store.loadCursor()).to.equal(undefined);
    expect(store.countAppliedEvents()).to.equal(0);

    await w.pollOnce();
    expect(store.countAppliedEvents()).to.equal(2);
    expect(received.slice(2).map((e) => e.key)).to.deep.equal(await chainEventKeys());
  });

  it("detects a reorg, rewinds to the fork point and applies the new chain's events only", async () => {
    const store = openStore();
    const received: WatchedEvent[] = [];
    const applied: WatchedEvent[] = [];
    const reorgs: [ChainCursor, ChainCursor | undefined][] = [];
    const w = watcher({ store, apply: nodeApply(store, received, applied), onReorg: (from, to) => reorgs.push([from, to]) });

    await register(1);
    const fork = await w.pollOnce();
    const kept = await chainEventKeys();
    const snapshot = (await ethers.provider.send("evm_snapshot", [])) as string;

    await register(2, "old-2");
    await register(3, "old-3");
    await networkHelpers.mine(1);
    const oldTip = await w.pollOnce();
    const oldKeys = (await chainEventKeys()).slice(kept.length);
    expect(oldKeys).to.have.length(2);
    expect(received.map((e) => e.key)).to.deep.equal([...kept, ...oldKeys]);

    // Replace the blocks above the fork with different ones, and go higher than the old tip.
    expect(await ethers.provider.send("evm_revert", [snapshot])).to.equal(true);
    await register(4, "new-4");
    await networkHelpers.mine(1);
    await register(2, "new-2");
    await networkHelpers.mine(2);
    expect(await ethers.provider.getBlockNumber()).to.be.greaterThan(oldTip!.blockNumber);
    expect((await ethers.provider.getBlock(oldTip!.blockNumber))!.hash).to.not.equal(oldTip!.blockHash);

    const newTip = await w.pollOnce();
    expect(reorgs).to.deep.equal([[oldTip, fork]]);
    const newKeys = (await chainEventKeys()).slice(kept.length);
    expect(newKeys).to.have.length(2);
    expect(received.map((e) => e.key)).to.deep.equal([...kept, ...oldKeys, ...newKeys]);
    expect(newKeys.some((k) => oldKeys.includes(k))).to.equal(false);
    const newEvents = received.slice(kept.length + oldKeys.length);
    expect(newEvents.map((e) => e.args.getValue("party"))).to.deep.equal([at(accounts, 4).address, at(accounts, 2).address]);
    expect(newEvents.map((e) => e.args.getValue("endpoint"))).to.deep.equal(["http://127.0.0.1:7004", "http://127.0.0.1:7002"]);
    // The store holds the new chain only: applied keys and the cursor history.
    expect(store.countAppliedEvents()).to.equal(kept.length + newKeys.length);
    expect(newTip).to.deep.equal({ blockNumber: await ethers.provider.getBlockNumber(), blockHash: (await ethers.provider.getBlock("latest"))!.hash });
    for (const c of store.cursorHistory()) expect((await ethers.provider.getBlock(c.blockNumber))!.hash).to.equal(c.blockHash);

    await w.pollOnce();
    expect(reorgs).to.have.length(1);
    expect(received).to.have.length(kept.length + oldKeys.length + newKeys.length);
  });

  it("rewinds to the start block when no stored position survives the reorg", async () => {
    const store = openStore();
    const received: WatchedEvent[] = [];
    const reorgs: [ChainCursor, ChainCursor | undefined][] = [];
    const snapshot = (await ethers.provider.send("evm_snapshot", [])) as string;
    const w = watcher({ store, apply: nodeApply(store, received), onReorg: (from, to) => reorgs.push([from, to]) });
    await register(1, "old-1");
    const oldTip = await w.pollOnce();
    const oldKeys = await chainEventKeys();

    await ethers.provider.send("evm_revert", [snapshot]);
    await register(2, "new-2");
    await w.pollOnce();
    expect(reorgs).to.deep.equal([[oldTip, undefined]]);
    const newKeys = await chainEventKeys();
    expect(newKeys).to.have.length(1);
    expect(received.map((e) => e.key)).to.deep.equal([...oldKeys, ...newKeys]);
    expect(store.countAppliedEvents()).to.equal(1);
  });

  it("catches a reorg that happens between two ranges of one poll", async () => {
    // The reorg is triggered from inside apply: on a live chain it can land at any moment, this pins it
    // to the worst one (after one range was applied, before the next is read).
    const store = openStore();
    const received: WatchedEvent[] = [];
    const reorgs: [ChainCursor, ChainCursor | undefined][] = [];
    const apply = nodeApply(store, received);
    let reorgAfterFirstRange: (() => Promise<void>) | undefined;
    const w = watcher({
      store,
      maxBlockRange: 2,
      apply: async (events, cursor) => {
        await apply(events, cursor);
        const reorg = reorgAfterFirstRange;
        reorgAfterFirstRange = undefined;
        await reorg?.();
      },
      onReorg: (from, to) => reorgs.push([from, to]),
    });
    const fork = await w.pollOnce();
    const snapshot = (await ethers.provider.send("evm_snapshot", [])) as string;
    for (const i of [1, 2, 3, 4]) await register(i, `old-${i}`);
    reorgAfterFirstRange = async () => {
      await ethers.provider.send("evm_revert", [snapshot]);
      for (const i of [5, 6, 7, 8]) await register(i, `new-${i}`);
    };

    await w.pollOnce();
    await w.pollOnce();
    expect(reorgs).to.have.length(1);
    expect(reorgs[0]![1]).to.deep.equal(fork);
    const newKeys = await chainEventKeys();
    const newEvents = received.slice(2);
    expect(newEvents.map((e) => e.key)).to.deep.equal(newKeys);
    expect(newEvents.map((e) => e.args.getValue("party"))).to.deep.equal([5, 6, 7, 8].map((i) => at(accounts, i).address));
    expect(store.countAppliedEvents()).to.equal(4);
    for (const c of store.cursorHistory()) expect((await ethers.provider.getBlock(c.blockNumber))!.hash).to.equal(c.blockHash);
  });

  /** The node's task handlers (consort-node.ts applyEvent) reduced to their store effects, applied as the node does. */
  function taskApply(store: NodeStore, received: WatchedEvent[] = []): ApplyEvents {
    return (events, cursor) => {
      received.push(...events);
      store.transaction(() => {
        for (const event of events) {
          const a = event.args;
          const taskId = TASK_EVENTS.has(event.name) ? (a.getValue("taskId") as bigint) : undefined;
          if (!store.markEventApplied(event.key, event.blockNumber, event.name, taskId)) continue;
          if (event.name === "TaskCreated") {
            store.insertTask({
              taskId: taskId!,
              programHash: a.getValue("programHash") as string,
              program: getBytes(a.getValue("program") as string),
              requester: a.getValue("requester") as string,
              parties: [...(a.getValue("parties") as string[])],
              dataOwners: [...(a.getValue("dataOwners") as string[])],
              threshold: Number(a.getValue("threshold")),
              inputDeadline: a.getValue("inputDeadline") as bigint,
              resultDeadline: a.getValue("resultDeadline") as bigint,
              createdBlock: event.blockNumber,
            });
          } else if (event.name === "InputCommitted") {
            store.putCommitment(taskId!, a.getValue("dataOwner") as string, a.getValue("commitment") as string);
          }
        }
        store.advanceCursor(cursor);
      });
    };
  }

  async function createTaskWith(program: string): Promise<bigint> {
    for (const i of [1, 2, 3]) if (!(await registry.isRegistered(at(accounts, i).address))) await register(i);
    const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
    const { taskId } = await registry.connectRunner(at(accounts, 6)).createTask({
      program: toUtf8Bytes(program),
      parties: [1, 2, 3].map((i) => at(accounts, i).address),
      dataOwners: [4, 5].map((i) => at(accounts, i).address),
      threshold: 1,
      inputDeadline: now + 10_000n,
      resultDeadline: now + 20_000n,
    });
    return taskId;
  }

  for (const confirmations of [0, 2]) {
    describe(`a reorg rolls back the store (confirmations ${confirmations})`, () => {
      it("a task whose TaskCreated was removed goes; the new task under the same id is stored in its place", async () => {
        const store = openStore();
        const rollbacks: ReorgRollback[] = [];
        const w = watcher({ store, confirmations, apply: taskApply(store), onReorg: (_from, _to, rollback) => rollbacks.push(rollback) });
        for (const i of [1, 2, 3]) await register(i);
        await networkHelpers.mine(confirmations);
        await w.pollOnce();
        const snapshot = (await ethers.provider.send("evm_snapshot", [])) as string;
        const oldId = await createTaskWith("the old program");
        await commit(oldId, 4);
        await networkHelpers.mine(confirmations + 3);
        await w.pollOnce();
        const old = store.getTask(oldId)!;
        expect(store.getCommitments(oldId).size).to.equal(1);

        // Five blocks replaced; the id is handed out again, to another program.
        expect(await ethers.provider.send("evm_revert", [snapshot])).to.equal(true);
        await networkHelpers.mine(2);
        const newId = await createTaskWith("the new program");
        expect(newId).to.equal(oldId);
        await networkHelpers.mine(confirmations + 3);
        await w.pollOnce();

        expect(rollbacks).to.deep.equal([{ removedTasks: [oldId], removedCommitments: [], revertedTasks: [], touchedTaskIds: [oldId] }]);
        const now = store.getTask(newId)!;
        expect(now.programHash).to.equal((await registry.getTask(newId)).programHash);
        expect(now.programHash).to.not.equal(old.programHash);
        expect(new TextDecoder().decode(now.program)).to.equal("the new program");
        expect(store.getCommitments(newId).size, "the old task's commitment went with it").to.equal(0);
      });

      it("a removed InputCommitted takes its commitment; the owner's new commitment is stored and the old share dropped", async () => {
        const store = openStore();
        const rollbacks: ReorgRollback[] = [];
        const w = watcher({ store, confirmations, apply: taskApply(store), onReorg: (_from, _to, rollback) => rollbacks.push(rollback) });
        const taskId = await createTask();
        await commit(taskId, 5);
        await networkHelpers.mine(confirmations);
        await w.pollOnce();
        const kept = store.getCommitments(taskId);
        const snapshot = (await ethers.provider.send("evm_snapshot", [])) as string;
        const old = keccak256(toUtf8Bytes("owner 4 commits 1000"));
        await registry.connectRunner(at(accounts, 4)).commitInput(taskId, old);
        await networkHelpers.mine(confirmations);
        await w.pollOnce();
        expect(store.getCommitments(taskId).get(at(accounts, 4).address)).to.equal(old);
        store.putShare(taskId, { dataOwner: at(accounts, 4).address, salt: new Uint8Array(32), values: new Uint8Array(32), digests: new Uint8Array(96), receivedAt: 1, commitment: old });

        expect(await ethers.provider.send("evm_revert", [snapshot])).to.equal(true);
        await networkHelpers.mine(1);
        const fresh = keccak256(toUtf8Bytes("owner 4 commits 5000"));
        await registry.connectRunner(at(accounts, 4)).commitInput(taskId, fresh);
        await networkHelpers.mine(confirmations + 1);
        await w.pollOnce();

        expect(rollbacks).to.have.length(1);
        expect(rollbacks[0]!.removedCommitments).to.deep.equal([{ taskId, dataOwner: at(accounts, 4).address }]);
        expect(rollbacks[0]!.touchedTaskIds).to.deep.equal([taskId]);
        expect(store.getCommitments(taskId)).to.deep.equal(new Map([...kept, [at(accounts, 4).address, fresh]]));
        expect(store.getShares(taskId).size, "the share of the removed commitment is gone once another is committed").to.equal(0);
        expect((await registry.inputCommitments(taskId))[0]).to.equal(fresh);
      });
    });
  }

  describe("RPC failures", () => {
    it("an unreachable RPC endpoint fails a poll with a retryable RPC_UNAVAILABLE, also through onError", async () => {
      // A real JSON-RPC provider pointed at a closed port (discard, 9): the same failure as an RPC that is down.
      const down = new JsonRpcProvider("http://127.0.0.1:9", Network.from(31337n), { staticNetwork: true });
      try {
        const store = openStore();
        const w = watcher({ provider: down, store, apply: () => expect.fail("nothing to apply") });
        let error: unknown;
        try {
          await w.pollOnce();
        } catch (e) {
          error = e;
        }
        expect(error).to.be.instanceOf(ConsortError);
        expect((error as ConsortError).code).to.equal("RPC_UNAVAILABLE");
        expect((error as ConsortError).retryable).to.equal(true);

        const errors: ConsortError[] = [];
        const looping = watcher({ provider: down, store, apply: () => expect.fail("nothing to apply"), onError: (e) => errors.push(e) });
        looping.start();
        await waitFor(() => errors.length >= 2, "two failed polls");
        await looping.stop();
        expect(errors.every((e) => e.code === "RPC_UNAVAILABLE" && e.retryable)).to.equal(true);
      } finally {
        down.destroy();
      }
    });

    it("a network failure mid-poll keeps the cursor, and the next poll delivers the range once", async () => {
      // The in-process chain cannot be made to fail on demand, so this provider forwards to it and throws a
      // network-style error (as ethers raises for a reset connection) from the calls it is told to fail.
      const failing = new Set<string>();
      const real = ethers.provider;
      const flaky = {
        getBlockNumber: async () => real.getBlockNumber(),
        getBlock: async (n: number) => {
          if (failing.has("getBlock")) throw Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
          return real.getBlock(n);
        },
        getLogs: async (filter: Parameters<Provider["getLogs"]>[0]) => {
          if (failing.has("getLogs")) throw Object.assign(new Error("request failed"), { code: "NETWORK_ERROR" });
          return real.getLogs(filter);
        },
      } as unknown as Provider;

      const store = openStore();
      const received: WatchedEvent[] = [];
      const errors: ConsortError[] = [];
      const w = watcher({ provider: flaky, store, apply: nodeApply(store, received), onError: (e) => errors.push(e) });
      await register(1);
      await register(2);
      for (const call of ["getLogs", "getBlock"]) {
        failing.add(call);
        let error: unknown;
        try {
          await w.pollOnce();
        } catch (e) {
          error = e;
        }
        expect((error as ConsortError).code, call).to.equal("RPC_UNAVAILABLE");
        expect((error as ConsortError).retryable).to.equal(true);
        expect(store.loadCursor()).to.equal(undefined);
        failing.delete(call);
      }

      failing.add("getLogs");
      w.start();
      await waitFor(() => errors.length >= 1, "a failed poll");
      failing.delete("getLogs");
      const head = await ethers.provider.getBlockNumber();
      await waitFor(() => (store.loadCursor()?.blockNumber ?? -1) >= head, "the watcher to recover");
      await w.stop();
      expect(errors.every((e) => e.code === "RPC_UNAVAILABLE")).to.equal(true);
      expect(received.map((e) => e.key)).to.deep.equal(await chainEventKeys());
    });
  });
});
