/**
 * The rollout model (DESIGN §3): the state of one group's rollouts, the events that move it,
 * and what a step asks the outside world to do (effects) or to record (notices).
 *
 * Times are milliseconds since the epoch, durations milliseconds. Every value here is plain
 * data: it serialises to JSON (src/queue/codec.ts) and is never mutated once built.
 */
import type { RolloutPolicy } from "../validate/model.js";
import type { ShardMap } from "./shard-map.js";

export type { RolloutPolicy };

/** A config hash and the commit that introduced it (provenance). */
export interface HashRef {
  hash: string;
  commit: string;
}

/** `in-progress` is the only status in which a rollout is in flight. */
export type RolloutStatus = "in-progress" | "completed" | "rolled-back" | "aborted" | "superseded";

/**
 * Why no new stage starts: `git` (`rollout.paused: true` committed), `api` (pause from the
 * command line or HTTP API), `failures` (more than maxFailures with `onFailure: pause`).
 */
export interface Hold {
  source: "git" | "api" | "failures";
  by: string;
  at: number;
}

export type FailureReason = "failed" | "unhealthy" | "timeout" | "rejected";

export interface FailureSummary {
  uid: string;
  reason: FailureReason;
  error?: string;
  at: number;
}

/** The small, always-loaded part of a rollout (stored as one JSON value). */
export interface Rollout {
  /** `<group>@<short commit>`, with `-<n>` appended if the group already used that id. */
  id: string;
  /** The stable hash when the rollout started; undefined for a group's first rollout. */
  from?: HashRef;
  target: HashRef;
  policy: RolloutPolicy;
  status: RolloutStatus;
  startedAt: number;
  endedAt?: number;
  /** Why it ended (rolled-back, aborted, superseded), for people. */
  endReason?: string;
  /** Index of the current stage; -1 while held before the first stage. */
  stage: number;
  stageStartedAt?: number;
  /** When the current stage's gate passed; its pause runs from here. */
  stagePassedAt?: number;
  /**
   * The current stage's gate passed with no cohort agent having applied the target (its
   * cohort was empty, or every member was disconnected): the first cohort agent to keep the
   * gate closed during the pause reopens it (lifecycle.ts `advance`).
   */
  passedUnverified?: true;
  /** Cohort threshold of every stage started so far (index = stage); non-decreasing. */
  thresholds: number[];
  hold?: Hold;
  /** Agents whose failure counted (each at most once per rollout). */
  failures: number;
  /** The first failures, for the rolled-back notice and status (at most FAILURE_LIST_MAX). */
  failureList: FailureSummary[];
  /**
   * Members that keep the current stage's gate closed (derived, maintained incrementally;
   * recomputed whenever a stage starts). The gate passes when it is 0.
   */
  waiting: number;
  /** Start of the last outage whose time was taken off the apply deadlines (onOutage). */
  outageFrom?: number;
}

export const FAILURE_LIST_MAX = 50;

/** What the group knows of a member agent, independent of rollouts. */
export interface MemberRecord {
  connected: boolean;
  /** Last reported health; undefined when the agent never reported health. */
  healthy?: boolean;
  /** Last health error, when unhealthy. */
  error?: string;
}

/** What the current rollout knows of one agent. Absent fields are false/unset. */
export interface AgentRecord {
  /** When the agent was first in the cohort while connected: its applyTimeout runs from here. */
  offeredAt?: number;
  /** It reported a status (APPLYING, APPLIED or FAILED) for the target hash. */
  acked?: boolean;
  /** Its latest report is APPLIED for the target hash. */
  applied?: boolean;
  /** Its failure, counted once. */
  failure?: { reason: FailureReason; error?: string; at: number };
  /** It acknowledged the target and then reported APPLIED for another hash: served stable. */
  rejected?: boolean;
}

/** Everything the machine knows of one group. */
export interface GroupRollout {
  group: string;
  /** The last hash fully rolled out; undefined until the group's first rollout completes. */
  stable?: HashRef;
  /** The current rollout (in flight or the last one to end). */
  rollout?: Rollout;
  /** Number of rollouts started in this group (for unique ids). */
  seq: number;
  members: ShardMap<MemberRecord>;
  /** Records of `rollout`'s agents. */
  agents: ShardMap<AgentRecord>;
}

export type ReportStatus = "APPLYING" | "APPLIED" | "FAILED";

export type RolloutEvent =
  /** A valid commit: a new target hash, or the same hash with a new policy. */
  | { type: "commit"; hash: string; commit: string; policy: RolloutPolicy }
  | { type: "join"; uid: string }
  | { type: "leave"; uid: string }
  | { type: "connected"; uid: string }
  /**
   * `lost`: the agent vanished with the process that served it (no goodbye, no socket close
   * seen by a live process) and has not come back; see onLost in outcomes.ts.
   */
  | { type: "disconnected"; uid: string; lost?: true }
  /** RemoteConfigStatus of an agent: `hash` is the config hash it reports on. */
  | { type: "report"; uid: string; hash: string; status: ReportStatus; error?: string }
  | { type: "health"; uid: string; healthy: boolean; error?: string }
  | { type: "pause" | "resume" | "promote" | "abort"; by: string }
  /** Time passed: stage pauses and apply deadlines that are due by `now` are handled. */
  | { type: "tick" }
  /**
   * The service could not serve from `from` to `to` (ms since the epoch): no process ran, or
   * none could reach Redis, so no agent's report could count. `graceMs`: an apply deadline
   * moved by it keeps at least this much (at most the apply timeout) after `to`, for agents
   * that come back with a retry delay or a reconnect backoff; default 0. See onOutage in
   * outcomes.ts.
   */
  | { type: "outage"; from: number; to: number; graceMs?: number };

export type ControlEvent = Extract<RolloutEvent, { by: string }>;

export type Effect =
  /** Step again (with a tick) at `at`. */
  | { type: "wake"; at: number }
  /** The served hash may have changed: for `uids`, or for every agent when undefined. */
  | { type: "serve-changed"; uids?: string[] };

interface NoticeBase {
  group: string;
  rolloutId: string;
  at: number;
}
export interface StartedNotice extends NoticeBase {
  type: "started";
  from?: HashRef;
  target: HashRef;
  stages: number;
}
export interface StageStartedNotice extends NoticeBase {
  type: "stage-started";
  stage: number;
  percent: number;
  /** Members in the cohort when the stage started, and members of the group then. */
  cohort: number;
  members: number;
}
export interface StagePassedNotice extends NoticeBase {
  type: "stage-passed";
  stage: number;
  percent: number;
  pauseMs: number;
}
/** A gate that passed with no agent applying (passedUnverified) closed again for `uid`. */
export interface StageReopenedNotice extends NoticeBase {
  type: "stage-reopened";
  stage: number;
  percent: number;
  /** The cohort agent that keeps the gate closed now (the first, when several joined). */
  uid: string;
}
export interface FailedNotice extends NoticeBase {
  type: "failed";
  uid: string;
  reason: FailureReason;
  error?: string;
  /** Failures counted so far, and how many the policy allows. */
  failures: number;
  allowed: number;
}
export interface RolledBackNotice extends NoticeBase {
  type: "rolled-back";
  reason: string;
  failures: FailureSummary[];
}
export interface PausedNotice extends NoticeBase {
  type: "paused";
  by: string;
  source: Hold["source"];
}
export interface ResumedNotice extends NoticeBase {
  type: "resumed";
  by: string;
}
export interface PromotedNotice extends NoticeBase {
  type: "promoted";
  by: string;
  /** The stage skipped past. */
  stage: number;
}
export interface AbortedNotice extends NoticeBase {
  type: "aborted";
  by: string;
}
export interface SupersededNotice extends NoticeBase {
  type: "superseded";
  /** The commit that superseded it. */
  by: string;
}
export interface CompletedNotice extends NoticeBase {
  type: "completed";
  hash: string;
}

/** The events the status writer commits to Git. */
export type RolloutNotice =
  | StartedNotice
  | StageStartedNotice
  | StagePassedNotice
  | StageReopenedNotice
  | FailedNotice
  | RolledBackNotice
  | PausedNotice
  | ResumedNotice
  | PromotedNotice
  | AbortedNotice
  | SupersededNotice
  | CompletedNotice;

/** Why an event changed nothing (control events the caller should hear about). */
export type IgnoredCode =
  | "ROLLOUT_NOT_IN_FLIGHT"
  | "ROLLOUT_ALREADY_PAUSED"
  | "ROLLOUT_NOT_PAUSED"
  | "ROLLOUT_ENDED_FOR_HASH";

export interface StepResult {
  state: GroupRollout;
  effects: Effect[];
  notices: RolloutNotice[];
  /** Events that were valid but did nothing, with why (one entry per such event). */
  ignored: Array<{ index: number; code: IgnoredCode }>;
  /** What changed, for the store: member and agent uids written, and whether the rollout changed id. */
  changed: { core: boolean; members: Set<string>; agents: Set<string>; newRollout: boolean };
}
