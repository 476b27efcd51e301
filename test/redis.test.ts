/**
 * src/redis.ts: the auto-pipelining connection for agent writes logs its connection errors
 * (against a real port nothing listens on), once and then rate-limited.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Redis } from "ioredis";
import { pipelinedConnection } from "../src/redis.js";
import { capturedLogger } from "./helpers/logger.js";
import { freePort } from "./helpers/ports.js";
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
