/**
 * The service's last outage in Redis (src/opamp/service-alive.ts), with real Redis and a
 * clock per process: a gap longer than the timeout between any two refreshes is recorded by
 * the refresh that ends it and found by every process after; a replica cut off alone is no
 * outage while another refreshes; clocks behind do not move the alive time back.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Outage, parseOutage, ServiceAlive } from "../../src/opamp/service-alive.js";
import { type TestRedis, testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";

const defer = deferred();

/** One process' ServiceAlive, with its own clock (ms) that the test sets, and what it logged. */
function replica(r: TestRedis) {
  const clock = { now: 1_000_000 };
  const ended: Outage[] = [];
  const alive = new ServiceAlive({
    ...r,
    timeoutMs: 1000,
    now: () => clock.now,
    onEnded: (outage) => ended.push(outage),
  });
  return { clock, alive, ended };
}

test("a gap longer than the timeout is recorded by the refresh that ends it, for every process", async () => {
  const r = await testRedis();
  defer(() => r.close());
  const a = replica(r);
  const b = replica(r);
  assert.equal(await a.alive.refresh(), undefined, "a first start ever is no outage");
  a.clock.now += 900;
  assert.equal(await a.alive.refresh(), undefined, "within the timeout");
  // Nothing reached Redis for 5 s: b's refresh (a rollout tick, say) is the first back.
  b.clock.now = a.clock.now + 5000;
  assert.deepEqual(await b.alive.refresh(), { from: 1_000_900, to: 1_005_900 });
  // a comes back later: the gap since b's refresh is short, the outage is the same.
  a.clock.now = b.clock.now + 500;
  assert.deepEqual(await a.alive.refresh(), { from: 1_000_900, to: 1_005_900 });
  assert.deepEqual(b.ended, [{ from: 1_000_900, to: 1_005_900 }], "told once, where it ended");
  assert.deepEqual(a.ended, []);
  const keptMs = await r.redis.pttl(`${r.prefix}:service:outage`);
  assert.ok(
    keptMs > 6 * 24 * 3600_000,
    `kept for days (a group's next tick may be its next deadline): ${keptMs}`,
  );
});

test("one replica cut off while another refreshes is no outage; a clock behind moves nothing back", async () => {
  const r = await testRedis();
  defer(() => r.close());
  const a = replica(r);
  const b = replica(r);
  await a.alive.refresh();
  // b refreshes every 400 ms while a is cut off for 5 s.
  for (let i = 0; i < 12; i++) {
    b.clock.now += 400;
    assert.equal(await b.alive.refresh(), undefined);
  }
  a.clock.now = b.clock.now + 100;
  assert.equal(await a.alive.refresh(), undefined, "the service served meanwhile");
  // A process whose clock is 10 s behind: the alive time stays, no outage is made up.
  const late = replica(r);
  late.clock.now = a.clock.now - 10_000;
  assert.equal(await late.alive.refresh(), undefined);
  assert.equal(await r.redis.get(`${r.prefix}:service:alive-at`), String(a.clock.now));
});

test("a stored outage that is not `<from>:<to>` with from < to is none", () => {
  assert.deepEqual(parseOutage("1:2"), { from: 1, to: 2 });
  for (const text of [null, undefined, "", "2:1", "1:1", "a:b", "1:2:3", " 1:2"])
    assert.equal(parseOutage(text), undefined, String(text));
});
