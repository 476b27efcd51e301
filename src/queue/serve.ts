/**
 * The served-hash answer (DESIGN §3), asked on every agent message: synchronous, no I/O,
 * a score lookup from a cache and a comparison.
 *
 * Invariant: the answer is always the stable or the target hash of the group's current
 * rollout (or nothing, when the group never had a stable hash and the agent is outside the
 * cohort: it keeps running what it runs).
 */
import { cachedScore, NO_AGENT } from "./cohort.js";
import type { GroupRollout, HashRef, Rollout } from "./model.js";

/** The current stage's threshold (NO_AGENT before the first stage). */
export function currentThreshold(rollout: Rollout): number {
  return rollout.stage < 0 ? NO_AGENT : (rollout.thresholds[rollout.stage] ?? NO_AGENT);
}

/** Whether `uid` is in the cohort of the rollout's current stage (membership not checked). */
export function inCohort(rollout: Rollout, uid: string): boolean {
  return cachedScore(rollout.id, uid) <= currentThreshold(rollout);
}

export function inFlight(state: Pick<GroupRollout, "rollout">): Rollout | undefined {
  return state.rollout?.status === "in-progress" ? state.rollout : undefined;
}

/**
 * Which of the group's hashes `uid` gets: "target" when a rollout is in flight and the agent
 * is in its cohort and has not rejected the target; otherwise "stable" (undefined when the
 * group has no stable hash yet).
 */
export function stableOrTarget(state: GroupRollout, uid: string): "stable" | "target" | undefined {
  const rollout = inFlight(state);
  if (rollout && inCohort(rollout, uid) && !state.agents.get(uid)?.rejected) return "target";
  return state.stable ? "stable" : undefined;
}

/** The hash (and its commit) `uid` is served, or undefined. */
export function servedRef(state: GroupRollout, uid: string): HashRef | undefined {
  const which = stableOrTarget(state, uid);
  if (which === "target") return state.rollout?.target;
  return which === "stable" ? state.stable : undefined;
}

/**
 * The group's served hash, the one value status files, the fleet summary and the API name:
 * what the group's agents are served outside a canary cohort. That is the stable hash; while
 * a group's first rollout is in flight (no stable hash yet) it is that rollout's target, the
 * only hash any member is served; undefined when nothing is served (a first rollout that was
 * rolled back or aborted). After a rollback it is the stable hash, never the rejected target.
 */
export function groupServedRef(
  state: Pick<GroupRollout, "stable" | "rollout">,
): HashRef | undefined {
  return state.stable ?? inFlight(state)?.target;
}

/** What the answers of a group's agents depend on beyond their own records, as one string. */
function servingKey(state: GroupRollout): string {
  const r = inFlight(state);
  return JSON.stringify([state.stable ?? null, r ? [r.id, r.target, currentThreshold(r)] : null]);
}

/**
 * The agents whose served answer may differ between two states of a group when no step says
 * what changed (a reload): "all" when the group's answer moved (its stable hash, the rollout
 * in flight or its stage), else the uids that joined or left and those whose rejection of the
 * target changed; undefined when none. A reload therefore pushes to the whole group only when
 * the group's answer changed, not whenever two writers crossed.
 */
export function servedChanges(
  before: GroupRollout,
  after: GroupRollout,
): "all" | string[] | undefined {
  if (servingKey(before) !== servingKey(after)) return "all";
  const uids = new Set<string>();
  for (const uid of before.members.keys()) if (!after.members.has(uid)) uids.add(uid);
  for (const uid of after.members.keys()) if (!before.members.has(uid)) uids.add(uid);
  if (inFlight(after)) {
    for (const [uid, a] of after.agents.entries())
      if (Boolean(a.rejected) !== Boolean(before.agents.get(uid)?.rejected)) uids.add(uid);
    for (const [uid, a] of before.agents.entries())
      if (a.rejected && !after.agents.has(uid)) uids.add(uid);
  }
  return uids.size > 0 ? [...uids] : undefined;
}
