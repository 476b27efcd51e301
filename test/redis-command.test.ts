/**
 * src/redis-command.ts: the agent-write connection's RESP encoding gives the bytes ioredis'
 * own Command.toWritable gives (any mix of strings, unicode and Buffers, empty ones too), and
 * commands sent with it through pipelinedConnection round-trip through a real Redis.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Command } from "ioredis";
import { pino } from "pino";
import { pipelinedConnection } from "../src/redis.js";
import { encodeCommand } from "../src/redis-command.js";
import { testRedis } from "./helpers/redis.js";
import { deferred } from "./helpers/teardown.js";

const defer = deferred();
const asBytes = (x: string | Buffer) => (typeof x === "string" ? Buffer.from(x) : x);

test("encodeCommand writes the bytes ioredis writes, for any strings and Buffers", () => {
  const arg = fc.oneof(
    fc.string({ unit: "binary", maxLength: 40 }),
    fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  );
  fc.assert(
    fc.property(
      fc.constantFrom("hset", "evalsha", "set"),
      fc.array(arg, { maxLength: 30 }),
      (name, args) => {
        const theirs = new Command(name, args) as unknown as {
          toWritable(): string | Buffer;
          args: Array<string | Buffer>;
        };
        const ours = encodeCommand({ name, args: theirs.args });
        assert.deepEqual(asBytes(ours), asBytes(theirs.toWritable()));
        assert.equal(
          typeof ours,
          typeof theirs.toWritable(),
          "a string when ioredis sends a string",
        );
      },
    ),
    { numRuns: 2000 },
  );
});

test("a save with Buffers and unicode through the agent-write connection reads back as written", async () => {
  const t = await testRedis();
  const redis = pipelinedConnection(t.redis, pino({ level: "silent" }));
  const key = `${t.prefix}:agent`;
  defer(async () => {
    redis.disconnect();
    await t.close();
  });
  const blob = Buffer.from([0, 13, 10, 36, 42, 255, 128]);
  // Issued in one turn: they leave together, each encoded on its own.
  await Promise.all([
    redis.hset(
      key,
      "seq",
      "7",
      "scopes",
      "edge\nkøbenhavn-✓",
      "health",
      blob,
      "empty",
      Buffer.alloc(0),
    ),
    redis.hset(key, "owner", "r1/42", "description", Buffer.from("\r\n$3\r\n")),
  ]);
  const stored = await redis.hgetallBuffer(key);
  assert.equal(stored.seq?.toString(), "7");
  assert.equal(stored.scopes?.toString(), "edge\nkøbenhavn-✓");
  assert.deepEqual(stored.health, blob);
  assert.deepEqual(stored.empty, Buffer.alloc(0));
  assert.equal(stored.owner?.toString(), "r1/42");
  assert.equal(stored.description?.toString(), "\r\n$3\r\n");
});
