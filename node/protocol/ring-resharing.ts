/**
 * Degree reduction for three parties and t = 1 with one message per party
 * instead of two: each party sends one masked element per product to ONE
 * neighbour (T. Araki, J. Furukawa, Y. Lindell, A. Nof, K. Ohara,
 * "High-Throughput Semi-Honest Secure Three-Party Computation with an
 * Honest Majority", CCS 2016, §2-3), and the resulting replicated sharing
 * is turned back into a Shamir sharing locally (R. Cramer, I. Damgård,
 * Y. Ishai, "Share Conversion, Pseudorandom Secret-Sharing and Applications
 * to Secure Computation", TCC 2005, §3). Round messages halve against GRR
 * (./multiplication.ts): 3 × 32 bytes per product instead of 6 × 32, and
 * each party writes and reads one frame per round instead of two, which on
 * a loaded 2-core machine is most of a round's latency.
 *
 * Party i (0-based, Shamir point x_i = i + 1) holds degree-1 shares x_i, y_i.
 *
 *   1. d_i = x_i · y_i is a degree-2 share: xy = Σ λ_i d_i, λ = (3, -3, 1).
 *   2. z_i = λ_i d_i + α_i, where α is a pseudo-random sharing of zero
 *      (CDI05 PRSS, AFLNO16 §2.1): α_i = F(k_i, n) - F(k_{i-1}, n), with
 *      k_i known to parties i and i+1 only, and n the position in F's
 *      stream (below), never used twice in a run. Σ α_i = 0, so Σ z_i = xy.
 *   3. Party i sends z_i to party i-1 and receives z_{i+1} from party i+1:
 *      now every z_k is held by parties k and k-1, i.e. by all but k+1 (a
 *      replicated sharing of xy).
 *   4. CDI05's conversion: with f_k(X) = 1 - X / x_{k+1} (f_k(0) = 1,
 *      f_k(x_{k+1}) = 0), F(X) = Σ_k z_k f_k(X) has degree 1 and F(0) = xy;
 *      party i computes its share F(x_i) = z_i f_i(x_i) + z_{i+1} f_{i+1}(x_i)
 *      from the two values it holds (the third term vanishes at x_i).
 *
 * Privacy (semi-honest, one corrupted party i): the only message it sees,
 * z_{i+1}, is masked by F(k_{i+1}, n), whose key only parties i+1 and i+2
 * hold, so it is pseudo-random and independent of everything else; its new
 * share F(x_i) is computed from z_i and z_{i+1} alone and reveals nothing
 * about xy, whose third additive part z_{i+2} it never sees.
 *
 * Keys: k_i is a fresh random element party i sends party i+1 (over the
 * transport's pairwise encryption) in the round of the run's first product,
 * so masks never repeat across runs. That first round of products still
 * uses GRR; the switch happens after it at every party alike
 * (RoundRequest.onDelivered).
 * F is the ChaCha20 keystream (RFC 8439) under SHA-256(domain || k), read
 * as uniform field elements by rejection sampling (frVecRandom): one stream
 * per key and run, consumed request by request in the round's batch order
 * (gate, then sequence), which every party shares, so n in step 2 is the
 * position in the stream.
 */
import { createCipheriv, createSecretKey, hash } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { ConsortError } from "../errors.ts";
import { FR_MODULUS, Fr } from "../math/field.ts";
import { FR_VEC_ELEMENT_BYTES, frVecLinearCombination, frVecRandom } from "../math/fr-vec.ts";
import type { Rng } from "../math/rng.ts";
import { lagrangeAtZero, partyX } from "../math/shamir.ts";
import { PROGRAM_GATE, type RoundBatcher } from "./round-batcher.ts";
import type { PartyContext } from "./round-network.ts";

const KEY_DOMAIN = Buffer.from("consort/ring-resharing-key/v1", "latin1");
/** Zeros ChaCha20 encrypts into keystream (read-only; requests are at most this long). */
const ZEROS = Buffer.alloc(64 * 1024);

/** Whether ring resharing applies: exactly three parties, t = 1. */
export function ringResharingApplies(ctx: Pick<PartyContext, "parties" | "threshold">): boolean {
  return ctx.parties === 3 && ctx.threshold === 1;
}

/** The PRF key of a pairwise seed (a field element's 32 bytes). */
function prfKey(seed: Uint8Array): KeyObject {
  return createSecretKey(hash("sha256", Buffer.concat([KEY_DOMAIN, seed]), "buffer"));
}

/** Keystream a mask stream computes ahead: one cipher call serves a small request's next ~128 masks. */
const KEYSTREAM_AHEAD = 4096;

/**
 * F(key) as an Rng: the RFC 8439 ChaCha20 keystream with block counter 0
 * and an all-zero nonce. Each key is fresh per run, and each run reads its
 * stream once, front to back. Small requests (a round of one product asks
 * for 32 bytes) are served from KEYSTREAM_AHEAD bytes computed at once: a
 * cipher call costs ~5-9 µs whatever its length up to a few KiB, which was
 * a tenth of a party's engine time per one-element round. The bytes handed
 * out are exactly the stream's next bytes either way.
 */
export function ringMaskStream(key: KeyObject): Rng {
  // OpenSSL's chacha20 IV is the 32-bit little-endian block counter followed by the 96-bit nonce.
  const cipher = createCipheriv("chacha20", key, Buffer.alloc(16));
  let ahead: Buffer = Buffer.alloc(0);
  let at = 0;
  return (byteLength: number) => {
    if (byteLength <= ahead.length - at) {
      at += byteLength;
      return ahead.subarray(at - byteLength, at);
    }
    const out = new Uint8Array(byteLength);
    // What is left of the computed keystream first, then the cipher itself.
    const left = ahead.length - at;
    out.set(ahead.subarray(at), 0);
    let filled = left;
    while (filled < byteLength) {
      const want = byteLength - filled;
      if (want < KEYSTREAM_AHEAD) {
        ahead = cipher.update(ZEROS.subarray(0, KEYSTREAM_AHEAD));
        out.set(ahead.subarray(0, want), filled);
        at = want;
        filled += want;
      } else {
        const size = Math.min(ZEROS.length, want);
        out.set(cipher.update(ZEROS.subarray(0, size)), filled);
        ahead = Buffer.alloc(0);
        at = 0;
        filled += size;
      }
    }
    return out;
  };
}

/**
 * CDI05 coefficients of party `self`: f_self(x_self) for the value it
 * holds itself and f_{self+1}(x_self) for the one it receives.
 */
export function ringConversionCoefficients(self: number): readonly [bigint, bigint] {
  const x = (i: number) => partyX(((i % 3) + 3) % 3);
  const f = (k: number, at: bigint) => Fr.sub(1n, Fr.mul(at, Fr.inv(x(k + 1))));
  return [f(self, x(self)), f(self + 1, x(self))];
}

/** The per-run state of ring resharing at one party: its two pairwise keys once the first round is over. */
export class RingResharing {
  readonly #batcher: RoundBatcher;
  readonly #next: number;
  readonly #previous: number;
  readonly #lambda: bigint;
  readonly #coefficients: readonly [bigint, bigint];
  /** z's combination of (d_self, F(k_self), F(k_{self-1})): (λ_self, 1, -1), one pass instead of three. */
  readonly #maskCoefficients: readonly [bigint, bigint, bigint];
  readonly #rng: Rng;
  #started = false;
  /** F(k_self): k_self is shared with party self + 1; set by start(). */
  #own: Rng | undefined;
  /** F(k_{self-1}), from party self - 1's key; undefined until the first round is over. */
  #previousMasks: Rng | undefined;

  /** Ring resharing for one run; start() exchanges its keys. */
  constructor(batcher: RoundBatcher, ctx: PartyContext) {
    if (!ringResharingApplies(ctx)) {
      throw new ConsortError("INTERNAL", `ring resharing needs n = 3 and t = 1, not n = ${ctx.parties}, t = ${ctx.threshold}`);
    }
    this.#batcher = batcher;
    this.#next = (ctx.self + 1) % 3;
    this.#previous = (ctx.self + 2) % 3;
    this.#lambda = lagrangeAtZero([0, 1, 2])[ctx.self]!;
    this.#coefficients = ringConversionCoefficients(ctx.self);
    // Signed (λ is 3, -3 or 1): products by small integers, where r - 3 and r - 1 cost 254-bit ones.
    this.#maskCoefficients = [this.#lambda > FR_MODULUS / 2n ? this.#lambda - FR_MODULUS : this.#lambda, 1n, -1n];
    this.#rng = ctx.rng;
  }

  /**
   * Files the key exchange for the next round (once; later calls do nothing).
   * reshare() in ./multiplication.ts calls it with the run's first product,
   * which itself falls back to GRR: the keys travel in a round the run has
   * anyway, and a program without products sends none.
   */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const seed = frVecRandom(1, this.#rng);
    this.#own = ringMaskStream(prfKey(seed));
    const send: (Uint8Array | undefined)[] = [undefined, undefined, undefined];
    send[this.#next] = seed;
    const expect = [0, 0, 0];
    expect[this.#previous] = 1;
    this.#batcher
      .request({
        gate: PROGRAM_GATE,
        kind: "seed",
        send,
        expect,
        onDelivered: (received) => {
          this.#previousMasks = ringMaskStream(prfKey(received[this.#previous]!));
        },
      })
      // A failed round fails the run through the batcher; nothing waits on this promise.
      .catch(() => undefined);
  }

  /** Whether the keys are in (after the run's first round, at every party alike). */
  get ready(): boolean {
    return this.#previousMasks !== undefined;
  }

  /**
   * Degree reduction of `local` (degree-2 shares) after one round in which
   * this party sends one vector to party self - 1 and receives one from
   * party self + 1. Only once `ready`.
   */
  async reshare(gate: number, local: Uint8Array): Promise<Uint8Array> {
    const previous = this.#previousMasks;
    const own = this.#own;
    if (previous === undefined || own === undefined) throw new ConsortError("INTERNAL", "ring resharing used before its keys were exchanged");
    const count = local.length / FR_VEC_ELEMENT_BYTES;
    if (count === 0) return new Uint8Array(0);
    let z: Uint8Array | undefined;
    const expect = [0, 0, 0];
    expect[this.#next] = count;
    const received = await this.#batcher.request({
      gate,
      kind: "mul",
      expect,
      // Drawn when the round goes out, in batch order: the holders of a key read its stream alike.
      send: () => {
        const mine = frVecRandom(count, own);
        const theirs = frVecRandom(count, previous);
        // z_self = λ_self d_self + F(k_self) - F(k_{self-1}).
        z = frVecLinearCombination([local, mine, theirs], this.#maskCoefficients);
        const send: (Uint8Array | undefined)[] = [undefined, undefined, undefined];
        send[this.#previous] = z;
        return send;
      },
    });
    return frVecLinearCombination([z!, received[this.#next]!], this.#coefficients);
  }
}

const rings = new WeakMap<RoundBatcher, RingResharing>();

/** Makes every degree reduction of `batcher`'s run use ring resharing once its keys are in. */
export function attachRingResharing(batcher: RoundBatcher, ctx: PartyContext): RingResharing {
  const ring = new RingResharing(batcher, ctx);
  rings.set(batcher, ring);
  return ring;
}

/** The ring resharing of `batcher`'s run, if it has one. */
export function ringResharingOf(batcher: RoundBatcher): RingResharing | undefined {
  return rings.get(batcher);
}
