import { getAddress, getBytes, hexlify, type Signer } from "ethers";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import type { RegistryClient } from "../chain/registry-client.ts";
import { findTaskCreated, findTaskFinalized } from "../chain/task-events.ts";
import { ConsortError, toConsortError } from "../errors.ts";
import { decodeProgram } from "../program/program-encoding.ts";
import { decodeResult } from "../program/result-encoding.ts";
import { reconstructRequesterOutput, type RequesterOutputShare } from "../protocol/requester-output.ts";
import { decodeRequesterShare } from "../transport/requester-share-codec.ts";
import { postJson, withRetry } from "../transport/http-client.ts";
import { openOutputResponse, signOutputRequest, type UnsignedOutputRequest } from "../transport/output-request.ts";

export interface RequesterOutputs {
  readonly taskId: bigint;
  /** Rendered value of every requester-only output, by name. */
  readonly outputs: Readonly<Record<string, string | readonly string[]>>;
  /** Parties that answered. */
  readonly parties: readonly string[];
}

/**
 * The requester's client: after the task is finalized, asks every party for
 * its shares of the requester-only outputs (a signed request naming a fresh
 * ephemeral key), opens the answers, checks every share against the
 * commitment the quorum signed on chain, and reconstructs. Needs t + 1
 * answers; with more, inconsistent shares are detected.
 */
export async function collectRequesterOutputs(registry: RegistryClient, signer: Signer, taskId: bigint): Promise<RequesterOutputs> {
  const requester = getAddress(await signer.getAddress());
  const task = await registry.getTask(taskId);
  if (getAddress(task.requester) !== requester) {
    throw new ConsortError("NOT_REQUESTER", `${requester} is not the requester of task ${taskId} (${getAddress(task.requester)} is)`);
  }
  const finalized = await findTaskFinalized(registry, taskId, Number(task.createdAtBlock));
  if (finalized === undefined) throw new ConsortError("TASK_NOT_ACCEPTING", `task ${taskId} is not finalized yet`, { retryable: true });
  const program = decodeProgram((await findTaskCreated(registry, taskId, Number(task.createdAtBlock))).program);
  const result = decodeResult(program, finalized.result);
  const names = program.outputs.filter((o) => o.reveal === "requester").map((o) => o.name);
  if (names.length === 0) return { taskId, outputs: {}, parties: [] };
  const chainId = await registry.chainId();
  const ephemeralPrivate = secp256k1.utils.randomSecretKey();
  const unsigned: UnsignedOutputRequest = {
    version: 1,
    chainId: chainId.toString(),
    registry: registry.address,
    taskId: taskId.toString(),
    requester,
    ephemeralKey: hexlify(secp256k1.getPublicKey(ephemeralPrivate, true)),
    issuedAt: Math.floor(Date.now() / 1000),
  };
  const request = await signOutputRequest(unsigned, signer as Parameters<typeof signOutputRequest>[1]);
  const byParty: (Map<string, RequesterOutputShare> | undefined)[] = [];
  const answered: string[] = [];
  const failures: string[] = [];
  await Promise.all(
    task.parties.map(async (partyAddress, index) => {
      try {
        const party = await registry.getParty(partyAddress);
        // A party releases outputs once it has applied the finalization at its confirmation depth, which may
        // be a few blocks after the requester saw it: it answers retryably until then.
        const answer = (await withRetry(() => postJson(party.endpoint, `/v1/tasks/${taskId}/outputs`, request, { timeoutMs: 15_000 }), {
          attempts: 12,
          initialDelayMs: 250,
          maxDelayMs: 4_000,
        })) as { sealed?: unknown };
        if (typeof answer.sealed !== "string") throw new ConsortError("PROTOCOL_INVALID_MESSAGE", "the answer has no sealed field");
        const opened = openOutputResponse(unsigned, getAddress(partyAddress), ephemeralPrivate, getBytes(answer.sealed));
        const shares = (JSON.parse(new TextDecoder().decode(opened)) as string[]).map((s) => decodeRequesterShare(getBytes(s)));
        byParty[index] = new Map(shares.map((s) => [s.output, s]));
        answered.push(getAddress(partyAddress));
      } catch (error) {
        failures.push(`${getAddress(partyAddress)}: ${toConsortError(error).message}`);
      }
    }),
  );
  if (answered.length < task.threshold + 1) {
    throw new ConsortError(
      "PEER_UNREACHABLE",
      `only ${answered.length} of the ${task.threshold + 1} parties needed answered: ${failures.join("; ")}`,
      { retryable: true },
    );
  }
  const outputs: Record<string, string | readonly string[]> = {};
  for (const name of names) {
    const commitment = result.outputs[name];
    if (typeof commitment !== "string") throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `the on-chain result has no commitment for ${name}`);
    const shares = task.parties.map((_, j) => byParty[j]?.get(name));
    outputs[name] = reconstructRequesterOutput(program, name, shares, { threshold: task.threshold, commitment }).rendered;
  }
  return { taskId, outputs, parties: answered };
}
