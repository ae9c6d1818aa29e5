import { expect } from "chai";
import { ConsortError } from "../../node/errors.ts";
import { TaskDriver, type StepOutcome } from "../../node/daemon/task-driver.ts";
import { NodeStore } from "../../node/store/node-store.ts";

/** A promise with its resolve function, to let a test decide when a run ends. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe("daemon/task-driver", () => {
  let store: NodeStore;
  let driver: TaskDriver | undefined;

  beforeEach(() => {
    store = NodeStore.open(":memory:");
  });

  afterEach(async () => {
    await driver?.stop();
    driver = undefined;
    store.close();
  });

  it("runs a woken job, records its step and next time, and runs it again when that time comes", async () => {
    const runs: number[] = [];
    const second = deferred<void>();
    driver = new TaskDriver({
      jobs: store,
      run: async (taskId): Promise<StepOutcome> => {
        runs.push(Number(taskId));
        if (runs.length === 2) second.resolve();
        return runs.length === 1 ? { step: "wait: a little", nextRunAt: Date.now() + 20 } : { step: "wait: an event", nextRunAt: undefined };
      },
      onFailure: () => expect.fail("no run fails"),
    });
    driver.start();
    driver.wake(7n);
    await second.promise;
    expect(runs).to.deep.equal([7, 7]);
    await waitFor(() => driver!.running === 0);
    const job = store.getJob(7n)!;
    expect(job.step).to.equal("wait: an event");
    expect(job.nextRunAt).to.equal(undefined);
    expect(job.failures).to.equal(0);
  });

  it("runs a task once at a time; a wake during its run makes it run again right after", async () => {
    const gate = deferred<void>();
    let concurrent = 0;
    let maxConcurrent = 0;
    let runs = 0;
    const twice = deferred<void>();
    driver = new TaskDriver({
      jobs: store,
      run: async () => {
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        runs++;
        if (runs === 1) await gate.promise;
        concurrent--;
        if (runs === 2) twice.resolve();
        return { step: "wait", nextRunAt: undefined };
      },
      onFailure: () => expect.fail("no run fails"),
    });
    driver.start();
    driver.wake(1n);
    await waitFor(() => runs === 1);
    driver.wake(1n);
    driver.wake(1n);
    expect(runs).to.equal(1);
    gate.resolve();
    await twice.promise;
    await waitFor(() => driver!.running === 0);
    expect(maxConcurrent).to.equal(1);
    expect(runs).to.equal(2);
  });

  it("a run that throws is reported with its failure count and retried after the backoff, recorded in the job", async () => {
    const reported: [bigint, string, boolean, number][] = [];
    let runs = 0;
    const retried = deferred<void>();
    driver = new TaskDriver({
      jobs: store,
      run: async () => {
        runs++;
        if (runs === 1) throw new ConsortError("PROTOCOL_TIMEOUT", "peers did not answer", { retryable: true });
        retried.resolve();
        return { step: "attest", nextRunAt: undefined };
      },
      onFailure: (taskId, error, failures) => reported.push([taskId, error.code, error.retryable, failures]),
    });
    driver.start();
    const before = Date.now();
    driver.wake(3n);
    await waitFor(() => store.getJob(3n)?.lastError !== undefined);
    const failed = store.getJob(3n)!;
    expect(failed.failures).to.equal(1);
    expect(failed.step).to.equal("retry");
    expect(failed.lastError).to.match(/^PROTOCOL_TIMEOUT: /);
    // The first backoff is a second: not before.
    expect(failed.nextRunAt! - before).to.be.at.least(1_000);
    expect(reported).to.deep.equal([[3n, "PROTOCOL_TIMEOUT", true, 1]]);
    await retried.promise;
    await waitFor(() => driver!.running === 0);
    expect(store.getJob(3n)!.failures).to.equal(0);
    expect(store.getJob(3n)!.lastError).to.equal(undefined);
  });

  it("a job due before a restart runs after it: the table, not a timer, holds it", async () => {
    store.wakeJob(5n, Date.now() - 1_000);
    store.wakeJob(6n, Date.now() + 3_600_000);
    const ran: bigint[] = [];
    const done = deferred<void>();
    driver = new TaskDriver({
      jobs: store,
      run: async (taskId) => {
        ran.push(taskId);
        done.resolve();
        return { step: "wait", nextRunAt: undefined };
      },
      onFailure: () => expect.fail("no run fails"),
    });
    driver.start();
    await done.promise;
    await waitFor(() => driver!.running === 0);
    expect(ran).to.deep.equal([5n]);
    expect(store.getJob(6n)!.nextRunAt).to.be.greaterThan(Date.now());
  });

  it("never runs more tasks at once than maxConcurrent", async () => {
    const gates = new Map<bigint, ReturnType<typeof deferred<void>>>();
    let concurrent = 0;
    let maxConcurrent = 0;
    const finished: bigint[] = [];
    driver = new TaskDriver({
      jobs: store,
      maxConcurrent: 2,
      run: async (taskId) => {
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        const gate = deferred<void>();
        gates.set(taskId, gate);
        await gate.promise;
        concurrent--;
        finished.push(taskId);
        return { step: "wait", nextRunAt: undefined };
      },
      onFailure: () => expect.fail("no run fails"),
    });
    driver.start();
    for (const id of [1n, 2n, 3n, 4n]) driver.wake(id);
    await waitFor(() => gates.size === 2);
    expect(driver.running).to.equal(2);
    for (let i = 0; i < 4; i++) {
      await waitFor(() => [...gates.keys()].some((id) => !finished.includes(id) && gates.get(id) !== undefined));
      const next = [...gates.keys()].find((id) => !finished.includes(id))!;
      gates.get(next)!.resolve();
      await waitFor(() => finished.includes(next));
    }
    expect(finished).to.have.length(4);
    expect(maxConcurrent).to.equal(2);
  });
});

/** Resolves once `condition` holds, checking on every turn of the event loop (bounded by mocha's timeout). */
async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}
