/**
 * The key of the status writer's redaction markers (`<redacted:3fa2c1>` is an HMAC under it):
 * 32 random bytes, created once by whichever replica asks first (SET NX) and kept in Redis
 * under `<prefix>:redaction-key`, so every replica, and every restart, writes the same marker
 * for the same value. It never leaves Redis and the process; it is not written to Git.
 *
 * If the key is lost (Redis flushed), the next start creates a new one: every marker changes
 * once, so the next flushes rewrite every agent file that holds one. Nothing leaks either way.
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";

/** The Redis key that holds the redaction key (base64). */
export const redactionKeyName = (prefix: string) => `${prefix}:redaction-key`;

/** The fleet's redaction key: the stored one, or a new one stored now. */
export async function loadRedactionKey(redis: Redis, prefix: string): Promise<Buffer> {
  const name = redactionKeyName(prefix);
  // SET NX: when two replicas start together, one key wins and both read it back.
  await redis.set(name, randomBytes(32).toString("base64"), "NX");
  const stored = await redis.get(name);
  const key = stored ? Buffer.from(stored, "base64") : Buffer.alloc(0);
  if (key.length < 16) {
    // Someone wrote something else there: replace it rather than redact under a weak key.
    const fresh = randomBytes(32);
    await redis.set(name, fresh.toString("base64"));
    return fresh;
  }
  return key;
}
