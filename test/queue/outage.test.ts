/**
 * A rollout across an outage of the whole service (every process gone, back later than the
 * apply timeout): with the outage answered to the restarted controller's first ticks (its
 * `outages` option, as replica liveness answers it), deadlines that fell due while nothing ran
 * are moved, so agents that come back and apply pass the stage; without it, the first tick
 * fails them all, which is what the outage prevents.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { RolloutNotice } from "../../src/queue/model.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { hashOf, SimFleet, startController } from "./helpers/fleet.js";
import { policy, uids } from "./helpers/machine.js";

const A = hashOf("a");
const B = hashOf("b");
const defer = deferred();
const AGENTS = uids(10);

/**
 * Starts a rollout to B whose agents never answer, stops the controller (no disconnect is
 * seen: the process is gone), waits past the apply timeout, and starts another controller
 * that is told the outage or not. The agents then come back and apply. Returns its notices.
 */
async function acrossAnOutage(withOutage: boolean): Promise<RolloutNotice[]> {
  const r = await testRedis();
  defer(() => r.close());
  const first = await startController(r.prefix);
  const before = new SimFleet(first.controller, "edge", AGENTS);
  await first.controller.applyGroup({
    group: "edge",
    hash: A,
    commit: "aaaaaaa1",
    policy: policy({ stages: [{ percent: 100, pauseMs: 0 }] }),
  });
  await before.connect();
  await waitFor("A stable", () => first.controller.status("edge")?.stable?.hash === A);
  for (const uid of AGENTS) before.behaviour.set(uid, "silent");
  const applyTimeoutMs = 1500;
  await first.controller.applyGroup({
    group: "edge",
    hash: B,
    commit: "bbbbbbb2",
    policy: policy({ stages: [{ percent: 100, pauseMs: 0 }], applyTimeoutMs }),
  });
  await first.controller.idle();
  before.stop();
  const from = Date.now();
  await first.close();
  await new Promise((resolve) => setTimeout(resolve, applyTimeoutMs + 500));

  // The service's last outage, as replica liveness answers once a process is back.
  const outage = { from, to: Date.now() };
  const next = await startController(r.prefix, withOutage ? { outages: async () => outage } : {});
  const after = new SimFleet(next.controller, "edge", AGENTS);
  defer(async () => {
    after.stop();
    await next.close();
  });
  await after.connect();
  await waitFor("the rollout ended", () =>
    next.notices.some((n) => n.type === "completed" || n.type === "rolled-back"),
  );
  return next.notices;
}

test("deadlines that fell due while no process ran are moved: the agents back apply, none fails", async () => {
  const notices = await acrossAnOutage(true);
  const types = notices.map((n) => n.type);
  assert.ok(types.includes("completed"), types.join(", "));
  assert.ok(!types.includes("failed"), types.join(", "));
});

test("without the outage, the first tick fails them (what the outage prevents)", async () => {
  const notices = await acrossAnOutage(false);
  const failed = notices.find((n) => n.type === "failed");
  assert.ok(failed?.type === "failed" && failed.reason === "timeout", JSON.stringify(notices));
  assert.ok(notices.some((n) => n.type === "rolled-back"));
});
