/**
 * One message per peer per round, whatever the number of gates.
 *
 * The engine evaluates every gate of a program as its own asynchronous task
 * (a multiplication, a comparison, a tournament, the preprocessing). Whenever
 * a task needs communication it files a request here (what to send to each
 * party, how many elements to expect from each) and waits. The batcher
 * flushes when every task is waiting: in a tick queued from a microtask,
 * which Node runs only after the microtask queue is empty, i.e. after every
 * task has run as far as it can without the network. All requests filed by then
 * travel in ONE RoundNetwork.exchange: per peer, the concatenation of the
 * requests' vectors in (gate, sequence) order. So all independent gates of
 * one depth share a round, and rounds follow the program's depth, not its
 * gate count.
 *
 * Determinism: what a task sends and when it waits depend only on the
 * program and on the SIZES of vectors (never on secret or opened values),
 * so every party files the same requests in the same rounds; sorting by
 * (gate, per-gate sequence number) makes the concatenation order independent
 * of the order in which tasks happened to run. Labels are derived from the
 * round counter and the kinds and gates served ("prep+mul+open:3-17").
 *
 * Received vectors are checked here, once per peer and round: exact length
 * (the sum of what the requests expect from that peer) and canonicity
 * (frVecCheck). A bad message becomes PROTOCOL_INVALID_MESSAGE naming the
 * sender and the label; once a round fails, every pending and later request
 * fails with the same error.
 */
import { ConsortError, isConsortError, toConsortError } from "../errors.ts";
import { FR_VEC_ELEMENT_BYTES, frVecCheck } from "../math/fr-vec.ts";
import { labelKey, type PartyContext, type ProtocolLabel } from "./round-network.ts";

/** Gate id used for work that serves the whole program (preprocessing, outputs). */
export const PROGRAM_GATE = -1;

/** What one task wants from one round. */
export interface RoundRequest {
  /** The gate served (PROGRAM_GATE for program-wide work): orders requests and names the round. */
  readonly gate: number;
  /** Short kind for the label: "mul", "open", "deal", "prep", "commit", ... (letters only). */
  readonly kind: string;
  /**
   * Packed vector for each party (index = party; undefined = nothing);
   * send[self] is handed back as received[self]. A function is called when
   * the round goes out, in batch order (gate, then sequence), which is the
   * same at every party: ring-resharing.ts draws its pairwise masks there,
   * from one stream per key, in an order both holders of a key agree on.
   */
  readonly send: readonly (Uint8Array | undefined)[] | (() => readonly (Uint8Array | undefined)[]);
  /** Elements expected from each party (expect[self] must match send[self]). */
  readonly expect: readonly number[];
  /**
   * Called synchronously with what the round delivered to this request,
   * for every request of the round in batch order, before any request's
   * promise resolves: state it sets is visible to every task that runs
   * after the round, on every party alike (ring-resharing.ts uses it).
   */
  readonly onDelivered?: (received: readonly Uint8Array[]) => void;
}

interface Pending {
  readonly request: RoundRequest;
  /** request.send, once called if it is a function. */
  send?: readonly (Uint8Array | undefined)[];
  readonly seq: number;
  readonly resolve: (received: Uint8Array[]) => void;
  readonly reject: (error: ConsortError) => void;
}

const EMPTY = new Uint8Array(0);
const MAX_LABEL_GATE = 128;

export class RoundBatcher {
  readonly #ctx: PartyContext;
  #queue: Pending[] = [];
  #scheduled = false;
  #inFlight = false;
  #failure: ConsortError | undefined;
  #round = 0;
  readonly #seq = new Map<number, number>();
  /** Rounds run so far. */
  get rounds(): number {
    return this.#round;
  }

  constructor(ctx: PartyContext) {
    this.#ctx = ctx;
  }

  /**
   * The sequence number the next request of `gate` will get. Requests of one
   * gate are filed by that gate's own task one after another, so (gate,
   * sequence) names a request identically at every party: ring-resharing.ts
   * derives its pseudo-random masks from it.
   */
  nextSequence(gate: number): number {
    return this.#seq.get(gate) ?? 0;
  }

  /** The error that stopped this run, if any. */
  get failure(): ConsortError | undefined {
    return this.#failure;
  }

  /**
   * Files a request for the next round; resolves with one vector per party
   * (received[j] has exactly expect[j] elements, checked) once it has run.
   */
  request(request: RoundRequest): Promise<Uint8Array[]> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const n = this.#ctx.parties;
    if ((typeof request.send !== "function" && request.send.length !== n) || request.expect.length !== n) {
      return Promise.reject(new ConsortError("INTERNAL", `round request of gate ${request.gate} (${request.kind}) is not sized for ${n} parties`));
    }
    if (typeof request.send !== "function") {
      const problem = checkOwnSend(request, request.send, this.#ctx.self);
      if (problem !== undefined) return Promise.reject(problem);
    }
    const seq = this.#seq.get(request.gate) ?? 0;
    this.#seq.set(request.gate, seq + 1);
    return new Promise<Uint8Array[]>((resolve, reject) => {
      this.#queue.push({ request, seq, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    // One round at a time: requests filed while a round is on the wire wait for the next one.
    if (this.#scheduled || this.#inFlight || this.#queue.length === 0) return;
    this.#scheduled = true;
    // Flush once the microtask queue is empty, i.e. once every task has run as far as it can
    // without the network: a microtask queues a tick, and Node runs ticks only after draining
    // the microtask queue (processTicksAndRejections), whether this runs in synchronous code
    // or in a microtask. setImmediate gave the same guarantee one event-loop turn later, for an
    // extra poll of the loop and the immediate queue's bookkeeping in every round.
    queueMicrotask(this.#afterMicrotasks);
  }

  readonly #afterMicrotasks = (): void => {
    process.nextTick(this.#run);
  };

  readonly #run = (): void => {
    this.#scheduled = false;
    this.#inFlight = true;
    void this.#flush().finally(this.#landed);
  };

  readonly #landed = (): void => {
    this.#inFlight = false;
    this.#schedule();
  };

  /** Fails every pending and future request with `error` (the first failure wins). */
  fail(error: unknown): ConsortError {
    const e = this.#failure ?? toConsortError(error);
    this.#failure = e;
    const queue = this.#queue;
    this.#queue = [];
    for (const p of queue) p.reject(e);
    return e;
  }

  #label(batch: readonly Pending[]): ProtocolLabel {
    if (batch.length === 1) {
      // The latency path (one dependent product per round): the general case's answer, without its sets and sorts.
      const { kind, gate } = batch[0]!.request;
      const label = gate >= 0 ? `${kind}:${gate}` : kind;
      return { round: this.#round, gate: label.length > MAX_LABEL_GATE ? label.slice(0, MAX_LABEL_GATE) : label };
    }
    const kinds = [...new Set(batch.map((p) => p.request.kind))].sort();
    const gates = batch.map((p) => p.request.gate).filter((g) => g >= 0);
    let gate = kinds.join("+");
    if (gates.length > 0) {
      const lo = Math.min(...gates);
      const hi = Math.max(...gates);
      gate += lo === hi ? `:${lo}` : `:${lo}-${hi}`;
    }
    if (gate.length > MAX_LABEL_GATE) gate = gate.slice(0, MAX_LABEL_GATE);
    return { round: this.#round, gate };
  }

  async #flush(): Promise<void> {
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    if (this.#failure !== undefined) {
      for (const p of batch) p.reject(this.#failure);
      return;
    }
    batch.sort((a, b) => a.request.gate - b.request.gate || a.seq - b.seq);
    const { parties: n, self, network } = this.#ctx;
    try {
      for (const p of batch) {
        const send = p.request.send;
        if (typeof send !== "function") {
          p.send = send;
          continue;
        }
        const made = send();
        const problem = made.length !== n ? new ConsortError("INTERNAL", `round request of gate ${p.request.gate} (${p.request.kind}) is not sized for ${n} parties`) : checkOwnSend(p.request, made, self);
        if (problem !== undefined) throw problem;
        p.send = made;
      }
    } catch (error) {
      const e = this.fail(error);
      for (const p of batch) p.reject(e);
      return;
    }
    const label = this.#label(batch);
    this.#round++;

    // Per peer: one concatenation of every request's vector, in batch order. A peer
    // that gets no element gets no message, and a peer that owes none is not awaited:
    // by determinism, what this party sends party j is exactly what j expects from it.
    const outgoing: (Uint8Array | undefined)[] = new Array(n);
    const from: boolean[] = new Array(n);
    const expected = new Array<number>(n).fill(0);
    for (let j = 0; j < n; j++) {
      for (const p of batch) expected[j]! += p.request.expect[j]!;
      from[j] = j !== self && expected[j]! > 0;
      if (j === self) {
        outgoing[j] = undefined;
        continue;
      }
      let bytes = 0;
      for (const p of batch) bytes += p.send![j]?.length ?? 0;
      if (bytes === 0) {
        outgoing[j] = undefined;
        continue;
      }
      const out = new Uint8Array(bytes);
      let offset = 0;
      for (const p of batch) {
        const v = p.send![j];
        if (v !== undefined && v.length > 0) {
          out.set(v, offset);
          offset += v.length;
        }
      }
      outgoing[j] = out;
    }

    let received: readonly Uint8Array[];
    try {
      received = await network.exchange(label, outgoing, from);
      if (!Array.isArray(received) || received.length !== n) {
        throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `round ${labelKey(label)}: the network returned ${Array.isArray(received) ? received.length : typeof received} vectors, expected ${n}`, {
          details: { label: labelKey(label) },
        });
      }
      for (let j = 0; j < n; j++) {
        if (j === self || !from[j]) continue;
        checkPeerVector(received[j], j, expected[j]!, label);
      }
    } catch (error) {
      const e = this.fail(error);
      for (const p of batch) p.reject(e);
      return;
    }

    // Each request's slices (views, no copies); hooks first, then the promises.
    const offsets = new Array<number>(n).fill(0);
    const delivered: Uint8Array[][] = [];
    for (const p of batch) {
      const slices: Uint8Array[] = new Array(n);
      for (let j = 0; j < n; j++) {
        const count = p.request.expect[j]!;
        if (j === self) {
          slices[j] = p.send![j] ?? EMPTY;
          continue;
        }
        if (count === 0) {
          slices[j] = EMPTY;
          continue;
        }
        const start = offsets[j]!;
        const end = start + count * FR_VEC_ELEMENT_BYTES;
        slices[j] = received[j]!.subarray(start, end);
        offsets[j] = end;
      }
      delivered.push(slices);
    }
    try {
      for (let k = 0; k < batch.length; k++) batch[k]!.request.onDelivered?.(delivered[k]!);
    } catch (error) {
      const e = this.fail(error);
      for (const p of batch) p.reject(e);
      return;
    }
    for (let k = 0; k < batch.length; k++) batch[k]!.resolve(delivered[k]!);
  }
}

/** INTERNAL if what `request` sends this party itself does not match what it expects from itself. */
function checkOwnSend(request: RoundRequest, send: readonly (Uint8Array | undefined)[], self: number): ConsortError | undefined {
  const own = send[self];
  if ((own === undefined ? 0 : own.length / FR_VEC_ELEMENT_BYTES) === request.expect[self]) return undefined;
  return new ConsortError("INTERNAL", `round request of gate ${request.gate} (${request.kind}) expects ${request.expect[self]} elements from itself but sends another count`);
}

/** PROTOCOL_INVALID_MESSAGE unless `v` is a canonical packed vector of exactly `expected` elements. */
function checkPeerVector(v: unknown, party: number, expected: number, label: ProtocolLabel): void {
  const key = labelKey(label);
  if (!(v instanceof Uint8Array)) {
    throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `round ${key}: party ${party} sent no byte vector`, { details: { label: key, party } });
  }
  if (v.length !== expected * FR_VEC_ELEMENT_BYTES) {
    throw new ConsortError(
      "PROTOCOL_INVALID_MESSAGE",
      `round ${key}: party ${party} sent ${v.length} bytes, expected ${expected} field elements (${expected * FR_VEC_ELEMENT_BYTES} bytes)`,
      { details: { label: key, party, expected, gotBytes: v.length } },
    );
  }
  try {
    frVecCheck(v, `message from party ${party}`);
  } catch (cause) {
    if (!isConsortError(cause, "MATH_INVALID_ARGUMENT")) throw cause;
    const index = cause.details["index"];
    throw new ConsortError("PROTOCOL_INVALID_MESSAGE", `round ${key}: element ${String(index)} from party ${party} is not a canonical field element`, {
      cause,
      details: { label: key, party, index },
    });
  }
}
