/**
 * Redis unreachable: agents already connected keep being answered, new ones are told to come
 * back later (UNAVAILABLE with a retry delay), and no reported change is lost.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  AgentCapabilities as Caps,
  ServerErrorResponseType,
} from "../../src/opamp/capabilities.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import { OpampServer } from "../../src/opamp/server.js";
import { agentRedis } from "../../src/redis-agent.js";
import { TestAgent } from "../helpers/agent.js";
import { capturedLogger } from "../helpers/logger.js";
import { freePort } from "../helpers/ports.js";
import { PrivateRedis } from "../helpers/private-redis.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";

const defer = deferred();

test("with Redis gone, connected agents are served, new ones get UNAVAILABLE, and changes are kept", async () => {
  // A redis-server of the test's own (AOF, fsync always), that it stops and starts again.
  const dir = mkdtempSync(join(tmpdir(), "opamp-redis-outage-"));
  const privateRedis = new PrivateRedis(await freePort(), dir);
  await privateRedis.start();
  // Commands fail at once while Redis is gone, instead of waiting for it.
  const redis = agentRedis(privateRedis.url, { offlineQueue: false });
  await redis.ready();
  const log = capturedLogger();
  const server = new OpampServer({
    redis,
    prefix: "outage",
    logger: log.logger,
    host: "127.0.0.1",
    port: 0,
  });
  const { port } = await server.start();
  const url = `http://127.0.0.1:${port}/v1/opamp`;
  defer(async () => {
    await server.close();
    await redis.close();
    await privateRedis.stop("kill");
    rmSync(dir, { recursive: true, force: true });
  });
  const a = new TestAgent({ transport: "websocket", url });
  await a.connect();
  await a.send({
    capabilities: Caps.ReportsStatus | Caps.ReportsHealth,
    health: { healthy: true },
  });

  await privateRedis.stop("kill");
  const reachable = () =>
    redis.call("PING").then(
      () => true,
      () => false,
    );
  await waitFor("the connection to notice", async () => !(await reachable()));

  const heartbeat = await a.send({ capabilities: Caps.ReportsStatus | Caps.ReportsHealth });
  assert.equal(heartbeat.errorResponse, null, "a heartbeat needs no Redis");

  const unhealthy = await a.send({
    capabilities: Caps.ReportsStatus | Caps.ReportsHealth,
    health: { healthy: false, lastError: "oom" },
  });
  const error = unhealthy.errorResponse as {
    type: number;
    retryInfo: { retryAfterNanoseconds: { toString(): string } };
  };
  assert.equal(error.type, ServerErrorResponseType.Unavailable);
  assert.equal(error.retryInfo.retryAfterNanoseconds.toString(), String(30n * 1_000_000_000n));

  const b = new TestAgent({ transport: "http", url });
  const refused = await b.send({ capabilities: Caps.ReportsStatus });
  assert.equal(
    (refused.errorResponse as { type: number }).type,
    ServerErrorResponseType.Unavailable,
  );

  // Redis is back: the health change reported during the outage is written with the next message.
  await privateRedis.start();
  await waitFor("the connection to come back", reachable, { timeoutMs: 10_000 });
  const healthEvent = new Promise((resolve) =>
    server.events.on("healthChanged", (e) => resolve(e.health.lastError)),
  );
  assert.equal(
    (await a.send({ capabilities: Caps.ReportsStatus | Caps.ReportsHealth })).errorResponse,
    null,
  );
  assert.equal(await healthEvent, "oom");
  const stored = await server.store.load(uidToString(a.uid));
  assert.equal(stored?.health?.healthy, false);
  assert.equal(stored?.health?.lastError, "oom");
  a.close();
});
