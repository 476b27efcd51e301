/**
 * src/redis-agent.ts, the per-agent connection, against real Redis (and a private
 * redis-server it loses and finds again): replies in the documented shapes, call order,
 * scripts Redis forgot, MULTI, a failing connection logged once, commands failing fast or
 * waiting for Redis as chosen, and close() bounded when Redis is gone.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { agentRedis, luaScript } from "../src/redis-agent.js";
import { capturedLogger } from "./helpers/logger.js";
import { freePort } from "./helpers/ports.js";
import { PrivateRedis } from "./helpers/private-redis.js";
import { testRedis } from "./helpers/redis.js";
import { deferred } from "./helpers/teardown.js";
import { waitFor } from "./helpers/wait.js";

const defer = deferred();

test("replies: bulk strings as Buffers, integers as numbers, nil as null, arrays as arrays", async () => {
  const t = await testRedis();
  defer(() => t.close());
  const r = t.agent;
  const key = `${t.prefix}:h`;
  const binary = Buffer.from([0, 255, 10, 13, 0x80]);
  assert.equal(await r.call("HSET", key, "a", "1", "b", binary), 2);
  assert.deepEqual(await r.call("HGETALL", key), [
    Buffer.from("a"),
    Buffer.from("1"),
    Buffer.from("b"),
    binary,
  ]);
  assert.deepEqual(await r.call("HMGET", key, "b", "missing"), [binary, null]);
  assert.equal(await r.call("HGET", key, "missing"), null);
  assert.equal(await r.call("SET", `${t.prefix}:s`, "v"), "OK");
  await assert.rejects(r.call("HGET", `${t.prefix}:s`, "f"), /WRONGTYPE/);
});

test("commands reach Redis in call order, whatever their replies' sizes", async () => {
  const t = await testRedis();
  defer(() => t.close());
  const key = `${t.prefix}:order`;
  const big = Buffer.alloc(256 * 1024, 1);
  const sent = Array.from({ length: 200 }, (_, i) =>
    i % 50 === 0 ? t.agent.call("APPEND", key, big) : t.agent.call("RPUSH", `${key}:l`, String(i)),
  );
  await Promise.all(sent);
  const list = (await t.redis.lrange(`${key}:l`, 0, -1)).map(Number);
  assert.deepEqual(
    list,
    [...list].sort((a, b) => a - b),
  );
  assert.equal(list.length, 196);
});

test("a script Redis does not know (flushed) is sent again; its errors reach the caller", async () => {
  const t = await testRedis();
  defer(() => t.close());
  const incr = luaScript("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  const key = `${t.prefix}:n`;
  assert.equal(await t.agent.evalScript(incr, [key], ["2"]), 2);
  await t.redis.script("FLUSH");
  assert.equal(await t.agent.evalScript(incr, [key], ["3"]), 5, "NOSCRIPT, then EVAL");
  await assert.rejects(
    t.agent.evalScript(luaScript("return redis.error_reply('no way')"), [], []),
    /no way/,
  );
});

test("a transaction's replies come back in order", async () => {
  const t = await testRedis();
  defer(() => t.close());
  const key = `${t.prefix}:tx`;
  const replies = await t.agent.transaction([
    ["SET", key, "1", "PX", "60000"],
    ["PEXPIRE", key, "60000"],
    ["SADD", `${key}:set`, "a", "b"],
  ]);
  assert.deepEqual(replies, ["OK", 1, 2]);
});

test("a failing connection is logged at warn once, not once per retry", async () => {
  const port = await freePort(); // nothing listens there: every connect attempt fails
  const { logger, lines } = capturedLogger("info");
  const r = agentRedis(`redis://127.0.0.1:${port}`, { logger, offlineQueue: false });
  defer(() => r.close());
  // Retries come every 200, 400, 600 ms…: after 1.5 s, at least three attempts failed.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await assert.rejects(r.call("PING"), "never connected");
  const warnings = lines.filter((l) => l.level === 40);
  assert.equal(warnings.length, 1, "the first failure, then quiet for a while");
  assert.match(String(warnings[0]?.msg), /Redis connection for agent writes failed/);
});

test("Redis gone: commands wait for it (default) or fail at once; close() is bounded", async () => {
  const dir = mkdtempSync(join(tmpdir(), "redis-agent-"));
  const server = new PrivateRedis(await freePort(), dir);
  defer(async () => {
    await server.stop("kill");
    rmSync(dir, { recursive: true, force: true });
  });
  await server.start();
  const waiting = agentRedis(server.url);
  const failing = agentRedis(server.url, { offlineQueue: false });
  defer(() => Promise.all([waiting.close(), failing.close()]));
  // A service always has open sockets; here nothing else would keep the event loop running
  // while the connections wait to reconnect.
  const alive = setInterval(() => {}, 1000);
  defer(() => clearInterval(alive));
  await failing.ready();
  await Promise.all([waiting.call("PING"), failing.call("PING")]);
  await server.stop("kill");
  await waitFor("the loss to be seen", () =>
    failing.call("PING").then(
      () => false,
      () => true,
    ),
  );
  await assert.rejects(failing.call("SET", "k", "v"));
  let answered = false;
  const queued = waiting.call("SET", "kept", "1").then((reply) => {
    answered = true;
    return reply;
  });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(answered, false, "waits while Redis is gone");
  await server.start();
  assert.equal(await queued, "OK", "sent once Redis is back");
  await waitFor("the failing connection to come back too", () =>
    failing.call("PING").then(
      () => true,
      () => false,
    ),
  );
  await server.stop("kill");
  const stuck = waiting.call("GET", "kept").catch((err: Error) => err);
  const t0 = performance.now();
  await Promise.all([waiting.close(), waiting.close(), failing.close()]);
  assert.ok(performance.now() - t0 < 5000, "close() gives up on replies that cannot come");
  assert.ok((await stuck) instanceof Error, "a command left unanswered is rejected");
});

test("closed at once after it was made, it leaves no socket open", async () => {
  const port = Number(new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379").port || 6379);
  const open = () =>
    (process as unknown as { _getActiveHandles(): unknown[] })
      ._getActiveHandles()
      .filter((h) => h instanceof Socket && h.remotePort === port).length;
  const before = open();
  // Still connecting when closed: node-redis alone would finish the connect and keep it.
  await Promise.all(
    Array.from({ length: 5 }, () =>
      agentRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379").close(),
    ),
  );
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(open(), before);
});
