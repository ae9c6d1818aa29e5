import { getAddress, keccak256 } from "ethers";
import { toConsortError } from "../errors.ts";
import { decodeProgram, programHash } from "../program/program-encoding.ts";
import { programDataOwnerCount, programInputs, type Program } from "../program/program.ts";
import { decodeResult } from "../program/result-encoding.ts";
import { describeType } from "../program/secret-types.ts";
import { attestationDigest, recoverAttestationSigner } from "./attestation.ts";
import { chainTimeText, type RegistryClient, type TaskRecord } from "./registry-client.ts";
import { findInputsCommitted, findTaskCreated, findTaskFinalized, type EventPosition } from "./task-events.ts";
import type { TaskStateName } from "./task-state.ts";

export interface AuditCheck {
  readonly name: string;
  readonly passed: boolean;
  readonly detail: string;
}

export interface ChainMoment {
  readonly block: number;
  readonly timestamp: number;
  readonly tx: string;
}

export interface AuditReport {
  readonly chainId: string;
  readonly registry: string;
  readonly taskId: string;
  readonly state: TaskStateName;
  readonly requester: string;
  readonly created: ChainMoment | undefined;
  readonly program: {
    readonly hash: string;
    readonly name: string | undefined;
    readonly bytes: number;
    readonly inputs: readonly string[];
    readonly outputs: readonly string[];
  };
  readonly threshold: number;
  readonly parties: readonly { readonly address: string; readonly endpoint: string | undefined }[];
  readonly inputs: readonly { readonly dataOwner: string; readonly commitment: string | undefined; readonly committed: ChainMoment | undefined }[];
  readonly inputDeadline: string;
  readonly resultDeadline: string;
  readonly result:
    | {
        readonly hash: string;
        readonly outputs: Readonly<Record<string, string | readonly string[]>> | undefined;
        readonly finalized: ChainMoment;
        readonly submitter: string;
        readonly attestations: readonly { readonly signer: string; readonly recovered: string; readonly valid: boolean }[];
      }
    | undefined;
  readonly checks: readonly AuditCheck[];
  readonly passed: boolean;
}

function isoSeconds(seconds: bigint | number): string {
  return chainTimeText(BigInt(seconds)).replace(".000Z", "Z");
}

/**
 * Audits a task from the chain alone: the registry's storage and events, and
 * nothing any party says off chain. It recomputes every hash and recovers
 * every signature itself rather than trusting the contract's bookkeeping, so
 * it also catches a registry that is not the code it claims to be.
 */
export async function auditTask(client: RegistryClient, taskId: bigint): Promise<AuditReport> {
  const checks: AuditCheck[] = [];
  const check = (name: string, passed: boolean, detail: string) => checks.push({ name, passed, detail });
  const chainId = await client.chainId();
  const state = await client.taskState(taskId);
  const base = { chainId: chainId.toString(), registry: client.address, taskId: taskId.toString(), state };
  if (state === "None") {
    check("task exists", false, `registry ${client.address} has no task ${taskId}`);
    return {
      ...base,
      requester: "",
      created: undefined,
      program: { hash: "", name: undefined, bytes: 0, inputs: [], outputs: [] },
      threshold: 0,
      parties: [],
      inputs: [],
      inputDeadline: "",
      resultDeadline: "",
      result: undefined,
      checks,
      passed: false,
    };
  }
  const task: TaskRecord = await client.getTask(taskId);
  const blockTimes = new Map<number, number>();
  const moment = async (p: EventPosition): Promise<ChainMoment> => {
    let ts = blockTimes.get(p.blockNumber);
    if (ts === undefined) {
      ts = (await client.provider.getBlock(p.blockNumber))?.timestamp ?? 0;
      blockTimes.set(p.blockNumber, ts);
    }
    return { block: p.blockNumber, timestamp: ts, tx: p.transactionHash };
  };

  // 1. What was computed: the program bytes in the TaskCreated event hash to the stored program hash.
  const created = await findTaskCreated(client, taskId, Number(task.createdAtBlock));
  const recomputed = programHash(created.program);
  check(
    "program bytes match the program hash",
    recomputed === task.programHash.toLowerCase(),
    `keccak256 of the ${created.program.length} program bytes in TaskCreated is ${recomputed}; the task records ${task.programHash}`,
  );
  let program: Program | undefined;
  try {
    program = decodeProgram(created.program);
    check("program is a valid canonical program", true, `${program.name}: ${programInputs(program).length} inputs, ${program.outputs.length} outputs`);
  } catch (error) {
    check("program is a valid canonical program", false, toConsortError(error).message);
  }
  if (program !== undefined) {
    const needed = programDataOwnerCount(program);
    check(
      "program and task agree on the data owners",
      needed === task.dataOwners.length,
      `the program reads ${needed} data owners' inputs; the task lists ${task.dataOwners.length}`,
    );
  }
  const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => getAddress(x) === getAddress(b[i]!));
  check(
    "TaskCreated event matches stored task",
    sameList(created.parties, task.parties) &&
      sameList(created.dataOwners, task.dataOwners) &&
      created.threshold === task.threshold &&
      created.inputDeadline === task.inputDeadline &&
      created.resultDeadline === task.resultDeadline,
    `parties, data owners, threshold t=${task.threshold} and deadlines as announced at creation`,
  );
  check(
    "threshold gives an honest majority",
    task.threshold >= 1 && 2 * task.threshold + 1 <= task.parties.length,
    `t=${task.threshold} of n=${task.parties.length}: any ${task.threshold} parties learn nothing, ${task.threshold + 1} are needed to open`,
  );

  // 2. From which committed inputs.
  const stored = await client.inputCommitments(taskId);
  const events = await findInputsCommitted(client, taskId, Number(task.createdAtBlock));
  const inputs = [];
  for (const [i, owner] of task.dataOwners.entries()) {
    const mine = events.filter((e) => getAddress(e.dataOwner) === getAddress(owner));
    const event = mine[0];
    const committed = event === undefined ? undefined : await moment(event);
    inputs.push({ dataOwner: getAddress(owner), commitment: event?.commitment, committed });
    const storedCommitment = stored[i];
    const ok =
      mine.length === 1 &&
      event !== undefined &&
      storedCommitment !== undefined &&
      event.commitment.toLowerCase() === storedCommitment.toLowerCase() &&
      committed !== undefined &&
      BigInt(committed.timestamp) <= task.inputDeadline;
    check(
      `input of data owner #${i} committed once, before the deadline`,
      ok,
      mine.length === 0
        ? `${owner} never committed`
        : `${owner} committed ${event?.commitment} at block ${committed?.block} (${committed === undefined ? "?" : isoSeconds(committed.timestamp)}); deadline ${isoSeconds(task.inputDeadline)}`,
    );
  }

  // 3. What came out, and who attested to it.
  const parties = await Promise.all(
    task.parties.map(async (address) => ({ address: getAddress(address), endpoint: (await client.findParty(address))?.endpoint })),
  );
  let result: AuditReport["result"];
  const finalized = await findTaskFinalized(client, taskId, Number(task.createdAtBlock));
  check("task finalized with a result", state === "Finalized" && finalized !== undefined, `state ${state}`);
  if (finalized !== undefined) {
    const when = await moment(finalized);
    const hash = keccak256(finalized.result);
    check(
      "result bytes match the result hash",
      hash === task.resultHash.toLowerCase() && hash === finalized.resultHash.toLowerCase(),
      `keccak256 of the ${finalized.result.length} result bytes is ${hash}; the task records ${task.resultHash}`,
    );
    let outputs: Readonly<Record<string, string | readonly string[]>> | undefined;
    if (program !== undefined) {
      try {
        const decoded = decodeResult(program, finalized.result);
        outputs = decoded.outputs;
        check("result decodes under the committed program", decoded.program === task.programHash.toLowerCase(), `result names program ${decoded.program}`);
      } catch (error) {
        check("result decodes under the committed program", false, toConsortError(error).message);
      }
    }
    const attestation = { taskId, programHash: task.programHash, inputCommitments: stored, resultHash: hash };
    const localDigest = attestationDigest(chainId, client.address, attestation);
    const contractDigest = await client.attestationDigest(taskId, hash);
    check(
      "EIP-712 attestation digest recomputed independently",
      localDigest === contractDigest,
      `local ${localDigest}, registry ${contractDigest}`,
    );
    const attestations = finalized.signers.map((signer, i) => {
      let recovered = "";
      try {
        recovered = recoverAttestationSigner(chainId, client.address, attestation, finalized.signatures[i]!);
      } catch {
        recovered = "(unrecoverable)";
      }
      return { signer: getAddress(signer), recovered, valid: recovered === getAddress(signer) };
    });
    const members = new Set(task.parties.map((p) => getAddress(p)));
    const distinct = new Set(attestations.filter((a) => a.valid && members.has(a.signer)).map((a) => a.signer));
    check(
      "every signature recovers to its listed signer",
      attestations.every((a) => a.valid),
      attestations.map((a) => `${a.signer}: ${a.valid ? "ok" : `recovered ${a.recovered}`}`).join(", "),
    );
    check(
      "a quorum of distinct task parties attested",
      distinct.size >= task.threshold + 1 && distinct.size === attestations.length,
      `${distinct.size} distinct parties signed; t+1 = ${task.threshold + 1} needed`,
    );
    check(
      "finalized before the result deadline",
      BigInt(when.timestamp) <= task.resultDeadline,
      `block ${when.block} at ${isoSeconds(when.timestamp)}; deadline ${isoSeconds(task.resultDeadline)}`,
    );
    result = { hash, outputs, finalized: when, submitter: getAddress(finalized.submitter), attestations };
  }

  return {
    ...base,
    requester: getAddress(task.requester),
    created: await moment(created),
    program: {
      hash: task.programHash,
      name: program?.name,
      bytes: created.program.length,
      inputs: program === undefined ? [] : programInputs(program).map((g) => `${g.name}: ${g.length} x ${describeType(g.type)} from data owner #${g.owner}`),
      outputs: program === undefined ? [] : program.outputs.map((o) => o.name).concat(program.derived.map((d) => `${d.name} (derived)`)),
    },
    threshold: task.threshold,
    parties,
    inputs,
    inputDeadline: isoSeconds(task.inputDeadline),
    resultDeadline: isoSeconds(task.resultDeadline),
    result,
    checks,
    passed: checks.every((c) => c.passed),
  };
}

/** A readable report for terminals. */
export function formatAuditReport(r: AuditReport): string {
  const lines: string[] = [];
  const at = (m: ChainMoment | undefined) => (m === undefined ? "-" : `block ${m.block}, ${isoSeconds(m.timestamp)}, tx ${m.tx}`);
  lines.push(`Consort audit of task ${r.taskId} on chain ${r.chainId}, registry ${r.registry}`);
  lines.push(`  state        ${r.state}`);
  lines.push(`  requester    ${r.requester}`);
  lines.push(`  created      ${at(r.created)}`);
  lines.push(`  program      ${r.program.name ?? "(undecodable)"}  ${r.program.hash}  (${r.program.bytes} bytes, on chain)`);
  for (const i of r.program.inputs) lines.push(`                 input  ${i}`);
  for (const o of r.program.outputs) lines.push(`                 output ${o}`);
  lines.push(`  parties      n=${r.parties.length}, threshold t=${r.threshold}`);
  r.parties.forEach((p, i) => lines.push(`    #${i} ${p.address}  ${p.endpoint ?? "(no longer registered)"}`));
  lines.push(`  inputs       deadline ${r.inputDeadline}`);
  r.inputs.forEach((input, i) =>
    lines.push(`    #${i} ${input.dataOwner}  ${input.commitment ?? "(not committed)"}  ${input.committed === undefined ? "" : at(input.committed)}`),
  );
  if (r.result !== undefined) {
    lines.push(`  result       deadline ${r.resultDeadline}`);
    lines.push(`    hash       ${r.result.hash}`);
    for (const [name, value] of Object.entries(r.result.outputs ?? {})) {
      lines.push(`    ${name.padEnd(10)} ${Array.isArray(value) ? `[${value.join(", ")}]` : String(value)}`);
    }
    lines.push(`    finalized  ${at(r.result.finalized)}, submitted by ${r.result.submitter}`);
    for (const a of r.result.attestations) lines.push(`    attested   ${a.signer}  ${a.valid ? "signature ok" : `BAD SIGNATURE (recovers to ${a.recovered})`}`);
  } else {
    lines.push(`  result       none yet (deadline ${r.resultDeadline})`);
  }
  lines.push("  checks");
  for (const c of r.checks) lines.push(`    [${c.passed ? "pass" : "FAIL"}] ${c.name}: ${c.detail}`);
  lines.push(`  audit ${r.passed ? "PASSED" : "FAILED"}: ${r.checks.filter((c) => c.passed).length}/${r.checks.length} checks passed`);
  return lines.join("\n");
}
