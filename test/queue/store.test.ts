/**
 * The Redis store on its own: compare-and-set commits, atomic snapshots, chunked writes of
 * large batches, and the published change (inline, or "reload" when large).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeCore } from "../../src/queue/codec.js";
import { emptyGroup, stepAll } from "../../src/queue/machine.js";
import { applyChange, type ChangeMessage } from "../../src/queue/store.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { policy, uids } from "./helpers/machine.js";
import { arrivals, watchedStore } from "./helpers/store.js";

const defer = deferred();

test("commits are compare-and-set; a snapshot reads back what was written", async () => {
  const { r, store, messages, close } = await watchedStore();
  defer(close);
  const empty = emptyGroup("edge");
  // 1 200 members: more than one 500-field chunk in the script.
  const first = stepAll(empty, arrivals(uids(1200)), 1000);
  assert.deepEqual(await store.commit(0, empty, first, "all", "w1"), {
    ok: true,
    version: 1,
    coreVersion: 1,
  });
  const lost = stepAll(empty, arrivals(["x"]), 1000);
  assert.deepEqual(await store.commit(0, empty, lost, "all", "w2"), {
    ok: false,
    version: 1,
    coreVersion: 0,
  });

  const second = stepAll(
    first.state,
    [{ type: "commit", hash: "h".repeat(64), commit: "abcdef12", policy: policy() }],
    2000,
  );
  assert.deepEqual(await store.commit(1, first.state, second, undefined, "w1"), {
    ok: true,
    version: 2,
    coreVersion: 2,
  });
  const loaded = await store.load("edge");
  assert.equal(loaded?.version, 2);
  assert.equal(encodeCore(loaded?.state ?? empty), encodeCore(second.state));
  assert.equal(loaded?.state.members.size, 1200);
  assert.equal(loaded?.state.agents.size, second.state.agents.size);
  assert.deepEqual(await store.groups(), ["edge"]);
  assert.deepEqual(
    await store.versions(["edge", "none"]),
    new Map([
      ["edge", 2],
      ["none", 0],
    ]),
  );
  const notices = await r.redis.xrange(store.keys.notices, "-", "+");
  assert.deepEqual(
    notices.map(([, f]) => JSON.parse(f[3] ?? "").type),
    ["started", "stage-started"],
  );

  // Subscribers got both changes in order; the second applies onto the first.
  await waitFor("two change messages", () => messages.length >= 2);
  const [m1, m2] = messages;
  assert.equal(m1?.v, 1);
  assert.equal(m1?.w, "w1");
  assert.equal(m2?.v, 2);
  assert.equal(m2?.n, true, "a new rollout");
  const rebuilt = applyChange(first.state, m2 as ChangeMessage);
  assert.equal(encodeCore(rebuilt), encodeCore(second.state));
  assert.deepEqual([...rebuilt.agents.keys()].sort(), [...second.state.agents.keys()].sort());

  await store.remove("edge");
  assert.equal(await store.load("edge"), undefined);
  assert.deepEqual(await store.groups(), []);
});

test("a change too large to publish inline tells subscribers to reload", async () => {
  const { store, messages, close } = await watchedStore();
  defer(close);
  const empty = emptyGroup("big");
  const result = stepAll(empty, arrivals(uids(8000, "a-rather-long-instance-uid")), 1);
  assert.equal((await store.commit(0, empty, result, "all", "w")).ok, true);
  await waitFor("a change message", () => messages.length >= 1);
  assert.equal(messages[0]?.reload, true);
  assert.equal(messages[0]?.c, undefined);
  assert.equal((await store.load("big"))?.state.members.size, 8000);
});
