/**
 * The rollout state machine (DESIGN §3): a pure function of (state, event, now). No I/O, no
 * clock, no randomness; the input state is never mutated (updates are copy-on-write).
 *
 * Contract:
 * - `now` is the processing time in ms; a `tick` handles every stage pause and apply deadline
 *   due by `now`, so running a tick twice, or late, is harmless.
 * - After every event the machine advances as far as `now` allows: a gate that is open passes,
 *   a pause that elapsed starts the next stage, the last stage completes the rollout.
 * - Effects ask the driver to wake the group later (`wake`) or to refresh served hashes
 *   (`serve-changed`); notices are what happened, for the status branch.
 */
import { Draft } from "./draft.js";
import {
  admitWhenCohortEmpty,
  advance,
  deadlineWake,
  end,
  pauseOf,
  short,
  startRollout,
  startStage,
} from "./lifecycle.js";
import type { GroupRollout, RolloutEvent, StepResult } from "./model.js";
import { offer, onHealth, onLost, onOutage, onReport, onTick } from "./outcomes.js";
import { ShardMap } from "./shard-map.js";

/** A group nobody has committed to yet. */
export function emptyGroup(group: string): GroupRollout {
  return { group, seq: 0, members: ShardMap.empty(), agents: ShardMap.empty() };
}

export function step(state: GroupRollout, event: RolloutEvent, now: number): StepResult {
  return stepAll(state, [event], now);
}

/** Applies `events` in order at time `now`; the same as stepping them one by one. */
export function stepAll(
  state: GroupRollout,
  events: readonly RolloutEvent[],
  now: number,
): StepResult {
  const d = new Draft(state, now);
  events.forEach((event, index) => {
    apply(d, event, index);
    advance(d);
  });
  return d.finish();
}

/**
 * The wakes a loaded state still needs (apply deadlines of agents not yet settled, the end of
 * the current stage's pause), for a driver that restarts: scheduling them again is harmless.
 */
export function pendingWakes(state: GroupRollout): number[] {
  const r = state.rollout;
  if (r?.status !== "in-progress" || r.stage < 0) return [];
  const wakes = new Set<number>();
  for (const [uid, rec] of state.agents.entries()) {
    const m = state.members.get(uid);
    if (rec.offeredAt === undefined || rec.failure || !m) continue;
    if (rec.applied && m.healthy !== false) continue;
    wakes.add(deadlineWake(rec.offeredAt, r.policy.applyTimeoutMs));
  }
  if (r.stagePassedAt !== undefined) wakes.add(r.stagePassedAt + pauseOf(r));
  return [...wakes].sort((a, b) => a - b);
}

function apply(d: Draft, e: RolloutEvent, index: number): void {
  switch (e.type) {
    case "commit":
      onCommit(d, e, index);
      return;
    case "join": {
      if (d.members.has(e.uid)) return;
      d.touch(e.uid, { member: { connected: false } });
      d.serveChanged(e.uid);
      const admitted = admitWhenCohortEmpty(d, e.uid);
      if (admitted) offer(d, admitted);
      return;
    }
    case "leave":
      if (!d.members.has(e.uid)) return;
      d.touch(e.uid, { member: null });
      d.serveChanged(e.uid);
      return;
    case "connected":
    case "disconnected": {
      if (e.type === "disconnected" && e.lost) onLost(d, e.uid);
      const m = d.members.get(e.uid);
      const connected = e.type === "connected";
      if (!m || m.connected === connected) return;
      d.touch(e.uid, { member: { ...m, connected } });
      if (connected) offer(d, e.uid);
      return;
    }
    case "report":
      onReport(d, e);
      return;
    case "health":
      onHealth(d, e);
      return;
    case "pause":
    case "resume":
    case "promote":
    case "abort":
      onControl(d, e, index);
      return;
    case "tick":
      onTick(d);
      return;
    case "outage":
      onOutage(d, e);
      return;
  }
}

function onCommit(d: Draft, e: Extract<RolloutEvent, { type: "commit" }>, index: number): void {
  const r = d.live();
  if (r && e.hash === r.target.hash) {
    // Same target: only the policy changed. `paused` acts on its edges.
    const before = r.policy;
    r.policy = e.policy;
    if (e.policy.paused && !before.paused && !r.hold) {
      r.hold = { source: "git", by: "git", at: d.now };
      d.notice({ type: "paused", by: "git", source: "git" });
    } else if (!e.policy.paused && before.paused && r.hold?.source === "git") {
      r.hold = undefined;
      d.notice({ type: "resumed", by: "git" });
    }
    return;
  }
  if (e.hash === d.stable?.hash) {
    // Back to the stable hash (a revert): the rollout in flight ends, nothing starts.
    if (r) end(d, "superseded", `superseded by ${short(e.commit)} (the stable hash)`, e.commit);
    return;
  }
  const last = d.rollout;
  if (!r && last?.target.hash === e.hash && last.status !== "superseded") {
    // This hash was rolled back or aborted: it is not retried until the config changes.
    d.ignore(index, "ROLLOUT_ENDED_FOR_HASH");
    return;
  }
  if (r) end(d, "superseded", `superseded by ${short(e.commit)}`, e.commit);
  startRollout(d, e);
}

function onControl(d: Draft, e: Extract<RolloutEvent, { by: string }>, index: number): void {
  const r = d.live();
  if (!r) {
    d.ignore(index, "ROLLOUT_NOT_IN_FLIGHT");
    return;
  }
  switch (e.type) {
    case "pause":
      if (r.hold) d.ignore(index, "ROLLOUT_ALREADY_PAUSED");
      else {
        r.hold = { source: "api", by: e.by, at: d.now };
        d.notice({ type: "paused", by: e.by, source: "api" });
      }
      break;
    case "resume":
      if (!r.hold) d.ignore(index, "ROLLOUT_NOT_PAUSED");
      else {
        r.hold = undefined;
        d.notice({ type: "resumed", by: e.by });
      }
      break;
    case "promote":
      r.hold = undefined;
      d.notice({ type: "promoted", by: e.by, stage: r.stage });
      if (r.stage >= r.policy.stages.length - 1) end(d, "completed", "promoted", e.by);
      else startStage(d, r, r.stage + 1);
      break;
    case "abort":
      end(d, "aborted", `aborted by ${e.by}`, e.by);
      break;
  }
}
