import { randomBytes } from "@noble/hashes/utils.js";
import { ProgramBuilder } from "../../node/program/program-builder.ts";
import { programInputs } from "../../node/program/program.ts";
import { field } from "../../node/program/secret-types.ts";
import { shareInput } from "../../node/protocol/input-sharing.ts";
import { LocalNetwork } from "../../node/protocol/local-network.ts";
import { runProgram } from "../../node/protocol/program-runner.ts";
import { chunkedRng } from "../../node/protocol/round-network.ts";
const parties = 3, threshold = 1, depth = +(process.env.DEPTH ?? 1000);
const p = new ProgramBuilder("depth");
let x = p.input("a", { owner: 0, type: field() });
const y = p.input("b", { owner: 1, type: field() });
for (let i = 0; i < depth; i++) x = p.mul(x, y);
p.output("x", x);
const program = p.build();
for (let rep = 0; rep < 4; rep++) {
  const shares = Array.from({ length: parties }, () => new Map<string, Uint8Array>());
  for (const input of programInputs(program)) shareInput(program, input.name, [input.name === "a" ? 3n : 5n], { threshold, parties }, chunkedRng(randomBytes)).forEach((v, j) => shares[j]!.set(input.name, v));
  const network = new LocalNetwork({ parties, timeoutMs: 600_000 });
  const t0 = performance.now();
  const runs = await Promise.all(Array.from({ length: parties }, (_, self) => runProgram(program, { self, parties, threshold, rng: randomBytes, network: network.endpoint(self) }, shares[self]!, { resharing: (process.env.RESHARING ?? "ring") as "ring" })));
  const ms = performance.now() - t0;
  network.close();
  const got = runs[0]!.opened.get("x")![0]; const p = 21888242871839275222246405745257275088548364400416034343698204186575808495617n; let e = 3n; for (let i = 0; i < depth; i++) e = e * 5n % p; if (got !== e) throw new Error("wrong " + got);
  console.log(`${ms.toFixed(0)} ms, ${runs[0]!.rounds} rounds, ${(1000 * ms / runs[0]!.rounds / parties).toFixed(1)} µs per round per party`);
}
