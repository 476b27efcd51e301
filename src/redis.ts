/**
 * The one place Redis connections are made; stores receive them ready to use.
 */
import { Redis } from "ioredis";

/** The URL with any password replaced by "***" (for messages and logs). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString().replace(/\/$/, "");
  } catch {
    return url.replace(/\/\/[^@/]*@/, "//***@");
  }
}

export class RedisUnavailableError extends Error {
  readonly code = "REDIS_UNAVAILABLE";
  /** The URL, password masked. */
  readonly url: string;
  constructor(
    url: string,
    cause: unknown,
    { hint = "start redis-server or pass --redis <url>" }: { hint?: string } = {},
  ) {
    super(
      `cannot reach Redis at ${redactUrl(url)} (${(cause as Error)?.message ?? cause}); ${hint}`,
      { cause },
    );
    this.url = redactUrl(url);
    this.name = "RedisUnavailableError";
  }
}

/**
 * Connects and waits until Redis answers. `maxRetriesPerRequest: null` is what BullMQ's
 * workers require; commands then wait for a reconnect instead of failing.
 */
export async function connectRedis(url: string, { timeoutMs = 5000 } = {}): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    connectTimeout: timeoutMs,
    retryStrategy: () => null, // while connecting: fail fast with a clear error
  });
  let lastError: unknown;
  redis.on("error", (err) => {
    lastError = err;
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new RedisUnavailableError(url, lastError ?? err);
  }
  // Once up, reconnect with capped backoff for as long as it takes.
  redis.options.retryStrategy = (attempt) => Math.min(attempt * 200, 5000);
  return redis;
}

/** Deletes every key under `<prefix>:` (SCAN + UNLINK; for demos, tests and benchmarks). */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== "0");
}
