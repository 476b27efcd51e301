import assert from "node:assert/strict";
import { test } from "node:test";
import {
  allowedFailures,
  cachedScore,
  EVERY_AGENT,
  NO_AGENT,
  score,
  stageThreshold,
} from "../../src/queue/cohort.js";
import { uids } from "./helpers/machine.js";

test("scores are deterministic, in [0, 1), and differ per rollout", () => {
  const a = score("edge@abc1234", "agent-1");
  assert.equal(a, score("edge@abc1234", "agent-1"));
  assert.equal(a, cachedScore("edge@abc1234", "agent-1"));
  assert.notEqual(a, score("edge@def5678", "agent-1"));
  for (const uid of uids(2000)) {
    const s = score("edge@abc1234", uid);
    assert.ok(s >= 0 && s < 1, `${s}`);
  }
  // Pinned, so a change of the rule (which would move every cohort) is noticed:
  // SHA-256("edge@3f2a9c1\n0190a4c5…") starts 15b3ee22245dc77a; its top 53 bits / 2^53.
  assert.equal(score("edge@3f2a9c1", "0190a4c5d6e7f8091a2b3c4d5e6f7a8b"), 0.0847767670969608);
});

test("stage thresholds: ceil(p·N) agents, at least one, monotone, 100 % admits all", () => {
  const members = uids(37);
  const id = "edge@1234567";
  const inCohort = (t: number) => members.filter((u) => cachedScore(id, u) <= t).length;
  let previous = NO_AGENT;
  for (const [percent, expected] of [
    [1, 1],
    [10, 4],
    [50, 19],
    [99, 37],
  ] as const) {
    const t = stageThreshold(id, percent, members, previous);
    assert.ok(t >= previous);
    assert.equal(inCohort(t), expected, `${percent}%`);
    previous = t;
  }
  assert.equal(stageThreshold(id, 100, members, previous), EVERY_AGENT);
  assert.equal(stageThreshold(id, 10, [], 0.3), 0.3, "no members: the previous threshold");
  // Exact integer arithmetic: 7 % of 100 is 7, not 8.
  assert.equal(inCohortOf(id, uids(100), 7), 7);
});

function inCohortOf(id: string, members: string[], percent: number): number {
  const t = stageThreshold(id, percent, members, NO_AGENT);
  return members.filter((u) => cachedScore(id, u) <= t).length;
}

test("allowed failures: a count, or a percentage of the members rounded down", () => {
  assert.equal(allowedFailures({ count: 3 }, 10), 3);
  assert.equal(allowedFailures({ percent: 5 }, 39), 1);
  assert.equal(allowedFailures({ percent: 5 }, 19), 0);
});

test("a stage started before any agent joined places later joiners by its percentage", () => {
  const threshold = stageThreshold("edge@abc", 10, [], -1);
  assert.equal(threshold, 0.1);
  const joined = uids(2000).filter((u) => score("edge@abc", u) <= threshold).length;
  assert.ok(joined > 100 && joined < 300, `${joined} of 2000 joiners in a 10 % cohort`);
});
