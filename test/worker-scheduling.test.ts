/**
 * `--worker-scheduling` (OPAMP_GITOPS_WORKER_SCHEDULING): os by default, rr on request, from a
 * flag or the environment, and the node:cluster policy the primary sets for each; the
 * environment a worker is forked with.
 */
import assert from "node:assert/strict";
import cluster from "node:cluster";
import { test } from "node:test";
import { schedulingPolicy, workerEnv } from "../src/commands/serve-workers.js";
import { resolveSettings, SettingsError } from "../src/settings.js";

test("os by default; rr from the flag or the environment; anything else refused", () => {
  assert.equal(resolveSettings({}, {}).workerScheduling, "os");
  assert.equal(resolveSettings({ workerScheduling: "rr" }, {}).workerScheduling, "rr");
  assert.equal(
    resolveSettings({}, { OPAMP_GITOPS_WORKER_SCHEDULING: "rr" }).workerScheduling,
    "rr",
  );
  assert.equal(
    resolveSettings({ workerScheduling: "os" }, { OPAMP_GITOPS_WORKER_SCHEDULING: "rr" })
      .workerScheduling,
    "os",
    "the flag wins",
  );
  assert.throws(
    () => resolveSettings({ workerScheduling: "round-robin" }, {}),
    (err: unknown) =>
      err instanceof SettingsError &&
      err.setting === "--worker-scheduling" &&
      /"round-robin"; expected os .* or rr/.test(err.message),
  );
});

test("os is cluster SCHED_NONE, rr is SCHED_RR", () => {
  assert.equal(schedulingPolicy("os"), cluster.SCHED_NONE);
  assert.equal(schedulingPolicy("rr"), cluster.SCHED_RR);
  assert.notEqual(cluster.SCHED_NONE, cluster.SCHED_RR);
});

test("workers get MALLOC_ARENA_MAX=2 unless the operator chose a value, kept as is", () => {
  assert.deepEqual(workerEnv(1, {}), { OPAMP_GITOPS_WORKER_SLOT: "1", MALLOC_ARENA_MAX: "2" });
  assert.deepEqual(workerEnv(0, { MALLOC_ARENA_MAX: "8" }), { OPAMP_GITOPS_WORKER_SLOT: "0" });
  assert.deepEqual(workerEnv(0, { MALLOC_ARENA_MAX: "" }), { OPAMP_GITOPS_WORKER_SLOT: "0" });
});
