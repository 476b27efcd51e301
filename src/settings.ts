/**
 * Service settings: command-line flags first, then OPAMP_GITOPS_* environment variables, then
 * built-in defaults. This is the only file that reads the environment. Settings are checked
 * once here, and a bad one is reported by name.
 */
import { readFileSync } from "node:fs";

export interface Settings {
  opampHost: string;
  opampPort: number;
  redisUrl: string;
  redisPrefix: string;
  /** Bearer tokens accepted on the OpAMP port; empty means open. */
  opampTokens: string[];
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  maxMessageBytes: number;
  maxConnections: number;
  logLevel: string;
}

/** Flag values as commander gives them (all optional strings). */
export interface SettingsFlags {
  opampListen?: string;
  redis?: string;
  redisPrefix?: string;
  opampTokensFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  maxMessageBytes?: string;
  maxConnections?: string;
  logLevel?: string;
}

export class SettingsError extends Error {
  readonly code = "SETTINGS_INVALID";
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`invalid setting ${setting}: ${message}`);
    this.name = "SettingsError";
  }
}

const ENV: Record<keyof SettingsFlags, string> = {
  opampListen: "OPAMP_GITOPS_OPAMP_LISTEN",
  redis: "OPAMP_GITOPS_REDIS",
  redisPrefix: "OPAMP_GITOPS_REDIS_PREFIX",
  opampTokensFile: "OPAMP_GITOPS_OPAMP_TOKENS_FILE",
  tlsCert: "OPAMP_GITOPS_TLS_CERT",
  tlsKey: "OPAMP_GITOPS_TLS_KEY",
  tlsClientCa: "OPAMP_GITOPS_TLS_CLIENT_CA",
  maxMessageBytes: "OPAMP_GITOPS_MAX_MESSAGE_BYTES",
  maxConnections: "OPAMP_GITOPS_MAX_CONNECTIONS",
  logLevel: "OPAMP_GITOPS_LOG_LEVEL",
};

/** Resolves and checks every setting. Throws SettingsError naming the first bad one. */
export function loadSettings(flags: SettingsFlags, env: NodeJS.ProcessEnv = process.env): Settings {
  const get = (key: keyof SettingsFlags): string | undefined => flags[key] ?? env[ENV[key]];
  const listen = get("opampListen") ?? "0.0.0.0:4320";
  const m = /^(.*):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[2]);
  if (!m?.[1] || port > 65535)
    throw new SettingsError("--opamp-listen", `"${listen}" is not host:port`);
  const positive = (key: keyof SettingsFlags, flag: string, fallback: number) => {
    const raw = get(key);
    const value = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(value) || value < 1)
      throw new SettingsError(flag, `"${raw}" is not a positive integer`);
    return value;
  };
  const read = (key: keyof SettingsFlags, flag: string): Buffer | undefined => {
    const path = get(key);
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new SettingsError(flag, `cannot read ${path}: ${(err as Error).message}`);
    }
  };
  const tokens = read("opampTokensFile", "--opamp-tokens-file");
  const cert = read("tlsCert", "--tls-cert");
  const key = read("tlsKey", "--tls-key");
  const clientCa = read("tlsClientCa", "--tls-client-ca");
  if (Boolean(cert) !== Boolean(key))
    throw new SettingsError("--tls-cert/--tls-key", "give both or neither");
  if (clientCa && !cert)
    throw new SettingsError("--tls-client-ca", "needs --tls-cert and --tls-key");
  const redisUrl = get("redis") ?? "redis://127.0.0.1:6379";
  if (!/^rediss?:\/\//.test(redisUrl))
    throw new SettingsError("--redis", `"${redisUrl}" is not a redis:// URL`);
  return {
    opampHost: m[1].replace(/^\[(.*)\]$/, "$1"),
    opampPort: port,
    redisUrl,
    redisPrefix: get("redisPrefix") ?? "opamp-gitops",
    opampTokens: tokens
      ? tokens
          .toString("utf8")
          .split(/\r?\n/)
          .map((l) => l.trim())
          .filter((l) => l && !l.startsWith("#"))
      : [],
    ...(cert && key ? { tls: { cert, key, ...(clientCa ? { clientCa } : {}) } } : {}),
    maxMessageBytes: positive("maxMessageBytes", "--max-message-bytes", 16 * 1024 * 1024),
    maxConnections: positive("maxConnections", "--max-connections", 50_000),
    logLevel: get("logLevel") ?? "info",
  };
}
