import { createCipheriv, randomBytes } from "node:crypto";
import { chacha20 } from "@noble/ciphers/chacha.js";
import { frVecRandom } from "../../node/math/fr-vec.ts";
const key = randomBytes(32); const N = 100_000;
function time(name: string, f: () => void) { f(); const t0 = performance.now(); for (let i = 0; i < 5; i++) f(); console.log(name.padEnd(40), ((performance.now() - t0) / 5).toFixed(2), "ms"); }
time("node chacha20 3.2MB", () => { const c = createCipheriv("chacha20", key, Buffer.alloc(16)); c.update(Buffer.alloc(N * 32)); });
time("noble chacha20 3.2MB", () => { chacha20(key, new Uint8Array(12), new Uint8Array(N * 32)); });
time("frVecRandom 100k (crypto rng)", () => { frVecRandom(N, (n) => randomBytes(n)); });
let c = createCipheriv("chacha20", key, Buffer.alloc(16)); const z = Buffer.alloc(65536);
time("frVecRandom 100k (node chacha rng)", () => { frVecRandom(N, (n) => c.update(n === 65536 ? z : Buffer.alloc(n))); });
