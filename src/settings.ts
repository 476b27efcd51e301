/**
 * Service settings: command-line flags first, then OPAMP_GITOPS_* environment variables, then
 * an optional settings file (`--settings`, YAML or JSON, keys are the flags in camelCase),
 * then built-in defaults. This is the only file that reads the environment. Settings are
 * checked once here, against schemas/settings.schema.json, and a bad one is reported by name
 * and by where it came from.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { checkBranchName } from "./sync/index.js";
import { loadYaml, parseDuration, validateSettings } from "./validate/index.js";

export interface Settings {
  /** Fleet repository: a local path or an http(s) URL; undefined runs the OpAMP server alone. */
  repo?: string;
  branch: string;
  /** Sub-folder of the repository holding fleet.yaml and groups/. */
  path?: string;
  stateDir: string;
  pollIntervalMs: number;
  /** Git credentials for a remote: a token read from a file or an environment variable. */
  gitTokenFile?: string;
  gitTokenEnv?: string;
  apiHost: string;
  apiPort: number;
  /** Bearer tokens for the admin API; empty means open (it listens on 127.0.0.1 by default). */
  apiTokens: string[];
  /** Shared secret of POST /hooks/git; undefined disables the webhook. */
  webhookSecret?: string;
  /** "branch": the orphan status branch (default); "folder": status/ on the config branch. */
  statusMode: "branch" | "folder";
  statusBranch: string;
  statusIntervalMs: number;
  /** Agents offline for longer than this leave the status branch, ms. Default 7 days. */
  statusRetentionMs: number;
  /** How agents' effective configs reach the status branch. Default "redacted". */
  statusEffectiveConfig: "full" | "redacted" | "hash" | "none";
  opampHost: string;
  opampPort: number;
  redisUrl: string;
  redisPrefix: string;
  /** Bearer tokens accepted on the OpAMP port; empty means open. */
  opampTokens: string[];
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /**
   * What connection-settings offers tell agents: the OpAMP URL they should use and, for a
   * wss:// or https:// URL, the PEM CA bundle they must verify it with. Undefined: offers
   * carry no endpoint (only the heartbeat interval).
   */
  advertise?: { url: string; ca?: Buffer };
  maxMessageBytes: number;
  maxConnections: number;
  /**
   * A server process that has not refreshed its liveness key in Redis for this long is dead:
   * its agents that did not come back are marked disconnected, ms. Default 15 s.
   */
  replicaTimeoutMs: number;
  logLevel: string;
}

/** Flag values as commander gives them (all optional strings). */
export interface SettingsFlags {
  repo?: string;
  branch?: string;
  path?: string;
  stateDir?: string;
  pollInterval?: string;
  gitTokenFile?: string;
  gitTokenEnv?: string;
  apiListen?: string;
  apiTokensFile?: string;
  webhookSecretFile?: string;
  statusMode?: string;
  statusBranch?: string;
  statusInterval?: string;
  statusRetention?: string;
  statusEffectiveConfig?: string;
  opampListen?: string;
  redis?: string;
  redisPrefix?: string;
  opampTokensFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  advertiseUrl?: string;
  advertiseCa?: string;
  maxMessageBytes?: string;
  maxConnections?: string;
  replicaTimeout?: string;
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

/** The environment variable of each setting. */
export const SETTING_ENV: Record<keyof SettingsFlags, string> = {
  repo: "OPAMP_GITOPS_REPO",
  branch: "OPAMP_GITOPS_BRANCH",
  path: "OPAMP_GITOPS_PATH",
  stateDir: "OPAMP_GITOPS_STATE_DIR",
  pollInterval: "OPAMP_GITOPS_POLL_INTERVAL",
  gitTokenFile: "OPAMP_GITOPS_GIT_TOKEN_FILE",
  gitTokenEnv: "OPAMP_GITOPS_GIT_TOKEN_ENV",
  apiListen: "OPAMP_GITOPS_API_LISTEN",
  apiTokensFile: "OPAMP_GITOPS_API_TOKENS_FILE",
  webhookSecretFile: "OPAMP_GITOPS_WEBHOOK_SECRET_FILE",
  statusMode: "OPAMP_GITOPS_STATUS_MODE",
  statusBranch: "OPAMP_GITOPS_STATUS_BRANCH",
  statusInterval: "OPAMP_GITOPS_STATUS_INTERVAL",
  statusRetention: "OPAMP_GITOPS_STATUS_RETENTION",
  statusEffectiveConfig: "OPAMP_GITOPS_STATUS_EFFECTIVE_CONFIG",
  opampListen: "OPAMP_GITOPS_OPAMP_LISTEN",
  redis: "OPAMP_GITOPS_REDIS",
  redisPrefix: "OPAMP_GITOPS_REDIS_PREFIX",
  opampTokensFile: "OPAMP_GITOPS_OPAMP_TOKENS_FILE",
  tlsCert: "OPAMP_GITOPS_TLS_CERT",
  tlsKey: "OPAMP_GITOPS_TLS_KEY",
  tlsClientCa: "OPAMP_GITOPS_TLS_CLIENT_CA",
  advertiseUrl: "OPAMP_GITOPS_ADVERTISE_URL",
  advertiseCa: "OPAMP_GITOPS_ADVERTISE_CA",
  maxMessageBytes: "OPAMP_GITOPS_MAX_MESSAGE_BYTES",
  maxConnections: "OPAMP_GITOPS_MAX_CONNECTIONS",
  replicaTimeout: "OPAMP_GITOPS_REPLICA_TIMEOUT",
  logLevel: "OPAMP_GITOPS_LOG_LEVEL",
};

/** The tokens of a tokens file: one per line, blank lines and `#` comments skipped. */
function tokenLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
}

/**
 * Checks --advertise-url and picks the CA offered with it. A wss:// or https:// URL needs a
 * CA: the Collector supervisor turns certificate checks off when an offer carries none. The
 * CA is --advertise-ca, else the serving chain (--tls-cert) when this process terminates TLS.
 */
function advertised(
  url: string | undefined,
  ca: Buffer | undefined,
  servingChain: Buffer | undefined,
): Settings["advertise"] {
  if (url === undefined || url === "") {
    if (ca) throw new SettingsError("--advertise-ca", "needs --advertise-url");
    return undefined;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new SettingsError(
      "--advertise-url",
      `"${url}" is not a URL such as wss://opamp.example.com/v1/opamp`,
    );
  }
  const scheme = parsed.protocol.slice(0, -1);
  if (!["ws", "wss", "http", "https"].includes(scheme) || parsed.hostname === "")
    throw new SettingsError(
      "--advertise-url",
      `"${url}" must be a ws://, wss://, http:// or https:// URL with a host`,
    );
  if (parsed.username || parsed.password || parsed.hash)
    throw new SettingsError(
      "--advertise-url",
      `"${url}" must not carry credentials or a #fragment`,
    );
  const secure = scheme === "wss" || scheme === "https";
  if (!secure) {
    if (ca) throw new SettingsError("--advertise-ca", `only applies to a wss:// or https:// URL`);
    return { url };
  }
  const offered = ca ?? servingChain;
  if (!offered)
    throw new SettingsError(
      "--advertise-url",
      `"${url}" uses TLS: give --advertise-ca <pem> (the CA agents verify it with); an offer without one makes the Collector supervisor skip certificate checks`,
    );
  if (!offered.toString("utf8").includes("-----BEGIN CERTIFICATE-----"))
    throw new SettingsError(
      ca ? "--advertise-ca" : "--tls-cert",
      "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
    );
  return { url, ca: offered };
}

/** Resolves and checks every setting. Throws SettingsError naming the first bad one. */
export function loadSettings(flags: SettingsFlags, env: NodeJS.ProcessEnv = process.env): Settings {
  const get = (key: keyof SettingsFlags): string | undefined => flags[key] ?? env[SETTING_ENV[key]];
  const listen = (key: keyof SettingsFlags, flag: string, fallback: string) => {
    const value = get(key) ?? fallback;
    const m = /^(.*):(\d{1,5})$/.exec(value);
    const port = Number(m?.[2]);
    if (!m?.[1] || port > 65535) throw new SettingsError(flag, `"${value}" is not host:port`);
    return { host: m[1].replace(/^\[(.*)\]$/, "$1"), port };
  };
  const positive = (key: keyof SettingsFlags, flag: string, fallback: number) => {
    const raw = get(key);
    const value = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(value) || value < 1)
      throw new SettingsError(flag, `"${raw}" is not a positive integer`);
    return value;
  };
  const duration = (key: keyof SettingsFlags, flag: string, fallback: string) => {
    const raw = get(key) ?? fallback;
    const ms = parseDuration(raw);
    if (ms === undefined)
      throw new SettingsError(flag, `"${raw}" is not a duration such as 15s, 2m or 1h30m`);
    return ms;
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
  /** Tokens of a file, one per line; a file given but holding none is an error, not "open". */
  const tokens = (key: keyof SettingsFlags, flag: string) => {
    const buf = read(key, flag);
    if (!buf) return [];
    const list = tokenLines(buf.toString("utf8"));
    if (list.length === 0)
      throw new SettingsError(flag, `${get(key)} holds no token (one per line, # comments)`);
    return list;
  };
  const opamp = listen("opampListen", "--opamp-listen", "0.0.0.0:4320");
  const api = listen("apiListen", "--api-listen", "127.0.0.1:4321");
  const cert = read("tlsCert", "--tls-cert");
  const key = read("tlsKey", "--tls-key");
  const clientCa = read("tlsClientCa", "--tls-client-ca");
  if (Boolean(cert) !== Boolean(key))
    throw new SettingsError("--tls-cert/--tls-key", "give both or neither");
  if (clientCa && !cert)
    throw new SettingsError("--tls-client-ca", "needs --tls-cert and --tls-key");
  const advertise = advertised(get("advertiseUrl"), read("advertiseCa", "--advertise-ca"), cert);
  const redisUrl = get("redis") ?? "redis://127.0.0.1:6379";
  if (!/^rediss?:\/\//.test(redisUrl))
    throw new SettingsError("--redis", `"${redisUrl}" is not a redis:// URL`);
  const webhook = read("webhookSecretFile", "--webhook-secret-file")?.toString("utf8").trim();
  if (webhook === "") throw new SettingsError("--webhook-secret-file", "the file is empty");
  const branchName = (key: keyof SettingsFlags, flag: string, fallback: string) => {
    const value = get(key) ?? fallback;
    try {
      return checkBranchName(value);
    } catch (err) {
      throw new SettingsError(flag, (err as Error).message);
    }
  };
  const branch = branchName("branch", "--branch", "main");
  const statusBranch = branchName("statusBranch", "--status-branch", "opamp-status");
  const statusMode = get("statusMode") ?? "branch";
  if (statusMode !== "branch" && statusMode !== "folder")
    throw new SettingsError("--status-mode", `"${statusMode}" is not branch or folder`);
  if (statusMode === "branch" && statusBranch === branch)
    throw new SettingsError(
      "--status-branch",
      `"${statusBranch}" is the config branch; use another branch or --status-mode folder`,
    );
  const statusEffectiveConfig = get("statusEffectiveConfig") ?? "redacted";
  if (!["full", "redacted", "hash", "none"].includes(statusEffectiveConfig))
    throw new SettingsError(
      "--status-effective-config",
      `"${statusEffectiveConfig}" is not full, redacted, hash or none`,
    );
  const statusIntervalMs = duration("statusInterval", "--status-interval", "10s");
  if (statusIntervalMs < 100)
    throw new SettingsError(
      "--status-interval",
      "must be at least 100ms (one commit per interval)",
    );
  const replicaTimeoutMs = duration("replicaTimeout", "--replica-timeout", "15s");
  if (replicaTimeoutMs < 300)
    throw new SettingsError("--replica-timeout", "must be at least 300ms");
  const repo = get("repo");
  const path = get("path");
  const gitTokenFile = get("gitTokenFile");
  const gitTokenEnv = get("gitTokenEnv");
  return {
    ...(repo ? { repo } : {}),
    branch,
    ...(path ? { path } : {}),
    stateDir: get("stateDir") ?? ".opamp-gitops",
    pollIntervalMs: duration("pollInterval", "--poll-interval", "15s"),
    ...(gitTokenFile ? { gitTokenFile } : {}),
    ...(gitTokenEnv ? { gitTokenEnv } : {}),
    apiHost: api.host,
    apiPort: api.port,
    apiTokens: tokens("apiTokensFile", "--api-tokens-file"),
    ...(webhook ? { webhookSecret: webhook } : {}),
    statusMode,
    statusBranch,
    statusIntervalMs,
    statusRetentionMs: duration("statusRetention", "--status-retention", "168h"),
    statusEffectiveConfig: statusEffectiveConfig as Settings["statusEffectiveConfig"],
    opampHost: opamp.host,
    opampPort: opamp.port,
    redisUrl,
    redisPrefix: get("redisPrefix") ?? "opamp-gitops",
    opampTokens: tokens("opampTokensFile", "--opamp-tokens-file"),
    ...(cert && key ? { tls: { cert, key, ...(clientCa ? { clientCa } : {}) } } : {}),
    ...(advertise ? { advertise } : {}),
    maxMessageBytes: positive("maxMessageBytes", "--max-message-bytes", 16 * 1024 * 1024),
    maxConnections: positive("maxConnections", "--max-connections", 50_000),
    replicaTimeoutMs,
    logLevel: get("logLevel") ?? "info",
  };
}

/** The settings file's environment variable (the flag is --settings). */
export const SETTINGS_FILE_ENV = "OPAMP_GITOPS_SETTINGS";

const flagOf = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

function readSettingsFile(file: string): Record<string, unknown> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new SettingsError("--settings", `cannot read ${file}: ${(err as Error).message}`);
  }
  const loaded = loadYaml(bytes, file);
  const value = loaded.yaml?.value ?? (loaded.findings.length === 0 ? {} : undefined);
  if (value === undefined) {
    const f = loaded.findings[0];
    throw new SettingsError("--settings", `${file}:${f?.line}:${f?.column}: ${f?.message}`);
  }
  if (value === null) return {};
  if (typeof value !== "object" || Array.isArray(value))
    throw new SettingsError("--settings", `${file} must be a mapping of setting names to values`);
  return value as Record<string, unknown>;
}

/** Settings naming files or folders; relative ones in a settings file are relative to it. */
const PATH_SETTINGS = new Set([
  "repo",
  "stateDir",
  "gitTokenFile",
  "apiTokensFile",
  "opampTokensFile",
  "webhookSecretFile",
  "tlsCert",
  "tlsKey",
  "tlsClientCa",
  "advertiseCa",
]);

function relativeToFile(key: string, value: unknown, file: string): unknown {
  if (!PATH_SETTINGS.has(key) || typeof value !== "string" || value === "") return value;
  if (isAbsolute(value) || /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return value;
  return resolve(dirname(file), value);
}

/**
 * Everything `serve` needs: the settings file (if any), the environment and the flags merged
 * (flags win), checked against the settings schema (every problem is listed, each naming the
 * setting and where it came from), then resolved by loadSettings.
 */
export function resolveSettings(
  flags: SettingsFlags & { settings?: string },
  env: NodeJS.ProcessEnv = process.env,
): Settings {
  const { settings: file = env[SETTINGS_FILE_ENV], ...given } = flags;
  const merged: Record<string, unknown> = {};
  const origin = new Map<string, string>();
  const put = (key: string, value: unknown, from: string) => {
    merged[key] = value;
    origin.set(key, from);
  };
  if (file)
    for (const [k, v] of Object.entries(readSettingsFile(file)))
      put(k, relativeToFile(k, v, file), file);
  for (const [k, name] of Object.entries(SETTING_ENV))
    if (env[name] !== undefined) put(k, env[name], name);
  for (const [k, v] of Object.entries(given)) if (v !== undefined) put(k, v, flagOf(k));
  const problems = validateSettings(merged);
  if (problems.length > 0) {
    const first = problems[0] as (typeof problems)[number];
    const lines = problems.map((p) => `${p.message} (from ${origin.get(p.setting) ?? "?"})`);
    throw new SettingsError(origin.get(first.setting) ?? first.setting, lines.join("\n  "));
  }
  const asFlags: Record<string, string> = {};
  for (const [k, v] of Object.entries(merged)) asFlags[k] = String(v);
  return loadSettings(asFlags as SettingsFlags, {});
}

/** Settings of the commands that talk to a running service (`rollout`, `agents`). */
export interface ClientSettings {
  /** The admin API's base URL. Default http://127.0.0.1:4321. */
  apiUrl: string;
  /** Bearer token for the admin API; undefined when none is configured. */
  apiToken?: string;
  /** Who is acting, for the audit trail (user@host). */
  actor: string;
}

export interface ClientFlags {
  apiUrl?: string;
  apiTokenFile?: string;
}

/** Flags, then OPAMP_GITOPS_API_URL / OPAMP_GITOPS_API_TOKEN_FILE, then defaults. */
export function loadClientSettings(
  flags: ClientFlags,
  env: NodeJS.ProcessEnv = process.env,
  actor = "",
): ClientSettings {
  const apiUrl = flags.apiUrl ?? env.OPAMP_GITOPS_API_URL ?? "http://127.0.0.1:4321";
  if (!/^https?:\/\/[^/]+/.test(apiUrl))
    throw new SettingsError("--api-url", `"${apiUrl}" is not an http(s) URL`);
  const tokenFile = flags.apiTokenFile ?? env.OPAMP_GITOPS_API_TOKEN_FILE;
  let apiToken: string | undefined;
  if (tokenFile) {
    try {
      apiToken = tokenLines(readFileSync(tokenFile, "utf8"))[0];
    } catch (err) {
      throw new SettingsError(
        "--api-token-file",
        `cannot read ${tokenFile}: ${(err as Error).message}`,
      );
    }
    if (!apiToken) throw new SettingsError("--api-token-file", `${tokenFile} is empty`);
  }
  return {
    apiUrl: apiUrl.replace(/\/+$/, ""),
    ...(apiToken ? { apiToken } : {}),
    actor: actor || env.USER || "cli",
  };
}
