import { JsonRpcApiProvider, keccak256, type BaseWallet, type Interface, type Provider, type TransactionReceipt } from "ethers";
import { ConsortError } from "../errors.ts";
import { toChainError } from "./chain-errors.ts";

/** A transaction as signed, before it is broadcast. */
export interface SignedTx {
  /** What the transaction does, unique per intent (e.g. "finalize/7"): one intent, one transaction. */
  readonly key: string;
  readonly sender: string;
  readonly nonce: number;
  readonly hash: string;
  /** The signed serialized transaction, 0x-hex. */
  readonly raw: string;
  readonly signedAt: number;
}

/** Where signed transactions are kept until they are mined (the node's store implements it). */
export interface TxJournal {
  getSignedTx(key: string): SignedTx | undefined;
  listSignedTxs(): SignedTx[];
  putSignedTx(tx: SignedTx): void;
  deleteSignedTx(key: string): void;
}

export interface TxSubmitterOptions {
  /** The sender, connected to the chain's provider. */
  wallet: BaseWallet;
  /** The contract the transactions call. */
  to: string;
  iface: Interface;
  journal: TxJournal;
  /** How long to wait for a broadcast transaction's receipt before giving up this time (retryable). */
  receiptTimeoutMs: number;
  /** A journaled transaction reached the RPC (for operators' logs). */
  onBroadcast?(tx: SignedTx): void;
}

const ALREADY_KNOWN = /already known|known transaction|already imported|transaction already in|AlreadyKnown/i;
const NONCE_USED = /nonce too low|nonce has already been used|NONCE_EXPIRED|Nonce too low/i;

function messageOf(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let depth = 0; depth < 5 && e !== null && typeof e === "object"; depth++) {
    const o = e as { message?: unknown; shortMessage?: unknown; code?: unknown; error?: unknown; info?: unknown; cause?: unknown };
    for (const v of [o.message, o.shortMessage, o.code]) if (typeof v === "string") parts.push(v);
    e = o.error ?? (o.info as { error?: unknown } | undefined)?.error ?? o.cause;
  }
  return parts.join(" | ");
}

/**
 * Whether the chain has a receipt for `hash`, asked of the RPC itself: ethers
 * answers a repeated provider call from a cache for a moment, and a receipt
 * read just before the broadcast would otherwise still say "not mined".
 */
async function isMined(provider: Provider, hash: string): Promise<boolean> {
  if (provider instanceof JsonRpcApiProvider) return (await provider.send("eth_getTransactionReceipt", [hash])) !== null;
  return (await provider.getTransactionReceipt(hash)) !== null;
}

/**
 * The sender's mined transaction count, asked of the RPC itself (ethers caches a repeated call for a moment).
 * Not the pool's count: a transaction waiting for a freed nonce would hide that nonce.
 */
async function minedCount(provider: Provider, sender: string): Promise<number> {
  if (provider instanceof JsonRpcApiProvider) return Number(await provider.send("eth_getTransactionCount", [sender, "latest"]));
  return provider.getTransactionCount(sender, "latest");
}

/**
 * Sends contract transactions so that a crash at any point never sends a
 * second one for the same intent: each transaction is signed, journaled with
 * its hash and raw bytes, and only then broadcast. After a restart the
 * journaled bytes are broadcast again (the same transaction, so the chain
 * includes it at most once) and its receipt awaited. Signing is serialised,
 * and each takes the lowest nonce neither mined nor held by a journaled
 * transaction, so concurrent intents (many tasks finalizing at once) never
 * reuse one, and a nonce a reorganisation freed is filled.
 */
export class TxSubmitter {
  readonly #o: TxSubmitterOptions;
  readonly #sender: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: TxSubmitterOptions) {
    this.#o = options;
    this.#sender = options.wallet.address;
  }

  /** The journaled transaction of `key`, if one was signed and not yet settled. */
  pending(key: string): SignedTx | undefined {
    return this.#o.journal.getSignedTx(key);
  }

  /**
   * Calls `method(args)` on the contract once for `key`: signs (unless a
   * transaction for `key` is journaled already), broadcasts and waits for the
   * receipt. A revert is TX_REVERTED naming the custom error (checked with
   * eth_estimateGas before anything is signed); an RPC failure is retryable,
   * and the next call resumes with the same transaction.
   */
  async submit(key: string, method: string, args: readonly unknown[]): Promise<TransactionReceipt> {
    let tx = this.#o.journal.getSignedTx(key);
    if (tx === undefined) tx = await this.#serialised(() => this.#sign(key, method, args));
    return this.#broadcastAndWait(tx, method);
  }

  /**
   * Broadcasts every journaled transaction of this sender again (after a
   * restart), so none of their nonces stays unused and blocks the ones after
   * it; forgets those already mined or replaced. Their receipts are awaited by
   * the next submit() of their intent. Resolves with how many are still pending.
   */
  async rebroadcastJournaled(): Promise<number> {
    const provider = this.#o.wallet.provider;
    if (provider === null) return 0;
    let pending = 0;
    for (const tx of this.#o.journal.listSignedTxs()) {
      if (tx.sender.toLowerCase() !== this.#sender.toLowerCase()) continue;
      try {
        if (await isMined(provider, tx.hash)) {
          this.#o.journal.deleteSignedTx(tx.key);
          continue;
        }
        await provider.broadcastTransaction(tx.raw);
        pending++;
      } catch (error) {
        const message = messageOf(error);
        if (ALREADY_KNOWN.test(message)) pending++;
        else if (NONCE_USED.test(message)) this.#o.journal.deleteSignedTx(tx.key);
        else throw toChainError(error, this.#o.iface, "rebroadcast");
      }
    }
    return pending;
  }

  /** Forgets a journaled transaction whose intent is over (mined, or no longer wanted because the chain moved on). */
  forget(key: string): void {
    this.#o.journal.deleteSignedTx(key);
  }

  #serialised<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #sign(key: string, method: string, args: readonly unknown[]): Promise<SignedTx> {
    const { wallet, to, iface, journal } = this.#o;
    const provider = wallet.provider;
    if (provider === null) throw new ConsortError("CONFIG_INVALID", "the transaction submitter needs a wallet connected to a provider");
    const data = iface.encodeFunctionData(method, [...args]);
    // Read before the chain's count: a transaction mined and forgotten in between is counted by the chain instead.
    const journaled = new Set(journal.listSignedTxs().filter((t) => t.sender.toLowerCase() === this.#sender.toLowerCase()).map((t) => t.nonce));
    let chainNonce: number;
    let populated;
    try {
      // Estimating first turns a revert into TX_REVERTED (with the decoded custom error) before a nonce is spent.
      const gasLimit = await provider.estimateGas({ from: this.#sender, to, data });
      chainNonce = await minedCount(provider, this.#sender);
      populated = await wallet.populateTransaction({ to, data, gasLimit });
    } catch (error) {
      throw toChainError(error, iface, method);
    }
    // The lowest nonce neither used on chain nor held by a journaled transaction. Not a count kept here: a
    // reorganisation can remove a mined (and so forgotten) transaction, its nonce is free again, and every
    // transaction signed above it would wait for it forever.
    let nonce = chainNonce;
    while (journaled.has(nonce)) nonce++;
    const signedRaw = await wallet.signTransaction({ ...populated, nonce });
    const tx: SignedTx = { key, sender: this.#sender, nonce, hash: keccak256(signedRaw), raw: signedRaw, signedAt: Date.now() };
    journal.putSignedTx(tx);
    return tx;
  }

  async #broadcastAndWait(tx: SignedTx, method: string): Promise<TransactionReceipt> {
    const { wallet, iface, journal, receiptTimeoutMs } = this.#o;
    const provider = wallet.provider!;
    try {
      await provider.broadcastTransaction(tx.raw);
    } catch (error) {
      const message = messageOf(error);
      if (NONCE_USED.test(message)) {
        // Either this very transaction is mined already, or another one took its nonce.
        if (!(await isMined(provider, tx.hash).catch(() => false))) {
          journal.deleteSignedTx(tx.key);
          throw new ConsortError("TX_REPLACED", `${method} transaction ${tx.hash} lost its nonce ${tx.nonce} to another transaction; it will be signed again`, {
            retryable: true,
            details: { txHash: tx.hash, nonce: tx.nonce },
          });
        }
      } else if (!ALREADY_KNOWN.test(message)) {
        throw toChainError(error, iface, method);
      }
    }
    this.#o.onBroadcast?.(tx);
    let receipt: TransactionReceipt | null;
    try {
      receipt = await provider.waitForTransaction(tx.hash, 1, receiptTimeoutMs);
    } catch (error) {
      const e = toChainError(error, iface, method);
      if (e.code === "INTERNAL" && /timeout/i.test(messageOf(error))) {
        throw new ConsortError("TX_PENDING", `${method} transaction ${tx.hash} is not mined yet`, { retryable: true, details: { txHash: tx.hash } });
      }
      throw e;
    }
    if (receipt === null) {
      throw new ConsortError("TX_PENDING", `${method} transaction ${tx.hash} is not mined yet`, { retryable: true, details: { txHash: tx.hash } });
    }
    journal.deleteSignedTx(tx.key);
    if (receipt.status !== 1) {
      throw new ConsortError("TX_REVERTED", `${method} transaction ${tx.hash} reverted`, { details: { txHash: tx.hash } });
    }
    return receipt;
  }
}

