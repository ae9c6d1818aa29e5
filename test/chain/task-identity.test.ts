import { expect } from "chai";
import { network } from "hardhat";
import { SigningKey, keccak256, toUtf8Bytes } from "ethers";
import { deployRegistry } from "../../node/chain/deployments.ts";
import { RegistryClient } from "../../node/chain/registry-client.ts";
import { assertTaskOnChain, type TaskIdentity } from "../../node/chain/task-identity.ts";
import { ConsortError } from "../../node/errors.ts";

const { ethers } = await network.create();

async function rejection(promise: Promise<unknown>): Promise<ConsortError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ConsortError) return error;
    throw error;
  }
  return expect.fail("expected a ConsortError");
}

describe("chain/task-identity", () => {
  let registry: RegistryClient;
  let accounts: Awaited<ReturnType<typeof ethers.getSigners>>;

  beforeEach(async () => {
    accounts = await ethers.getSigners();
    registry = await RegistryClient.connect(accounts[0]!, (await deployRegistry(accounts[0]!)).registry);
    for (const i of [1, 2, 3]) {
      await registry.connectRunner(accounts[i]!).registerParty(new SigningKey(keccak256(toUtf8Bytes(`identity-${i}`))).compressedPublicKey, `http://127.0.0.1:${7000 + i}`);
    }
  });

  async function create(program: string, owners = [4, 5]): Promise<TaskIdentity> {
    const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
    const { taskId, receipt } = await registry.connectRunner(accounts[6]!).createTask({
      program: toUtf8Bytes(program),
      parties: [1, 2, 3].map((i) => accounts[i]!.address),
      dataOwners: owners.map((i) => accounts[i]!.address),
      threshold: 1,
      inputDeadline: now + 10_000n,
      resultDeadline: now + 20_000n,
    });
    const onChain = await registry.getTask(taskId);
    return { taskId, programHash: onChain.programHash, parties: onChain.parties, dataOwners: onChain.dataOwners, threshold: 1, createdBlock: receipt.blockNumber };
  }

  it("passes for the task the chain holds under that id (addresses in any case)", async () => {
    const task = await create("program one");
    await assertTaskOnChain(registry, task);
    await assertTaskOnChain(registry, { ...task, parties: task.parties.map((p) => p.toLowerCase()) });
  });

  it("refuses with CHAIN_NOT_SYNCED (retryable) once a reorg gave the id to another task, naming what differs", async () => {
    const snapshot = (await ethers.provider.send("evm_snapshot", [])) as string;
    const removed = await create("the removed program");
    await ethers.provider.send("evm_revert", [snapshot]);

    const gone = await rejection(assertTaskOnChain(registry, removed));
    expect([gone.code, gone.retryable]).to.deep.equal(["CHAIN_NOT_SYNCED", true]);

    await ethers.provider.send("evm_mine", []);
    const replacement = await create("the new program", [5, 4]);
    expect(replacement.taskId).to.equal(removed.taskId);
    const error = await rejection(assertTaskOnChain(registry, removed));
    expect([error.code, error.retryable]).to.deep.equal(["CHAIN_NOT_SYNCED", true]);
    expect(error.details.differs).to.deep.equal(["programHash", "dataOwners", "createdBlock"]);
    // Same program, owners and parties, but created in another block: still another task.
    const sameButLater = { ...replacement, createdBlock: replacement.createdBlock - 1 };
    expect((await rejection(assertTaskOnChain(registry, sameButLater))).details.differs).to.deep.equal(["createdBlock"]);
  });
});
