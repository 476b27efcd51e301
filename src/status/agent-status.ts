/**
 * An agent's status file (status/agents/<group>/<uid>.yaml) from its AgentState and where the
 * service places it (group, desired hash and commit). Pure: the same state and placement give
 * the same file, byte for byte, so an unchanged agent never produces a change.
 *
 * Only meaningful state is written: no lastSeen, no sequence numbers, no health timestamps
 * (they move with every heartbeat). Every string from the agent (attribute keys and values,
 * remote-config error, health status, last error and component names, config file names and
 * content types, effective configs) goes through the redactor first (src/redact), then is cut
 * at MAX_AGENT_TEXT (4096) characters; attribute maps at 256 entries, component health at 4
 * levels and 256 components.
 */
import type { AgentState, AnyValue, ComponentHealth, KeyValue } from "../opamp/index.js";
import { agentCapabilityNames } from "../opamp/index.js";
import type { Redactor } from "../redact/index.js";
import { componentsStatus } from "./agent-components.js";
import { effectiveConfigStatus } from "./effective-config.js";
import type {
  AgentBundleStatus,
  AgentFacts,
  AgentStatusFile,
  AttributeValue,
  HealthStatus,
} from "./model.js";
import { API_VERSION } from "./model.js";
import { checkGroupName } from "./paths.js";
import { type EffectiveConfigMode, MAX_AGENT_TEXT, PROCESS_REDACTOR, setOwn } from "./redact.js";

/** Where the service puts an agent: its group (null: unassigned) and what it serves it. */
export interface AgentPlacement {
  group: string | null;
  /** The config hash served to this agent (stable or rollout target); null when none. */
  desiredHash: string | null;
  /** The commit that introduced `desiredHash`. */
  desiredCommit: string | null;
  /**
   * The group the agent's attributes select but its credentials do not allow (per-group
   * credentials); such an agent has group null and is served nothing.
   */
  unauthorizedGroup?: string;
  /** The agent's bundle beyond its config (service/bundle-view.ts); absent: not written. */
  bundle?: AgentBundleStatus;
  /** The last command sent to the agent (service restart requests); absent: not written. */
  lastCommand?: AgentStatusFile["lastCommand"];
  /** The agent's credentials are revoked (API or fleet.yaml): when, and by whom. */
  revoked?: { at: string; by: string };
}

export interface AgentStatusOptions {
  /** Effective config bodies above this are not written. Default 256 KiB. */
  maxConfigBytes?: number;
  /** How effective config bodies are written. Default "redacted". */
  effectiveConfig?: EffectiveConfigMode;
  /** The keyed redactor (the service's key). Default: one with a random key per process. */
  redactor?: Redactor;
  /**
   * The redactor's key, for renders in the worker thread (a Redactor does not survive
   * postMessage): the worker rebuilds the same redactor from it, so markers match.
   */
  redactionKey?: Uint8Array;
}

const MAX_ATTRIBUTES = 256;
const MAX_COMPONENTS = 256;
const MAX_DEPTH = 4;

const STATUS_NAMES = ["UNSET", "APPLIED", "APPLYING", "FAILED"] as const;

/** The redactor of the rendering in progress (rendering is synchronous, never nested). */
let redactor: Redactor = PROCESS_REDACTOR;

/** Any string the agent sent: secrets replaced, cut at MAX_AGENT_TEXT; "" and absent → null. */
function text(s: string | undefined | null): string | null {
  if (s === undefined || s === null || s === "") return null;
  return redactor.text(s, MAX_AGENT_TEXT);
}

function iso(ms: number | null): string | null {
  if (ms === null || !Number.isFinite(ms)) return null;
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

function int64(v: unknown): number | string {
  if (typeof v === "number") return v;
  const s = String(v);
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : s;
}

function plain(v: AnyValue | null | undefined): unknown {
  if (!v) return null;
  if (v.stringValue !== undefined && v.stringValue !== null) return v.stringValue;
  if (v.boolValue !== undefined && v.boolValue !== null) return v.boolValue;
  if (v.intValue !== undefined && v.intValue !== null) return int64(v.intValue);
  if (v.doubleValue !== undefined && v.doubleValue !== null) return v.doubleValue;
  if (v.bytesValue) return Buffer.from(v.bytesValue).toString("base64");
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(plain);
  if (v.kvlistValue) {
    const out: Record<string, unknown> = {};
    for (const kv of v.kvlistValue.values ?? []) setOwn(out, kv.key, plain(kv.value));
    return out;
  }
  return null;
}

function attributeValue(p: unknown): AttributeValue {
  if (p === null || p === undefined || typeof p === "boolean") return p ?? null;
  if (typeof p === "number") return Number.isFinite(p) ? p : String(p);
  if (typeof p === "string") return text(p) ?? "";
  return text(JSON.stringify(p));
}

/**
 * Attributes through all three layers of the redactor: a value under a secret-looking key
 * (`api.key`, `db.password`) is hidden whole, header-like and nested values by structure.
 */
function attributes(list: KeyValue[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  const sorted = [...(list ?? [])].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const kv of sorted.slice(0, MAX_ATTRIBUTES)) {
    const one: Record<string, unknown> = {};
    setOwn(one, kv.key, plain(kv.value));
    const [entry] = Object.entries(redactor.value(one).value as Record<string, unknown>);
    if (entry) setOwn(out, text(entry[0]) ?? "", attributeValue(entry[1]));
  }
  return out;
}

function health(h: ComponentHealth, depth: number, budget: { left: number }): HealthStatus {
  const out: HealthStatus = {
    healthy: h.healthy === true,
    status: text(h.status),
    lastError: text(h.lastError),
  };
  const entries = Object.entries(h.componentHealthMap ?? {}).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  if (entries.length === 0) return out;
  if (depth >= MAX_DEPTH) {
    out.truncated = entries.length;
    return out;
  }
  const components: Record<string, HealthStatus> = {};
  let left = 0;
  for (const [name, child] of entries) {
    if (budget.left <= 0) {
      left++;
      continue;
    }
    budget.left--;
    setOwn(components, text(name) ?? "", health(child, depth + 1, budget));
  }
  out.components = components;
  if (left > 0) out.truncated = left;
  return out;
}

/** The status file of an agent and the facts the writer keeps of it. */
export function agentStatus(
  agent: Readonly<AgentState>,
  placement: AgentPlacement,
  options: AgentStatusOptions = {},
): { file: AgentStatusFile; facts: AgentFacts } {
  redactor = options.redactor ?? PROCESS_REDACTOR;
  try {
    return render(agent, placement, options);
  } finally {
    redactor = PROCESS_REDACTOR;
  }
}

function render(
  agent: Readonly<AgentState>,
  placement: AgentPlacement,
  options: AgentStatusOptions,
): { file: AgentStatusFile; facts: AgentFacts } {
  const group = placement.group === null ? null : checkGroupName(placement.group);
  const rcs = agent.remoteConfigStatus;
  const reportedHash = agent.reportedHash === "" ? null : agent.reportedHash.slice(0, 128);
  const status = rcs ? (STATUS_NAMES[rcs.status ?? 0] ?? null) : null;
  const error = text(rcs?.errorMessage);
  const desiredHash = placement.desiredHash;
  const drift = desiredHash !== null && (reportedHash !== desiredHash || status === "FAILED");
  const h = agent.health ? health(agent.health, 0, { left: MAX_COMPONENTS }) : null;
  // Only for agents that reported Collector components, so other agents' files stay as they were.
  const components = componentsStatus(agent.availableComponents);
  const file: AgentStatusFile = {
    apiVersion: API_VERSION,
    kind: "AgentStatus",
    instanceUid: agent.instanceUid,
    group,
    connected: agent.connected,
    transport: agent.transport,
    lastConnected: iso(agent.lastConnectedAt),
    lastDisconnected: iso(agent.lastDisconnectedAt),
    description: {
      identifying: attributes(agent.description?.identifyingAttributes),
      nonIdentifying: attributes(agent.description?.nonIdentifyingAttributes),
    },
    ...(components ? { components } : {}),
    capabilities: agentCapabilityNames(agent.capabilities, { unknownBits: true }),
    remoteConfig: {
      desiredHash,
      desiredCommit: placement.desiredCommit,
      reportedHash,
      status,
      error,
    },
    health: h,
    effectiveConfig: effectiveConfigStatus(
      agent.effectiveConfig,
      options.maxConfigBytes,
      (n) => text(n) ?? "",
      { mode: options.effectiveConfig ?? "redacted", redactor },
    ),
    drift,
  };
  // Only on unauthorized agents, so every other agent's file stays as it was.
  const unauthorized =
    placement.unauthorizedGroup === undefined
      ? undefined
      : checkGroupName(placement.unauthorizedGroup);
  if (unauthorized !== undefined) file.unauthorized = { group: unauthorized };
  if (placement.bundle) file.bundle = redactedBundle(placement.bundle);
  if (placement.lastCommand)
    file.lastCommand = { ...placement.lastCommand, by: text(placement.lastCommand.by) ?? "" };
  // Only on revoked agents, likewise; `by` is an actor or `git:<commit>`, cut like agent text.
  if (placement.revoked)
    file.revoked = {
      at: placement.revoked.at.slice(0, 64),
      by: placement.revoked.by.slice(0, 256),
    };
  const facts: AgentFacts = {
    uid: agent.instanceUid,
    group,
    connected: agent.connected,
    healthy: h ? h.healthy : null,
    healthError: h?.lastError ?? null,
    reportedHash,
    desiredHash,
    status,
    error,
    drift,
    lastConnectedAt: agent.lastConnectedAt,
    lastDisconnectedAt: agent.lastDisconnectedAt,
    ...(unauthorized !== undefined ? { unauthorized: true } : {}),
  };
  return { file, facts };
}

/** The bundle block with every agent string redacted and cut (names too: they are the agent's). */
function redactedBundle(b: AgentBundleStatus): AgentBundleStatus {
  const out: AgentBundleStatus = { ...b, error: text(b.error ?? undefined) };
  if (b.connectionSettings)
    out.connectionSettings = {
      ...b.connectionSettings,
      error: text(b.connectionSettings.error ?? undefined),
    };
  if (b.packages) {
    const packages: NonNullable<AgentBundleStatus["packages"]>["packages"] = {};
    for (const [name, p] of Object.entries(b.packages.packages).slice(0, MAX_ATTRIBUTES))
      packages[text(name) ?? ""] = {
        ...p,
        version: text(p.version ?? undefined),
        offeredVersion: text(p.offeredVersion ?? undefined),
        error: text(p.error ?? undefined),
      };
    out.packages = { ...b.packages, error: text(b.packages.error ?? undefined), packages };
  }
  return out;
}
