import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { ConsortError } from "../errors.ts";

/** A processed chain position: the last block whose events were applied. */
export interface ChainCursor {
  readonly blockNumber: number;
  readonly blockHash: string;
}

/**
 * What the node knows of a task it is a party of. `status` is the node's own
 * progress; the chain's computed TaskState stays the authority and is re-read
 * before the node acts on it.
 */
export type LocalTaskStatus =
  | "awaiting-inputs" // created on chain; commitments and shares arriving
  | "computing" // every input committed and received; the protocol is running
  | "attesting" // result computed and signed; collecting the quorum's signatures
  | "finalized" // a TaskFinalized event was seen
  | "expired" // the chain says the task expired
  | "failed"; // the node cannot compute it (invalid program, protocol abort); see `error`

export interface StoredTask {
  readonly taskId: bigint;
  readonly programHash: string;
  readonly program: Uint8Array;
  readonly requester: string;
  readonly parties: readonly string[];
  readonly dataOwners: readonly string[];
  readonly threshold: number;
  readonly inputDeadline: bigint;
  readonly resultDeadline: bigint;
  readonly createdBlock: number;
  readonly status: LocalTaskStatus;
  readonly error: string | undefined;
  readonly result: Uint8Array | undefined;
  readonly resultHash: string | undefined;
  readonly finalizedBlock: number | undefined;
  readonly finalizeTx: string | undefined;
}

export interface StoredShare {
  readonly dataOwner: string;
  readonly salt: Uint8Array;
  /** This party's share values as a packed field vector (node/math/fr-vec.ts), the form the engine runs on. */
  readonly values: Uint8Array;
  /** The data owner's per-party digests, concatenated (32 bytes each, party order). */
  readonly digests: Uint8Array;
  readonly receivedAt: number;
  /**
   * The on-chain commitment the digests were verified against (lowercase hex).
   * A share is used only while the store holds this same commitment: after a
   * reorg the owner may commit anew, and the old share must not count.
   * Undefined only for shares stored before this was recorded.
   */
  readonly commitment: string | undefined;
}

export interface StoredAttestation {
  readonly signer: string;
  readonly resultHash: string;
  readonly signature: string;
}

export type PutOutcome = "inserted" | "identical" | "conflict";

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursor_history (
  block_number INTEGER PRIMARY KEY,
  block_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_events (
  event_key TEXT PRIMARY KEY,          -- txHash:logIndex
  block_number INTEGER NOT NULL,
  name TEXT NOT NULL,
  task_id TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
  task_id TEXT PRIMARY KEY,
  program_hash TEXT NOT NULL,
  program BLOB NOT NULL,
  requester TEXT NOT NULL,
  parties TEXT NOT NULL,
  data_owners TEXT NOT NULL,
  threshold INTEGER NOT NULL,
  input_deadline TEXT NOT NULL,
  result_deadline TEXT NOT NULL,
  created_block INTEGER NOT NULL,
  status TEXT NOT NULL,
  error TEXT,
  result BLOB,
  result_hash TEXT,
  finalized_block INTEGER,
  finalize_tx TEXT
);
CREATE TABLE IF NOT EXISTS commitments (
  task_id TEXT NOT NULL,
  data_owner TEXT NOT NULL,
  commitment TEXT NOT NULL,
  PRIMARY KEY (task_id, data_owner)
);
CREATE TABLE IF NOT EXISTS shares (
  task_id TEXT NOT NULL,
  data_owner TEXT NOT NULL,
  salt BLOB NOT NULL,
  share_values BLOB NOT NULL,
  digests BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (task_id, data_owner)
);
CREATE TABLE IF NOT EXISTS messages (
  task_id TEXT NOT NULL,
  round INTEGER NOT NULL,
  gate TEXT NOT NULL,
  from_party TEXT NOT NULL,
  payload BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (task_id, round, gate, from_party)
);
CREATE TABLE IF NOT EXISTS requester_shares (
  task_id TEXT NOT NULL,
  output TEXT NOT NULL,
  payload BLOB NOT NULL,                 -- this party's re-randomized shares, salt and digests (node/transport/requester-share-codec.ts)
  PRIMARY KEY (task_id, output)
);
CREATE TABLE IF NOT EXISTS attestations (
  task_id TEXT NOT NULL,
  signer TEXT NOT NULL,
  result_hash TEXT NOT NULL,
  signature TEXT NOT NULL,
  PRIMARY KEY (task_id, signer)
);
`;

/**
 * The task life cycle's durable half (node/daemon/task-driver.ts): one job per
 * task, so retries, restarts and backoff are rows, not timers; and the
 * transactions the node signed, journaled before they are broadcast, so a
 * restart sends the same transaction again instead of a second one.
 */
const JOB_SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  task_id TEXT PRIMARY KEY,
  attempt INTEGER NOT NULL DEFAULT 0,  -- the computation attempt its peer labels carry
  next_run_at INTEGER,                 -- epoch ms; NULL: only an event wakes it
  failures INTEGER NOT NULL DEFAULT 0, -- consecutive failed runs (the backoff)
  last_error TEXT,
  step TEXT,                           -- the step last decided, for operators
  act_after INTEGER,                   -- epoch ms: this party's turn to send the task's transaction
  result_attempt INTEGER,              -- the attempt whose run gave the result held
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS signed_txs (
  tx_key TEXT PRIMARY KEY,             -- what the transaction does, e.g. finalize/<taskId>
  sender TEXT NOT NULL,
  nonce INTEGER NOT NULL,
  tx_hash TEXT NOT NULL,
  raw_tx TEXT NOT NULL,
  signed_at INTEGER NOT NULL
);
`;

/**
 * Columns that let a reorg undo what the removed blocks applied. Kept apart
 * from SCHEMA and added in place (ALTER TABLE) so a store written before they
 * existed opens unchanged.
 */
const REORG_COLUMNS: readonly { table: string; column: string; type: string }[] = [
  // JSON: the task's state just before the event was applied (see TaskSnapshot).
  { table: "chain_events", column: "prior", type: "TEXT" },
  // The commitment a share was verified against (StoredShare.commitment).
  { table: "shares", column: "commitment", type: "TEXT" },
];

/** Every table holding rows of one task, keyed by task_id: a task removed by a reorg goes from all of them. */
const TASK_TABLES = ["tasks", "commitments", "shares", "messages", "requester_shares", "attestations"] as const;

/** What a task looked like before an event touched it; a reorg that removes the event restores it. */
interface TaskSnapshot {
  readonly task: {
    readonly status: LocalTaskStatus;
    readonly error: string | null;
    readonly result: string | null;
    readonly resultHash: string | null;
    readonly finalizedBlock: number | null;
    readonly finalizeTx: string | null;
  } | null;
  /**
   * The largest rowid among the task's commitments then. A commitment is
   * inserted once per owner (the chain takes one), so those inserted later,
   * with larger rowids, are exactly the ones later events applied: this one
   * number stands for the whole list (up to 256 owners per task).
   */
  readonly commitmentRowid: number;
}

/** What rolling back the removed blocks changed in the store. */
export interface ReorgRollback {
  /** Tasks whose TaskCreated was removed: deleted with all their rows. */
  readonly removedTasks: readonly bigint[];
  /** Commitments whose InputCommitted was removed (a share verified against one is not used unless it is committed again). */
  readonly removedCommitments: readonly { readonly taskId: bigint; readonly dataOwner: string }[];
  /** Tasks still known whose local status was put back (a finalization or expiry removed, or an input). */
  readonly revertedTasks: readonly bigint[];
  /** Every task the rollback changed, in id order: the node must reconsider (or abandon) each. */
  readonly touchedTaskIds: readonly bigint[];
}

/** How many processed range ends are kept to find the fork point after a reorg. */
const CURSOR_HISTORY_LIMIT = 256;

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

type Row = Record<string, SQLInputValue>;

/**
 * The node's persistent state in one SQLite file (node:sqlite, built into
 * Node 24). Synchronous by design: every method is one short statement, and
 * `transaction` groups the effects of a block range with its cursor so a
 * restart neither misses nor repeats chain events.
 */
export class NodeStore {
  private readonly db: DatabaseSync;
  private depth = 0;
  private readonly statements = new Map<string, StatementSync>();

  private constructor(db: DatabaseSync) {
    this.db = db;
  }

  /** Opens (creating if needed) the store at `file`; ":memory:" for a throwaway store. */
  static open(file: string): NodeStore {
    let db: DatabaseSync | undefined;
    try {
      if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
      db = new DatabaseSync(file);
      db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");
      // Read the version before creating any table, so a store of another
      // schema version is refused untouched.
      db.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);");
      const store = new NodeStore(db);
      const version = store.getMeta("schema_version");
      if (version !== undefined && Number(version) !== SCHEMA_VERSION) {
        throw new ConsortError("STORE_FAILED", `store ${file} has schema version ${version}; this node expects ${SCHEMA_VERSION}`, {
          details: { file, version },
        });
      }
      db.exec(SCHEMA);
      db.exec(JOB_SCHEMA);
      store.addReorgColumns();
      if (version === undefined) store.setMeta("schema_version", String(SCHEMA_VERSION));
      return store;
    } catch (error) {
      // A refused store must not stay open (and locked) behind the caller's back.
      if (db?.isOpen === true) db.close();
      if (error instanceof ConsortError) throw error;
      throw new ConsortError("STORE_FAILED", `cannot open the store at ${file}`, { cause: error });
    }
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  /** Runs `fn` in one transaction (nested calls join the outer one). */
  transaction<T>(fn: () => T): T {
    if (this.depth > 0) return fn();
    this.db.exec("BEGIN IMMEDIATE");
    this.depth++;
    try {
      const result = fn();
      this.db.exec("COMMIT");
      return result;
    } catch (error) {
      this.db.exec("ROLLBACK");
      throw error;
    } finally {
      this.depth--;
    }
  }

  /** Compiling SQL costs more than running it; every statement here is a constant string, so compile each once. */
  private statement(sql: string): StatementSync {
    let stmt = this.statements.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  private get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.statement(sql).get(...params) as Row | undefined;
  }

  private all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.statement(sql).all(...params) as Row[];
  }

  private run(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.statement(sql).run(...params).changes);
  }

  getMeta(key: string): string | undefined {
    const row = this.get("SELECT value FROM meta WHERE key = ?", key);
    return row === undefined ? undefined : String(row.value);
  }

  setMeta(key: string, value: string): void {
    this.run("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value);
  }

  // ------------------------------------------------------------ chain cursor

  loadCursor(): ChainCursor | undefined {
    const row = this.get("SELECT block_number, block_hash FROM cursor_history ORDER BY block_number DESC LIMIT 1");
    return row === undefined ? undefined : { blockNumber: Number(row.block_number), blockHash: String(row.block_hash) };
  }

  /** Processed range ends, newest first. */
  cursorHistory(): ChainCursor[] {
    return this.all("SELECT block_number, block_hash FROM cursor_history ORDER BY block_number DESC").map((row) => ({
      blockNumber: Number(row.block_number),
      blockHash: String(row.block_hash),
    }));
  }

  /** Records that every block up to `cursor` has been applied. */
  advanceCursor(cursor: ChainCursor): void {
    this.run(
      "INSERT INTO cursor_history (block_number, block_hash) VALUES (?, ?) ON CONFLICT(block_number) DO UPDATE SET block_hash = excluded.block_hash",
      cursor.blockNumber,
      cursor.blockHash,
    );
    this.run(
      "DELETE FROM cursor_history WHERE block_number NOT IN (SELECT block_number FROM cursor_history ORDER BY block_number DESC LIMIT ?)",
      CURSOR_HISTORY_LIMIT,
    );
  }

  /**
   * After a reorg: forget processed positions above `cursor` (all of them when
   * undefined) and undo what the events of the removed blocks applied, in one
   * transaction (see rollbackAbove).
   */
  rewindTo(cursor: ChainCursor | undefined): ReorgRollback {
    return this.rollbackAbove(cursor?.blockNumber ?? -1);
  }

  /**
   * Marks a chain event as applied; false when it was applied before (so it is
   * skipped). Call it before applying the event's effects: for a task event it
   * records the task's state as it is now, which a reorg that removes the
   * event restores.
   */
  markEventApplied(eventKey: string, blockNumber: number, name: string, taskId: bigint | undefined): boolean {
    return (
      this.run(
        "INSERT OR IGNORE INTO chain_events (event_key, block_number, name, task_id, prior) VALUES (?, ?, ?, ?, ?)",
        eventKey,
        blockNumber,
        name,
        taskId === undefined ? null : taskId.toString(),
        taskId === undefined ? null : JSON.stringify(this.taskSnapshot(taskId)),
      ) === 1
    );
  }

  countAppliedEvents(): number {
    return Number(this.get("SELECT COUNT(*) AS n FROM chain_events")?.n ?? 0);
  }

  // -------------------------------------------------------------------- tasks

  /** Inserts a task seen on chain; a second call with the same id leaves the stored one as it is. */
  insertTask(task: Omit<StoredTask, "status" | "error" | "result" | "resultHash" | "finalizedBlock" | "finalizeTx"> & { status?: LocalTaskStatus; error?: string }): boolean {
    return (
      this.run(
        `INSERT OR IGNORE INTO tasks (task_id, program_hash, program, requester, parties, data_owners, threshold,
           input_deadline, result_deadline, created_block, status, error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        task.taskId.toString(),
        task.programHash,
        task.program,
        task.requester,
        JSON.stringify(task.parties),
        JSON.stringify(task.dataOwners),
        task.threshold,
        task.inputDeadline.toString(),
        task.resultDeadline.toString(),
        task.createdBlock,
        task.status ?? "awaiting-inputs",
        task.error ?? null,
      ) === 1
    );
  }

  getTask(taskId: bigint): StoredTask | undefined {
    const row = this.get("SELECT * FROM tasks WHERE task_id = ?", taskId.toString());
    return row === undefined ? undefined : toTask(row);
  }

  listTasks(statuses?: readonly LocalTaskStatus[]): StoredTask[] {
    const rows =
      statuses === undefined
        ? this.all("SELECT * FROM tasks")
        : this.all(`SELECT * FROM tasks WHERE status IN (${statuses.map(() => "?").join(",")})`, ...statuses);
    return rows.map(toTask).sort((a, b) => (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0));
  }

  setTaskStatus(taskId: bigint, status: LocalTaskStatus, error?: string): void {
    this.run("UPDATE tasks SET status = ?, error = ? WHERE task_id = ?", status, error ?? null, taskId.toString());
  }

  setTaskResult(taskId: bigint, result: Uint8Array, resultHash: string): void {
    this.run("UPDATE tasks SET result = ?, result_hash = ? WHERE task_id = ?", result, resultHash, taskId.toString());
  }

  setTaskFinalized(taskId: bigint, result: Uint8Array, resultHash: string, block: number, txHash: string): void {
    this.run(
      "UPDATE tasks SET status = 'finalized', error = NULL, result = ?, result_hash = ?, finalized_block = ?, finalize_tx = ? WHERE task_id = ?",
      result,
      resultHash,
      block,
      txHash,
      taskId.toString(),
    );
  }

  // -------------------------------------------------------------- commitments

  /** Records an owner's on-chain commitment; a stored share verified against another commitment is dropped. */
  putCommitment(taskId: bigint, dataOwner: string, commitment: string): void {
    const lower = commitment.toLowerCase();
    this.transaction(() => {
      this.run(
        "INSERT INTO commitments (task_id, data_owner, commitment) VALUES (?, ?, ?) ON CONFLICT(task_id, data_owner) DO UPDATE SET commitment = excluded.commitment",
        taskId.toString(),
        dataOwner,
        lower,
      );
      this.run(
        "DELETE FROM shares WHERE task_id = ? AND data_owner = ? AND commitment IS NOT NULL AND commitment != ?",
        taskId.toString(),
        dataOwner,
        lower,
      );
    });
  }

  getCommitments(taskId: bigint): Map<string, string> {
    return new Map(
      this.all("SELECT data_owner, commitment FROM commitments WHERE task_id = ?", taskId.toString()).map((r) => [
        String(r.data_owner),
        String(r.commitment),
      ]),
    );
  }

  // ------------------------------------------------------------------- shares

  /**
   * Stores a verified share; "identical" when this very share is stored,
   * "conflict" when a different one verified against the same commitment is.
   * A stored share verified against another commitment is stale (that
   * commitment was reorged away) and is replaced.
   */
  putShare(taskId: bigint, share: StoredShare): PutOutcome {
    const commitment = share.commitment?.toLowerCase() ?? null;
    const existing = this.get(
      "SELECT salt, share_values, digests, commitment FROM shares WHERE task_id = ? AND data_owner = ?",
      taskId.toString(),
      share.dataOwner,
    );
    if (existing !== undefined && (existing.commitment === null || commitment === null || existing.commitment === commitment)) {
      const same =
        bytesEqual(existing.salt as Uint8Array, share.salt) &&
        bytesEqual(existing.share_values as Uint8Array, share.values) &&
        bytesEqual(existing.digests as Uint8Array, share.digests);
      return same ? "identical" : "conflict";
    }
    this.run(
      `INSERT INTO shares (task_id, data_owner, salt, share_values, digests, received_at, commitment) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(task_id, data_owner) DO UPDATE SET salt = excluded.salt, share_values = excluded.share_values,
         digests = excluded.digests, received_at = excluded.received_at, commitment = excluded.commitment`,
      taskId.toString(),
      share.dataOwner,
      share.salt,
      share.values,
      share.digests,
      share.receivedAt,
      commitment,
    );
    return "inserted";
  }

  /**
   * The task's shares, leaving out any verified against a commitment other
   * than the one the store holds for that owner (never to be computed on).
   */
  getShares(taskId: bigint): Map<string, StoredShare> {
    return new Map(
      this.all(
        `SELECT s.* FROM shares s LEFT JOIN commitments c ON c.task_id = s.task_id AND c.data_owner = s.data_owner
         WHERE s.task_id = ? AND (s.commitment IS NULL OR c.commitment IS NULL OR s.commitment = c.commitment)`,
        taskId.toString(),
      ).map((r) => [
        String(r.data_owner),
        {
          dataOwner: String(r.data_owner),
          salt: r.salt as Uint8Array,
          values: r.share_values as Uint8Array,
          digests: r.digests as Uint8Array,
          receivedAt: Number(r.received_at),
          commitment: optionalString(r.commitment),
        },
      ]),
    );
  }

  deleteShare(taskId: bigint, dataOwner: string): void {
    this.run("DELETE FROM shares WHERE task_id = ? AND data_owner = ?", taskId.toString(), dataOwner);
  }

  // ----------------------------------------------------------------- messages

  /** Stores a peer's protocol message; a resend of identical bytes is harmless, different bytes are a conflict. */
  putMessage(taskId: bigint, round: number, gate: string, fromParty: string, payload: Uint8Array): PutOutcome {
    // Insert first: on the hot path (one message per peer per round) the label is new, so one statement does.
    const inserted = this.run(
      "INSERT OR IGNORE INTO messages (task_id, round, gate, from_party, payload, received_at) VALUES (?, ?, ?, ?, ?, ?)",
      taskId.toString(),
      round,
      gate,
      fromParty,
      payload,
      Date.now(),
    );
    if (inserted === 1) return "inserted";
    const existing = this.getMessage(taskId, round, gate, fromParty);
    return existing !== undefined && bytesEqual(existing, payload) ? "identical" : "conflict";
  }

  getMessage(taskId: bigint, round: number, gate: string, fromParty: string): Uint8Array | undefined {
    const row = this.get(
      "SELECT payload FROM messages WHERE task_id = ? AND round = ? AND gate = ? AND from_party = ?",
      taskId.toString(),
      round,
      gate,
      fromParty,
    );
    return row === undefined ? undefined : (row.payload as Uint8Array);
  }

  /** Drops a finished task's protocol messages (they hold shares of intermediate values). */
  deleteMessages(taskId: bigint): void {
    this.run("DELETE FROM messages WHERE task_id = ?", taskId.toString());
  }

  // --------------------------------------------------------- requester shares

  /** This party's share of a requester-only output; kept until the requester collects it. */
  putRequesterShare(taskId: bigint, output: string, payload: Uint8Array): void {
    this.run(
      "INSERT INTO requester_shares (task_id, output, payload) VALUES (?, ?, ?) ON CONFLICT(task_id, output) DO UPDATE SET payload = excluded.payload",
      taskId.toString(),
      output,
      payload,
    );
  }

  getRequesterShares(taskId: bigint): Map<string, Uint8Array> {
    return new Map(
      this.all("SELECT output, payload FROM requester_shares WHERE task_id = ? ORDER BY output", taskId.toString()).map((r) => [
        String(r.output),
        r.payload as Uint8Array,
      ]),
    );
  }

  // ------------------------------------------------------------- attestations

  putAttestation(taskId: bigint, attestation: StoredAttestation): PutOutcome {
    const existing = this.get(
      "SELECT result_hash, signature FROM attestations WHERE task_id = ? AND signer = ?",
      taskId.toString(),
      attestation.signer,
    );
    if (existing !== undefined) {
      return existing.result_hash === attestation.resultHash && existing.signature === attestation.signature ? "identical" : "conflict";
    }
    this.run(
      "INSERT INTO attestations (task_id, signer, result_hash, signature) VALUES (?, ?, ?, ?)",
      taskId.toString(),
      attestation.signer,
      attestation.resultHash,
      attestation.signature,
    );
    return "inserted";
  }

  getAttestations(taskId: bigint): StoredAttestation[] {
    return this.all("SELECT signer, result_hash, signature FROM attestations WHERE task_id = ? ORDER BY signer", taskId.toString()).map(
      (r) => ({ signer: String(r.signer), resultHash: String(r.result_hash), signature: String(r.signature) }),
    );
  }

  // --------------------------------------------------------------------- jobs

  getJob(taskId: bigint): StoredJob | undefined {
    const row = this.get("SELECT * FROM jobs WHERE task_id = ?", taskId.toString());
    return row === undefined ? undefined : toJob(row);
  }

  listJobs(): StoredJob[] {
    return this.all("SELECT * FROM jobs").map(toJob);
  }

  /** Makes the task's job due at `at` (epoch ms), or sooner if it already was; creates it if missing. */
  wakeJob(taskId: bigint, at: number): void {
    this.run(
      `INSERT INTO jobs (task_id, next_run_at, updated_at) VALUES (?, ?, ?)
       ON CONFLICT(task_id) DO UPDATE SET next_run_at = MIN(COALESCE(next_run_at, excluded.next_run_at), excluded.next_run_at), updated_at = excluded.updated_at`,
      taskId.toString(),
      at,
      Date.now(),
    );
  }

  /** Claims a due job for a run: it is not due again until the run ends or something wakes it. */
  claimJob(taskId: bigint): void {
    this.run("UPDATE jobs SET next_run_at = NULL WHERE task_id = ?", taskId.toString());
  }

  /**
   * Records how a run ended: the step decided, when to run next (undefined: on
   * an event only; a wake during the run keeps the sooner time), and the error
   * if it failed (which counts towards the backoff).
   */
  finishJobRun(taskId: bigint, outcome: { step: string; nextRunAt: number | undefined; error?: string }): void {
    const next = outcome.nextRunAt ?? null;
    this.run(
      `UPDATE jobs SET step = ?,
         next_run_at = CASE WHEN next_run_at IS NULL THEN ? WHEN ? IS NULL THEN next_run_at ELSE MIN(next_run_at, ?) END,
         last_error = ?, failures = CASE WHEN ? IS NULL THEN 0 ELSE failures + 1 END, updated_at = ?
       WHERE task_id = ?`,
      outcome.step,
      next,
      next,
      next,
      outcome.error ?? null,
      outcome.error ?? null,
      Date.now(),
      taskId.toString(),
    );
  }

  /** Raises the task's computation attempt to `attempt` (never lowers it); true when it rose. */
  raiseJobAttempt(taskId: bigint, attempt: number): boolean {
    return (
      this.run(
        `INSERT INTO jobs (task_id, attempt, updated_at) VALUES (?, ?, ?)
         ON CONFLICT(task_id) DO UPDATE SET attempt = excluded.attempt, updated_at = excluded.updated_at WHERE excluded.attempt > jobs.attempt`,
        taskId.toString(),
        attempt,
        Date.now(),
      ) === 1
    );
  }

  /** Records which attempt's run gave the task's result. */
  setJobResultAttempt(taskId: bigint, attempt: number): void {
    this.run(
      `INSERT INTO jobs (task_id, result_attempt, updated_at) VALUES (?, ?, ?)
       ON CONFLICT(task_id) DO UPDATE SET result_attempt = excluded.result_attempt, updated_at = excluded.updated_at`,
      taskId.toString(),
      attempt,
      Date.now(),
    );
  }

  /** Drops a result that did not reach the quorum, so the task computes again (its signatures over it stay, counted only for that result). */
  clearTaskResult(taskId: bigint): void {
    this.transaction(() => {
      this.run("UPDATE tasks SET status = 'computing', result = NULL, result_hash = NULL WHERE task_id = ?", taskId.toString());
      this.run("DELETE FROM requester_shares WHERE task_id = ?", taskId.toString());
      this.run("UPDATE jobs SET result_attempt = NULL WHERE task_id = ?", taskId.toString());
    });
  }

  /** Records when this party's turn to send the task's finalize or expire transaction comes. */
  setJobTurn(taskId: bigint, actAfter: number): void {
    this.run("UPDATE jobs SET act_after = ?, updated_at = ? WHERE task_id = ?", actAfter, Date.now(), taskId.toString());
  }

  deleteJob(taskId: bigint): void {
    this.run("DELETE FROM jobs WHERE task_id = ?", taskId.toString());
  }

  /** The earliest next_run_at of any job after `now`, if any is scheduled. */
  nextJobDueAfter(now: number): number | undefined {
    const row = this.get("SELECT MIN(next_run_at) AS at FROM jobs WHERE next_run_at > ?", now);
    return row?.at === null || row?.at === undefined ? undefined : Number(row.at);
  }

  /** Jobs due at `now`, earliest first. */
  dueJobs(now: number): StoredJob[] {
    return this.all("SELECT * FROM jobs WHERE next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at", now).map(toJob);
  }

  // -------------------------------------------------------------- signed txs

  getSignedTx(key: string): StoredSignedTx | undefined {
    const row = this.get("SELECT * FROM signed_txs WHERE tx_key = ?", key);
    return row === undefined ? undefined : toSignedTx(row);
  }

  listSignedTxs(): StoredSignedTx[] {
    return this.all("SELECT * FROM signed_txs ORDER BY nonce").map(toSignedTx);
  }

  putSignedTx(tx: StoredSignedTx): void {
    this.run(
      "INSERT OR REPLACE INTO signed_txs (tx_key, sender, nonce, tx_hash, raw_tx, signed_at) VALUES (?, ?, ?, ?, ?, ?)",
      tx.key,
      tx.sender,
      tx.nonce,
      tx.hash,
      tx.raw,
      tx.signedAt,
    );
  }

  deleteSignedTx(key: string): void {
    this.run("DELETE FROM signed_txs WHERE tx_key = ?", key);
  }

  // ------------------------------------------------------------------- reorgs

  private addReorgColumns(): void {
    for (const { table, column, type } of REORG_COLUMNS) {
      const columns = this.db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
      if (!columns.some((c) => c.name === column)) this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
    }
  }

  private taskSnapshot(taskId: bigint): TaskSnapshot {
    const row = this.get("SELECT status, error, result, result_hash, finalized_block, finalize_tx FROM tasks WHERE task_id = ?", taskId.toString());
    return {
      task:
        row === undefined
          ? null
          : {
              status: String(row.status) as LocalTaskStatus,
              error: optionalString(row.error) ?? null,
              result: row.result === null ? null : Buffer.from(row.result as Uint8Array).toString("hex"),
              resultHash: optionalString(row.result_hash) ?? null,
              finalizedBlock: row.finalized_block === null ? null : Number(row.finalized_block),
              finalizeTx: optionalString(row.finalize_tx) ?? null,
            },
      commitmentRowid: Number(this.get("SELECT MAX(rowid) AS m FROM commitments WHERE task_id = ?", taskId.toString())?.m ?? 0),
    };
  }

  /** Drops a task and every row that belongs to it. */
  private deleteTaskRows(taskId: bigint): void {
    for (const table of TASK_TABLES) this.run(`DELETE FROM ${table} WHERE task_id = ?`, taskId.toString());
  }

  /** Forgets a task's progress past its inputs: the result, the signatures over it and the protocol's messages. */
  private resetTaskProgress(taskId: bigint): void {
    const id = taskId.toString();
    this.run("UPDATE tasks SET status = 'awaiting-inputs', error = NULL, result = NULL, result_hash = NULL, finalized_block = NULL, finalize_tx = NULL WHERE task_id = ?", id);
    for (const table of ["attestations", "requester_shares", "messages"]) this.run(`DELETE FROM ${table} WHERE task_id = ?`, id);
  }

  /**
   * Undoes everything applied from blocks above `blockNumber` (they left the
   * canonical chain), in one transaction with forgetting their event keys and
   * the processed positions above it:
   * - a task whose TaskCreated was removed goes, with all its rows;
   * - a removed InputCommitted takes its commitment (the share received
   *   against it is never used unless the same commitment is applied again);
   *   a task that had gone on to compute on it is put back to
   *   awaiting-inputs (its result and signatures covered the removed input);
   * - a removed TaskFinalized or TaskExpired puts back the task's status as
   *   it was before that event.
   * Restoring uses the snapshot markEventApplied took before the oldest
   * removed event of each task.
   */
  rollbackAbove(blockNumber: number): ReorgRollback {
    return this.transaction(() => {
      const byTask = new Map<string, { name: string; prior: TaskSnapshot | undefined }[]>();
      for (const row of this.all("SELECT name, task_id, prior FROM chain_events WHERE block_number > ? AND task_id IS NOT NULL ORDER BY rowid", blockNumber)) {
        const id = String(row.task_id);
        const events = byTask.get(id) ?? [];
        events.push({ name: String(row.name), prior: row.prior === null ? undefined : (JSON.parse(String(row.prior)) as TaskSnapshot) });
        byTask.set(id, events);
      }
      for (const row of this.all("SELECT task_id FROM tasks WHERE created_block > ?", blockNumber)) {
        if (!byTask.has(String(row.task_id))) byTask.set(String(row.task_id), [{ name: "TaskCreated", prior: undefined }]);
      }
      const removedTasks: bigint[] = [];
      const removedCommitments: { taskId: bigint; dataOwner: string }[] = [];
      const revertedTasks: bigint[] = [];
      for (const [id, events] of byTask) {
        const taskId = BigInt(id);
        const task = this.getTask(taskId);
        if (task === undefined) continue;
        if (task.createdBlock > blockNumber || events.some((e) => e.name === "TaskCreated")) {
          this.deleteTaskRows(taskId);
          removedTasks.push(taskId);
          continue;
        }
        // Before the oldest removed event (undefined for an event applied before snapshots were kept).
        const prior = events[0]!.prior;
        let reverted = false;
        if (events.some((e) => e.name === "TaskFinalized" || e.name === "TaskExpired")) {
          if (prior?.task !== null && prior?.task !== undefined) {
            const t = prior.task;
            this.run(
              "UPDATE tasks SET status = ?, error = ?, result = ?, result_hash = ?, finalized_block = ?, finalize_tx = ? WHERE task_id = ?",
              t.status,
              t.error,
              t.result === null ? null : Buffer.from(t.result, "hex"),
              t.resultHash,
              t.finalizedBlock,
              t.finalizeTx,
              id,
            );
          } else {
            // Without a snapshot the result held may be the chain's, not one this node computed: start over.
            this.resetTaskProgress(taskId);
          }
          reverted = true;
        }
        if (events.some((e) => e.name === "InputCommitted")) {
          if (prior !== undefined) {
            for (const row of this.all("SELECT data_owner FROM commitments WHERE task_id = ? AND rowid > ? ORDER BY rowid", id, prior.commitmentRowid)) {
              const owner = String(row.data_owner);
              // The owner's share stays, bound to this commitment: it counts again only if the new chain
              // holds the same commitment (the owner committed the same shares again), and is replaced by
              // the share of any other (putShare, putCommitment). Dropping it here would lose the share of
              // a recommit that a party answered "already held" before it noticed the reorg.
              this.run("DELETE FROM commitments WHERE task_id = ? AND data_owner = ?", id, owner);
              removedCommitments.push({ taskId, dataOwner: owner });
            }
          }
          const status = this.getTask(taskId)!.status;
          // A failure recorded before the inputs came (an invalid program) stands; any progress on the removed inputs does not.
          if (!(status === "failed" && prior?.task?.status === "failed")) {
            if (status !== "awaiting-inputs") reverted = true;
            this.resetTaskProgress(taskId);
          }
        }
        if (reverted) revertedTasks.push(taskId);
      }
      this.run("DELETE FROM cursor_history WHERE block_number > ?", blockNumber);
      this.run("DELETE FROM chain_events WHERE block_number > ?", blockNumber);
      const touched = new Set([...removedTasks, ...removedCommitments.map((c) => c.taskId), ...revertedTasks]);
      const byId = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);
      return {
        removedTasks: removedTasks.sort(byId),
        removedCommitments,
        revertedTasks: revertedTasks.sort(byId),
        touchedTaskIds: [...touched].sort(byId),
      };
    });
  }
}


export interface StoredJob {
  readonly taskId: bigint;
  readonly attempt: number;
  readonly nextRunAt: number | undefined;
  readonly failures: number;
  readonly lastError: string | undefined;
  readonly step: string | undefined;
  readonly actAfter: number | undefined;
  readonly resultAttempt: number | undefined;
  readonly updatedAt: number;
}

export interface StoredSignedTx {
  readonly key: string;
  readonly sender: string;
  readonly nonce: number;
  readonly hash: string;
  readonly raw: string;
  readonly signedAt: number;
}

function toJob(row: Row): StoredJob {
  return {
    taskId: BigInt(String(row.task_id)),
    attempt: Number(row.attempt),
    nextRunAt: row.next_run_at === null ? undefined : Number(row.next_run_at),
    failures: Number(row.failures),
    lastError: optionalString(row.last_error),
    step: optionalString(row.step),
    actAfter: row.act_after === null ? undefined : Number(row.act_after),
    resultAttempt: row.result_attempt === null || row.result_attempt === undefined ? undefined : Number(row.result_attempt),
    updatedAt: Number(row.updated_at),
  };
}

function toSignedTx(row: Row): StoredSignedTx {
  return {
    key: String(row.tx_key),
    sender: String(row.sender),
    nonce: Number(row.nonce),
    hash: String(row.tx_hash),
    raw: String(row.raw_tx),
    signedAt: Number(row.signed_at),
  };
}

function optionalString(value: SQLInputValue | undefined): string | undefined {
  return value === null || value === undefined ? undefined : String(value);
}

function toTask(row: Row): StoredTask {
  return {
    taskId: BigInt(String(row.task_id)),
    programHash: String(row.program_hash),
    program: row.program as Uint8Array,
    requester: String(row.requester),
    parties: JSON.parse(String(row.parties)) as string[],
    dataOwners: JSON.parse(String(row.data_owners)) as string[],
    threshold: Number(row.threshold),
    inputDeadline: BigInt(String(row.input_deadline)),
    resultDeadline: BigInt(String(row.result_deadline)),
    createdBlock: Number(row.created_block),
    status: String(row.status) as LocalTaskStatus,
    error: optionalString(row.error),
    result: row.result === null ? undefined : (row.result as Uint8Array),
    resultHash: optionalString(row.result_hash),
    finalizedBlock: row.finalized_block === null ? undefined : Number(row.finalized_block),
    finalizeTx: optionalString(row.finalize_tx),
  };
}
