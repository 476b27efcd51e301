/**
 * Redis unreachable for longer than the apply timeout while the process runs (a private
 * redis-server with AOF, shut down and started again): no process restarts, so no start
 * names the outage. The controller asks the service's last outage before each tick
 * (src/opamp/service-alive.ts, refreshed as replica liveness does): the deadline that fell
 * due while Redis was away is moved, the agents apply once it is back, and the rollout
 * completes. Without it, the first tick after Redis returns fails them (what it prevents).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ServiceAlive } from "../../src/opamp/service-alive.js";
import type { RolloutNotice } from "../../src/queue/model.js";
import { startPrivateRedis } from "../helpers/private-redis.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { connection, hashOf, stableFleet, startController } from "./helpers/fleet.js";
import { policy, uids } from "./helpers/machine.js";

const defer = deferred();
const B = hashOf("b");
const APPLY_TIMEOUT_MS = 3000;
/** A gap between refreshes longer than this is an outage (replica liveness' timeout). */
const ALIVE_TIMEOUT_MS = 1000;

/**
 * A rollout to B whose agents stay silent; Redis goes away for twice the apply timeout; the
 * agents answer 500 ms after it is back and a tick ran. Returns the controller's notices once it ended.
 */
async function acrossARedisOutage(askOutages: boolean): Promise<RolloutNotice[]> {
  const redis = await startPrivateRedis(defer, "rollout-outage");
  // The process' liveness refresh, as replica-liveness.ts runs it: every third of the
  // timeout, one at a time (a refresh waiting for Redis holds the next ones back).
  const aliveRedis = connection(redis.url);
  defer(() => aliveRedis.disconnect());
  const alive = new ServiceAlive({
    redis: aliveRedis,
    prefix: "outage",
    timeoutMs: ALIVE_TIMEOUT_MS,
  });
  await alive.refresh();
  let refreshing = false;
  const timer = setInterval(() => {
    if (refreshing) return;
    refreshing = true;
    alive
      .refresh()
      .catch(() => {})
      .finally(() => {
        refreshing = false;
      });
  }, ALIVE_TIMEOUT_MS / 3);
  defer(() => clearInterval(timer));

  // Every tick asks first; without `askOutages` the answer is "none", as without the hook.
  let askedAt = 0;
  const t = await startController("outage", {
    url: redis.url,
    outages: () => {
      askedAt = Date.now();
      return askOutages ? alive.refresh() : Promise.resolve(undefined);
    },
  });
  defer(() => t.close());
  const agents = uids(10);
  const fleet = await stableFleet(t, agents);
  defer(() => fleet.stop());
  for (const u of agents) fleet.behaviour.set(u, "silent");
  await t.controller.applyGroup({
    group: "edge",
    hash: B,
    commit: "bbbbbbb2",
    policy: policy({ stages: [{ percent: 100, pauseMs: 0 }], applyTimeoutMs: APPLY_TIMEOUT_MS }),
  });
  await t.controller.idle();
  t.notices.length = 0;

  await redis.stop("shutdown");
  await new Promise((r) => setTimeout(r, 2 * APPLY_TIMEOUT_MS));
  await redis.start();
  const back = Date.now();
  // The agents answer 500 ms after Redis is back, and not before the first tick since then
  // has run (BullMQ's reconnect may take longer than 500 ms): what that tick decided about
  // the overdue agents is what each test asserts.
  await Promise.all([
    new Promise((r) => setTimeout(r, 500)),
    waitFor("a tick after Redis is back", () => askedAt >= back, { timeoutMs: 20_000 }).then(
      async () => {
        await new Promise((r) => setImmediate(r));
        await t.controller.idle();
      },
    ),
  ]);
  for (const u of agents) fleet.behaviour.set(u, "ok");
  fleet.refresh();
  await waitFor(
    "the rollout ended",
    () => t.notices.some((n) => n.type === "completed" || n.type === "rolled-back"),
    { timeoutMs: 20_000 },
  );
  return t.notices;
}

test("a Redis outage while the process runs: the deadline is moved by it, the rollout completes", async () => {
  const notices = await acrossARedisOutage(true);
  const types = notices.map((n) => n.type);
  assert.ok(types.includes("completed"), types.join(", "));
  assert.ok(!types.includes("failed"), types.join(", "));
});

test("without asking for the outage, the first tick after it fails the agents", async () => {
  const notices = await acrossARedisOutage(false);
  const failed = notices.find((n) => n.type === "failed");
  assert.ok(failed?.type === "failed" && failed.reason === "timeout", JSON.stringify(notices));
  assert.ok(notices.some((n) => n.type === "rolled-back"));
});
