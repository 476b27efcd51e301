/**
 * Git fetched once for all replicas (src/service/git-duty.ts with src/sync's CommitExchange):
 * three FleetSyncs on one Redis and one remote served over smart HTTP, which counts pack
 * transfers. Only the Git lease holder asks the remote; the others take each head's objects
 * from Redis, so M commits cost M fetches, and every replica serves each commit (a revert to
 * an older blob too). A holder that leaves is succeeded by a replica that fetches itself
 * from then on. A commit over `maxShareBytes` is announced without objects: every replica
 * fetches it, and the holder says why. A webhook that reaches a follower makes the holder
 * check at once.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { Redis } from "ioredis";
import { GitDuty } from "../../src/service/git-duty.js";
import { FleetSync } from "../../src/sync/fleet-sync.js";
import { capturedLogger } from "../helpers/logger.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { collectorYaml, fleetFiles, groupFiles } from "../sync/helpers/fleet.js";
import { GitHttpServer, httpBackendPath } from "../sync/helpers/git-http-server.js";
import { bareRepo, cleanup, TestRepo, tempDir } from "../sync/helpers/git-repo.js";
import { ValidationCache, validateSnapshot } from "../sync/helpers/validator.js";

const defer = deferred();
const WAIT = { timeoutMs: 60_000 };
const dirs: string[] = [];
after(() => cleanup(...dirs));

interface Replica {
  duty: GitDuty;
  sync: FleetSync;
  stop(): Promise<void>;
}

async function setup(t: { after: (fn: () => Promise<void>) => void }) {
  const root = tempDir();
  dirs.push(root);
  const remote = bareRepo(root, "fleet.git");
  const work = new TestRepo();
  dirs.push(work.dir);
  work.git("remote", "add", "origin", remote);
  work.writeAll({ ...fleetFiles(3), ...groupFiles("edge", { label: "v1" }) });
  work.commit("v1");
  work.git("push", "-q", "origin", "main");
  const git = await GitHttpServer.start({ root });
  const redis = await testRedis();
  t.after(async () => {
    await git.close();
    await redis.close();
  });
  const push = (label: string) => {
    work.write("groups/edge/collector.yaml", collectorYaml(label)).commit(label);
    work.git("push", "-q", "origin", "main");
    return work.head();
  };
  return { git, redis, push, url: git.url("fleet.git") };
}

async function replica(
  url: string,
  prefix: string,
  log = capturedLogger(),
  maxShareBytes?: number,
  pollIntervalMs = 100,
): Promise<Replica> {
  const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  const stateDir = tempDir();
  dirs.push(stateDir);
  const duty = new GitDuty({
    redis,
    prefix,
    ttlMs: 5_000,
    logger: log.logger,
    ...(maxShareBytes ? { maxShareBytes } : {}),
  });
  const cache = new ValidationCache();
  const sync = new FleetSync({
    repo: url,
    stateDir,
    pollIntervalMs,
    pollWhen: duty.polling,
    exchange: duty,
    validate: (s) => validateSnapshot(s, { cache }),
  });
  await duty.start(sync);
  await sync.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await duty.close();
    await sync.stop();
    redis.disconnect();
  };
  defer(stop);
  return { duty, sync, stop };
}

const serving = (replicas: Replica[], commit: string) =>
  waitFor(
    `every replica serves ${commit.slice(0, 8)}`,
    () => replicas.every((r) => r.sync.current?.commit === commit),
    { timeoutMs: 60_000 },
  );

describe("Git fetched once for all replicas", { skip: !httpBackendPath() }, () => {
  test("three replicas, four commits: four fetches; a new holder fetches from then on", async (t) => {
    const { git, redis, push, url } = await setup(t);
    const replicas: Replica[] = [];
    for (let i = 0; i < 3; i++) replicas.push(await replica(url, redis.prefix));
    const head1 = (await waitFor("a head", () => replicas[0]?.sync.status.head, WAIT)) as string;
    await serving(replicas, head1);
    assert.equal(git.fetches, 1, "the first commit: one fetch for three replicas");
    const holders = () => replicas.filter((r) => r.duty.lease.held);
    assert.equal(holders().length, 1);

    await serving(replicas, push("v2"));
    assert.equal(git.fetches, 2, "two commits, two fetches");
    // Back to v1's file: an object of an older commit, still shared.
    await serving(replicas, push("v1"));
    assert.equal(git.fetches, 3);
    assert.deepEqual(
      replicas.map((r) => r.sync.checks > 0),
      replicas.map((r) => r.duty.lease.held),
      "only the holder ever read the remote",
    );
    assert.equal(
      replicas.find((r) => !r.duty.lease.held)?.sync.current?.groups.get("edge")?.configHash,
      holders()[0]?.sync.current?.groups.get("edge")?.configHash,
    );

    // The holder leaves; a follower takes the lease, and with it the fetching.
    const leaving = holders()[0] as Replica;
    await leaving.stop();
    const rest = replicas.filter((r) => r !== leaving);
    await waitFor("a new holder", () => rest.some((r) => r.duty.lease.held), WAIT);
    await serving(rest, push("v4"));
    assert.equal(git.fetches, 4, "the new holder fetched the fourth commit, once");
  });

  test("a commit over the bound is fetched by every replica, with the reason logged", async (t) => {
    const { git, redis, push, url } = await setup(t);
    const log = capturedLogger();
    const replicas: Replica[] = [];
    for (let i = 0; i < 3; i++) replicas.push(await replica(url, redis.prefix, log, 64));
    const head1 = (await waitFor("a head", () => replicas[0]?.sync.status.head, WAIT)) as string;
    await serving(replicas, head1);
    const before = git.fetches;
    await serving(replicas, push("v2"));
    assert.equal(git.fetches - before, 3, "not shared: each replica fetched it");
    assert.ok(
      log.lines.some((l) => l.code === "GIT_SHARE_TOO_LARGE"),
      "the holder logged GIT_SHARE_TOO_LARGE",
    );
  });

  test("a webhook on a follower makes the holder fetch at once", async (t) => {
    const { redis, push, url } = await setup(t);
    const replicas: Replica[] = [];
    // No polling within the test: only the webhook can bring the new commit.
    for (let i = 0; i < 2; i++)
      replicas.push(await replica(url, redis.prefix, undefined, undefined, 3_600_000));
    const head1 = (await waitFor("a head", () => replicas[0]?.sync.status.head, WAIT)) as string;
    await serving(replicas, head1);
    const head2 = push("v2");
    const follower = replicas.find((r) => !r.duty.lease.held) as Replica;
    follower.duty.poke();
    await serving(replicas, head2);
  });
});
