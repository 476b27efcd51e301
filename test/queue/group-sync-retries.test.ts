/**
 * GroupSync's retries of member-only writes: a member stored differently from memory at the
 * same version does not loop (a reload, then a full commit), and a large member-only write
 * that other writes came before is applied here without waiting for its own message.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Redis } from "ioredis";
import { GroupSync, type WriteStats } from "../../src/queue/group-sync.js";
import { emptyGroup, stepAll } from "../../src/queue/machine.js";
import type { RolloutEvent } from "../../src/queue/model.js";
import { type ChangeMessage, RolloutStore } from "../../src/queue/store.js";
import { capturedLogger } from "../helpers/logger.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { hashOf, REDIS_URL } from "./helpers/fleet.js";
import { policy } from "./helpers/machine.js";

const defer = deferred();

/** The group with a stable hash at version 1, and a GroupSync on it counting its loads. */
async function setUp(members: RolloutEvent[] = []) {
  const r = await testRedis();
  defer(() => r.close());
  const store = new RolloutStore(r.redis, r.prefix);
  const empty = emptyGroup("edge");
  const base = stepAll(
    empty,
    [{ type: "commit", hash: hashOf("a"), commit: "aaaaaaa1", policy: policy() }, ...members],
    1000,
  );
  assert.equal((await store.commit(0, empty, base, "all", "other")).ok, true);
  let loads = 0;
  const load = store.load.bind(store);
  store.load = (g) => {
    loads++;
    return load(g);
  };
  const stats: WriteStats = { commits: 0, memberCommits: 0, conflicts: 0, resyncs: 0 };
  const sync = new GroupSync("edge", await load("edge"), store, {
    logger: capturedLogger("error").logger,
    stats,
    writerId: "me",
    batchWindowMs: 0,
    commitIntervalMs: 0,
    committed: () => {},
    changed: () => {},
  });
  defer(() => sync.close());
  return { r, store, sync, stats, loads: () => loads };
}

const within = <T>(ms: number, p: Promise<T>, what: string) =>
  Promise.race([
    p,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: not done in ${ms} ms`)), ms).unref(),
    ),
  ]);

test("a member stored unlike memory at the same version: reload, then a full commit", async () => {
  const { r, store, sync, stats } = await setUp([{ type: "join", uid: "x" }]);
  // Hand-edited: the same record, other text; decode + encode does not give it back.
  await r.redis.hset(store.keys.members("edge"), "x", '{ "c": 0 }');
  await within(3000, sync.enqueue([{ type: "connected", uid: "x" }]), "the write");
  const stored = await store.load("edge");
  assert.equal(stored?.state.members.get("x")?.connected, true);
  assert.equal(stored?.version, 2, "one write");
  assert.equal(sync.version, 2);
  assert.equal(stats.conflicts, 0, "not a lost race");
  assert.equal(stats.resyncs, 2, "refused twice: member-only, then reloaded and refused again");
  assert.deepEqual([stats.commits, stats.memberCommits], [1, 0], "written in full");
});

test("a large member-only write after another writer's: no wait, no reload", async () => {
  const { store, sync, stats, loads } = await setUp();
  const sub = new Redis(REDIS_URL);
  defer(() => sub.disconnect());
  const messages: ChangeMessage[] = [];
  await sub.subscribe(store.keys.channel);
  sub.on("message", (_c, text: string) => messages.push(JSON.parse(text)));
  // Another writer's member-only write (v2) this sync has not received yet.
  const loaded = await store.load("edge");
  assert.ok(loaded);
  const other = stepAll(loaded.state, [{ type: "join", uid: "other" }], 2000);
  assert.equal((await store.commitMembers(1, loaded.state, other, undefined, "other")).ok, true);
  // Delivered once this sync's own write (v3) is in, before it looks at the versions.
  const commitMembers = store.commitMembers.bind(store);
  store.commitMembers = async (...args) => {
    const done = await commitMembers(...args);
    await waitFor("v2 and v3 published", () => messages.length >= 2);
    for (const m of messages) sync.receive(m);
    return done;
  };
  // About 300 KB of members: the published change is a reload, which the writer skips as own.
  const uids = Array.from({ length: 5000 }, (_, i) => `agent-${String(i).padStart(40, "0")}`);
  const loadsBefore = loads();
  const before = performance.now();
  await sync.enqueue(uids.map((uid): RolloutEvent => ({ type: "join", uid })));
  const ms = performance.now() - before;
  assert.equal(messages[1]?.reload, true, "own message too large to inline");
  assert.equal(sync.version, 3);
  assert.equal(loads(), loadsBefore, `applied here, not reloaded (${ms.toFixed(0)} ms)`);
  assert.deepEqual([stats.commits, stats.memberCommits, stats.conflicts], [1, 1, 0]);
  const stored = await store.load("edge");
  assert.equal(sync.state.members.size, 5001);
  assert.deepEqual(
    [...sync.state.members.keys()].sort(),
    [...(stored?.state.members.keys() ?? [])].sort(),
  );
});
