/**
 * Real Redis for tests, with a unique key prefix per test (as BullMQ's own tests do) and the
 * keys removed afterwards. REDIS_URL overrides the default redis://127.0.0.1:6379.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";

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
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== "0");
      redis.disconnect();
    },
  };
}
