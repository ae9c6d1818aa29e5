import { appendFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getAddress, isAddress } from "ethers";
import { ConsortError } from "../errors.ts";

/** What a data owner keeps between its on-chain commitment and the last delivery (the shares and salts are secret). */
export interface PendingSubmission {
  version: 1;
  chainId: string;
  registry: string;
  taskId: string;
  dataOwner: string;
  commitment: string;
  digests: string[];
  salts: string[];
  /** encodeFieldVector per party, hex. */
  shares: string[];
  /** Parties that took their share (checksummed). */
  delivered: string[];
}

/**
 * A pending submission on disk: the shares in one JSON file, written once
 * (to a temporary name, then renamed, so a crash leaves the old file or the
 * new one), and the deliveries as an append-only list beside it, one address
 * per line. A share file of 100,000 values per party is ~19 MB of JSON: it
 * used to be rewritten after every delivery to add one address (~0.2 s a
 * write here, four per submission). A line cut short by a crash is not an
 * address and is ignored, so that party is simply asked again (it answers
 * that it already holds the share).
 */
export class PendingSubmissionFile {
  readonly path: string;
  readonly #deliveredPath: string;

  constructor(stateDir: string, chainId: bigint, registry: string, taskId: bigint, owner: string) {
    this.path = join(stateDir, `pending-input-${chainId}-${registry.toLowerCase()}-${taskId}-${owner.toLowerCase()}.json`);
    this.#deliveredPath = `${this.path}.delivered`;
  }

  get exists(): boolean {
    return existsSync(this.path);
  }

  /** Writes the submission (its `delivered` as given) and starts an empty delivery list. */
  create(pending: PendingSubmission): void {
    rmSync(this.#deliveredPath, { force: true });
    writeFileSync(`${this.path}.tmp`, JSON.stringify(pending), { mode: 0o600 });
    renameSync(`${this.path}.tmp`, this.path);
  }

  /** The submission, with every party recorded as delivered in either file; STORE_FAILED if it is damaged. */
  load(): PendingSubmission {
    let pending: PendingSubmission;
    try {
      pending = JSON.parse(readFileSync(this.path, "utf8")) as PendingSubmission;
    } catch (cause) {
      throw new ConsortError("STORE_FAILED", `the pending submission ${this.path} cannot be read: the state file is damaged`, { cause });
    }
    if (pending === null || typeof pending !== "object" || !Array.isArray(pending.delivered)) {
      throw new ConsortError("STORE_FAILED", `the pending submission ${this.path} is not a submission: the state file is damaged`);
    }
    const delivered = new Set(pending.delivered);
    if (existsSync(this.#deliveredPath)) {
      for (const line of readFileSync(this.#deliveredPath, "utf8").split("\n")) {
        if (isAddress(line)) delivered.add(getAddress(line));
      }
    }
    pending.delivered = [...delivered];
    return pending;
  }

  /** Records that `party` took its share (one appended line). */
  markDelivered(party: string): void {
    appendFileSync(this.#deliveredPath, `${getAddress(party)}\n`, { mode: 0o600 });
  }

  /** Removes both files (the submission is complete, or its commitment failed). */
  remove(): void {
    rmSync(this.path, { force: true });
    rmSync(this.#deliveredPath, { force: true });
  }
}
