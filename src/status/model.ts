/**
 * The status files' shapes (schemas/status-*.schema.json describe the same), the compact
 * "facts" the writer keeps per file to count the fleet and to say what a commit changed,
 * and the seam through which rollout progress reaches the writer.
 */

export const API_VERSION = "opamp-gitops/v1";

export type AttributeValue = string | number | boolean | null;

export interface HealthStatus {
  healthy: boolean;
  status: string | null;
  lastError: string | null;
  components?: Record<string, HealthStatus>;
  truncated?: number;
}

export interface ConfigFileStatus {
  contentType: string;
  bytes?: number;
  redacted?: number;
  content?: unknown;
  note?: string;
  /** `--status-effective-config hash`: HMAC-SHA256 of the body under the service's key. */
  hash?: string;
}

export interface AgentStatusFile {
  apiVersion: typeof API_VERSION;
  kind: "AgentStatus";
  instanceUid: string;
  group: string | null;
  connected: boolean;
  transport: "websocket" | "http";
  lastConnected: string | null;
  lastDisconnected: string | null;
  description: {
    identifying: Record<string, AttributeValue>;
    nonIdentifying: Record<string, AttributeValue>;
  };
  /**
   * The Collector component types of the agent's build (its AvailableComponents), per kind
   * sorted; present only when it reported a Collector kind. Before `capabilities` so a reader
   * parsing only the file's head (src/sync/known-agents.ts) finds it.
   */
  components?: AgentComponentsStatus;
  capabilities: string[];
  remoteConfig: {
    desiredHash: string | null;
    desiredCommit: string | null;
    reportedHash: string | null;
    status: "UNSET" | "APPLIED" | "APPLYING" | "FAILED" | null;
    error: string | null;
  };
  health: HealthStatus | null;
  effectiveConfig: { hash: string; files: Record<string, ConfigFileStatus> } | null;
  drift: boolean;
  /** Present only when the selected group is one the agent's credentials do not allow. */
  unauthorized?: { group: string };
  /** Present only for agents served own telemetry or packages, or that report packages. */
  bundle?: AgentBundleStatus;
  /** The last command sent to the agent and who asked (absent: none since the service started). */
  lastCommand?: { type: "restart"; by: string; at: string; result: string };
  /** Present only when the agent's credentials are revoked: when, and by whom or which commit. */
  revoked?: { at: string; by: string };
}

/**
 * The agent's bundle beyond its config (src/bundle.ts): the bundle it is served and its
 * verdict per part, the connection settings offered and reported, its package statuses.
 */
export interface AgentBundleStatus {
  id: string | null;
  status: "APPLIED" | "APPLYING" | "FAILED" | null;
  error: string | null;
  parts: { config: string; telemetry: string; packages: string } | null;
  connectionSettings?: {
    offeredHash: string | null;
    reportedHash: string | null;
    status: string | null;
    error: string | null;
  };
  packages?: {
    reportedHash: string | null;
    error: string | null;
    packages: Record<
      string,
      {
        status: string;
        version: string | null;
        offeredVersion: string | null;
        error: string | null;
        downloadPercent?: number;
        downloadBytesPerSecond?: number;
      }
    >;
  };
}

/** An agent's component types: its report's hash (hex, "" without) and kind → sorted types. */
export interface AgentComponentsStatus {
  hash: string;
  kinds: Record<string, string[]>;
  /** Types left out past MAX_COMPONENT_TYPES (a bounded file). */
  truncated?: number;
}

export interface HashRefStatus {
  hash: string;
  commit: string;
}

export interface FindingStatus {
  severity: "error" | "warning";
  code: string;
  file: string;
  line: number;
  column: number;
  message: string;
}

export interface ValidationStatus {
  commit: string;
  result: "passed" | "failed";
  errors: number;
  warnings: number;
  findings: FindingStatus[];
  truncated?: number;
}

export type RolloutState = "in-progress" | "completed" | "rolled-back" | "aborted" | "superseded";

export interface RolloutFileStatus {
  id: string;
  state: RolloutState;
  from: HashRefStatus | null;
  target: HashRefStatus;
  stage: number;
  stages: number;
  percent: number | null;
  paused: { source: "git" | "api" | "failures"; by: string; at: string } | null;
  members: number;
  cohort: number;
  applied: number;
  failed: number;
  pending: number;
  startedAt: string;
  endedAt: string | null;
  reason: string | null;
  failures: Array<{
    instanceUid: string;
    reason: "failed" | "unhealthy" | "timeout" | "rejected";
    error: string | null;
    at: string;
  }>;
}

export interface HistoryEntryStatus {
  id: string;
  state: RolloutState;
  from: HashRefStatus | null;
  target: HashRefStatus;
  startedAt: string;
  endedAt: string | null;
  reason: string | null;
}

export interface GroupStatusFile {
  apiVersion: typeof API_VERSION;
  kind: "GroupStatus";
  group: string;
  served: { commit: string; configHash: string; hashCommit: string; files: string[] } | null;
  validation: ValidationStatus | null;
  rollout: RolloutFileStatus | null;
  /** Agents left out of the group's rollouts for lacking a component type; absent: none. */
  incompatible?: IncompatibleStatus;
  history: HistoryEntryStatus[];
}

export interface IncompatibleStatus {
  count: number;
  examples: { instanceUid: string; missing: string[] }[];
}

export interface Totals {
  total: number;
  connected: number;
  healthy: number;
  unhealthy: number;
  drifted: number;
  unassigned: number;
  /** Agents whose attributes select a group their credentials do not allow (also unassigned). */
  unauthorized: number;
}

export interface GroupCounts {
  agents: number;
  connected: number;
  healthy: number;
  unhealthy: number;
  drifted: number;
  configHash: string | null;
}

export interface HashCounts {
  agents: number;
  connected: number;
  applied: number;
  failed: number;
  groups: string[];
}

export interface FleetStatusFile {
  apiVersion: typeof API_VERSION;
  kind: "FleetStatus";
  source: { repository: string; branch: string; path: string; serving: string | null };
  validation: ValidationStatus | null;
  agents: Totals;
  groups: Record<string, GroupCounts>;
  hashes: Record<string, HashCounts>;
}

/**
 * What the writer remembers of an agent file (kept in Redis next to the file's content): the
 * fleet counts and the commit message are computed from facts, never by re-reading YAML.
 */
export interface AgentFacts {
  uid: string;
  group: string | null;
  connected: boolean;
  /** Last reported health; null when never reported. */
  healthy: boolean | null;
  healthError: string | null;
  reportedHash: string | null;
  desiredHash: string | null;
  status: AgentStatusFile["remoteConfig"]["status"];
  error: string | null;
  drift: boolean;
  /** ms since the epoch; null when never. */
  lastConnectedAt: number | null;
  lastDisconnectedAt: number | null;
  /** The agent selects a group its credentials do not allow (absent: false). */
  unauthorized?: true;
}

/** What the writer remembers of a group file, to say what changed. */
export interface GroupFacts {
  group: string;
  configHash: string | null;
  hashCommit: string | null;
  validation: { commit: string; result: "passed" | "failed"; errors: number } | null;
  rollout: {
    id: string;
    state: RolloutState;
    stage: number;
    stages: number;
    percent: number | null;
    paused: boolean;
    reason: string | null;
  } | null;
}

// --- Rollout progress: the seam to src/queue -----------------------------------------------

/** A config hash and the commit that introduced it. */
export interface HashRef {
  hash: string;
  commit: string;
}

/** A group's current rollout, as src/queue's status view reports it (times in ms). */
export interface RolloutProgress {
  /** `<group>@<short commit>` (DESIGN §3). */
  id: string;
  state: RolloutState;
  from?: HashRef;
  target: HashRef;
  /** Index of the current stage, 0-based; -1 while held before the first. */
  stage: number;
  stages: number;
  /** Percentage of the current stage. */
  percent?: number;
  /** Why no new stage starts, when held. */
  hold?: { source: "git" | "api" | "failures"; by: string; at: number };
  members: number;
  cohort: number;
  applied: number;
  failed: number;
  pending: number;
  startedAt: number;
  endedAt?: number;
  /** Why it ended (rolled-back, aborted, superseded), for people. */
  endReason?: string;
  /** The first failures. */
  failures: Array<{
    uid: string;
    reason: "failed" | "unhealthy" | "timeout" | "rejected";
    error?: string;
    at: number;
  }>;
}

/** An ended rollout. */
export interface RolloutHistoryEntry {
  id: string;
  state: RolloutState;
  from?: HashRef;
  target: HashRef;
  startedAt: number;
  endedAt?: number;
  endReason?: string;
}

export interface GroupRolloutInfo {
  /**
   * What the group's agents are served (src/queue groupServedRef), with its file names when
   * known: after a rollback the stable hash, not the Git head's. null: nothing is served.
   * Absent: the rollout source does not say, and the desired state's hash is shown.
   */
  served?: (HashRef & { files?: string[] }) | null;
  current?: RolloutProgress;
  /** Agents of the group that lack a component type its config uses (count > 0 only). */
  incompatible?: { count: number; examples: { uid: string; missing: string[] }[] };
  /** Ended rollouts, newest first (the writer keeps at most 20). */
  history: RolloutHistoryEntry[];
}

/**
 * Where the writer reads rollout progress. The service adapts src/queue to it: `status()`
 * from the rollout store's status view, and `subscribe()` from its notices (started,
 * stage-started, failed, rolled-back, completed, ...): call the listener with the group
 * whenever something of that group's rollout changed. The writer reads `status()` of changed
 * groups at its next flush, and of every group when it becomes the writer, so a notice
 * missed while no replica was writing costs nothing.
 */
export interface RolloutStatusSource {
  status(group: string): GroupRolloutInfo | undefined | Promise<GroupRolloutInfo | undefined>;
  subscribe(listener: (group: string) => void): () => void;
}
