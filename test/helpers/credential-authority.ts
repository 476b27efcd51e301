/**
 * AgentCredentialAuthority for tests, on real Redis: the options every test shares, and the
 * instances a test made, closed together after it.
 */

import { afterEach, beforeEach } from "node:test";
import type { Logger } from "pino";
import {
  AgentCredentialAuthority,
  type AgentCredentialOptions,
} from "../../src/service/agent-credentials.js";
import { type TestRedis, testRedis } from "./redis.js";

/** What a test gives: its Redis prefix, its logger, and any option over the defaults. */
export type TestAuthorityOptions = { redis: TestRedis; logger: Logger } & Partial<
  Omit<AgentCredentialOptions, "redis" | "prefix" | "logger">
>;

/**
 * The tests' defaults, under `options`: every agent in group "edge", certificates and tokens
 * valid 10 h and rotated at 66 %, CSRs up to 8 KiB, no token minting, a 60 s poll for other
 * replicas' changes.
 */
export function testAuthorityOptions({
  redis,
  ...options
}: TestAuthorityOptions): AgentCredentialOptions {
  return {
    redis: redis.redis,
    prefix: redis.prefix,
    groupOf: () => "edge",
    certificateValidityMs: 36_000_000,
    tokenValidityMs: 36_000_000,
    rotateAt: 0.66,
    mintTokens: false,
    maxCsrBytes: 8192,
    pollMs: 60_000,
    ...options,
  };
}

type Extra = Partial<Omit<TestAuthorityOptions, "redis">>;

/**
 * For the calling file or suite: a fresh Redis prefix per test (registers beforeEach and
 * afterEach hooks), and `make(extra)` for authorities on it with `base()` (read at each call:
 * the test's logger, clock) and `extra` over the defaults. After each test, every authority
 * made is closed, then the prefix's keys are deleted.
 */
export function authorityMaker(base: () => Extra & Pick<TestAuthorityOptions, "logger">): {
  make(extra?: Extra): AgentCredentialAuthority;
  /** This test's Redis prefix (set in beforeEach). */
  readonly redis: TestRedis;
} {
  const made: AgentCredentialAuthority[] = [];
  let redis: TestRedis | undefined;
  beforeEach(async () => {
    redis = await testRedis();
  });
  afterEach(async () => {
    for (const a of made.splice(0)) a.close();
    await redis?.close();
  });
  const current = () => {
    if (!redis) throw new Error("authorityMaker: no Redis outside a test");
    return redis;
  };
  // Plain functions (no `this`): tests call `make` detached.
  return {
    make(extra = {}) {
      const options = { ...base(), ...extra, redis: current() };
      const a = new AgentCredentialAuthority(testAuthorityOptions(options));
      made.push(a);
      return a;
    },
    get redis() {
      return current();
    },
  };
}
