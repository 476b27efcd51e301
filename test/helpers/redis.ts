/**
 * Real Redis for tests, with a unique key prefix per test (as BullMQ's own tests do) and the
 * keys removed afterwards. REDIS_URL overrides the default redis://127.0.0.1:6379.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { deleteKeysWithPrefix } from "../../src/redis.js";

export interface TestRedis {
  redis: Redis;
  prefix: string;
  close(): Promise<void>;
}

export async function testRedis(): Promise<TestRedis> {
  const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  await redis.connect();
  const prefix = `test-${randomBytes(6).toString("hex")}`;
  return {
    redis,
    prefix,
    async close() {
      await deleteKeysWithPrefix(redis, prefix);
      redis.disconnect();
    },
  };
}
