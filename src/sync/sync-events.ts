/**
 * What FleetSync tells its users: outcomes of a check, events, status. Events are emitted
 * synchronously from the sync loop (see events.ts for listener errors); data is structured,
 * never a credential.
 */
import type { Finding } from "../validate/model.js";
import type { DesiredStateChanges, FleetDesiredState, GroupDesiredState } from "./desired-state.js";
import type { SyncError } from "./errors.js";
import type { MatchResult } from "./match.js";
import type { ReadStats } from "./read-snapshot.js";

export type ErrorInfo = ReturnType<SyncError["toJSON"]>;

export type SyncOutcome =
  | { result: "unchanged"; commit: string }
  | { result: "updated"; commit: string; changes: DesiredStateChanges }
  | { result: "stalled"; commit: string; findings: Finding[] }
  | { result: "failed"; error: SyncError; retryInMs: number };

export interface FleetSyncEvents {
  /**
   * The branch head moved. `historyRewritten`: the previous head is not an ancestor.
   * `followed`: learnt from the fetching replica ("shared"), or fetched after all because it
   * was not shared ("fetched"); absent when this replica read the source itself.
   */
  headChanged: {
    commit: string;
    previous?: string;
    historyRewritten?: boolean;
    fetched: boolean;
    followed?: "shared" | "fetched";
  };
  /** A valid commit became the desired state. `restored`: re-read after a restart. */
  updated: {
    state: FleetDesiredState;
    previous?: FleetDesiredState;
    changes: DesiredStateChanges;
    read?: ReadStats;
    /** Time to refresh the branch head (fetch for a remote). */
    fetchMs: number;
    validationMs: number;
    /** Time to build the desired state, matcher and selector checks. */
    buildMs: number;
    /** The whole check, from the refresh to this event. */
    durationMs: number;
    restored: boolean;
  };
  /** The head commit is invalid and is not served. `serving`: the commit still served. */
  stalled: {
    commit: string;
    findings: Finding[];
    errors: number;
    warnings: number;
    serving?: string;
  };
  /** A check failed and will be retried in `retryInMs` (attempt n since the last success). */
  fetchFailed: {
    error: ErrorInfo;
    phase: "fetch" | "read" | "validate";
    attempt: number;
    retryInMs: number;
    serving?: string;
  };
  /** A check succeeded after `attempts` failures. */
  recovered: { attempts: number; commit: string };
  /** An agent matched several groups at the top priority (once per tie set and state). */
  conflict: { groups: string[]; group: string; commit: string; instanceUid?: string };
  /** The state file could not be written (the loop goes on). */
  persistFailed: { error: ErrorInfo };
}

export interface SyncStatus {
  source: string;
  branch: string;
  path: string;
  /** The last branch head seen. */
  head?: string;
  /** The commit of the state served now. */
  serving?: string;
  /** Set while the head commit is invalid. */
  stalled?: { commit: string; findings: Finding[] };
  /** Set while checks fail. */
  lastError?: ErrorInfo & { attempt: number; at: number };
  lastCheckAt?: number;
  lastSuccessAt?: number;
}

export interface Assignment extends MatchResult {
  /** The desired state of the chosen group. */
  desired?: GroupDesiredState;
}
