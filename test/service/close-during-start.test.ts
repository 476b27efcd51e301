/**
 * close() called while start() is still subscribing (or, for GitDuty, still trying the lease)
 * leaves nothing behind: no handler on the shared subscriber, no lease, no poll timer. Real
 * Redis; a leaked handler shows as a subscriber of the channel that never goes.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { AgentEvents } from "../../src/opamp/index.js";
import { RedisSubscriber } from "../../src/redis-subscriber.js";
import { AgentCredentialAuthority } from "../../src/service/agent-credentials.js";
import { ConsoleFeed } from "../../src/service/console-feed.js";
import { GitDuty } from "../../src/service/git-duty.js";
import { FleetSync } from "../../src/sync/fleet-sync.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { tempDir } from "../sync/helpers/git-repo.js";
import { ValidationCache, validateSnapshot } from "../sync/helpers/validator.js";

const defer = deferred();
const logger = pino({ level: "silent" });

async function setup() {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const subscriber = new RedisSubscriber({ redis, logger });
  defer(() => subscriber.close());
  /** Whether nobody listens on `channel` any more (the shared subscriber left it). */
  const left = (channel: string) =>
    waitFor(`${channel} left`, async () => {
      const [, n] = (await redis.pubsub("NUMSUB", channel)) as [string, number];
      return n === 0;
    });
  return { redis, prefix, subscriber, left };
}

test("ConsoleFeed: closed while subscribing, it leaves the channel", async () => {
  const { redis, prefix, subscriber, left } = await setup();
  const feed = new ConsoleFeed({
    redis,
    subscriber,
    prefix,
    replicaId: "a",
    events: new AgentEvents(),
    rollouts: { onGroupChanged: () => () => {} },
    logger,
  });
  const started = feed.start();
  feed.close();
  await started;
  await left(`${prefix}:console-agents`);
});

test("AgentCredentialAuthority: closed while subscribing, it leaves the channel", async () => {
  const { redis, prefix, subscriber, left } = await setup();
  const authority = new AgentCredentialAuthority({
    redis,
    subscriber,
    prefix,
    logger,
    groupOf: () => "edge",
    certificateValidityMs: 3_600_000,
    tokenValidityMs: 3_600_000,
    rotateAt: 0.66,
    mintTokens: true,
    maxCsrBytes: 8192,
    pollMs: 60_000,
  });
  defer(() => authority.close());
  const started = authority.start();
  authority.close();
  await started;
  await left(`${prefix}:revocations`);
});

test("GitDuty: closed while taking the lease, it neither follows nor keeps the lease", async () => {
  const { redis, prefix, subscriber, left } = await setup();
  const duty = new GitDuty({ redis, subscriber, prefix, ttlMs: 5_000, logger });
  const cache = new ValidationCache();
  // Never started: GitDuty only listens to it and triggers it.
  const sync = new FleetSync({
    repo: "http://127.0.0.1:9/none.git",
    stateDir: tempDir(),
    pollIntervalMs: 60_000,
    pollWhen: duty.polling,
    exchange: duty,
    validate: (s) => validateSnapshot(s, { cache }),
  });
  const started = duty.start(sync);
  await duty.close();
  await started;
  assert.equal(duty.lease.held, false);
  assert.equal(await redis.exists(`${prefix}:lease:git`), 0);
  await left(`${prefix}:git:head`);
});
