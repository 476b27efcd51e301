/**
 * Redis restarted under a rollout (a private redis-server with AOF on a free port): once with
 * SHUTDOWN mid-stage, once killed with SIGKILL during a stage pause (appendfsync always).
 * The controller rides through both, the pause's timer survives, and a fresh controller reads
 * the same rollout back: nothing is lost.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { startPrivateRedis } from "../helpers/private-redis.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { hashOf, stableFleet, startController } from "./helpers/fleet.js";
import { policy, uids } from "./helpers/machine.js";

const defer = deferred();

test("Redis restarted (SHUTDOWN, then SIGKILL) under a rollout loses nothing", async () => {
  const redis = await startPrivateRedis(defer, "rollout-redis");
  const B = hashOf("b");
  const agents = uids(20);
  const t = await startController("restart", { url: redis.url });
  defer(() => t.close());
  const fleet = await stableFleet(t, agents);
  defer(() => fleet.stop());

  // Agents of the first stage do not answer yet.
  for (const u of agents) fleet.behaviour.set(u, "silent");
  await t.controller.applyGroup({
    group: "edge",
    hash: B,
    commit: "bbbbbbb2",
    policy: policy({
      stages: [
        { percent: 10, pauseMs: 0 },
        { percent: 50, pauseMs: 1000 },
        { percent: 100, pauseMs: 0 },
      ],
    }),
  });
  await t.controller.idle();
  const cohort0 = agents.filter((u) => t.controller.served("edge", u)?.hash === B);
  assert.equal(cohort0.length, 2);

  // 1. SHUTDOWN mid-stage; the agents answer while Redis is away; it comes back.
  await redis.stop("shutdown");
  for (const u of agents) fleet.behaviour.set(u, "ok");
  fleet.refresh();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(t.controller.status("edge")?.rollout?.stage, 0, "nothing written without Redis");
  await redis.start();
  await waitFor("stage 1 passed", () => {
    const r = t.controller.status("edge")?.rollout;
    return r?.stage === 1 && r.stagePassedAt !== undefined;
  });
  const cohort1 = agents.filter((u) => t.controller.served("edge", u)?.hash === B);
  assert.equal(cohort1.length, 10);

  // 2. SIGKILL during the 1 s pause: the AOF (fsync always) keeps the state and the timer.
  await redis.stop("kill");
  await redis.start();
  await waitFor("completed", () => t.notices.some((n) => n.type === "completed"), {
    timeoutMs: 15_000,
  });
  assert.equal(t.controller.status("edge")?.stable?.hash, B);

  // A fresh controller reads the same history back.
  const fresh = await startController("restart", { url: redis.url });
  defer(() => fresh.close());
  const s = fresh.controller.status("edge");
  assert.equal(s?.rollout?.id, "edge@bbbbbbb");
  assert.equal(s?.rollout?.status, "completed");
  assert.equal(s?.stable?.hash, B);
  assert.equal(s?.rollout?.members, 20);
  const notices = await fresh.redis.xrange("restart:rollout-notices", "-", "+");
  const kinds = notices.map(([, fields]) => JSON.parse(fields[3] ?? "{}").type);
  assert.deepEqual(kinds.slice(-8), [
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
