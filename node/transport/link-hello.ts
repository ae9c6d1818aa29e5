/**
 * The link hello: what a party's node shows to open an upgraded frame stream
 * (./frame-server.ts) on a peer, in the request's consort-link-hello header,
 * so that the peer answers 101 (and later allocates record buffers) only
 * for a party it shares a task with.
 *
 *   offset  size  field
 *   0       1     version = 0x01
 *   1       32    chainId       uint256
 *   33      20    registry
 *   53      32    taskId        a task both parties are in (the one of the
 *                               first record the stream is opened for)
 *   85      20    from          the sender's registered address
 *   105     20    to            the recipient's registered address
 *   125     8     issuedAt      uint64, ms since the epoch
 *   133     16    nonce         random
 *   149     32    mac           HMAC-SHA256 under helloKey of bytes [0, 149)
 *
 *   helloKey = HKDF-SHA256(Z, salt = chainId || registry,
 *                          info = "consort/link-hello/v1" || min(from, to) || max(from, to), 32)
 *
 * Z is the static ECDH secret of the two parties' registered encryption
 * keys (./session-keys.ts), so only those two can make or check a hello:
 * checking one costs an HMAC once Z is cached, with no signature to
 * verify, which keeps a flood of forged hellos cheap to refuse. A hello is
 * good for HELLO_WINDOW_MS either side of the recipient's clock, and each
 * nonce is taken once within that window (verifyLinkHello's `seen`).
 * The whole is sent as base64url (242 characters).
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import { ConsortError } from "../errors.ts";
import { addressToBytes, bytesToUint256, toChecksumAddress, uint256ToBytes } from "./binary-codec.ts";

export const LINK_HELLO_VERSION = 0x01;
export const LINK_HELLO_BYTES = 181;
/** How far a hello's issuedAt may be from the recipient's clock. */
export const HELLO_WINDOW_MS = 60_000;
const MAC_OFFSET = 149;
const INFO = Buffer.from("consort/link-hello/v1", "latin1");

/** The fields of a hello. */
export interface LinkHelloFields {
  chainId: bigint;
  registry: string;
  taskId: bigint;
  from: string;
  to: string;
}

export interface ParsedLinkHello extends LinkHelloFields {
  issuedAt: number;
  nonce: string;
  /** Bytes [0, 149): what the MAC covers. */
  signed: Buffer;
  mac: Buffer;
}

function helloKey(shared: Uint8Array, chainId: Uint8Array, registry: Uint8Array, from: Uint8Array, to: Uint8Array): Buffer {
  const fromFirst = Buffer.compare(Buffer.from(from), Buffer.from(to)) < 0;
  const info = Buffer.concat([INFO, fromFirst ? from : to, fromFirst ? to : from]);
  return Buffer.from(hkdfSync("sha256", shared, Buffer.concat([chainId, registry]), info, 32));
}

/** A hello from `fields.from` to `fields.to`, with `shared` = Z of their registered encryption keys. */
export function createLinkHello(fields: LinkHelloFields, shared: Uint8Array, now = Date.now()): string {
  const chainId = uint256ToBytes(fields.chainId, "chainId");
  const registry = addressToBytes(fields.registry, "registry");
  const from = addressToBytes(fields.from, "from");
  const to = addressToBytes(fields.to, "to");
  const out = Buffer.alloc(LINK_HELLO_BYTES);
  out[0] = LINK_HELLO_VERSION;
  out.set(chainId, 1);
  out.set(registry, 33);
  out.set(uint256ToBytes(fields.taskId, "taskId"), 53);
  out.set(from, 85);
  out.set(to, 105);
  out.writeBigUInt64BE(BigInt(now), 125);
  randomBytes(16).copy(out, 133);
  createHmac("sha256", helloKey(shared, chainId, registry, from, to)).update(out.subarray(0, MAC_OFFSET)).digest().copy(out, MAC_OFFSET);
  return out.toString("base64url");
}

/** Decodes a hello without checking it: BAD_REQUEST (field consort-link-hello) if it is not one. */
export function parseLinkHello(text: string): ParsedLinkHello {
  const bytes = /^[A-Za-z0-9_-]+$/.test(text) ? Buffer.from(text, "base64url") : Buffer.alloc(0);
  if (bytes.length !== LINK_HELLO_BYTES || bytes[0] !== LINK_HELLO_VERSION) {
    throw new ConsortError("BAD_REQUEST", `consort-link-hello: expected ${LINK_HELLO_BYTES} base64url bytes of version ${LINK_HELLO_VERSION}`, {
      details: { field: "consort-link-hello" },
    });
  }
  return {
    chainId: bytesToUint256(bytes.subarray(1, 33)),
    registry: toChecksumAddress(`0x${bytes.toString("hex", 33, 53)}`, "registry"),
    taskId: bytesToUint256(bytes.subarray(53, 85)),
    from: toChecksumAddress(`0x${bytes.toString("hex", 85, 105)}`, "from"),
    to: toChecksumAddress(`0x${bytes.toString("hex", 105, 125)}`, "to"),
    issuedAt: Number(bytes.readBigUInt64BE(125)),
    nonce: bytes.toString("hex", 133, 149),
    signed: bytes.subarray(0, MAC_OFFSET),
    mac: bytes.subarray(MAC_OFFSET),
  };
}

/** Nonces taken within the window; forgets those older than it. */
export class HelloNonces {
  readonly #seen = new Map<string, number>();

  /** Whether `nonce` (issued at `issuedAt`) is new; remembers it. */
  take(nonce: string, issuedAt: number, now = Date.now()): boolean {
    if (this.#seen.size > 0) {
      for (const [n, at] of this.#seen) {
        if (at >= now - 2 * HELLO_WINDOW_MS) break;
        this.#seen.delete(n);
      }
    }
    if (this.#seen.has(nonce)) return false;
    // Insertion order is close to issue order, which keeps the pruning above a prefix scan.
    this.#seen.set(nonce, Math.max(issuedAt, now));
    return true;
  }
}

/**
 * Checks the MAC and freshness of a parsed hello (the caller has checked
 * chain, registry, recipient and task membership and found `shared`):
 * BAD_SIGNATURE if the MAC is wrong, the hello is stale or from the future,
 * or its nonce was used.
 */
export function verifyLinkHello(hello: ParsedLinkHello, shared: Uint8Array, nonces: HelloNonces, now = Date.now()): void {
  if (Math.abs(now - hello.issuedAt) > HELLO_WINDOW_MS) {
    throw new ConsortError("BAD_SIGNATURE", `the link hello of ${hello.from} was issued ${now - hello.issuedAt} ms from this node's clock (at most ${HELLO_WINDOW_MS} ms)`, {
      details: { field: "consort-link-hello", from: hello.from },
    });
  }
  const key = helloKey(
    shared,
    uint256ToBytes(hello.chainId, "chainId"),
    addressToBytes(hello.registry, "registry"),
    addressToBytes(hello.from, "from"),
    addressToBytes(hello.to, "to"),
  );
  const expected = createHmac("sha256", key).update(hello.signed).digest();
  if (!timingSafeEqual(expected, hello.mac)) {
    throw new ConsortError("BAD_SIGNATURE", `the link hello does not authenticate ${hello.from}`, { details: { field: "consort-link-hello", from: hello.from } });
  }
  if (!nonces.take(hello.nonce, hello.issuedAt, now)) {
    throw new ConsortError("BAD_SIGNATURE", `the link hello of ${hello.from} was used before`, { details: { field: "consort-link-hello", from: hello.from } });
  }
}
