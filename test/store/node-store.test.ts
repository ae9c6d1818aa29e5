import { expect } from "chai";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ConsortError } from "../../node/errors.ts";
import { NodeStore } from "../../node/store/node-store.ts";
import type { StoredShare } from "../../node/store/node-store.ts";

const PARTIES = ["0x1111111111111111111111111111111111111111", "0x2222222222222222222222222222222222222222", "0x3333333333333333333333333333333333333333"];
const OWNERS = ["0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"];

function bytes(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed * 17 + 5) & 0xff);
}

function hash(seed: number): string {
  return "0x" + seed.toString(16).padStart(2, "0").repeat(32);
}

function taskFixture(taskId: bigint) {
  return {
    taskId,
    programHash: hash(Number(taskId)),
    program: bytes(300, Number(taskId)),
    requester: "0x9999999999999999999999999999999999999999",
    parties: PARTIES,
    dataOwners: OWNERS,
    threshold: 1,
    inputDeadline: 1_900_000_000n + taskId,
    resultDeadline: 2_000_000_000n + taskId,
    createdBlock: 40 + Number(taskId),
  };
}

function share(dataOwner: string, seed: number, commitment: string | undefined = hash(0x11)): StoredShare {
  return { dataOwner, salt: bytes(32, seed), values: bytes(64, seed + 1), digests: bytes(96, seed + 2), receivedAt: 1_700_000_000_000 + seed, commitment };
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return expect.fail("expected a throw");
}

describe("store/node-store", () => {
  let dir: string;
  let file: string;
  let store: NodeStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "consort-store-"));
    file = join(dir, "nested", "node.sqlite");
    store = NodeStore.open(file);
  });

  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function reopen(): NodeStore {
    store.close();
    store = NodeStore.open(file);
    return store;
  }

  describe("persistence", () => {
    it("keeps every kind of record across close and reopen (creating missing directories)", () => {
      store.insertTask(taskFixture(7n));
      store.setTaskFinalized(7n, bytes(40, 3), hash(0xab), 99, hash(0xcd));
      store.putCommitment(7n, OWNERS[0]!, hash(0x11));
      store.putShare(7n, share(OWNERS[0]!, 1));
      store.putMessage(7n, 2, "open:0-3", PARTIES[1]!, bytes(70, 9));
      store.putAttestation(7n, { signer: PARTIES[2]!, resultHash: hash(0xab), signature: "0x" + "ee".repeat(65) });
      store.advanceCursor({ blockNumber: 12, blockHash: hash(0x12) });
      store.markEventApplied(`${hash(0x77)}:0`, 12, "TaskCreated", 7n);
      store.setMeta("node", "alpha");
      const before = {
        task: store.getTask(7n),
        commitments: store.getCommitments(7n),
        shares: store.getShares(7n),
        message: store.getMessage(7n, 2, "open:0-3", PARTIES[1]!),
        attestations: store.getAttestations(7n),
        cursor: store.loadCursor(),
      };

      reopen();
      expect(store.getTask(7n)).to.deep.equal(before.task);
      expect(store.getTask(7n)?.status).to.equal("finalized");
      expect(store.getCommitments(7n)).to.deep.equal(before.commitments);
      expect(store.getShares(7n)).to.deep.equal(before.shares);
      expect(store.getMessage(7n, 2, "open:0-3", PARTIES[1]!)).to.deep.equal(before.message);
      expect(store.getAttestations(7n)).to.deep.equal(before.attestations);
      expect(store.loadCursor()).to.deep.equal({ blockNumber: 12, blockHash: hash(0x12) });
      expect(store.countAppliedEvents()).to.equal(1);
      expect(store.markEventApplied(`${hash(0x77)}:0`, 12, "TaskCreated", 7n)).to.equal(false);
      expect(store.getMeta("node")).to.equal("alpha");
      expect(store.getMeta("schema_version")).to.equal("1");
    });

    it("refuses a store written with another schema version, and opens it again once the version matches", () => {
      store.setMeta("schema_version", "2");
      store.close();
      const error = thrown(() => NodeStore.open(file));
      expect(error).to.be.instanceOf(ConsortError);
      expect((error as ConsortError).code).to.equal("STORE_FAILED");
      store = reopenWithVersion(file, "1");
      expect(store.getMeta("schema_version")).to.equal("1");
    });

    it("refuses a store of a newer schema untouched, and closes it", () => {
      const newer = join(dir, "newer.sqlite");
      const db = new DatabaseSync(newer);
      db.exec("PRAGMA journal_mode = WAL; CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO meta VALUES ('schema_version', '2');");
      db.close();
      const error = thrown(() => NodeStore.open(newer));
      expect((error as ConsortError).code).to.equal("STORE_FAILED");
      expect((error as ConsortError).details).to.include({ version: "2" });
      // SQLite removes the write-ahead log when the last connection closes: its absence shows the refused open closed its handle.
      expect(existsSync(`${newer}-wal`)).to.equal(false);
      const check = new DatabaseSync(newer);
      const tables = check.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((r) => r.name);
      check.close();
      expect(tables).to.deep.equal(["meta"]);
    });

    it("reports a file that is not a SQLite database as STORE_FAILED", () => {
      const error = thrown(() => NodeStore.open(dir)); // a directory cannot be opened as a database file
      expect((error as ConsortError).code).to.equal("STORE_FAILED");
    });

    it("works in memory", () => {
      const memory = NodeStore.open(":memory:");
      try {
        expect(memory.insertTask(taskFixture(1n))).to.equal(true);
        expect(memory.listTasks().map((t) => t.taskId)).to.deep.equal([1n]);
      } finally {
        memory.close();
      }
    });
  });

  describe("transactions", () => {
    it("rolls everything back when the function throws, and rethrows the same error", () => {
      store.insertTask(taskFixture(1n));
      const boom = new ConsortError("INTERNAL", "apply failed");
      const error = thrown(() =>
        store.transaction(() => {
          store.insertTask(taskFixture(2n));
          store.setTaskStatus(1n, "computing");
          store.advanceCursor({ blockNumber: 5, blockHash: hash(5) });
          store.markEventApplied("0xabc:1", 5, "TaskCreated", 2n);
          store.transaction(() => store.putShare(1n, share(OWNERS[0]!, 1))); // nested: joins the outer one
          throw boom;
        }),
      );
      expect(error).to.equal(boom);
      expect(store.getTask(2n)).to.equal(undefined);
      expect(store.getTask(1n)?.status).to.equal("awaiting-inputs");
      expect(store.loadCursor()).to.equal(undefined);
      expect(store.countAppliedEvents()).to.equal(0);
      expect(store.getShares(1n).size).to.equal(0);
      // The store is usable afterwards and commits normally.
      expect(store.transaction(() => store.insertTask(taskFixture(2n)))).to.equal(true);
      expect(reopen().getTask(2n)?.taskId).to.equal(2n);
    });

    it("rolls back the outer transaction when a nested one throws through it", () => {
      expect(() =>
        store.transaction(() => {
          store.insertTask(taskFixture(3n));
          store.transaction(() => {
            throw new ConsortError("INTERNAL", "inner");
          });
        }),
      ).to.throw(ConsortError);
      expect(store.getTask(3n)).to.equal(undefined);
    });
  });

  describe("chain cursor", () => {
    it("keeps a bounded history of range ends, newest first", () => {
      expect(store.loadCursor()).to.equal(undefined);
      expect(store.cursorHistory()).to.deep.equal([]);
      for (let block = 1; block <= 300; block++) store.advanceCursor({ blockNumber: block * 2, blockHash: hash(block % 256) });
      const history = store.cursorHistory();
      expect(history).to.have.length(256);
      expect(history[0]).to.deep.equal({ blockNumber: 600, blockHash: hash(300 % 256) });
      expect(history.at(-1)?.blockNumber).to.equal(2 * (300 - 255));
      for (let i = 1; i < history.length; i++) expect(history[i]!.blockNumber).to.be.lessThan(history[i - 1]!.blockNumber);
      expect(store.loadCursor()).to.deep.equal(history[0]);
    });

    it("replaces the hash recorded for a block that is processed again", () => {
      store.advanceCursor({ blockNumber: 9, blockHash: hash(1) });
      store.advanceCursor({ blockNumber: 9, blockHash: hash(2) });
      expect(store.cursorHistory()).to.deep.equal([{ blockNumber: 9, blockHash: hash(2) }]);
    });

    it("rewindTo drops positions and applied-event keys above the fork point only", () => {
      for (const block of [3, 6, 9, 12]) {
        store.advanceCursor({ blockNumber: block, blockHash: hash(block) });
        store.markEventApplied(`0xtx${block}:0`, block, "InputCommitted", 1n);
      }
      store.rewindTo({ blockNumber: 6, blockHash: hash(6) });
      expect(store.cursorHistory().map((c) => c.blockNumber)).to.deep.equal([6, 3]);
      expect(store.countAppliedEvents()).to.equal(2);
      // Events at or below the fork stay applied; those above may be applied again.
      expect(store.markEventApplied("0xtx6:0", 6, "InputCommitted", 1n)).to.equal(false);
      expect(store.markEventApplied("0xtx9:0", 9, "InputCommitted", 1n)).to.equal(true);

      store.rewindTo(undefined);
      expect(store.loadCursor()).to.equal(undefined);
      expect(store.countAppliedEvents()).to.equal(0);
    });

    it("markEventApplied is idempotent per event key", () => {
      expect(store.markEventApplied("0xaa:3", 4, "PartyRegistered", undefined)).to.equal(true);
      expect(store.markEventApplied("0xaa:3", 4, "PartyRegistered", undefined)).to.equal(false);
      expect(store.markEventApplied("0xaa:4", 4, "TaskCreated", 2n)).to.equal(true);
      expect(store.countAppliedEvents()).to.equal(2);
    });
  });

  describe("tasks", () => {
    it("inserts a task once; a second insert leaves the first as it is", () => {
      expect(store.insertTask(taskFixture(4n))).to.equal(true);
      store.setTaskStatus(4n, "computing");
      expect(store.insertTask({ ...taskFixture(4n), threshold: 2, program: bytes(10, 99), status: "failed", error: "x" })).to.equal(false);
      const task = store.getTask(4n);
      const expected = taskFixture(4n);
      expect(task).to.deep.equal({
        ...expected,
        status: "computing",
        error: undefined,
        result: undefined,
        resultHash: undefined,
        finalizedBlock: undefined,
        finalizeTx: undefined,
      });
      expect(store.getTask(5n)).to.equal(undefined);
    });

    it("keeps 256-bit task ids and deadlines exactly", () => {
      const big = 2n ** 255n + 12345n;
      store.insertTask({ ...taskFixture(big), inputDeadline: 2n ** 63n + 1n, resultDeadline: 2n ** 64n - 1n });
      const task = reopen().getTask(big);
      expect(task?.taskId).to.equal(big);
      expect(task?.inputDeadline).to.equal(2n ** 63n + 1n);
      expect(task?.resultDeadline).to.equal(2n ** 64n - 1n);
    });

    it("updates status, error, result and finalization", () => {
      store.insertTask(taskFixture(1n));
      store.insertTask({ ...taskFixture(2n), status: "computing" });
      store.insertTask(taskFixture(3n));

      store.setTaskStatus(1n, "failed", "program invalid");
      expect(store.getTask(1n)).to.include({ status: "failed", error: "program invalid" });
      store.setTaskStatus(1n, "expired");
      expect(store.getTask(1n)).to.include({ status: "expired", error: undefined });

      store.setTaskResult(2n, bytes(20, 1), hash(0x21));
      const withResult = store.getTask(2n);
      expect(withResult?.status).to.equal("computing");
      expect(withResult?.result).to.deep.equal(bytes(20, 1));
      expect(withResult?.resultHash).to.equal(hash(0x21));
      expect(withResult?.finalizedBlock).to.equal(undefined);

      store.setTaskStatus(3n, "failed", "aborted");
      store.setTaskFinalized(3n, bytes(25, 2), hash(0x31), 77, hash(0x32));
      expect(store.getTask(3n)).to.deep.include({
        status: "finalized",
        error: undefined,
        result: bytes(25, 2),
        resultHash: hash(0x31),
        finalizedBlock: 77,
        finalizeTx: hash(0x32),
      });

      expect(store.listTasks().map((t) => t.taskId)).to.deep.equal([1n, 2n, 3n]);
      expect(store.listTasks(["computing", "finalized"]).map((t) => t.taskId)).to.deep.equal([2n, 3n]);
      expect(store.listTasks(["attesting"])).to.deep.equal([]);
    });

    it("lists tasks in numeric id order", () => {
      for (const id of [10n, 9n, 100n, 2n]) store.insertTask(taskFixture(id));
      expect(store.listTasks().map((t) => t.taskId)).to.deep.equal([2n, 9n, 10n, 100n]);
    });
  });

  describe("commitments, shares, messages, attestations", () => {
    it("stores a commitment per data owner", () => {
      store.putCommitment(1n, OWNERS[0]!, hash(1));
      store.putCommitment(1n, OWNERS[1]!, hash(2));
      store.putCommitment(2n, OWNERS[0]!, hash(3));
      expect(store.getCommitments(1n)).to.deep.equal(new Map([[OWNERS[0]!, hash(1)], [OWNERS[1]!, hash(2)]]));
      expect(store.getCommitments(3n).size).to.equal(0);
    });

    it("putShare: inserted, identical on a resend, conflict on different bytes (keeping the first)", () => {
      const first = share(OWNERS[0]!, 1);
      expect(store.putShare(1n, first)).to.equal("inserted");
      expect(store.putShare(1n, { ...first, salt: bytes(32, 1), receivedAt: first.receivedAt + 5 })).to.equal("identical");
      expect(store.putShare(1n, { ...first, salt: bytes(32, 2) })).to.equal("conflict");
      expect(store.putShare(1n, { ...first, values: bytes(64, 7) })).to.equal("conflict");
      expect(store.putShare(1n, { ...first, digests: bytes(95, 3) })).to.equal("conflict");
      expect(store.putShare(1n, share(OWNERS[1]!, 5))).to.equal("inserted");
      expect(store.putShare(2n, first)).to.equal("inserted");
      const stored = store.getShares(1n);
      expect([...stored.keys()].sort()).to.deep.equal([...OWNERS].sort());
      expect(stored.get(OWNERS[0]!)).to.deep.equal(first);

      store.deleteShare(1n, OWNERS[0]!);
      expect([...store.getShares(1n).keys()]).to.deep.equal([OWNERS[1]!]);
      expect(store.getShares(2n).size).to.equal(1);
      expect(store.putShare(1n, { ...first, salt: bytes(32, 2) })).to.equal("inserted");
    });

    it("putMessage: inserted, identical, conflict, keyed by (task, round, gate, sender)", () => {
      const payload = bytes(50, 4);
      expect(store.putMessage(1n, 0, "open:0", PARTIES[0]!, payload)).to.equal("inserted");
      expect(store.putMessage(1n, 0, "open:0", PARTIES[0]!, bytes(50, 4))).to.equal("identical");
      expect(store.putMessage(1n, 0, "open:0", PARTIES[0]!, bytes(50, 5))).to.equal("conflict");
      expect(store.putMessage(1n, 0, "open:0", PARTIES[0]!, bytes(49, 4))).to.equal("conflict");
      expect(store.getMessage(1n, 0, "open:0", PARTIES[0]!)).to.deep.equal(payload);
      for (const [round, gate, from] of [
        [1, "open:0", PARTIES[0]!],
        [0, "open:1", PARTIES[0]!],
        [0, "open:0", PARTIES[1]!],
      ] as const) {
        expect(store.putMessage(1n, round, gate, from, bytes(8, round))).to.equal("inserted");
      }
      expect(store.putMessage(2n, 0, "open:0", PARTIES[0]!, bytes(3, 3))).to.equal("inserted");
      expect(store.getMessage(1n, 9, "open:0", PARTIES[0]!)).to.equal(undefined);
    });

    it("deleteMessages drops one task's messages only", () => {
      store.putMessage(1n, 0, "g", PARTIES[0]!, bytes(4, 1));
      store.putMessage(1n, 1, "g", PARTIES[1]!, bytes(4, 2));
      store.putMessage(2n, 0, "g", PARTIES[0]!, bytes(4, 3));
      store.deleteMessages(1n);
      expect(store.getMessage(1n, 0, "g", PARTIES[0]!)).to.equal(undefined);
      expect(store.getMessage(1n, 1, "g", PARTIES[1]!)).to.equal(undefined);
      expect(store.getMessage(2n, 0, "g", PARTIES[0]!)).to.deep.equal(bytes(4, 3));
      // A deleted message may be received again (e.g. a retry after a restart).
      expect(store.putMessage(1n, 0, "g", PARTIES[0]!, bytes(4, 9))).to.equal("inserted");
    });

    it("attestations: inserted, identical, conflict; listed by signer", () => {
      const a = { signer: PARTIES[1]!, resultHash: hash(0x41), signature: "0x" + "01".repeat(65) };
      const b = { signer: PARTIES[0]!, resultHash: hash(0x41), signature: "0x" + "02".repeat(65) };
      expect(store.putAttestation(5n, a)).to.equal("inserted");
      expect(store.putAttestation(5n, { ...a })).to.equal("identical");
      expect(store.putAttestation(5n, { ...a, resultHash: hash(0x42) })).to.equal("conflict");
      expect(store.putAttestation(5n, { ...a, signature: "0x" + "03".repeat(65) })).to.equal("conflict");
      expect(store.putAttestation(5n, b)).to.equal("inserted");
      expect(store.putAttestation(6n, a)).to.equal("inserted");
      expect(store.getAttestations(5n)).to.deep.equal([b, a]);
      expect(store.getAttestations(7n)).to.deep.equal([]);
    });
  });

  describe("reorg rollback", () => {
    /** What the node's apply does with one event: mark it (taking the snapshot), apply its effect, advance the cursor; one transaction. */
    function applyEvent(block: number, name: string, taskId: bigint, effect: () => void): void {
      store.transaction(() => {
        if (store.markEventApplied(`0xtx${block}-${name}-${taskId}:0`, block, name, taskId)) effect();
        store.advanceCursor({ blockNumber: block, blockHash: hash(block) });
      });
    }

    /** Task 1 created at block 10 with owner 0's commitment at block 11; its rows are the "kept" state. */
    function keptTask(): void {
      applyEvent(10, "TaskCreated", 1n, () => store.insertTask({ ...taskFixture(1n), createdBlock: 10 }));
      applyEvent(11, "InputCommitted", 1n, () => store.putCommitment(1n, OWNERS[0]!, hash(0x11)));
      store.putShare(1n, share(OWNERS[0]!, 1, hash(0x11)));
    }

    /** Every row one task can have besides its commitments and shares. */
    function progressRows(taskId: bigint): { attestations: number; requesterShares: number; message: boolean } {
      return {
        attestations: store.getAttestations(taskId).length,
        requesterShares: store.getRequesterShares(taskId).size,
        message: store.getMessage(taskId, 0, "attest", PARTIES[1]!) !== undefined,
      };
    }

    function addProgress(taskId: bigint): void {
      store.setTaskStatus(taskId, "computing");
      store.setTaskResult(taskId, bytes(40, 3), hash(0xab));
      store.setTaskStatus(taskId, "attesting");
      store.putRequesterShare(taskId, "total", bytes(20, 4));
      store.putAttestation(taskId, { signer: PARTIES[0]!, resultHash: hash(0xab), signature: "0x" + "ee".repeat(65) });
      store.putMessage(taskId, 0, "attest", PARTIES[1]!, bytes(97, 5));
    }

    it("removes a task whose TaskCreated was reorged away, with every row it had, and keeps the others", () => {
      keptTask();
      applyEvent(20, "TaskCreated", 2n, () => store.insertTask({ ...taskFixture(2n), createdBlock: 20 }));
      applyEvent(21, "InputCommitted", 2n, () => store.putCommitment(2n, OWNERS[0]!, hash(0x21)));
      applyEvent(21, "InputCommitted", 2n, () => store.putCommitment(2n, OWNERS[1]!, hash(0x22)));
      store.putShare(2n, share(OWNERS[0]!, 2, hash(0x21)));
      store.putShare(2n, share(OWNERS[1]!, 3, hash(0x22)));
      addProgress(2n);
      // Another node's task (not stored here) created above the fork: nothing to remove, not reported.
      store.markEventApplied("0xother:0", 22, "TaskCreated", 3n);
      const kept = { task: store.getTask(1n), commitments: store.getCommitments(1n), shares: store.getShares(1n) };

      const rollback = store.rewindTo({ blockNumber: 11, blockHash: hash(11) });
      expect(rollback).to.deep.equal({ removedTasks: [2n], removedCommitments: [], revertedTasks: [], touchedTaskIds: [2n] });
      expect(store.getTask(2n)).to.equal(undefined);
      expect(store.getCommitments(2n).size).to.equal(0);
      expect(store.getShares(2n).size).to.equal(0);
      expect(progressRows(2n)).to.deep.equal({ attestations: 0, requesterShares: 0, message: false });
      expect({ task: store.getTask(1n), commitments: store.getCommitments(1n), shares: store.getShares(1n) }).to.deep.equal(kept);
      expect(store.loadCursor()?.blockNumber).to.equal(11);
      expect(store.countAppliedEvents()).to.equal(2);

      // The id is handed out again on the new chain: the new task is stored, not ignored in favour of the old one.
      const replacement = { ...taskFixture(2n), programHash: hash(0x99), createdBlock: 21 };
      applyEvent(21, "TaskCreated", 2n, () => expect(store.insertTask(replacement)).to.equal(true));
      expect(store.getTask(2n)?.programHash).to.equal(hash(0x99));
    });

    it("removes a reorged-away commitment; the share received against it counts again only if the same commitment comes back", () => {
      keptTask();
      applyEvent(12, "InputCommitted", 1n, () => store.putCommitment(1n, OWNERS[1]!, hash(0x12)));
      store.putShare(1n, share(OWNERS[1]!, 2, hash(0x12)));
      addProgress(1n);

      const rollback = store.rewindTo({ blockNumber: 11, blockHash: hash(11) });
      expect(rollback).to.deep.equal({
        removedTasks: [],
        removedCommitments: [{ taskId: 1n, dataOwner: OWNERS[1]! }],
        revertedTasks: [1n],
        touchedTaskIds: [1n],
      });
      expect(store.getCommitments(1n)).to.deep.equal(new Map([[OWNERS[0]!, hash(0x11)]]));
      // The task had computed on the removed input: its result and every signature over it go.
      const task = store.getTask(1n)!;
      expect([task.status, task.result, task.resultHash]).to.deep.equal(["awaiting-inputs", undefined, undefined]);
      expect(progressRows(1n)).to.deep.equal({ attestations: 0, requesterShares: 0, message: false });

      // The owner commits the same shares again: the share held is the one committed to.
      const recommitted = store.transaction(() => {
        applyEvent(12, "InputCommitted", 1n, () => store.putCommitment(1n, OWNERS[1]!, hash(0x12)));
        expect(store.putShare(1n, share(OWNERS[1]!, 2, hash(0x12)))).to.equal("identical");
        expect(store.getShares(1n).get(OWNERS[1]!)?.commitment).to.equal(hash(0x12));
        return store.rewindTo({ blockNumber: 11, blockHash: hash(11) });
      });
      expect(recommitted.removedCommitments).to.deep.equal([{ taskId: 1n, dataOwner: OWNERS[1]! }]);
      // Or it commits a new value: the old share goes, the new one is accepted (not "already held").
      applyEvent(12, "InputCommitted", 1n, () => store.putCommitment(1n, OWNERS[1]!, hash(0x13)));
      expect([...store.getShares(1n).keys()]).to.deep.equal([OWNERS[0]!]);
      expect(store.putShare(1n, share(OWNERS[1]!, 7, hash(0x13)))).to.equal("inserted");
      expect(store.getShares(1n).get(OWNERS[1]!)?.commitment).to.equal(hash(0x13));
    });

    it("removes exactly the commitments applied above the fork, among many owners of interleaved tasks", () => {
      const owners = Array.from({ length: 6 }, (_, i) => `0x${String(i + 1).repeat(40)}`);
      const task = (id: bigint, block: number) => ({ ...taskFixture(id), dataOwners: owners, createdBlock: block });
      applyEvent(10, "TaskCreated", 1n, () => store.insertTask(task(1n, 10)));
      applyEvent(10, "TaskCreated", 2n, () => store.insertTask(task(2n, 10)));
      owners.forEach((owner, i) => {
        applyEvent(11 + i, "InputCommitted", 1n, () => store.putCommitment(1n, owner, hash(0x40 + i)));
        applyEvent(11 + i, "InputCommitted", 2n, () => store.putCommitment(2n, owner, hash(0x60 + i)));
      });
      const rollback = store.rewindTo({ blockNumber: 13, blockHash: hash(13) });
      const above = owners.slice(3);
      expect(rollback.removedCommitments).to.deep.equal([...above.map((o) => ({ taskId: 1n, dataOwner: o })), ...above.map((o) => ({ taskId: 2n, dataOwner: o }))]);
      expect([...store.getCommitments(1n).keys()].sort()).to.deep.equal(owners.slice(0, 3).sort());
      expect([...store.getCommitments(2n).values()].sort()).to.deep.equal([hash(0x60), hash(0x61), hash(0x62)]);
      // Committed again on the new chain, then removed again by a second reorg.
      applyEvent(14, "InputCommitted", 1n, () => store.putCommitment(1n, owners[5]!, hash(0x55)));
      expect(store.rewindTo({ blockNumber: 13, blockHash: hash(13) }).removedCommitments).to.deep.equal([{ taskId: 1n, dataOwner: owners[5]! }]);
      expect(store.getCommitments(1n).size).to.equal(3);
    });

    it("puts a finalized task back to its status before TaskFinalized, keeping its own result and signatures", () => {
      keptTask();
      applyEvent(12, "InputCommitted", 1n, () => store.putCommitment(1n, OWNERS[1]!, hash(0x12)));
      addProgress(1n);
      const before = store.getTask(1n);
      applyEvent(15, "TaskFinalized", 1n, () => store.setTaskFinalized(1n, bytes(40, 3), hash(0xab), 15, hash(0xf1)));
      expect(store.getTask(1n)?.status).to.equal("finalized");

      const rollback = store.rewindTo({ blockNumber: 12, blockHash: hash(12) });
      expect(rollback).to.deep.equal({ removedTasks: [], removedCommitments: [], revertedTasks: [1n], touchedTaskIds: [1n] });
      expect(store.getTask(1n)).to.deep.equal(before);
      expect(store.getTask(1n)?.finalizedBlock).to.equal(undefined);
      expect(progressRows(1n)).to.deep.equal({ attestations: 1, requesterShares: 1, message: true });
      expect(store.getCommitments(1n).size).to.equal(2);
    });

    it("puts an expired task back to its status before TaskExpired", () => {
      keptTask();
      store.setTaskStatus(1n, "awaiting-inputs");
      applyEvent(30, "TaskExpired", 1n, () => store.setTaskStatus(1n, "expired"));
      const rollback = store.rewindTo({ blockNumber: 29, blockHash: hash(29) });
      expect(rollback.revertedTasks).to.deep.equal([1n]);
      expect(store.getTask(1n)?.status).to.equal("awaiting-inputs");
    });

    it("undoes several removed events of one task back to the state before the oldest, across a reopen", () => {
      keptTask();
      applyEvent(12, "InputCommitted", 1n, () => store.putCommitment(1n, OWNERS[1]!, hash(0x12)));
      addProgress(1n);
      applyEvent(14, "TaskFinalized", 1n, () => store.setTaskFinalized(1n, bytes(40, 3), hash(0xab), 14, hash(0xf1)));
      reopen();
      const rollback = store.rewindTo({ blockNumber: 11, blockHash: hash(11) });
      expect(rollback.removedCommitments).to.deep.equal([{ taskId: 1n, dataOwner: OWNERS[1]! }]);
      expect(rollback.revertedTasks).to.deep.equal([1n]);
      const task = store.getTask(1n)!;
      expect([task.status, task.result, task.finalizedBlock, task.finalizeTx]).to.deep.equal(["awaiting-inputs", undefined, undefined, undefined]);
      expect(progressRows(1n)).to.deep.equal({ attestations: 0, requesterShares: 0, message: false });
    });

    it("keeps a failure recorded at creation (an invalid program) when an input is removed", () => {
      applyEvent(10, "TaskCreated", 1n, () => store.insertTask({ ...taskFixture(1n), createdBlock: 10, status: "failed", error: "PROGRAM_INVALID: x" }));
      applyEvent(11, "InputCommitted", 1n, () => store.putCommitment(1n, OWNERS[0]!, hash(0x11)));
      store.rewindTo({ blockNumber: 10, blockHash: hash(10) });
      expect(store.getTask(1n)?.status).to.equal("failed");
      expect(store.getCommitments(1n).size).to.equal(0);
    });

    it("a rollback that fails midway changes nothing (one transaction with the rewind)", () => {
      keptTask();
      applyEvent(12, "InputCommitted", 1n, () => store.putCommitment(1n, OWNERS[1]!, hash(0x12)));
      const boom = new ConsortError("INTERNAL", "crash after the rollback");
      expect(
        thrown(() =>
          store.transaction(() => {
            store.rewindTo({ blockNumber: 11, blockHash: hash(11) });
            throw boom;
          }),
        ),
      ).to.equal(boom);
      expect(store.getCommitments(1n).size).to.equal(2);
      expect(store.loadCursor()?.blockNumber).to.equal(12);
      expect(store.countAppliedEvents()).to.equal(3);
    });
  });

  describe("shares and the commitment they were verified against", () => {
    it("never returns a share verified against a commitment other than the stored one", () => {
      store.putCommitment(1n, OWNERS[0]!, hash(0x11));
      store.putShare(1n, share(OWNERS[0]!, 1, hash(0x11)));
      store.putShare(1n, share(OWNERS[1]!, 2, hash(0x22))); // arrived before its commitment was applied
      expect([...store.getShares(1n).keys()].sort()).to.deep.equal([...OWNERS].sort());
      // The chain now holds another commitment of owner 1 (the first was reorged away before it was applied).
      store.putCommitment(1n, OWNERS[1]!, hash(0x23));
      expect([...store.getShares(1n).keys()]).to.deep.equal([OWNERS[0]!]);
      expect(store.putShare(1n, share(OWNERS[1]!, 3, hash(0x23)))).to.equal("inserted");
      expect(store.getShares(1n).get(OWNERS[1]!)?.commitment).to.equal(hash(0x23));
    });

    it("replaces a stale share (another commitment) but reports a different share under the same commitment as a conflict", () => {
      const stale = share(OWNERS[0]!, 1, hash(0x11));
      expect(store.putShare(1n, stale)).to.equal("inserted");
      expect(store.putShare(1n, share(OWNERS[0]!, 2, hash(0x11)))).to.equal("conflict");
      expect(store.putShare(1n, { ...stale, receivedAt: 5 })).to.equal("identical");
      const fresh = share(OWNERS[0]!, 2, hash(0x12));
      expect(store.putShare(1n, fresh)).to.equal("inserted");
      expect(store.getShares(1n).get(OWNERS[0]!)).to.deep.equal(fresh);
    });

    it("adds the reorg columns to a store written before they existed, keeping its rows", () => {
      store.insertTask(taskFixture(1n));
      store.putShare(1n, share(OWNERS[0]!, 1, undefined));
      store.close();
      const db = new DatabaseSync(file);
      db.exec("ALTER TABLE chain_events DROP COLUMN prior; ALTER TABLE shares DROP COLUMN commitment;");
      db.close();
      store = NodeStore.open(file);
      expect(store.getShares(1n).get(OWNERS[0]!)?.commitment).to.equal(undefined);
      expect(store.markEventApplied("0xaa:0", 60, "InputCommitted", 1n)).to.equal(true);
      store.putCommitment(1n, OWNERS[0]!, hash(0x11));
      // A share stored before commitments were recorded with it stays usable.
      expect(store.getShares(1n).size).to.equal(1);
      expect(store.rewindTo({ blockNumber: 50, blockHash: hash(50) }).removedCommitments).to.deep.equal([{ taskId: 1n, dataOwner: OWNERS[0]! }]);
      expect(store.getCommitments(1n).size).to.equal(0);
    });
  });
});

/** Rewrites a store file's schema version with node:sqlite directly (NodeStore refuses the file), as a migration would. */
function reopenWithVersion(file: string, version: string): NodeStore {
  const db = new DatabaseSync(file);
  db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(version);
  db.close();
  return NodeStore.open(file);
}
