/**
 * The lease of once-only duties (src/lease.ts) on a real Redis: one holder at a time, a
 * fencing token that grows with every acquisition, fenced writes refused to a holder that
 * lost the lease, a quick successor after a release, and takeover after a holder stopped
 * renewing (as after SIGKILL).
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { FENCE_CHECK_LUA, Lease } from "../src/lease.js";
import { testRedis } from "./helpers/redis.js";
import { waitFor } from "./helpers/wait.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A fenced write: sets `value` in KEYS[2] only while KEYS[1] holds the writer's lease value. */
const WRITE_LUA = `${FENCE_CHECK_LUA}
redis.call('SET', KEYS[2], ARGV[2])
return 1`;

test("one holder, growing fences, fenced writes, quick successors", async () => {
  const r = await testRedis();
  cleanups.push(() => r.close());
  const key = `${r.prefix}:lease:duty`;
  let lost = 0;
  const a = new Lease(r.redis, key, { ttlMs: 400, onLost: () => lost++ });
  const b = new Lease(r.redis, key, { ttlMs: 400 });
  cleanups.push(
    () => a.release(),
    () => b.release(),
  );
  const write = (lease: Lease, v: string) =>
    r.redis.eval(WRITE_LUA, 2, key, `${r.prefix}:data`, lease.value, v);

  assert.equal(await a.acquire(), true);
  assert.equal(await b.acquire(), false, "held by a");
  const fenceA = a.fence;
  assert.ok(fenceA > 0);
  assert.equal(await write(a, "from a"), 1);
  assert.equal(await write(b, "from b"), -1, "a non-holder's write is refused");

  // a stalls (no renewal reaches Redis): its key expires, b takes over with a higher fence.
  await r.redis.del(key);
  assert.equal(await b.acquire(), true);
  assert.ok(b.fence > fenceA, `fence ${b.fence} > ${fenceA}`);
  const stale = a.value;
  assert.equal(await r.redis.eval(WRITE_LUA, 2, key, `${r.prefix}:data`, stale, "late a"), -1);
  assert.equal(await r.redis.get(`${r.prefix}:data`), "from a", "the stale holder wrote nothing");
  assert.equal(await a.renew(), false);
  assert.equal(lost, 1, "a learns it lost the lease");
  assert.equal(a.held, false);

  // A release lets the next one in at once (no waiting for the TTL).
  await b.release();
  assert.equal(await r.redis.get(key), null);
  assert.equal(await a.acquire(), true);
  assert.ok(a.fence > b.fence || a.fence > fenceA);
});

test("a holder that stops renewing is succeeded within the TTL by a campaigning replica", async () => {
  const r = await testRedis();
  cleanups.push(() => r.close());
  const key = `${r.prefix}:lease:duty`;
  // The holder's own connection, cut as by SIGKILL: its renewals stop reaching Redis.
  const conn = r.redis.duplicate();
  const dead = new Lease(conn, key, { ttlMs: 300 });
  assert.equal(await dead.acquire(), true);
  const deadFence = dead.fence;
  conn.disconnect();
  const next = new Lease(r.redis, key, { ttlMs: 300 });
  cleanups.push(() => next.release());
  const heldAt: boolean[] = [];
  next.campaign((held) => heldAt.push(held));
  await waitFor("the successor to hold the lease", () => next.held, { intervalMs: 20 });
  assert.equal(heldAt[0], false, "not while the dead holder's key lived");
  assert.ok(next.fence > deadFence);
});
