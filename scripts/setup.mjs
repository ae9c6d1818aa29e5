#!/usr/bin/env node
// npm run setup: makes a fresh clone runnable, on any Node that can run npm.
//
// Hardhat 3 needs Node >= 22.13, and npm running on an older Node silently
// skips Hardhat's native EDR package, so dependencies must be installed with a
// new Node active. When this Node is older, install node@24 from the npm
// registry (into CONSORT_NODE_PREFIX, default /usr/local), then run npm ci
// with it first on PATH. Plain JavaScript on purpose: it must run on Node 20,
// which cannot execute TypeScript.
import { execFileSync } from "node:child_process";
import { join } from "node:path";

const MIN = [22, 13];
const isNewEnough = (version) => {
  const [major, minor] = version.replace(/^v/, "").split(".").map(Number);
  return major > MIN[0] || (major === MIN[0] && minor >= MIN[1]);
};
const run = (cmd, args, env = process.env) => execFileSync(cmd, args, { stdio: "inherit", env });

let binDir;
if (isNewEnough(process.versions.node)) {
  console.log(`setup: using Node ${process.versions.node}`);
} else {
  const prefix = process.env.CONSORT_NODE_PREFIX || "/usr/local";
  console.log(`setup: Node ${process.versions.node} is older than ${MIN.join(".")} (Hardhat 3 needs it); installing node@24 into ${prefix}`);
  try {
    run("npm", ["install", "-g", "--prefix", prefix, "node@24"]);
  } catch {
    console.error(`setup: could not install node@24 into ${prefix}; install Node >= ${MIN.join(".")} yourself (or set CONSORT_NODE_PREFIX to a writable folder) and run npm ci`);
    process.exit(1);
  }
  binDir = join(prefix, "bin");
  const version = execFileSync(join(binDir, "node"), ["-v"], { encoding: "utf8" }).trim();
  if (!isNewEnough(version)) {
    console.error(`setup: ${join(binDir, "node")} is ${version}, still older than ${MIN.join(".")}`);
    process.exit(1);
  }
  console.log(`setup: installed Node ${version}`);
}
const env = binDir === undefined ? process.env : { ...process.env, PATH: `${binDir}:${process.env.PATH ?? ""}` };
try {
  run("npm", ["ci", "--no-audit", "--no-fund"], env);
} catch {
  console.error("setup: npm ci failed (its output is above)");
  process.exit(1);
}
console.log("setup: done. Next: npm run demo, npm test");
