/**
 * Every event in every status: each fixture (a rollout in a given status) receives each kind of
 * event, and the notices it produces are checked against a table; the invariants of
 * helpers/invariants.ts are checked for every pair as well.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { encodeCore } from "../../src/queue/codec.js";
import { score } from "../../src/queue/cohort.js";
import { step } from "../../src/queue/machine.js";
import type { GroupRollout, RolloutEvent } from "../../src/queue/model.js";
import { stableOrTarget } from "../../src/queue/serve.js";
import { checkInvariants } from "./helpers/invariants.js";
import { MachineSim, policy, uids } from "./helpers/machine.js";

const A = "a".repeat(64);
const B = "b".repeat(64);
const C = "c".repeat(64);
const MEMBERS = uids(20);
/** A member that never connects, chosen outside the early cohorts of both rollouts. */
const SLEEPER =
  Array.from({ length: 1000 }, (_, i) => `sleeper-${i}`).find(
    (u) => score("edge@commit-a", u) > 0.9 && score("edge@commit-b", u) > 0.9,
  ) ?? "sleeper";
const NEWBIE = "newbie";
const POLICY = policy({
  applyTimeoutMs: 600_000,
  stages: [
    { percent: 5, pauseMs: 0 },
    { percent: 50, pauseMs: 60_000 },
    { percent: 100, pauseMs: 0 },
  ],
});

interface Fixture {
  sim: MachineSim;
  /** A cohort member that has not failed (or any member when there is no cohort). */
  c: string;
  /** A member outside the cohort (or a non-member when everyone is in it). */
  o: string;
}

function base(): MachineSim {
  const sim = new MachineSim();
  sim.fleet(MEMBERS);
  sim.send({ type: "join", uid: SLEEPER });
  sim.commit(A, POLICY, "commit-a");
  for (let i = 0; i < 3; i++) {
    sim.applyAll(A);
    sim.tick(60_000);
  }
  assert.equal(sim.state.stable?.hash, A);
  return sim;
}

function fixture(sim: MachineSim): Fixture {
  const cohort = sim.cohort().filter((u) => !sim.state.agents.get(u)?.failure);
  const c = cohort[0] ?? MEMBERS[0] ?? "";
  const o = MEMBERS.find((u) => stableOrTarget(sim.state, u) !== "target") ?? NEWBIE;
  return { sim, c, o };
}

const FIXTURES: Record<string, () => MachineSim> = {
  "no rollout yet": () => {
    const sim = new MachineSim();
    sim.fleet(MEMBERS);
    return sim;
  },
  "held before the first stage (Git paused)": () => {
    const sim = base();
    sim.commit(B, { ...POLICY, paused: true }, "commit-b");
    return sim;
  },
  "stage 0, gate closed": () => {
    const sim = base();
    sim.commit(B, POLICY, "commit-b");
    return sim;
  },
  "stage 1 passed, in its pause": () => {
    const sim = base();
    sim.commit(B, POLICY, "commit-b");
    sim.applyAll();
    sim.applyAll();
    assert.ok(sim.state.rollout?.stagePassedAt !== undefined && sim.state.rollout.stage === 1);
    return sim;
  },
  "held by the API": () => {
    const sim = base();
    sim.commit(B, POLICY, "commit-b");
    sim.send({ type: "pause", by: "ops" });
    return sim;
  },
  "held for failures": () => {
    const sim = base();
    sim.commit(B, { ...POLICY, onFailure: "pause" }, "commit-b");
    const [bad = ""] = sim.cohort();
    sim.send({ type: "report", uid: bad, hash: B, status: "FAILED" });
    assert.equal(sim.state.rollout?.hold?.source, "failures");
    return sim;
  },
  "last stage": () => {
    const sim = base();
    sim.commit(B, POLICY, "commit-b");
    sim.send({ type: "promote", by: "ops" }, { type: "promote", by: "ops" });
    assert.equal(sim.state.rollout?.stage, 2);
    return sim;
  },
  completed: () => {
    const sim = base();
    sim.commit(B, POLICY, "commit-b");
    for (let i = 0; i < 3; i++) {
      sim.applyAll();
      sim.tick(60_000);
    }
    assert.equal(sim.state.rollout?.status, "completed");
    return sim;
  },
  "rolled back": () => {
    const sim = base();
    sim.commit(B, POLICY, "commit-b");
    sim.send({ type: "report", uid: sim.cohort()[0] ?? "", hash: B, status: "FAILED" });
    assert.equal(sim.state.rollout?.status, "rolled-back");
    return sim;
  },
  aborted: () => {
    const sim = base();
    sim.commit(B, POLICY, "commit-b");
    sim.send({ type: "abort", by: "ops" });
    return sim;
  },
  "superseded by a revert": () => {
    const sim = base();
    sim.commit(B, POLICY, "commit-b");
    sim.commit(A, POLICY, "revert");
    assert.equal(sim.state.rollout?.status, "superseded");
    return sim;
  },
};

type EventMaker = (f: Fixture) => RolloutEvent;
const EVENTS: Record<string, EventMaker> = {
  "commit C": () => ({ type: "commit", hash: C, commit: "commit-c", policy: POLICY }),
  "commit B, new maxFailures": (f) => ({
    type: "commit",
    hash: B,
    commit: "commit-b",
    policy: { ...(f.sim.state.rollout?.policy ?? POLICY), maxFailures: { count: 1 } },
  }),
  "commit B, paused": () => ({
    type: "commit",
    hash: B,
    commit: "commit-b",
    policy: { ...POLICY, paused: true },
  }),
  "commit B, unpaused": () => ({ type: "commit", hash: B, commit: "commit-b", policy: POLICY }),
  "commit A": () => ({ type: "commit", hash: A, commit: "revert-2", policy: POLICY }),
  join: () => ({ type: "join", uid: NEWBIE }),
  leave: (f) => ({ type: "leave", uid: f.c }),
  connected: () => ({ type: "connected", uid: SLEEPER }),
  disconnected: (f) => ({ type: "disconnected", uid: f.c }),
  "APPLYING target": (f) => ({ type: "report", uid: f.c, hash: B, status: "APPLYING" }),
  "APPLIED target": (f) => ({ type: "report", uid: f.c, hash: B, status: "APPLIED" }),
  "FAILED target": (f) => ({ type: "report", uid: f.c, hash: B, status: "FAILED", error: "x" }),
  "APPLIED other": (f) => ({ type: "report", uid: f.c, hash: A, status: "APPLIED" }),
  "APPLIED target outside": (f) => ({ type: "report", uid: f.o, hash: B, status: "APPLIED" }),
  unhealthy: (f) => ({ type: "health", uid: f.c, healthy: false, error: "down" }),
  healthy: (f) => ({ type: "health", uid: f.c, healthy: true }),
  pause: () => ({ type: "pause", by: "ops" }),
  resume: () => ({ type: "resume", by: "ops" }),
  promote: () => ({ type: "promote", by: "ops" }),
  abort: () => ({ type: "abort", by: "ops" }),
  tick: () => ({ type: "tick" }),
  "tick +1 h": () => ({ type: "tick" }),
};

const NEW = ["superseded", "started", "stage-started"];
const FAIL = ["failed", "rolled-back"];
/** Notices expected where they are not []. */
const EXPECTED: Record<string, Record<string, string[]>> = {
  "no rollout yet": {
    "commit C": ["started", "stage-started"],
    "commit B, new maxFailures": ["started", "stage-started"],
    "commit B, paused": ["started", "paused"],
    "commit B, unpaused": ["started", "stage-started"],
    "commit A": ["started", "stage-started"],
  },
  "held before the first stage (Git paused)": {
    "commit C": NEW,
    "commit B, unpaused": ["resumed", "stage-started"],
    "commit A": ["superseded"],
    resume: ["resumed", "stage-started"],
    promote: ["promoted", "stage-started"],
    abort: ["aborted"],
  },
  "stage 0, gate closed": {
    "commit C": NEW,
    "commit B, paused": ["paused"],
    "commit A": ["superseded"],
    "FAILED target": FAIL,
    pause: ["paused"],
    promote: ["promoted", "stage-started"],
    abort: ["aborted"],
    "tick +1 h": FAIL,
  },
  "stage 1 passed, in its pause": {
    "commit C": NEW,
    "commit B, paused": ["paused"],
    "commit A": ["superseded"],
    "FAILED target": FAIL,
    "APPLIED other": FAIL,
    unhealthy: FAIL,
    pause: ["paused"],
    promote: ["promoted", "stage-started"],
    abort: ["aborted"],
    "tick +1 h": ["stage-started"],
  },
  "held by the API": {
    "commit C": NEW,
    "commit A": ["superseded"],
    "FAILED target": FAIL,
    resume: ["resumed"],
    promote: ["promoted", "stage-started"],
    abort: ["aborted"],
    "tick +1 h": FAIL,
  },
  "held for failures": {
    "commit C": NEW,
    "commit A": ["superseded"],
    leave: ["stage-passed"],
    "APPLIED target": ["stage-passed"],
    "FAILED target": ["failed", "stage-passed"],
    resume: ["resumed"],
    promote: ["promoted", "stage-started"],
    abort: ["aborted"],
    "tick +1 h": ["failed", "stage-passed"],
  },
  "last stage": {
    "commit C": NEW,
    "commit B, paused": ["paused"],
    "commit A": ["superseded"],
    "FAILED target": FAIL,
    pause: ["paused"],
    promote: ["promoted", "completed"],
    abort: ["aborted"],
    "tick +1 h": FAIL,
  },
  completed: {
    "commit C": ["started", "stage-started"],
    "commit A": ["started", "stage-started"],
  },
  "rolled back": { "commit C": ["started", "stage-started"] },
  aborted: { "commit C": ["started", "stage-started"] },
  "superseded by a revert": {
    "commit C": ["started", "stage-started"],
    "commit B, new maxFailures": ["started", "stage-started"],
    "commit B, paused": ["started", "paused"],
    "commit B, unpaused": ["started", "stage-started"],
  },
};

const IGNORED_WHEN_ENDED: Record<string, string> = {
  pause: "ROLLOUT_NOT_IN_FLIGHT",
  resume: "ROLLOUT_NOT_IN_FLIGHT",
  promote: "ROLLOUT_NOT_IN_FLIGHT",
  abort: "ROLLOUT_NOT_IN_FLIGHT",
};

function inFlight(s: GroupRollout): boolean {
  return s.rollout?.status === "in-progress";
}

for (const [fixtureName, make] of Object.entries(FIXTURES)) {
  describe(`status: ${fixtureName}`, () => {
    for (const [eventName, makeEvent] of Object.entries(EVENTS)) {
      test(eventName, () => {
        const f = fixture(make());
        const event = makeEvent(f);
        const now = f.sim.now + (eventName === "tick +1 h" ? 3_600_000 : 0);
        const before = f.sim.state;
        const result = step(before, event, now);
        checkInvariants(before, result, true, [...MEMBERS, SLEEPER, NEWBIE]);
        assert.deepEqual(
          result.notices.map((n) => n.type),
          EXPECTED[fixtureName]?.[eventName] ?? [],
        );
        if (!inFlight(before)) {
          const endedForB =
            ["rolled back", "aborted"].includes(fixtureName) && eventName.startsWith("commit B");
          const code = endedForB ? "ROLLOUT_ENDED_FOR_HASH" : IGNORED_WHEN_ENDED[eventName];
          assert.deepEqual(
            result.ignored.map((i) => i.code),
            code ? [code] : [],
          );
          if (event.type !== "commit") {
            assert.equal(encodeCore(result.state), encodeCore(before), "an ended rollout stays");
          }
        }
      });
    }
  });
}

test("the same commit applied again is a no-op in every status but superseded", () => {
  for (const make of Object.values(FIXTURES)) {
    const sim = make();
    const r = sim.state.rollout;
    // A superseded hash committed again is a new rollout (tested in the table above).
    if (!r || r.status === "superseded") continue;
    const again = step(
      sim.state,
      { type: "commit", hash: r.target.hash, commit: r.target.commit, policy: r.policy },
      sim.now,
    );
    assert.deepEqual(again.notices, []);
    assert.equal(encodeCore(again.state), encodeCore(sim.state));
  }
});
