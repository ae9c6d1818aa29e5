/**
 * node bench/round-latency.bench.ts: the peer transport's round latency and
 * throughput over real HTTP on loopback (issue 3: <= 0.5 ms per round of
 * 1-element messages; 100,000-multiplication layers, 3.2 MB per peer, at
 * 300,000 multiplications/s end to end).
 *
 * Three OS processes (this file, forked with "worker") each run the node API
 * (express, with the upgraded frame stream beside it: startNodeApi) and a
 * PeerSessions + PeerChannel + PeerMailbox, exactly as a node wires them. Each
 * round, every party sends one frame to every other party and waits for one
 * from each (the RoundNetwork.exchange pattern). Rounds are sequential: a
 * party starts round r + 1 only when it has all of round r.
 *
 * Scenarios: the default transport (one upgraded HTTP/1.1 connection per
 * peer, checkpoint signing); per-frame Ed25519 signatures; and the default with every message stored in SQLite first (NodeStore, as
 * the node's deliver does). Latency: median of 3 runs of 1,000 rounds after
 * a warm-up. Throughput: 10 rounds of 3.2 MB. Also the single-process cost
 * of the primitives, the CPU time per round summed over the three
 * processes (on 2 cores the round can be no faster than half of it), and
 * the load average, since other work on the machine shows up in the figures.
 *
 * Prints a table and writes bench/round-latency.json. These are
 * measurements, not tests: nothing fails on a slow figure.
 * CONSORT_BENCH_CPU_PROF=<dir> runs the workers under --cpu-prof.
 * CONSORT_BENCH_QUICK=1 runs fewer rounds (a smoke test of the bench itself).
 * CONSORT_BENCH_ONLY=<text> runs only the scenarios whose name contains it.
 * CONSORT_BENCH_LATENCY_ONLY=1 skips the 3.2 MB rounds (profiles of the latency path).
 * CONSORT_BENCH_RING=1 makes the latency rounds ring rounds (node/protocol/ring-resharing.ts):
 * each party sends one frame to party i - 1 and waits for one from party i + 1.
 */
import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createECDH, createPrivateKey, createPublicKey, generateKeyPairSync, hash, randomBytes, sign, verify } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { SigningKey, Wallet, computeAddress, getAddress, recoverAddress } from "ethers";
import { PeerChannel } from "../node/transport/peer-channel.ts";
import { PeerMailbox } from "../node/transport/peer-mailbox.ts";
import { NodeStore } from "../node/store/node-store.ts";
import { HttpFrameLink } from "../node/transport/frame-link.ts";
import { createNodeApi, startNodeApi } from "../node/transport/http-server.ts";
import type { RunningNodeApi } from "../node/transport/http-server.ts";
import { labelKey } from "../node/transport/message-label.ts";
import { PeerSessions } from "../node/transport/peer-sessions.ts";
import type { FrameSigning } from "../node/transport/peer-sessions.ts";
import { ConsortError } from "../node/errors.ts";

const PARTIES = 3;
const QUICK = process.env.CONSORT_BENCH_QUICK === "1";
const LATENCY_ROUNDS = QUICK ? 100 : 1_000;
const LATENCY_RUNS = 3;
const WARMUP_ROUNDS = QUICK ? 50 : 300;
const BIG_ELEMENTS = 100_000;
const BIG_ROUNDS = QUICK ? 2 : 10;
const LATENCY_ONLY = process.env.CONSORT_BENCH_LATENCY_ONLY === "1";
const CHAIN_ID = 31337n;
const REGISTRY = getAddress("0x" + "c0".repeat(20));

interface Scenario {
  name: string;
  signing: FrameSigning;
  store: boolean;
}

const SCENARIOS: readonly Scenario[] = [
  { name: "upgraded stream, checkpoint signing (default)", signing: "checkpoint", store: false },
  { name: "upgraded stream, checkpoint signing, SQLite store", signing: "checkpoint", store: true },
  { name: "upgraded stream, Ed25519 signature per frame", signing: "frame", store: false },
];

/** Fixed, obviously non-production keys so the three processes agree without coordination. */
function partyKeys(i: number): { wallet: Wallet; encryptionPrivateKey: Buffer; encryptionPublicKey: Buffer } {
  const wallet = new Wallet(`0x${hash("sha256", `consort bench signing key ${i}`)}`);
  const encryptionPrivateKey = hash("sha256", `consort bench encryption key ${i}`, "buffer");
  const ecdh = createECDH("secp256k1");
  ecdh.setPrivateKey(encryptionPrivateKey);
  return { wallet, encryptionPrivateKey, encryptionPublicKey: ecdh.getPublicKey(null, "compressed") };
}

// ------------------------------------------------------------------ worker

type ToWorker =
  | { kind: "peers"; urls: string[] }
  | { kind: "run"; taskId: string; rounds: number; elements: number }
  | { kind: "exit" };

type FromWorker =
  | { kind: "listening"; url: string }
  | { kind: "ready" }
  | { kind: "done"; wallMs: number; cpuMs: number; mainThreadCpuMs: number; settleMs: number }
  | { kind: "failed"; message: string };

async function worker(index: number, scenario: Scenario): Promise<void> {
  const send = (m: FromWorker) => process.send!(m);
  const keys = Array.from({ length: PARTIES }, (_, i) => partyKeys(i));
  const self = keys[index]!;
  const addresses = keys.map((k) => k.wallet.address);
  let urls: string[] = [];
  const mailbox = new PeerMailbox();
  const dir = scenario.store ? mkdtempSync(join(tmpdir(), "consort-round-bench-")) : undefined;
  const store = dir === undefined ? undefined : NodeStore.open(join(dir, "node.sqlite"));
  const sessions = new PeerSessions({
    chainId: CHAIN_ID,
    registry: REGISTRY,
    signingKey: self.wallet,
    encryptionPrivateKey: self.encryptionPrivateKey,
    lookupParty: (address) => {
      const j = addresses.indexOf(address);
      if (j < 0) throw new ConsortError("NOT_A_PARTY", `${address} is not a bench party`);
      return { encryptionKey: keys[j]!.encryptionPublicKey, endpoint: urls[j]! };
    },
    taskParties: () => addresses,
    // What the node's deliver does: store first (when measured), then wake the waiter.
    deliver: ({ label, from, payload }) => {
      if (store !== undefined && store.putMessage(label.taskId, label.round, label.gate, from, payload) === "conflict") {
        throw new ConsortError("DUPLICATE_MESSAGE", `conflicting message from ${from}`);
      }
      mailbox.deliver(labelKey(label), from, payload);
    },
    signing: scenario.signing,
    timeoutMs: 60_000,
    link: new HttpFrameLink(),
    onError: (error) => send({ kind: "failed", message: `${error.code}: ${error.message}` }),
  });
  const channel = new PeerChannel({ sessions, store: store ?? { getMessage: () => undefined }, mailbox, timeoutMs: 60_000 });
  const handlers = {
    health: async () => ({ status: "ok" }),
    taskStatus: async () => ({}),
    submitShare: async (): Promise<Record<string, unknown>> => {
      throw new ConsortError("NOT_FOUND", "no shares in this bench");
    },
  };
  const api: RunningNodeApi = await startNodeApi(
    createNodeApi(handlers),
    { host: "127.0.0.1", port: 0 },
    { frames: { receive: (record) => sessions.take(record), authenticate: (hello) => sessions.authenticateLink(hello), maxRecordBytes: 64 * 1024 * 1024 } },
  );

  const run = async (taskId: bigint, rounds: number, elements: number) => {
    // Random bytes with the top byte of each element cleared: canonical-looking field elements.
    const payloads = addresses.map(() => {
      const p = randomBytes(32 * elements);
      for (let e = 0; e < elements; e++) p[32 * e + 31] = 0;
      return p;
    });
    const ring = process.env.CONSORT_BENCH_RING === "1";
    const ringOut = ring ? payloads.map((p, j) => (j === (index + PARTIES - 1) % PARTIES ? p : undefined)) : undefined;
    const ringFrom = ring ? payloads.map((_, j) => j === (index + 1) % PARTIES) : undefined;
    const cpu0 = process.cpuUsage();
    const main0 = process.threadCpuUsage();
    const t0 = performance.now();
    for (let r = 1; r <= rounds; r++) {
      await channel.exchange({ taskId, round: r, gate: `mul:${(r - 1) * elements}-${r * elements - 1}` }, addresses, ringOut ?? payloads, ringFrom);
    }
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const main = process.threadCpuUsage(main0);
    const t1 = performance.now();
    await sessions.settled(taskId, 30_000);
    return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000, mainThreadCpuMs: (main.user + main.system) / 1000, settleMs: performance.now() - t1 };
  };

  process.on("message", (m: ToWorker) => {
    if (m.kind === "peers") {
      urls = m.urls;
      send({ kind: "ready" });
    } else if (m.kind === "run") {
      run(BigInt(m.taskId), m.rounds, m.elements).then(
        (r) => send({ kind: "done", ...r }),
        (e: unknown) => send({ kind: "failed", message: e instanceof Error ? e.message : String(e) }),
      );
    } else {
      void (async () => {
        await sessions.close();
        await api.close();
        store?.close();
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
        process.exit(0);
      })();
    }
  });
  send({ kind: "listening", url: api.url });
}

// ------------------------------------------------------------------ parent

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function next<T extends FromWorker["kind"]>(child: ChildProcess, kind: T): Promise<Extract<FromWorker, { kind: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: FromWorker) => {
      if (m.kind === "failed") {
        cleanup();
        reject(new Error(`worker failed: ${m.message}`));
      } else if (m.kind === kind) {
        cleanup();
        resolve(m as Extract<FromWorker, { kind: T }>);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`worker exited with ${code}`));
    };
    const cleanup = () => {
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.on("exit", onExit);
  });
}

interface RunFigures {
  wallMs: number;
  /** CPU of the three processes together (all threads: V8 compiles and collects garbage on helper threads). */
  cpuMs: number;
  /** CPU of their main (event-loop) threads. */
  mainThreadCpuMs: number;
  settleMs: number;
  /** CPU the rest of the machine used meanwhile (Linux /proc/stat), as a share of all cores; NaN elsewhere. */
  othersShare: number;
}

/** Busy CPU time of the whole machine so far, in ms (Linux), or undefined. */
function machineBusyMs(): number | undefined {
  if (!existsSync("/proc/stat")) return undefined;
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait; USER_HZ is 100 on Linux.
  const busy = fields.slice(0, 8).reduce((a, x, i) => (i === 3 || i === 4 ? a : a + x), 0);
  return busy * 10;
}

async function runAll(workers: readonly ChildProcess[], taskId: bigint, rounds: number, elements: number): Promise<RunFigures> {
  const busy0 = machineBusyMs();
  const t0 = performance.now();
  const results = await Promise.all(
    workers.map((w) => {
      const done = next(w, "done");
      w.send({ kind: "run", taskId: taskId.toString(), rounds, elements } satisfies ToWorker);
      return done;
    }),
  );
  const elapsed = performance.now() - t0;
  const busy1 = machineBusyMs();
  const cpuMs = results.reduce((a, r) => a + r.cpuMs, 0);
  return {
    wallMs: Math.max(...results.map((r) => r.wallMs)),
    cpuMs,
    mainThreadCpuMs: results.reduce((a, r) => a + r.mainThreadCpuMs, 0),
    settleMs: Math.max(...results.map((r) => r.settleMs)),
    othersShare: busy0 === undefined || busy1 === undefined ? NaN : Math.max(0, busy1 - busy0 - cpuMs) / (elapsed * cpus().length),
  };
}

interface ScenarioFigures {
  scenario: string;
  latency: { msPerRound: number; runs: number[]; cpuMsPerRound: number; mainThreadCpuMsPerRound: number; settleMs: number; othersCpuShare: number[] };
  throughput: { msPerRound: number; megabytesPerSecond: number; multiplicationsPerSecond: number; cpuMsPerRound: number };
  loadAverage: [number, number];
}

async function runScenario(scenario: Scenario, taskBase: bigint): Promise<ScenarioFigures> {
  const self = fileURLToPath(import.meta.url);
  const profDir = process.env.CONSORT_BENCH_CPU_PROF;
  const execArgv = profDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profDir}`];
  const workers = Array.from({ length: PARTIES }, (_, i) =>
    fork(self, ["worker", String(i), JSON.stringify(scenario)], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] }),
  );
  const load0 = loadavg()[0]!;
  try {
    const urls = (await Promise.all(workers.map((w) => next(w, "listening")))).map((m) => m.url);
    await Promise.all(
      workers.map((w) => {
        const ready = next(w, "ready");
        w.send({ kind: "peers", urls } satisfies ToWorker);
        return ready;
      }),
    );
    let task = taskBase;
    await runAll(workers, task++, WARMUP_ROUNDS, 1);
    const latencyRuns: RunFigures[] = [];
    for (let i = 0; i < LATENCY_RUNS; i++) latencyRuns.push(await runAll(workers, task++, LATENCY_ROUNDS, 1));
    let big: RunFigures = { wallMs: NaN, cpuMs: NaN, mainThreadCpuMs: NaN, settleMs: NaN, othersShare: NaN };
    if (!LATENCY_ONLY) {
      await runAll(workers, task++, 1, BIG_ELEMENTS);
      big = await runAll(workers, task++, BIG_ROUNDS, BIG_ELEMENTS);
    }
    const perRound = latencyRuns.map((r) => r.wallMs / LATENCY_ROUNDS);
    const bigMsPerRound = big.wallMs / BIG_ROUNDS;
    // Payload bytes moved per round: every party sends 3.2 MB to each of the two others.
    const bytesPerRound = PARTIES * (PARTIES - 1) * 32 * BIG_ELEMENTS;
    return {
      scenario: scenario.name,
      latency: {
        msPerRound: median(perRound),
        runs: perRound,
        cpuMsPerRound: median(latencyRuns.map((r) => r.cpuMs / LATENCY_ROUNDS)),
        mainThreadCpuMsPerRound: median(latencyRuns.map((r) => r.mainThreadCpuMs / LATENCY_ROUNDS)),
        settleMs: median(latencyRuns.map((r) => r.settleMs)),
        othersCpuShare: latencyRuns.map((r) => r.othersShare),
      },
      throughput: {
        msPerRound: bigMsPerRound,
        megabytesPerSecond: bytesPerRound / 1e6 / (bigMsPerRound / 1000),
        multiplicationsPerSecond: BIG_ELEMENTS / (bigMsPerRound / 1000),
        cpuMsPerRound: big.cpuMs / BIG_ROUNDS,
      },
      loadAverage: [load0, loadavg()[0]!],
    };
  } finally {
    for (const w of workers) if (w.connected) w.send({ kind: "exit" } satisfies ToWorker);
    await Promise.all(workers.map((w) => (w.exitCode !== null ? Promise.resolve() : new Promise((r) => w.once("exit", r)))));
  }
}

/** Microseconds per call of `f`, after a warm-up (single process, this one). */
function micros(f: () => unknown, iterations: number): number {
  for (let i = 0; i < Math.min(iterations, 200); i++) f();
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) f();
  return ((performance.now() - t0) * 1000) / iterations;
}

function primitives(): Record<string, number> {
  const msg = randomBytes(300);
  const digest = randomBytes(32);
  const ed = generateKeyPairSync("ed25519");
  const edSig = sign(null, msg, ed.privateKey);
  const p256 = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const p256Sig = sign("sha256", msg, { key: p256.privateKey, dsaEncoding: "ieee-p1363" });
  const k1Secret = secp256k1.utils.randomSecretKey();
  const k1Point = secp256k1.getPublicKey(k1Secret, false);
  const jwk = {
    kty: "EC",
    crv: "secp256k1",
    x: Buffer.from(k1Point.subarray(1, 33)).toString("base64url"),
    y: Buffer.from(k1Point.subarray(33)).toString("base64url"),
  };
  const k1Private = createPrivateKey({ key: { ...jwk, d: Buffer.from(k1Secret).toString("base64url") }, format: "jwk" });
  const k1Public = createPublicKey({ key: jwk, format: "jwk" });
  const k1Sig = sign("sha256", msg, { key: k1Private, dsaEncoding: "ieee-p1363" });
  const ethKey = new SigningKey(k1Secret);
  const ethSig = ethKey.sign(digest);
  const big = randomBytes(32 * BIG_ELEMENTS);
  const small = randomBytes(32);
  return {
    "Ed25519 sign (node:crypto)": micros(() => sign(null, msg, ed.privateKey), 2_000),
    "Ed25519 verify (node:crypto)": micros(() => verify(null, msg, ed.publicKey, edSig), 2_000),
    "P-256 ECDSA sign (node:crypto)": micros(() => sign("sha256", msg, { key: p256.privateKey, dsaEncoding: "ieee-p1363" }), 2_000),
    "P-256 ECDSA verify (node:crypto)": micros(() => verify("sha256", msg, { key: p256.publicKey, dsaEncoding: "ieee-p1363" }, p256Sig), 2_000),
    "secp256k1 ECDSA sign (node:crypto)": micros(() => sign("sha256", msg, { key: k1Private, dsaEncoding: "ieee-p1363" }), 300),
    "secp256k1 ECDSA verify (node:crypto)": micros(() => verify("sha256", msg, { key: k1Public, dsaEncoding: "ieee-p1363" }, k1Sig), 300),
    "secp256k1 ECDSA sign (ethers/noble)": micros(() => ethKey.sign(digest), 200),
    "secp256k1 recover address (ethers/noble)": micros(() => recoverAddress(digest, ethSig), 100),
    "computeAddress (keccak, noble)": micros(() => computeAddress(ethKey.publicKey), 2_000),
    "SHA-256 of 3.2 MB": micros(() => hash("sha256", big, "buffer"), 10),
    "BLAKE2b-512 of 3.2 MB": micros(() => hash("blake2b512", big, "buffer"), 10),
    "SHA-256 of 32 B": micros(() => hash("sha256", small, "buffer"), 20_000),
  };
}

async function frameCosts(): Promise<Record<string, number>> {
  // One process holding both ends: the per-frame crypto without HTTP.
  const a = partyKeys(0);
  const b = partyKeys(1);
  const make = (k: ReturnType<typeof partyKeys>, signing: FrameSigning) =>
    new PeerSessions({
      chainId: CHAIN_ID,
      registry: REGISTRY,
      signingKey: k.wallet,
      encryptionPrivateKey: k.encryptionPrivateKey,
      lookupParty: (address) => ({ encryptionKey: address === a.wallet.address ? a.encryptionPublicKey : b.encryptionPublicKey, endpoint: "http://127.0.0.1:9" }),
      taskParties: () => [a.wallet.address, b.wallet.address],
      signing,
      checkpointIntervalMs: 60_000,
      checkpointMaxFrames: 4096,
      timeoutMs: 1_000,
    });
  const out: Record<string, number> = {};
  for (const signing of ["checkpoint", "frame"] as const) {
    const sender = make(a, signing);
    const receiver = make(b, signing);
    for (const [elements, iterations] of [[1, 3_000], [BIG_ELEMENTS, 10]] as const) {
      const payload = randomBytes(32 * elements);
      let round = 0;
      const sealed: Buffer[] = [];
      // The first frame of a session pays for its set-up; time the steady state.
      await sender.seal({ taskId: BigInt(elements), round: round++, gate: "bench" }, b.wallet.address, payload);
      const t0 = performance.now();
      for (let i = 0; i < iterations; i++) {
        const r = await sender.seal({ taskId: BigInt(elements), round: round++, gate: "bench" }, b.wallet.address, payload);
        sealed.push(Buffer.concat(r.parts as Buffer[]).subarray(4));
      }
      const seal = ((performance.now() - t0) * 1000) / iterations;
      await receiver.acceptFrame(sealed[0]!);
      const t1 = performance.now();
      for (const f of sealed) await receiver.acceptFrame(f);
      const accept = ((performance.now() - t1) * 1000) / sealed.length;
      const what = elements === 1 ? "32 B" : "3.2 MB";
      out[`seal a ${what} frame (${signing} signing)`] = seal;
      out[`accept a ${what} frame (${signing} signing)`] = accept;
    }
    await sender.close(0);
    await receiver.close(0);
  }
  return out;
}

async function main(): Promise<void> {
  console.log(`round latency bench: ${PARTIES} processes, ${cpus().length} cores, Node ${process.versions.node}, load ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  const prims = primitives();
  const frames = await frameCosts();
  const scenarios: ScenarioFigures[] = [];
  let taskBase = 1_000n;
  const only = process.env.CONSORT_BENCH_ONLY;
  for (const scenario of SCENARIOS.filter((s) => only === undefined || s.name.includes(only))) {
    scenarios.push(await runScenario(scenario, taskBase));
    taskBase += 1_000n;
    const s = scenarios.at(-1)!;
    console.log(`  done: ${s.scenario}: ${s.latency.msPerRound.toFixed(3)} ms/round`);
  }

  console.log(`\nPrimitives (µs per call, one process):`);
  for (const [name, us] of Object.entries({ ...prims, ...frames })) console.log(`  ${name.padEnd(44)} ${us.toFixed(1).padStart(10)}`);
  console.log(`\n${LATENCY_ROUNDS} sequential all-to-all rounds of 1-element (32 B) payloads, median of ${LATENCY_RUNS} runs; ${BIG_ROUNDS} rounds of 3.2 MB per peer`);
  const header = ["scenario", "ms/round", "CPU ms/round", "main thread", "runs", "others' CPU", "3.2MB ms/round", "MB/s", "mult/s"];
  console.log(`  ${header[0]!.padEnd(42)} ${header.slice(1).map((h) => h.padStart(14)).join(" ")}`);
  for (const s of scenarios) {
    const cells = [
      s.latency.msPerRound.toFixed(3),
      s.latency.cpuMsPerRound.toFixed(3),
      s.latency.mainThreadCpuMsPerRound.toFixed(3),
      s.latency.runs.map((x) => x.toFixed(2)).join("/"),
      s.latency.othersCpuShare.map((x) => `${(100 * x).toFixed(0)}%`).join("/"),
      s.throughput.msPerRound.toFixed(1),
      s.throughput.megabytesPerSecond.toFixed(0),
      s.throughput.multiplicationsPerSecond.toFixed(0),
    ];
    console.log(`  ${s.scenario.padEnd(42)} ${cells.map((c) => c.padStart(14)).join(" ")}`);
  }
  console.log(`  (target: <= 0.5 ms/round; 300,000 multiplications/s end to end. CPU ms/round: the three processes together;`);
  console.log(`   others' CPU: what the rest of the machine used during each run, as a share of all ${cpus().length} cores.)`);
  const out = fileURLToPath(new URL("./round-latency.json", import.meta.url));
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.versions.node,
        cores: cpus().length,
        cpu: cpus()[0]?.model,
        parties: PARTIES,
        latencyRounds: LATENCY_ROUNDS,
        bigRounds: BIG_ROUNDS,
        bigPayloadBytes: 32 * BIG_ELEMENTS,
        primitivesMicros: { ...prims, ...frames },
        scenarios,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwrote ${out}`);
}

if (process.argv[2] === "worker") {
  await worker(Number(process.argv[3]), JSON.parse(process.argv[4]!) as Scenario);
} else {
  await main();
  process.exit(0);
}
