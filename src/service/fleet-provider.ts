/**
 * The desired state the OpAMP server asks for on every message: the agent's group (from the
 * Git desired state's matcher), then the hash its group's rollout serves it (stable or
 * target), then that hash's files. Synchronous and from memory: no I/O per message.
 *
 * Agent-aware checks: an agent whose build lacks a component type of the hash its cohort
 * would get (Compatibility) is served the group's stable hash when it can run that, else
 * nothing (it keeps running what it runs). Its group's Git head hash is what decides whether
 * it is incompatible, i.e. left out of the group's rollout (AgentBridge).
 *
 * Per-group credentials: a group the agent's credential scopes do not allow is not its group
 * (groupOf answers undefined, so it is served nothing and joins no rollout); unauthorizedGroup
 * names it, for the admin API and the status branch.
 */
import type { AgentState, DesiredState, DesiredStateProvider } from "../opamp/index.js";
import { agentAttributes } from "../opamp/index.js";
import type { RolloutController } from "../queue/index.js";
import type { FleetSync } from "../sync/index.js";
import { Compatibility } from "./compatibility.js";
import type { ConfigStore } from "./config-store.js";
import { GroupScopes } from "./group-scope.js";

export class FleetProvider implements DesiredStateProvider {
  readonly #sync: FleetSync;
  readonly #rollouts: RolloutController;
  readonly #configs: ConfigStore;
  readonly #scopes = new GroupScopes();
  readonly compatibility: Compatibility;
  // Attributes per agent state: re-derived only when its description object changes.
  readonly #attributes = new WeakMap<
    object,
    { from: unknown; attrs: ReadonlyMap<string, string> }
  >();

  constructor(sync: FleetSync, rollouts: RolloutController, configs: ConfigStore) {
    this.#sync = sync;
    this.#rollouts = rollouts;
    this.#configs = configs;
    this.compatibility = new Compatibility(configs);
  }

  /**
   * What the agent lacks to run its group's current config (the Git head's hash), as
   * `kind/type`; [] when it can, when it reports no components, or when it has no group.
   */
  missingFor(agent: Readonly<AgentState>, group: string): string[] {
    const hash = this.#sync.current?.groups.get(group)?.configHash;
    return hash ? this.compatibility.missing(agent, hash) : [];
  }

  /** The group the agent's attributes select, whether or not its credentials allow it. */
  selectedGroup(agent: Readonly<AgentState>): string | undefined {
    return this.#sync.assign(this.attributes(agent), agent.instanceUid).group;
  }

  /** The agent's group: undefined when it is unassigned or its credentials do not allow it. */
  groupOf(agent: Readonly<AgentState>): string | undefined {
    const group = this.selectedGroup(agent);
    return group !== undefined && this.#scopes.allows(agent.scopes, group) ? group : undefined;
  }

  /** The group the agent selects but may not be served (its credentials do not allow it). */
  unauthorizedGroup(agent: Readonly<AgentState>): string | undefined {
    const group = this.selectedGroup(agent);
    return group !== undefined && !this.#scopes.allows(agent.scopes, group) ? group : undefined;
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
    const served = this.servedTo(agent, group);
    const files = served && this.#configs.get(served.hash);
    if (!served || !files) return heartbeat;
    return { config: { hash: served.hash, files }, ...heartbeat };
  }

  /** The hash the agent is served: the rollout's answer, or the stable hash / nothing when it cannot run it. */
  servedTo(agent: Readonly<AgentState>, group: string) {
    const served = this.#rollouts.served(group, agent.instanceUid);
    if (!served || this.compatibility.missing(agent, served.hash).length === 0) return served;
    const stable = this.#rollouts.stable(group);
    if (!stable || stable.hash === served.hash) return undefined;
    return this.compatibility.missing(agent, stable.hash).length === 0 ? stable : undefined;
  }
}
