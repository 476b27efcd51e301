/**
 * The rollout a merge starts for one group (DESIGN §3), previewed at today's agent count:
 * cohort sizes by the rule the rollout controller uses (src/queue/cohort.ts), the pauses,
 * and the worst case (every stage waiting its full applyTimeout before its pause).
 */
import { allowedFailures, cohortSize } from "../queue/cohort.js";
import type { GroupSpec } from "../validate/index.js";
import type { RolloutPlan } from "./plan-model.js";

export function previewRollout(
  spec: GroupSpec,
  headCommit: string,
  agents: number,
  first: boolean,
): RolloutPlan {
  const policy = spec.rollout;
  let previous = 0;
  const stages = policy.stages.map((s) => {
    // Cohorts are monotone: a stage never serves fewer agents than the one before.
    previous = Math.max(previous, cohortSize(s.percent, agents));
    return { percent: s.percent, cohort: previous, pauseMs: s.pauseMs };
  });
  const worstCaseMs = policy.stages.reduce((t, s) => t + policy.applyTimeoutMs + s.pauseMs, 0);
  return {
    id: `${spec.name}@${headCommit.slice(0, 7)}`,
    stages,
    applyTimeoutMs: policy.applyTimeoutMs,
    worstCaseMs,
    maxFailures: allowedFailures(policy.maxFailures, agents),
    onFailure: policy.onFailure,
    paused: policy.paused,
    first,
  };
}

/** "1h 2m 5s" style, for text and markdown. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return "0s";
  const s = Math.round(ms / 1000);
  const parts: string[] = [];
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h) parts.push(`${h}h`);
  if (m) parts.push(`${m}m`);
  if (sec || parts.length === 0) parts.push(`${sec}s`);
  return parts.join(" ");
}
