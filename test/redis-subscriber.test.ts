/**
 * The shared Redis subscriber against a real Redis: oversized and malformed messages are
 * dropped (counted, logged once per interval) and the next good one is delivered; a killed
 * connection (CLIENT KILL) is resubscribed and delivers again; channels share one connection.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { RedisSubscriber } from "../src/redis-subscriber.js";
import { testRedis } from "./helpers/redis.js";
import { deferred } from "./helpers/teardown.js";
import { waitFor } from "./helpers/wait.js";

const defer = deferred();

/** A logger whose lines are kept (parsed) for the test to read. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: "info" },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

/** The client ids of the connections named `name` (CLIENT LIST). */
async function clientIds(redis: import("ioredis").Redis, name: string): Promise<string[]> {
  const list = (await redis.client("LIST")) as string;
  return list
    .split("\n")
    .filter((line) => line.includes(` name=${name} `))
    .map((line) => /(?:^|\s)id=(\d+)/.exec(line)?.[1] ?? "")
    .filter(Boolean);
}

test("oversized and malformed messages are dropped and counted; the next good one arrives", async () => {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const { logger, lines } = capturingLogger();
  const subscriber = new RedisSubscriber({ redis, logger, logIntervalMs: 60_000 });
  defer(() => subscriber.close());
  const channel = `${prefix}:a`;
  const got: unknown[] = [];
  await subscriber.subscribe<{ n: number }>(channel, {
    onMessage: (m) => void got.push(m),
    maxMessageBytes: 100,
  });

  await redis.publish(channel, JSON.stringify({ n: 1, pad: "x".repeat(200) }));
  await redis.publish(channel, "{not json");
  await redis.publish(channel, JSON.stringify({ n: 2, pad: "y".repeat(200) }));
  await redis.publish(channel, JSON.stringify({ n: 3 }));

  await waitFor("the good message", () => got.length === 1);
  assert.deepEqual(got, [{ n: 3 }]);
  const dropped = subscriber.dropped().sort((a, b) => a.reason.localeCompare(b.reason));
  assert.deepEqual(dropped, [
    { channel, reason: "malformed", count: 1 },
    { channel, reason: "oversized", count: 2 },
  ]);
  // The first drop is logged at once; the others wait for the interval (not yet over).
  const logged = lines.filter((l) => l.msg === "Redis messages dropped (too large or unreadable)");
  assert.equal(logged.length, 1);
  assert.deepEqual(logged[0]?.drops, [{ channel, reason: "oversized", count: 1 }]);
  // close() logs what was not logged yet, and is idempotent.
  subscriber.close();
  subscriber.close();
  const last = lines.filter((l) => l.msg === "Redis messages dropped (too large or unreadable)");
  assert.equal(last.length, 2);
  const rest = (last[1]?.drops ?? []) as Array<{ reason: string; count: number }>;
  assert.deepEqual(
    rest.map((d) => [d.reason, d.count]),
    [
      ["malformed", 1],
      ["oversized", 1],
    ],
  );
});

test("a handler that throws or a decoder that refuses does not stop the others", async () => {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const { logger } = capturingLogger();
  const subscriber = new RedisSubscriber({ redis, logger });
  defer(() => subscriber.close());
  const channel = `${prefix}:b`;
  const got: string[] = [];
  await subscriber.subscribe<string>(channel, {
    onMessage: () => {
      throw new Error("boom");
    },
    decode: (t) => t,
  });
  await subscriber.subscribe<string>(channel, {
    onMessage: async () => {
      throw new Error("async boom");
    },
    decode: (t) => t,
  });
  await subscriber.subscribe<string>(channel, {
    onMessage: (m) => void got.push(m),
    decode: (t) => {
      if (!t.startsWith("ok")) throw new Error("refused");
      return t;
    },
  });
  await redis.publish(channel, "bad");
  await redis.publish(channel, "ok-1");
  await waitFor("the accepted message", () => got.length === 1);
  assert.deepEqual(got, ["ok-1"]);
  assert.deepEqual(subscriber.dropped(), [{ channel, reason: "malformed", count: 1 }]);
});

test("after CLIENT KILL the channels are subscribed again, onResubscribed runs, and messages arrive", async () => {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const { logger } = capturingLogger();
  const name = `${prefix}-sub`.replace(/[^a-zA-Z0-9-]/g, "");
  // The subscriber duplicates this connection, and with it the name used to find it below.
  const named = redis.duplicate({ connectionName: name });
  defer(() => named.disconnect());
  const subscriber = new RedisSubscriber({ redis: named, logger });
  defer(() => subscriber.close());
  const channels = [`${prefix}:x`, `${prefix}:y`];
  const got: Array<[string, unknown]> = [];
  let resubscribed = 0;
  for (const channel of channels)
    await subscriber.subscribe(channel, {
      onMessage: (m) => void got.push([channel, m]),
      onResubscribed: () => {
        resubscribed++;
      },
    });
  // One connection for both channels.
  const [id, ...more] = await clientIds(redis, name);
  assert.ok(id, "the subscriber's connection is listed");
  assert.deepEqual(more, []);
  assert.equal(await redis.publish(channels[0] ?? "", '"before"'), 1);

  await redis.client("KILL", "ID", id);
  await waitFor("both channels resubscribed", () => resubscribed === 2);
  const [again, ...others] = await clientIds(redis, name);
  assert.ok(again && again !== id, "a new connection");
  assert.deepEqual(others, []);
  for (const channel of channels) assert.equal(await redis.publish(channel, '"after"'), 1);
  await waitFor("both messages after the reconnect", () => got.length === 3);
  assert.deepEqual(got, [
    [channels[0], "before"],
    [channels[0], "after"],
    [channels[1], "after"],
  ]);
});

test("unsubscribing the last handler leaves the channel", async () => {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const { logger } = capturingLogger();
  const subscriber = new RedisSubscriber({ redis, logger });
  defer(() => subscriber.close());
  const channel = `${prefix}:c`;
  const leaveA = await subscriber.subscribe(channel, { onMessage: () => {} });
  const leaveB = await subscriber.subscribe(channel, { onMessage: () => {} });
  const subscribers = async () => {
    const [, count] = (await redis.pubsub("NUMSUB", channel)) as [string, number];
    return count;
  };
  assert.equal(await subscribers(), 1);
  leaveA();
  assert.equal(await subscribers(), 1);
  leaveB();
  leaveB();
  await waitFor("the channel left", async () => (await subscribers()) === 0);
});
