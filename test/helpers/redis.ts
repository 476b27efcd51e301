/**
 * Real Redis for tests, with a unique key prefix per test (as BullMQ's own tests do) and the
 * keys removed afterwards. REDIS_URL overrides the default redis://127.0.0.1:6379.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { deleteKeysWithPrefix } from "../../src/redis.js";
import { type AgentRedis, agentRedis } from "../../src/redis-agent.js";

export interface TestRedis {
  redis: Redis;
  /** The per-agent connection, as the service makes it (src/redis-agent.ts). */
  agent: AgentRedis;
  prefix: string;
  close(): Promise<void>;
}

export async function testRedis(): Promise<TestRedis> {
  const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  await redis.connect();
  const prefix = `test-${randomBytes(6).toString("hex")}`;
  const agent = agentRedis(url);
  return {
    redis,
    agent,
    prefix,
    async close() {
      await agent.close();
      await deleteKeysWithPrefix(redis, prefix);
      redis.disconnect();
    },
  };
}
