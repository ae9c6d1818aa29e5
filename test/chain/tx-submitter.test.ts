import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JsonRpcProvider, SigningKey, keccak256, toUtf8Bytes, type HDNodeWallet } from "ethers";
import { deployRegistry } from "../../node/chain/deployments.ts";
import { loadRegistryArtifact } from "../../node/chain/registry-artifact.ts";
import { RegistryClient } from "../../node/chain/registry-client.ts";
import { TxSubmitter } from "../../node/chain/tx-submitter.ts";
import { devWallet, startLocalChain, type LocalChain } from "../../node/dev/local-cluster.ts";
import { ConsortError } from "../../node/errors.ts";
import { NodeStore } from "../../node/store/node-store.ts";

/** The sender's mined transaction count, asked of the RPC itself (ethers caches a repeated call for a moment). */
let nonceOf: (address: string) => Promise<number>;

function encryptionKey(label: string): string {
  return new SigningKey(keccak256(toUtf8Bytes(`tx-submitter-test:${label}`))).compressedPublicKey;
}

/** A provider whose broadcasts fail as if the process died right after signing (the RPC never sees the transaction). */
class NoBroadcastProvider extends JsonRpcProvider {
  override async broadcastTransaction(): Promise<never> {
    throw new ConsortError("RPC_UNAVAILABLE", "the process stopped before it could broadcast", { retryable: true });
  }
}

describe("chain/tx-submitter: one transaction per intent, whatever crashes", function () {
  this.timeout(60_000);
  let workDir: string;
  let chain: LocalChain;
  let provider: JsonRpcProvider;
  let registryAddress: string;
  let store: NodeStore;

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), "tx-submitter-test-"));
    chain = await startLocalChain(join(workDir, "chain"));
    provider = new JsonRpcProvider(chain.rpcUrl, undefined, { staticNetwork: true, pollingInterval: 100 });
    nonceOf = async (address) => Number(await provider.send("eth_getTransactionCount", [address, "latest"]));
    registryAddress = (await deployRegistry(devWallet(19).connect(provider))).registry;
  });

  after(async () => {
    provider?.destroy();
    await chain?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  beforeEach(() => {
    store = NodeStore.open(":memory:");
  });

  afterEach(() => store.close());

  function submitter(wallet: HDNodeWallet, on: JsonRpcProvider = provider): TxSubmitter {
    return new TxSubmitter({ wallet: wallet.connect(on), to: registryAddress, iface: loadRegistryArtifact().iface, journal: store, receiptTimeoutMs: 20_000 });
  }

  it("a transaction signed before a crash is broadcast after the restart, not signed again", async () => {
    const wallet = devWallet(11);
    const noBroadcast = new NoBroadcastProvider(chain.rpcUrl, undefined, { staticNetwork: true });
    const before = await nonceOf(wallet.address);
    const crashed = await submitter(wallet, noBroadcast)
      .submit("register", "registerParty", [encryptionKey("a"), "http://127.0.0.1:7001"])
      .then(
        () => expect.fail("the broadcast was refused"),
        (e: unknown) => e as ConsortError,
      );
    noBroadcast.destroy();
    expect(crashed.code).to.equal("RPC_UNAVAILABLE");
    const journaled = store.getSignedTx("register")!;
    expect(journaled.nonce).to.equal(before);
    // The restarted node: a new submitter over the same journal.
    const restarted = submitter(wallet);
    expect(await restarted.rebroadcastJournaled()).to.equal(1);
    const receipt = await restarted.submit("register", "registerParty", [encryptionKey("b"), "http://127.0.0.1:7002"]);
    expect(receipt.hash).to.equal(journaled.hash);
    expect(await nonceOf(wallet.address)).to.equal(before + 1);
    // The first intent's arguments are the ones on chain: the journaled transaction was sent, not a new one.
    const registry = await RegistryClient.connect(provider, registryAddress);
    expect((await registry.getParty(wallet.address)).endpoint).to.equal("http://127.0.0.1:7001");
    expect(store.getSignedTx("register")).to.equal(undefined);
  });

  it("concurrent intents of one sender get distinct nonces and all land", async () => {
    const wallet = devWallet(12);
    const s = submitter(wallet);
    await s.submit("register", "registerParty", [encryptionKey("c"), "http://127.0.0.1:7100"]);
    const before = await nonceOf(wallet.address);
    const receipts = await Promise.all(
      [1, 2, 3, 4, 5, 6].map((i) => s.submit(`update/${i}`, "updateParty", [encryptionKey(`c${i}`), `http://127.0.0.1:${7100 + i}`])),
    );
    expect(receipts.every((r) => r.status === 1)).to.equal(true);
    expect(new Set(receipts.map((r) => r.hash)).size).to.equal(6);
    expect(await nonceOf(wallet.address)).to.equal(before + 6);
    expect(store.listSignedTxs()).to.deep.equal([]);
  });

  it("a nonce freed by a reorganisation (its mined transaction removed) is used again, so later transactions do not wait for it", async () => {
    const wallet = devWallet(16);
    const s = submitter(wallet);
    await s.submit("register", "registerParty", [encryptionKey("r"), "http://127.0.0.1:7400"]);
    const freed = await nonceOf(wallet.address);
    const fork = (await provider.send("evm_snapshot", [])) as string;
    await s.submit("update/1", "updateParty", [encryptionKey("r1"), "http://127.0.0.1:7401"]);
    // The block with update/1 leaves the chain, and its transaction with it (it was forgotten once mined).
    expect(await provider.send("evm_revert", [fork])).to.equal(true);
    expect(await nonceOf(wallet.address)).to.equal(freed);
    const receipt = await s.submit("update/2", "updateParty", [encryptionKey("r2"), "http://127.0.0.1:7402"]);
    expect(receipt.status).to.equal(1);
    expect((await provider.getTransaction(receipt.hash))?.nonce).to.equal(freed);
    expect(await nonceOf(wallet.address)).to.equal(freed + 1);
  });

  it("a call that would revert is refused before anything is signed, naming the custom error", async () => {
    const wallet = devWallet(13);
    const s = submitter(wallet);
    await s.submit("register", "registerParty", [encryptionKey("d"), "http://127.0.0.1:7200"]);
    const before = await nonceOf(wallet.address);
    const error = await s.submit("register-again", "registerParty", [encryptionKey("e"), "http://127.0.0.1:7201"]).then(
      () => expect.fail("registering twice reverts"),
      (e: unknown) => e as ConsortError,
    );
    expect(error.code).to.equal("TX_REVERTED");
    expect(error.details.error).to.equal("ConsortPartyAlreadyRegistered");
    expect(store.getSignedTx("register-again")).to.equal(undefined);
    expect(await nonceOf(wallet.address)).to.equal(before);
  });

  it("plain registry writes from one key that race for a nonce: the losers are NONCE_CONFLICT, retryable (nothing was sent)", async () => {
    const wallet = devWallet(15).connect(provider);
    const registry = await RegistryClient.connect(wallet, registryAddress);
    await registry.registerParty(encryptionKey("g"), "http://127.0.0.1:7400");
    const outcomes = await Promise.allSettled([1, 2, 3, 4].map((i) => registry.updateParty(encryptionKey(`g${i}`), `http://127.0.0.1:${7400 + i}`)));
    const lost = outcomes.filter((o) => o.status === "rejected").map((o) => (o as PromiseRejectedResult).reason as ConsortError);
    // ethers reads one pending nonce for all four within its cache window: one lands, the others collide.
    expect(lost.length).to.be.greaterThan(0);
    for (const e of lost) {
      expect(e.code, e.message).to.equal("NONCE_CONFLICT");
      expect(e.retryable).to.equal(true);
    }
  });

  it("a journaled transaction whose nonce another transaction took is dropped (TX_REPLACED, retryable), and the intent is signed again", async () => {
    const wallet = devWallet(14);
    const noBroadcast = new NoBroadcastProvider(chain.rpcUrl, undefined, { staticNetwork: true });
    await submitter(wallet, noBroadcast)
      .submit("register", "registerParty", [encryptionKey("f"), "http://127.0.0.1:7300"])
      .catch(() => undefined);
    noBroadcast.destroy();
    const lost = store.getSignedTx("register")!;
    // Another program with the same key spends that nonce first.
    const other = await wallet.connect(provider).sendTransaction({ to: wallet.address, value: 1n, nonce: lost.nonce });
    await other.wait();
    const s = submitter(wallet);
    const error = await s.submit("register", "registerParty", [encryptionKey("f"), "http://127.0.0.1:7300"]).then(
      () => expect.fail("the journaled transaction lost its nonce"),
      (e: unknown) => e as ConsortError,
    );
    expect(error.code).to.equal("TX_REPLACED");
    expect(error.retryable).to.equal(true);
    expect(store.getSignedTx("register")).to.equal(undefined);
    const receipt = await s.submit("register", "registerParty", [encryptionKey("f"), "http://127.0.0.1:7300"]);
    expect(receipt.status).to.equal(1);
    expect(receipt.hash).to.not.equal(lost.hash);
  });
});
