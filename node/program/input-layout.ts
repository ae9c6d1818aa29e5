import { ConsortError } from "../errors.ts";
import { frVecLength, frVecSlice } from "../math/fr-vec.ts";
import { programInputs, type InputGate, type Program } from "./program.ts";

/** One data owner's inputs, in program order, and where each sits in its share vector. */
export interface OwnerInputLayout {
  readonly owner: number;
  readonly inputs: readonly { readonly gate: InputGate; readonly offset: number }[];
  /** Total field elements the owner shares (sum of its inputs' lengths). */
  readonly length: number;
}

/**
 * A data owner sends each party ONE share vector: the concatenation of its
 * inputs' shares in program order. Both the data owner's client and the node
 * derive the layout from the committed program alone, so they agree.
 */
export function ownerInputLayout(program: Program, owner: number): OwnerInputLayout {
  const inputs: { gate: InputGate; offset: number }[] = [];
  let offset = 0;
  for (const gate of programInputs(program)) {
    if (gate.owner !== owner) continue;
    inputs.push({ gate, offset });
    offset += gate.length;
  }
  if (inputs.length === 0) {
    throw new ConsortError("PROGRAM_INVALID", `the program has no input for data owner #${owner}`, { details: { owner } });
  }
  return { owner, inputs, length: offset };
}

/** Splits an owner's packed share vector (node/math/fr-vec.ts) into its named inputs. */
export function splitOwnerVector(layout: OwnerInputLayout, packed: Uint8Array): Map<string, Uint8Array> {
  if (frVecLength(packed) !== layout.length) {
    throw new ConsortError("BAD_REQUEST", `data owner #${layout.owner} sent ${frVecLength(packed)} values; the program expects ${layout.length}`);
  }
  const out = new Map<string, Uint8Array>();
  for (const { gate, offset } of layout.inputs) out.set(gate.name, frVecSlice(packed, offset, offset + gate.length));
  return out;
}
