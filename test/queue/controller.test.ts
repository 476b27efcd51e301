/**
 * The rollout controller against real Redis (a unique prefix per test) with simulated agents:
 * every stage, rollback, holds, timers (BullMQ delayed jobs), two replicas, the hot path.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  NoRolloutInFlightError,
  RolloutHoldError,
  UnknownGroupError,
} from "../../src/queue/index.js";
import type { RolloutNotice } from "../../src/queue/model.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { hashOf, SimFleet, stableFleet, startController } from "./helpers/fleet.js";
import { policy, uids } from "./helpers/machine.js";

const A = hashOf("a");
const B = hashOf("b");
const types = (ns: RolloutNotice[], id?: string) =>
  ns.filter((n) => !id || n.rolloutId === id).map((n) => n.type);

const defer = deferred();

/** Redis (its own prefix) and a group of `n` agents on stable hash A, closed after the test. */
async function stableGroup(n?: number) {
  const r = await testRedis();
  defer(() => r.close());
  const t = await onStable(r.prefix, n);
  defer(async () => {
    t.fleet.stop();
    await t.close();
  });
  return { r, t };
}

/** A group `edge` of `n` agents, all on stable hash A. */
async function onStable(prefix: string, n = 30) {
  const t = await startController(prefix);
  const fleet = await stableFleet(t, uids(n));
  return { ...t, fleet };
}

test("a rollout goes through every stage, with a timed pause, to completion", async () => {
  const { r, t } = await stableGroup();
  const started = Date.now();
  const status = await t.controller.applyGroup({
    group: "edge",
    hash: B,
    commit: "bbbbbbb2",
    policy: policy({
      stages: [
        { percent: 10, pauseMs: 0 },
        { percent: 50, pauseMs: 300 },
        { percent: 100, pauseMs: 0 },
      ],
    }),
  });
  assert.equal(status.rollout?.id, "edge@bbbbbbb");
  assert.equal(status.rollout?.from?.hash, A);
  await waitFor("completed", () => t.notices.some((n) => n.type === "completed"));
  assert.ok(Date.now() - started >= 300, "the 300 ms pause was waited for");
  assert.deepEqual(types(t.notices), [
    "started",
    "stage-started",
    "stage-passed",
    "stage-started",
    "stage-passed",
    "stage-started",
    "stage-passed",
    "completed",
  ]);
  const sizes = t.notices.flatMap((n) => (n.type === "stage-started" ? [n.cohort] : []));
  assert.deepEqual(sizes, [3, 15, 30]);
  const final = t.controller.status("edge");
  assert.equal(final?.stable?.hash, B);
  assert.equal(final?.rollout?.status, "completed");
  for (const uid of uids(30)) assert.equal(t.controller.served("edge", uid)?.hash, B);
  // Stored: the core, the members, the notices stream.
  assert.equal(await r.redis.hlen(`${r.prefix}:group:edge:members`), 30);
  assert.match((await r.redis.hget(`${r.prefix}:group:edge:rollout`, "state")) ?? "", /completed/);
  assert.ok((await r.redis.xlen(`${r.prefix}:rollout-notices`)) >= 8);
});

test("a failing stage is rolled back: the cohort gets the stable hash again", async () => {
  const { t } = await stableGroup();
  for (const uid of uids(30)) t.fleet.behaviour.set(uid, "fail");
  await t.controller.applyGroup({ group: "edge", hash: B, commit: "bbbbbbb2", policy: policy() });
  await waitFor("rolled back", () => t.notices.some((n) => n.type === "rolled-back"));
  const rolledBack = t.notices.find((n) => n.type === "rolled-back");
  assert.ok(rolledBack?.type === "rolled-back");
  assert.equal(rolledBack.failures[0]?.reason, "failed");
  assert.equal(rolledBack.failures[0]?.error, "exporter otlp: connection refused");
  assert.match(rolledBack.reason, /more than the 0 allowed/);
  const status = t.controller.status("edge");
  assert.equal(status?.rollout?.status, "rolled-back");
  assert.equal(status?.stable?.hash, A);
  for (const uid of uids(30)) assert.equal(t.controller.served("edge", uid)?.hash, A);
  // The same hash again is not retried.
  const again = await t.controller.applyGroup({
    group: "edge",
    hash: B,
    commit: "bbbbbbb2",
    policy: policy(),
  });
  assert.equal(again.rollout?.status, "rolled-back");
});

test("a rejected offer counts as a failure and the agent keeps the stable hash", async () => {
  const { t } = await stableGroup(20);
  for (const uid of uids(20)) t.fleet.behaviour.set(uid, "reject");
  await t.controller.applyGroup({
    group: "edge",
    hash: B,
    commit: "bbbbbbb2",
    policy: policy({ maxFailures: { count: 1 }, onFailure: "pause" }),
  });
  await waitFor("held", () => t.controller.status("edge")?.rollout?.hold?.source === "failures");
  const failed = t.notices.filter((n) => n.type === "failed");
  assert.deepEqual(
    failed.map((n) => n.type === "failed" && n.reason),
    ["rejected", "rejected"],
  );
  for (const n of failed) {
    if (n.type === "failed") assert.equal(t.controller.served("edge", n.uid)?.hash, A);
  }
});

test("a paused rollout is held: Git paused, then the API pause", async () => {
  const r = await testRedis();
  const t = await onStable(r.prefix, 20);
  const spec = { group: "edge", hash: B, commit: "bbbbbbb2" };
  defer(async () => {
    t.fleet.stop();
    await t.close();
    await r.close();
  });
  await assert.rejects(t.controller.pause("nope", "ops"), UnknownGroupError);
  await assert.rejects(t.controller.abort("edge", "ops"), NoRolloutInFlightError);
  // Git: committed paused, nobody gets B.
  await t.controller.applyGroup({ ...spec, policy: policy({ paused: true }) });
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(t.controller.status("edge")?.rollout?.stage, -1);
  assert.ok(uids(20).every((u) => t.controller.served("edge", u)?.hash === A));
  // Git: paused false, it starts; the API pauses it at the first stage.
  await t.controller.applyGroup({ ...spec, policy: policy() });
  const paused = await t.controller.pause("edge", "alice");
  assert.equal(paused.rollout?.hold?.by, "alice");
  await assert.rejects(t.controller.pause("edge", "alice"), RolloutHoldError);
  await waitFor("stage 0 passed", () => t.notices.some((n) => n.type === "stage-passed"));
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(t.controller.status("edge")?.rollout?.stage, 0, "held at stage 0");
  assert.equal(t.notices.filter((n) => n.type === "stage-started").length, 1);
  await t.controller.resume("edge", "alice");
  await waitFor("completed", () => t.controller.status("edge")?.rollout?.status === "completed");
  await assert.rejects(t.controller.resume("edge", "alice"), NoRolloutInFlightError);
  assert.deepEqual(types(t.notices).slice(0, 3), ["started", "paused", "resumed"]);
});

test("applyTimeout fires from a BullMQ timer: silent agents fail and the stage rolls back", async () => {
  const { t } = await stableGroup(20);
  for (const uid of uids(20)) t.fleet.behaviour.set(uid, "silent");
  const started = Date.now();
  await t.controller.applyGroup({
    group: "edge",
    hash: B,
    commit: "bbbbbbb2",
    policy: policy({ applyTimeoutMs: 200 }),
  });
  await waitFor("rolled back", () => t.notices.some((n) => n.type === "rolled-back"), {
    timeoutMs: 5000,
  });
  assert.ok(Date.now() - started >= 200);
  const failed = t.notices.find((n) => n.type === "failed");
  assert.ok(failed?.type === "failed");
  assert.equal(failed.reason, "timeout");
  assert.match(failed.error ?? "", /no APPLIED within 200 ms/);
});

test("promote, abort and supersede through the controller", async () => {
  const { r, t } = await stableGroup(20);
  for (const uid of uids(20)) t.fleet.behaviour.set(uid, "silent");
  await t.controller.applyGroup({ group: "edge", hash: B, commit: "bbbbbbb2", policy: policy() });
  const promoted = await t.controller.promote("edge", "carol");
  assert.equal(promoted.rollout?.stage, 1);
  assert.equal(promoted.rollout?.cohort, 10);
  const C = hashOf("c");
  await t.controller.applyGroup({ group: "edge", hash: C, commit: "ccccccc3", policy: policy() });
  const status = t.controller.status("edge");
  assert.equal(status?.rollout?.id, "edge@ccccccc");
  assert.equal(status?.rollout?.from?.hash, A, "from stable, not from the superseded B");
  assert.ok(uids(20).every((u) => [A, C].includes(t.controller.served("edge", u)?.hash ?? "")));
  const aborted = await t.controller.abort("edge", "dave");
  assert.equal(aborted.rollout?.status, "aborted");
  assert.ok(uids(20).every((u) => t.controller.served("edge", u)?.hash === A));
  assert.deepEqual(
    types(t.notices).filter((x) => x !== "stage-started"),
    ["started", "promoted", "superseded", "started", "aborted"],
  );
  await t.controller.removeGroup("edge");
  assert.equal(t.controller.served("edge", "agent-00000"), undefined);
  assert.equal(await r.redis.exists(`${r.prefix}:group:edge:rollout`), 0);
});

test("two replicas: each serves what the other committed, and writes never collide", async () => {
  const r = await testRedis();
  const one = await startController(r.prefix);
  const two = await startController(r.prefix);
  const agents = uids(40);
  // Each replica holds the connections of half the fleet and reports for them.
  const f1 = new SimFleet(one.controller, "edge", agents.slice(0, 20));
  const f2 = new SimFleet(two.controller, "edge", agents.slice(20));
  const both = [one, two];
  defer(async () => {
    f1.stop();
    f2.stop();
    await one.close();
    await two.close();
    await r.close();
  });
  const spec = { group: "edge", hash: A, commit: "aaaaaaa1", policy: policy() };
  await Promise.all([one.controller.applyGroup(spec), two.controller.applyGroup(spec)]);
  await Promise.all([f1.connect(), f2.connect()]);
  await waitFor("A stable, 40 members, on both", () =>
    both.every((t) => {
      const s = t.controller.status("edge");
      return s?.stable?.hash === A && s.rollout?.members === 40;
    }),
  );
  one.notices.length = 0;
  two.notices.length = 0;
  await one.controller.applyGroup({ ...spec, hash: B, commit: "bbbbbbb2" });
  await waitFor("B completed on both", () =>
    both.every((t) => t.controller.status("edge")?.stable?.hash === B),
  );
  assert.deepEqual(
    agents.map((u) => one.controller.served("edge", u)?.hash),
    agents.map((u) => two.controller.served("edge", u)?.hash),
  );
  assert.deepEqual(one.controller.status("edge"), two.controller.status("edge"));
  // Each notice was emitted once, by the replica that committed it.
  const all = [...one.notices, ...two.notices].sort((a, b) => a.at - b.at);
  const sizes = all.flatMap((n) => (n.type === "stage-started" ? [n.cohort] : []));
  assert.deepEqual(sizes, [4, 20, 40]);
  assert.equal(all.filter((n) => n.type === "completed").length, 1);
  assert.ok(two.notices.length > 0, "the second replica committed some of the steps");
});

test("the served-hash answer sends no Redis command", async () => {
  const { t } = await stableGroup(50);
  await t.controller.idle();
  let commands = 0;
  const original = t.redis.sendCommand.bind(t.redis);
  t.redis.sendCommand = ((...args: Parameters<typeof original>) => {
    commands++;
    return original(...args);
  }) as typeof t.redis.sendCommand;
  for (let i = 0; i < 10_000; i++)
    t.controller.served("edge", `agent-${String(i % 50).padStart(5, "0")}`);
  assert.equal(commands, 0);
  // An event that changes nothing is not written either.
  await t.controller.connected("agent-00001");
  await t.controller.health("agent-00001", true);
  assert.equal(commands, 0);
  t.redis.sendCommand = original;
});

test("ended rollouts are kept as history, newest first, a superseded one included", async () => {
  const r = await testRedis();
  const t = await onStable(r.prefix, 10);
  const changed: string[] = [];
  const off = t.controller.onGroupChanged((g) => changed.push(g));
  defer(async () => {
    off();
    t.fleet.stop();
    await t.close();
    await r.close();
  });
  // A held rollout (paused in Git) is superseded by the next commit.
  await t.controller.applyGroup({
    group: "edge",
    hash: B,
    commit: "bbbbbbb2",
    policy: policy({ paused: true }),
  });
  const C = hashOf("c");
  await t.controller.applyGroup({
    group: "edge",
    hash: C,
    commit: "ccccccc3",
    policy: policy({ stages: [{ percent: 100, pauseMs: 0 }] }),
  });
  await waitFor("C stable", () => t.controller.status("edge")?.stable?.hash === C);
  const history = await waitFor(
    "three rollouts in the history",
    async () => {
      const h = await t.controller.history("edge");
      return h.length >= 3 ? h : undefined;
    },
    { timeoutMs: 2000, intervalMs: 20 },
  );
  assert.deepEqual(
    history.map((h) => [h.id, h.status]),
    [
      ["edge@ccccccc", "completed"],
      ["edge@bbbbbbb", "superseded"],
      ["edge@aaaaaaa", "completed"],
    ],
  );
  assert.equal(history[1]?.target.hash, B);
  assert.equal(history[1]?.from?.hash, A);
  assert.match(history[1]?.endReason ?? "", /superseded by ccccccc/);
  assert.ok(changed.length > 0 && changed.every((g) => g === "edge"));
});
