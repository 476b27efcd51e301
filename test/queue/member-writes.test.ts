/**
 * Member-only writes (RolloutStore.commitMembers): replicas whose agents connect to the same
 * group write without retrying each other, and still end in one state; a step that depends on
 * the core (a rollout in flight) or on a member another replica changed is refused.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeCore, encodeMember } from "../../src/queue/codec.js";
import { emptyGroup, stepAll } from "../../src/queue/machine.js";
import type { GroupRollout } from "../../src/queue/model.js";
import { applyChange, type ChangeMessage, RolloutStore } from "../../src/queue/store.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { hashOf, startController } from "./helpers/fleet.js";
import { policy, uids } from "./helpers/machine.js";
import { arrivals, watchedStore } from "./helpers/store.js";

const defer = deferred();

const membersOf = (s: GroupRollout | undefined) =>
  [...(s?.members.entries() ?? [])].map(([u, m]) => [u, encodeMember(m)]).sort();

test("member-only commits from two writers both land, in one published sequence", async () => {
  const { store, messages, close } = await watchedStore();
  defer(close);
  // Version 1: the group with a stable hash (a full commit), no rollout in flight.
  const empty = emptyGroup("edge");
  const base = stepAll(
    empty,
    [{ type: "commit", hash: hashOf("a"), commit: "aaaaaaa1", policy: policy() }],
    1000,
  );
  assert.equal(base.state.stable?.hash, hashOf("a"), "a first rollout of no member completes");
  assert.deepEqual(await store.commit(0, empty, base, "all", "w0"), {
    ok: true,
    version: 1,
    coreVersion: 1,
  });
  // Two writers step their own agents from version 1, as two workers would.
  const one = stepAll(base.state, arrivals(uids(3, "one")), 2000);
  const two = stepAll(base.state, arrivals(uids(2, "two")), 2000);
  assert.equal(encodeCore(one.state), encodeCore(base.state), "members only");
  assert.deepEqual(await store.commitMembers(1, base.state, one, undefined, "w1"), {
    ok: true,
    version: 2,
    coreVersion: 1,
  });
  assert.deepEqual(await store.commitMembers(1, base.state, two, undefined, "w2"), {
    ok: true,
    version: 3,
    coreVersion: 1,
  });
  const loaded = await store.load("edge");
  assert.equal(loaded?.version, 3);
  assert.equal(loaded?.coreVersion, 1);
  assert.equal(loaded?.state.members.size, 5);

  // The published sequence rebuilds the stored state from version 1.
  await waitFor("three change messages", () => messages.length >= 3);
  assert.deepEqual(
    messages.map((m) => [m.v, m.w, m.mo === true, m.c === undefined]),
    [
      [1, "w0", false, false],
      [2, "w1", true, true],
      [3, "w2", true, true],
    ],
  );
  const rebuilt = applyChange(
    applyChange(base.state, messages[1] as ChangeMessage),
    messages[2] as ChangeMessage,
  );
  assert.deepEqual(membersOf(rebuilt), membersOf(loaded?.state));
  assert.equal(encodeCore(rebuilt), encodeCore(base.state));

  // A member another writer changed meanwhile: refused (its record is not what was read).
  const staleJoin = stepAll(base.state, arrivals(["one-00001"]), 3000);
  assert.deepEqual(await store.commitMembers(1, base.state, staleJoin, undefined, "w2"), {
    ok: false,
    version: 3,
    coreVersion: 1,
  });

  // A full commit moves the core version: a member write stepped before it is refused.
  const before = loaded?.state ?? empty;
  const rollout = stepAll(
    before,
    [{ type: "commit", hash: hashOf("b"), commit: "bbbbbbb2", policy: policy() }],
    4000,
  );
  assert.deepEqual(await store.commit(3, before, rollout, "all", "w0"), {
    ok: true,
    version: 4,
    coreVersion: 4,
  });
  const late = stepAll(before, arrivals(["late"]), 4000);
  assert.deepEqual(await store.commitMembers(3, before, late, undefined, "w1"), {
    ok: false,
    version: 4,
    coreVersion: 4,
  });
});

test("two controllers connecting agents to one group do not retry each other's writes", async () => {
  const r = await testRedis();
  defer(() => r.close());
  const one = await startController(r.prefix);
  const two = await startController(r.prefix);
  defer(() => Promise.all([one.close(), two.close()]).then(() => {}));
  const both = [one.controller, two.controller];
  await one.controller.applyGroup({
    group: "edge",
    hash: hashOf("a"),
    commit: "aaaaaaa1",
    policy: policy(),
  });
  await waitFor("the group on both", () => both.every((c) => c.stable("edge") !== undefined));
  // 600 agents per controller, arriving in bursts over ~0.5 s on both at once.
  const agents = [uids(600, "one"), uids(600, "two")];
  await Promise.all(
    both.map(async (c, i) => {
      for (let b = 0; b < 600; b += 50) {
        await Promise.all(
          (agents[i] ?? [])
            .slice(b, b + 50)
            .flatMap((uid) => [c.join("edge", uid), c.connected(uid), c.health(uid, true)]),
        );
      }
    }),
  );
  await Promise.all(both.map((c) => c.idle()));
  await waitFor("both hold 1 200 connected members", () =>
    both.every((c) => c.members("edge").length === 1200 && c.writeStats().commits > 0),
  );
  const stats = both.map((c) => c.writeStats());
  for (const s of stats) {
    assert.equal(s.conflicts, 0, `no write lost a race: ${JSON.stringify(stats)}`);
    assert.ok(s.commits - s.memberCommits <= 1, `member-only: ${JSON.stringify(stats)}`);
  }
  // Memory on both equals Redis.
  const store = new RolloutStore(one.redis, r.prefix);
  const stored = await store.load("edge");
  const expected = membersOf(stored?.state);
  assert.equal(expected.length, 1200);
  assert.ok(expected.every(([, m]) => m === encodeMember({ connected: true, healthy: true })));
  await waitFor("both caught up with Redis", () =>
    both.every((c) => c.members("edge").length === 1200),
  );
  for (const c of both) {
    assert.deepEqual(c.status("edge"), one.controller.status("edge"));
  }

  // With a rollout in flight, a joining agent is offered (a full commit): still one state,
  // and the gate counts every member once.
  await two.controller.applyGroup({
    group: "edge",
    hash: hashOf("b"),
    commit: "bbbbbbb2",
    policy: policy({ stages: [{ percent: 100, pauseMs: 0 }] }),
  });
  await waitFor("the rollout on both", () =>
    both.every((c) => c.status("edge")?.rollout?.target.hash === hashOf("b")),
  );
  await Promise.all(
    both.map((c, i) =>
      Promise.all(
        uids(50, `late${i}`).flatMap((uid) => [
          c.join("edge", uid),
          c.connected(uid),
          c.disconnected(agents[i]?.[Number(uid.slice(-2))] ?? ""),
        ]),
      ),
    ),
  );
  await Promise.all(both.map((c) => c.idle()));
  const after = await store.load("edge");
  assert.equal(after?.state.members.size, 1300);
  assert.equal(after?.state.agents.size, 1300, "every member offered");
  assert.equal(after?.state.rollout?.waiting, 1300, "none applied yet");
  await waitFor("both at the stored state", () =>
    both.every((c) => c.status("edge")?.rollout?.members === 1300),
  );
  assert.deepEqual(one.controller.status("edge"), two.controller.status("edge"));
});
