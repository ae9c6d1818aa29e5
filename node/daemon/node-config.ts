import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { getAddress, type Wallet } from "ethers";
import { loadSigningKey } from "../chain/signing-key.ts";
import { z } from "zod";
import { ConsortError } from "../errors.ts";

const address = z.string().refine((s) => {
  try {
    getAddress(s);
    return true;
  } catch {
    return false;
  }
}, "must be a 0x-prefixed 20-byte address");

/** The node's config file, as JSON. Paths are relative to the file's folder. */
export const nodeConfigSchema = z
  .object({
    // The provider speaks JSON-RPC over http(s) only (node/chain/rpc-provider.ts).
    rpcUrl: z.url({ protocol: /^(http|https)$/ }),
    registry: address.optional(),
    deploymentsDir: z.string().min(1).optional(),
    privateKeyFile: z.string().min(1).optional(),
    dataDir: z.string().min(1),
    host: z.string().min(1).default("127.0.0.1"),
    port: z.number().int().min(0).max(65_535),
    publicUrl: z.url({ protocol: /^https?$/ }).optional(),
    confirmations: z.number().int().min(0).max(1_000).default(1),
    pollIntervalMs: z.number().int().min(50).max(600_000).default(1_000),
    protocolTimeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
    takeoverDelayMs: z.number().int().min(0).max(3_600_000).default(10_000),
    maxMessageBytes: z
      .number()
      .int()
      .min(1_024)
      .max(1 << 30)
      .default(64 * 1024 * 1024),
    // Keep maxConnections below the process's open-file limit (ulimit -n), or the kernel refuses sockets first.
    maxConnections: z.number().int().min(16).max(1_000_000).default(1_024),
    // Behind a reverse proxy every client has the proxy's address: raise this to maxConnections there.
    maxConnectionsPerSource: z.number().int().min(1).max(1_000_000).default(256),
    logLevel: z.enum(["trace", "debug", "info", "warn", "error", "silent"]).default("info"),
  })
  .strict();

export type NodeConfigInput = z.input<typeof nodeConfigSchema>;

/** Validated, frozen node settings. Holds no secret: `signer` lives in NodeSecrets. */
export interface NodeConfig {
  readonly rpcUrl: string;
  readonly registry: string | undefined;
  readonly deploymentsDir: string | undefined;
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly publicUrl: string;
  readonly confirmations: number;
  readonly pollIntervalMs: number;
  readonly protocolTimeoutMs: number;
  readonly takeoverDelayMs: number;
  readonly maxMessageBytes: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerSource: number;
  readonly logLevel: "trace" | "debug" | "info" | "warn" | "error" | "silent";
}

export interface NodeSecrets {
  /** The party's Ethereum key: its registered signing address signs every message and attestation. */
  readonly wallet: Wallet;
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`).join("; ");
}

/**
 * Validates raw settings (already merged from file and flags) once, resolves
 * paths against `baseDir`, and returns frozen config plus the secrets.
 */
export function parseNodeConfig(raw: unknown, baseDir: string, env: NodeJS.ProcessEnv = process.env): { config: NodeConfig; secrets: NodeSecrets } {
  const parsed = nodeConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConsortError("CONFIG_INVALID", `invalid node config: ${describeIssues(parsed.error)}`);
  }
  const c = parsed.data;
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const wallet = loadSigningKey(c.privateKeyFile === undefined ? undefined : at(c.privateKeyFile), env);
  const config: NodeConfig = Object.freeze({
    rpcUrl: c.rpcUrl,
    registry: c.registry === undefined ? undefined : getAddress(c.registry),
    deploymentsDir: c.deploymentsDir === undefined ? undefined : at(c.deploymentsDir),
    dataDir: at(c.dataDir),
    host: c.host,
    port: c.port,
    publicUrl: (c.publicUrl ?? `http://${c.host}:${c.port}`).replace(/\/+$/, ""),
    confirmations: c.confirmations,
    pollIntervalMs: c.pollIntervalMs,
    protocolTimeoutMs: c.protocolTimeoutMs,
    takeoverDelayMs: c.takeoverDelayMs,
    maxMessageBytes: c.maxMessageBytes,
    maxConnections: c.maxConnections,
    maxConnectionsPerSource: c.maxConnectionsPerSource,
    logLevel: c.logLevel,
  });
  return { config, secrets: Object.freeze({ wallet }) };
}

/** Reads a JSON config file and applies `overrides` (from command-line flags) on top. */
export function loadNodeConfigFile(
  file: string,
  overrides: Partial<NodeConfigInput> = {},
  env: NodeJS.ProcessEnv = process.env,
): { config: NodeConfig; secrets: NodeSecrets } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (cause) {
    throw new ConsortError("CONFIG_INVALID", `cannot read the config file ${file}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConsortError("CONFIG_INVALID", `the config file ${file} must hold a JSON object`);
  }
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return parseNodeConfig({ ...(raw as object), ...defined }, dirname(resolve(file)), env);
}
