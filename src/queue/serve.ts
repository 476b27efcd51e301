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
