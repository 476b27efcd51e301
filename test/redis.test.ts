/**
 * src/redis.ts: the connection for agent writes logs its connection errors (against a real
 * port nothing listens on), once and then rate-limited; writes held for a turn survive a
 * Redis restart (a private redis-server killed and started again).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Redis } from "ioredis";
import { pipelinedConnection } from "../src/redis.js";
import { capturedLogger } from "./helpers/logger.js";
import { freePort } from "./helpers/ports.js";
import { startPrivateRedis } from "./helpers/private-redis.js";
import { deferred } from "./helpers/teardown.js";
import { waitFor } from "./helpers/wait.js";

const defer = deferred();

test("a failing agent-write connection is logged at warn, not once per retry", async () => {
  const port = await freePort(); // nothing listens there: every connect attempt fails
  const base = new Redis({ host: "127.0.0.1", port, lazyConnect: true });
  const { logger, lines } = capturedLogger("info");
  const pipelined = pipelinedConnection(base, logger);
  defer(() => {
    pipelined.disconnect();
    base.disconnect();
  });
  let errors = 0;
  pipelined.on("error", () => errors++);
  void pipelined.ping().catch(() => {}); // connects on first use, and retries
  await waitFor("three failed attempts", () => errors >= 3, { timeoutMs: 10_000 });
  const warnings = lines.filter((l) => l.level === 40);
  assert.equal(warnings.length, 1, "the first failure, then quiet for a while");
  assert.match(String(warnings[0]?.msg), /Redis connection for agent writes failed/);
});

test("agent writes issued while Redis restarts reach it once it is back, in call order", async () => {
  const server = await startPrivateRedis(defer, "agent-redis");
  // As serve connects (src/redis.ts connectRedis): commands wait for a reconnect.
  const base = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: null });
  const pipelined = pipelinedConnection(base, capturedLogger("info").logger);
  defer(() => {
    pipelined.disconnect();
    base.disconnect();
  });
  pipelined.on("error", () => {});
  await pipelined.set("order", "first");

  // Issued in the turn the server is killed: corked, then written to a socket that is about
  // to close (whether Redis read them before dying is a race; either way they must arrive).
  const stopped = server.stop("kill");
  const during = [pipelined.set("order", "second"), pipelined.incr("count")];
  await stopped;
  // Issued while it is down: queued offline.
  const offline = [pipelined.set("order", "third"), pipelined.incr("count")];
  await server.start();
  await Promise.all([...during, ...offline]);
  const check = new Redis(server.url);
  defer(() => check.disconnect());
  assert.equal(await check.get("order"), "third", "the last write issued is the last applied");
  // An INCR Redis ran before dying is resent and may run again: at least once each.
  assert.ok(Number(await check.get("count")) >= 2);
});
