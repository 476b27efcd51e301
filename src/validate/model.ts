/**
 * The fleet model: what a commit of the configuration repository means once read and
 * validated (DESIGN §1–§2). The contract between src/sync (which reads Git into a
 * RepositorySnapshot) and src/validate (which turns a snapshot into findings and FleetSpec).
 */

/** Files of one commit (or working tree), as read; nothing parsed yet. */
export interface RepositorySnapshot {
  /** `fleet.yaml` at the watched root, when present. */
  fleet?: Uint8Array;
  /** One entry per `groups/<name>/` folder, keyed by folder name (not yet checked). */
  groups: Map<string, GroupFolder>;
  /**
   * Reads another file of the watched root by repository-relative POSIX path (for a group's
   * own JSON Schema). Resolves undefined when there is no such file. Paths are checked by
   * the caller (src/validate) to stay inside the root before this is called.
   */
  readFile(path: string): Promise<Uint8Array | undefined>;
}

export interface GroupFolder {
  /** `group.yaml`, undefined when the folder has none (an error). */
  groupYaml?: Uint8Array;
  /** Every other regular file of the folder, by file name. Sub-folders are not read. */
  files: Map<string, Uint8Array>;
  /**
   * Git tree id of the folder when read from Git: equal ids mean equal content, so a reader
   * may reuse the previous result for this group. Undefined for a working tree.
   */
  treeId?: string;
}

export type Severity = "error" | "warning";

/** One problem, located in a file of the repository. Line and column are 1-based. */
export interface Finding {
  /** Repository-relative POSIX path, e.g. "groups/edge/collector.yaml". */
  file: string;
  line: number;
  column: number;
  severity: Severity;
  /** Stable code, e.g. "OTELCOL_UNDEFINED_COMPONENT", "YAML_DUPLICATE_KEY". */
  code: string;
  /** What is wrong and what to do, for a person. */
  message: string;
  data?: Record<string, unknown>;
}

export type SelectorOperator = "In" | "NotIn" | "Exists" | "DoesNotExist";

export interface Selector {
  /** Every pair must equal an agent attribute (string compare). */
  match: Record<string, string>;
  expressions: Array<{ key: string; operator: SelectorOperator; values: string[] }>;
}

export interface RolloutStage {
  /** 1–100; stages are increasing and the last is 100. */
  percent: number;
  /** Pause after the stage passes, in milliseconds (0 = none). */
  pauseMs: number;
}

export interface RolloutPolicy {
  stages: RolloutStage[];
  /** A cohort agent must report APPLIED (and healthy) within this, in ms. Default 5 min. */
  applyTimeoutMs: number;
  /** Failures tolerated per rollout: a count, or a percentage of the group's agents. */
  maxFailures: { count: number } | { percent: number };
  onFailure: "rollback" | "pause";
  paused: boolean;
}

export interface TelemetryDestination {
  endpoint: string;
  headers?: Record<string, string>;
}

/** A served config file: the AgentConfigMap entry. */
export interface GroupConfigFile {
  name: string;
  /** "text/yaml" for .yaml/.yml, "application/json" for .json. */
  contentType: string;
  body: Uint8Array;
}

/** One valid group, ready to serve. */
export interface GroupSpec {
  name: string;
  selector: Selector;
  priority: number;
  files: GroupConfigFile[];
  /** Config hash (DESIGN §1): lowercase hex SHA-256 over the sorted files. */
  configHash: string;
  /** Built-in schema id ("otelcol", "otelcol-bridge") or repository path of a JSON Schema. */
  schema: string;
  /** config.distribution: which operator-given Collector binary also checks the files. */
  distribution?: string;
  rollout: RolloutPolicy;
  /** Heartbeat interval offered to agents, in seconds. */
  heartbeatIntervalSeconds: number;
  telemetry: {
    metrics?: TelemetryDestination;
    logs?: TelemetryDestination;
    traces?: TelemetryDestination;
  };
}

export interface FleetSpec {
  groups: Map<string, GroupSpec>;
  /** fleet.yaml `revoked:`: instance uids whose credentials are refused. */
  revoked?: string[];
}

/** The result of validating a snapshot. `fleet` is present only when there is no error. */
export interface ValidationReport {
  findings: Finding[];
  errors: number;
  warnings: number;
  fleet?: FleetSpec;
}
