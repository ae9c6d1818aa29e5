// Deploys a ConsortRegistry and records it for its chain id in deployments/.
//   npx hardhat run scripts/deploy.ts --network localhost
import { deployRegistry, saveDeployment } from "../node/chain/deployments.ts";
import { runScript, scriptSigner } from "./script-env.ts";

await runScript(async () => {
  const { signer } = await scriptSigner();
  const deployment = await deployRegistry(signer);
  const file = saveDeployment(deployment);
  console.log(`ConsortRegistry deployed at ${deployment.registry} on chain ${deployment.chainId} (block ${deployment.blockNumber}, tx ${deployment.txHash})`);
  console.log(`recorded in ${file}`);
});
