/**
 * The rollout state machine, scenario by scenario (DESIGN §3). The exhaustive event × status
 * matrix is in machine-matrix.test.ts and the randomized invariants in machine-random.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { encodeCore, roundTrip } from "../../src/queue/codec.js";
import { cachedScore } from "../../src/queue/cohort.js";
import { pendingWakes, step } from "../../src/queue/machine.js";
import type { RolloutEvent, RolloutNotice } from "../../src/queue/model.js";
import { MachineSim, policy, uids } from "./helpers/machine.js";

const A = "a".repeat(64);
const B = "b".repeat(64);
const C = "c".repeat(64);

/** A group of `n` connected agents whose stable hash is A. */
function onStable(n = 20): MachineSim {
  const sim = new MachineSim();
  sim.fleet(uids(n));
  sim.commit(A);
  for (let i = 0; i < 3; i++) sim.applyAll(A);
  assert.equal(sim.state.stable?.hash, A);
  sim.notices = [];
  sim.effects = [];
  return sim;
}

describe("a rollout through its stages", () => {
  test("first commit: the cohort gets the target, others keep what they run", () => {
    const sim = new MachineSim();
    sim.fleet(uids(20));
    sim.commit(A);
    const r = sim.state.rollout;
    assert.equal(r?.id, `edge@c-aaaaa`);
    assert.equal(r?.from, undefined);
    assert.equal(sim.cohort().length, 2, "10 % of 20");
    const outside = uids(20).find((u) => !sim.cohort().includes(u)) ?? "";
    assert.equal(sim.served(outside), undefined, "no stable hash: nothing is served");
    assert.deepEqual(sim.types(), ["started", "stage-started"]);
  });

  test("stages pass as the cohort applies; the last one completes and A becomes stable", () => {
    const sim = new MachineSim();
    sim.fleet(uids(20));
    sim.commit(A);
    sim.applyAll();
    assert.equal(sim.state.rollout?.stage, 1);
    assert.equal(sim.cohort().length, 10);
    sim.applyAll();
    assert.equal(sim.state.rollout?.stage, 2);
    assert.equal(sim.cohort().length, 20);
    sim.applyAll();
    assert.equal(sim.state.rollout?.status, "completed");
    assert.equal(sim.state.stable?.hash, A);
    assert.ok(uids(20).every((u) => sim.served(u) === A));
    assert.deepEqual(sim.types(), [
      "started",
      "stage-started",
      "stage-passed",
      "stage-started",
      "stage-passed",
      "stage-started",
      "stage-passed",
      "completed",
    ]);
  });

  test("a stage's pause elapses before the next starts (wake effects, idempotent ticks)", () => {
    const sim = onStable();
    sim.commit(
      B,
      policy({
        stages: [
          { percent: 25, pauseMs: 5000 },
          { percent: 100, pauseMs: 0 },
        ],
      }),
    );
    const passed = sim.applyAll();
    assert.ok(passed.notices.some((n) => n.type === "stage-passed"));
    assert.ok(passed.effects.some((e) => e.type === "wake" && e.at === sim.now + 5000));
    assert.equal(sim.tick(4999).notices.length, 0);
    assert.equal(sim.tick(0).notices.length, 0, "a tick twice is harmless");
    const next = sim.tick(1);
    assert.deepEqual(
      next.notices.map((n) => n.type),
      ["stage-started"],
    );
    assert.equal(sim.state.rollout?.stage, 1);
    assert.deepEqual(pendingWakes(sim.state).length, 1, "the new cohort's deadline");
  });

  test("the new rollout starts from the stable hash and non-cohort agents keep it", () => {
    const sim = onStable();
    sim.commit(B);
    assert.equal(sim.state.rollout?.from?.hash, A);
    const cohort = sim.cohort();
    for (const u of uids(20)) assert.equal(sim.served(u), cohort.includes(u) ? B : A);
  });

  test("disconnected members are not waited for until they connect; then their deadline runs", () => {
    const sim = new MachineSim();
    const members = uids(10);
    sim.send(...members.map((uid) => ({ type: "join" as const, uid })));
    sim.commit(A, policy({ stages: [{ percent: 100, pauseMs: 0 }] }));
    // Nobody connected: the gate is open and the rollout completes at once.
    assert.equal(sim.state.rollout?.status, "completed");
    sim.commit(B, policy({ stages: [{ percent: 100, pauseMs: 0 }], applyTimeoutMs: 1000 }));
    assert.equal(sim.state.rollout?.status, "completed", "still nobody connected");
    sim.commit(C, policy({ stages: [{ percent: 100, pauseMs: 0 }], applyTimeoutMs: 1000 }));
    sim.send({ type: "connected", uid: "agent-00000" });
    sim.send({ type: "disconnected", uid: "agent-00000" });
    assert.equal(sim.state.rollout?.waiting, 0);
  });
});

describe("failures", () => {
  test("FAILED for the target with maxFailures 0 rolls back: everyone gets stable", () => {
    const sim = onStable();
    sim.commit(B);
    const [first] = sim.cohort();
    const r = sim.send({
      type: "report",
      uid: first ?? "",
      hash: B,
      status: "FAILED",
      error: "exporter otlp: bad endpoint",
    });
    assert.equal(sim.state.rollout?.status, "rolled-back");
    assert.deepEqual(
      r.notices.map((n) => n.type),
      ["failed", "rolled-back"],
    );
    const rolledBack = r.notices[1] as Extract<RolloutNotice, { type: "rolled-back" }>;
    assert.deepEqual(
      rolledBack.failures.map((f) => [f.uid, f.reason, f.error]),
      [[first, "failed", "exporter otlp: bad endpoint"]],
    );
    assert.match(rolledBack.reason, /more than the 0 allowed/);
    assert.ok(uids(20).every((u) => sim.served(u) === A));
    assert.equal(sim.state.stable?.hash, A);
    assert.ok(r.effects.some((e) => e.type === "serve-changed" && !e.uids));
  });

  test("maxFailures tolerates failures; the stage passes without the failed agent", () => {
    const sim = onStable(40);
    sim.commit(B, policy({ maxFailures: { count: 1 } }));
    const [bad, ...good] = sim.cohort();
    sim.send({ type: "report", uid: bad ?? "", hash: B, status: "FAILED" });
    assert.equal(sim.state.rollout?.status, "in-progress");
    for (const uid of good) sim.send({ type: "report", uid, hash: B, status: "APPLIED" });
    assert.equal(sim.state.rollout?.stage, 1, "the gate passed with the failure tolerated");
    const second = sim.cohort().find((u) => u !== bad && !good.includes(u)) ?? "";
    sim.send({ type: "report", uid: second, hash: B, status: "FAILED" });
    assert.equal(sim.state.rollout?.status, "rolled-back");
  });

  test("percentage maxFailures is taken of the members, rounded down", () => {
    const sim = onStable(40);
    sim.commit(B, policy({ maxFailures: { percent: 5 } })); // 2 of 40
    const cohort = sim.cohort();
    for (const uid of cohort.slice(0, 2))
      sim.send({ type: "report", uid, hash: B, status: "FAILED" });
    assert.equal(sim.state.rollout?.status, "in-progress");
    sim.send({ type: "report", uid: cohort[2] ?? "", hash: B, status: "FAILED" });
    assert.equal(sim.state.rollout?.status, "rolled-back");
  });

  test("unhealthy after applying is a failure; a failure counts once per agent", () => {
    const sim = onStable();
    sim.commit(B, policy({ maxFailures: { count: 5 } }));
    const [uid = ""] = sim.cohort();
    sim.send({ type: "report", uid, hash: B, status: "APPLIED" });
    const r = sim.send({ type: "health", uid, healthy: false, error: "exporter queue full" });
    assert.deepEqual(
      r.notices.map((n) => [n.type, (n as { reason?: string }).reason]),
      [["failed", "unhealthy"]],
    );
    sim.send({ type: "health", uid, healthy: true });
    sim.send({ type: "health", uid, healthy: false, error: "again" });
    sim.send({ type: "report", uid, hash: B, status: "FAILED" });
    assert.equal(sim.state.rollout?.failures, 1);
  });

  test("no APPLIED within applyTimeout fails at the deadline, connected or not", () => {
    const sim = onStable();
    sim.commit(B, policy({ applyTimeoutMs: 200 }));
    const [uid = ""] = sim.cohort();
    sim.send({ type: "report", uid, hash: B, status: "APPLYING" });
    sim.send({ type: "disconnected", uid }); // a crash-looping Collector
    assert.equal(sim.tick(199).notices.length, 0);
    const r = sim.tick(1);
    assert.deepEqual(
      r.notices.map((n) => n.type),
      ["failed", "rolled-back"],
    );
    assert.equal((r.notices[0] as { reason: string }).reason, "timeout");
  });

  test("an agent lost with its process gives back a deadline it never acknowledged", () => {
    const sim = onStable();
    // The stage starts while the agents of a dead process are still marked connected.
    sim.commit(B, policy({ stages: [{ percent: 100, pauseMs: 0 }], applyTimeoutMs: 200 }));
    const [lost = "", acked = "", ...rest] = sim.cohort();
    sim.send({ type: "disconnected", uid: lost, lost: true });
    sim.send({ type: "report", uid: acked, hash: B, status: "APPLYING" });
    sim.send({ type: "disconnected", uid: acked, lost: true });
    assert.equal(sim.state.agents.get(lost)?.offeredAt, undefined);
    assert.notEqual(sim.state.agents.get(acked)?.offeredAt, undefined, "it had the target");
    sim.send(
      ...rest.flatMap((uid): RolloutEvent[] => [
        { type: "report", uid, hash: B, status: "APPLIED" },
        { type: "health", uid, healthy: true },
      ]),
    );
    // The acknowledged deadline still runs out; the withdrawn one never does.
    const r = sim.tick(200);
    assert.deepEqual(
      r.notices.map((n) => [n.type, (n as { uid?: string }).uid]),
      [
        ["failed", acked],
        ["rolled-back", undefined],
      ],
    );
  });

  test("a lost agent that is not blocking any more lets the stage pass; back, it is offered anew", () => {
    const sim = onStable(10);
    sim.commit(B, policy({ stages: [{ percent: 100, pauseMs: 0 }], applyTimeoutMs: 200 }));
    const [lost = "", ...rest] = sim.cohort();
    sim.send({ type: "disconnected", uid: lost, lost: true });
    sim.now += 50;
    sim.send({ type: "connected", uid: lost });
    assert.equal(sim.state.agents.get(lost)?.offeredAt, sim.now, "a fresh deadline");
    sim.send({ type: "disconnected", uid: lost, lost: true });
    sim.send(
      ...rest.flatMap((uid): RolloutEvent[] => [
        { type: "report", uid, hash: B, status: "APPLIED" },
        { type: "health", uid, healthy: true },
      ]),
    );
    assert.equal(sim.state.rollout?.status, "completed");
    assert.equal(sim.tick(1000).notices.length, 0);
  });

  test("an outage of the whole service is taken off running deadlines, once", () => {
    const sim = onStable(10);
    sim.commit(
      B,
      policy({
        stages: [{ percent: 100, pauseMs: 0 }],
        applyTimeoutMs: 1000,
        maxFailures: { count: 5 },
      }),
    );
    const [late = "", early = "", failed = ""] = sim.cohort();
    const offeredAt = sim.now;
    sim.send({ type: "report", uid: failed, hash: B, status: "FAILED" });
    assert.equal(sim.state.rollout?.failures, 1);
    // Down 600 ms after the offers, back 10 s later: 400 ms of each deadline are left.
    const outage = { type: "outage", from: offeredAt + 600, to: offeredAt + 10_600 } as const;
    sim.now = outage.to;
    const r = sim.send(outage, { type: "tick" });
    assert.equal(r.notices.length, 0, "nothing failed at the first tick after the outage");
    assert.equal(sim.state.agents.get(late)?.offeredAt, offeredAt + 10_000);
    assert.equal(sim.state.agents.get(failed)?.offeredAt, offeredAt, "a failure stays as it is");
    assert.ok(
      r.effects.some((e) => e.type === "wake" && e.at >= offeredAt + 11_000),
      JSON.stringify(r.effects),
    );
    // A second replica starting with the same outage moves nothing again.
    sim.send(outage);
    assert.equal(sim.state.agents.get(late)?.offeredAt, offeredAt + 10_000);
    sim.send({ type: "report", uid: early, hash: B, status: "APPLIED" });
    assert.equal(sim.tick(399).notices.length, 0);
    const due = sim.tick(1);
    assert.ok(
      due.notices.some((n) => n.type === "failed" && n.uid === late && n.reason === "timeout"),
      "the rest of the deadline still runs out",
    );
  });

  test("a deadline moved by an outage keeps the grace after it, at most the apply timeout", () => {
    const sim = onStable(10);
    sim.commit(B, policy({ stages: [{ percent: 100, pauseMs: 0 }], applyTimeoutMs: 10_000 }));
    const [early = "", short = ""] = sim.cohort();
    const offeredAt = sim.now;
    // Down 9 s after the offers, back 5 s later: 1 s of each deadline is left, less than
    // the 3 s an agent needs to come back; the grace gives it 3 s.
    const outage = { type: "outage", from: offeredAt + 9000, to: offeredAt + 14_000 } as const;
    sim.now = outage.to;
    sim.send({ ...outage, graceMs: 3000 }, { type: "tick" });
    assert.equal(sim.state.agents.get(early)?.offeredAt, outage.to + 3000 - 10_000);
    sim.send({ type: "report", uid: early, hash: B, status: "APPLIED" });
    assert.equal(sim.tick(2999).notices.length, 0, "no failure within the grace");
    const due = sim.tick(1);
    assert.ok(
      due.notices.some((n) => n.type === "failed" && n.uid === short && n.reason === "timeout"),
      "the grace runs out too",
    );
    // A grace longer than the apply timeout gives a whole timeout, not more.
    const capped = onStable(10);
    capped.commit(B, policy({ stages: [{ percent: 100, pauseMs: 0 }], applyTimeoutMs: 1000 }));
    const [uid = ""] = capped.cohort();
    const at = capped.now;
    capped.now = at + 60_000;
    capped.send({ type: "outage", from: at + 500, to: at + 60_000, graceMs: 30_000 });
    assert.equal(capped.state.agents.get(uid)?.offeredAt, at + 60_000);
  });

  test("a stage pause running when the service went down is moved by the outage", () => {
    const sim = onStable(10);
    sim.commit(
      B,
      policy({
        stages: [
          { percent: 50, pauseMs: 10_000 },
          { percent: 100, pauseMs: 0 },
        ],
      }),
    );
    sim.applyAll();
    const passedAt = sim.now;
    assert.equal(sim.state.rollout?.stagePassedAt, passedAt);
    // Down 2 s into the 10 s pause, back 60 s later: 8 s of it are left.
    sim.now = passedAt + 60_000;
    sim.send({ type: "outage", from: passedAt + 2000, to: passedAt + 60_000 }, { type: "tick" });
    assert.equal(sim.state.rollout?.stage, 0, "the pause goes on after the outage");
    assert.equal(sim.tick(7999).state.rollout?.stage, 0);
    assert.equal(sim.tick(1).state.rollout?.stage, 1);
  });

  test("a deadline that had expired before the outage is not moved", () => {
    const sim = onStable(10);
    sim.commit(B, policy({ stages: [{ percent: 100, pauseMs: 0 }], applyTimeoutMs: 1000 }));
    const [uid = ""] = sim.cohort();
    const offeredAt = sim.now;
    sim.now += 20_000;
    const r = sim.send({ type: "outage", from: offeredAt + 1500, to: sim.now }, { type: "tick" });
    assert.equal(sim.state.agents.get(uid)?.offeredAt, offeredAt);
    assert.deepEqual(
      r.notices.map((n) => n.type).slice(0, 1),
      ["failed"],
      "it was due while the service still ran",
    );
  });

  test("applied but still unhealthy at the deadline is a timeout failure", () => {
    const sim = onStable();
    sim.commit(B, policy({ applyTimeoutMs: 200 }));
    const [uid = ""] = sim.cohort();
    sim.send({ type: "health", uid, healthy: false, error: "starting" });
    sim.send({ type: "report", uid, hash: B, status: "APPLIED" });
    assert.equal(sim.state.rollout?.status, "in-progress", "unhealthy before applying");
    const r = sim.tick(200);
    assert.match((r.notices[0] as { error: string }).error, /still unhealthy.*starting/);
  });

  test("a rejected offer is a failure and the agent is served stable for the rest of it", () => {
    const sim = onStable();
    sim.commit(B, policy({ maxFailures: { count: 3 } }));
    const [uid = ""] = sim.cohort();
    sim.send({ type: "report", uid, hash: B, status: "APPLYING" });
    const r = sim.send({ type: "report", uid, hash: A, status: "APPLIED" });
    assert.equal((r.notices[0] as { reason: string }).reason, "rejected");
    assert.deepEqual(r.effects, [{ type: "serve-changed", uids: [uid] }]);
    assert.equal(sim.served(uid), A);
    // Reported and desired agree: another APPLIED for A changes nothing.
    assert.equal(sim.send({ type: "report", uid, hash: A, status: "APPLIED" }).notices.length, 0);
    assert.equal(sim.state.rollout?.failures, 1);
    // The gate does not wait for it.
    for (const u of sim.cohort()) sim.send({ type: "report", uid: u, hash: B, status: "APPLIED" });
    assert.equal(sim.state.rollout?.stage, 1);
  });

  test("FAILED then APPLIED for the old hash: rejected, counted once", () => {
    const sim = onStable();
    sim.commit(B, policy({ maxFailures: { count: 3 } }));
    const [uid = ""] = sim.cohort();
    sim.send({ type: "report", uid, hash: B, status: "FAILED" });
    sim.send({ type: "report", uid, hash: A, status: "APPLIED" });
    assert.equal(sim.state.rollout?.failures, 1);
    assert.equal(sim.served(uid), A);
  });

  test("onFailure pause holds the rollout for a person; resume continues", () => {
    const sim = onStable();
    sim.commit(B, policy({ onFailure: "pause" }));
    const [bad = ""] = sim.cohort();
    const r = sim.send({ type: "report", uid: bad, hash: B, status: "FAILED" });
    assert.deepEqual(
      r.notices.map((n) => n.type),
      ["failed", "paused"],
    );
    assert.equal(sim.state.rollout?.hold?.source, "failures");
    assert.equal(sim.served(bad), B, "held, not rolled back");
    sim.applyAll();
    assert.equal(sim.state.rollout?.stage, 0, "held: no new stage");
    sim.send({ type: "resume", by: "alice" });
    assert.equal(sim.state.rollout?.stage, 1);
  });
});

describe("control", () => {
  test("Git paused from the start: nobody gets the target until paused: false", () => {
    const sim = onStable();
    sim.commit(B, policy({ paused: true }));
    assert.equal(sim.state.rollout?.stage, -1);
    assert.equal(sim.cohort().length, 0);
    assert.deepEqual(sim.types(), ["started", "paused"]);
    sim.commit(B, policy({ paused: true }));
    assert.equal(sim.notices.length, 2, "the same commit again changes nothing");
    sim.commit(B, policy({ paused: false }));
    assert.equal(sim.state.rollout?.stage, 0);
    assert.deepEqual(sim.types().slice(2), ["resumed", "stage-started"]);
  });

  test("Git paused mid-rollout holds the next stage; API resume continues", () => {
    const sim = onStable();
    sim.commit(B);
    sim.commit(B, policy({ paused: true }));
    sim.applyAll();
    assert.equal(sim.state.rollout?.stage, 0);
    assert.ok(sim.state.rollout?.stagePassedAt !== undefined, "the gate still passes");
    assert.deepEqual(step(sim.state, { type: "pause", by: "bob" }, sim.now).ignored, [
      { index: 0, code: "ROLLOUT_ALREADY_PAUSED" },
    ]);
    sim.send({ type: "resume", by: "bob" });
    assert.equal(sim.state.rollout?.stage, 1);
  });

  test("API pause holds, resume continues, resume twice is reported", () => {
    const sim = onStable();
    sim.commit(B);
    sim.send({ type: "pause", by: "alice" });
    sim.applyAll();
    assert.equal(sim.state.rollout?.stage, 0);
    assert.equal(sim.cohort().length, 2, "the cohort keeps the target while paused");
    sim.send({ type: "resume", by: "alice" });
    assert.equal(sim.state.rollout?.stage, 1);
    assert.deepEqual(sim.send({ type: "resume", by: "alice" }).ignored, [
      { index: 0, code: "ROLLOUT_NOT_PAUSED" },
    ]);
  });

  test("promote skips the gate and the pause; at the last stage it completes", () => {
    const sim = onStable();
    sim.commit(
      B,
      policy({
        stages: [
          { percent: 10, pauseMs: 60_000 },
          { percent: 100, pauseMs: 0 },
        ],
      }),
    );
    sim.send({ type: "promote", by: "carol" });
    assert.equal(sim.state.rollout?.stage, 1);
    sim.send({ type: "promote", by: "carol" });
    assert.equal(sim.state.rollout?.status, "completed");
    assert.equal(sim.state.stable?.hash, B);
  });

  test("abort: back to stable, and control of an ended rollout is reported", () => {
    const sim = onStable();
    sim.commit(B);
    sim.applyAll();
    const r = sim.send({ type: "abort", by: "dave" });
    assert.deepEqual(
      r.notices.map((n) => n.type),
      ["aborted"],
    );
    assert.ok(uids(20).every((u) => sim.served(u) === A));
    for (const type of ["pause", "resume", "promote", "abort"] as const) {
      assert.deepEqual(sim.send({ type, by: "dave" }).ignored, [
        { index: 0, code: "ROLLOUT_NOT_IN_FLIGHT" },
      ]);
    }
    assert.deepEqual(sim.commit(B).ignored, [{ index: 0, code: "ROLLOUT_ENDED_FOR_HASH" }]);
    assert.equal(sim.state.rollout?.status, "aborted", "an aborted hash is not retried");
  });
});

describe("supersede", () => {
  test("a new commit supersedes the rollout in flight; the new one starts from stable", () => {
    const sim = onStable();
    sim.commit(B);
    const firstId = sim.state.rollout?.id;
    sim.applyAll();
    const r = sim.commit(C);
    assert.deepEqual(
      r.notices.map((n) => [n.type, n.rolloutId]),
      [
        ["superseded", firstId],
        ["started", "edge@c-ccccc"],
        ["stage-started", "edge@c-ccccc"],
      ],
    );
    assert.equal(sim.state.rollout?.from?.hash, A, "from the stable hash, not from B");
    assert.ok(uids(20).every((u) => [A, C].includes(sim.served(u) ?? "")));
    assert.equal(sim.state.agents.size, 2, "agent records of B are gone");
  });

  test("a revert to the stable hash ends the rollout and starts nothing", () => {
    const sim = onStable();
    sim.commit(B);
    const r = sim.commit(A, policy(), "revert");
    assert.deepEqual(
      r.notices.map((n) => n.type),
      ["superseded"],
    );
    assert.ok(uids(20).every((u) => sim.served(u) === A));
    // B again later is a new rollout (it was superseded, not rolled back).
    sim.commit(B, policy(), "again");
    assert.equal(sim.state.rollout?.status, "in-progress");
    assert.equal(sim.state.rollout?.id, "edge@again");
  });

  test("rollout ids stay unique when a commit id repeats", () => {
    const sim = onStable();
    sim.commit(B, policy(), "same");
    sim.commit(C, policy(), "same");
    assert.notEqual(sim.state.rollout?.id, "edge@same");
    assert.match(sim.state.rollout?.id ?? "", /^edge@same-\d+$/);
  });
});

describe("membership", () => {
  test("an agent joining mid-stage is placed by the same rule and waited for", () => {
    const sim = onStable(50);
    sim.commit(B);
    const id = sim.state.rollout?.id ?? "";
    const before = sim.cohort();
    // Find newcomers inside and outside the threshold.
    const newcomers = uids(400, "new");
    sim.fleet(newcomers);
    const joinedCohort = sim.cohort().filter((u) => !before.includes(u));
    assert.ok(joinedCohort.length > 0 && joinedCohort.length < 400, `${joinedCohort.length}`);
    assert.ok(
      before.every((u) => sim.cohort().includes(u)),
      "monotone",
    );
    assert.equal(sim.state.rollout?.id, id);
    assert.equal(sim.state.rollout?.waiting, before.length + joinedCohort.length);
  });

  test("a stage started before any agent joined admits one once its percentage means an agent", () => {
    const sim = new MachineSim();
    const quarter = policy({
      stages: [
        { percent: 25, pauseMs: 3_600_000 },
        { percent: 100, pauseMs: 0 },
      ],
    });
    sim.commit(A, quarter);
    const id = sim.state.rollout?.id ?? "";
    assert.equal(sim.state.rollout?.thresholds[0], 0.25, "no members: the percentage itself");
    // Eight agents none of which falls under 25 % (one group in ten draws such scores).
    const late = uids(200, "late").filter((u) => cachedScore(id, u) > 0.25);
    const agents = late.slice(0, 8);
    sim.fleet(agents.slice(0, 3));
    assert.deepEqual(sim.cohort(), [], "3 × 25 % is less than one agent: nobody yet");
    sim.fleet(agents.slice(3, 4));
    const four = agents.slice(0, 4);
    const lowest = four.reduce((a, b) => (cachedScore(id, a) <= cachedScore(id, b) ? a : b));
    assert.deepEqual(sim.cohort(), [lowest], "the fourth join admits the lowest score");
    assert.equal(sim.state.rollout?.thresholds[0], cachedScore(id, lowest));
    assert.equal(sim.served(lowest), A);
    assert.ok(sim.state.agents.get(lowest)?.offeredAt !== undefined, "offered (connected)");
    sim.fleet(agents.slice(4));
    assert.ok(sim.cohort().includes(lowest), "monotone");
    assert.ok(
      sim.cohort().every((u) => cachedScore(id, u) <= cachedScore(id, lowest)),
      "later joiners placed by the risen threshold",
    );
    sim.applyAll(A);
    assert.equal(sim.state.rollout?.stage, 0, "the stage's pause holds");
    assert.equal(sim.state.rollout?.status, "in-progress");
  });

  test("a stage started before any agent joined keeps its percentage when a joiner falls under it", () => {
    const sim = new MachineSim();
    sim.commit(A, policy({ stages: [{ percent: 25, pauseMs: 3_600_000 }] }));
    const id = sim.state.rollout?.id ?? "";
    const outside = uids(200, "late").filter((u) => cachedScore(id, u) > 0.25);
    const inside = uids(200, "late").find((u) => cachedScore(id, u) <= 0.25) ?? "";
    sim.fleet([inside, ...outside.slice(0, 7)]);
    assert.equal(sim.state.rollout?.thresholds[0], 0.25);
    assert.deepEqual(sim.cohort(), [inside]);
  });

  test("a gate passed with nobody in the cohort reopens for the agent admitted in its pause", () => {
    const sim = new MachineSim();
    const hour = 3_600_000;
    const quarter = policy({
      stages: [
        { percent: 25, pauseMs: hour },
        { percent: 100, pauseMs: 0 },
      ],
      applyTimeoutMs: 3 * hour,
    });
    sim.commit(A, quarter);
    const id = sim.state.rollout?.id ?? "";
    assert.deepEqual(sim.types(), ["started", "stage-started", "stage-passed"], "empty: passed");
    const agents = uids(200, "late")
      .filter((u) => cachedScore(id, u) > 0.25)
      .slice(0, 4);
    sim.notices = [];
    sim.fleet(agents);
    const [admitted = ""] = sim.cohort();
    const reopened = sim.notices.find((n) => n.type === "stage-reopened");
    assert.deepEqual(
      reopened && { stage: reopened.stage, uid: reopened.uid },
      { stage: 0, uid: admitted },
      "the admitted canary closes the gate again",
    );
    assert.equal(sim.state.rollout?.stagePassedAt, undefined);
    sim.tick(hour + 1);
    assert.equal(sim.state.rollout?.stage, 0, "the old pause's end does not start stage 2");
    sim.send({ type: "report", uid: admitted, hash: A, status: "APPLIED" });
    assert.equal(sim.state.rollout?.stagePassedAt, sim.now, "passed on the canary's APPLIED");
    assert.equal(sim.state.rollout?.passedUnverified, undefined, "verified now");
    sim.tick(hour - 1);
    assert.equal(sim.state.rollout?.stage, 0, "its pause runs again from the pass");
    sim.tick(1);
    assert.equal(sim.state.rollout?.stage, 1);
  });

  test("a gate passed while every cohort member was away reopens when one connects", () => {
    const sim = new MachineSim();
    const members = uids(20);
    sim.send(...members.map((uid) => ({ type: "join" as const, uid })));
    const stages = [
      { percent: 50, pauseMs: 60_000 },
      { percent: 100, pauseMs: 0 },
    ];
    sim.commit(A, policy({ stages, applyTimeoutMs: 3_600_000 }));
    assert.ok(sim.state.rollout?.passedUnverified, "passed: nobody connected to wait for");
    const cohort = sim.cohort();
    const outside = members.find((u) => !cohort.includes(u)) ?? "";
    sim.send({ type: "connected", uid: outside });
    assert.ok(sim.state.rollout?.stagePassedAt !== undefined, "an agent outside: still passed");
    const [first = ""] = cohort;
    sim.send({ type: "connected", uid: first });
    assert.equal(sim.state.rollout?.stagePassedAt, undefined, "reopened for the cohort agent");
    assert.equal(sim.notices.filter((n) => n.type === "stage-reopened").length, 1);
    sim.tick(60_000);
    assert.equal(sim.state.rollout?.stage, 0);
    sim.send({ type: "report", uid: first, hash: A, status: "APPLIED" });
    // Verified: later cohort agents connecting in the pause do not reopen it.
    for (const u of cohort.slice(1)) sim.send({ type: "connected", uid: u });
    assert.ok(sim.state.rollout?.stagePassedAt !== undefined);
    assert.equal(sim.notices.filter((n) => n.type === "stage-reopened").length, 1);
    assert.equal(sim.state.rollout?.status, "in-progress");
    const passed = sim.state.rollout?.stagePassedAt ?? 0;
    sim.tick(passed + 60_000 - sim.now);
    assert.equal(sim.state.rollout?.stage, 1);
  });

  test("a blocking agent that leaves opens the gate", () => {
    const sim = onStable();
    sim.commit(B);
    const [a = "", b = ""] = sim.cohort();
    sim.send({ type: "report", uid: a, hash: B, status: "APPLIED" });
    assert.equal(sim.state.rollout?.stage, 0);
    sim.send({ type: "leave", uid: b });
    assert.equal(sim.state.rollout?.stage, 1);
  });
});

describe("purity and storage", () => {
  test("step never mutates its input", () => {
    const sim = onStable();
    sim.commit(B);
    const before = sim.state;
    const coreBefore = encodeCore(before);
    const membersBefore = JSON.stringify([...before.members.entries()]);
    const agentsBefore = JSON.stringify([...before.agents.entries()]);
    for (const uid of sim.cohort()) {
      step(before, { type: "report", uid, hash: B, status: "FAILED" }, sim.now);
      step(before, { type: "health", uid, healthy: false }, sim.now);
      step(before, { type: "leave", uid }, sim.now);
    }
    step(before, { type: "commit", hash: C, commit: "x", policy: policy() }, sim.now);
    step(before, { type: "tick" }, sim.now + 1e9);
    assert.equal(encodeCore(before), coreBefore);
    assert.equal(JSON.stringify([...before.members.entries()]), membersBefore);
    assert.equal(JSON.stringify([...before.agents.entries()]), agentsBefore);
  });

  test("a state survives serialisation unchanged", () => {
    const sim = onStable();
    sim.commit(B, policy({ maxFailures: { count: 3 } }));
    const [uid = ""] = sim.cohort();
    sim.send({ type: "report", uid, hash: B, status: "FAILED", error: "x" });
    sim.send({ type: "health", uid, healthy: false, error: "y" });
    const copy = roundTrip(sim.state);
    assert.equal(encodeCore(copy), encodeCore(sim.state));
    assert.deepEqual([...copy.members.entries()].sort(), [...sim.state.members.entries()].sort());
    assert.deepEqual([...copy.agents.entries()].sort(), [...sim.state.agents.entries()].sort());
  });
});
