import { ConsortError } from "../errors.ts";
import { programInputs, type InputGate, type Program } from "../program/program.ts";

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

/** Splits an owner's share vector into its named inputs. */
export function splitOwnerVector(layout: OwnerInputLayout, values: readonly bigint[]): Map<string, bigint[]> {
  if (values.length !== layout.length) {
    throw new ConsortError("BAD_REQUEST", `data owner #${layout.owner} sent ${values.length} values; the program expects ${layout.length}`);
  }
  const out = new Map<string, bigint[]>();
  for (const { gate, offset } of layout.inputs) out.set(gate.name, values.slice(offset, offset + gate.length));
  return out;
}
