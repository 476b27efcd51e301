/**
 * The one place Redis connections are made; stores receive them ready to use.
 */
import { Redis } from "ioredis";
import type { Logger } from "pino";

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

/** At most one warning per this many ms about a failing auto-pipelining connection. */
const ERROR_LOG_INTERVAL_MS = 30_000;

/**
 * A second connection like `redis` (same URL and options, reconnecting the same way) that
 * auto-pipelines: commands issued while a batch is on its way to Redis leave together as the
 * next one (one write, one round trip), in call order. For the per-agent writes of many
 * agents (src/opamp's agent store and replica liveness), where it turns a command per agent
 * into a write per tick. Not for BullMQ's connections (users who turned it on there saw "job
 * is not in the active list" errors: taskforcesh/bullmq#457), nor for pub/sub or blocking commands, which
 * would hold every command queued behind them. Connects on first use; the caller quits it.
 * Connection errors are logged at warn, the first at once and then at most one per 30 s
 * (with how many were left out): commands wait for a reconnect forever, so without a line a
 * failing connection (Redis at maxclients, say) would hang every agent write silently.
 */
export function pipelinedConnection(redis: Redis, logger: Logger): Redis {
  const pipelined = redis.duplicate({ enableAutoPipelining: true });
  let loggedAt = Number.NEGATIVE_INFINITY;
  let left = 0;
  pipelined.on("error", (err: Error) => {
    const now = Date.now();
    if (now - loggedAt < ERROR_LOG_INTERVAL_MS) {
      left++;
      return;
    }
    logger.warn(
      { err, similarLeftOut: left },
      "Redis connection for agent writes failed; retrying",
    );
    loggedAt = now;
    left = 0;
  });
  return pipelined;
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
