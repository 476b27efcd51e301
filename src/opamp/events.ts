/**
 * Typed agent events that later modules (rollouts, status branch) subscribe to.
 *
 * Contract: events of one agent are emitted in the order its messages were processed, after
 * the change was stored in Redis. Listeners run synchronously in the server's event loop; a
 * listener that throws is logged and does not affect the agent or other listeners. Long work
 * belongs in a queue, not in a listener.
 */
import { TypedEvents } from "../events.js";
import { type AgentState, healthSummary, type ReportField, type Transport } from "./agent-state.js";
import type {
  AgentDescription,
  AvailableComponents,
  ComponentHealth,
  EffectiveConfig,
  RemoteConfigStatusMessage,
} from "./messages.js";

export interface AgentEventMap {
  connected: { instanceUid: string; transport: Transport; agent: Readonly<AgentState> };
  /** `lost`: the agent vanished with a dead process (see replica-liveness.ts). */
  disconnected: {
    instanceUid: string;
    reason: string;
    agent: Readonly<AgentState>;
    lost?: boolean;
    /**
     * The agent is connected through another replica now (the stored `owner` names it): only
     * this process' own bookkeeping ends; nothing is stored and the rollouts keep the member.
     */
    elsewhere?: boolean;
  };
  descriptionChanged: {
    instanceUid: string;
    description: AgentDescription;
    agent: Readonly<AgentState>;
  };
  capabilitiesChanged: { instanceUid: string; capabilities: bigint; agent: Readonly<AgentState> };
  remoteConfigStatusChanged: {
    instanceUid: string;
    status: RemoteConfigStatusMessage;
    agent: Readonly<AgentState>;
  };
  /**
   * The agent's health means something new (health-wire.ts). `healthy` and `lastError` are
   * the root's; `health`, the whole tree, is decoded when read.
   */
  healthChanged: {
    instanceUid: string;
    healthy: boolean;
    lastError: string;
    readonly health: ComponentHealth;
    agent: Readonly<AgentState>;
  };
  effectiveConfigChanged: {
    instanceUid: string;
    effectiveConfig: EffectiveConfig;
    agent: Readonly<AgentState>;
  };
  /** The agent reported new PackageStatuses (decoded as PackageStatusesMessage). */
  packageStatusesChanged: { instanceUid: string; agent: Readonly<AgentState> };
  /** The agent reported a new ConnectionSettingsStatus. */
  connectionSettingsStatusChanged: { instanceUid: string; agent: Readonly<AgentState> };
  /** Connection settings or packages were just offered to the agent (in a reply or a push). */
  offered: { instanceUid: string; agent: Readonly<AgentState> };
  /** The agent's AvailableComponents changed (a new hash, or the full map after a hash). */
  availableComponentsChanged: {
    instanceUid: string;
    availableComponents: AvailableComponents;
    agent: Readonly<AgentState>;
  };
  /** The credential scopes the agent presents changed (another token or certificate). */
  scopesChanged: { instanceUid: string; scopes: readonly string[]; agent: Readonly<AgentState> };
}
export type AgentEventName = keyof AgentEventMap;

/** The agent events (see the contract above); `onError` gets a listener's exception. */
export class AgentEvents extends TypedEvents<AgentEventMap> {}

/** What one processed message changed, in the order its events are emitted. */
export interface AgentChanges {
  connected: boolean;
  capabilities: boolean;
  fields: readonly ReportField[];
  disconnect: boolean;
  /** The agent's credential scopes changed (emitted after connected, before the fields). */
  scopes?: boolean;
  /** Connection settings or packages were offered in the reply (emitted last but disconnect). */
  offered?: boolean;
}

/** Emits the events for `changes`: connected first, disconnected last. */
export function emitAgentEvents(
  events: AgentEvents,
  agent: AgentState,
  changes: AgentChanges,
): void {
  const instanceUid = agent.instanceUid;
  if (changes.connected)
    events.emit("connected", { instanceUid, transport: agent.transport, agent });
  if (changes.scopes) events.emit("scopesChanged", { instanceUid, scopes: agent.scopes, agent });
  if (changes.capabilities) {
    events.emit("capabilitiesChanged", { instanceUid, capabilities: agent.capabilities, agent });
  }
  for (const field of changes.fields) {
    if (field === "description" && agent.description) {
      events.emit("descriptionChanged", { instanceUid, description: agent.description, agent });
    } else if (field === "health") {
      const summary = healthSummary(agent);
      if (summary)
        events.emit("healthChanged", {
          instanceUid,
          healthy: summary.healthy,
          lastError: summary.lastError,
          get health() {
            return agent.health as ComponentHealth;
          },
          agent,
        });
    } else if (field === "effectiveConfig" && agent.effectiveConfig) {
      events.emit("effectiveConfigChanged", {
        instanceUid,
        effectiveConfig: agent.effectiveConfig,
        agent,
      });
    } else if (field === "remoteConfigStatus" && agent.remoteConfigStatus) {
      events.emit("remoteConfigStatusChanged", {
        instanceUid,
        status: agent.remoteConfigStatus,
        agent,
      });
    } else if (field === "packageStatuses" && agent.packageStatuses) {
      events.emit("packageStatusesChanged", { instanceUid, agent });
    } else if (field === "connectionSettingsStatus" && agent.connectionSettingsStatus) {
      events.emit("connectionSettingsStatusChanged", { instanceUid, agent });
    } else if (field === "availableComponents" && agent.availableComponents) {
      events.emit("availableComponentsChanged", {
        instanceUid,
        availableComponents: agent.availableComponents,
        agent,
      });
    }
  }
  if (changes.offered) events.emit("offered", { instanceUid, agent });
  if (changes.disconnect) {
    events.emit("disconnected", { instanceUid, reason: "agent_disconnect", agent });
  }
}
