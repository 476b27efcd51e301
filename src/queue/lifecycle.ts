/**
 * The life of a rollout inside the machine: start, stages (cohort thresholds, offers, the gate
 * counter), the advance through gates and pauses, and the end (completed, rolled back,
 * aborted, superseded). Used by src/queue/machine.ts and src/queue/outcomes.ts only.
 */
import { cachedScore, NO_AGENT, stageThreshold } from "./cohort.js";
import type { Draft } from "./draft.js";
import type { Rollout, RolloutEvent, RolloutStatus } from "./model.js";
import { inCohort } from "./serve.js";

/** Deadlines are woken at a coarse grain (≤ 1 s) so agents offered together share a timer. */
export function deadlineWake(offeredAt: number, timeoutMs: number): number {
  const grain = Math.min(1000, Math.max(1, Math.floor(timeoutMs / 100)));
  return Math.ceil((offeredAt + timeoutMs) / grain) * grain;
}

export function pauseOf(r: Rollout): number {
  return r.policy.stages[r.stage]?.pauseMs ?? 0;
}

export function short(commit: string): string {
  return commit.slice(0, 7);
}

export function startRollout(d: Draft, e: Extract<RolloutEvent, { type: "commit" }>): void {
  d.seq += 1;
  const base = `${d.group}@${short(e.commit)}`;
  const id = d.rollout?.id === base ? `${base}-${d.seq}` : base;
  const r: Rollout = {
    id,
    target: { hash: e.hash, commit: e.commit },
    policy: e.policy,
    status: "in-progress",
    startedAt: d.now,
    stage: -1,
    thresholds: [],
    failures: 0,
    failureList: [],
    waiting: 0,
  };
  if (d.stable) r.from = d.stable;
  d.rollout = r;
  d.agents.clear();
  d.changedAgents.clear();
  d.newRollout = true;
  d.notice({ type: "started", from: d.stable, target: r.target, stages: e.policy.stages.length });
  if (e.policy.paused) {
    r.hold = { source: "git", by: "git", at: d.now };
    d.notice({ type: "paused", by: "git", source: "git" });
  }
  d.serveChanged();
}

export function startStage(d: Draft, r: Rollout, k: number): void {
  const percent = r.policy.stages[k]?.percent ?? 100;
  const previous = r.thresholds[k - 1] ?? NO_AGENT;
  const threshold = stageThreshold(r.id, percent, d.members.keys(), previous);
  r.stage = k;
  r.stageStartedAt = d.now;
  r.stagePassedAt = undefined;
  r.passedUnverified = undefined;
  r.thresholds = [...r.thresholds.slice(0, k), threshold];
  let cohort = 0;
  let offered = false;
  for (const [uid, m] of d.members.entries()) {
    if (cachedScore(r.id, uid) > threshold) continue;
    cohort++;
    const rec = d.agents.get(uid);
    if (m.connected && rec?.offeredAt === undefined) {
      d.agents.set(uid, { ...rec, offeredAt: d.now });
      d.changedAgents.add(uid);
      offered = true;
    }
  }
  // Recount the gate from scratch (the only place `waiting` is not maintained incrementally).
  let waiting = 0;
  for (const uid of d.members.keys()) if (d.blocking(uid)) waiting++;
  r.waiting = waiting;
  if (offered) d.wake(deadlineWake(d.now, r.policy.applyTimeoutMs));
  d.notice({ type: "stage-started", stage: k, percent, cohort, members: d.members.size });
  d.serveChanged();
}

/**
 * Below this many expected cohort members (threshold × members, scores being uniform), a
 * join checks that the stage's cohort is not empty; above, an empty cohort has a
 * probability under e^-20 and the check (a scan of the members) is skipped.
 */
const EXPECTED_COHORT_CHECKED = 20;

/**
 * After `uid` joined: a stage that started before the group had members (agents not
 * connected yet) places joiners by its percentage alone, and in a small group none may fall
 * under it (8 agents at 25 %: one time in ten), leaving the canary on no one. Once the
 * members are enough for the percentage to mean one agent (percent × N ≥ 1) and none is in
 * the cohort, the threshold rises to the lowest member's score: that one agent is admitted
 * and served the target, later joiners are placed by the new threshold (thresholds never
 * decrease). Returns the admitted uid, for the caller to offer it (outcomes.ts `offer`).
 */
export function admitWhenCohortEmpty(d: Draft, uid: string): string | undefined {
  const r = d.live();
  if (!r || r.stage < 0) return undefined;
  const threshold = r.thresholds[r.stage] ?? NO_AGENT;
  const percent = r.policy.stages[r.stage]?.percent ?? 100;
  const n = d.members.size;
  if (threshold >= 1 || (percent * n) / 100 < 1 || cachedScore(r.id, uid) <= threshold)
    return undefined;
  if (threshold * n >= EXPECTED_COHORT_CHECKED) return undefined;
  let lowest = 1;
  let first: string | undefined;
  for (const m of d.members.keys()) {
    const score = cachedScore(r.id, m);
    if (score <= threshold) return undefined;
    if (score < lowest) [lowest, first] = [score, m];
  }
  if (first === undefined) return undefined;
  r.thresholds = [...r.thresholds.slice(0, r.stage), lowest];
  // Only `first` entered the cohort (it was outside: not counted before).
  r.waiting += Number(d.blocking(first));
  d.serveChanged(first);
  return first;
}

/** Moves the rollout in flight as far as `now` allows. */
export function advance(d: Draft): void {
  for (;;) {
    const r = d.live();
    if (!r) return;
    if (r.stage < 0) {
      if (r.hold) return;
      startStage(d, r, 0);
      continue;
    }
    if (r.passedUnverified && r.waiting > 0) reopen(d, r);
    if (r.stagePassedAt === undefined) {
      if (r.waiting > 0) return;
      r.stagePassedAt = d.now;
      if (!anyApplied(d, r)) r.passedUnverified = true;
      const percent = r.policy.stages[r.stage]?.percent ?? 100;
      d.notice({ type: "stage-passed", stage: r.stage, percent, pauseMs: pauseOf(r) });
      if (pauseOf(r) > 0) d.wake(d.now + pauseOf(r));
    }
    if (r.hold || d.now < r.stagePassedAt + pauseOf(r)) return;
    if (r.stage >= r.policy.stages.length - 1) {
      end(d, "completed", "completed");
      return;
    }
    startStage(d, r, r.stage + 1);
  }
}

/** Whether some agent of the current stage's cohort applied the target. O(members). */
function anyApplied(d: Draft, r: Rollout): boolean {
  for (const [uid, rec] of d.agents.entries())
    if (rec.applied && d.members.has(uid) && inCohort(r, uid)) return true;
  return false;
}

/**
 * A gate that passed with nobody applying the target (an empty cohort, or one whose members
 * were all disconnected) closes again once a cohort agent keeps it closed (it connected, or
 * joined and was admitted, during the pause): a canary stage is not passed on no evidence
 * while evidence arrives. When it passes again, its pause restarts. A pause of 0 moves on at
 * once, so only stages with a pause can reopen.
 */
function reopen(d: Draft, r: Rollout): void {
  r.stagePassedAt = undefined;
  r.passedUnverified = undefined;
  let uid = "";
  for (const m of d.members.keys())
    if (d.blocking(m)) {
      uid = m;
      break;
    }
  const percent = r.policy.stages[r.stage]?.percent ?? 100;
  d.notice({ type: "stage-reopened", stage: r.stage, percent, uid });
}

export function end(d: Draft, status: RolloutStatus, reason: string, by = ""): void {
  const r = d.live();
  if (!r) return;
  r.status = status;
  r.endedAt = d.now;
  r.endReason = reason;
  r.hold = undefined;
  r.waiting = 0;
  if (status === "completed") {
    d.stable = r.target;
    d.notice({ type: "completed", hash: r.target.hash });
  } else if (status === "rolled-back") {
    d.notice({ type: "rolled-back", reason, failures: [...r.failureList] });
  } else if (status === "aborted") {
    d.notice({ type: "aborted", by });
  } else if (status === "superseded") {
    d.notice({ type: "superseded", by });
  }
  d.serveChanged();
}
