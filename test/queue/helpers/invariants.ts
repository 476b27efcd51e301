/** Invariants of the rollout machine, checked after every step by the machine tests. */
import assert from "node:assert/strict";
import { cachedScore, NO_AGENT } from "../../../src/queue/cohort.js";
import { pendingWakes } from "../../../src/queue/machine.js";
import type { GroupRollout, StepResult } from "../../../src/queue/model.js";
import { currentThreshold, inFlight, servedRef } from "../../../src/queue/serve.js";

/** Reference: whether `uid` blocks the gate, written independently of src/queue/draft.ts. */
function blocks(s: GroupRollout, uid: string): boolean {
  const r = inFlight(s);
  const m = s.members.get(uid);
  if (!r || r.stage < 0 || !m) return false;
  if (cachedScore(r.id, uid) > currentThreshold(r)) return false;
  const a = s.agents.get(uid) ?? {};
  if (a.failure || (a.applied && m.healthy !== false)) return false;
  return m.connected || a.offeredAt !== undefined;
}

/**
 * Checks `result` (a step from `before`); `single` when the step had one event (then stage
 * sizes are checked exactly), `pool` the uids to check served hashes for.
 */
export function checkInvariants(
  before: GroupRollout,
  result: StepResult,
  single: boolean,
  pool: readonly string[],
): void {
  const s = result.state;
  const r = inFlight(s);
  // Served hashes: only the stable or the target of the current rollout.
  for (const uid of pool) {
    const served = servedRef(s, uid)?.hash;
    const allowed = new Set([s.stable?.hash, r?.target.hash]);
    assert.ok(allowed.has(served), `${uid} served ${served}`);
    if (!r) assert.equal(served, s.stable?.hash, "no rollout in flight: the stable hash");
    if (r && s.agents.get(uid)?.rejected) assert.equal(served, s.stable?.hash, "rejected");
    if (served === undefined) assert.equal(s.stable, undefined);
  }
  // Cohorts are monotone within a rollout.
  const prev = inFlight(before);
  if (r && prev && prev.id === r.id) {
    assert.ok(currentThreshold(r) >= currentThreshold(prev), "threshold decreased");
    for (let k = 0; k < prev.thresholds.length; k++) {
      const was: number = prev.thresholds[k] ?? NO_AGENT;
      const now: number = r.thresholds[k] ?? NO_AGENT;
      if (now === was) continue;
      // Only the current stage's, risen from an empty cohort to admit one agent (a stage
      // started before the group had members; src/queue/lifecycle.ts admitWhenCohortEmpty).
      assert.ok(
        k === prev.stage && now > was,
        `a stored threshold changed: stage ${k} of ${prev.stage}→${r.stage}, ${was} → ${now}`,
      );
      const under = (members: Iterable<string>, t: number): number =>
        [...members].filter((u) => cachedScore(r.id, u) <= t).length;
      assert.equal(under(before.members.keys(), was), 0, "risen from an empty cohort only");
      const admitted = under(s.members.keys(), now);
      assert.ok(single ? admitted === 1 : admitted >= 1, `risen to admit one: ${admitted}`);
    }
  }
  // Stage sizes match the percentages.
  for (const n of result.notices) {
    if (n.type !== "stage-started") continue;
    const rollout = s.rollout;
    if (!rollout || rollout.id !== n.rolloutId) continue;
    const threshold = rollout.thresholds[n.stage] ?? NO_AGENT;
    const previous = rollout.thresholds[n.stage - 1] ?? NO_AGENT;
    if (single) {
      const members = [...s.members.keys()];
      assert.equal(n.members, members.length);
      const inIt = (t: number) => members.filter((u) => cachedScore(rollout.id, u) <= t).length;
      assert.equal(inIt(threshold), n.cohort, "stored threshold gives the announced cohort");
      const N = members.length;
      const expected =
        N === 0
          ? 0
          : n.percent >= 100
            ? N
            : Math.max(Math.max(1, Math.ceil((n.percent * N) / 100)), inIt(previous));
      assert.equal(n.cohort, expected, `stage ${n.stage} ${n.percent}% of ${N}`);
    }
  }
  // The incremental gate counter equals a recount.
  if (r) {
    let waiting = 0;
    for (const uid of s.members.keys()) if (blocks(s, uid)) waiting++;
    assert.equal(r.waiting, waiting, "waiting");
    if (r.stage >= 0 && r.stagePassedAt === undefined) assert.ok(r.waiting > 0, "gate open");
    // A gate passed on no evidence is reopened by the first cohort agent that blocks it.
    if (r.passedUnverified)
      assert.ok(r.stagePassedAt !== undefined && r.waiting === 0, "unverified pass reopened");
  }
  // Failures are counted once per agent.
  if (s.rollout) {
    let failed = 0;
    for (const [, a] of s.agents.entries()) if (a.failure) failed++;
    assert.equal(s.rollout.failures, failed, "failures");
  }
  // The stable hash changes only by completing a rollout.
  if (s.stable?.hash !== before.stable?.hash) {
    assert.ok(result.notices.some((n) => n.type === "completed"));
  }
  // Every wake asked for is in the future or now.
  for (const w of pendingWakes(s)) assert.equal(typeof w, "number");
}
