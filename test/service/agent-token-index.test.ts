/**
 * The per-agent token index stays bounded (src/service/agent-credentials.ts, real Redis): an
 * agent flipping between two groups gets at most one new token per --agent-csr-interval, and
 * expired tokens leave `<p>:agent-tokens` (and memory) at the next re-read.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { emptyAgentState } from "../../src/opamp/agent-state.js";
import { AgentCapabilities } from "../../src/opamp/index.js";
import { AgentCredentialAuthority } from "../../src/service/agent-credentials.js";
import { capturedLogger } from "../helpers/logger.js";
import { type TestRedis, testRedis } from "../helpers/redis.js";

const HOUR = 3_600_000;
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function setup(r: TestRedis, clock: { now: number }, groupOf: () => string) {
  const authority = new AgentCredentialAuthority({
    redis: r.redis,
    prefix: r.prefix,
    logger: capturedLogger("warn").logger,
    groupOf,
    certificateValidityMs: HOUR,
    tokenValidityMs: HOUR,
    rotateAt: 0.66,
    mintTokens: true,
    maxCsrBytes: 8192,
    csrIntervalMs: 60_000,
    pollMs: 600_000,
    now: () => clock.now,
  });
  cleanups.push(() => authority.close());
  return authority;
}

const agent = (uid: string) => {
  const a = emptyAgentState(uid, "http", 0);
  a.capabilities = AgentCapabilities.AcceptsOpAMPConnectionSettings;
  return a;
};

test("an agent flipping between two groups mints one token per interval", async () => {
  const r = await testRedis();
  cleanups.push(() => r.close());
  const clock = { now: 1_000_000 };
  let group = "a";
  const authority = setup(r, clock, () => group);
  await authority.start();
  const uid = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60";
  for (let i = 0; i < 10; i++) {
    group = i % 2 === 0 ? "a" : "b";
    await authority.credentialFor(agent(uid), undefined);
    clock.now += 1000;
  }
  assert.equal(await r.redis.hlen(`${r.prefix}:agent-tokens`), 1, "one token, not one per message");
  clock.now += 60_000;
  group = "b";
  await authority.credentialFor(agent(uid), undefined);
  assert.equal(
    await r.redis.hlen(`${r.prefix}:agent-tokens`),
    2,
    "the new group's after the interval",
  );
});

test("expired tokens leave the index at the next re-read", async () => {
  const r = await testRedis();
  cleanups.push(() => r.close());
  const clock = { now: 1_000_000 };
  const authority = setup(r, clock, () => "edge");
  await authority.start();
  const old = await authority.credentialFor(
    agent("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61"),
    undefined,
  );
  const token = old?.headers?.[0]?.value.replace(/^Bearer /, "") ?? "";
  assert.ok(token);
  clock.now += 2 * HOUR;
  await authority.credentialFor(agent("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a62"), undefined);
  assert.equal(await r.redis.hlen(`${r.prefix}:agent-tokens`), 2);
  // Another replica's change makes every replica re-read the index.
  await r.redis.incr(`${r.prefix}:credentials-version`);
  const again = setup(r, clock, () => "edge");
  await again.start();
  assert.equal(await r.redis.hlen(`${r.prefix}:agent-tokens`), 1, "the expired token is gone");
  assert.equal(again.mintedToken(token), undefined, "forgotten, refused like any unknown token");
});
