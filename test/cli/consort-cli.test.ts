import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { JsonRpcProvider, SigningKey, keccak256, toUtf8Bytes } from "ethers";
import { network } from "hardhat";
import { deployRegistry } from "../../node/chain/deployments.ts";
import { RegistryClient } from "../../node/chain/registry-client.ts";
import { connectProvider } from "../../node/chain/rpc-provider.ts";
import { PROJECT_ROOT, devWallet, freePort } from "../../node/dev/local-cluster.ts";

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

  it("bad input names what was wrong, before any network call, instead of a wrong code or a misleading message", async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const create = ["task", "create", "--standard", "total-and-mean", "--parties", "0x0000000000000000000000000000000000000001", "--rpc", down];
    const noOwners = await consort([...create, "--data-owners", ",", "--threshold", "1"]);
    expect(noOwners.code).to.equal(1);
    expect(noOwners.stderr).to.match(/^consort: BAD_REQUEST: --data-owners: give at least one address/);
    const owner = ["--data-owners", "0x0000000000000000000000000000000000000002"];
    const threshold = await consort([...create, ...owner, "--threshold", "one"]);
    expect(threshold.code).to.equal(1);
    expect(threshold.stderr).to.match(/^consort: BAD_REQUEST: --threshold must be a positive whole number/);
    const window = await consort([...create, ...owner, "--threshold", "1", "--input-window", "0"]);
    expect(window.stderr).to.match(/^consort: BAD_REQUEST: --input-window must be a positive whole number/);
    const timeout = await consort(["input", "submit", "--task", "1", "--value", "5", "--timeout", "soon", "--rpc", down]);
    expect(timeout.stderr).to.match(/^consort: BAD_REQUEST: --timeout must be a positive whole number/);

    const huge = await consort(["task", "status", "--task", "9".repeat(78), "--rpc", down]);
    expect(huge.code).to.equal(1);
    expect(huge.stderr).to.match(/^consort: BAD_REQUEST: task id must be at most 2\^256 - 1, got a 78-digit number/);

    const unwritable = await consort(["program", "build", "--standard", "total-and-mean", "--owners", "3", "--out", join(dir, "missing", "p.json")]);
    expect(unwritable.code).to.equal(1);
    expect(unwritable.stderr).to.match(/^consort: BAD_REQUEST: cannot write --out .*p\.json \(ENOENT\)\n$/);

    const noRpc = await consort(["task", "status", "--task", "1", "--rpc", ""]);
    expect(noRpc.stderr).to.match(/^consort: CONFIG_INVALID: no RPC URL was given/);
    const badRpc = await consort(["task", "status", "--task", "1", "--rpc", "localhost8545"]);
    expect(badRpc.stderr).to.match(/^consort: CONFIG_INVALID: the RPC URL .* is not a URL/);
    const keyed = await consort(["task", "status", "--task", "1", "--rpc", `${down}/v3/secret-key-123`]);
    expect(keyed.code).to.equal(75);
    expect(keyed.stderr).to.include(`${down}/[redacted]`);
    expect(keyed.stderr).to.not.include("secret-key-123");
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

  describe("task expire, against the registry on a JSON-RPC chain", () => {
    let server: Awaited<ReturnType<typeof network.createServer>>;
    let url: string;
    let provider: JsonRpcProvider;
    let registry: RegistryClient;
    const owners = [devWallet(4), devWallet(5)];
    const requesterKey = devWallet(6).privateKey;

    /** The task with parties 1-3 and owners 4-5, deadlines `inputIn` and `inputIn + 100` seconds after the chain's time. */
    async function createTask(inputIn: number): Promise<bigint> {
      const now = BigInt((await provider.getBlock("latest"))!.timestamp);
      const { taskId } = await registry.connectRunner(devWallet(6).connect(provider)).createTask({
        program: toUtf8Bytes("opaque program"),
        parties: [1, 2, 3].map((i) => devWallet(i).address),
        dataOwners: owners.map((o) => o.address),
        threshold: 1,
        inputDeadline: now + BigInt(inputIn),
        resultDeadline: now + BigInt(inputIn) + 100n,
      });
      return taskId;
    }

    const expire = (task: string, key = requesterKey) =>
      consort(["task", "expire", "--task", task, "--rpc", url, "--registry", registry.address], { CONSORT_PRIVATE_KEY: key });

    before(async () => {
      server = await network.createServer(undefined, "127.0.0.1");
      const { address, port } = await server.listen();
      url = `http://${address}:${port}`;
      provider = await connectProvider(url, { pollingIntervalMs: 50 });
      const record = await deployRegistry(devWallet(0).connect(provider));
      registry = await RegistryClient.connect(provider, record.registry);
      for (const i of [1, 2, 3]) {
        const key = new SigningKey(keccak256(toUtf8Bytes(`cli-party-${i}`))).compressedPublicKey;
        await registry.connectRunner(devWallet(i).connect(provider)).registerParty(key, `http://127.0.0.1:${7000 + i}`);
      }
    });
    after(async () => {
      provider.destroy();
      await server.close();
    });

    it("refuses an open task with TASK_NOT_EXPIRED naming when it can be expired, then expires it once the deadline has passed", async () => {
      const taskId = await createTask(1_000);
      const task = await registry.getTask(taskId);
      const early = await expire(taskId.toString());
      expect(early.code).to.equal(1);
      expect(early.stderr.trim().split("\n")).to.have.length(1);
      expect(early.stderr).to.match(/^consort: TASK_NOT_EXPIRED: task \d+ is AwaitingInputs \(0 of 2 inputs committed\)/);
      expect(early.stderr).to.include(`from ${new Date(Number(task.inputDeadline + 1n) * 1000).toISOString()}`);
      expect(await registry.taskState(taskId)).to.equal("AwaitingInputs");

      const status = (args: string[] = []) =>
        consort(["task", "status", "--task", taskId.toString(), "--rpc", url, "--registry", registry.address, ...args]);
      const open = await status(["--json"]);
      expect(JSON.parse(open.stdout)).to.include({ state: "AwaitingInputs", expiredAtBlock: null, expirableFrom: new Date(Number(task.inputDeadline + 1n) * 1000).toISOString() });

      await provider.send("evm_increaseTime", [1_001]);
      await provider.send("evm_mine", []);
      expect((await status()).stdout).to.include(`not recorded on chain yet: run \`consort task expire --task ${taskId}\``);
      const done = await expire(taskId.toString());
      expect(done.code, done.stderr).to.equal(0);
      expect(done.stdout).to.match(new RegExp(`^expired task ${taskId} \\(missed its input deadline; 0 of 2 inputs committed\\) in tx 0x[0-9a-f]{64}, block \\d+`));
      const expired = await registry.getTask(taskId);
      expect(expired.expiredAtBlock).to.not.equal(0n);
      expect(await registry.taskState(taskId)).to.equal("Expired");

      expect((await status()).stdout).to.include(`expiry    recorded in block ${expired.expiredAtBlock}`);
      const again = await expire(taskId.toString(), devWallet(7).privateKey);
      expect(again.code).to.equal(1);
      expect(again.stderr).to.match(new RegExp(`^consort: TASK_ALREADY_EXPIRED: task ${taskId}'s expiry is already recorded, in block ${expired.expiredAtBlock}`));
    });

    it("names an unknown task and a bad task id in one line each", async () => {
      const unknown = await expire("424242");
      expect(unknown.code).to.equal(1);
      expect(unknown.stderr).to.match(/^consort: UNKNOWN_TASK: registry 0x[0-9a-fA-F]{40} has no task 424242\n$/);
      const chainArgs = ["--task", "424242", "--rpc", url, "--registry", registry.address];
      for (const command of [["task", "program", "--out", join(dir, "p.json")], ["task", "result"], ["input", "submit", "--value", "1", "--state-dir", dir]]) {
        const r = await consort([...command, ...chainArgs], { CONSORT_PRIVATE_KEY: owners[0]!.privateKey });
        expect(r.code, command.join(" ")).to.equal(1);
        expect(r.stderr, command.join(" ")).to.match(/^consort: UNKNOWN_TASK: .*424242/);
      }
      const bad = await expire("-1");
      expect(bad.code).to.equal(1);
      expect(bad.stderr).to.match(/^consort: BAD_REQUEST: task id must be a positive whole number/);
    });

    it("task status and audit show a deadline beyond what a date can hold instead of failing", async () => {
      const now = BigInt((await provider.getBlock("latest"))!.timestamp);
      const { taskId } = await registry.connectRunner(devWallet(6).connect(provider)).createTask({
        program: toUtf8Bytes("opaque program"),
        parties: [1, 2, 3].map((i) => devWallet(i).address),
        dataOwners: owners.map((o) => o.address),
        threshold: 1,
        inputDeadline: now + 1_000n,
        resultDeadline: 2n ** 64n - 1n,
      });
      const status = await consort(["task", "status", "--task", taskId.toString(), "--rpc", url, "--registry", registry.address]);
      expect(status.code, status.stderr).to.equal(0);
      expect(status.stdout).to.include(`result ${2n ** 64n - 1n} (unix seconds)`);
      const audit = await consort(["audit", "--task", taskId.toString(), "--rpc", url, "--registry", registry.address]);
      expect(audit.stderr).to.equal("");
      expect(audit.stdout).to.include(`${2n ** 64n - 1n} (unix seconds)`);
    });
  });
});
