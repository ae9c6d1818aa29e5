// Creates a task running a committed program (default: the standard total-and-mean).
//   CONSORT_PARTIES=0xA,0xB,0xC CONSORT_DATA_OWNERS=0xD,0xE,0xF CONSORT_THRESHOLD=1 \
//     [CONSORT_PROGRAM=program.json] [CONSORT_INPUT_WINDOW=3600] [CONSORT_RESULT_WINDOW=3600] \
//     npx hardhat run scripts/create-task.ts --network localhost
import { readFileSync } from "node:fs";
import { getAddress } from "ethers";
import { chainNow } from "../node/chain/rpc-provider.ts";
import { decodeProgram, encodeProgram, programHash } from "../node/program/program-encoding.ts";
import { totalAndMean } from "../node/program/standard-programs.ts";
import { requireEnv, runScript, scriptRegistry, scriptSigner } from "./script-env.ts";

await runScript(async () => {
  const list = (name: string, what: string) => requireEnv(name, what).split(",").map((a) => getAddress(a.trim()));
  const parties = list("CONSORT_PARTIES", "the comma-separated party addresses");
  const dataOwners = list("CONSORT_DATA_OWNERS", "the comma-separated data owner addresses");
  const threshold = Number(requireEnv("CONSORT_THRESHOLD", "the Shamir threshold t (2t+1 <= parties)"));
  const file = process.env.CONSORT_PROGRAM;
  const program = file === undefined ? encodeProgram(totalAndMean({ owners: dataOwners.length, valuesPerOwner: 1, bits: 64 })) : readFileSync(file);
  decodeProgram(program); // refuse to commit to bytes that are not a valid program
  const { signer, chainId, provider } = await scriptSigner();
  const registry = await scriptRegistry(signer, chainId);
  const now = await chainNow(provider as Parameters<typeof chainNow>[0]);
  const inputDeadline = now + BigInt(process.env.CONSORT_INPUT_WINDOW ?? "3600");
  const resultDeadline = inputDeadline + BigInt(process.env.CONSORT_RESULT_WINDOW ?? "3600");
  const { taskId, receipt } = await registry.createTask({ program, parties, dataOwners, threshold, inputDeadline, resultDeadline });
  console.log(`created task ${taskId} with program ${programHash(program)} in tx ${receipt.hash}`);
});
