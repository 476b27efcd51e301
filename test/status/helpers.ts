/**
 * Helpers for the status branch tests: agent states built directly (for unit-level tests),
 * and reading a branch back with the git command line, each file checked against its schema.
 */
import { execFileSync } from "node:child_process";
import {
  type AgentState,
  emptyAgentState,
  REPORT_FIELDS,
  type ReportField,
} from "../../src/opamp/agent-state.js";
import type { AgentStore } from "../../src/opamp/agent-store.js";
import { AgentCapabilities as Caps, RemoteConfigStatus } from "../../src/opamp/capabilities.js";
import { encodeSubMessage } from "../../src/opamp/codec.js";
import { kindOfPath } from "../../src/status/paths.js";
import { validateStatusFile } from "../../src/validate/status-schemas.js";
import { loadYaml } from "../../src/validate/yaml.js";

export const CAPS =
  Caps.ReportsStatus |
  Caps.AcceptsRemoteConfig |
  Caps.ReportsEffectiveConfig |
  Caps.ReportsHealth |
  Caps.ReportsRemoteConfig;

/** A secret that must never reach a commit. */
export const SECRET = "hunter2-9f3c1d7e-never-commit-me";

/** A Collector config with secrets in several places (and a placeholder that may stay). */
export function configWithSecrets(label: string): string {
  return `receivers:
  otlp:
    protocols:
      grpc: {endpoint: 0.0.0.0:4317}
exporters:
  otlphttp:
    endpoint: https://collector:${SECRET}@otlp.example.com
    headers:
      Authorization: "Bearer ${SECRET}"
      x-tenant: ${label}
  kafka:
    auth:
      sasl: {username: bob, password: "${SECRET}", mechanism: PLAIN}
    token: \${env:KAFKA_TOKEN}
extensions:
  oauth2client:
    client_id: ${label}
    client_secret: ${SECRET}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [otlphttp]}
`;
}

export interface FakeAgentOptions {
  connected?: boolean;
  attributes?: Record<string, string>;
  healthy?: boolean;
  lastError?: string;
  reportedHash?: string;
  status?: number;
  error?: string;
  config?: string;
  now?: number;
}

/** An AgentState as the OpAMP server would hold it. */
export function fakeAgent(uid: string, o: FakeAgentOptions = {}): AgentState {
  const now = o.now ?? Date.now();
  const a = emptyAgentState(uid, "websocket", now);
  a.capabilities = CAPS;
  a.connected = o.connected ?? true;
  a.lastConnectedAt = now - 1000;
  if (!a.connected) a.lastDisconnectedAt = now;
  const attrs = o.attributes ?? { "service.name": "edge", "host.name": `host-${uid.slice(0, 8)}` };
  a.description = {
    identifyingAttributes: [
      { key: "service.name", value: { stringValue: attrs["service.name"] ?? "edge" } },
    ],
    nonIdentifyingAttributes: Object.entries(attrs)
      .filter(([k]) => k !== "service.name")
      .map(([key, v]) => ({ key, value: { stringValue: v } })),
  };
  a.health = {
    healthy: o.healthy ?? true,
    status: o.healthy === false ? "StatusRecoverableError" : "StatusOK",
    lastError: o.lastError ?? "",
    componentHealthMap: {
      "pipeline:traces": { healthy: o.healthy ?? true, status: "StatusOK" },
    },
  };
  if (o.reportedHash) {
    a.reportedHash = o.reportedHash;
    a.remoteConfigStatus = {
      lastRemoteConfigHash: Buffer.from(o.reportedHash, "hex"),
      status: o.status ?? RemoteConfigStatus.APPLIED,
      errorMessage: o.error ?? "",
    };
  }
  a.effectiveConfig = {
    configMap: {
      configMap: {
        "collector.yaml": {
          body: Buffer.from(o.config ?? configWithSecrets(uid.slice(0, 8))),
          contentType: "text/yaml",
        },
      },
    },
  };
  return a;
}

/**
 * Stores an agent as the OpAMP server would (the real AgentStore in Redis, every report
 * field encoded), so a status writer of another process can render it from there.
 */
export async function saveAgent(store: AgentStore, agent: AgentState): Promise<void> {
  const fields: ReportField[] = [];
  for (const field of Object.keys(REPORT_FIELDS) as ReportField[]) {
    const value = agent[field];
    if (!value) continue;
    agent.encoded[field] ??= Buffer.from(encodeSubMessage(REPORT_FIELDS[field], value as object));
    fields.push(field);
  }
  await store.save(agent, fields, "test/1", true);
}

/** A canonical uid from a number (deterministic). */
export function uidOf(n: number): string {
  const hex = n.toString(16).padStart(12, "0");
  return `01900000-0000-7000-8000-${hex}`;
}

export function git(gitdir: string, ...args: string[]): string {
  return execFileSync("git", ["--git-dir", gitdir, ...args], {
    encoding: "utf8",
    maxBuffer: 1 << 30,
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" },
  }).trim();
}

export function gitBuffer(gitdir: string, args: string[], input?: string): Buffer {
  return execFileSync("git", ["--git-dir", gitdir, ...args], {
    maxBuffer: 1 << 30,
    input,
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" },
  });
}

export type StatusTree = Map<string, Record<string, unknown>>;

/**
 * Every file of `ref`, parsed; throws when a file is not a status file, not valid YAML, or
 * does not follow its schema (the "schema check of every file written").
 */
/** Checked files by blob id: a file unchanged across commits is parsed and checked once. */
const checked = new Map<string, Record<string, unknown>>();

export function readStatusTree(gitdir: string, ref: string, prefix = "status/"): StatusTree {
  const out: StatusTree = new Map();
  const entries = git(gitdir, "ls-tree", "-r", ref)
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const tab = line.indexOf("\t");
      return { oid: line.slice(0, tab).split(" ")[2] as string, path: line.slice(tab + 1) };
    })
    .filter((e) => e.path.startsWith(prefix));
  const todo = entries.filter((e) => {
    const hit = checked.get(`${e.oid}:${e.path}`);
    if (hit) out.set(e.path, hit);
    return !hit;
  });
  if (todo.length === 0) return out;
  const batch = gitBuffer(
    gitdir,
    ["cat-file", "--batch"],
    `${todo.map((e) => e.oid).join("\n")}\n`,
  );
  let at = 0;
  for (const { path, oid } of todo) {
    const nl = batch.indexOf(10, at);
    const size = Number(batch.toString("latin1", at, nl).split(" ")[2]);
    const text = batch.subarray(nl + 1, nl + 1 + size);
    at = nl + 1 + size + 1;
    const kind = kindOfPath(path);
    if (!kind) throw new Error(`unexpected file ${path} on ${ref}`);
    const loaded = loadYaml(text, path, { maxBytes: 16 << 20 });
    if (!loaded.yaml) throw new Error(`${path}: ${JSON.stringify(loaded.findings)}`);
    const problems = validateStatusFile(kind, loaded.yaml.value);
    if (problems.length > 0) throw new Error(`${path}: ${JSON.stringify(problems)}`);
    out.set(path, loaded.yaml.value as Record<string, unknown>);
    checked.set(`${oid}:${path}`, loaded.yaml.value as Record<string, unknown>);
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Every file of every commit reachable from `ref`, schema-checked (history, not just the head). */
export function checkHistory(gitdir: string, ref: string): number {
  let n = 0;
  for (const commit of git(gitdir, "rev-list", ref).split("\n").filter(Boolean)) {
    readStatusTree(gitdir, commit);
    n++;
  }
  return n;
}

/** True when some object of the store (reachable or not, loose or packed) contains `needle`. */
export function storeContains(gitdir: string, needle: string): boolean {
  const all = gitBuffer(gitdir, ["cat-file", "--batch-all-objects", "--batch", "--unordered"]);
  return all.includes(Buffer.from(needle));
}

export function commitCount(gitdir: string, ref: string): number {
  try {
    return Number(git(gitdir, "rev-list", "--count", ref));
  } catch {
    return 0;
  }
}

export function get(obj: unknown, ...path: Array<string | number>): unknown {
  let v: unknown = obj;
  for (const k of path) v = (v as Record<string | number, unknown> | undefined)?.[k];
  return v;
}
