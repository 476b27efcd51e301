/**
 * What the admin port needs of the service, and nothing more: the routes of src/api depend on
 * this interface only (src/service/admin-backend.ts implements it; tests also run the routes
 * against an in-memory fake, test/api/fake-backend.ts). Every method answers from what this
 * replica holds in memory or reads from Redis; none blocks on Git.
 */
import type { AgentState } from "../opamp/index.js";
import type { EndedRollout, GroupRolloutStatus, RolloutView } from "../queue/index.js";
import type { AgentBundleStatus } from "../status/index.js";
import type { SyncStatus } from "../sync/index.js";
import type { Finding } from "../validate/index.js";

export type AgentStateFilter = "connected" | "disconnected" | "unauthorized";

/** A query of the agent list. `offset`/`limit` page it (default: everything). */
export interface AgentQuery {
  group?: string;
  state?: AgentStateFilter;
  /** Case-insensitive substring of the uid or of any attribute value. */
  search?: string;
  /** A cursor: only agents whose uid sorts after this one (then `offset` more are skipped). */
  after?: string;
  offset?: number;
  /** Agents in the page; undefined: all (the routes always set one). */
  limit?: number;
}

/** An agent with where the service places it. */
export interface AgentRecord {
  state: Readonly<AgentState>;
  group?: string;
  /** The group its attributes select but its credentials do not allow. */
  unauthorizedGroup?: string;
  /**
   * Its bundle beyond its config (own telemetry, packages: per-part verdict, offered and
   * reported connection settings, package statuses); absent when it is served none.
   */
  bundle?: AgentBundleStatus;
}

/** One page of agents (sorted by uid) and how many match the query's filters in all (any page). */
export interface AgentPage {
  agents: AgentRecord[];
  /**
   * How many agents match in all, when it is known exactly (unfiltered: always; filtered: when
   * the matches were counted within the service's count budget, src/service/agent-list.ts).
   */
  total?: number;
  /** Without `total`: an estimate of how many match, extrapolated from a counted sample. */
  estimate?: number;
  /**
   * A filtered page with `next`: how far the list has been examined, the position of `next`
   * among the stored agents in uid order (1-based), of how many.
   */
  progress?: { through: number; of: number };
  /**
   * The cursor (`after`) of the next page: the last uid examined, set when more may follow.
   * A page can be shorter than `limit` (agents gone, a filter's scan bound) and still have one.
   */
  next?: string;
  /**
   * The `offset` to send with `next`: the matches still to skip when a filtered page's budget
   * ran out while skipping the query's `offset` (such a page is empty). Absent: 0.
   */
  nextOffset?: number;
}

/** A group of the served commit, with what its agents are served now. */
export interface GroupRecord {
  name: string;
  /** The config hash (of the files) of what its agents are served now. */
  configHash: string | null;
  /** The bundle id rollouts serve (equal to configHash for files alone); absent: not known. */
  bundleId?: string | null;
  hashCommit: string | null;
  servedCommit: string | undefined;
  priority: number;
  files: string[];
  rollout: RolloutView | null;
}

/** One config file as the status branch shows it (redacted; `content` parsed when YAML). */
export interface ShownConfigFile {
  contentType: string;
  content?: unknown;
  note?: string;
}

/**
 * An agent's desired config (its group's config in the served commit: what Git wants, the
 * rollout's target while one is in flight), what it is served now (the stable config until
 * its cohort is reached), and its effective config; bodies redacted as on the status branch.
 */
export interface AgentConfigs {
  desired: { hash: string; commit: string; files: Record<string, ShownConfigFile> } | null;
  served: { hash: string; commit: string } | null;
  effective: { files: Record<string, ShownConfigFile> } | null;
}

/** One connect or disconnect of an agent (ms since the epoch), newest first. */
export interface ConnectionEvent {
  at: number;
  type: "connected" | "disconnected";
  transport?: string;
  reason?: string;
}

/** The head commit's validation: findings of the served commit, or of a stalled head. */
export interface ValidationState {
  head?: string;
  serving?: string;
  /** Set while the head commit is invalid and not served. */
  stalled?: { commit: string; findings: Finding[] };
  /** Warnings of the served commit. */
  warnings: readonly Finding[];
  /** The repository URL or path (for commit and file links). */
  source?: string;
  path?: string;
}

export type RolloutAction = "pause" | "resume" | "promote" | "abort";

/** Whom a restart is for: these agents, or every connected agent of a group. */
export type RestartTarget = { uids: string[] } | { group: string };

/**
 * One agent's answer to a restart request: "sent" (pushed over WebSocket), "queued" (with
 * the next poll's reply over HTTP), "not-accepted" (no AcceptsRestartCommand) or "not-here"
 * (not connected to this replica).
 */
export interface RestartOutcome {
  instanceUid: string;
  group: string | null;
  result: string;
}

/** A readiness probe: each check and whether all pass. */
export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; error?: string }>;
}

/**
 * What changed since the last batch (sent at most every 250 ms), on any replica: groups whose
 * rollout changed, agents whose state changed (capped; `agentsOverflow` says more did), and
 * whether the served commit or its validation changed.
 */
export interface ChangeBatch {
  groups: string[];
  agents: string[];
  agentsOverflow: boolean;
  sync: boolean;
}

export interface AdminBackend {
  agents(query: AgentQuery): Promise<AgentPage>;
  /** undefined: no such agent stored. */
  agent(uid: string): Promise<AgentRecord | undefined>;
  agentConfigs(uid: string): Promise<AgentConfigs | undefined>;
  connections(uid: string): Promise<ConnectionEvent[]>;
  groups(): GroupRecord[];
  rollouts(): GroupRolloutStatus[];
  rollout(group: string): GroupRolloutStatus | undefined;
  history(group: string): Promise<EndedRollout[]>;
  /**
   * Runs a rollout action as `by` (an audit name). Throws RolloutError
   * (ROLLOUT_UNKNOWN_GROUP, or a code saying why the action does not apply now).
   */
  control(group: string, action: RolloutAction, by: string): Promise<GroupRolloutStatus>;
  /**
   * Revokes the agent's issued certificates and per-agent tokens as `by` (README "Agent
   * credentials"); resolves with the revocation (the first one when it was already revoked).
   */
  revokeAgent?(uid: string, by: string): Promise<{ at: string; by: string }>;
  /** What was issued to the agent (no secret) and its revocation, for GET /agents/<uid>. */
  agentCredentials?(uid: string): Promise<Record<string, unknown>>;
  /**
   * Sends RESTART (ServerToAgentCommand) to the target's agents connected to this replica, as
   * `by` (an audit name, logged and recorded); resolves with each agent's outcome, uid order.
   */
  restart?(target: RestartTarget, by: string): Promise<RestartOutcome[]>;
  /** undefined: the service runs without a repository. */
  syncState(): Readonly<SyncStatus> | undefined;
  validation(): ValidationState | undefined;
  /** Asks for a Git check now (a webhook arrived); never rejects. */
  trigger(): void;
  ready(): Promise<Readiness>;
  /** Prometheus exposition text and its content type. */
  metrics(): Promise<{ type: string; body: string }>;
  /** Subscribes to change batches; returns the unsubscribe function. */
  subscribe(listener: (batch: ChangeBatch) => void): () => void;
  /**
   * Agents of the group left out of its rollouts for lacking a component type its config uses
   * (count and a few examples). Optional: a backend without it reports none.
   */
  incompatible?(group: string): Promise<IncompatibleRecord>;
  /**
   * The distinct reported component sets: AvailableComponents hash (hex) → kind → types;
   * `truncated` when the backend's bound left some out.
   */
  componentSets?(): Promise<{ sets: Record<string, Record<string, string[]>>; truncated: boolean }>;
}

export interface IncompatibleRecord {
  count: number;
  examples: { uid: string; missing: string[] }[];
}
