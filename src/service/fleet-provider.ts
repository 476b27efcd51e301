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
import type { BundleParts } from "../bundle.js";
import type {
  AgentState,
  DesiredState,
  DesiredStateProvider,
  PackageOffer,
  TelemetryOffer,
} from "../opamp/index.js";
import { agentAttributes, descriptionIdentity } from "../opamp/index.js";
import type { RolloutController } from "../queue/index.js";
import type { FleetSync } from "../sync/index.js";
import type { BundleStore } from "./bundle-store.js";
import { Compatibility } from "./compatibility.js";
import type { ConfigStore } from "./config-store.js";
import { GroupScopes } from "./group-scope.js";
import { type RefSources, resolveTelemetry } from "./secret-refs.js";

/** How bundles beyond their files are served. */
export interface BundleServing {
  bundles: BundleStore;
  /** Where `${env:…}` / `${file:…}` references are resolved. */
  refs: RefSources;
  /** The URL of a package file the service serves itself; undefined: it serves none. */
  packageUrl(sha256: string): string | undefined;
  onResolveError?: (bundleId: string, err: unknown) => void;
}

interface ServedParts {
  telemetry?: DesiredState["telemetry"];
  packages?: readonly PackageOffer[];
}

export class FleetProvider implements DesiredStateProvider {
  readonly #sync: FleetSync;
  readonly #rollouts: RolloutController;
  readonly #configs: ConfigStore;
  readonly #scopes = new GroupScopes();
  readonly #serving: BundleServing | undefined;
  /** Resolved telemetry and final package URLs per bundle id (memory only: they hold secrets). */
  readonly #served = new Map<string, ServedParts>();
  readonly compatibility: Compatibility;
  /** forgetResolved calls, plus desired states seen replaced (see `version`). */
  #own = 0;
  #seenCurrent: unknown;
  /**
   * The group each agent state selects, valid while both its description (descriptionIdentity) and the
   * desired state (a new commit) are the ones it was computed from: the selectors are not
   * evaluated again on every message.
   */
  readonly #selected = new WeakMap<
    object,
    { from: unknown; state: unknown; group: string | undefined }
  >();

  constructor(
    sync: FleetSync,
    rollouts: RolloutController,
    configs: ConfigStore,
    serving?: BundleServing,
  ) {
    this.#serving = serving;
    this.#sync = sync;
    this.#rollouts = rollouts;
    this.#configs = configs;
    // Rollouts serve bundles; the components needed are those of the bundle's files.
    this.compatibility = new Compatibility(
      configs,
      (id) => serving?.bundles.get(id).configHash ?? id,
    );
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
    const state = this.#sync.current;
    const cached = this.#selected.get(agent);
    const from = descriptionIdentity(agent);
    if (cached && cached.from === from && cached.state === state) return cached.group;
    const group = this.#sync.assign(this.attributes(agent), agent.instanceUid).group;
    this.#selected.set(agent, { from, state, group });
    return group;
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

  /**
   * The agent's attributes, derived on each call: only a changed description or a new commit
   * asks (`selectedGroup` caches the group), so keeping a map per agent (~350 B of heap each)
   * would save nothing.
   */
  attributes(agent: Readonly<AgentState>): ReadonlyMap<string, string> {
    return agentAttributes(agent);
  }

  /** The bundle id and parts `agent` is served now (stable or target), or undefined. */
  servedBundle(agent: Readonly<AgentState>): { id: string; parts: BundleParts } | undefined {
    const group = this.groupOf(agent);
    if (group === undefined) return undefined;
    const served = this.servedTo(agent, group);
    if (!served) return undefined;
    return {
      id: served.hash,
      parts: this.#serving?.bundles.get(served.hash) ?? {
        configHash: served.hash,
        telemetry: {},
        packages: [],
      },
    };
  }

  /** Forgets resolved values (SIGHUP, a new commit): the next offer resolves them again. */
  forgetResolved(): void {
    this.#served.clear();
    this.#own++;
  }

  /**
   * DesiredStateProvider.version: increases whenever any input of `desired` other than the
   * agent's own state may have changed: the Git desired state (groups, selectors, hashes,
   * heartbeat intervals), any group's rollout state (stage, cohort, rejections, stable hash),
   * the configs and bundles stored, resolved secrets and package URLs (forgetResolved).
   * Group scopes and compatibility are pure functions of those and of the agent. O(1).
   */
  get version(): number {
    const current = this.#sync.current;
    if (current !== this.#seenCurrent) {
      this.#seenCurrent = current;
      this.#own++;
    }
    return (
      this.#own +
      this.#rollouts.servingVersion +
      this.#configs.changes +
      (this.#serving?.bundles.changes ?? 0)
    );
  }

  desired(agent: Readonly<AgentState>): DesiredState | undefined {
    const group = this.groupOf(agent);
    if (group === undefined) return undefined;
    const spec = this.#sync.current?.groups.get(group);
    const heartbeat = spec ? { heartbeatIntervalSeconds: spec.heartbeatIntervalSeconds } : {};
    const bundle = this.servedBundle(agent);
    if (!bundle) return heartbeat;
    const files = this.#configs.get(bundle.parts.configHash);
    const extra = this.#partsOf(bundle.id, bundle.parts);
    if (!files) return { ...heartbeat, ...extra };
    return { config: { hash: bundle.parts.configHash, files }, ...heartbeat, ...extra };
  }

  #partsOf(id: string, parts: BundleParts): ServedParts {
    if (id === parts.configHash || !this.#serving) return {};
    let served = this.#served.get(id);
    if (served) return served;
    served = {};
    try {
      if (Object.keys(parts.telemetry).length > 0) {
        served.telemetry = resolveTelemetry(parts.telemetry, this.#serving.refs) as Partial<
          Record<"metrics" | "traces" | "logs", TelemetryOffer>
        >;
      }
    } catch (err) {
      // Checked before the rollout started; a reference gone since then offers no telemetry.
      this.#serving.onResolveError?.(id, err);
    }
    const packages: PackageOffer[] = [];
    for (const p of parts.packages) {
      const url = p.url ?? this.#serving.packageUrl(p.sha256);
      if (url) packages.push({ ...p, url });
    }
    if (packages.length > 0) served.packages = packages;
    this.#served.set(id, served);
    return served;
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
