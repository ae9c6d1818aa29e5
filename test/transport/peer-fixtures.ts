/**
 * Parties, keys and an in-process frame link for the peer-frame tests. The
 * link is a real FrameLink that hands records to the recipient's
 * PeerSessions.receive in the same process (all crypto is real); the HTTP
 * tests use HttpFrameLink instead.
 */
import { Wallet, getAddress } from "ethers";
import { ConsortError } from "../../node/errors.ts";
import { generateEncryptionKey } from "../../node/transport/envelope.ts";
import type { EncryptionKeyPair } from "../../node/transport/envelope.ts";
import type { FrameLink } from "../../node/transport/frame-link.ts";
import { recordBytesOf } from "../../node/transport/peer-frame.ts";
import type { SealedRecord } from "../../node/transport/peer-frame.ts";
import { PeerSessions } from "../../node/transport/peer-sessions.ts";
import type { AcceptedFrame, PeerContact, PeerSessionsOptions } from "../../node/transport/peer-sessions.ts";

export const CHAIN_ID = 31337n;
export const REGISTRY = getAddress("0x" + "5e".repeat(20));
export const TASK = 7n;
export const OTHER_TASK = 8n;

export interface Party {
  name: string;
  wallet: Wallet;
  encryption: EncryptionKeyPair;
}

export function party(name: string, seed: number): Party {
  return { name, wallet: new Wallet("0x" + seed.toString(16).padStart(2, "0").repeat(32)), encryption: generateEncryptionKey() };
}

/** A directory of parties and tasks the sessions of one test share (the registry's role). */
export class World {
  readonly contacts = new Map<string, PeerContact>();
  readonly tasks = new Map<bigint, readonly string[]>();

  register(p: Party, endpoint: string): void {
    this.contacts.set(p.wallet.address, { encryptionKey: p.encryption.publicKey, endpoint });
  }

  lookup = (address: string): PeerContact => {
    const contact = this.contacts.get(address);
    if (contact === undefined) throw new ConsortError("NOT_A_PARTY", `${address} is not a registered party`);
    return contact;
  };

  parties = (taskId: bigint): readonly string[] | undefined => this.tasks.get(taskId);
}

/** Routes records to the PeerSessions registered under an endpoint, in process; keeps what it delivered. */
export class LoopbackLink implements FrameLink {
  readonly targets = new Map<string, PeerSessions>();
  readonly delivered: Buffer[] = [];
  /** When set, records are held here instead of delivered (for replay and tampering tests). */
  hold: Buffer[] | undefined;

  async deliver(endpoint: string, record: SealedRecord): Promise<void> {
    const bytes = Buffer.from(recordBytesOf(record));
    if (this.hold !== undefined) {
      this.hold.push(bytes);
      return;
    }
    const target = this.targets.get(endpoint);
    if (target === undefined) throw new ConsortError("PEER_UNREACHABLE", `nothing at ${endpoint}`, { retryable: true });
    this.delivered.push(bytes);
    await target.receive(bytes);
  }

  async close(): Promise<void> {}
}

export interface Node {
  party: Party;
  sessions: PeerSessions;
  received: AcceptedFrame[];
}

/** PeerSessions for `p`, registered in `world` at loop://name, delivering into `received`. */
export function loopNode(
  p: Party,
  world: World,
  link: LoopbackLink,
  options: Partial<PeerSessionsOptions> = {},
): Node {
  const received: AcceptedFrame[] = [];
  const sessions = new PeerSessions({
    chainId: CHAIN_ID,
    registry: REGISTRY,
    signingKey: p.wallet,
    encryptionPrivateKey: p.encryption.privateKey,
    lookupParty: world.lookup,
    taskParties: world.parties,
    deliver: (frame) => {
      received.push(frame);
    },
    timeoutMs: 2_000,
    link,
    ...options,
  });
  const endpoint = `loop://${p.name}`;
  world.register(p, endpoint);
  link.targets.set(endpoint, sessions);
  return { party: p, sessions, received };
}

/** The ConsortError `promise` rejects with (fails the test if it resolves or throws something else). */
export async function rejection(promise: Promise<unknown>): Promise<ConsortError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ConsortError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

/** The ConsortError `f` throws. */
export function thrown(f: () => unknown): ConsortError {
  try {
    f();
  } catch (error) {
    if (error instanceof ConsortError) return error;
    throw error;
  }
  throw new Error("expected a throw");
}
