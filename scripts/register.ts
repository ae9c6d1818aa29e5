// Registers (or updates) a compute party: its signing address, its node's encryption key and endpoint.
//   CONSORT_DATA_DIR=./node-a CONSORT_ENDPOINT=http://127.0.0.1:7001 CONSORT_ACCOUNT=1 \
//     npx hardhat run scripts/register.ts --network localhost
import { resolve } from "node:path";
import { registerNodeParty } from "../node/daemon/register-node-party.ts";
import { requireEnv, runScript, scriptRegistry, scriptSigner } from "./script-env.ts";

await runScript(async () => {
  const dataDir = resolve(requireEnv("CONSORT_DATA_DIR", "the node's data directory (its encryption key is created there if missing)"));
  const endpoint = requireEnv("CONSORT_ENDPOINT", "the node's base URL, e.g. http://127.0.0.1:7001");
  const { signer, address, chainId } = await scriptSigner();
  const registry = await scriptRegistry(signer, chainId);
  const r = await registerNodeParty(registry, address, dataDir, endpoint);
  console.log(`${r.outcome}: party ${r.party} at ${r.endpoint}, encryption key ${r.encryptionKey}${r.txHash === undefined ? "" : `, tx ${r.txHash}`}`);
});
