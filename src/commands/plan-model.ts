/**
 * What `opamp-gitops plan` reports (its `--format json` output, and what every other format
 * renders): for each group a change touches, the head's findings, the config hash before and
 * after, a unified diff of each changed file, the agents that join or leave it, the rollout
 * that will run and the plaintext secrets the change adds. Durations are milliseconds.
 */
import type { Finding } from "../validate/index.js";

export const PLAN_FORMATS = ["text", "json", "markdown", "github"] as const;
export type PlanFormat = (typeof PLAN_FORMATS)[number];

export interface FileChange {
  /** Repository-relative POSIX path (under the watched root). */
  path: string;
  change: "added" | "removed" | "modified";
  /** Unified diff (`--- a/… +++ b/…`); empty for a binary file. */
  diff: string;
  additions: number;
  deletions: number;
  binary: boolean;
  /** The diff was cut at MAX_DIFF_BYTES. */
  truncated: boolean;
}

/** Agents that change group, counted by where they come from or go to. */
export interface AgentMoves {
  count: number;
  /** Group name (or "_unassigned") → number of agents. */
  by: Record<string, number>;
  /** A few instance uids, sorted. */
  examples: string[];
}

export interface RolloutStagePlan {
  percent: number;
  /** Agents served the target at this stage, at today's agent count. */
  cohort: number;
  pauseMs: number;
}

export interface RolloutPlan {
  /** `<group>@<short head commit>`, as serve names it. */
  id: string;
  stages: RolloutStagePlan[];
  applyTimeoutMs: number;
  /** Every stage waiting its full applyTimeout, then its pause. */
  worstCaseMs: number;
  /** Failures tolerated at today's agent count. */
  maxFailures: number;
  onFailure: "rollback" | "pause";
  /** rollout.paused: true in Git holds it until resumed. */
  paused: boolean;
  /** First config of a new group: agents outside the cohort are served nothing meanwhile. */
  first: boolean;
}

export interface AddedSecret {
  file: string;
  line: number;
  column: number;
  message: string;
}

export interface GroupPlan {
  name: string;
  /** added/removed/changed: its folder changed; policy: only fleet.yaml defaults changed it;
   *  agents: only other groups' selectors move agents into or out of it. */
  change: "added" | "removed" | "changed" | "policy" | "agents";
  /** The head's findings in this group's folder. */
  findings: Finding[];
  errors: number;
  warnings: number;
  /** Config hash served before (base) and after (head); null when absent or invalid. */
  hash: { before: string | null; after: string | null };
  files: FileChange[];
  /** Selector or priority changed. */
  matching: { selectorChanged: boolean; priority: { before: number | null; after: number | null } };
  agents: { before: number; after: number; joined: AgentMoves; left: AgentMoves };
  /**
   * Agents of the group after the merge whose build lacks a component type the head's config
   * uses (from their AvailableComponents; only a source that knows them counts any): serve
   * leaves them out of the rollout. `all`: every such agent lacks one, which serve refuses
   * as an AGENTS_INCOMPATIBLE validation error.
   */
  incompatible: IncompatiblePlan;
  /** The rollout a merge starts; undefined when the config hash does not change. */
  rollout?: RolloutPlan;
  secrets: AddedSecret[];
}

export interface IncompatiblePlan {
  count: number;
  /** Agents of the group after the merge whose components the source knows. */
  known: number;
  /** `kind/type` → number of agents that lack it. */
  missing: Record<string, number>;
  /** A few agents (lowest uids) with what they lack. */
  examples: { uid: string; missing: string[] }[];
  all: boolean;
}

export interface AgentSourceInfo {
  kind: "api" | "status-branch" | "none";
  /** The API URL or the status ref. */
  from: string;
  /** The status branch commit read. */
  commit?: string;
  /**
   * Agents known: every agent of the source when agents may change group; otherwise (from a
   * status branch) the agents of the groups listed, the only ones counted.
   */
  known: number;
  /** Status files not used (too large, not an agent file). */
  skipped?: number;
  note?: string;
}

export interface Plan {
  /** The watched root inside the repository ("" = its root); finding paths are under it. */
  root: string;
  base: { ref: string; commit: string };
  head: { ref: string; commit: string };
  /** The head passes validation: serve would take it. */
  valid: boolean;
  errors: number;
  warnings: number;
  /** Findings of the head outside group folders (fleet.yaml, repository layout). */
  findings: Finding[];
  /** Changed files outside group folders (fleet.yaml, schemas). */
  files: FileChange[];
  groups: GroupPlan[];
  agents: AgentSourceInfo;
  /** Agents no group matches after the merge that one did before. */
  newlyUnassigned: AgentMoves;
  /** Groups not revalidated: the change leaves their files and defaults as they were. */
  untouchedGroups: number;
  durationMs: number;
}
