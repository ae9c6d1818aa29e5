import { pino, type Bindings, type ChildLoggerOptions, type Logger } from "pino";
import { ConsortError } from "./errors.ts";

export type { Logger };

/**
 * Keys every line carries itself. pino writes a line's bindings and a log
 * call's fields side by side without merging, so a field by one of these
 * names (or by a bound name) would appear twice in one JSON object, which
 * most JSON tools (jq among them) resolve by silently keeping one.
 * `fields` is where such a field goes instead, so it is taken too.
 */
const LINE_KEYS = new Set(["level", "time", "pid", "hostname", "msg", "fields"]);

/** Field names that may carry secrets; a field moved under `fields` is one level deeper, hence the third path. */
const REDACTED_NAMES = ["privateKey", "secret", "share", "shares", "salt", "values"];

function sameJson(a: unknown, b: unknown): boolean {
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
}

/**
 * A log call's fields with none that repeat a line key or a binding: a field
 * equal to the bound value is dropped (it says the same), any other clashing
 * field moves under `fields`. Returns `fields` itself when nothing clashes.
 */
function uniqueFields(fields: Record<string, unknown>, bound: Record<string, unknown>, hasMessage: boolean): Record<string, unknown> {
  let clashes = false;
  for (const key of Object.keys(fields)) {
    if ((LINE_KEYS.has(key) && (key !== "msg" || hasMessage)) || Object.hasOwn(bound, key)) {
      clashes = true;
      break;
    }
  }
  if (!clashes) return fields;
  const kept: Record<string, unknown> = {};
  const moved: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (Object.hasOwn(bound, key)) {
      if (!sameJson(value, bound[key])) moved[key] = value;
    } else if (LINE_KEYS.has(key) && (key !== "msg" || hasMessage)) {
      moved[key] = value;
    } else {
      kept[key] = value;
    }
  }
  if (Object.keys(moved).length > 0) kept.fields = moved;
  return kept;
}

function checkBindings(bindings: Record<string, unknown>): void {
  for (const key of Object.keys(bindings)) {
    if (LINE_KEYS.has(key)) {
      throw new ConsortError("INTERNAL", `logger binding "${key}" would repeat a key every log line has; bind it under another name`, {
        details: { binding: key },
      });
    }
  }
}

/**
 * The node's structured logger (JSON lines on stdout). Every line is one
 * JSON object with unique keys: a log call's field that repeats a line key or
 * a binding is dropped when equal to it and kept under `fields` otherwise,
 * and a child's binding replaces its parent's binding of the same name.
 * Secret-bearing field names are redacted as a second line of defence; the
 * first is that no code path logs keys, shares or inputs at all.
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}, destination?: NodeJS.WritableStream): Logger {
  checkBindings(bindings);
  const root = pino(
    {
      level,
      base: { pid: process.pid, ...bindings },
      redact: {
        paths: REDACTED_NAMES.flatMap((name) => [name, `*.${name}`, `fields.*.${name}`]),
        censor: "[redacted]",
      },
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: {
        logMethod(args, method) {
          const [first, ...rest] = args as unknown[];
          if (first !== null && typeof first === "object" && !(first instanceof Error)) {
            const hasMessage = typeof rest[0] === "string";
            const fields = uniqueFields(first as Record<string, unknown>, this.bindings(), hasMessage);
            if (fields !== first) return (method as (...a: unknown[]) => void).apply(this, [fields, ...rest]);
          }
          return (method as (...a: unknown[]) => void).apply(this, args as unknown[]);
        },
      },
    },
    destination ?? process.stdout,
  );
  // Children are prototype-linked to their parent, so this override reaches
  // every descendant. pino appends a child's bindings to its parent's text;
  // a rebound name would then appear twice, so such a child is rebuilt from
  // the merged bindings instead.
  const pinoChild = root.child as unknown as (this: Logger, b: Bindings, o?: ChildLoggerOptions) => Logger;
  const chindings = pino.symbols.chindingsSym as unknown as string;
  (root as unknown as { child: unknown }).child = function child(this: Logger, childBindings: Bindings, options?: ChildLoggerOptions): Logger {
    checkBindings(childBindings);
    const parent = this.bindings();
    const rebound = Object.keys(childBindings).some((key) => Object.hasOwn(parent, key));
    if (!rebound) return pinoChild.call(this, childBindings, options);
    const made = pinoChild.call(this, {}, options);
    (made as unknown as Record<string, string>)[chindings] = "";
    pinoSetBindings.call(made, { pid: process.pid, ...parent, ...childBindings });
    return made;
  };
  // setBindings appends the same way; a rebound name replaces the old value.
  const pinoSetBindings = root.setBindings as unknown as (this: Logger, b: Bindings) => void;
  (root as unknown as { setBindings: unknown }).setBindings = function setBindings(this: Logger, newBindings: Bindings): void {
    checkBindings(newBindings);
    const current = this.bindings();
    (this as unknown as Record<string, string>)[chindings] = "";
    pinoSetBindings.call(this, { pid: process.pid, ...current, ...newBindings });
  };
  return root;
}
