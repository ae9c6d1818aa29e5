import { toConsortError, type ConsortError } from "../errors.ts";
import type { NodeStore } from "../store/node-store.ts";
import { retryDelayMs } from "./task-lifecycle.ts";

/** How one run of a task's job ended. */
export interface StepOutcome {
  /** The step decided (and taken), for operators. */
  readonly step: string;
  /** When to run again (epoch ms); undefined: only an event wakes it. */
  readonly nextRunAt: number | undefined;
}

export type JobTable = Pick<NodeStore, "dueJobs" | "nextJobDueAfter" | "wakeJob" | "claimJob" | "finishJobRun">;

export interface TaskDriverOptions {
  jobs: JobTable;
  /** Decides the task's next step and takes it. */
  run(taskId: bigint): Promise<StepOutcome>;
  /** A run threw: log it, and mark the task failed if the error is fatal. Runs again after the backoff either way. */
  onFailure(taskId: bigint, error: ConsortError, failures: number): void;
  /** Runs at most this many tasks at once (the rest stay due). */
  maxConcurrent?: number;
  now?: () => number;
}

/**
 * Runs the node's task jobs (the `jobs` table): each due job is claimed, run
 * once, and given its next time, so retries, restarts and backoff are rows,
 * not in-memory maps and timers. One task runs at most once at a time; a wake
 * while it runs makes it due again as soon as the run ends. Every error a run
 * throws is caught here and becomes a backoff (retryable) or a failed task
 * (fatal): no error of a task reaches the process.
 */
export class TaskDriver {
  readonly #o: TaskDriverOptions;
  readonly #now: () => number;
  readonly #running = new Map<string, Promise<void>>();
  readonly #failures = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;

  constructor(options: TaskDriverOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#scan();
  }

  /** Makes the task's job due at `at` (default now), creating it if needed. */
  wake(taskId: bigint, at = this.#now()): void {
    this.#o.jobs.wakeJob(taskId, at);
    if (!this.#stopped) this.#scan();
  }

  /** Tasks running now. */
  get running(): number {
    return this.#running.size;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled([...this.#running.values()]);
  }

  #scan(): void {
    if (this.#stopped) return;
    const now = this.#now();
    const max = this.#o.maxConcurrent ?? Number.POSITIVE_INFINITY;
    for (const job of this.#o.jobs.dueJobs(now)) {
      if (this.#running.size >= max) break;
      const key = job.taskId.toString();
      if (this.#running.has(key)) continue;
      this.#o.jobs.claimJob(job.taskId);
      this.#failures.set(key, job.failures);
      const run = this.#runOne(job.taskId).finally(() => {
        this.#running.delete(key);
        this.#scan();
      });
      this.#running.set(key, run);
    }
    this.#arm(now);
  }

  /** Sets the timer for the next job that falls due (jobs due now but running are picked up when their run ends). */
  #arm(now: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const next = this.#o.jobs.nextJobDueAfter(now);
    if (next === undefined) return;
    this.#timer = setTimeout(() => this.#scan(), Math.min(Math.max(0, next - now), 2 ** 31 - 1));
    this.#timer.unref();
  }

  async #runOne(taskId: bigint): Promise<void> {
    try {
      const outcome = await this.#o.run(taskId);
      if (this.#stopped) return;
      this.#o.jobs.finishJobRun(taskId, outcome);
    } catch (error) {
      const e = toConsortError(error);
      if (this.#stopped) return;
      const failures = (this.#failures.get(taskId.toString()) ?? 0) + 1;
      try {
        this.#o.onFailure(taskId, e, failures);
      } finally {
        this.#o.jobs.finishJobRun(taskId, { step: "retry", nextRunAt: this.#now() + retryDelayMs(failures - 1), error: `${e.code}: ${e.message}` });
      }
    }
  }
}
