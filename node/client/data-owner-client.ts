import { mkdirSync } from "node:fs";
import { getAddress, getBytes, hexlify, type Signer } from "ethers";
import { randomBytes } from "@noble/hashes/utils.js";
import type { RegistryClient } from "../chain/registry-client.ts";
import { findTaskCreated } from "../chain/task-events.ts";
import { ConsortError, toConsortError } from "../errors.ts";
import { hexBytes, toHex } from "../transport/binary-codec.ts";
import { commitEncodedInputShares, type InputContext } from "../math/commitment.ts";
import { decodeFieldVector, encodeFieldVector } from "../math/field.ts";
import { frVecFromBigEndian } from "../math/fr-vec.ts";
import type { Rng } from "../math/rng.ts";
import { reconstructVector, splitVector } from "../math/shamir.ts";
import { encodeInputValues } from "../program/input-values.ts";
import { decodeProgram, verifyProgramHash } from "../program/program-encoding.ts";
import type { Program } from "../program/program.ts";
import { postShareSubmission, withRetry } from "../transport/http-client.ts";
import { sealEncodedSharePayload, signShareSubmission } from "../transport/share-submission.ts";
import { ownerInputLayout } from "../program/input-layout.ts";
import { PendingSubmissionFile, type PendingSubmission } from "./pending-submission.ts";

export interface SubmitInputOptions {
  /** The registry, connected with the data owner's signer. */
  registry: RegistryClient;
  signer: Signer;
  taskId: bigint;
  /** Values per input name (an owner with a single input may pass it under any key via `values`). */
  inputs?: Readonly<Record<string, readonly (bigint | number | string)[]>>;
  /** Shorthand for an owner that has exactly one input. */
  values?: readonly (bigint | number | string)[];
  /**
   * Where the pending submission (the shares and salts, which are secret) is kept
   * between the on-chain commitment and the last delivery, so a crash or an
   * unreachable party loses nothing: running submitInput again resumes it.
   */
  stateDir: string;
  /** How long to keep retrying a party that is down or has not seen the task yet. */
  deliveryTimeoutMs?: number;
  rng?: Rng;
  onProgress?: (event: { step: string; [key: string]: unknown }) => void;
}

export interface DeliveryOutcome {
  readonly party: string;
  readonly status: "accepted" | "already-held";
}

export interface SubmitInputResult {
  readonly taskId: bigint;
  readonly dataOwner: string;
  readonly commitment: string;
  readonly commitTx: string | undefined;
  readonly deliveries: readonly DeliveryOutcome[];
}

/** A party's encoded shares from the pending submission, checked (canonical elements); STORE_FAILED if the state file was damaged. */
function storedShares(hex: string | undefined): Uint8Array {
  const bytes = storedHex(hex, "shares");
  try {
    frVecFromBigEndian(bytes, "pending shares");
  } catch (cause) {
    throw new ConsortError("STORE_FAILED", "the pending submission's shares are not field elements: the state file is damaged", { cause, details: { field: "shares" } });
  }
  return bytes;
}

/** Bytes of a hex field of the pending submission; STORE_FAILED if the state file was damaged. */
function storedHex(hex: string | undefined, what: string): Uint8Array {
  const bytes = hexBytes(hex);
  if (bytes === undefined) throw new ConsortError("STORE_FAILED", `the pending submission's ${what} is not hex bytes: the state file is damaged`, { details: { field: what } });
  return bytes;
}

/** The values of one owner's inputs, range-checked against their declared types and laid out in program order. */
export function encodeOwnerValues(
  program: Program,
  ownerIndex: number,
  inputs: Readonly<Record<string, readonly (bigint | number | string)[]>> | undefined,
  values: readonly (bigint | number | string)[] | undefined,
): bigint[] {
  const layout = ownerInputLayout(program, ownerIndex);
  if (values !== undefined) {
    if (layout.inputs.length !== 1) {
      throw new ConsortError(
        "BAD_REQUEST",
        `data owner #${ownerIndex} has ${layout.inputs.length} inputs (${layout.inputs.map((i) => i.gate.name).join(", ")}); name each one`,
      );
    }
    inputs = { [layout.inputs[0]!.gate.name]: values };
  }
  const given = inputs ?? {};
  for (const name of Object.keys(given)) {
    if (!layout.inputs.some((i) => i.gate.name === name)) {
      throw new ConsortError("BAD_REQUEST", `the program has no input "${name}" for data owner #${ownerIndex}`);
    }
  }
  const out: bigint[] = [];
  for (const { gate } of layout.inputs) {
    const raw = given[gate.name];
    if (raw === undefined) throw new ConsortError("BAD_REQUEST", `missing values for input "${gate.name}"`);
    out.push(...encodeInputValues(program, gate.name, raw));
  }
  return out;
}

/**
 * A data owner's whole submission: read the committed program from the chain,
 * range-check and Shamir-share the values (BN254 scalar field), commit to the
 * shares on chain (only the commitment goes on chain), then send each party
 * its share sealed to the party's registered encryption key and signed by
 * the owner. Values are checked before anything is shared or sent.
 */
export async function submitInput(options: SubmitInputOptions): Promise<SubmitInputResult> {
  const { registry, signer, taskId } = options;
  const progress = options.onProgress ?? (() => undefined);
  const dataOwner = getAddress(await signer.getAddress());
  const chainId = await registry.chainId();
  const task = await registry.getTask(taskId);
  const ownerIndex = task.dataOwners.findIndex((o) => getAddress(o) === dataOwner);
  if (ownerIndex < 0) {
    throw new ConsortError("NOT_A_DATA_OWNER", `${dataOwner} is not a data owner of task ${taskId}`, { details: { taskId: taskId.toString() } });
  }
  mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
  const file = new PendingSubmissionFile(options.stateDir, chainId, registry.address, taskId, dataOwner);
  const onChain = await committedOnChain(registry, taskId, ownerIndex);
  const saved = file.exists ? file.load() : undefined;
  const asked = options.inputs !== undefined || options.values !== undefined;
  /** The committed program, read from the chain when the values must be encoded. */
  const program = async (): Promise<Program> => {
    const created = await findTaskCreated(registry, taskId, Number(task.createdAtBlock));
    verifyProgramHash(created.program, task.programHash);
    return decodeProgram(created.program);
  };

  let pending: PendingSubmission;
  /** Each party's encoded shares, when this run made them (a resumed run reads them back from the state file). */
  let encodedShares: Uint8Array[] | undefined;
  let commitTx: string | undefined;
  if (onChain !== undefined) {
    if (saved === undefined) {
      throw new ConsortError(
        "DUPLICATE_INPUT",
        `${dataOwner} already committed input ${onChain} to task ${taskId}, and no pending submission is kept in ${options.stateDir} to resume`,
        { details: { taskId: taskId.toString(), commitment: onChain } },
      );
    }
    if (saved.commitment.toLowerCase() !== onChain) throw commitmentConflict(taskId, dataOwner, onChain, saved.commitment, file.path);
    if (asked && !sameValues(saved, encodeOwnerValues(await program(), ownerIndex, options.inputs, options.values), task.threshold)) {
      throw new ConsortError(
        "DUPLICATE_INPUT",
        `${dataOwner} already committed other values to task ${taskId} (commitment ${onChain}); a commitment cannot be changed, so this run only delivers those (give no values to resume)`,
        { details: { taskId: taskId.toString(), commitment: onChain } },
      );
    }
    pending = saved;
    progress({ step: "resume", commitment: onChain });
  } else {
    const state = await registry.taskState(taskId);
    if (state !== "AwaitingInputs") {
      throw new ConsortError("TASK_NOT_ACCEPTING", `task ${taskId} is ${state}; inputs are accepted only while it is AwaitingInputs`, {
        details: { taskId: taskId.toString(), state },
      });
    }
    const committed = await program();
    const values = asked ? encodeOwnerValues(committed, ownerIndex, options.inputs, options.values) : undefined;
    // A reorg may also have handed this task id to another task: shares made for another sharing or layout do not fit.
    const fits = saved !== undefined && fitsTask(saved, task.parties.length, ownerInputLayout(committed, ownerIndex).length);
    if (saved !== undefined && fits && (values === undefined || sameValues(saved, values, task.threshold))) {
      // The chain no longer holds the commitment of the pending submission (a reorg removed it):
      // commit the same shares again, and deliver to every party again (each dropped or will drop
      // what it took against the removed commitment, or answers that it holds it).
      pending = { ...saved, delivered: [] };
      file.create(pending);
      progress({ step: "recommit", commitment: pending.commitment });
    } else {
      if (values === undefined) {
        throw new ConsortError(
          "BAD_REQUEST",
          saved === undefined
            ? `no values given, and no pending submission to task ${taskId} is kept in ${options.stateDir}`
            : `no values given, and the pending submission in ${file.path} was made for another task ${taskId} (the chain replaced it)`,
        );
      }
      const rng = options.rng ?? randomBytes;
      const sharesByParty = splitVector(values, { threshold: task.threshold, parties: task.parties.length }, rng);
      const ctx: InputContext = { chainId, registry: getBytes(registry.address), taskId, dataOwner: getBytes(dataOwner) };
      // Each party's vector is encoded once: committed, kept and sealed as these bytes.
      encodedShares = sharesByParty.map((shares) => encodeFieldVector(shares));
      const committed = commitEncodedInputShares(ctx, encodedShares, rng);
      pending = {
        version: 1,
        chainId: chainId.toString(),
        registry: registry.address,
        taskId: taskId.toString(),
        dataOwner,
        commitment: hexlify(committed.commitment),
        digests: committed.digests.map((d) => hexlify(d)),
        salts: committed.salts.map((s) => hexlify(s)),
        shares: encodedShares.map((bytes) => toHex(bytes)),
        delivered: [],
      };
      // Persist before the transaction: if we crash after it is mined, the shares are not lost.
      file.create(pending);
      progress({ step: "commit", commitment: pending.commitment });
    }
    try {
      const receipt = await registry.commitInput(taskId, pending.commitment);
      commitTx = receipt.hash;
    } catch (error) {
      // Nothing was committed: a new submission is forgotten; the shares of a recommit are kept to try again.
      if (encodedShares !== undefined) file.remove();
      throw error;
    }
  }

  const deliveries: DeliveryOutcome[] = [];
  const failures: string[] = [];
  await Promise.all(
    task.parties.map(async (partyAddress, index) => {
      const party = getAddress(partyAddress);
      if (pending.delivered.includes(party)) {
        deliveries.push({ party, status: "already-held" });
        return;
      }
      try {
        const record = await registry.getParty(party);
        const sealed = sealEncodedSharePayload(getBytes(record.encryptionKey), storedHex(pending.salts[index], "salt"), encodedShares?.[index] ?? storedShares(pending.shares[index]), {
          chainId,
          registry: registry.address,
          taskId,
          dataOwner,
          party,
        });
        const submission = await signShareSubmission(
          {
            version: 1,
            chainId: chainId.toString(),
            registry: registry.address,
            taskId: taskId.toString(),
            dataOwner,
            party,
            digests: pending.digests,
            sealed: toHex(sealed),
          },
          signer as Parameters<typeof signShareSubmission>[1],
        );
        const timeoutMs = options.deliveryTimeoutMs ?? 60_000;
        const started = Date.now();
        const status = await withRetry(
          async () => {
            try {
              await postShareSubmission(record.endpoint, submission, { timeoutMs: 15_000 });
              return "accepted" as const;
            } catch (error) {
              const e = toConsortError(error);
              // The party already holds exactly this share (an earlier response was lost). A different
              // share held is not this submission: never report it as delivered.
              if (e.details.remoteCode === "DUPLICATE_INPUT" && e.details.identical === true) return "already-held" as const;
              throw e;
            }
          },
          {
            attempts: 1_000,
            initialDelayMs: 100,
            maxDelayMs: 2_000,
            isRetryable: (error) => toConsortError(error).retryable && Date.now() - started < timeoutMs,
            onRetry: (error) => progress({ step: "retry", party, reason: toConsortError(error).message }),
          },
        );
        deliveries.push({ party, status });
        pending.delivered.push(party);
        file.markDelivered(party);
        progress({ step: "delivered", party, status });
      } catch (error) {
        failures.push(`${party}: ${toConsortError(error).message}`);
      }
    }),
  );
  if (failures.length > 0) {
    throw new ConsortError(
      "PEER_UNREACHABLE",
      `input committed, but ${failures.length} of ${task.parties.length} parties did not take their share (run the same command again to resume): ${failures.join("; ")}`,
      { retryable: true, details: { pendingFile: file.path } },
    );
  }
  // Success only for a value the chain holds: a reorg during delivery may have removed the commitment.
  const holds = await committedOnChain(registry, taskId, ownerIndex);
  if (holds === undefined) {
    throw new ConsortError(
      "COMMITMENT_NOT_FOUND",
      `the chain no longer holds ${dataOwner}'s commitment ${pending.commitment} to task ${taskId} (a chain reorganisation removed it); run the same command again to commit the same shares again`,
      { retryable: true, details: { taskId: taskId.toString(), commitment: pending.commitment, pendingFile: file.path } },
    );
  }
  if (holds !== pending.commitment.toLowerCase()) throw commitmentConflict(taskId, dataOwner, holds, pending.commitment, file.path);
  file.remove();
  return { taskId, dataOwner, commitment: pending.commitment, commitTx, deliveries };
}

/** The owner's commitment the chain holds now (lowercase hex), undefined when none. */
async function committedOnChain(registry: RegistryClient, taskId: bigint, ownerIndex: number): Promise<string | undefined> {
  const commitment = (await registry.inputCommitments(taskId))[ownerIndex];
  return commitment === undefined || /^0x0+$/.test(commitment) ? undefined : commitment.toLowerCase();
}

function commitmentConflict(taskId: bigint, dataOwner: string, onChain: string, pending: string, pendingFile: string): ConsortError {
  return new ConsortError(
    "COMMITMENT_CONFLICT",
    `the chain holds commitment ${onChain} for ${dataOwner} in task ${taskId}, not ${pending} of the pending submission ${pendingFile}; that input was committed elsewhere and cannot be changed`,
    { details: { taskId: taskId.toString(), onChain, pending, pendingFile } },
  );
}

/** Whether the pending submission shares `length` values among `parties` parties (what the task on chain now takes). */
function fitsTask(pending: PendingSubmission, parties: number, length: number): boolean {
  return pending.shares.length === parties && pending.shares.every((hex) => decodeFieldVector(storedShares(hex)).length === length);
}

/** Whether the pending submission's shares are of exactly these (encoded) values: reconstructed from t + 1 of them. */
function sameValues(pending: PendingSubmission, values: readonly bigint[], threshold: number): boolean {
  const shares = pending.shares.map((hex) => decodeFieldVector(storedShares(hex)));
  const secret = reconstructVector(shares.slice(0, threshold + 1), threshold, shares.length);
  return secret.length === values.length && secret.every((v, i) => v === values[i]);
}
