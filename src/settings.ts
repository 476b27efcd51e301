/**
 * Service settings: command-line flags first, then OPAMP_GITOPS_* environment variables, then
 * an optional settings file (`--settings`, YAML or JSON, keys are the flags in camelCase),
 * then built-in defaults. This is the only file that reads the environment. Settings are
 * checked once here, against schemas/settings.schema.json, and a bad one is reported by name
 * and by where it came from.
 */
import { accessSync, constants, readFileSync, realpathSync, statSync } from "node:fs";
import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import { dirname, isAbsolute, resolve } from "node:path";
import type { AgentLimits } from "./opamp/agent-limits.js";
// The modules themselves, not the barrels: a short-lived command (plan, validate) reading its
// settings must not load the OpAMP server (ws, protobufjs) or the status writer.
import { type AgentToken, parseAgentTokens } from "./opamp/credentials.js";
import { parseGroupScope } from "./service/group-scope.js";
import { checkBranchName } from "./sync/paths.js";
import {
  DEFAULT_SECRET_ENV_PREFIX,
  loadYaml,
  OtelcolFlagError,
  parseDuration,
  parseOtelcolFlags,
  type SecretRefPolicy,
  validateSettings,
} from "./validate/index.js";

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
  /** The file apiTokens came from, re-read on change and on SIGHUP. */
  apiTokensFile?: string;
  /** DNS names the admin API answers to besides localhost and IP addresses (Host check). */
  apiAllowedHosts: string[];
  /** Allows a non-loopback --api-listen without admin tokens (refused at start otherwise). */
  apiInsecureNoAuth: boolean;
  /**
   * What one client of the admin port may ask (src/api/admin-limits.ts); a count of 0 turns
   * that limit off. Defaults 600 requests and 20 failed authentications per minute, 64 open
   * connections per address.
   */
  apiLimits: {
    requestsPerMinute: number;
    authFailuresPerMinute: number;
    maxConnectionsPerAddress: number;
  };
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
  /** Bearer tokens accepted on the OpAMP port, each with an optional group scope; empty: open. */
  opampTokens: AgentToken[];
  /** The file opampTokens came from, re-read on change and on SIGHUP. */
  opampTokensFile?: string;
  /** Client certificate name (subject CN or subjectAltName value, or "*") → groups allowed. */
  opampClientGroups?: Record<string, string[]>;
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /**
   * What connection-settings offers tell agents: the OpAMP URL they should use and, for a
   * wss:// or https:// URL, the PEM CA bundle they must verify it with. Undefined: offers
   * carry no endpoint (only the heartbeat interval).
   */
  advertise?: { url: string; ca?: Buffer };
  /** The file tls.clientCa came from, re-read on change and on SIGHUP. */
  tlsClientCaFile?: string;
  /**
   * Agent credentials (README "Agent credentials"): the CA that signs agents' CSRs (PEM, from
   * files; the key stays in memory), lifetimes in ms, the fraction of a lifetime after which
   * a new credential is offered, per-agent bearer tokens on or off, and the CSR size limit.
   */
  agentCredentials: {
    ca?: { cert: Buffer; key: Buffer };
    certificateValidityMs: number;
    tokenValidityMs: number;
    rotateAt: number;
    mintTokens: boolean;
    maxCsrBytes: number;
    /** Least time between two certificates signed for one agent's CSRs, ms; 0: no limit. */
    csrIntervalMs: number;
  };
  /**
   * `--secret-env-prefix` / `--secret-dir`: which `${env:…}` / `${file:…}` references of a
   * bundle the service resolves (src/validate/secret-ref-policy.ts). `dir` is a real path.
   */
  secretRefs: SecretRefPolicy;
  maxMessageBytes: number;
  maxConnections: number;
  /** What one agent may report; see src/opamp/agent-limits.ts. */
  agentLimits: AgentLimits;
  /** Limits of the OpAMP port's connections (bytes, counts, ms); see OpampServerOptions. */
  opampGuards: {
    maxSendBufferBytes: number;
    maxConnectionsPerAddress?: number;
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    firstMessageTimeoutMs: number;
    idleTimeoutMs: number;
  };
  /**
   * A server process that has not refreshed its liveness key in Redis for this long is dead:
   * its agents that did not come back are marked disconnected, ms. Default 15 s.
   */
  replicaTimeoutMs: number;
  /**
   * Lifetime of a once-only duty's lease (Git polling, status branch writer) without renewal,
   * ms: after a holder dies, another replica takes the duty over within about this. Default 5 s.
   */
  leaderLeaseMs: number;
  /** `--git-share-max-bytes`: bound of one commit's objects shared through Redis. */
  gitShareMaxBytes: number;
  /**
   * `serve --workers`: processes serving on this host, each a replica sharing the OpAMP and
   * admin ports (node:cluster). 1: one process, no cluster. Default: the number of cores.
   */
  workers: number;
  /**
   * `serve --workers`: who picks the worker of a new connection. "os" (default): the workers
   * accept from the shared socket themselves (cluster SCHED_NONE; the kernel's choice, can be
   * uneven); "rr": the primary accepts and hands connections round robin (SCHED_RR; even, one
   * IPC hop per connection).
   */
  workerScheduling: "os" | "rr";
  /**
   * `--malloc-trim-interval`: how often each serve process gives glibc's free heap pages back
   * to the OS (src/malloc-trim.ts), ms; 0: never. Default 2 s.
   */
  mallocTrimIntervalMs: number;
  /** Reconnect storms: what the OpAMP port takes before shedding; see src/opamp/shedding.ts. */
  shedding: {
    /** Agents connected but not yet answered (upgrades, first messages) beyond which new ones get 503. */
    maxPendingAgents: number;
    /** Event-loop delay beyond which new agents get 503 and messages UNAVAILABLE, ms; 0: off. */
    maxLoopDelayMs: number;
  };
  logLevel: string;
  /**
   * `--otelcol`: Collector binaries that also check each commit before rollout, by
   * distribution name (`""` for groups without config.distribution). Empty: no such check.
   */
  otelcol: Map<string, string>;
  /**
   * `--package-dir`: a folder of package files the service serves itself at
   * `/packages/<sha256>` on the OpAMP port (content-addressed); undefined: it serves none.
   */
  packageDir?: string;
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
  apiAllowedHosts?: string;
  apiInsecureNoAuth?: string | boolean;
  apiRateLimit?: string;
  apiAuthFailureLimit?: string;
  apiMaxConnectionsPerAddress?: string;
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
  opampClientGroups?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  advertiseUrl?: string;
  advertiseCa?: string;
  agentCaCert?: string;
  agentCaKey?: string;
  agentCertValidity?: string;
  agentTokenValidity?: string;
  agentCredentialRotateAt?: string;
  mintAgentTokens?: string | boolean;
  maxCsrBytes?: string;
  maxMessageBytes?: string;
  maxConnections?: string;
  maxAgentAttributes?: string;
  maxAttributeBytes?: string;
  maxConfigFiles?: string;
  maxConfigBytes?: string;
  maxHealthComponents?: string;
  maxAvailableComponents?: string;
  maxErrorMessageBytes?: string;
  maxAgentBytes?: string;
  maxSendBufferBytes?: string;
  maxConnectionsPerAddress?: string;
  headersTimeout?: string;
  requestTimeout?: string;
  firstMessageTimeout?: string;
  idleTimeout?: string;
  replicaTimeout?: string;
  leaderLease?: string;
  gitShareMaxBytes?: string;
  workers?: string;
  workerScheduling?: string;
  mallocTrimInterval?: string;
  maxPendingAgents?: string;
  shedLoopDelay?: string;
  logLevel?: string;
  /** Comma-separated `[<name>=]<path>` entries. */
  otelcol?: string;
  packageDir?: string;
  agentCsrInterval?: string;
  secretDir?: string;
  secretEnvPrefix?: string;
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
  apiAllowedHosts: "OPAMP_GITOPS_API_ALLOWED_HOSTS",
  apiInsecureNoAuth: "OPAMP_GITOPS_API_INSECURE_NO_AUTH",
  apiRateLimit: "OPAMP_GITOPS_API_RATE_LIMIT",
  apiAuthFailureLimit: "OPAMP_GITOPS_API_AUTH_FAILURE_LIMIT",
  apiMaxConnectionsPerAddress: "OPAMP_GITOPS_API_MAX_CONNECTIONS_PER_ADDRESS",
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
  opampClientGroups: "OPAMP_GITOPS_OPAMP_CLIENT_GROUPS",
  tlsCert: "OPAMP_GITOPS_TLS_CERT",
  tlsKey: "OPAMP_GITOPS_TLS_KEY",
  tlsClientCa: "OPAMP_GITOPS_TLS_CLIENT_CA",
  advertiseUrl: "OPAMP_GITOPS_ADVERTISE_URL",
  advertiseCa: "OPAMP_GITOPS_ADVERTISE_CA",
  agentCaCert: "OPAMP_GITOPS_AGENT_CA_CERT",
  agentCaKey: "OPAMP_GITOPS_AGENT_CA_KEY",
  agentCertValidity: "OPAMP_GITOPS_AGENT_CERT_VALIDITY",
  agentTokenValidity: "OPAMP_GITOPS_AGENT_TOKEN_VALIDITY",
  agentCredentialRotateAt: "OPAMP_GITOPS_AGENT_CREDENTIAL_ROTATE_AT",
  mintAgentTokens: "OPAMP_GITOPS_MINT_AGENT_TOKENS",
  maxCsrBytes: "OPAMP_GITOPS_MAX_CSR_BYTES",
  maxMessageBytes: "OPAMP_GITOPS_MAX_MESSAGE_BYTES",
  maxConnections: "OPAMP_GITOPS_MAX_CONNECTIONS",
  maxAgentAttributes: "OPAMP_GITOPS_MAX_AGENT_ATTRIBUTES",
  maxAttributeBytes: "OPAMP_GITOPS_MAX_ATTRIBUTE_BYTES",
  maxConfigFiles: "OPAMP_GITOPS_MAX_CONFIG_FILES",
  maxConfigBytes: "OPAMP_GITOPS_MAX_CONFIG_BYTES",
  maxHealthComponents: "OPAMP_GITOPS_MAX_HEALTH_COMPONENTS",
  maxAvailableComponents: "OPAMP_GITOPS_MAX_AVAILABLE_COMPONENTS",
  maxErrorMessageBytes: "OPAMP_GITOPS_MAX_ERROR_MESSAGE_BYTES",
  maxAgentBytes: "OPAMP_GITOPS_MAX_AGENT_BYTES",
  maxSendBufferBytes: "OPAMP_GITOPS_MAX_SEND_BUFFER_BYTES",
  maxConnectionsPerAddress: "OPAMP_GITOPS_MAX_CONNECTIONS_PER_ADDRESS",
  headersTimeout: "OPAMP_GITOPS_HEADERS_TIMEOUT",
  requestTimeout: "OPAMP_GITOPS_REQUEST_TIMEOUT",
  firstMessageTimeout: "OPAMP_GITOPS_FIRST_MESSAGE_TIMEOUT",
  idleTimeout: "OPAMP_GITOPS_IDLE_TIMEOUT",
  replicaTimeout: "OPAMP_GITOPS_REPLICA_TIMEOUT",
  leaderLease: "OPAMP_GITOPS_LEADER_LEASE",
  gitShareMaxBytes: "OPAMP_GITOPS_GIT_SHARE_MAX_BYTES",
  workers: "OPAMP_GITOPS_WORKERS",
  workerScheduling: "OPAMP_GITOPS_WORKER_SCHEDULING",
  mallocTrimInterval: "OPAMP_GITOPS_MALLOC_TRIM_INTERVAL",
  maxPendingAgents: "OPAMP_GITOPS_MAX_PENDING_AGENTS",
  shedLoopDelay: "OPAMP_GITOPS_SHED_LOOP_DELAY",
  logLevel: "OPAMP_GITOPS_LOG_LEVEL",
  otelcol: "OPAMP_GITOPS_OTELCOL",
  packageDir: "OPAMP_GITOPS_PACKAGE_DIR",
  agentCsrInterval: "OPAMP_GITOPS_AGENT_CSR_INTERVAL",
  secretDir: "OPAMP_GITOPS_SECRET_DIR",
  secretEnvPrefix: "OPAMP_GITOPS_SECRET_ENV_PREFIX",
};

/** The service's own variables (settings, `--git-token-env`) whose names start with `prefix`. */
export function reservedEnvNames(prefix: string, gitTokenEnv?: string): string[] {
  const own = [...Object.values(SETTING_ENV), SETTINGS_FILE_ENV, gitTokenEnv ?? ""];
  return own.filter((name) => name !== "" && name.startsWith(prefix));
}

/**
 * `--secret-dir` (an existing folder, kept as its real path) and `--secret-env-prefix`. The
 * service's own variables under the prefix (OPAMP_GITOPS_SECRET_DIR with the default one, the
 * `--git-token-env` variable if so named) are reserved: never resolved for a repository writer.
 * `dirMayBeMissing` (validate, plan: a CI job checks for the service's host): a folder that
 * does not exist here is kept as its absolute path.
 */
function secretRefPolicy(
  dir: string | undefined,
  prefix: string | undefined,
  gitTokenEnv: string | undefined,
  { dirMayBeMissing = false } = {},
): SecretRefPolicy {
  const envPrefix = prefix ?? DEFAULT_SECRET_ENV_PREFIX;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(envPrefix))
    throw new SettingsError(
      "--secret-env-prefix",
      `"${envPrefix}" is not the start of an environment variable name (letters, digits, _)`,
    );
  const reserved = reservedEnvNames(envPrefix, gitTokenEnv);
  const policy: SecretRefPolicy = reserved.length > 0 ? { envPrefix, reserved } : { envPrefix };
  if (dir === undefined || dir === "") return policy;
  let real: string;
  try {
    real = realpathSync(dir);
    if (!statSync(real).isDirectory()) throw new Error("not a folder");
  } catch (err) {
    if (dirMayBeMissing && (err as NodeJS.ErrnoException).code === "ENOENT")
      return { ...policy, dir: resolve(dir) };
    throw new SettingsError("--secret-dir", `cannot use ${dir}: ${(err as Error).message}`);
  }
  return { ...policy, dir: real };
}

/** The tokens of a tokens file: one per line, blank lines and `#` comments skipped. */
export function tokenLines(text: string): string[] {
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

/**
 * The entries of an agent tokens file (`<token>` or `<token> groups=a,b`). Throws
 * SettingsError naming `flag`, the file and the line of a bad scope, or an empty file.
 */
export function agentTokens(text: string, file: string, flag: string): AgentToken[] {
  const list = parseAgentTokens(text);
  if (list.length === 0)
    throw new SettingsError(flag, `${file} holds no token (one per line, # comments)`);
  for (const [i, entry] of list.entries()) {
    if (entry.scope === undefined) continue;
    try {
      parseGroupScope(entry.scope);
    } catch (err) {
      throw new SettingsError(flag, `${file}, token ${i + 1}: ${(err as Error).message}`);
    }
  }
  return list;
}

/** `opampClientGroups`: JSON (or an object from a settings file) of name → group list. */
function clientGroups(raw: string): Record<string, string[]> {
  const bad = (why: string) =>
    new SettingsError(
      "opampClientGroups",
      `${why}; expected {"<certificate CN or SAN>": ["group", …]}`,
    );
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw bad("not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw bad("not a mapping");
  const out: Record<string, string[]> = {};
  for (const [name, groups] of Object.entries(value)) {
    const list = typeof groups === "string" ? groups.split(",").map((g) => g.trim()) : groups;
    if (!Array.isArray(list) || !list.every((g) => typeof g === "string"))
      throw bad(`"${name}" is not a list of groups`);
    if (!list.includes("*"))
      try {
        parseGroupScope(`groups=${list.join(",")}`, true);
      } catch (err) {
        throw bad(`"${name}": ${(err as Error).message}`);
      }
    Object.defineProperty(out, name, { value: list, enumerable: true });
  }
  return out;
}

const isLoopback = (host: string) =>
  host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."));

/** Resolves and checks every setting. Throws SettingsError naming the first bad one. */
export function loadSettings(flags: SettingsFlags, env: NodeJS.ProcessEnv = process.env): Settings {
  const get = (key: keyof SettingsFlags): string | undefined => {
    const value = flags[key] ?? env[SETTING_ENV[key]];
    return value === undefined ? undefined : String(value);
  };
  const listen = (key: keyof SettingsFlags, flag: string, fallback: string) => {
    const value = get(key) ?? fallback;
    const m = /^(.*):(\d{1,5})$/.exec(value);
    const port = Number(m?.[2]);
    if (!m?.[1] || port > 65535) throw new SettingsError(flag, `"${value}" is not host:port`);
    return { host: m[1].replace(/^\[(.*)\]$/, "$1"), port };
  };
  /** A whole number of at least `min` (a count where 0 turns something off: min 0). */
  const integer = (key: keyof SettingsFlags, flag: string, fallback: number, min: 0 | 1) => {
    const raw = get(key);
    const value = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(value) || value < min)
      throw new SettingsError(
        flag,
        `"${raw}" is not ${min === 1 ? "a positive integer" : "a whole number (0 or more)"}`,
      );
    return value;
  };
  const positive = (key: keyof SettingsFlags, flag: string, fallback: number) =>
    integer(key, flag, fallback, 1);
  const count = (key: keyof SettingsFlags, flag: string, fallback: number) =>
    integer(key, flag, fallback, 0);
  const duration = (key: keyof SettingsFlags, flag: string, fallback: string) => {
    const raw = get(key) ?? fallback;
    const ms = parseDuration(raw);
    if (ms === undefined)
      throw new SettingsError(flag, `"${raw}" is not a duration such as 15s, 2m or 1h30m`);
    return ms;
  };
  const timeout = (key: keyof SettingsFlags, flag: string, fallback: string) => {
    const ms = duration(key, flag, fallback);
    if (ms < 1) throw new SettingsError(flag, "must be longer than 0");
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
  const apiTokens = tokens("apiTokensFile", "--api-tokens-file");
  const insecure = ["true", "1", "yes"].includes(String(get("apiInsecureNoAuth") ?? "false"));
  if (!isLoopback(api.host) && apiTokens.length === 0 && !insecure)
    throw new SettingsError(
      "--api-listen",
      `${api.host} is not a loopback address and no --api-tokens-file is given: the admin API (rollout abort, agent data) would be open to the network. Give --api-tokens-file, listen on 127.0.0.1, or pass --api-insecure-no-auth to accept that`,
    );
  const opampTokensBuf = read("opampTokensFile", "--opamp-tokens-file");
  const opampTokens = opampTokensBuf
    ? agentTokens(
        opampTokensBuf.toString("utf8"),
        String(get("opampTokensFile")),
        "--opamp-tokens-file",
      )
    : [];
  const groupsRaw = get("opampClientGroups");
  const opampClientGroups = groupsRaw === undefined ? undefined : clientGroups(groupsRaw);
  const cert = read("tlsCert", "--tls-cert");
  const key = read("tlsKey", "--tls-key");
  const clientCa = read("tlsClientCa", "--tls-client-ca");
  if (Boolean(cert) !== Boolean(key))
    throw new SettingsError("--tls-cert/--tls-key", "give both or neither");
  if (clientCa && !cert)
    throw new SettingsError("--tls-client-ca", "needs --tls-cert and --tls-key");
  const advertise = advertised(get("advertiseUrl"), read("advertiseCa", "--advertise-ca"), cert);
  const agentCaCert = read("agentCaCert", "--agent-ca-cert");
  const agentCaKey = read("agentCaKey", "--agent-ca-key");
  if (Boolean(agentCaCert) !== Boolean(agentCaKey))
    throw new SettingsError("--agent-ca-cert/--agent-ca-key", "give both or neither");
  const rotateRaw = get("agentCredentialRotateAt") ?? "0.66";
  const rotateAt = Number(rotateRaw);
  if (!/^0?\.\d+$/.test(rotateRaw.trim()) || !(rotateAt > 0 && rotateAt < 1))
    throw new SettingsError(
      "--agent-credential-rotate-at",
      `"${rotateRaw}" is not a fraction between 0 and 1 such as 0.66`,
    );
  const agentCredentials = {
    ...(agentCaCert && agentCaKey ? { ca: { cert: agentCaCert, key: agentCaKey } } : {}),
    certificateValidityMs: timeout("agentCertValidity", "--agent-cert-validity", "720h"),
    tokenValidityMs: timeout("agentTokenValidity", "--agent-token-validity", "720h"),
    rotateAt,
    mintTokens: ["true", "1", "yes"].includes(String(get("mintAgentTokens") ?? "false")),
    maxCsrBytes: positive("maxCsrBytes", "--max-csr-bytes", 8192),
    csrIntervalMs: duration("agentCsrInterval", "--agent-csr-interval", "1m"),
  };
  const secretRefs = secretRefPolicy(get("secretDir"), get("secretEnvPrefix"), get("gitTokenEnv"));
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
  const workerScheduling = get("workerScheduling") ?? "os";
  if (workerScheduling !== "os" && workerScheduling !== "rr")
    throw new SettingsError("--worker-scheduling", `"${workerScheduling}" is not os or rr`);
  const statusIntervalMs = duration("statusInterval", "--status-interval", "10s");
  if (statusIntervalMs < 100)
    throw new SettingsError(
      "--status-interval",
      "must be at least 100ms (one commit per interval)",
    );
  const otelcol = otelcolBinaries(get("otelcol"));
  const mallocTrimIntervalMs = duration("mallocTrimInterval", "--malloc-trim-interval", "2s");
  if (mallocTrimIntervalMs > 0 && mallocTrimIntervalMs < 1000)
    throw new SettingsError("--malloc-trim-interval", "must be 0 (never) or at least 1s");
  const replicaTimeoutMs = duration("replicaTimeout", "--replica-timeout", "15s");
  if (replicaTimeoutMs < 300)
    throw new SettingsError("--replica-timeout", "must be at least 300ms");
  const leaderLeaseMs = duration("leaderLease", "--leader-lease", "5s");
  if (leaderLeaseMs < 300) throw new SettingsError("--leader-lease", "must be at least 300ms");
  const repo = get("repo");
  const path = get("path");
  const gitTokenFile = get("gitTokenFile");
  const gitTokenEnv = get("gitTokenEnv");
  const file = (key: keyof SettingsFlags) => {
    const value = get(key);
    return value === undefined ? {} : { [key]: value };
  };
  return {
    ...(repo ? { repo } : {}),
    branch,
    ...(path ? { path } : {}),
    stateDir: get("stateDir") ?? ".opamp-gitops",
    ...(get("packageDir") ? { packageDir: get("packageDir") as string } : {}),
    pollIntervalMs: duration("pollInterval", "--poll-interval", "15s"),
    ...(gitTokenFile ? { gitTokenFile } : {}),
    ...(gitTokenEnv ? { gitTokenEnv } : {}),
    apiHost: api.host,
    apiPort: api.port,
    apiTokens,
    ...file("apiTokensFile"),
    apiAllowedHosts: (get("apiAllowedHosts") ?? "")
      .split(",")
      .map((h) => h.trim())
      .filter((h) => h !== ""),
    apiInsecureNoAuth: insecure,
    apiLimits: {
      requestsPerMinute: count("apiRateLimit", "--api-rate-limit", 600),
      authFailuresPerMinute: count("apiAuthFailureLimit", "--api-auth-failure-limit", 20),
      maxConnectionsPerAddress: positive(
        "apiMaxConnectionsPerAddress",
        "--api-max-connections-per-address",
        64,
      ),
    },
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
    opampTokens,
    ...file("opampTokensFile"),
    ...(opampClientGroups ? { opampClientGroups } : {}),
    ...(cert && key ? { tls: { cert, key, ...(clientCa ? { clientCa } : {}) } } : {}),
    ...(advertise ? { advertise } : {}),
    ...(clientCa ? { tlsClientCaFile: get("tlsClientCa") as string } : {}),
    agentCredentials,
    secretRefs,
    maxMessageBytes: positive("maxMessageBytes", "--max-message-bytes", 16 * 1024 * 1024),
    maxConnections: positive("maxConnections", "--max-connections", 50_000),
    agentLimits: {
      maxAttributes: positive("maxAgentAttributes", "--max-agent-attributes", 256),
      maxAttributeBytes: positive("maxAttributeBytes", "--max-attribute-bytes", 4096),
      maxConfigFiles: positive("maxConfigFiles", "--max-config-files", 64),
      maxConfigBytes: positive("maxConfigBytes", "--max-config-bytes", 1024 * 1024),
      maxHealthComponents: positive("maxHealthComponents", "--max-health-components", 1024),
      maxAvailableComponents: positive(
        "maxAvailableComponents",
        "--max-available-components",
        4096,
      ),
      maxErrorMessageBytes: positive("maxErrorMessageBytes", "--max-error-message-bytes", 4096),
      maxAgentBytes: positive("maxAgentBytes", "--max-agent-bytes", 4 * 1024 * 1024),
    },
    opampGuards: {
      maxSendBufferBytes: positive(
        "maxSendBufferBytes",
        "--max-send-buffer-bytes",
        4 * 1024 * 1024,
      ),
      ...(get("maxConnectionsPerAddress") === undefined
        ? {}
        : {
            maxConnectionsPerAddress: positive(
              "maxConnectionsPerAddress",
              "--max-connections-per-address",
              1,
            ),
          }),
      headersTimeoutMs: timeout("headersTimeout", "--headers-timeout", "10s"),
      requestTimeoutMs: timeout("requestTimeout", "--request-timeout", "60s"),
      firstMessageTimeoutMs: timeout("firstMessageTimeout", "--first-message-timeout", "30s"),
      idleTimeoutMs: timeout("idleTimeout", "--idle-timeout", "1h"),
    },
    replicaTimeoutMs,
    leaderLeaseMs,
    gitShareMaxBytes: positive("gitShareMaxBytes", "--git-share-max-bytes", 64 * 1024 * 1024),
    workers: positive("workers", "--workers", availableParallelism()),
    workerScheduling,
    mallocTrimIntervalMs,
    shedding: {
      maxPendingAgents: positive("maxPendingAgents", "--max-pending-agents", 1000),
      maxLoopDelayMs: duration("shedLoopDelay", "--shed-loop-delay", "0s"),
    },
    logLevel: get("logLevel") ?? "info",
    otelcol,
  };
}

/** `--otelcol a=/x,/y`: each binary must be an executable file. */
function otelcolBinaries(value: string | undefined): Map<string, string> {
  if (!value) return new Map();
  let binaries: Map<string, string>;
  try {
    binaries = parseOtelcolFlags(
      value
        .split(",")
        .map((v) => v.trim())
        .filter(Boolean),
    );
  } catch (err) {
    if (err instanceof OtelcolFlagError) throw new SettingsError("--otelcol", err.message);
    throw err;
  }
  for (const [name, path] of binaries) {
    try {
      accessSync(path, constants.X_OK);
    } catch {
      throw new SettingsError(
        "--otelcol",
        `${name ? `${name}=` : ""}${path} is not an executable file (give the path of a Collector binary)`,
      );
    }
  }
  return binaries;
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
  "packageDir",
  "agentCaCert",
  "agentCaKey",
  "secretDir",
]);
// (--otelcol holds paths too, in a list: give absolute paths in a settings file.)

function relativeToFile(key: string, value: unknown, file: string): unknown {
  if (!PATH_SETTINGS.has(key) || typeof value !== "string" || value === "") return value;
  if (isAbsolute(value) || /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return value;
  return resolve(dirname(file), value);
}

/**
 * The settings file (if any), the environment and the flags merged (flags win), checked
 * against the settings schema (every problem is listed, each naming the setting and where it
 * came from). `only`: the settings kept (the others are neither kept nor checked).
 */
function mergeSettingSources(
  flags: Record<string, unknown> & { settings?: string },
  env: NodeJS.ProcessEnv,
  only?: ReadonlySet<string>,
): Record<string, unknown> {
  const { settings: file = env[SETTINGS_FILE_ENV], ...given } = flags;
  const merged: Record<string, unknown> = {};
  const origin = new Map<string, string>();
  const put = (key: string, value: unknown, from: string) => {
    if (only && !only.has(key)) return;
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
  return merged;
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
  const merged = mergeSettingSources({ ...flags }, env);
  const asFlags: Record<string, string> = {};
  for (const [k, v] of Object.entries(merged))
    asFlags[k] = typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
  return loadSettings(asFlags as SettingsFlags, {});
}

/** The flags of `validate` and `plan` that name the service's secret-reference policy. */
export interface SecretRefFlags {
  secretDir?: string | undefined;
  secretEnvPrefix?: string | undefined;
  /** The service's settings file (`--settings`; default OPAMP_GITOPS_SETTINGS). */
  settings?: string | undefined;
}

/** The settings the secret-reference policy is made of (`--git-token-env` names a reserved variable). */
const SECRET_REF_SETTINGS = new Set(["secretDir", "secretEnvPrefix", "gitTokenEnv"]);

/**
 * The secret-reference policy serve would resolve with, for `validate` and `plan`: from the
 * same flags, OPAMP_GITOPS_* variables and settings file as serve, with the same precedence
 * (the file's other settings are not read). Unlike serve, a `--secret-dir` that does not exist
 * here is accepted (kept as its absolute path). Throws SettingsError.
 */
export function secretRefSettings(
  flags: SecretRefFlags,
  env: NodeJS.ProcessEnv = process.env,
): SecretRefPolicy {
  const given = {
    secretDir: flags.secretDir,
    secretEnvPrefix: flags.secretEnvPrefix,
    ...(flags.settings !== undefined ? { settings: flags.settings } : {}),
  };
  const merged = mergeSettingSources(given, env, SECRET_REF_SETTINGS);
  const get = (key: string) => (merged[key] === undefined ? undefined : String(merged[key]));
  return secretRefPolicy(get("secretDir"), get("secretEnvPrefix"), get("gitTokenEnv"), {
    dirMayBeMissing: true,
  });
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
