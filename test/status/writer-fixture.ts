/**
 * What a StatusWriter test block needs: one Redis connection (a unique prefix) and fleet
 * repositories with one commit, all closed and removed after the block; agents built from
 * fakeAgent. Call `writerFixture()` inside `describe`.
 */
import { after, before } from "node:test";
import type { AgentState } from "../../src/opamp/agent-state.js";
import { type TestRedis, testRedis } from "../helpers/redis.js";
import { cleanup, TestRepo } from "../sync/helpers/git-repo.js";
import { fakeAgent, uidOf } from "./helpers.js";

export interface WriterFixture {
  /** The block's Redis connection (set by its `before`). */
  redis(): TestRedis;
  /** A repository holding one commit ("init"), removed after the block. */
  repo(): TestRepo;
}

export function writerFixture(): WriterFixture {
  let r: TestRedis | undefined;
  const repos: TestRepo[] = [];
  before(async () => {
    r = await testRedis();
  });
  after(async () => {
    await r?.close();
    cleanup(...repos.map((x) => x.dir));
  });
  return {
    redis: () => {
      if (!r) throw new Error("writerFixture: Redis is connected in the block's before()");
      return r;
    },
    repo: () => {
      const repo = new TestRepo();
      repo.writeAll({ "README.md": "fleet\n" }).commit("init");
      repos.push(repo);
      return repo;
    },
  };
}

/** `n` connected fake agents (uidOf(0) …) by uid. */
export function fakeAgents(n: number): Map<string, AgentState> {
  const states = new Map<string, AgentState>();
  for (let i = 0; i < n; i++) states.set(uidOf(i), fakeAgent(uidOf(i)));
  return states;
}
