/** `--name <positive integer>` from the command line, or `fallback` when absent (the micro-benchmarks' options). */
export function benchArgument(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} needs a positive integer`);
  return value;
}
