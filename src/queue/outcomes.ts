/**
 * What agents report, turned into gate progress and failures (DESIGN §3 Gates, Rejected
 * offers): offers and apply deadlines, APPLIED/FAILED reports, health, and the failure count
 * that stops a rollout past maxFailures. Used by src/queue/machine.ts only.
 */
import { allowedFailures } from "./cohort.js";
import type { Draft } from "./draft.js";
import { deadlineWake, end, pauseOf, short } from "./lifecycle.js";
import {
  type AgentRecord,
  FAILURE_LIST_MAX,
  type FailureReason,
  type Rollout,
  type RolloutEvent,
} from "./model.js";
import { inCohort } from "./serve.js";

/** First time in the cohort while connected: the apply deadline starts. */
export function offer(d: Draft, uid: string): void {
  const r = d.live();
  if (!r || r.stage < 0 || !d.members.get(uid)?.connected || !inCohort(r, uid)) return;
  const rec = d.agents.get(uid);
  if (rec?.offeredAt !== undefined) return;
  d.touch(uid, { agent: { ...rec, offeredAt: d.now } });
  d.wake(deadlineWake(d.now, r.policy.applyTimeoutMs));
}

/**
 * The agent vanished with its process (it was never seen to disconnect, and has not come
 * back): an apply deadline it never acknowledged is dropped. Its offer may never have reached
 * it (a stage started while Redis still said connected), and a config cannot be blamed for a
 * process crash; it is offered again, with a fresh deadline, if it reconnects. A deadline it
 * acknowledged (it had the target) keeps running, as for any disconnect.
 */
export function onLost(d: Draft, uid: string): void {
  const rec = d.agents.get(uid);
  if (!d.live() || rec?.offeredAt === undefined || rec.acked || rec.failure) return;
  d.touch(uid, { agent: { ...rec, offeredAt: undefined } });
}

export function onReport(d: Draft, e: Extract<RolloutEvent, { type: "report" }>): void {
  const r = d.live();
  if (!r || !d.members.has(e.uid)) return;
  const rec = d.agents.get(e.uid) ?? {};
  if (e.hash === r.target.hash) {
    const applied = e.status === "APPLIED";
    if (!rec.acked || rec.applied !== applied) {
      d.touch(e.uid, { agent: { ...rec, acked: true, applied } });
    }
    if (e.status === "FAILED" && inCohort(r, e.uid)) fail(d, r, e.uid, "failed", e.error);
    return;
  }
  if (e.status !== "APPLIED") return;
  if (rec.acked && !rec.rejected && inCohort(r, e.uid)) {
    // It took the target and went back (e.g. the supervisor's own rollback): a rejected offer.
    d.touch(e.uid, { agent: { ...rec, applied: false, rejected: true } });
    d.serveChanged(e.uid);
    const error = e.error ?? `went back to ${short(e.hash)} after acknowledging the target`;
    fail(d, r, e.uid, "rejected", error);
  } else if (rec.applied) {
    d.touch(e.uid, { agent: { ...rec, applied: false } });
  }
}

export function onHealth(d: Draft, e: Extract<RolloutEvent, { type: "health" }>): void {
  const m = d.members.get(e.uid);
  const error = e.healthy ? undefined : e.error;
  if (!m || (m.healthy === e.healthy && m.error === error)) return;
  const next = { connected: m.connected, healthy: e.healthy, ...(error ? { error } : {}) };
  d.touch(e.uid, { member: next });
  const r = d.live();
  if (r && !e.healthy && d.agents.get(e.uid)?.applied && inCohort(r, e.uid)) {
    fail(d, r, e.uid, "unhealthy", e.error);
  }
}

export function onTick(d: Draft): void {
  const r = d.live();
  if (!r || r.stage < 0) return;
  const timeout = r.policy.applyTimeoutMs;
  const expired: Array<[string, string]> = [];
  for (const [uid, rec] of d.agents.entries()) {
    if (rec.offeredAt === undefined || rec.failure || rec.offeredAt + timeout > d.now) continue;
    const m = d.members.get(uid);
    if (!m || (rec.applied && m.healthy !== false)) continue;
    const error = rec.applied
      ? `still unhealthy ${timeout} ms after the offer${m.error ? `: ${m.error}` : ""}`
      : `no APPLIED within ${timeout} ms`;
    expired.push([uid, error]);
  }
  for (const [uid, error] of expired) if (d.live() === r) fail(d, r, uid, "timeout", error);
}

/**
 * The service could not serve from `e.from` to `e.to` (every process down, or none could
 * reach Redis): no agent could report, and reports sent just before were lost. An apply
 * deadline running at `e.from` is moved by the outage, so only time in which the service
 * served counts against it (an agent offered 4 of 5 minutes before a crash has 1 minute once
 * the service is back, whatever the outage lasted), and keeps at least `e.graceMs` (capped at
 * the apply timeout) after `e.to`: agents come back only after their retry delay or reconnect
 * backoff. Deadlines that had expired by then, and failures, stay. A stage pause running at
 * `e.from` is moved by the outage. Once per outage: the rollout keeps the outage's start, so
 * replicas that learn it together move them once.
 */
export function onOutage(d: Draft, e: Extract<RolloutEvent, { type: "outage" }>): void {
  const r = d.live();
  if (!r || r.stage < 0 || e.to <= e.from) return;
  if (r.outageFrom !== undefined && r.outageFrom >= e.from) return;
  r.outageFrom = e.from;
  const timeout = r.policy.applyTimeoutMs;
  // The earliest offer time that leaves the grace after the outage.
  const graceFloor = e.to - timeout + Math.min(e.graceMs ?? 0, timeout);
  const moved: Array<[string, AgentRecord & { offeredAt: number }]> = [];
  for (const [uid, rec] of d.agents.entries()) {
    const at = rec.offeredAt;
    if (at === undefined || rec.failure || at > e.from || at + timeout <= e.from) continue;
    moved.push([uid, { ...rec, offeredAt: Math.max(at + (e.to - e.from), graceFloor) }]);
  }
  for (const [uid, rec] of moved) {
    d.touch(uid, { agent: rec });
    d.wake(deadlineWake(rec.offeredAt, timeout));
  }
  // A stage pause is a bake time: nothing watched the cohort's health during the outage.
  const passed = r.stagePassedAt;
  if (passed !== undefined && passed <= e.from && passed + pauseOf(r) > e.from) {
    r.stagePassedAt = passed + (e.to - e.from);
    d.wake(r.stagePassedAt + pauseOf(r));
  }
}

/** Counts a failure of `uid` (once per rollout) and stops the rollout past maxFailures. */
export function fail(
  d: Draft,
  r: Rollout,
  uid: string,
  reason: FailureReason,
  error?: string,
): void {
  const rec = d.agents.get(uid) ?? {};
  if (rec.failure) return;
  const failure = { reason, at: d.now, ...(error ? { error } : {}) };
  d.touch(uid, { agent: { ...rec, failure } });
  r.failures += 1;
  if (r.failureList.length < FAILURE_LIST_MAX) r.failureList.push({ uid, ...failure });
  const allowed = allowedFailures(r.policy.maxFailures, d.members.size);
  d.notice({ type: "failed", uid, reason, error, failures: r.failures, allowed });
  if (r.failures <= allowed) return;
  const why = `${r.failures} failed (${reason} on ${uid}${error ? `: ${error}` : ""}), more than the ${allowed} allowed`;
  if (r.policy.onFailure === "rollback") end(d, "rolled-back", why);
  else if (r.hold?.source !== "failures") {
    r.hold = { source: "failures", by: why, at: d.now };
    d.notice({ type: "paused", by: why, source: "failures" });
  }
}
