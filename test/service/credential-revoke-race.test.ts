/**
 * A revocation is not undone by a re-read of the credential indexes that began before it
 * (src/service/agent-credentials.ts, real Redis): the read finishes after revoke() with what
 * Redis held before, and must not replace the deny list with that nor lower the version.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { Redis } from "ioredis";
import { AgentCredentialAuthority } from "../../src/service/agent-credentials.js";
import { capturedLogger } from "../helpers/logger.js";
import { testRedis } from "../helpers/redis.js";

const UID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c";
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test("a re-read that began before a revocation does not undo it", async () => {
  const r = await testRedis();
  cleanups.push(() => r.close());
  const authority = new AgentCredentialAuthority({
    redis: r.redis,
    prefix: r.prefix,
    logger: capturedLogger("warn").logger,
    groupOf: () => "edge",
    certificateValidityMs: 3_600_000,
    tokenValidityMs: 3_600_000,
    rotateAt: 0.66,
    mintTokens: false,
    maxCsrBytes: 8192,
    pollMs: 600_000, // no poll: only the reads this test makes happen
  });
  cleanups.push(() => authority.close());
  // Another replica changed something: the start's read has work to do.
  await r.redis.incr(`${r.prefix}:credentials-version`);
  // The start's read of the revoked list returns what Redis held before the revocation,
  // and the revocation completes while that read is on its way.
  const hgetall = r.redis.hgetall.bind(r.redis) as Redis["hgetall"];
  let raced = false;
  r.redis.hgetall = (async (key: string) => {
    const before = await hgetall(key);
    if (key === `${r.prefix}:revoked` && !raced) {
      raced = true;
      await authority.revoke(UID, "test");
    }
    return before;
  }) as typeof r.redis.hgetall;
  cleanups.push(() => {
    r.redis.hgetall = hgetall;
  });
  await authority.start();
  assert.ok(raced, "the revocation happened during the read");
  assert.ok(authority.revocation(UID), "still revoked after the older read finished");
  assert.ok(authority.revocations().has(UID));
});
