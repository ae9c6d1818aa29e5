#!/usr/bin/env node
import { readFileSync, realpathSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { getAddress } from "ethers";
import { chainTimeText, taskExpiry } from "../chain/registry-client.ts";
import { findProgramByHash, findTaskCreated } from "../chain/task-events.ts";
import { auditTask, formatAuditReport } from "../chain/task-audit.ts";
import { ConsortError, toConsortError } from "../errors.ts";
import { decodeProgram, encodeProgram, programHash } from "../program/program-encoding.ts";
import { programInputs, type Program } from "../program/program.ts";
import { describeType } from "../program/secret-types.ts";
import { getBytes, getJson } from "../transport/http-client.ts";
import { chainNow } from "../chain/rpc-provider.ts";
import { connectClient, type ConnectionOptions } from "../client/client-connection.ts";
import { ConsortNode, survivePendingRejections } from "../daemon/consort-node.ts";
import { submitInput } from "../client/data-owner-client.ts";
import { STANDARD_PROGRAMS, STANDARD_PROGRAM_NOTES, buildStandardProgram, parseParams } from "./standard-program-options.ts";
import { collectRequesterOutputs } from "../client/requester-outputs.ts";
import { createLogger } from "../logger.ts";
import { loadNodeConfigFile } from "../daemon/node-config.ts";
import { loadOrCreateEncryptionKey } from "../daemon/node-keys.ts";
import { registerNodeParty } from "../daemon/register-node-party.ts";

const print = (line: string) => process.stdout.write(`${line}\n`);
const json = (value: unknown) => print(JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2));

function connectionOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--rpc <url>", "JSON-RPC URL of the chain").env("CONSORT_RPC_URL").default("http://127.0.0.1:8545"))
    .addOption(new Option("--registry <address>", "registry address (default: the deployment recorded for the chain)").env("CONSORT_REGISTRY"))
    .addOption(new Option("--deployments-dir <dir>", "where deployments are recorded per chain id").env("CONSORT_DEPLOYMENTS_DIR"));
}

function withKey(cmd: Command): Command {
  return cmd.addOption(
    new Option("--key-file <file>", "file holding the hex private key that signs (default: the CONSORT_PRIVATE_KEY environment variable)").env(
      "CONSORT_KEY_FILE",
    ),
  );
}

function conn(opts: Record<string, unknown>): ConnectionOptions {
  return {
    rpc: String(opts.rpc),
    registry: opts.registry as string | undefined,
    deploymentsDir: opts.deploymentsDir as string | undefined,
    keyFile: opts.keyFile as string | undefined,
  };
}

const MAX_UINT256 = (1n << 256n) - 1n;

function parseTaskId(value: string): bigint {
  if (!/^[0-9]+$/.test(value) || BigInt(value) === 0n) {
    throw new ConsortError("BAD_REQUEST", `task id must be a positive whole number, got "${value}"`);
  }
  // Task ids are uint256 on chain; a larger one would fail deep in the ABI encoder.
  if (BigInt(value) > MAX_UINT256) throw new ConsortError("BAD_REQUEST", `task id must be at most 2^256 - 1, got a ${value.length}-digit number`);
  return BigInt(value);
}

function parseAddressList(value: string, what: string): string[] {
  const items = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) throw new ConsortError("BAD_REQUEST", `${what}: give at least one address (comma-separated)`);
  return items.map((item) => {
    try {
      return getAddress(item);
    } catch {
      throw new ConsortError("BAD_REQUEST", `${what}: "${item}" is not an address`);
    }
  });
}

function parsePositiveInt(value: string, what: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
    throw new ConsortError("BAD_REQUEST", `${what} must be a positive whole number, got "${value}"`);
  }
  return Number(value);
}

/** Writes a command's output file; a path that cannot be written is the caller's input, not an internal fault. */
function writeOutputFile(file: string, bytes: Uint8Array, option: string): void {
  try {
    writeFileSync(file, bytes);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new ConsortError("BAD_REQUEST", `cannot write ${option} ${file}${code === undefined ? "" : ` (${code})`}`, { cause, details: { file } });
  }
}

function readProgramFile(file: string): { bytes: Uint8Array; program: Program } {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (cause) {
    throw new ConsortError("PROGRAM_INVALID", `cannot read program file ${file}`, { cause });
  }
  return { bytes, program: decodeProgram(bytes) };
}

function describeProgram(program: Program, bytes: Uint8Array): string[] {
  const lines = [`program ${program.name}`, `  hash    ${programHash(bytes)}`, `  bytes   ${bytes.length}`];
  for (const g of programInputs(program)) lines.push(`  input   ${g.name}: ${g.length} x ${describeType(g.type)} from data owner #${g.owner}`);
  for (const o of program.outputs) lines.push(`  output  ${o.name} (opened to ${o.reveal})`);
  for (const d of program.derived) lines.push(`  derived ${d.name} = ${d.numerator} / ${d.denominator} (${d.decimals} decimals)`);
  lines.push(`  gates   ${program.gates.length}`);
  return lines;
}

export function buildCli(): Command {
  const cli = new Command("consort")
    .description("Consort: secure multi-party computation anchored on an EVM registry")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ outputError: (str, write) => write(str) })
    .exitOverride();

  // ------------------------------------------------------------------- node
  const node = cli.command("node").description("run and prepare a compute party's node");
  node
    .command("start")
    .description("start a node: watch the registry, take shares, compute, attest and finalize")
    .requiredOption("--config <file>", "node config (JSON)")
    .option("--port <port>", "override the config's port")
    .option("--rpc <url>", "override the config's rpcUrl")
    .action(async (opts: { config: string; port?: string; rpc?: string }) => {
      const { config, secrets } = loadNodeConfigFile(resolve(opts.config), {
        ...(opts.port === undefined ? {} : { port: parsePositiveInt(opts.port, "--port") }),
        ...(opts.rpc === undefined ? {} : { rpcUrl: opts.rpc }),
      });
      const logger = createLogger(config.logLevel, { party: secrets.wallet.address });
      survivePendingRejections(logger);
      const running = await ConsortNode.start({ config, secrets, logger });
      await new Promise<void>((resolveStop) => {
        const shutdown = (signal: string) => {
          logger.info({ signal }, "shutting down");
          void running.stop().finally(resolveStop);
        };
        process.once("SIGINT", () => shutdown("SIGINT"));
        process.once("SIGTERM", () => shutdown("SIGTERM"));
      });
    });
  node
    .command("init")
    .description("create the node's encryption key in its data directory (if missing) and print the public key")
    .requiredOption("--data-dir <dir>", "the node's data directory")
    .action((opts: { dataDir: string }) => {
      const key = loadOrCreateEncryptionKey(resolve(opts.dataDir));
      print(`${key.created ? "created" : "existing"} encryption key in ${resolve(opts.dataDir)}`);
      print(`public key 0x${Buffer.from(key.publicKey).toString("hex")}`);
    });

  // ------------------------------------------------------------------ party
  const party = cli.command("party").description("register a compute party on the registry");
  withKey(connectionOptions(party.command("register")))
    .description("register (or update) this key as a party, with the node's encryption key and endpoint")
    .requiredOption("--data-dir <dir>", "the node's data directory (holds its encryption key)")
    .requiredOption("--endpoint <url>", "base URL where peers and data owners reach the node")
    .action(async (opts: Record<string, unknown>) => {
      const c = await connectClient(conn(opts), true);
      try {
        const r = await registerNodeParty(c.registry, c.wallet!.address, resolve(String(opts.dataDir)), String(opts.endpoint));
        print(`${r.outcome}: party ${r.party} at ${r.endpoint} (encryption key ${r.encryptionKey})${r.txHash === undefined ? "" : ` in tx ${r.txHash}`}`);
      } finally {
        c.close();
      }
    });

  // ---------------------------------------------------------------- program
  const prog = cli.command("program").description("build and inspect committed programs");
  prog
    .command("hash <file>")
    .description("print the program hash (keccak256 of the canonical program bytes) that a task commits to")
    .action((file: string) => {
      print(programHash(readProgramFile(file).bytes));
    });
  connectionOptions(prog.command("show <file-or-hash>"))
    .description("show what a program file, or a program hash, commits to (a hash is looked up on chain, or with --node on a node)")
    .option("--node <url>", "fetch the program from this node instead of the chain")
    .action(async (target: string, opts: Record<string, unknown>) => {
      let bytes: Uint8Array;
      if (/^0x[0-9a-fA-F]{64}$/.test(target)) {
        bytes = await fetchProgram(target, opts);
        if (programHash(bytes) !== target.toLowerCase()) {
          throw new ConsortError("PROGRAM_HASH_MISMATCH", `the bytes served for ${target} hash to ${programHash(bytes)}`);
        }
      } else {
        bytes = readProgramFile(target).bytes;
      }
      describeProgram(decodeProgram(bytes), bytes).forEach(print);
    });
  prog
    .command("build")
    .description("write a standard program's canonical bytes to a file")
    .requiredOption("--standard <name>", `standard program: ${Object.keys(STANDARD_PROGRAMS).join(", ")}`)
    .requiredOption("--owners <n>", "number of data owners")
    .option("--param <key=value...>", "program parameters (see `consort program list`)")
    .requiredOption("--out <file>", "where to write the program")
    .action((opts: { standard: string; owners: string; param?: string[]; out: string }) => {
      const program = buildStandardProgram(opts.standard, parsePositiveInt(opts.owners, "--owners"), parseParams(opts.param));
      const bytes = encodeProgram(program);
      writeOutputFile(opts.out, bytes, "--out");
      print(`wrote ${opts.out}: ${programHash(bytes)}`);
    });
  prog
    .command("list")
    .description("list the standard programs and their parameters")
    .action(() => {
      for (const [name, params] of Object.entries(STANDARD_PROGRAMS)) {
        const note = STANDARD_PROGRAM_NOTES[name];
        print(`${name.padEnd(22)} ${params}${note === undefined ? "" : `  (${note})`}`);
      }
    });

  // ------------------------------------------------------------------- task
  const task = cli.command("task").description("create tasks and follow them");
  withKey(connectionOptions(task.command("create")))
    .description("create a task: a committed program, its parties, data owners, threshold and deadlines")
    .option("--program <file>", "canonical program file (see `consort program build`)")
    .option("--standard <name>", "or a standard program (see `consort program list`)")
    .option("--param <key=value...>", "with --standard: its parameters")
    .requiredOption("--parties <addresses>", "comma-separated party addresses, in share order")
    .requiredOption("--data-owners <addresses>", "comma-separated data owner addresses, in program order")
    .requiredOption("--threshold <t>", "Shamir threshold t (2t+1 <= parties)")
    .option("--input-window <seconds>", "seconds from now until the input deadline", "3600")
    .option("--result-window <seconds>", "seconds from the input deadline until the result deadline", "3600")
    .action(async (opts: Record<string, string | undefined>) => {
      const parties = parseAddressList(String(opts.parties), "--parties");
      const dataOwners = parseAddressList(String(opts.dataOwners), "--data-owners");
      let bytes: Uint8Array;
      if (opts.program !== undefined) bytes = readProgramFile(opts.program).bytes;
      else if (opts.standard !== undefined) bytes = encodeProgram(buildStandardProgram(opts.standard, dataOwners.length, parseParams(opts.param as unknown as string[] | undefined)));
      else throw new ConsortError("BAD_REQUEST", "give --program <file> or --standard <name>");
      // Bad flags are reported before anything touches the network.
      const threshold = parsePositiveInt(String(opts.threshold), "--threshold");
      const inputWindow = BigInt(parsePositiveInt(String(opts.inputWindow), "--input-window"));
      const resultWindow = BigInt(parsePositiveInt(String(opts.resultWindow), "--result-window"));
      const c = await connectClient(conn(opts), true);
      try {
        const now = await chainNow(c.provider);
        const inputDeadline = now + inputWindow;
        const resultDeadline = inputDeadline + resultWindow;
        const { taskId, receipt } = await c.registry.createTask({
          program: bytes,
          parties,
          dataOwners,
          threshold,
          inputDeadline,
          resultDeadline,
        });
        print(`created task ${taskId} (program ${programHash(bytes)}) in tx ${receipt.hash}, block ${receipt.blockNumber}`);
      } finally {
        c.close();
      }
    });
  connectionOptions(task.command("status"))
    .description("show a task's on-chain state, and a node's view of it with --node")
    .requiredOption("--task <id>", "task id")
    .option("--node <url>", "also ask this node for its local view")
    .option("--json", "print JSON")
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const taskId = parseTaskId(String(opts.task));
      const c = await connectClient(conn(opts), false);
      try {
        const state = await c.registry.taskState(taskId);
        if (state === "None") throw new ConsortError("UNKNOWN_TASK", `registry ${c.registry.address} has no task ${taskId}`);
        const t = await c.registry.getTask(taskId);
        const commitments = await c.registry.inputCommitments(taskId);
        const nodeView = opts.node === undefined ? undefined : await getJson(String(opts.node), `/v1/tasks/${taskId}`, { timeoutMs: 10_000 });
        const status = {
          taskId: taskId.toString(),
          state,
          programHash: t.programHash,
          threshold: t.threshold,
          parties: t.parties,
          inputs: t.dataOwners.map((o, i) => ({ dataOwner: o, commitment: /^0x0+$/.test(commitments[i]!) ? null : commitments[i] })),
          inputDeadline: chainTimeText(t.inputDeadline),
          resultDeadline: chainTimeText(t.resultDeadline),
          resultHash: /^0x0+$/.test(t.resultHash) ? null : t.resultHash,
          expiredAtBlock: t.expiredAtBlock === 0n ? null : t.expiredAtBlock.toString(),
          // Open tasks: the first second the registry will accept expireTask, should the deadline be missed.
          expirableFrom: state === "AwaitingInputs" || state === "Computing" ? chainTimeText(taskExpiry(t).expirableFrom) : null,
          ...(nodeView === undefined ? {} : { node: nodeView }),
        };
        if (opts.json === true) {
          json(status);
          return;
        }
        print(`task ${status.taskId}: ${state}`);
        print(`  program   ${status.programHash}`);
        print(`  parties   ${t.parties.join(", ")} (t=${t.threshold})`);
        status.inputs.forEach((i, k) => print(`  input #${k}  ${i.dataOwner}  ${i.commitment ?? "(not committed)"}`));
        print(`  deadlines inputs ${status.inputDeadline}, result ${status.resultDeadline}`);
        if (status.expirableFrom !== null) print(`  expiry    if the ${taskExpiry(t).deadline} deadline is missed, \`consort task expire\` works from ${status.expirableFrom}`);
        if (state === "Expired") {
          print(
            status.expiredAtBlock === null
              ? `  expiry    missed its deadline, not recorded on chain yet: run \`consort task expire --task ${taskId}\``
              : `  expiry    recorded in block ${status.expiredAtBlock}`,
          );
        }
        if (status.resultHash !== null) print(`  result    ${status.resultHash} (run \`consort audit --task ${taskId}\` for the values and checks)`);
        if (nodeView !== undefined) print(`  node      ${JSON.stringify(nodeView)}`);
      } finally {
        c.close();
      }
    });
  withKey(connectionOptions(task.command("expire")))
    .description("record on chain that a task missed its input or result deadline (anyone may; it ends the task for good)")
    .requiredOption("--task <id>", "task id")
    .action(async (opts: Record<string, string | undefined>) => {
      const taskId = parseTaskId(String(opts.task));
      const c = await connectClient(conn(opts), true);
      try {
        const receipt = await c.registry.expireTask(taskId);
        const t = await c.registry.getTask(taskId);
        const missed = t.inputsCommitted < t.dataOwners.length ? "input" : "result";
        print(
          `expired task ${taskId} (missed its ${missed} deadline; ${t.inputsCommitted} of ${t.dataOwners.length} inputs committed) ` +
            `in tx ${receipt.hash}, block ${receipt.blockNumber}`,
        );
      } finally {
        c.close();
      }
    });
  withKey(connectionOptions(task.command("result")))
    .description("as the task's requester, collect and reconstruct its requester-only outputs from the parties")
    .requiredOption("--task <id>", "task id")
    .option("--json", "print JSON")
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const c = await connectClient(conn(opts), true);
      try {
        const r = await collectRequesterOutputs(c.registry, c.wallet!, parseTaskId(String(opts.task)));
        if (opts.json === true) {
          json(r);
          return;
        }
        if (Object.keys(r.outputs).length === 0) print(`task ${r.taskId} has no requester-only outputs (see \`consort audit\` for its opened ones)`);
        for (const [name, value] of Object.entries(r.outputs)) print(`${name} = ${Array.isArray(value) ? `[${value.join(", ")}]` : String(value)}`);
        if (r.parties.length > 0) print(`(from ${r.parties.length} parties, checked against the commitment the quorum signed on chain)`);
      } finally {
        c.close();
      }
    });
  connectionOptions(task.command("program"))
    .description("write the program a task committed to (read from the chain) to a file")
    .requiredOption("--task <id>", "task id")
    .requiredOption("--out <file>", "where to write the program bytes")
    .action(async (opts: Record<string, string | undefined>) => {
      const c = await connectClient(conn(opts), false);
      try {
        const created = await findTaskCreated(c.registry, parseTaskId(String(opts.task)));
        writeOutputFile(String(opts.out), created.program, "--out");
        describeProgram(decodeProgram(created.program), created.program).forEach(print);
      } finally {
        c.close();
      }
    });

  // ------------------------------------------------------------------ input
  const input = cli.command("input").description("submit a data owner's private input");
  withKey(connectionOptions(input.command("submit")))
    .description("range-check, secret-share and commit your input, then send each party its encrypted share")
    .requiredOption("--task <id>", "task id")
    .option("--value <values>", "comma-separated values of your (single) input")
    .option("--input <name=values...>", "values per named input, e.g. --input values-0=1,2,3")
    .option("--state-dir <dir>", "keeps the pending submission until every party has its share", ".consort/inputs")
    .option("--timeout <seconds>", "how long to keep retrying a party that is down", "120")
    .action(async (opts: Record<string, unknown>) => {
      const taskId = parseTaskId(String(opts.task));
      const split = (s: string) => s.split(",").map((v) => v.trim());
      let inputs: Record<string, string[]> | undefined;
      if (Array.isArray(opts.input)) {
        inputs = {};
        for (const entry of opts.input as string[]) {
          const eq = entry.indexOf("=");
          if (eq <= 0) throw new ConsortError("BAD_REQUEST", `--input expects name=values, got "${entry}"`);
          inputs[entry.slice(0, eq)] = split(entry.slice(eq + 1));
        }
      }
      const values = typeof opts.value === "string" ? split(opts.value) : undefined;
      if (values === undefined && inputs === undefined) throw new ConsortError("BAD_REQUEST", "give --value or --input");
      const deliveryTimeoutMs = parsePositiveInt(String(opts.timeout), "--timeout") * 1000;
      const c = await connectClient(conn(opts), true);
      try {
        const r = await submitInput({
          registry: c.registry,
          signer: c.wallet!,
          taskId,
          ...(values === undefined ? {} : { values }),
          ...(inputs === undefined ? {} : { inputs }),
          stateDir: resolve(String(opts.stateDir)),
          deliveryTimeoutMs,
          onProgress: (e) => {
            if (e.step === "retry") process.stderr.write(`waiting for ${String(e.party)}: ${String(e.reason)}\n`);
          },
        });
        print(`committed ${r.commitment} to task ${taskId}${r.commitTx === undefined ? "" : ` in tx ${r.commitTx}`}`);
        for (const d of r.deliveries) print(`  share ${d.status} by ${d.party}`);
      } finally {
        c.close();
      }
    });

  // ------------------------------------------------------------------ audit
  connectionOptions(cli.command("audit"))
    .description("audit a task from the chain alone: program, parties, input commitments, result and signatures")
    .requiredOption("--task <id>", "task id")
    .option("--json", "print the report as JSON")
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const c = await connectClient(conn(opts), false);
      try {
        const report = await auditTask(c.registry, parseTaskId(String(opts.task)));
        if (opts.json === true) json(report);
        else print(formatAuditReport(report));
        if (!report.passed) process.exitCode = 3;
      } finally {
        c.close();
      }
    });
  return cli;
}

async function fetchProgram(hash: string, opts: Record<string, unknown>): Promise<Uint8Array> {
  if (typeof opts.node === "string") return getBytes(opts.node, `/v1/programs/${hash}`, { timeoutMs: 10_000 });
  const c = await connectClient(conn(opts), false);
  try {
    const found = await findProgramByHash(c.registry, hash);
    if (found === undefined) throw new ConsortError("NOT_FOUND", `no task on registry ${c.registry.address} commits to program ${hash}`);
    return found;
  } finally {
    c.close();
  }
}

/** Runs the CLI; prints one line per error and sets a non-zero exit code. */
export async function runCli(argv: readonly string[]): Promise<void> {
  const cli = buildCli();
  try {
    await cli.parseAsync([...argv], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    const e = toConsortError(error);
    process.stderr.write(`consort: ${e.code}: ${e.message}\n`);
    process.exitCode = e.retryable ? 75 : 1;
  }
}

// `consort ... | head` closes stdout early: that is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

const invokedAs = process.argv[1] === undefined ? undefined : realpathSync(process.argv[1]);
if (invokedAs === fileURLToPath(import.meta.url)) {
  await runCli(process.argv.slice(2));
}
