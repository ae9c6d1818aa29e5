// Audits a task from the chain alone and prints a readable report; exits 3 if a check failed.
//   CONSORT_TASK=1 npx hardhat run scripts/audit.ts --network localhost
import { auditTask, formatAuditReport } from "../node/chain/task-audit.ts";
import { requireEnv, runScript, scriptRegistry, scriptSigner } from "./script-env.ts";

await runScript(async () => {
  const taskId = BigInt(requireEnv("CONSORT_TASK", "the task id to audit"));
  const { signer, chainId } = await scriptSigner();
  const registry = await scriptRegistry(signer, chainId);
  const report = await auditTask(registry, taskId);
  console.log(formatAuditReport(report));
  if (!report.passed) process.exitCode = 3;
});
