/**
 * Cohorts (DESIGN §3): which agents a stage serves the target to.
 *
 * Every agent has a score in [0, 1) per rollout: the first 8 bytes of
 * SHA-256(rolloutId + "\n" + instanceUid), read big-endian, keeping the top 53 bits (the
 * precision of a double) over 2^53. A stage's threshold is fixed when it starts (it rises
 * once only when it started on an empty group and its joiners left the cohort empty:
 * lifecycle.ts admitWhenCohortEmpty); an agent is
 * in the cohort iff its score ≤ the current stage's threshold. Scores depend on nothing but
 * the rollout id and the uid, and thresholds are stored, so every replica and every restart
 * computes the same cohort; thresholds never decrease, so cohorts are monotone; an agent
 * joining later is placed by the same comparison.
 */
import { createHash } from "node:crypto";

/** Threshold below every score: no agent is in the cohort. */
export const NO_AGENT = -1;
/** Threshold above every score: every agent is in the cohort. */
export const EVERY_AGENT = 1;

/** The score of `uid` in rollout `rolloutId`, in [0, 1). Pure; see `scores` for a cache. */
export function score(rolloutId: string, uid: string): number {
  const digest = createHash("sha256").update(`${rolloutId}\n${uid}`).digest();
  const hi = digest.readUInt32BE(0);
  const lo = digest.readUInt32BE(4);
  // 32 + 21 = 53 bits, exact in a double, so the result is < 1.
  return (hi * 2 ** 21 + (lo >>> 11)) / 2 ** 53;
}

const MAX_CACHED_ROLLOUTS = 8;
const cache = new Map<string, Map<string, number>>();

/**
 * Memoised `score`, per (rollout, uid): the served-hash answer on every agent message costs a
 * map lookup. Keeps the scores of the last MAX_CACHED_ROLLOUTS rollouts asked for.
 */
export function cachedScore(rolloutId: string, uid: string): number {
  let byUid = cache.get(rolloutId);
  if (!byUid) {
    byUid = new Map();
    cache.set(rolloutId, byUid);
    if (cache.size > MAX_CACHED_ROLLOUTS) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
  }
  let s = byUid.get(uid);
  if (s === undefined) {
    s = score(rolloutId, uid);
    byUid.set(uid, s);
  }
  return s;
}

/**
 * Agents a stage at `percent` serves the target to when it starts with `members` agents:
 * ceil(percent/100 × N), at least one when N > 0, at most N.
 */
export function cohortSize(percent: number, members: number): number {
  if (members <= 0) return 0;
  if (percent >= 100) return members;
  return Math.min(members, Math.max(1, Math.ceil((percent * members) / 100)));
}

/**
 * The threshold of a stage that starts with `members`: the score of the
 * ceil(percent/100 × N)-th lowest member (at least the first when N > 0), or percent/100
 * when there is no member yet; never below `previous`; 100 % admits everyone.
 */
export function stageThreshold(
  rolloutId: string,
  percent: number,
  members: Iterable<string>,
  previous: number,
): number {
  if (percent >= 100) return EVERY_AGENT;
  const scores: number[] = [];
  for (const uid of members) scores.push(cachedScore(rolloutId, uid));
  // An empty group (agents not connected yet): place later joiners by the percentage itself,
  // scores being uniform, instead of admitting nobody until the stage after.
  if (scores.length === 0) return Math.max(previous, percent / 100);
  const n = cohortSize(percent, scores.length);
  scores.sort((a, b) => a - b);
  return Math.max(previous, scores[n - 1] ?? NO_AGENT);
}

/** Failures tolerated: the count, or the percentage of `members` rounded down. */
export function allowedFailures(
  maxFailures: { count: number } | { percent: number },
  members: number,
): number {
  return "count" in maxFailures
    ? maxFailures.count
    : Math.floor((maxFailures.percent * members) / 100);
}
