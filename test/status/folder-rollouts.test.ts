/**
 * The folder mode with FleetSync watching the same branch (status commits must not feed
 * themselves), rollout progress from a RolloutStatusSource in group files and messages, and
 * the writer's own timer.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { RemoteConfigStatus } from "../../src/opamp/capabilities.js";
import type { AgentState } from "../../src/opamp/index.js";
import type { GroupRolloutInfo, RolloutStatusSource } from "../../src/status/model.js";
import { groupFilePath } from "../../src/status/paths.js";
import { type FlushResult, StatusWriter } from "../../src/status/status-writer.js";
import { FleetSync } from "../../src/sync/fleet-sync.js";
import { capturedLogger } from "../helpers/logger.js";
import { type TestRedis, testRedis } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait.js";
import { groupFiles } from "../sync/helpers/fleet.js";
import { bareRepo, cleanup, TestRepo, tempDir } from "../sync/helpers/git-repo.js";
import { ValidationCache, validateSnapshot } from "../sync/helpers/validator.js";
import { fakeAgent, get, git, readStatusTree, uidOf } from "./helpers.js";

class FakeRollouts implements RolloutStatusSource {
  readonly info = new Map<string, GroupRolloutInfo>();
  readonly #listeners = new Set<(g: string) => void>();
  status(group: string) {
    return this.info.get(group);
  }
  subscribe(listener: (g: string) => void) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  set(group: string, info: GroupRolloutInfo) {
    this.info.set(group, info);
    for (const l of this.#listeners) l(group);
  }
}

describe("folder mode, rollouts and the timer", () => {
  let redis: TestRedis;
  let root: string;
  let gitdir: string;
  let work: TestRepo;
  let sync: FleetSync;
  const rollouts = new FakeRollouts();
  const log = capturedLogger("warn");
  const writers: StatusWriter[] = [];

  const newWriter = (o: Partial<ConstructorParameters<typeof StatusWriter>[0]> = {}) => {
    const w = new StatusWriter({
      redis: redis.redis,
      prefix: redis.prefix,
      repo: gitdir,
      mode: "folder",
      branch: "main",
      intervalMs: 3_600_000,
      fleetSync: sync,
      rollouts,
      logger: log.logger,
      ...o,
    });
    writers.push(w);
    w.start();
    return w;
  };

  before(async () => {
    redis = await testRedis();
    root = tempDir();
    gitdir = bareRepo(root, "fleet.git");
    work = new TestRepo();
    work.git("remote", "add", "origin", gitdir);
    work.writeAll(groupFiles("edge")).commit("config");
    work.git("push", "-q", "origin", "main");
    const cache = new ValidationCache();
    sync = new FleetSync({
      repo: gitdir,
      pollIntervalMs: 0,
      validate: (s) => validateSnapshot(s, { cache }),
    });
    await sync.start();
  });
  after(async () => {
    for (const w of writers) await w.close({ flush: false });
    await sync.stop();
    await redis.close();
    cleanup(root, work.dir);
  });

  test("status commits on the config branch never report themselves as served", async () => {
    const w = newWriter();
    const config = git(gitdir, "rev-parse", "main");
    const r1 = await w.flush();
    assert.ok(r1.commit);
    assert.equal(git(gitdir, "rev-parse", "main^"), config);
    await sync.trigger(); // FleetSync now sees our status commit as the head
    const r2 = await w.flush();
    assert.equal(r2.commit, undefined, "no commit caused by our own commit");
    // A user's change: served, then quiet again.
    work.git("pull", "-q", "--no-rebase", "origin", "main");
    work.write(
      "groups/edge/collector.yaml",
      `${groupFiles("edge")["groups/edge/collector.yaml"]}# v2\n`,
    );
    const user = work.commit("edge v2");
    work.git("push", "-q", "origin", "main");
    await sync.trigger();
    const r3 = await w.flush();
    assert.ok(r3.commit);
    assert.match(r3.message ?? "", new RegExp(`serving ${user.slice(0, 7)}`));
    const g = readStatusTree(gitdir, "main").get(groupFilePath("edge"));
    assert.equal(get(g, "served", "commit"), user);
    assert.equal(get(g, "served", "hashCommit"), user);
    await sync.trigger();
    assert.equal((await w.flush()).commit, undefined);
    // After a restart too.
    await w.close();
    const w2 = newWriter();
    await sync.trigger();
    assert.equal((await w2.flush()).commit, undefined);
    await w2.close();
  });

  test("rollout progress reaches the group file and the message", async () => {
    const w = newWriter();
    await w.flush();
    const target = { hash: "c".repeat(64), commit: "3f2a9c1".padEnd(40, "0") };
    const from = { hash: "a".repeat(64), commit: "1".repeat(40) };
    const current = {
      id: "edge@3f2a9c1",
      state: "in-progress" as const,
      from,
      target,
      stage: 0,
      stages: 3,
      percent: 10,
      members: 10,
      cohort: 1,
      applied: 0,
      failed: 0,
      pending: 1,
      startedAt: Date.now(),
      failures: [],
    };
    rollouts.set("edge", { current, history: [] });
    const r1 = await w.flush();
    assert.match(r1.message ?? "", /edge@3f2a9c1 started stage 1\/3 \(10 %\)/);
    rollouts.set("edge", {
      current: { ...current, stage: 1, percent: 50, cohort: 5, applied: 1 },
      history: [],
    });
    assert.match((await w.flush()).message ?? "", /edge@3f2a9c1 stage 2\/3 \(50 %\)/);
    const ended = {
      ...current,
      state: "rolled-back" as const,
      endedAt: Date.now(),
      endReason: "2 of 5 agents failed",
      failed: 2,
      pending: 0,
      failures: [
        { uid: uidOf(7), reason: "failed" as const, error: "bad exporter", at: Date.now() },
      ],
    };
    rollouts.set("edge", { current: ended, history: [ended] });
    const r3 = await w.flush();
    assert.match(r3.message ?? "", /^edge@3f2a9c1 rolled back: 2 of 5 agents failed/);
    const g = readStatusTree(gitdir, "main").get(groupFilePath("edge"));
    assert.equal(get(g, "rollout", "state"), "rolled-back");
    assert.equal(get(g, "rollout", "reason"), "2 of 5 agents failed");
    assert.equal(get(g, "rollout", "failures", 0, "error"), "bad exporter");
    assert.deepEqual(get(g, "history"), [], "the current rollout is not repeated in history");
    await w.close();
  });

  test("a report arriving while agents render never shows a rollout ahead of its agent files", async () => {
    const uid = uidOf(42);
    const hash = "d".repeat(64);
    let agent: AgentState = fakeAgent(uid, {
      reportedHash: hash,
      status: RemoteConfigStatus.APPLYING,
    });
    const current = {
      id: "edge@4d4d4d4",
      state: "in-progress" as const,
      from: { hash: "a".repeat(64), commit: "1".repeat(40) },
      target: { hash, commit: "4d4d4d4".padEnd(40, "0") },
      stage: 0,
      stages: 1,
      percent: 100,
      members: 1,
      cohort: 1,
      applied: 0,
      failed: 0,
      pending: 1,
      startedAt: Date.now(),
      failures: [],
    };
    rollouts.set("edge", { current, history: [] });
    let arrived = false;
    const w = newWriter({
      prefix: `${redis.prefix}:order`,
      agents: {
        list: async () => [uid],
        // The flush loads the agent's state to render it; right after, its APPLIED report
        // arrives: the state first, then the rollout it completes (the service's order).
        load: async () => {
          const loaded = agent;
          if (!arrived) {
            arrived = true;
            queueMicrotask(() => {
              agent = fakeAgent(uid, { reportedHash: hash, status: RemoteConfigStatus.APPLIED });
              void w.recordAgent(agent);
              const done = { ...current, state: "completed" as const, applied: 1, pending: 0 };
              rollouts.set("edge", { current: { ...done, endedAt: Date.now() }, history: [] });
            });
          }
          return loaded;
        },
      },
    });
    await w.recordAgent(agent);
    await w.settled();
    const agentFile = (t: Map<string, unknown>) =>
      t.get([...t.keys()].find((p) => p.includes(uid)) ?? "missing");
    for (let i = 0; i < 2; i++) {
      const r = await w.flush();
      assert.ok(r.commit, `flush ${i} commits`);
      const tree = readStatusTree(gitdir, "main");
      const state = get(tree.get(groupFilePath("edge")), "rollout", "state");
      const status = get(agentFile(tree), "remoteConfig", "status");
      if (state === "completed") assert.equal(status, "APPLIED", `flush ${i}: ${r.message}`);
      else assert.equal(status, "APPLYING", `flush ${i}: ${r.message}`);
    }
    const tree = readStatusTree(gitdir, "main");
    assert.equal(get(tree.get(groupFilePath("edge")), "rollout", "state"), "completed");
    assert.equal(get(agentFile(tree), "remoteConfig", "status"), "APPLIED");
    rollouts.info.delete("edge");
    await w.close();
  });

  test("the timer flushes on its own, one commit per interval", async () => {
    const w = newWriter({ intervalMs: 150, prefix: `${redis.prefix}:timer` });
    const flushed: FlushResult[] = [];
    w.on("flushed", (r) => flushed.push(r));
    for (let i = 0; i < 5; i++) void w.recordAgent(fakeAgent(uidOf(i)));
    await w.settled();
    const first = await waitFor(
      "a timer flush that committed",
      () => flushed.find((r) => r.commit),
      {
        timeoutMs: 5000,
        intervalMs: 50,
      },
    );
    assert.match(first.message ?? "", /unassigned: 5 connected|5 connected/);
    await w.close();
    assert.deepEqual(
      log.lines.filter((l) => Number(l.level) >= 50),
      [],
    );
  });

  test("an agent that reconnects after the retention period is not swept away", async () => {
    let clock = Date.now();
    const w = newWriter({ prefix: `${redis.prefix}:sweep`, now: () => clock });
    const uid = uidOf(77);
    const path = (t: Map<string, unknown>) =>
      [...t.keys()].find((p) => p.includes(uid)) ?? "missing";
    await w.recordAgent(fakeAgent(uid, { connected: false }));
    await w.settled();
    assert.ok((await w.flush()).commit);
    // Eight days later the agent comes back; its reconnect is recorded, not yet committed.
    clock += 8 * 24 * 3600_000;
    await w.recordAgent(fakeAgent(uid, { connected: true }));
    await w.settled();
    const r = await w.flush();
    assert.doesNotMatch(r.message ?? "", /removed/);
    const tree = readStatusTree(gitdir, "main");
    assert.equal(get(tree.get(path(tree)), "connected"), true);
    await w.close();
  });
});
