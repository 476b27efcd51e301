/**
 * The status writer's options, results and events, the defaults, and the choice of target
 * (local repository or remote, status branch or folder) made from the options.
 */
import type { Redis } from "ioredis";
import type { AgentEvents } from "../opamp/index.js";
import type { Env, GitAuth } from "../sync/credentials.js";
import type { SyncError } from "../sync/errors.js";
import type { FleetSync } from "../sync/fleet-sync.js";
import { parseRepo } from "../sync/git-source.js";
import { checkBranchName, normalizeRepoPath } from "../sync/paths.js";
import type { AgentSource, Placement } from "./agent-recorder.js";
import type { AgentStatusOptions } from "./agent-status.js";
import type { SourceInfo } from "./derived-files.js";
import { InvalidStatusOptionsError } from "./errors.js";
import type { ApplyStats, PackerOptions, PackResult } from "./git-store/index.js";
import type { StatusLogger } from "./logger.js";
import type { RolloutStatusSource } from "./model.js";
import type { StatusMode, StatusTarget } from "./target.js";
import { LocalTarget } from "./target-local.js";
import { RemoteTarget } from "./target-remote.js";

export type { AgentSource } from "./agent-recorder.js";

export interface StatusWriterOptions {
  redis: Redis;
  /** Redis key prefix shared with the service, e.g. "opamp-gitops". */
  prefix: string;
  /** The watched repository: a local path or an http(s) URL (as for GitSource). */
  repo: string;
  /** The config branch. Default "main". */
  branch?: string;
  /** The watched sub-folder (shown in status/fleet.yaml). Default: the root. */
  path?: string;
  /** "branch" (default): an orphan status branch; "folder": status/ on the config branch. */
  mode?: StatusMode;
  /** The status branch in "branch" mode. Default "opamp-status". */
  statusBranch?: string;
  /** Required for a remote: the clone lives in `<stateDir>/status.git`. */
  stateDir?: string;
  auth?: GitAuth;
  env?: Env;
  httpTimeoutMs?: number;
  /** Flush period, ms. Default 10 000. */
  intervalMs?: number;
  /** Agents offline longer than this are removed, ms. Default 7 days. */
  retentionMs?: number;
  /** Writer lock TTL, ms. Default 30 000. */
  lockTtlMs?: number;
  /** Commit author and committer. Default opamp-gitops <opamp-gitops@localhost>. */
  author?: { name: string; email: string };
  /**
   * This process, named in a `Status-Writer:` trailer of every commit it publishes, so
   * `git log` tells which replica wrote what (a killed process's last log lines may be lost;
   * the branch keeps it). Default: no trailer.
   */
  writerId?: string;
  /** Where an agent belongs; undefined = not known yet. Default: `fleetSync.assign()`. */
  placement?: Placement;
  /** Agent events to follow (OpampServer.events). */
  agentEvents?: AgentEvents;
  /** Desired state and validation results (updated / stalled events). */
  fleetSync?: FleetSync;
  /** Rollout progress (src/queue, adapted by the service). */
  rollouts?: RolloutStatusSource;
  /**
   * Every agent's state: dirty agents are rendered from it at flush time, and reconciles list
   * it (the service: the live agent, else AgentStore). Without it, each dirty agent is
   * rendered from the state this process recorded (single-process use; see agent-recorder.ts).
   */
  agents?: AgentSource;
  /** Pack loose objects once this many were written since the last pack; false: never. Default 5 000. */
  packAfterObjects?: number | false;
  /** Packing settings (delta chain depth, pack count before merging, pruning grace). */
  packer?: Omit<PackerOptions, "prune">;
  /** Attempts per flush when the branch keeps moving. Default 5. */
  publishAttempts?: number;
  maxConfigBytes?: AgentStatusOptions["maxConfigBytes"];
  /** How effective configs are written (`--status-effective-config`). Default "redacted". */
  effectiveConfig?: AgentStatusOptions["effectiveConfig"];
  /**
   * The redaction key (≥ 16 bytes). Default: a random one until `loadRedactionKey()` reads
   * the fleet's key from Redis (the service does so before `start()`).
   */
  redactionKey?: Uint8Array;
  logger?: StatusLogger;
  /** Clock, ms (tests). */
  now?: () => number;
}

export interface FlushResult {
  /** The commit published; undefined when nothing changed. */
  commit?: string;
  /** Files the commit changed. */
  files: number;
  /** Pending agent changes it carried. */
  pending: number;
  message?: string;
  attempts: number;
  /** Time of the flush, up to the acknowledgement (packing, which may follow, is `pack.ms`). */
  ms: number;
  /** Blobs and trees written (treeEntries: entries of every tree written). */
  tree?: ApplyStats;
  pack?: PackResult;
  /** Why nothing was attempted: not the writer, closed. */
  skipped?: "not-writer" | "closed";
}

export interface StatusWriterEvents {
  flushed: FlushResult;
  flushFailed: { error: ReturnType<SyncError["toJSON"]>; attempt: number; retryInMs: number };
  writerChanged: { writer: boolean };
  packed: PackResult;
}

export const DEFAULT_AUTHOR = { name: "opamp-gitops", email: "opamp-gitops@localhost" };

export const DEFAULTS = {
  statusBranch: "opamp-status",
  intervalMs: 10_000,
  retentionMs: 7 * 24 * 3600_000,
  packAfterObjects: 5_000,
  publishAttempts: 5,
};

export interface ResolvedTarget {
  mode: StatusMode;
  /** The branch commits are published to. */
  branch: string;
  target: StatusTarget;
  source: SourceInfo;
}

/** Checks the options and picks the target (throws InvalidStatusOptionsError / SyncError). */
export function resolveTarget(options: StatusWriterOptions): ResolvedTarget {
  const mode = options.mode ?? "branch";
  const configBranch = checkBranchName(options.branch ?? "main");
  const branch =
    mode === "folder"
      ? configBranch
      : checkBranchName(options.statusBranch ?? DEFAULTS.statusBranch);
  if (mode === "branch" && branch === configBranch)
    throw new InvalidStatusOptionsError(
      `the status branch must differ from the config branch "${configBranch}" (or use the folder mode)`,
      { branch },
    );
  const interval = options.intervalMs ?? DEFAULTS.intervalMs;
  if (!(interval >= 10))
    throw new InvalidStatusOptionsError("intervalMs must be ≥ 10", { interval });
  const parsed = parseRepo(options.repo);
  let target: StatusTarget;
  if (parsed.kind === "remote") {
    if (!options.stateDir)
      throw new InvalidStatusOptionsError("a remote repository needs a state directory");
    target = new RemoteTarget({
      url: parsed.url,
      gitdir: `${options.stateDir}/status.git`,
      branch,
      mustExist: mode === "folder",
      auth: options.auth,
      env: options.env,
      httpTimeoutMs: options.httpTimeoutMs,
    });
  } else {
    target = new LocalTarget(parsed.path, branch);
  }
  return {
    mode,
    branch,
    target,
    source: {
      repository: parsed.kind === "remote" ? parsed.url : parsed.path,
      branch: configBranch,
      path: normalizeRepoPath(options.path ?? ""),
    },
  };
}
