import { createRequire } from "node:module";
import { configVariable, defineConfig } from "hardhat/config";
import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";

// No compiler downloads work on our machines: compile with the npm `solc`
// package's soljson.js, which Hardhat runs as a WASM compiler. The version
// below must equal the pinned `solc` version in package.json.
const require = createRequire(import.meta.url);
const SOLC_VERSION = "0.8.30";

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers],
  solidity: {
    version: SOLC_VERSION,
    path: require.resolve("solc/soljson.js"),
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: "prague",
    },
  },
  paths: {
    tests: { mocha: "test" },
  },
  test: {
    mocha: { timeout: 120_000 },
  },
  networks: {
    // The embedded chain `npm run demo` serves over JSON-RPC: blocks are mined
    // on every transaction and also every second, so nodes that wait for a
    // confirmation see one without further traffic.
    consortLocal: {
      type: "edr-simulated",
      chainType: "l1",
      mining: { auto: true, interval: 1_000 },
    },
    localhost: {
      type: "http",
      chainType: "l1",
      url: "http://127.0.0.1:8545",
    },
    // Any other EVM chain: CONSORT_RPC_URL and CONSORT_PRIVATE_KEY are read
    // only when a script runs with --network remote.
    remote: {
      type: "http",
      chainType: "l1",
      url: configVariable("CONSORT_RPC_URL"),
      accounts: [configVariable("CONSORT_PRIVATE_KEY")],
    },
  },
});
