/**
 * Builds the status writer of `serve` (src/status) and connects it to the loop:
 * agent events from the OpAMP server, the desired state and validation results from
 * FleetSync, rollout progress from the rollout controller, and each agent's placement as the
 * OpAMP side serves it (its group, and the hash its rollout cohort is served: stable or target).
 *
 * Agent events only mark agents dirty (on any replica); the writer renders each dirty agent
 * at its next flush from `agents.load` below: the live agent when this replica serves it,
 * else the state in Redis (an agent whose state is gone there gets its file removed). Each
 * render slice first reads its agents' last commands from Redis (last-commands.ts), so a
 * restart asked through any replica shows in the `lastCommand:` block.
 *
 * When a rollout changes what an agent is served (a stage started, a rollback), no agent event
 * says so; the writer marks those agents dirty (`reconcile`), so their `desiredHash` and
 * `drift` follow at the next flush. Only the replica holding the writer lock does this.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { AgentState, OpampServer } from "../opamp/index.js";
import type { RolloutController } from "../queue/index.js";
import type { Settings } from "../settings.js";
import {
  type AgentBundleStatus,
  type AgentPlacement,
  type StatusMode,
  StatusWriter,
} from "../status/index.js";
import type { FleetSync, GitAuth } from "../sync/index.js";
import type { ConfigStore } from "./config-store.js";
import type { FleetProvider } from "./fleet-provider.js";
import type { LastCommands } from "./last-commands.js";
import { type IncompatibleSource, RolloutStatusAdapter } from "./rollout-status.js";

/**
 * An agent stored as connected but not heard of for this long is shown disconnected: its
 * replica died without recording the disconnect (a live one refreshes last-seen every 5 s).
 */
export const STALE_CONNECTION_MS = 10 * 60_000;

/**
 * The agent as shown: disconnected at its last-seen time once its stored connection is stale.
 * The copy keeps the original's prototype: a stored state's `health` is a getter there
 * (decoded on read), which a plain spread would drop. Exported for tests.
 */
export function stale<T extends Readonly<AgentState>>(
  a: T | undefined,
  now = Date.now(),
): T | undefined {
  if (!a?.connected || now - a.lastSeenAt <= STALE_CONNECTION_MS) return a;
  return Object.assign(Object.create(Object.getPrototypeOf(a)) as T, a, {
    connected: false,
    lastDisconnectedAt: a.lastSeenAt,
  });
}

const UNASSIGNED: AgentPlacement = { group: null, desiredHash: null, desiredCommit: null };

export interface StatusWiringParts {
  settings: Settings;
  redis: Redis;
  logger: Logger;
  sync: FleetSync;
  opamp: OpampServer;
  rollouts: RolloutController;
  provider: FleetProvider;
  /** The files of each config hash that may be served (names for the served block). */
  configs: ConfigStore;
  /** The agent's bundle beyond its config, for the `bundle:` block (bundle-view.ts). */
  bundleOf?: (agent: Readonly<AgentState>) => AgentBundleStatus | undefined;
  /** The last command sent to each agent (Service.restart), for the `lastCommand:` block. */
  lastCommands?: LastCommands;
  /** The config hash of a bundle id (its files' hash), for desiredHash. */
  configHashOf?: (bundleId: string) => string;
  /** Agents left out of rollouts for lacking component types, for the group files. */
  incompatible?: IncompatibleSource;
  auth?: GitAuth;
  /** Whether an agent's credentials are revoked, and by whom (agent-credentials.ts). */
  revocation?: (uid: string) => { at: string; by: string } | undefined;
  /** This process (newReplicaId), named in each status commit's `Status-Writer:` trailer. */
  replicaId?: string;
}

export function createStatusWriter(p: StatusWiringParts): StatusWriter {
  const { settings: s, sync, opamp, rollouts, provider } = p;
  const live = opamp.handler.live;
  const writer = new StatusWriter({
    redis: p.redis,
    prefix: s.redisPrefix,
    repo: s.repo as string,
    branch: s.branch,
    ...(s.path ? { path: s.path } : {}),
    mode: s.statusMode as StatusMode,
    statusBranch: s.statusBranch,
    stateDir: s.stateDir,
    ...(p.auth ? { auth: p.auth } : {}),
    env: process.env,
    intervalMs: s.statusIntervalMs,
    // One writer across replicas; a successor writes within the lease after a holder died.
    lockTtlMs: s.leaderLeaseMs,
    ...(p.replicaId ? { writerId: p.replicaId } : {}),
    retentionMs: s.statusRetentionMs,
    effectiveConfig: s.statusEffectiveConfig,
    agentEvents: opamp.events,
    fleetSync: sync,
    rollouts: new RolloutStatusAdapter(
      rollouts,
      (hash) => p.configs.get(p.configHashOf?.(hash) ?? hash)?.map((f) => f.name),
      p.configHashOf,
      p.incompatible,
    ),
    // Rendered at flush time. Live state first: the stored copy is saved in batches and may
    // lag by a moment.
    agents: {
      list: () => opamp.store.list(),
      load: async (uid) => live.get(uid)?.state ?? stale(await opamp.store.load(uid)),
      // Each slice's last commands in one HMGET (asked through any replica), for placementOf.
      ...(p.lastCommands
        ? {
            beforeRender: (uids: readonly string[]) => (p.lastCommands as LastCommands).load(uids),
            forgotten: (uids: readonly string[]) => (p.lastCommands as LastCommands).forget(uids),
          }
        : {}),
    },
    placement: (agent) => {
      const place = placementOf(agent);
      const revoked = p.revocation?.(agent.instanceUid);
      return place && revoked ? { ...place, revoked } : place;
    },
    logger: p.logger,
  });
  function placementOf(agent: Readonly<AgentState>): AgentPlacement | undefined {
    if (!sync.current) return sync.status.lastCheckAt === undefined ? undefined : UNASSIGNED;
    const unauthorizedGroup = provider.unauthorizedGroup(agent);
    if (unauthorizedGroup !== undefined) return { ...UNASSIGNED, unauthorizedGroup };
    const group = provider.groupOf(agent);
    if (group === undefined) return UNASSIGNED;
    const served = provider.servedTo(agent, group);
    // A rollout serves a bundle; the agent reports the config hash of its files.
    const desiredHash = served ? (p.configHashOf?.(served.hash) ?? served.hash) : null;
    const bundle = p.bundleOf?.(agent);
    const lastCommand = p.lastCommands?.get(agent.instanceUid);
    return {
      group,
      desiredHash,
      desiredCommit: served?.commit ?? null,
      ...(bundle ? { bundle } : {}),
      ...(lastCommand ? { lastCommand } : {}),
    };
  }
  // A whole group's answer changed (a stage started, a rollback): every agent the status
  // branch has in that group is marked dirty, wherever it is connected (the writer's record
  // of uid → file says which); at the flush, agents whose inputs did not change are skipped.
  const inGroup = async (group: string) => {
    const folder = `status/agents/${group}/`;
    const out: string[] = [];
    for (const [uid, path] of await writer.store.placements())
      if (path.startsWith(folder)) out.push(uid);
    return out;
  };
  rollouts.onServeChanged(({ group, uids }) => {
    if (!writer.isWriter || uids?.length === 0) return;
    (async () => writer.reconcile(uids ?? (await inGroup(group))))().catch((err) =>
      p.logger.warn({ err, group }, "status: re-rendering agents failed"),
    );
  });
  return writer;
}
