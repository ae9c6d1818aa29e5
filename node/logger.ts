import { pino, type Logger } from "pino";

export type { Logger };

/**
 * The node's structured logger (JSON lines on stdout). Secret-bearing field
 * names are redacted as a second line of defence; the first is that no code
 * path logs keys, shares or inputs at all.
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid, ...bindings },
      redact: {
        paths: ["privateKey", "*.privateKey", "secret", "*.secret", "share", "*.share", "shares", "*.shares", "salt", "*.salt", "values", "*.values"],
        censor: "[redacted]",
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? process.stdout,
  );
}
