/**
 * The service's AdminBackend (src/api/backend.ts): what the admin port shows and does, read
 * from this replica's modules (agents live here or stored in Redis, rollouts, the served
 * commit) and the console feed. Agent lists page in uid order at a cost bounded per request
 * (agent-list.ts).
 */
import type { Redis } from "ioredis";
import type {
  AdminBackend,
  AgentConfigs,
  AgentPage,
  AgentQuery,
  AgentRecord,
  GroupRecord,
  IncompatibleRecord,
  Readiness,
  RestartOutcome,
  RestartTarget,
  RolloutAction,
  ShownConfigFile,
  ValidationState,
} from "../api/backend.js";
import { AgentOrder, type AgentState, type OpampServer } from "../opamp/index.js";
import type { RolloutController } from "../queue/index.js";
import type { AgentBundleStatus, StatusWriter } from "../status/index.js";
import type { FleetSync } from "../sync/index.js";
import type { AgentCredentialAuthority } from "./agent-credentials.js";
import { AgentList } from "./agent-list.js";
import type { AgentSearchIndex } from "./agent-search.js";
import type { ComponentSets } from "./component-sets.js";
import type { ConfigStore } from "./config-store.js";
import type { ConsoleFeed } from "./console-feed.js";
import type { FleetProvider } from "./fleet-provider.js";
import type { IncompatibleAgents } from "./incompatible-agents.js";
import type { ServiceMetrics } from "./metrics.js";

export interface ServiceBackendParts {
  redis: Redis;
  /** The Redis key prefix (the agent order's key, src/opamp/agent-order.ts). */
  prefix: string;
  opamp: OpampServer;
  rollouts: RolloutController;
  configs: ConfigStore;
  sync: FleetSync | undefined;
  provider: FleetProvider | undefined;
  status: StatusWriter | undefined;
  feed: ConsoleFeed;
  metrics: () => ServiceMetrics;
  /** Agents left out of rollouts for lacking component types (agent-aware checks). */
  incompatible?: IncompatibleAgents;
  /** The agent search index; without it a search loads every agent it examines. */
  search?: AgentSearchIndex;
  /** The component sets agents report (GET /components); none: no sets listed. */
  componentSets?: ComponentSets;
  /** Agents' issued credentials and revocations. */
  credentials?: AgentCredentialAuthority;
  /** The agent's bundle beyond its config (bundle-view.ts); none: not shown. */
  bundleOf?: (agent: Readonly<AgentState>) => AgentBundleStatus | undefined;
  /** The config hash of a bundle id rollouts serve (its files' hash); none: the id itself. */
  configHashOf?: (bundleId: string) => string;
  /** A webhook's check: run by the replica that fetches Git (git-duty.ts); none: `sync`'s. */
  pokeGit?: () => void;
  /** Service.restart: RESTART to agents connected to any replica, recorded as `by`. */
  restart?: (target: RestartTarget, by: string) => Promise<RestartOutcome[]>;
}

export class ServiceBackend implements AdminBackend {
  readonly #p: ServiceBackendParts;
  readonly #list: AgentList;

  constructor(parts: ServiceBackendParts) {
    this.#p = parts;
    this.#list = new AgentList({
      order: new AgentOrder(parts.redis, parts.prefix),
      search: parts.search,
      load: (uids) => Promise.all(uids.map((u) => this.#load(u))),
      brief: async (uids) => {
        // Live agents from memory (in full); the others' filtered fields from Redis.
        const live = uids.map((u) => parts.opamp.handler.live.get(u)?.state);
        const stored = await parts.opamp.store.loadBrief(uids.filter((_, i) => !live[i]));
        let next = 0;
        return live.map((state) => state ?? stored[next++]);
      },
      place: (state) => {
        const group = parts.provider?.groupOf(state);
        const denied = parts.provider?.unauthorizedGroup(state);
        return {
          ...(group !== undefined ? { group } : {}),
          ...(denied !== undefined ? { unauthorizedGroup: denied } : {}),
        };
      },
      record: (state) => this.#record(state),
    });
  }

  async #load(uid: string): Promise<Readonly<AgentState> | undefined> {
    const { opamp } = this.#p;
    return opamp.handler.live.get(uid)?.state ?? (await opamp.store.load(uid));
  }

  #record(state: Readonly<AgentState>): AgentRecord {
    const { provider } = this.#p;
    const group = provider?.groupOf(state);
    const denied = provider?.unauthorizedGroup(state);
    const bundle = this.#p.bundleOf?.(state);
    return {
      state,
      ...(group !== undefined ? { group } : {}),
      ...(denied !== undefined ? { unauthorizedGroup: denied } : {}),
      ...(bundle ? { bundle } : {}),
    };
  }

  /** One page of agents in uid order, at a cost bounded per request (agent-list.ts). */
  agents(q: AgentQuery): Promise<AgentPage> {
    return this.#list.page(q);
  }

  async agent(uid: string): Promise<AgentRecord | undefined> {
    const state = await this.#load(uid);
    return state ? this.#record(state) : undefined;
  }

  async agentConfigs(uid: string): Promise<AgentConfigs | undefined> {
    const state = await this.#load(uid);
    if (!state) return undefined;
    const { status, rollouts, sync, provider } = this.#p;
    const group = provider?.groupOf(state);
    const served = group ? rollouts.served(group, uid) : undefined;
    const git = group ? sync?.current?.groups.get(group) : undefined;
    const render = (map: Record<string, { body: Uint8Array; contentType: string }>) =>
      status?.renderConfigMap({ configMap: { configMap: map } })?.files ?? {};
    const desired = git
      ? {
          hash: git.configHash,
          commit: git.hashCommit,
          files: shown(
            render(
              Object.fromEntries(
                git.files.map((f) => [f.name, { body: f.body, contentType: f.contentType }]),
              ),
            ),
          ),
        }
      : null;
    const effective = state.effectiveConfig
      ? { files: shown(status?.renderConfigMap(state.effectiveConfig)?.files ?? {}) }
      : null;
    // Rollouts serve bundles; the config hash is that of the bundle's files.
    const configHashOf = this.#p.configHashOf ?? ((id: string) => id);
    return {
      desired,
      served: served ? { hash: configHashOf(served.hash), commit: served.commit } : null,
      effective,
    };
  }

  connections(uid: string) {
    return this.#p.feed.connections(uid);
  }

  groups(): GroupRecord[] {
    const { sync, rollouts, configs } = this.#p;
    const current = sync?.current;
    return [...(current?.groups.values() ?? [])].map((g) => {
      const status = rollouts.status(g.name);
      // What the group's agents are served (after a rollback: the stable bundle, not Git's).
      const bundle = status ? (status.served ?? null) : { hash: g.bundleId, commit: g.hashCommit };
      // Rollouts serve bundles; the group's config hash is that of the bundle's files.
      const configHashOf = this.#p.configHashOf ?? ((id: string) => id);
      const served = bundle && { ...bundle, hash: configHashOf(bundle.hash) };
      const files =
        served?.hash === g.configHash
          ? g.files.map((f) => f.name)
          : ((served && configs.get(served.hash)?.map((f) => f.name)) ?? []);
      return {
        name: g.name,
        configHash: served?.hash ?? null,
        bundleId: bundle?.hash ?? null,
        hashCommit: served?.commit ?? null,
        servedCommit: current?.commit,
        priority: g.priority,
        files,
        rollout: status?.rollout ?? null,
      };
    });
  }

  rollouts() {
    const { rollouts } = this.#p;
    return rollouts.groups().flatMap((g) => rollouts.status(g) ?? []);
  }

  async incompatible(group: string): Promise<IncompatibleRecord> {
    return (await this.#p.incompatible?.summary(group)) ?? { count: 0, examples: [] };
  }

  /** One read of the sets stored per hash (component-sets.ts): never the agents. */
  async componentSets(): Promise<Record<string, Record<string, string[]>>> {
    return (await this.#p.componentSets?.sets()) ?? {};
  }

  rollout(group: string) {
    return this.#p.rollouts.status(group);
  }

  history(group: string) {
    return this.#p.rollouts.history(group);
  }

  revokeAgent(uid: string, by: string) {
    const credentials = this.#p.credentials;
    if (!credentials) return Promise.reject(new Error("agent credentials are not managed"));
    return credentials.revoke(uid, by);
  }

  async agentCredentials(uid: string): Promise<Record<string, unknown>> {
    const credentials = this.#p.credentials;
    if (!credentials) return {};
    const revoked = credentials.revocation(uid);
    return { credentials: await credentials.issued(uid), ...(revoked ? { revoked } : {}) };
  }

  restart(target: RestartTarget, by: string): Promise<RestartOutcome[]> {
    const { restart } = this.#p;
    if (!restart) return Promise.reject(new Error("commands are not supported"));
    return restart(target, by);
  }

  control(group: string, action: RolloutAction, by: string) {
    return this.#p.rollouts[action](group, by);
  }

  syncState() {
    return this.#p.sync?.status;
  }

  validation(): ValidationState | undefined {
    const { sync } = this.#p;
    if (!sync) return undefined;
    const st = sync.status;
    return {
      ...(st.head ? { head: st.head } : {}),
      ...(st.serving ? { serving: st.serving } : {}),
      ...(st.stalled ? { stalled: st.stalled } : {}),
      warnings: sync.current?.warnings ?? [],
      source: st.source,
      path: st.path,
    };
  }

  trigger(): void {
    if (this.#p.pokeGit) this.#p.pokeGit();
    else void this.#p.sync?.trigger();
  }

  async ready(): Promise<Readiness> {
    const checks: Readiness["checks"] = {};
    try {
      // Commands wait for a reconnect (maxRetriesPerRequest: null): bound the probe.
      await Promise.race([
        this.#p.redis.ping(),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error("no answer within 1 s")), 1000).unref(),
        ),
      ]);
      checks.redis = { ok: true };
    } catch (err) {
      checks.redis = { ok: false, error: (err as Error).message };
    }
    const { sync } = this.#p;
    if (sync) {
      const st = sync.status;
      checks.git = st.serving
        ? { ok: true }
        : { ok: false, error: st.lastError?.message ?? "no valid commit read yet" };
    }
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  }

  async metrics() {
    const { registry } = this.#p.metrics();
    return { type: registry.contentType, body: await registry.metrics() };
  }

  subscribe(listener: Parameters<AdminBackend["subscribe"]>[0]) {
    return this.#p.feed.subscribe(listener);
  }
}

/** The status branch's file entries as the console shows them (bytes and hashes left out). */
function shown(files: Record<string, { contentType: string; content?: unknown; note?: string }>) {
  const out: Record<string, ShownConfigFile> = {};
  for (const [name, f] of Object.entries(files)) {
    const entry: ShownConfigFile = { contentType: f.contentType };
    if (f.content !== undefined) entry.content = f.content;
    if (f.note !== undefined) entry.note = f.note;
    out[name] = entry;
  }
  return out;
}
