import { expect } from "chai";
import fc from "fast-check";
import { TASK_STATES, type TaskStateName } from "../../node/chain/task-state.ts";
import { DEADLINE_RECHECK_MS, RECHECK_MS, nextStep, retryDelayMs, submitterRank, type TaskView } from "../../node/daemon/task-lifecycle.ts";
import type { LocalTaskStatus } from "../../node/store/node-store.ts";

const STATUSES: LocalTaskStatus[] = ["awaiting-inputs", "computing", "attesting", "finalized", "expired", "failed"];
const NOW = 1_700_000_000_000;
const TAKEOVER = 10_000;

function view(overrides: Partial<TaskView> = {}): TaskView {
  return {
    status: "awaiting-inputs",
    chain: "Computing",
    chainAgrees: true,
    inputsComplete: true,
    hasResult: false,
    attestations: 0,
    quorum: 2,
    attempt: 0,
    resultAttempt: undefined,
    rank: 0,
    actAfter: undefined,
    pendingTx: undefined,
    deadline: BigInt(NOW / 1000 + 3_600),
    chainTime: BigInt(NOW / 1000),
    now: NOW,
    ...overrides,
  };
}

const arbView = fc.record({
  status: fc.constantFrom(...STATUSES),
  chain: fc.constantFrom(...TASK_STATES) as fc.Arbitrary<TaskStateName>,
  chainAgrees: fc.boolean(),
  inputsComplete: fc.boolean(),
  hasResult: fc.boolean(),
  attestations: fc.integer({ min: 0, max: 5 }),
  quorum: fc.integer({ min: 1, max: 4 }),
  attempt: fc.integer({ min: 0, max: 3 }),
  resultAttempt: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
  rank: fc.integer({ min: 0, max: 4 }),
  actAfter: fc.option(fc.integer({ min: NOW - 60_000, max: NOW + 60_000 }), { nil: undefined }),
  pendingTx: fc.constantFrom(undefined, "finalize" as const, "expire" as const),
  deadline: fc.bigInt({ min: BigInt(NOW / 1000 - 120), max: BigInt(NOW / 1000 + 120) }),
  chainTime: fc.bigInt({ min: BigInt(NOW / 1000 - 60), max: BigInt(NOW / 1000 + 60) }),
  now: fc.constant(NOW),
});

describe("daemon/task-lifecycle", () => {
  it("computes only a task the chain says is Computing, that agrees with the store, with every input and no result yet", () => {
    expect(nextStep(view(), TAKEOVER)).to.deep.equal({ kind: "compute" });
    expect(nextStep(view({ status: "computing" }), TAKEOVER)).to.deep.equal({ kind: "compute" });
    expect(nextStep(view({ inputsComplete: false }), TAKEOVER).kind).to.equal("wait");
    expect(nextStep(view({ chainAgrees: false }), TAKEOVER).kind).to.equal("wait");
    expect(nextStep(view({ chain: "AwaitingInputs" }), TAKEOVER).kind).to.equal("wait");
    expect(nextStep(view({ chain: "None" }), TAKEOVER).kind).to.equal("wait");
    fc.assert(
      fc.property(arbView, (v) => {
        if (nextStep(v, TAKEOVER).kind !== "compute") return;
        expect(v.chain).to.equal("Computing");
        expect(v.chainAgrees && v.inputsComplete && !v.hasResult).to.equal(true);
        expect(v.status === "awaiting-inputs" || v.status === "computing").to.equal(true);
      }),
    );
  });

  it("attests a result until the quorum is held, then waits for its turn to finalize", () => {
    const attesting = view({ status: "attesting", hasResult: true, attestations: 1 });
    expect(nextStep(attesting, TAKEOVER)).to.deep.equal({ kind: "attest" });
    const quorate = { ...attesting, attestations: 2, rank: 2 };
    expect(nextStep(quorate, TAKEOVER)).to.deep.equal({ kind: "await-turn", then: "finalize", until: NOW + 2 * TAKEOVER });
    expect(nextStep({ ...quorate, actAfter: NOW + 5 }, TAKEOVER)).to.deep.equal({ kind: "await-turn", then: "finalize", until: NOW + 5 });
    expect(nextStep({ ...quorate, actAfter: NOW }, TAKEOVER)).to.deep.equal({ kind: "finalize" });
    // The first in the rotation acts at once.
    expect(nextStep({ ...quorate, rank: 0, actAfter: NOW }, TAKEOVER)).to.deep.equal({ kind: "finalize" });
  });

  it("drops a result short of the quorum once a peer computes again under a newer attempt, and only then", () => {
    const held = view({ status: "attesting", hasResult: true, attestations: 1, attempt: 0, resultAttempt: 0 });
    expect(nextStep(held, TAKEOVER)).to.deep.equal({ kind: "attest" });
    expect(nextStep({ ...held, attempt: 2 }, TAKEOVER)).to.deep.equal({ kind: "recompute" });
    // With the quorum, the result stands whatever the peers do.
    expect(nextStep({ ...held, attempt: 2, attestations: 2, actAfter: NOW }, TAKEOVER)).to.deep.equal({ kind: "finalize" });
    fc.assert(
      fc.property(arbView, (v) => {
        if (nextStep(v, TAKEOVER).kind !== "recompute") return;
        expect(v.hasResult && v.attestations < v.quorum && v.resultAttempt !== undefined && v.attempt > v.resultAttempt).to.equal(true);
        expect(v.chain).to.equal("Computing");
      }),
    );
  });

  it("never sends a finalize transaction without the quorum, or while the chain is not Computing, unless one is already signed", () => {
    fc.assert(
      fc.property(arbView, (v) => {
        const step = nextStep(v, TAKEOVER);
        if (step.kind !== "finalize" || v.pendingTx === "finalize") return;
        expect(v.chain).to.equal("Computing");
        expect(v.hasResult).to.equal(true);
        expect(v.attestations).to.be.at.least(v.quorum);
        expect(v.actAfter).to.not.equal(undefined);
        expect(v.actAfter!).to.be.at.most(v.now);
      }),
    );
  });

  it("a signed transaction is seen through first, whatever else holds", () => {
    expect(nextStep(view({ pendingTx: "finalize", chain: "Finalized" }), TAKEOVER)).to.deep.equal({ kind: "finalize" });
    expect(nextStep(view({ pendingTx: "expire", status: "failed" }), TAKEOVER)).to.deep.equal({ kind: "expire" });
    // ...but a task that is over here needs nothing more.
    expect(nextStep(view({ pendingTx: "finalize", status: "finalized" }), TAKEOVER)).to.deep.equal({ kind: "done" });
  });

  it("records an expiry the chain computed, in turn, even for a task that failed here", () => {
    for (const status of ["awaiting-inputs", "computing", "attesting", "failed"] as const) {
      expect(nextStep(view({ status, chain: "Expired", rank: 1 }), TAKEOVER)).to.deep.equal({ kind: "await-turn", then: "expire", until: NOW + TAKEOVER });
      expect(nextStep(view({ status, chain: "Expired", rank: 1, actAfter: NOW - 1 }), TAKEOVER)).to.deep.equal({ kind: "expire" });
    }
  });

  it("a finalized or expired task is done; a task failed here waits for the chain", () => {
    fc.assert(
      fc.property(arbView, (v) => {
        const step = nextStep(v, TAKEOVER);
        if (v.status === "finalized" || v.status === "expired") expect(step.kind).to.equal("done");
        else expect(step.kind).to.not.equal("done");
        if (v.status === "failed") expect(["wait", "await-turn", "expire", "finalize"]).to.include(step.kind);
        if (v.status === "failed" && v.pendingTx === undefined) expect(["wait", "await-turn", "expire"]).to.include(step.kind);
      }),
    );
  });

  it("every wait comes back within RECHECK_MS, so a missed event never strands a task", () => {
    fc.assert(
      fc.property(arbView, (v) => {
        const step = nextStep(v, TAKEOVER);
        if (step.kind === "wait") {
          expect(step.until).to.be.a("number");
          expect(step.until! - v.now).to.be.at.most(RECHECK_MS);
        }
      }),
    );
  });

  it("a waiting task is looked at again just after its deadline by the chain's clock, when that comes before the next recheck", () => {
    // The chain's clock runs 100 s ahead of this node's: 5 s of it are left.
    const chainTime = BigInt(NOW / 1000 + 100);
    const soon = chainTime + 5n;
    const justAfter = NOW + 5_000 + DEADLINE_RECHECK_MS / 2;
    expect(nextStep(view({ chain: "AwaitingInputs", deadline: soon, chainTime }), TAKEOVER)).to.deep.include({ kind: "wait", until: justAfter });
    expect(nextStep(view({ inputsComplete: false, deadline: soon, chainTime }), TAKEOVER)).to.deep.include({ kind: "wait", until: justAfter });
    // A far deadline: the recheck comes first; one the chain has reached but not passed (no block since): soon again.
    expect(nextStep(view({ chain: "AwaitingInputs" }), TAKEOVER)).to.deep.include({ until: NOW + RECHECK_MS });
    expect(nextStep(view({ chain: "AwaitingInputs", deadline: chainTime - 1n, chainTime }), TAKEOVER)).to.deep.include({ until: NOW + DEADLINE_RECHECK_MS });
  });

  it("rotates the submitter by task id and backs off exponentially up to 30 s", () => {
    expect([0, 1, 2].map((self) => submitterRank(self, 3, 7n))).to.deep.equal([2, 0, 1]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.bigInt({ min: 0n, max: 2n ** 64n }), (n, taskId) => {
        const ranks = Array.from({ length: n }, (_, self) => submitterRank(self, n, taskId));
        expect([...ranks].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: n }, (_, i) => i));
      }),
    );
    expect([0, 1, 2, 3, 4, 5, 6, 40].map(retryDelayMs)).to.deep.equal([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  });
});
