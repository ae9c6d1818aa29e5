/**
 * node bench/transport-local.bench.ts: the peer transport's CPU per frame
 * with no sockets and no scheduler in the way. Two parties in ONE process,
 * each a PeerSessions + PeerChannel + PeerMailbox wired as a node wires
 * them; a FrameLink hands each sealed record straight to the other party's
 * PeerSessions.take (the frame routes' entry point). Every round, each
 * party sends the other one 1-element (32-byte) payload and waits for the
 * other's: a ring round's work per party, all crypto real (stream sealing,
 * HMAC, keystream, checkpoint signatures every 50 ms).
 *
 * The round-latency figures of `npm run bench` swing by ±30% from one
 * minute to the next on these machines, and so does this one between
 * runs. To compare two versions of the round path, run it in both
 * checkouts AT THE SAME TIME (one process per core, both see the same
 * machine), several times: `(cd a && node bench/transport-local.bench.ts) &
 * (cd b && node bench/transport-local.bench.ts) & wait`. A node's CPU per
 * round in the cluster is a few times this figure (cold caches after every
 * context switch, the socket, the engine).
 *
 *   node bench/transport-local.bench.ts [--rounds 15000] [--repeat 3]
 *
 * Prints µs per frame (sealed, delivered, accepted and handed to the
 * waiting round) and writes bench/transport-local.json. A measurement, not
 * a test.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Wallet, getAddress } from "ethers";
import { PeerChannel } from "../node/transport/peer-channel.ts";
import { PeerMailbox } from "../node/transport/peer-mailbox.ts";
import { generateEncryptionKey } from "../node/transport/envelope.ts";
import type { FrameLink } from "../node/transport/frame-link.ts";
import { labelKey } from "../node/transport/message-label.ts";
import { recordBytesOf, type SealedRecord } from "../node/transport/peer-frame.ts";
import { PeerSessions } from "../node/transport/peer-sessions.ts";
import { benchArgument } from "./bench-argument.ts";

const ROUNDS = benchArgument("rounds", 15_000);
const REPEAT = benchArgument("repeat", 3);
const WARMUP_ROUNDS = 3_000;
const REGISTRY = getAddress("0x" + "5e".repeat(20));
const TASK = 7n;

const parties = [0x61, 0x62].map((seed) => ({ wallet: new Wallet("0x" + seed.toString(16).repeat(32)), encryption: generateEncryptionKey() }));
const addresses = parties.map((p) => p.wallet.address);
const contacts = new Map(parties.map((p, i) => [p.wallet.address, { encryptionKey: p.encryption.publicKey, endpoint: `local://${i}` }]));
const nodes: { sessions: PeerSessions; channel: PeerChannel }[] = [];

/** Delivers a record to the other party in this process, as the frame routes would (take, then acknowledge). */
const link: FrameLink = {
  deliver(endpoint: string, record: SealedRecord): Promise<void> {
    const target = nodes[Number(endpoint.slice("local://".length))]!;
    const bytes = record.parts.length === 1 ? record.parts[0]!.subarray(4) : recordBytesOf(record);
    const taken = target.sessions.take(bytes);
    return taken instanceof Promise ? taken : Promise.resolve();
  },
  async close(): Promise<void> {},
};

for (const p of parties) {
  const mailbox = new PeerMailbox();
  const sessions = new PeerSessions({
    chainId: 31337n,
    registry: REGISTRY,
    signingKey: p.wallet,
    encryptionPrivateKey: p.encryption.privateKey,
    lookupParty: (address) => {
      const contact = contacts.get(address);
      if (contact === undefined) throw new Error(`unknown party ${address}`);
      return contact;
    },
    taskParties: () => addresses,
    deliver: (frame) => mailbox.deliver(labelKey(frame.label), frame.from, frame.payload),
    timeoutMs: 10_000,
    link,
  });
  nodes.push({ sessions, channel: new PeerChannel({ sessions, store: { getMessage: () => undefined }, mailbox, timeoutMs: 10_000 }) });
}

const payload = randomBytes(32);
let round = 0;
async function rounds(count: number): Promise<void> {
  for (let r = 0; r < count; r++, round++) {
    const label = { taskId: TASK, round, gate: `mul:${round}` };
    await Promise.all([nodes[0]!.channel.exchange(label, addresses, [undefined, payload]), nodes[1]!.channel.exchange(label, addresses, [payload, undefined])]);
  }
}

await Promise.all(nodes.map((n) => n.sessions.prepare(TASK, addresses)));
await rounds(WARMUP_ROUNDS);
const wall: number[] = [];
const cpu: number[] = [];
for (let k = 0; k < REPEAT; k++) {
  const started = performance.now();
  const before = process.cpuUsage();
  await rounds(ROUNDS);
  const used = process.cpuUsage(before);
  // Two frames per round (one each way).
  wall.push(((performance.now() - started) * 1000) / (2 * ROUNDS));
  cpu.push((used.user + used.system) / (2 * ROUNDS));
}
await Promise.all(nodes.map((n) => n.sessions.settled(TASK, 10_000)));
await Promise.all(nodes.map((n) => n.sessions.close(0)));

const best = Math.min(...wall);
console.log(`transport, one process, 1-element frames: ${best.toFixed(1)} µs per frame (best of ${REPEAT} x ${ROUNDS} rounds; runs ${wall.map((x) => x.toFixed(1)).join(", ")}; CPU ${cpu.map((x) => x.toFixed(1)).join(", ")} µs)`);
const out = fileURLToPath(new URL("./transport-local.json", import.meta.url));
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.versions.node, rounds: ROUNDS, usPerFrame: best, runs: wall, cpuUsPerFrame: cpu }, null, 2)}\n`);
console.log(`wrote ${out}`);
