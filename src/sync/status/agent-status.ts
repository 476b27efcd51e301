/**
 * An agent's status file (status/agents/<group>/<uid>.yaml) from its AgentState and where the
 * service places it (group, desired hash and commit). Pure: the same state and placement give
 * the same file, byte for byte, so an unchanged agent never produces a change.
 *
 * Only meaningful state is written: no lastSeen, no sequence numbers, no health timestamps
 * (they move with every heartbeat). Strings from the agent are cut at 4 KiB, attribute maps
 * at 256 entries, component health at 4 levels and 256 components.
 */
import { createHash } from "node:crypto";
import type { AgentState } from "../../opamp/agent-state.js";
import { AgentCapabilities } from "../../opamp/capabilities.js";
import type { AnyValue, ComponentHealth, KeyValue } from "../../opamp/messages.js";
import type {
  AgentFacts,
  AgentStatusFile,
  AttributeValue,
  ConfigFileStatus,
  HealthStatus,
} from "./model.js";
import { API_VERSION } from "./model.js";
import { checkGroupName } from "./paths.js";
import { redactConfigFileCached, redactText, setOwn } from "./redact.js";

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
}

export interface AgentStatusOptions {
  /** Effective config bodies above this are not written. Default 256 KiB. */
  maxConfigBytes?: number;
}

const MAX_TEXT = 4096;
const MAX_ATTRIBUTES = 256;
const MAX_COMPONENTS = 256;
const MAX_DEPTH = 4;

const STATUS_NAMES = ["UNSET", "APPLIED", "APPLYING", "FAILED"] as const;

function text(s: string | undefined | null): string | null {
  if (s === undefined || s === null || s === "") return null;
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;
}

/** Agent-written prose (errors, health): secrets in it are redacted too. */
function prose(s: string | undefined | null): string | null {
  return text(s ? redactText(s) : s);
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

function attributeValue(v: AnyValue | null | undefined): AttributeValue {
  const p = plain(v);
  if (p === null || typeof p === "boolean") return p;
  if (typeof p === "number") return Number.isFinite(p) ? p : String(p);
  if (typeof p === "string") return text(p) ?? "";
  return text(JSON.stringify(p));
}

function attributes(list: KeyValue[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  const sorted = [...(list ?? [])].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const kv of sorted.slice(0, MAX_ATTRIBUTES))
    setOwn(out, text(kv.key) ?? "", attributeValue(kv.value));
  return out;
}

/** Names of the capability bits set (unknown bits as bitN), in bit order. */
export function capabilityNames(word: bigint): string[] {
  const names: string[] = [];
  const known = new Map<bigint, string>();
  for (const [name, bit] of Object.entries(AgentCapabilities)) known.set(bit, name);
  for (let i = 0n; i < 64n; i++) {
    const bit = 1n << i;
    if ((word & bit) === 0n) continue;
    names.push(known.get(bit) ?? `bit${i}`);
  }
  return names;
}

function health(h: ComponentHealth, depth: number, budget: { left: number }): HealthStatus {
  const out: HealthStatus = {
    healthy: h.healthy === true,
    status: text(h.status),
    lastError: prose(h.lastError),
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

function effectiveConfig(
  agent: Readonly<AgentState>,
  maxBytes: number | undefined,
): AgentStatusFile["effectiveConfig"] {
  const map = agent.effectiveConfig?.configMap?.configMap;
  if (!agent.effectiveConfig || !map) return agent.effectiveConfig ? emptyConfig() : null;
  const files: Record<string, ConfigFileStatus> = {};
  const names = Object.keys(map).sort();
  const hash = createHash("sha256");
  for (const name of names) {
    const f = map[name];
    const entry = redactConfigFileCached(
      name,
      f?.contentType ?? "",
      f?.body ?? new Uint8Array(),
      maxBytes,
    );
    setOwn(files, text(name) ?? "", entry);
    hash.update(JSON.stringify([name, entry])).update("\0");
  }
  return { hash: hash.digest("hex"), files };
}

function emptyConfig(): NonNullable<AgentStatusFile["effectiveConfig"]> {
  return { hash: createHash("sha256").digest("hex"), files: {} };
}

/** The status file of an agent and the facts the writer keeps of it. */
export function agentStatus(
  agent: Readonly<AgentState>,
  placement: AgentPlacement,
  options: AgentStatusOptions = {},
): { file: AgentStatusFile; facts: AgentFacts } {
  const group = placement.group === null ? null : checkGroupName(placement.group);
  const rcs = agent.remoteConfigStatus;
  const reportedHash = agent.reportedHash === "" ? null : agent.reportedHash.slice(0, 128);
  const status = rcs ? (STATUS_NAMES[rcs.status ?? 0] ?? null) : null;
  const error = prose(rcs?.errorMessage);
  const desiredHash = placement.desiredHash;
  const drift = desiredHash !== null && (reportedHash !== desiredHash || status === "FAILED");
  const h = agent.health ? health(agent.health, 0, { left: MAX_COMPONENTS }) : null;
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
    capabilities: capabilityNames(agent.capabilities),
    remoteConfig: {
      desiredHash,
      desiredCommit: placement.desiredCommit,
      reportedHash,
      status,
      error,
    },
    health: h,
    effectiveConfig: effectiveConfig(agent, options.maxConfigBytes),
    drift,
  };
  // Only on unauthorized agents, so every other agent's file stays as it was.
  const unauthorized =
    placement.unauthorizedGroup === undefined
      ? undefined
      : checkGroupName(placement.unauthorizedGroup);
  if (unauthorized !== undefined) file.unauthorized = { group: unauthorized };
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
