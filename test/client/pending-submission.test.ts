import { expect } from "chai";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Wallet } from "ethers";
import { isConsortError } from "../../node/errors.ts";
import { PendingSubmissionFile, type PendingSubmission } from "../../node/client/pending-submission.ts";

const parties = [0, 1, 2].map((i) => new Wallet(`0x${String(i + 1).padStart(64, "0")}`).address);
const REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const OWNER = new Wallet(`0x${"7".repeat(64)}`).address;

function submission(): PendingSubmission {
  return {
    version: 1,
    chainId: "31337",
    registry: REGISTRY,
    taskId: "4",
    dataOwner: OWNER,
    commitment: `0x${"ab".repeat(32)}`,
    digests: parties.map((_, i) => `0x${String(i).repeat(64)}`),
    salts: parties.map((_, i) => `0x${String(i + 3).repeat(64)}`),
    shares: parties.map(() => "00".repeat(64)),
    delivered: [],
  };
}

describe("cli/pending-submission", () => {
  let dir: string;
  let file: PendingSubmissionFile;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "consort-pending-"));
    file = new PendingSubmissionFile(dir, 31337n, REGISTRY, 4n, OWNER);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("writes the submission once, readable only by its owner, and reads it back", () => {
    expect(file.exists).to.equal(false);
    file.create(submission());
    expect(file.exists).to.equal(true);
    expect(statSync(file.path).mode & 0o777).to.equal(0o600);
    expect(file.load()).to.deep.equal(submission());
  });

  it("records deliveries by appending, without rewriting the shares", () => {
    file.create(submission());
    const written = readFileSync(file.path, "utf8");
    file.markDelivered(parties[2]!.toLowerCase());
    file.markDelivered(parties[0]!);
    file.markDelivered(parties[0]!);
    expect(readFileSync(file.path, "utf8")).to.equal(written);
    expect(file.load().delivered).to.deep.equal([parties[2], parties[0]]);
  });

  it("ignores a delivery line cut short by a crash (that party is asked again)", () => {
    file.create(submission());
    file.markDelivered(parties[1]!);
    appendFileSync(`${file.path}.delivered`, parties[2]!.slice(0, 20));
    expect(file.load().delivered).to.deep.equal([parties[1]]);
  });

  it("honours deliveries recorded inside the file by earlier versions", () => {
    writeFileSync(file.path, JSON.stringify({ ...submission(), delivered: [parties[0]] }));
    file.markDelivered(parties[1]!);
    expect(file.load().delivered).to.deep.equal([parties[0], parties[1]]);
  });

  it("starts a new delivery list with a new submission, and removes both files", () => {
    file.create(submission());
    file.markDelivered(parties[0]!);
    file.create(submission());
    expect(file.load().delivered).to.deep.equal([]);
    file.markDelivered(parties[1]!);
    file.remove();
    expect(file.exists).to.equal(false);
    expect(existsSync(`${file.path}.delivered`)).to.equal(false);
  });

  it("says STORE_FAILED for a damaged state file", () => {
    writeFileSync(file.path, '{"version":1,');
    expect(() => file.load()).to.throw().that.satisfies((e: unknown) => isConsortError(e, "STORE_FAILED"));
    writeFileSync(file.path, "null");
    expect(() => file.load()).to.throw().that.satisfies((e: unknown) => isConsortError(e, "STORE_FAILED"));
  });
});
