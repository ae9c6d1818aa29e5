/**
 * node bench/socket-floor.bench.mjs: the floor under Consort's round latency
 * on this machine. Three processes exchange 40-byte messages in sequential
 * rounds over loopback, with no crypto and no engine, and burn WORK_US µs of
 * CPU (a spin loop) per message sent and per message received, standing in
 * for a node's per-frame work.
 *
 *   MODE=tcp|upgrade|http|h2   raw TCP, an HTTP/1.1 connection upgraded to a raw
 *                              stream, a chunked POST body, or an HTTP/2 stream
 *   MODE=pull                  raw TCP opened by the RECEIVER, which reads with
 *                              net's `onread` option (one reused buffer, no
 *                              Readable stream machinery); implies RING=1
 *   RING=1                     each party sends to one neighbour and hears from
 *                              the other (ring resharing) instead of all-to-all
 *   WORK_US=60                 CPU per message, µs
 *   SPIN=<µs>                  busy-poll the event loop that long before sleeping
 *
 * Prints, per process, the wall time and CPU time per round (with JSON=1,
 * one JSON line: {mode, ring, workUs, ms: [...], cpu: [...]}, which
 * `npm run bench` reads to report the floor of the minute next to its round
 * figure). A measurement, not a test.
 */
// 3 processes, all-to-all rounds over raw TCP or HTTP streams, no crypto.
import { fork } from "node:child_process";
import net from "node:net";
import http from "node:http";
import http2 from "node:http2";
const N = 3, ROUNDS = 3000, MODE = process.env.MODE ?? "tcp", RING = process.env.RING === "1" || MODE === "pull";
if (process.argv[2] === "w") {
  const me = +process.argv[3];
  let got = new Map(); let waiter = null; let round = 0;
  const W = +(process.env.WORK_US ?? 0); const spin = (us) => { const e = performance.now() + us / 1000; while (performance.now() < e); };
  const onMsg = (r) => { spin(W); got.set(r, (got.get(r) ?? 0) + 1); if (waiter && (got.get(round) ?? 0) >= (RING ? 1 : N - 1)) { const w = waiter; waiter = null; w(); } };
  const parser = () => { let buf = Buffer.alloc(0); return (chunk) => { buf = buf.length ? Buffer.concat([buf, chunk]) : chunk; while (buf.length >= 40) { onMsg(buf.readUInt32BE(0)); buf = buf.subarray(40); } }; };
  let server;
  let pullOut;
  if (MODE === "pull") server = net.createServer((s) => { s.setNoDelay(true); pullOut = s; });
  else if (MODE === "upgrade") { server = http.createServer((req,res)=>{res.end();}); server.on("upgrade", (req, socket, head) => { socket.setNoDelay(true); socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: consort-frames\r\nConnection: Upgrade\r\n\r\n"); const p = parser(); if (head.length) p(head); socket.on("data", p); }); }
  else if (MODE === "h2") { server = http2.createServer(); server.on("stream", (st) => { st.on("data", parser()); }); }
  else if (MODE === "tcp") server = net.createServer((s) => { s.setNoDelay(true); s.on("data", parser()); });
  else server = http.createServer((req, res) => { req.on("data", parser()); });
  server.listen(0, "127.0.0.1", () => process.send({ port: server.address().port }));
  process.on("message", async (m) => {
    const outs = [];
    if (MODE === "pull") {
      // Connect to the party this one hears from; it writes on the accepted socket.
      const p = parser();
      const s = net.connect({ port: m.ports[(me + 1) % 3], host: "127.0.0.1", onread: { buffer: Buffer.alloc(65536), callback: (n, buf) => p(Buffer.from(buf.subarray(0, n))) } });
      s.setNoDelay(true);
      await new Promise((r) => s.on("connect", r));
      // One writer per peer slot, as the other modes have; the ring picks the slot of (me + 2) % 3.
      outs.push((b) => pullOut.write(b), (b) => pullOut.write(b));
    }
    else for (let j = 0; j < N; j++) if (j !== me) {
      if (MODE === "upgrade") { const req = http.request({ host: "127.0.0.1", port: m.ports[j], headers: { Connection: "Upgrade", Upgrade: "consort-frames" } }); req.end(); const s = await new Promise((r) => req.on("upgrade", (res, socket) => r(socket))); s.setNoDelay(true); outs.push((b) => s.write(b)); }
      else if (MODE === "h2") { const c = http2.connect(`http://127.0.0.1:${m.ports[j]}`); const st = c.request({ ":method": "POST", ":path": "/s" }); outs.push((b) => st.write(b)); }
      else if (MODE === "tcp") { const s = net.connect(m.ports[j], "127.0.0.1"); s.setNoDelay(true); await new Promise((r) => s.on("connect", r)); outs.push((b) => s.write(b)); }
      else { const agent = new http.Agent({ keepAlive: true }); const req = http.request({ host: "127.0.0.1", port: m.ports[j], method: "POST", path: "/s", agent, headers: { "content-type": "application/octet-stream" } }); req.flushHeaders(); req.socket?.setNoDelay?.(true); req.on("socket", (s) => s.setNoDelay(true)); outs.push((b) => req.write(b)); }
    }
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now(); const c0 = process.cpuUsage();
    for (round = 1; round <= ROUNDS; round++) {
      const b = Buffer.alloc(40); b.writeUInt32BE(round, 0);
      for (const o of (RING ? [outs[[0, 1, 2].filter((j) => j !== me).indexOf((me + 2) % 3)]] : outs)) { spin(W); o(b); }
      if ((got.get(round) ?? 0) < (RING ? 1 : N - 1)) { let spinner; if (process.env.SPIN) { const until = performance.now() + Number(process.env.SPIN) / 1000; const tick = () => { if (waiter && performance.now() < until) spinner = setImmediate(tick); }; spinner = setImmediate(tick); } await new Promise((r) => (waiter = r)); clearImmediate(spinner); }
      got.delete(round);
    }
    const c = process.cpuUsage(c0);
    process.send({ ms: (performance.now() - t0) / ROUNDS, cpu: (c.user + c.system) / 1000 / ROUNDS });
    // Stay until the parent has every result (a peer that left early would reset its neighbour's socket mid-round).
    process.on("disconnect", () => process.exit(0));
  });
} else {
  const ws = Array.from({ length: N }, (_, i) => fork(process.argv[1], ["w", String(i)]));
  const ports = await Promise.all(ws.map((w) => new Promise((r) => w.once("message", (m) => r(m.port)))));
  const res = Promise.all(ws.map((w) => new Promise((r) => w.once("message", r))));
  ws.forEach((w) => w.send({ ports }));
  const got = await res;
  // Every worker gone before printing: `npm run bench` starts its next round run when this process exits.
  await Promise.all(ws.map((w) => new Promise((r) => { w.once("exit", r); w.disconnect(); })));
  if (process.env.JSON === "1") console.log(JSON.stringify({ mode: MODE, ring: RING, workUs: +(process.env.WORK_US ?? 0), ms: got.map((r) => r.ms), cpu: got.map((r) => r.cpu) }));
  else console.log(MODE, got.map((r) => `${r.ms.toFixed(3)}ms cpu ${r.cpu.toFixed(3)}`).join(" | "));
}
