/**
 * JSON views of agents for the admin API: plain data, bigint and bytes turned into strings.
 * Every text an agent wrote (attributes, health and remote-config errors, file names) goes
 * through the service's redactor first, as on the status branch: the API is read by people
 * and tools that may not see the agents' secrets.
 */
import {
  type AgentState,
  agentAttributes,
  agentCapabilityNames,
  RemoteConfigStatus,
} from "../opamp/index.js";
import { Marker, Redactor } from "../redact/index.js";
import { attributeView, MAX_VIEW_TEXT } from "./view-attribute.js";

export { MAX_VIEW_TEXT } from "./view-attribute.js";

/**
 * The redactor views use unless given one: a random key until the service sets the fleet's
 * (useViewRedactor at start), so the API shows the status branch's markers.
 */
let viewRedactor = new Redactor(Marker.random());

/** Agent text as views show it: secrets replaced by markers, cut at MAX_VIEW_TEXT. */
export function viewText(text: string | null | undefined): string | null {
  return text ? viewRedactor.text(text, MAX_VIEW_TEXT) : null;
}

/** One agent attribute as views show it (redacted through all three layers). */
export function viewAttribute(key: string, value: string): [string, string] {
  return attributeView(viewRedactor, key, value);
}

/** Sets the redactor of agentView (the service's, keyed with the fleet's redaction key). */
export function useViewRedactor(redactor: Redactor): void {
  viewRedactor = redactor;
}

const STATUS_NAMES = Object.fromEntries(Object.entries(RemoteConfigStatus).map(([k, v]) => [v, k]));

/**
 * An agent as the API shows it. `unauthorizedGroup`: the group its attributes select but its
 * credentials do not allow; the agent is then listed with `group: null, unauthorized: {group}`.
 */
export function agentView(
  agent: Readonly<AgentState>,
  group: string | undefined,
  detail = false,
  unauthorizedGroup?: string,
  redactor: Redactor = viewRedactor,
) {
  const text = (s: string | null | undefined) => (s ? redactor.text(s, MAX_VIEW_TEXT) : null);
  const attribute = (key: string, value: string) => redactor.attribute(key, value, MAX_VIEW_TEXT);
  const attrs = (kvs: { key: string; value?: { stringValue?: string } | null }[] | undefined) =>
    Object.fromEntries((kvs ?? []).map((kv) => attribute(kv.key, kv.value?.stringValue ?? "")));
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
    attributes: Object.fromEntries([...agentAttributes(agent)].map(([k, v]) => attribute(k, v))),
    remoteConfig: rcs
      ? {
          reportedHash: agent.reportedHash || null,
          status: STATUS_NAMES[rcs.status ?? 0] ?? "UNSET",
          error: text(rcs.errorMessage),
        }
      : null,
    /** Hex of its AvailableComponents hash; GET /api/v1/components names the types. */
    componentsHash: componentsHashOf(agent),
    health: agent.health
      ? {
          healthy: agent.health.healthy === true,
          status: text(agent.health.status),
          lastError: text(agent.health.lastError),
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
    capabilities: agentCapabilityNames(agent.capabilities),
    effectiveConfig: Object.entries(files).map(([name, f]) => ({
      name: text(name) ?? "",
      contentType: text(f.contentType) ?? "",
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
