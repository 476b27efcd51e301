/**
 * The desired state the OpAMP server asks for on every message: the agent's group (from the
 * Git desired state's matcher), then the hash its group's rollout serves it (stable or
 * target), then that hash's files. Synchronous and from memory: no I/O per message.
 */
import type { AgentState, DesiredState, DesiredStateProvider } from "../opamp/index.js";
import { agentAttributes } from "../opamp/index.js";
import type { RolloutController } from "../queue/index.js";
import type { FleetSync } from "../sync/index.js";
import type { ConfigStore } from "./config-store.js";

export class FleetProvider implements DesiredStateProvider {
  readonly #sync: FleetSync;
  readonly #rollouts: RolloutController;
  readonly #configs: ConfigStore;
  // Attributes per agent state: re-derived only when its description object changes.
  readonly #attributes = new WeakMap<
    object,
    { from: unknown; attrs: ReadonlyMap<string, string> }
  >();

  constructor(sync: FleetSync, rollouts: RolloutController, configs: ConfigStore) {
    this.#sync = sync;
    this.#rollouts = rollouts;
    this.#configs = configs;
  }

  /** The agent's group, or undefined when it is unassigned. */
  groupOf(agent: Readonly<AgentState>): string | undefined {
    return this.#sync.assign(this.attributes(agent), agent.instanceUid).group;
  }

  attributes(agent: Readonly<AgentState>): ReadonlyMap<string, string> {
    const cached = this.#attributes.get(agent);
    if (cached && cached.from === agent.description) return cached.attrs;
    const attrs = agentAttributes(agent);
    this.#attributes.set(agent, { from: agent.description, attrs });
    return attrs;
  }

  desired(agent: Readonly<AgentState>): DesiredState | undefined {
    const group = this.groupOf(agent);
    if (group === undefined) return undefined;
    const spec = this.#sync.current?.groups.get(group);
    const heartbeat = spec ? { heartbeatIntervalSeconds: spec.heartbeatIntervalSeconds } : {};
    const served = this.#rollouts.served(group, agent.instanceUid);
    const files = served && this.#configs.get(served.hash);
    if (!served || !files) return heartbeat;
    return { config: { hash: served.hash, files }, ...heartbeat };
  }
}
