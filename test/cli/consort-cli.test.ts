import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { keccak256 } from "ethers";
import { PROJECT_ROOT, freePort } from "../../node/dev/local-cluster.ts";

const run = promisify(execFile);

async function consort(args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(PROJECT_ROOT, "node/cli/consort.ts"), ...args], {
      env: { ...process.env, CONSORT_PRIVATE_KEY: "", CONSORT_RPC_URL: "", ...env },
    });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const e = error as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

describe("cli/consort command line", function () {
  this.timeout(60_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "consort-cli-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("--help lists every command group and exits 0", async () => {
    const r = await consort(["--help"]);
    expect(r.code).to.equal(0);
    for (const group of ["node", "party", "program", "task", "input", "audit"]) expect(r.stdout).to.match(new RegExp(`\\n  ${group}\\b`));
    const sub = await consort(["input", "submit", "--help"]);
    expect(sub.code).to.equal(0);
    expect(sub.stdout).to.include("--task <id>");
  });

  it("an RPC that is down is one line naming it, with the retryable exit code 75", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await consort(["task", "status", "--task", "1", "--rpc", url]);
    expect(r.code).to.equal(75);
    expect(r.stderr.trim().split("\n")).to.have.length(1);
    expect(r.stderr).to.match(/^consort: RPC_UNAVAILABLE: .*127\.0\.0\.1/);
  });

  it("bad arguments are one line with the code, exit 1", async () => {
    const r = await consort(["task", "status", "--task", "abc"]);
    expect(r.code).to.equal(1);
    expect(r.stderr.trim()).to.match(/^consort: BAD_REQUEST: task id must be a positive whole number/);
    const unknown = await consort(["bogus"]);
    expect(unknown.code).to.not.equal(0);
    expect(unknown.stderr).to.include("unknown command 'bogus'");
    const missing = await consort(["task", "create", "--standard", "total-and-mean", "--parties", "0x1", "--data-owners", "0x2", "--threshold", "1"]);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.match(/^consort: BAD_REQUEST: --parties: "0x1" is not an address/);
  });

  it("node start with an invalid config names the field and never echoes the key", async () => {
    const secret = "0x" + "ab".repeat(32);
    const file = join(dir, "bad-config.json");
    writeFileSync(file, JSON.stringify({ rpcUrl: "not a url", dataDir: "d", port: 70_000 }));
    const r = await consort(["node", "start", "--config", file], { CONSORT_PRIVATE_KEY: secret });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^consort: CONFIG_INVALID: .*rpcUrl/);
    expect(r.stderr).to.include("port");
    expect(r.stderr + r.stdout).to.not.include("ab".repeat(32));
  });

  it("builds every standard program from the command line, and names a bad parameter", async () => {
    const required: Record<string, string[]> = {
      "dot-product": ["--param", "length=4"],
      "portfolio-return": ["--param", "assets=3"],
      histogram: ["--param", "boundaries=0;100"],
      "count-above": ["--param", "threshold=50"],
      "set-intersection": ["--param", "ids-per-owner=4"],
      "linear-regression": ["--param", "points-per-owner=5"],
    };
    const list = await consort(["program", "list"]);
    const names = list.stdout.trim().split("\n").map((l) => l.split(/\s+/)[0]!);
    expect(names).to.include.members(["total-and-mean", "variance-and-stddev", "second-price-auction", "linear-regression"]);
    for (const name of names) {
      const owners = name === "dot-product" ? "2" : "3";
      const out = join(dir, `${name}.json`);
      const r = await consort(["program", "build", "--standard", name, "--owners", owners, ...(required[name] ?? []), "--out", out]);
      expect(r.code, `${name}: ${r.stderr}`).to.equal(0);
      const shown = await consort(["program", "show", out]);
      expect(shown.stdout, name).to.match(/\n  input   (values|holdings|x)-0: /);
      expect(shown.stdout, name).to.include(`program ${name === "set-intersection" ? "set-intersection-cardinality" : name}`);
    }
    const bad = await consort(["program", "build", "--standard", "histogram", "--owners", "3", "--param", "colour=blue", "--out", join(dir, "x.json")]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/^consort: BAD_REQUEST: unknown parameter "colour"/);
  });

  it("program build, hash and show agree on the committed bytes", async () => {
    const out = join(dir, "program.json");
    const built = await consort(["program", "build", "--standard", "total-and-mean", "--owners", "3", "--out", out]);
    expect(built.code, built.stderr).to.equal(0);
    const expected = keccak256(readFileSync(out));
    expect(built.stdout).to.include(expected);
    const hash = await consort(["program", "hash", out]);
    expect(hash.stdout.trim()).to.equal(expected);
    const show = await consort(["program", "show", out]);
    expect(show.stdout).to.include("input   values-0: 1 x int(64) from data owner #0");
    expect(show.stdout).to.include("output  total");
    writeFileSync(join(dir, "tampered.json"), readFileSync(out, "utf8").replace("total", "tota1"));
    const tampered = await consort(["program", "show", join(dir, "tampered.json")]);
    expect(tampered.code).to.equal(1);
    expect(tampered.stderr).to.match(/^consort: PROGRAM_INVALID: /);
  });
});
