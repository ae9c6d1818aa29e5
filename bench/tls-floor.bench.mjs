/**
 * node bench/tls-floor.bench.mjs: what a standard secure transport would add
 * to the floor under Consort's round latency (bench/socket-floor.bench.mjs)
 * on this machine. Three processes exchange SIZE-byte messages in sequential
 * rounds over loopback, with no engine, and burn WORK_US µs of CPU per
 * message sent and per message received.
 *
 *   MODE=tcp          raw TCP, no crypto (the floor)
 *   MODE=tls          TLS 1.3 over TCP, mutually authenticated with
 *                     self-signed Ed25519 certificates built here
 *                     (selfSignedEd25519 below, no library). Neither side
 *                     trusts a CA: each checks that the peer's certificate
 *                     carries the public key it expects for that party,
 *                     which stands in for the registry-bound check.
 *   MODE=psk          TLS 1.3 with a pre-shared key per pair (HKDF over an
 *                     X25519 secret of the two parties' static keys, as the
 *                     link hello's key is made today), no certificate
 *   MODE=noise        Noise XX (noise-handshake, from NOISE_DIR: a folder
 *                     where it is installed; it is not a dependency of the
 *                     repo) then ChaCha20-Poly1305 per message with node:crypto
 *   MODE=handshake-tls|handshake-psk
 *                     in one process: HANDSHAKES sequential connections to a
 *                     local server, each a full handshake plus the peer
 *                     check, wall and CPU (both ends together) per handshake
 *   UPGRADE=1         (tls, psk) the TLS connection runs inside an HTTP/1.1
 *                     connection upgraded on an HTTP server's port, as
 *                     today's frame stream is, instead of on a TLS port
 *   MODE=psk-wire     the PSK handshake's key exchange mode, read off the
 *                     wire, and two handshakes the server must refuse
 *   RING=1            each party sends to one neighbour and hears from the other
 *   SIZE=40           message bytes (application bytes; TLS adds its record overhead)
 *   WORK_US=0         CPU per message, µs
 *
 * Prints, per process, the wall time and CPU time per round (with JSON=1, one
 * JSON line: {mode, ring, size, workUs, ms: [...], cpu: [...]}). For the
 * PSK mode it also checks that the handshake did an ephemeral key exchange
 * (psk_dhe_ke, so recorded traffic stays secret if a static key leaks
 * later) and prints the group. A measurement, not a test.
 */
import { fork } from "node:child_process";
import http from "node:http";
import net from "node:net";
import tls from "node:tls";
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, sign } from "node:crypto";
import { createRequire } from "node:module";
import { join } from "node:path";

const N = 3, ROUNDS = +(process.env.ROUNDS ?? 3000), MODE = process.env.MODE ?? "tcp", RING = process.env.RING === "1", UPGRADE = process.env.UPGRADE === "1";
const PSK = MODE === "psk" || MODE === "handshake-psk" || MODE === "psk-wire";
if (!["tcp", "tls", "psk", "noise", "handshake-tls", "handshake-psk", "psk-wire"].includes(MODE)) throw new Error(`unknown MODE ${MODE}`);
const SIZE = Math.max(8, +(process.env.SIZE ?? 40)), W = +(process.env.WORK_US ?? 0);

// --- A self-signed Ed25519 X.509 v3 certificate in DER, by hand (RFC 5280 §4.1, RFC 8410). ---
// Only what OpenSSL needs to parse a leaf and check its self-signature; the
// trust decision is ours (the peer's key against what we expect), never a chain.
const der = (tag, ...parts) => {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
};
const seq = (...p) => der(0x30, ...p);
const ED25519 = seq(Buffer.from("06032b6570", "hex")); // AlgorithmIdentifier id-Ed25519, no parameters
const name = (cn) => seq(der(0x31, seq(Buffer.from("0603550403", "hex"), der(0x0c, Buffer.from(cn))))); // CN=cn
// UTCTime, as RFC 5280 §4.1.2.5 requires for dates before 2050.
const utime = (d) => der(0x17, Buffer.from(d.toISOString().replace(/[-:T]/g, "").slice(2, 14) + "Z"));
/** extra: optional DER extensions, e.g. one carrying the registered key's EIP-712 signature over this key. */
function selfSignedEd25519(privateKey, publicKey, cn, extra = []) {
  const now = Date.now();
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))), // version v3
    der(0x02, Buffer.from([1])), // serial
    ED25519,
    name(cn),
    seq(utime(new Date(now - 3600_000)), utime(new Date(now + 86400_000))),
    name(cn),
    publicKey.export({ type: "spki", format: "der" }),
    ...(extra.length ? [der(0xa3, seq(...extra))] : []),
  );
  const sig = sign(null, tbs, privateKey);
  // 64 characters a line and no empty line before END (OpenSSL's PEM reader refuses one).
  const pem = seq(tbs, ED25519, der(0x03, Buffer.from([0]), sig)).toString("base64").match(/.{1,64}/g).join("\n");
  return `-----BEGIN CERTIFICATE-----\n${pem}\n-----END CERTIFICATE-----\n`;
}

// Deterministic per-party keys, so every process knows every party's public key (the registry's role here).
const seedKey = (kind, i) => createPrivateKey({ key: Buffer.concat([Buffer.from(kind === "ed25519" ? "302e020100300506032b657004220420" : "302e020100300506032b656e04220420", "hex"), Buffer.alloc(32, i + 1)]), format: "der", type: "pkcs8" });
const edKey = (i) => { const privateKey = seedKey("ed25519", i); return { privateKey, publicKey: createPublicKey(privateKey) }; };
const rawPub = (k) => k.export({ type: "spki", format: "der" }).subarray(-32);
/**
 * A non-critical extension under a private OID, the size of what would bind
 * the TLS key to the party (its address and a 65-byte EIP-712 signature by
 * its registered key), so the handshake measured carries as many bytes as
 * the real one and shows OpenSSL accepts the unknown extension.
 */
const bindingExtension = (i) => seq(der(0x06, Buffer.from("2b06010401838d1f01", "hex")), der(0x04, Buffer.alloc(85, i + 1)));
const creds = (i) => { const { privateKey, publicKey } = edKey(i); return { key: privateKey.export({ type: "pkcs8", format: "pem" }), cert: selfSignedEd25519(privateKey, publicKey, `consort-party-${i}`, [bindingExtension(i)]) }; };
/**
 * The PSK for connections from `client` to `server`: both ends compute it from
 * their own static X25519 key and the other's public key. One key per
 * direction, named by the identity, so a party's own ClientHello reflected
 * back at it (the Selfie attack on a PSK shared by two parties who both
 * connect and accept) names the wrong server and is refused.
 */
const directedPsk = (client, server) => Buffer.from(hkdfSync("sha256", diffieHellman({ privateKey: seedKey("x25519", client), publicKey: createPublicKey(seedKey("x25519", server)) }), "consort-bench", `psk/${client}/${server}`, 32));
const pskIdentity = (client, server) => `party/${client}/${server}`;
/** The server's side: the key for an identity that names this server, else none (the handshake fails). */
const pskFor = (me, identity) => { const [, client, server] = identity.split("/").map(Number); return server === me && client !== me && client >= 0 && client < N ? directedPsk(client, me) : null; };
/** Our own peer check: the certificate's key must be the one this party expects for `peer`. */
const checkPeer = (socket, peer) => {
  const x = socket.getPeerX509Certificate();
  if (!x || !rawPub(x.publicKey).equals(rawPub(edKey(peer).publicKey))) { socket.destroy(new Error(`peer ${peer}: unexpected certificate key`)); return false; }
  return true;
};
const TLS_BASE = { minVersion: "TLSv1.3", maxVersion: "TLSv1.3" };
const serverOptions = (me) => PSK
  ? { ...TLS_BASE, ciphers: "TLS_AES_128_GCM_SHA256", pskCallback: (_s, identity) => pskFor(me, identity) }
  : { ...TLS_BASE, ...creds(me), requestCert: true, rejectUnauthorized: false };
const clientOptions = (me, peer, port) => PSK
  ? { ...TLS_BASE, host: "127.0.0.1", port, ciphers: "TLS_AES_128_GCM_SHA256", pskCallback: () => ({ identity: pskIdentity(me, peer), psk: directedPsk(me, peer) }), checkServerIdentity: () => undefined }
  : { ...TLS_BASE, host: "127.0.0.1", port, ...creds(me), rejectUnauthorized: false, checkServerIdentity: () => undefined };

// --- Noise (optional): XX handshake from noise-handshake, then ChaCha20-Poly1305 per message here. ---
function noiseLib() {
  if (!process.env.NOISE_DIR) throw new Error("MODE=noise needs NOISE_DIR=<folder with node_modules/noise-handshake>");
  const req = createRequire(join(process.env.NOISE_DIR, "x.js"));
  return { Noise: req("noise-handshake"), curve: req("noise-handshake/dh") };
}
/** Length-prefixed records (2 bytes) over a socket, for the handshake messages and the sealed messages. */
const recordReader = (onRecord) => { let buf = Buffer.alloc(0); return (chunk) => { buf = buf.length ? Buffer.concat([buf, chunk]) : chunk; while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) { const n = buf.readUInt16BE(0); onRecord(buf.subarray(2, 2 + n)); buf = buf.subarray(2 + n); } }; };
const framed = (b) => { const h = Buffer.alloc(2); h.writeUInt16BE(b.length); return Buffer.concat([h, b]); };
function noiseCipher(key) {
  let sendN = 0n, recvN = 0n;
  const nonce = (n) => { const b = Buffer.alloc(12); b.writeBigUInt64LE(n, 4); return b; };
  return {
    seal(pt) { const c = createCipheriv("chacha20-poly1305", key, nonce(sendN++), { authTagLength: 16 }); const ct = c.update(pt); c.final(); return Buffer.concat([ct, c.getAuthTag()]); },
    open(ct) { const d = createDecipheriv("chacha20-poly1305", key, nonce(recvN++), { authTagLength: 16 }); d.setAuthTag(ct.subarray(-16)); const pt = d.update(ct.subarray(0, -16)); d.final(); return pt; },
  };
}
/** Runs XX over `socket`; resolves with {seal, open} once both transport keys are split. */
function noiseHandshake(socket, initiator, staticKeys, onRecordAfter) {
  const { Noise } = noiseLib();
  const hs = new Noise("XX", initiator, staticKeys);
  hs.initialise(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    let cipher = null;
    const finish = () => { const tx = noiseCipher(Buffer.from(hs.tx)), rx = noiseCipher(Buffer.from(hs.rx)); cipher = { seal: tx.seal, open: rx.open }; resolve(cipher); };
    const reader = recordReader((rec) => {
      if (cipher) return onRecordAfter(cipher.open(rec));
      try { hs.recv(rec); if (!hs.complete) socket.write(framed(hs.send())); if (hs.complete) finish(); } catch (e) { reject(e); }
    });
    socket.on("data", reader);
    if (initiator) socket.write(framed(hs.send()));
  });
}
const noiseStatic = (i) => { const { curve } = noiseLib(); return curve.generateKeyPair(Buffer.alloc(32, i + 1)); };

const spin = (us) => { const e = performance.now() + us / 1000; while (performance.now() < e); };

if (MODE === "psk-wire") {
  // What the PSK handshake negotiates, read off the wire through a relay:
  // the key exchange modes the client offers (RFC 8446 §4.2.9) and whether
  // the ServerHello carries a key_share next to pre_shared_key (psk_dhe_ke:
  // an ephemeral exchange, so a static key that leaks later does not open
  // recorded traffic) or not (psk_ke). Then two handshakes that must fail:
  // a client presenting the server's own direction (a reflected hello) and
  // a client with the wrong key.
  const extensions = (bytes) => {
    let p = 5; const type = bytes[p]; p += 4 + 2 + 32; p += 1 + bytes[p];
    if (type === 1) { p += 2 + bytes.readUInt16BE(p); p += 1 + bytes[p]; } else p += 3;
    const end = p + 2 + bytes.readUInt16BE(p), out = {}; p += 2;
    while (p < end) { const t = bytes.readUInt16BE(p), n = bytes.readUInt16BE(p + 2); out[t] = bytes.subarray(p + 4, p + 4 + n); p += 4 + n; }
    return out;
  };
  const server = tls.createServer(serverOptions(0), (s) => s.end());
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  let c2s = Buffer.alloc(0), s2c = Buffer.alloc(0);
  const relay = net.createServer((c) => {
    const u = net.connect(server.address().port, "127.0.0.1");
    c.on("data", (d) => { c2s = Buffer.concat([c2s, d]); u.write(d); }); u.on("data", (d) => { s2c = Buffer.concat([s2c, d]); c.write(d); });
    for (const x of [c, u]) { x.on("error", () => {}); x.on("close", () => { c.destroy(); u.destroy(); }); }
  });
  await new Promise((r) => relay.listen(0, "127.0.0.1", r));
  const attempt = (options) => new Promise((resolve) => { const s = tls.connect(options, () => { s.end(); resolve("connected"); }); s.on("error", (e) => resolve(`refused (${e.code ?? e.message})`)); });
  const ok = await attempt(clientOptions(1, 0, relay.address().port));
  const ch = extensions(c2s), sh = extensions(s2c);
  const modes = [...(ch[45] ?? [])].slice(1).map((m) => (m === 1 ? "psk_dhe_ke" : m === 0 ? "psk_ke" : String(m)));
  const out = {
    handshake: ok, clientOffers: modes, serverHello: { pre_shared_key: 41 in sh, key_share: 51 in sh ? `0x${sh[51].readUInt16BE(0).toString(16)}` : null },
    reflected: await attempt({ ...clientOptions(1, 0, server.address().port), pskCallback: () => ({ identity: pskIdentity(0, 1), psk: directedPsk(0, 1) }) }),
    wrongKey: await attempt({ ...clientOptions(1, 0, server.address().port), pskCallback: () => ({ identity: pskIdentity(1, 0), psk: directedPsk(2, 0) }) }),
  };
  relay.close(); server.close();
  console.log(JSON.stringify(out));
  process.exit(0);
} else if (MODE.startsWith("handshake-")) {
  // One process, both ends: the cost of opening one authenticated connection (wall, and CPU of both ends).
  const K = +(process.env.HANDSHAKES ?? 200);
  const server = tls.createServer(serverOptions(0), (s) => { if (!PSK) checkPeer(s, 1); s.on("data", () => {}); s.on("error", () => {}); });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;
  const once = () => new Promise((resolve, reject) => {
    const s = tls.connect(clientOptions(1, 0, port), () => { if (!PSK && !checkPeer(s, 0)) return reject(new Error("bad peer")); const e = s.getEphemeralKeyInfo(); s.end(); resolve(e); });
    s.on("error", reject);
  });
  for (let i = 0; i < 20; i++) await once(); // warm-up
  const t0 = performance.now(), c0 = process.cpuUsage();
  let eph;
  for (let i = 0; i < K; i++) eph = await once();
  const c = process.cpuUsage(c0);
  server.close();
  const out = { mode: MODE, ms: (performance.now() - t0) / K, cpu: (c.user + c.system) / 1000 / K, ephemeral: eph };
  console.log(process.env.JSON === "1" ? JSON.stringify(out) : `${MODE} ${out.ms.toFixed(3)}ms cpu ${out.cpu.toFixed(3)} (both ends) ephemeral ${JSON.stringify(eph)}`);
  process.exit(0);
} else if (process.argv[2] === "w") {
  const me = +process.argv[3];
  const got = new Map(); let waiter = null; let round = 0;
  const onMsg = (r) => { spin(W); got.set(r, (got.get(r) ?? 0) + 1); if (waiter && (got.get(round) ?? 0) >= (RING ? 1 : N - 1)) { const w = waiter; waiter = null; w(); } };
  const parser = () => { let buf = Buffer.alloc(0); return (chunk) => { buf = buf.length ? Buffer.concat([buf, chunk]) : chunk; while (buf.length >= SIZE) { onMsg(buf.readUInt32BE(0)); buf = buf.subarray(SIZE); } }; };
  const handshakes = []; // ms per outbound connection, until usable and checked
  const ephemeral = [];
  let server;
  if (MODE === "tcp") server = net.createServer((s) => { s.setNoDelay(true); s.on("data", parser()); });
  else if (MODE === "noise") server = net.createServer((s) => { s.setNoDelay(true); noiseHandshake(s, false, noiseStatic(me), (pt) => parser()(pt)).catch((e) => s.destroy(e)); });
  else {
    const onSecure = (s) => {
      s.setNoDelay(true);
      // The connecting party names itself in the first 4 bytes; the certificate must be that party's.
      let peer = -1; const p = parser();
      s.on("data", (chunk) => { if (peer < 0) { peer = chunk.readUInt32BE(0); if (!PSK && !checkPeer(s, peer)) return; chunk = chunk.subarray(4); if (!chunk.length) return; } p(chunk); });
    };
    if (!UPGRADE) server = tls.createServer(serverOptions(me), onSecure);
    else {
      // TLS inside an HTTP/1.1 connection upgraded on the node's one HTTP port (the registry lists only that endpoint).
      const context = tls.createSecureContext(serverOptions(me));
      server = http.createServer((_req, res) => res.end());
      server.on("upgrade", (_req, socket, head) => {
        socket.setNoDelay(true);
        socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: consort-tls\r\nConnection: Upgrade\r\n\r\n");
        if (head.length) socket.unshift(head);
        const t = new tls.TLSSocket(socket, { ...serverOptions(me), isServer: true, secureContext: context });
        t.once("secure", () => onSecure(t));
        t.on("error", () => socket.destroy());
      });
    }
  }
  server.listen(0, "127.0.0.1", () => process.send({ port: server.address().port }));
  process.on("message", async (m) => {
    const outs = [];
    for (let j = 0; j < N; j++) if (j !== me) {
      const t = performance.now();
      if (MODE === "tcp") { const s = net.connect(m.ports[j], "127.0.0.1"); s.setNoDelay(true); await new Promise((r) => s.on("connect", r)); outs.push((b) => s.write(b)); }
      else if (MODE === "noise") {
        const s = net.connect(m.ports[j], "127.0.0.1"); s.setNoDelay(true); await new Promise((r) => s.on("connect", r));
        const c = await noiseHandshake(s, true, noiseStatic(me), () => {});
        outs.push((b) => s.write(framed(c.seal(b))));
      } else {
        let socket;
        if (UPGRADE) {
          const req = http.request({ host: "127.0.0.1", port: m.ports[j], headers: { Connection: "Upgrade", Upgrade: "consort-tls" } }); req.end();
          socket = await new Promise((r) => req.on("upgrade", (_res, sock) => r(sock)));
          socket.setNoDelay(true);
        }
        const s = tls.connect({ ...clientOptions(me, j, m.ports[j]), ...(socket ? { socket } : {}) });
        await new Promise((r, x) => { s.once("secureConnect", r); s.once("error", x); });
        if (!PSK && !checkPeer(s, j)) throw new Error("bad peer");
        ephemeral.push(s.getEphemeralKeyInfo());
        s.setNoDelay(true);
        const id = Buffer.alloc(4); id.writeUInt32BE(me); s.write(id);
        outs.push((b) => s.write(b));
      }
      handshakes.push(performance.now() - t);
    }
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now(); const c0 = process.cpuUsage();
    for (round = 1; round <= ROUNDS; round++) {
      const b = Buffer.alloc(SIZE); b.writeUInt32BE(round, 0);
      for (const o of (RING ? [outs[[0, 1, 2].filter((j) => j !== me).indexOf((me + 2) % 3)]] : outs)) { spin(W); o(b); }
      if ((got.get(round) ?? 0) < (RING ? 1 : N - 1)) await new Promise((r) => (waiter = r));
      got.delete(round);
    }
    const c = process.cpuUsage(c0);
    process.send({ ms: (performance.now() - t0) / ROUNDS, cpu: (c.user + c.system) / 1000 / ROUNDS, handshakes, ephemeral });
    // Stay until the parent has every result (a peer that left early would reset its neighbour's socket mid-round).
    process.on("disconnect", () => process.exit(0));
  });
} else {
  const ws = Array.from({ length: N }, (_, i) => fork(process.argv[1], ["w", String(i)]));
  const ports = await Promise.all(ws.map((w) => new Promise((r) => w.once("message", (m) => r(m.port)))));
  const res = Promise.all(ws.map((w) => new Promise((r) => w.once("message", r))));
  ws.forEach((w) => w.send({ ports }));
  const got = await res;
  await Promise.all(ws.map((w) => new Promise((r) => { w.once("exit", r); w.disconnect(); })));
  const handshakeMs = got.flatMap((r) => r.handshakes);
  if (process.env.JSON === "1") console.log(JSON.stringify({ mode: MODE + (UPGRADE ? "+upgrade" : ""), ring: RING, size: SIZE, workUs: W, ms: got.map((r) => r.ms), cpu: got.map((r) => r.cpu), handshakeMs, ephemeral: got[0].ephemeral[0] ?? null }));
  else console.log(MODE + (UPGRADE ? "+upgrade" : ""), `size ${SIZE}`, got.map((r) => `${r.ms.toFixed(3)}ms cpu ${r.cpu.toFixed(3)}`).join(" | "), `| connect ${handshakeMs.map((x) => x.toFixed(1)).join(",")} ms`, got[0].ephemeral.length ? `| ephemeral ${JSON.stringify(got[0].ephemeral[0])}` : "");
}
