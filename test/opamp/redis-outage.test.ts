/**
 * Redis unreachable: agents already connected keep being answered, new ones are told to come
 * back later (UNAVAILABLE with a retry delay), and no reported change is lost.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Redis } from "ioredis";
import {
  AgentCapabilities as Caps,
  ServerErrorResponseType,
} from "../../src/opamp/capabilities.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import { OpampServer } from "../../src/opamp/server.js";
import { TestAgent } from "../helpers/agent.js";
import { capturedLogger } from "../helpers/logger.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";

const defer = deferred();

test("with Redis gone, connected agents are served, new ones get UNAVAILABLE, and changes are kept", async () => {
  const cleanup = await testRedis();
  // A connection of the server's own that the test can cut.
  const redis = new Redis("redis://127.0.0.1:6379", {
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  await new Promise((r) => redis.once("ready", r));
  const log = capturedLogger();
  const server = new OpampServer({
    redis,
    prefix: cleanup.prefix,
    logger: log.logger,
    host: "127.0.0.1",
    port: 0,
  });
  const { port } = await server.start();
  const url = `http://127.0.0.1:${port}/v1/opamp`;
  defer(async () => {
    await server.close();
    redis.disconnect();
    await cleanup.close();
  });
  const a = new TestAgent({ transport: "websocket", url });
  await a.connect();
  await a.send({
    capabilities: Caps.ReportsStatus | Caps.ReportsHealth,
    health: { healthy: true },
  });

  redis.disconnect(false);

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
  redis.connect();
  await new Promise((r) => redis.once("ready", r));
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
