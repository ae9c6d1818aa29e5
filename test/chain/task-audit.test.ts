import { expect } from "chai";
import { network } from "hardhat";
import { SigningKey, getAddress, keccak256, toUtf8Bytes } from "ethers";
import { signAttestation } from "../../node/chain/attestation.ts";
import { deployRegistry } from "../../node/chain/deployments.ts";
import { RegistryClient } from "../../node/chain/registry-client.ts";
import { auditTask, formatAuditReport } from "../../node/chain/task-audit.ts";
import type { AuditReport } from "../../node/chain/task-audit.ts";
import { evaluatePlain } from "../../node/program/plain-evaluator.ts";
import { decodeResult, encodeResult } from "../../node/program/result-encoding.ts";
import { encodeProgram } from "../../node/program/program-encoding.ts";
import { standardInputName, totalAndMean } from "../../node/program/standard-programs.ts";

const { ethers } = await network.create();
type Account = Awaited<ReturnType<typeof ethers.getSigners>>[number];

const PROGRAM_CHECKS = [
  "program bytes match the program hash",
  "program is a valid canonical program",
  "program and task agree on the data owners",
  "TaskCreated event matches stored task",
  "threshold gives an honest majority",
];
const INPUT_CHECKS = ["input of data owner #0 committed once, before the deadline", "input of data owner #1 committed once, before the deadline"];
const FINALIZED_CHECK = "task finalized with a result";
const RESULT_CHECKS = [
  "result bytes match the result hash",
  "result decodes under the committed program",
  "EIP-712 attestation digest recomputed independently",
  "every signature recovers to its listed signer",
  "a quorum of distinct task parties attested",
  "finalized before the result deadline",
];

function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no item at index ${index} (length ${items.length})`);
  return item;
}

function checkNamed(report: AuditReport, name: string) {
  const check = report.checks.find((c) => c.name === name);
  if (check === undefined) return expect.fail(`the report has no check "${name}": ${report.checks.map((c) => c.name).join(" | ")}`);
  return check;
}

function failing(report: AuditReport): string[] {
  return report.checks.filter((c) => !c.passed).map((c) => c.name);
}

describe("chain/task-audit", function () {
  const program = totalAndMean({ owners: 2, valuesPerOwner: 1, bits: 32 });
  const programBytes = encodeProgram(program);
  let accounts: Account[];
  let client: RegistryClient;
  let chainId: bigint;
  const parties = [1, 2, 3];
  const owners = [4, 5];
  const as = (index: number) => client.connectRunner(at(accounts, index));
  const address = (index: number) => at(accounts, index).address;

  before(async () => {
    accounts = await ethers.getSigners();
    const deployment = await deployRegistry(at(accounts, 0));
    client = await RegistryClient.connect(ethers.provider, deployment.registry);
    chainId = (await ethers.provider.getNetwork()).chainId;
    for (const i of parties) {
      const key = new SigningKey(keccak256(toUtf8Bytes(`audit-party-${i}`))).compressedPublicKey;
      await as(i).registerParty(key, `http://127.0.0.1:${7000 + i}`);
    }
  });

  async function createTask(bytes: Uint8Array = programBytes): Promise<bigint> {
    const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
    const { taskId } = await as(6).createTask({
      program: bytes,
      parties: parties.map(address),
      dataOwners: owners.map(address),
      threshold: 1,
      inputDeadline: now + 1_000n,
      resultDeadline: now + 2_000n,
    });
    return taskId;
  }

  async function commitAll(taskId: bigint): Promise<void> {
    for (const o of owners) await as(o).commitInput(taskId, keccak256(toUtf8Bytes(`commitment-${taskId}-${o}`)));
  }

  /** Finalizes `taskId` with `result`, attested by every party of the task (three signers, quorum two). */
  async function finalize(taskId: bigint, result: Uint8Array): Promise<void> {
    const task = await client.getTask(taskId);
    const attestation = { taskId, programHash: task.programHash, inputCommitments: await client.inputCommitments(taskId), resultHash: keccak256(result) };
    const signatures = await Promise.all(parties.map((i) => signAttestation(at(accounts, i), chainId, client.address, attestation)));
    await as(7).finalizeTask(taskId, result, signatures);
  }

  it("a finalized task passes every check and shows the decoded outputs", async () => {
    const taskId = await createTask();
    await commitAll(taskId);
    // The opened outputs the parties would reconstruct for inputs 1200 and -200.
    const result = encodeResult(program, evaluatePlain(program, { [standardInputName(0)]: [1_200n], [standardInputName(1)]: [-200n] }));
    await finalize(taskId, result);

    const report = await auditTask(client, taskId);
    expect(failing(report)).to.deep.equal([]);
    expect(report.passed).to.equal(true);
    expect(report.checks.map((c) => c.name)).to.deep.equal([...PROGRAM_CHECKS, ...INPUT_CHECKS, FINALIZED_CHECK, ...RESULT_CHECKS]);
    expect(report.state).to.equal("Finalized");
    expect(report.taskId).to.equal(taskId.toString());
    expect(report.chainId).to.equal(chainId.toString());
    expect(report.registry).to.equal(client.address);
    expect(report.requester).to.equal(address(6));
    expect(report.threshold).to.equal(1);
    expect(report.program.hash).to.equal(keccak256(programBytes));
    expect(report.program.name).to.equal(program.name);
    expect(report.program.bytes).to.equal(programBytes.length);
    expect(report.program.inputs).to.have.length(2);
    expect(report.program.outputs).to.deep.equal(["total", "mean (derived)"]);
    expect(report.parties).to.deep.equal(parties.map((i) => ({ address: address(i), endpoint: `http://127.0.0.1:${7000 + i}` })));
    expect(report.inputs.map((i) => [i.dataOwner, i.commitment])).to.deep.equal(
      owners.map((o) => [address(o), keccak256(toUtf8Bytes(`commitment-${taskId}-${o}`))]),
    );
    expect(report.result?.hash).to.equal(keccak256(result));
    expect(report.result?.outputs).to.deep.equal({ total: "1000", mean: "500.00" });
    expect(report.result?.outputs).to.deep.equal(decodeResult(program, result).outputs);
    expect(report.result?.submitter).to.equal(address(7));
    expect(report.result?.attestations).to.deep.equal(parties.map((i) => ({ signer: address(i), recovered: address(i), valid: true })));
    const finalizedBlock = Number((await client.getTask(taskId)).finalizedAtBlock);
    expect(report.result?.finalized.block).to.equal(finalizedBlock);
    expect(report.result?.finalized.timestamp).to.equal((await ethers.provider.getBlock(finalizedBlock))!.timestamp);
    expect(report.created?.block).to.equal(Number((await client.getTask(taskId)).createdAtBlock));

    const text = formatAuditReport(report);
    expect(text).to.contain("audit PASSED");
    expect(text).to.not.contain("FAILED");
    expect(text).to.contain(`${RESULT_CHECKS.length + PROGRAM_CHECKS.length + INPUT_CHECKS.length + 1}/${report.checks.length} checks passed`);
    for (const check of report.checks) expect(text).to.contain(check.name);
    for (const p of parties) expect(text).to.contain(address(p));
  });

  it("an unknown task fails the 'task exists' check", async () => {
    const unknown = (await client.taskCount()) + 10n;
    const report = await auditTask(client, unknown);
    expect(report.passed).to.equal(false);
    expect(report.state).to.equal("None");
    expect(report.checks).to.have.length(1);
    expect(checkNamed(report, "task exists").passed).to.equal(false);
    const text = formatAuditReport(report);
    expect(text).to.contain("audit FAILED");
    expect(text).to.contain("task exists");
  });

  it("a task still awaiting inputs fails the input and finalization checks, and passes the program checks", async () => {
    const taskId = await createTask();
    await as(at(owners, 0)).commitInput(taskId, keccak256(toUtf8Bytes("only the first owner")));
    const report = await auditTask(client, taskId);
    expect(report.state).to.equal("AwaitingInputs");
    expect(report.passed).to.equal(false);
    expect(failing(report)).to.deep.equal([at(INPUT_CHECKS, 1), FINALIZED_CHECK]);
    for (const name of [...PROGRAM_CHECKS, at(INPUT_CHECKS, 0)]) expect(checkNamed(report, name).passed, name).to.equal(true);
    expect(report.result).to.equal(undefined);
    expect(report.inputs.map((i) => i.commitment)).to.deep.equal([keccak256(toUtf8Bytes("only the first owner")), undefined]);

    const text = formatAuditReport(report);
    expect(text).to.contain("audit FAILED");
    expect(text).to.contain("(not committed)");
    for (const check of report.checks) expect(text).to.contain(check.name);
  });

  it("a task whose program bytes are not a valid canonical program fails that check", async () => {
    const garbage = await createTask(toUtf8Bytes("SELECT * FROM patients"));
    // Valid JSON of a valid program, but not its canonical encoding (which would give it a second hash).
    const spaced = toUtf8Bytes(JSON.stringify(JSON.parse(new TextDecoder().decode(programBytes)), null, 1));
    const nonCanonical = await createTask(spaced);
    for (const taskId of [garbage, nonCanonical]) {
      await commitAll(taskId);
      const report = await auditTask(client, taskId);
      expect(report.passed).to.equal(false);
      expect(failing(report)).to.deep.equal(["program is a valid canonical program", FINALIZED_CHECK]);
      expect(checkNamed(report, "program bytes match the program hash").passed).to.equal(true);
      expect(report.checks.some((c) => c.name === "program and task agree on the data owners")).to.equal(false);
      expect(report.program.name).to.equal(undefined);
      const text = formatAuditReport(report);
      expect(text).to.contain("(undecodable)");
      expect(text).to.contain("audit FAILED");
      for (const check of report.checks) expect(text).to.contain(check.name);
    }
  });

  it("a finalized task with an undecodable program and result fails the program check only", async () => {
    // The registry accepts any non-empty bytes as program and result; only the audit can tell.
    const taskId = await createTask(toUtf8Bytes("not a program"));
    await commitAll(taskId);
    await finalize(taskId, toUtf8Bytes("not a result"));
    const report = await auditTask(client, taskId);
    expect(report.state).to.equal("Finalized");
    expect(failing(report)).to.deep.equal(["program is a valid canonical program"]);
    expect(report.result?.outputs).to.equal(undefined);
    expect(report.result?.attestations.every((a) => a.valid)).to.equal(true);
  });

  it("a result that names another program fails 'result decodes under the committed program'", async () => {
    const taskId = await createTask();
    await commitAll(taskId);
    const other = totalAndMean({ owners: 2, valuesPerOwner: 1, bits: 32, name: "some-other-program" });
    await finalize(taskId, encodeResult(other, new Map([["total", [7n]]])));
    const report = await auditTask(client, taskId);
    expect(failing(report)).to.deep.equal(["result decodes under the committed program"]);
    expect(report.result?.outputs).to.equal(undefined);
    expect(getAddress(report.result!.submitter)).to.equal(address(7));
  });
});
