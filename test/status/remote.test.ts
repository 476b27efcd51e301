/**
 * The status branch of a remote repository served over smart HTTP (`git http-backend`):
 * commits are pushed; a concurrent push is fetched and rebased over; a remote that is down
 * for a while loses nothing and gets one commit once back; a replica killed with SIGKILL
 * after recording loses nothing; two replicas share one writer; the folder mode builds on
 * the config branch without rewriting its commits.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { AgentStore } from "../../src/opamp/agent-store.js";
import { RemoteConfigStatus } from "../../src/opamp/capabilities.js";
import { AgentEvents } from "../../src/opamp/events.js";
import { LiveAgents } from "../../src/opamp/live-agents.js";
import { ReplicaLiveness } from "../../src/opamp/replica-liveness.js";
import { agentFilePath } from "../../src/status/paths.js";
import { BULK_PACK_FILES } from "../../src/status/publish.js";
import { StatusWriter, type StatusWriterOptions } from "../../src/status/status-writer.js";
import { capturedLogger } from "../helpers/logger.js";
import { type TestRedis, testRedis } from "../helpers/redis.js";
import { groupFiles } from "../sync/helpers/fleet.js";
import { GitHttpServer, httpBackendPath } from "../sync/helpers/git-http-server.js";
import { bareRepo, cleanup, git as gitIn, TestRepo, tempDir } from "../sync/helpers/git-repo.js";
import {
  commitCount,
  fakeAgent,
  get,
  git,
  readStatusTree,
  SECRET,
  saveAgent,
  storeContains,
  uidOf,
} from "./helpers.js";

const skip = httpBackendPath() ? false : "git-http-backend is not installed";
const HASH = "ab".repeat(32);
const COMMIT = "cd".repeat(20);
const BRANCH = "opamp-status";

describe("status branch of a remote repository", { skip }, () => {
  let root: string;
  let remote: string;
  let server: GitHttpServer;
  let redis: TestRedis;
  let work: TestRepo;
  const dirs: string[] = [];
  const writers: StatusWriter[] = [];
  const stores = new Map<StatusWriter, AgentStore>();
  const log = capturedLogger("warn");

  const writer = (o: Partial<StatusWriterOptions> = {}) => {
    const stateDir = tempDir();
    dirs.push(stateDir);
    const w = new StatusWriter({
      redis: redis.redis,
      prefix: redis.prefix,
      repo: server.url("fleet.git"),
      stateDir,
      intervalMs: 3_600_000,
      placement: () => ({ group: "edge", desiredHash: HASH, desiredCommit: COMMIT }),
      logger: log.logger,
      ...o,
    });
    writers.push(w);
    if (o.agents instanceof AgentStore) stores.set(w, o.agents);
    return w;
  };
  /** Records agents (stored first, for writers that render from an AgentStore). */
  const record = async (w: StatusWriter, from: number, n: number, o = {}) => {
    for (let i = 0; i < n; i++) {
      const agent = fakeAgent(uidOf(from + i), { reportedHash: HASH, ...o });
      const store = stores.get(w);
      if (store) await saveAgent(store, agent);
      void w.recordAgent(agent);
    }
    await w.settled();
  };
  const agentFiles = (ref = BRANCH) =>
    [...readStatusTree(remote, ref).keys()].filter((p) => p.startsWith("status/agents/"));

  before(async () => {
    root = tempDir();
    remote = bareRepo(root, "fleet.git");
    work = new TestRepo();
    work.git("remote", "add", "origin", remote);
    work.writeAll(groupFiles("edge")).commit("config");
    work.git("push", "-q", "origin", "main");
    server = await GitHttpServer.start({ root });
    redis = await testRedis();
  });
  after(async () => {
    for (const w of writers) await w.close({ flush: false });
    await server.close();
    await redis.close();
    cleanup(root, work.dir, ...dirs);
  });

  test("status commits are pushed to the remote's orphan status branch", async () => {
    const w = writer();
    await record(w, 1, 5);
    const r = await w.flush();
    assert.ok(r.commit);
    assert.equal(git(remote, "rev-parse", BRANCH), r.commit);
    assert.equal(agentFiles().length, 5);
    assert.equal(git(remote, "rev-list", "--max-parents=0", BRANCH), r.commit);
    assert.equal(gitIn(work.dir, "rev-parse", "main"), git(remote, "rev-parse", "main"));
    assert.equal(storeContains(remote, SECRET), false);
    assert.match(r.message ?? "", /edge: 5 applied abababa, 5 connected/);
    await w.close();
  });

  test("a flush of over 1,000 agents (their files written as one blob pack) is pushed whole", async () => {
    const bulk = bareRepo(root, "bulk.git");
    work.git("push", "-q", bulk, "main");
    const w = writer({ repo: server.url("bulk.git") });
    const n = BULK_PACK_FILES + 200;
    await record(w, 5_000, n);
    const r = await w.flush();
    assert.ok(r.commit);
    assert.equal(git(bulk, "rev-parse", BRANCH), r.commit);
    git(bulk, "fsck", "--full", "--strict", "--no-dangling");
    const files = [...readStatusTree(bulk, BRANCH).keys()].filter((p) =>
      p.startsWith("status/agents/"),
    );
    assert.equal(files.length, n);
    const last = readStatusTree(bulk, BRANCH).get(agentFilePath("edge", uidOf(5_000 + n - 1)));
    assert.equal(get(last, "group"), "edge");
    // The next flush sends what changed (one agent's file, the files and trees above it),
    // not the 1,200 files again.
    await record(w, 5_000, 1, { healthy: false, lastError: "disk full" });
    const r2 = await w.flush();
    assert.ok(r2.commit);
    assert.equal(git(bulk, "rev-parse", `${BRANCH}^`), r.commit);
    const sent = git(bulk, "rev-list", "--objects", `${BRANCH}^..${BRANCH}`).split("\n");
    assert.ok(sent.length < 20, `${sent.length} objects new in the second commit`);
    const first = readStatusTree(bulk, BRANCH).get(agentFilePath("edge", uidOf(5_000)));
    assert.equal(get(first, "health", "lastError"), "disk full");
    git(bulk, "fsck", "--full", "--strict", "--no-dangling");
    await w.close();
  });

  test("a concurrent push to the status branch is fetched and rebased over", async () => {
    const w = writer();
    await w.flush();
    // Someone else pushes to the status branch.
    const other = new TestRepo();
    dirs.push(other.dir);
    other.git("fetch", "-q", remote, `${BRANCH}:${BRANCH}`);
    other.git("checkout", "-q", BRANCH);
    other.write("README.md", "status branch of the fleet\n").commit("a note");
    const theirs = other.head();
    other.git("push", "-q", remote, BRANCH);
    // Our next flush is rejected, fetches, rebuilds on their commit and publishes.
    await record(w, 10, 3);
    const r = await w.flush();
    assert.ok(r.commit);
    assert.equal(r.attempts, 2);
    assert.equal(git(remote, "rev-parse", BRANCH), r.commit);
    assert.equal(git(remote, "rev-parse", `${BRANCH}^`), theirs, "built on their commit");
    assert.equal(git(remote, "show", `${BRANCH}:README.md`), "status branch of the fleet");
    assert.equal(agentFiles().length, 8);
    await w.close();
  });

  test("a remote down for a while loses nothing and ends in one commit", async () => {
    const w = writer({ packer: { graceMs: 0 } });
    await w.flush();
    const before = commitCount(remote, BRANCH);
    server.failWith = 503;
    // try/finally, not defer: the remote must answer again for the flush that follows.
    try {
      await record(w, 100, 4);
      await assert.rejects(w.flush(), { code: "SYNC_REMOTE_UNREACHABLE" });
      await record(w, 200, 4, { healthy: false, lastError: "disk full" });
      await assert.rejects(w.flush(), { code: "SYNC_REMOTE_UNREACHABLE" });
      await record(w, 100, 2, {
        status: RemoteConfigStatus.FAILED,
        error: "exporter otlp: connection refused",
      });
      await assert.rejects(w.flush(), { code: "SYNC_REMOTE_UNREACHABLE" });
      assert.ok((await w.store.size()) >= 8, "still pending");
    } finally {
      server.failWith = undefined;
    }
    const r = await w.flush();
    assert.ok(r.commit);
    assert.equal(commitCount(remote, BRANCH), before + 1, "one commit");
    assert.equal(await w.store.size(), 0);
    const files = readStatusTree(remote, BRANCH);
    for (const n of [100, 101, 102, 103, 200, 201, 202, 203])
      assert.ok(files.has(agentFilePath("edge", uidOf(n))), `agent ${n}`);
    assert.equal(
      get(files.get(agentFilePath("edge", uidOf(100))), "remoteConfig", "status"),
      "FAILED",
    );
    assert.equal(
      get(files.get(agentFilePath("edge", uidOf(200))), "health", "lastError"),
      "disk full",
    );
    assert.match(
      r.message ?? "",
      /^edge: 6 applied abababa, 2 failed: "exporter otlp: connection refused", 4 unhealthy: "disk full", 8 connected\n\n9 status files changed\n$/,
    );
    // The commits built while the remote was down are garbage in the private clone: packing
    // keeps what the branch reaches and deletes the rest.
    const clone = w.target.gitdir;
    const looseBefore = Number(/count: (\d+)/.exec(git(clone, "count-objects", "-v"))?.[1]);
    const p = await w.pack();
    assert.ok(p && p.removedLoose >= looseBefore, `${p?.removedLoose} of ${looseBefore} removed`);
    assert.match(git(clone, "count-objects", "-v"), /^count: 0$/m);
    git(clone, "fsck", "--full", "--strict", "--no-dangling");
    assert.equal(readStatusTree(clone, BRANCH).size, readStatusTree(remote, BRANCH).size);
    await w.close();
  });

  test("a replica killed with SIGKILL after recording loses nothing", async () => {
    const child = fileURLToPath(new URL("./fixtures/record-child.js", import.meta.url));
    const stateDir = tempDir();
    dirs.push(stateDir);
    const proc = spawn(
      process.execPath,
      [
        child,
        process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
        redis.prefix,
        server.url("fleet.git"),
        stateDir,
        "500",
        "20",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      proc.stdout.on("data", (d: Buffer) => {
        if (d.toString().includes("recorded")) resolve();
      });
      proc.on("exit", (code) => reject(new Error(`child exited early (${code})`)));
    });
    proc.kill("SIGKILL");
    await new Promise((r) => proc.once("exit", r));
    // Nothing was rendered: the dead process left dirty agents.
    const dirty = await redis.redis.zcard(`${redis.prefix}:status:{${BRANCH}}:dirty`);
    assert.equal(dirty, 20);
    // A new process (here: this one) renders and flushes them from the stored agents.
    const w = writer({
      agents: new AgentStore(redis.redis, { prefix: `${redis.prefix}:agents-of-killed` }),
    });
    const r = await w.flush();
    assert.ok(r.commit);
    const files = readStatusTree(remote, BRANCH);
    for (let i = 500; i < 520; i++)
      assert.ok(files.has(agentFilePath("edge", uidOf(i))), `agent ${i}`);
    await w.close();
  });

  test("a disconnect whose dirty mark died with its replica is committed after the sweep", async () => {
    // The state a SIGKILL inside the recorder's mark window leaves: the disconnect is stored,
    // the uid left the dead replica's liveness set, the mark never reached Redis.
    const store = new AgentStore(redis.redis, { prefix: redis.prefix });
    const w = writer({ agents: store });
    await record(w, 800, 1);
    const first = await w.flush();
    assert.match(first.message ?? "", /1 connected/);
    const agent = fakeAgent(uidOf(800), { reportedHash: HASH });
    agent.connected = false;
    agent.lastDisconnectedAt = Date.now();
    // saveAgent stores agents as connected through replica "test" (owner "test/1").
    assert.equal(await store.saveDisconnect(agent, "test/1"), true);
    await redis.redis.sadd(`${redis.prefix}:replicas`, "test");
    // No mark: the writer has nothing to render yet.
    assert.equal((await w.flush()).commit, undefined);
    // A live replica's sweep forgets the dead one; the writer's next flush re-marks agents.
    const sweeper = new ReplicaLiveness({
      redis: redis.redis,
      prefix: redis.prefix,
      replicaId: "live-replica",
      events: new AgentEvents(),
      store,
      live: new LiveAgents(),
      logger: log.logger,
    });
    await sweeper.sweep();
    assert.equal(await redis.redis.sismember(`${redis.prefix}:replicas`, "test"), 0);
    const r = await w.flush();
    assert.ok(r.commit);
    const file = readStatusTree(remote, BRANCH).get(agentFilePath("edge", uidOf(800)));
    assert.equal(get(file, "connected"), false);
    // Seen once: the next flush re-marks nothing.
    assert.equal((await w.flush()).commit, undefined);
    await w.close();
  });

  test("two replicas: one writes, both record", async () => {
    // Both render from the agents stored in Redis, as serve's replicas do.
    const agents = new AgentStore(redis.redis, { prefix: `${redis.prefix}:two` });
    const a = writer({ agents });
    const b = writer({ agents });
    await record(a, 700, 2);
    const ra = await a.flush();
    assert.ok(ra.commit);
    assert.equal(a.isWriter, true);
    await record(b, 710, 3);
    const rb = await b.flush();
    assert.equal(rb.skipped, "not-writer");
    assert.equal(b.isWriter, false);
    const ra2 = await a.flush();
    assert.ok(ra2.commit);
    assert.match(ra2.message ?? "", /3 connected/);
    const files = readStatusTree(remote, BRANCH);
    for (const n of [700, 701, 710, 711, 712])
      assert.ok(files.has(agentFilePath("edge", uidOf(n))));
    await a.close();
    // The lock is free again: b becomes the writer.
    const rb2 = await b.flush();
    assert.equal(rb2.skipped, undefined);
    assert.equal(b.isWriter, true);
    await b.close();
  });

  test("folder mode: status/ on the config branch, rebuilt on top of new user commits", async () => {
    const w = writer({ mode: "folder", branch: "main", prefix: `${redis.prefix}:folder` });
    await record(w, 900, 2);
    const userHead = git(remote, "rev-parse", "main");
    const r1 = await w.flush();
    assert.ok(r1.commit);
    assert.equal(git(remote, "rev-parse", "main^"), userHead, "on top of the user's commit");
    assert.equal(git(remote, "show", "main:groups/edge/group.yaml").length > 0, true);
    // A user pushes a config change meanwhile.
    work.git("pull", "-q", "--no-rebase", "origin", "main");
    work.write(
      "groups/edge/collector.yaml",
      `${groupFiles("edge")["groups/edge/collector.yaml"]}# tuned\n`,
    );
    const userCommit = work.commit("tune edge");
    work.git("push", "-q", "origin", "main");
    await record(w, 910, 1);
    const r2 = await w.flush();
    assert.ok(r2.commit);
    assert.equal(r2.attempts, 2);
    assert.equal(git(remote, "rev-parse", "main^"), userCommit, "the user's commit is kept as is");
    assert.match(git(remote, "show", "main:groups/edge/collector.yaml"), /# tuned/);
    const files = readStatusTree(remote, "main");
    assert.equal([...files.keys()].filter((p) => p.startsWith("status/agents/")).length, 3);
    await w.close();
  });

  test("nothing was logged as an error", () => {
    assert.deepEqual(
      log.lines.filter((l) => Number(l.level) >= 50),
      [],
    );
  });
});
