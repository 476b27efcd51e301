/**
 * The status of a group's rollout as the CLI, the HTTP API and the status branch show it
 * (DESIGN §4: id, stage, cohort size, applied/failed/pending). Computed from memory, O(members).
 */
import type { FailureSummary, GroupRollout, HashRef, Hold, RolloutStatus } from "./model.js";
import { groupServedRef, inCohort } from "./serve.js";

export interface RolloutView {
  id: string;
  from?: HashRef;
  target: HashRef;
  status: RolloutStatus;
  startedAt: number;
  endedAt?: number;
  endReason?: string;
  /** Current stage index (-1 before the first), number of stages, and its percentage. */
  stage: number;
  stages: number;
  percent?: number;
  stageStartedAt?: number;
  stagePassedAt?: number;
  /** When the next stage starts if nothing holds it (the gate passed, the pause runs). */
  nextStageAt?: number;
  hold?: Hold;
  /** Members of the group, of the cohort, and of the cohort by outcome. */
  members: number;
  cohort: number;
  applied: number;
  failed: number;
  pending: number;
  failures: FailureSummary[];
}

export interface GroupRolloutStatus {
  group: string;
  stable?: HashRef;
  /** What the group's agents are served outside a cohort (groupServedRef); absent: nothing. */
  served?: HashRef;
  rollout?: RolloutView;
}

export function statusOf(state: GroupRollout): GroupRolloutStatus {
  const view: GroupRolloutStatus = { group: state.group };
  if (state.stable) view.stable = state.stable;
  const served = groupServedRef(state);
  if (served) view.served = served;
  const r = state.rollout;
  if (!r) return view;
  let cohort = 0;
  let applied = 0;
  let failedInCohort = 0;
  const live = r.status === "in-progress";
  for (const uid of state.members.keys()) {
    if (live ? !inCohort(r, uid) : !state.agents.has(uid)) continue;
    cohort++;
    const a = state.agents.get(uid);
    if (a?.failure) failedInCohort++;
    else if (a?.applied) applied++;
  }
  const stage = r.policy.stages[r.stage];
  const rv: RolloutView = {
    id: r.id,
    target: r.target,
    status: r.status,
    startedAt: r.startedAt,
    stage: r.stage,
    stages: r.policy.stages.length,
    members: state.members.size,
    cohort,
    applied,
    failed: r.failures,
    pending: live ? cohort - applied - failedInCohort : 0,
    failures: r.failureList,
  };
  if (r.from) rv.from = r.from;
  if (r.endedAt !== undefined) rv.endedAt = r.endedAt;
  if (r.endReason) rv.endReason = r.endReason;
  if (stage) rv.percent = stage.percent;
  if (r.stageStartedAt !== undefined) rv.stageStartedAt = r.stageStartedAt;
  if (r.stagePassedAt !== undefined) {
    rv.stagePassedAt = r.stagePassedAt;
    if (live && r.stage < r.policy.stages.length - 1) {
      rv.nextStageAt = r.stagePassedAt + (stage?.pauseMs ?? 0);
    }
  }
  if (r.hold) rv.hold = r.hold;
  view.rollout = rv;
  return view;
}
