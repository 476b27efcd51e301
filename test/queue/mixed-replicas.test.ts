/**
 * Member-only writes next to replicas on older code (a rolling upgrade, or a rollback): the
 * old COMMIT script changes the core without setting `cv`, so a member-only write must not
 * trust `cv` after such a write; it is refused and the writer commits in full.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Redis } from "ioredis";
import { emptyGroup, stepAll } from "../../src/queue/machine.js";
import type { RolloutEvent } from "../../src/queue/model.js";
import { COMMIT_LUA } from "../../src/queue/scripts.js";
import { RolloutStore } from "../../src/queue/store.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";
import { connection, hashOf, startController } from "./helpers/fleet.js";
import { policy } from "./helpers/machine.js";

const defer = deferred();

/** COMMIT as released before core versions: the same script without `'cv', ARGV[2], `. */
const OLD_COMMIT_LUA = COMMIT_LUA.replace("'cv', ARGV[2], ", "");

/**
 * A store whose full commits are old code's (on its own connection). Its published changes go
 * to a channel nobody reads: the other replicas have not received them yet (pub/sub latency).
 */
function oldReplica(prefix: string): { store: RolloutStore; redis: Redis } {
  assert.notEqual(OLD_COMMIT_LUA, COMMIT_LUA);
  const redis = connection();
  const store = new RolloutStore(redis, prefix);
  redis.defineCommand("rolloutCommit", { numberOfKeys: 7, lua: OLD_COMMIT_LUA });
  (store.keys as { channel: string }).channel = `${prefix}:not-yet-delivered`;
  return { store, redis };
}

const arrive = (uid: string): RolloutEvent[] => [
  { type: "join", uid },
  { type: "connected", uid },
];

test("a member-only write after an old replica's full commit is refused (commit in full)", async () => {
  const r = await testRedis();
  const old = oldReplica(r.prefix);
  defer(async () => {
    old.redis.disconnect();
    await r.close();
  });
  const store = new RolloutStore(r.redis, r.prefix);
  const empty = emptyGroup("edge");
  const base = stepAll(
    empty,
    [{ type: "commit", hash: hashOf("a"), commit: "aaaaaaa1", policy: policy() }],
    1000,
  );
  // v1 by new code (cv = 1), v2 by new code member-only (mv = 2).
  assert.equal((await store.commit(0, empty, base, "all", "new")).ok, true);
  const one = stepAll(base.state, arrive("one"), 2000);
  assert.deepEqual(await store.commitMembers(1, base.state, one, undefined, "new"), {
    ok: true,
    version: 2,
    coreVersion: 1,
  });
  // v3 by old code: a new rollout (the core changes), cv stays 1.
  const rollout = stepAll(
    one.state,
    [{ type: "commit", hash: hashOf("b"), commit: "bbbbbbb2", policy: policy() }],
    3000,
  );
  assert.equal((await old.store.commit(2, one.state, rollout, "all", "old")).ok, true);
  assert.equal(await r.redis.hget(store.keys.core("edge"), "cv"), "1");
  // A member-only step computed on the core of v1 (before the rollout) is refused, although
  // `cv` still reads 1 and the member is stored as it expects.
  const stale = stepAll(one.state, arrive("two"), 3000);
  assert.deepEqual(await store.commitMembers(1, one.state, stale, undefined, "new"), {
    ok: false,
    version: 3,
    coreVersion: 1,
    full: true,
  });
  // So is one based on the current state: `cv` cannot tell whether the core changed.
  const current = stepAll(rollout.state, arrive("two"), 3000);
  const refused = await store.commitMembers(3, rollout.state, current, undefined, "new");
  assert.deepEqual([refused.ok, refused.full], [false, true]);
  // A load reports the stored version as the core version.
  assert.equal((await store.load("edge"))?.coreVersion, 3);
  // A full commit by new code sets cv again; member-only writes work after it.
  assert.deepEqual(await store.commit(3, rollout.state, current, undefined, "new"), {
    ok: true,
    version: 4,
    coreVersion: 4,
  });
  const three = stepAll(current.state, [{ type: "join", uid: "three" }], 4000);
  assert.equal((await store.commitMembers(4, current.state, three, undefined, "new")).ok, true);

  // A group only old code ever wrote (no cv, no mv): member-only writes are refused.
  const oldOnly = stepAll(emptyGroup("legacy"), [{ type: "join", uid: "x" }], 1000);
  assert.equal((await old.store.commit(0, emptyGroup("legacy"), oldOnly, "all", "old")).ok, true);
  const joined = stepAll(oldOnly.state, [{ type: "connected", uid: "x" }], 2000);
  assert.deepEqual(await store.commitMembers(1, oldOnly.state, joined, undefined, "new"), {
    ok: false,
    version: 1,
    coreVersion: 0,
    full: true,
  });
});

test("an agent connecting after an unseen old-replica rollout start is offered", async () => {
  const r = await testRedis();
  const old = oldReplica(r.prefix);
  defer(async () => {
    old.redis.disconnect();
    await r.close();
  });
  const ctl = await startController(r.prefix);
  defer(() => ctl.close());
  const c = ctl.controller;
  await c.applyGroup({ group: "edge", hash: hashOf("a"), commit: "aaaaaaa1", policy: policy() });
  // y is connected; x is a member but disconnected.
  await Promise.all([c.join("edge", "x"), c.join("edge", "y"), c.connected("y")]);
  await c.idle();
  const loaded = await old.store.load("edge");
  assert.ok(loaded);
  // The old replica starts a rollout to every member; this controller has not seen it.
  const onePolicy = policy({ stages: [{ percent: 100, pauseMs: 0 }] });
  const started = stepAll(
    loaded.state,
    [{ type: "commit", hash: hashOf("b"), commit: "bbbbbbb2", policy: onePolicy }],
    Date.now(),
  );
  assert.equal(started.state.rollout?.waiting, 1, "y offered");
  const written = await old.store.commit(loaded.version, loaded.state, started, "all", "old");
  assert.equal(written.ok, true);
  assert.equal(c.status("edge")?.rollout?.target.hash, hashOf("a"), "the change has not arrived");
  // x connects: in this controller's memory a member-only step (no rollout in flight).
  await c.connected("x");
  await c.idle();
  const stored = await old.store.load("edge");
  assert.equal(stored?.state.rollout?.target.hash, hashOf("b"));
  assert.ok(stored?.state.agents.has("x"), "x offered: the step was made on the rollout");
  assert.equal(stored?.state.rollout?.waiting, 2, "the gate counts x");
  assert.deepEqual(
    [c.status("edge")?.rollout?.target.hash, c.status("edge")?.rollout?.cohort],
    [hashOf("b"), 2],
    "memory follows",
  );
});
