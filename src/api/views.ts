/**
 * JSON views of agents for the admin API: plain data, bigint and bytes turned into strings.
 */
import {
  AgentCapabilities,
  type AgentState,
  agentAttributes,
  RemoteConfigStatus,
} from "../opamp/index.js";

const STATUS_NAMES = Object.fromEntries(Object.entries(RemoteConfigStatus).map(([k, v]) => [v, k]));

/** Names of the capability bits set in `word`. */
export function capabilityNames(word: bigint): string[] {
  return Object.entries(AgentCapabilities)
    .filter(([, bit]) => (word & bit) === bit)
    .map(([name]) => name);
}

/**
 * An agent as the API shows it. `unauthorizedGroup`: the group its attributes select but its
 * credentials do not allow; the agent is then listed with `group: null, unauthorized: {group}`.
 */
export function agentView(
  agent: Readonly<AgentState>,
  group: string | undefined,
  detail = false,
  unauthorizedGroup?: string,
) {
  const attrs = (kvs: { key: string; value?: { stringValue?: string } | null }[] | undefined) =>
    Object.fromEntries((kvs ?? []).map((kv) => [kv.key, kv.value?.stringValue ?? ""]));
  const rcs = agent.remoteConfigStatus;
  const view = {
    instanceUid: agent.instanceUid,
    group: group ?? null,
    unauthorized: unauthorizedGroup === undefined ? null : { group: unauthorizedGroup },
    connected: agent.connected,
    transport: agent.transport,
    lastConnectedAt: agent.lastConnectedAt,
    lastDisconnectedAt: agent.lastDisconnectedAt,
    lastSeenAt: agent.lastSeenAt,
    attributes: Object.fromEntries(agentAttributes(agent)),
    remoteConfig: rcs
      ? {
          reportedHash: agent.reportedHash || null,
          status: STATUS_NAMES[rcs.status ?? 0] ?? "UNSET",
          error: rcs.errorMessage || null,
        }
      : null,
    /** Hex of its AvailableComponents hash; GET /api/v1/components names the types. */
    componentsHash: componentsHashOf(agent),
    health: agent.health
      ? {
          healthy: agent.health.healthy === true,
          status: agent.health.status || null,
          lastError: agent.health.lastError || null,
        }
      : null,
  };
  if (!detail) return view;
  const files = agent.effectiveConfig?.configMap?.configMap ?? {};
  return {
    ...view,
    description: {
      identifying: attrs(agent.description?.identifyingAttributes),
      nonIdentifying: attrs(agent.description?.nonIdentifyingAttributes),
    },
    capabilities: capabilityNames(agent.capabilities),
    effectiveConfig: Object.entries(files).map(([name, f]) => ({
      name,
      contentType: f.contentType ?? "",
      bytes: f.body?.length ?? 0,
    })),
  };
}

/** Hex of the agent's AvailableComponents hash when it reported the map too; else null. */
export function componentsHashOf(agent: Readonly<AgentState>): string | null {
  const ac = agent.availableComponents;
  if (!ac?.hash?.length || Object.keys(ac.components ?? {}).length === 0) return null;
  return Buffer.from(ac.hash).toString("hex");
}

/** kind → sorted types of an AvailableComponents map (what GET /api/v1/components shows). */
export function componentTypes(agent: Readonly<AgentState>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [kind, details] of Object.entries(agent.availableComponents?.components ?? {}))
    out[kind] = Object.keys(details?.subComponentMap ?? {}).sort();
  return out;
}
