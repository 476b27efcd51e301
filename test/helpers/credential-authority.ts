/**
 * AgentCredentialAuthority for tests, on real Redis: the options every test shares, and the
 * instances a test made, closed together after it.
 */

import type { Logger } from "pino";
import {
  AgentCredentialAuthority,
  type AgentCredentialOptions,
} from "../../src/service/agent-credentials.js";
import type { TestRedis } from "./redis.js";

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

/**
 * Makes authorities with `base()` (read at each call: a test's fresh Redis prefix, its clock)
 * and `extra` over it; `closeAll()` closes every one made so far (call it after each test).
 */
export function authorityMaker(base: () => TestAuthorityOptions): {
  make(extra?: Partial<Omit<TestAuthorityOptions, "redis">>): AgentCredentialAuthority;
  closeAll(): void;
} {
  const made: AgentCredentialAuthority[] = [];
  return {
    make(extra = {}) {
      const a = new AgentCredentialAuthority(testAuthorityOptions({ ...base(), ...extra }));
      made.push(a);
      return a;
    },
    closeAll() {
      for (const a of made.splice(0)) a.close();
    },
  };
}
