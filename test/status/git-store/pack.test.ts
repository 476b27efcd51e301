/**
 * Packing the status branch's loose objects without the git command line: the packs and
 * indexes the writer makes pass `git fsck --full --strict` and `git verify-pack`, every commit
 * still reads (through git and through the writer), older versions are stored as deltas, the
 * loose copies are gone, and packs are merged once there are too many.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { StatusWriter } from "../../../src/status/status-writer.js";
import { capturedLogger } from "../../helpers/logger.js";
import { type TestRedis, testRedis } from "../../helpers/redis.js";
import { deferred } from "../../helpers/teardown.js";
import { groupFiles } from "../../sync/helpers/fleet.js";
import { bareRepo, cleanup, TestRepo, tempDir } from "../../sync/helpers/git-repo.js";
import { checkHistory, commitCount, fakeAgent, git, readStatusTree, uidOf } from "../helpers.js";

const defer = deferred();

const BRANCH = "opamp-status";
const HASH = "ab".repeat(32);

describe("packing the status branch", () => {
  let redis: TestRedis;
  let root: string;
  let gitdir: string;
  let writer: StatusWriter;
  const log = capturedLogger("warn");
  const packDir = () => join(gitdir, "objects", "pack");
  const ourPacks = () => readdirSync(packDir()).filter((n) => n.endsWith(".pack"));

  /** Loose objects among those the status branch reaches. */
  const looseReachable = () =>
    git(gitdir, "rev-list", "--objects", BRANCH)
      .split("\n")
      .map((l) => l.slice(0, 40))
      .filter((oid) => existsSync(join(gitdir, "objects", oid.slice(0, 2), oid.slice(2))));

  async function churn(flushes: number, agents: number, changed: number, seed: number) {
    for (let f = 0; f < flushes; f++) {
      for (let i = 0; i < changed; i++) {
        const n = (seed + f * changed + i) % agents;
        void writer.recordAgent(
          fakeAgent(uidOf(n), {
            reportedHash: HASH,
            healthy: (f + seed) % 2 === 0,
            lastError: `flush ${seed + f}`,
            now: 1_750_000_000_000 + (seed + f) * 1000,
          }),
        );
      }
      await writer.settled();
      assert.ok((await writer.flush()).commit);
    }
  }

  before(async () => {
    redis = await testRedis();
    root = tempDir();
    gitdir = bareRepo(root, "fleet.git");
    const work = new TestRepo();
    work.git("remote", "add", "origin", gitdir);
    work.writeAll(groupFiles("edge")).commit("config");
    work.git("push", "-q", "origin", "main");
    cleanup(work.dir);
    writer = new StatusWriter({
      redis: redis.redis,
      prefix: redis.prefix,
      repo: gitdir,
      intervalMs: 3_600_000,
      placement: () => ({ group: "edge", desiredHash: HASH, desiredCommit: "cd".repeat(20) }),
      packAfterObjects: false,
      packer: { maxPacks: 2 },
      logger: log.logger,
    });
    for (let i = 0; i < 300; i++)
      void writer.recordAgent(fakeAgent(uidOf(i), { reportedHash: HASH }));
    await writer.settled();
    await writer.flush();
  });
  after(async () => {
    await writer.close({ flush: false });
    await redis.close();
    cleanup(root);
  });

  test("loose objects become one verified pack with deltas; git reads every commit", async () => {
    await churn(20, 300, 30, 0);
    const loose = looseReachable();
    assert.ok(loose.length > 600, `${loose.length} loose objects before`);
    const looseBytes = loose.reduce(
      (n, oid) => n + statSync(join(gitdir, "objects", oid.slice(0, 2), oid.slice(2))).size,
      0,
    );
    const r = await writer.pack();
    assert.ok(r);
    assert.ok(r.objects >= loose.length, `${r.objects} objects packed`);
    assert.ok(r.deltas > 20, `${r.deltas} deltas`);
    assert.ok(r.packBytes < looseBytes / 2, `pack ${r.packBytes} B vs loose ${looseBytes} B`);
    assert.deepEqual(looseReachable(), [], "no loose copy left");
    git(gitdir, "fsck", "--full", "--strict", "--no-dangling");
    for (const p of ourPacks())
      git(gitdir, "verify-pack", join(packDir(), p.replace(/\.pack$/, ".idx")));
    assert.equal(checkHistory(gitdir, BRANCH), 21);
  });

  test("flushes go on from packed trees; too many packs are merged", async () => {
    for (let round = 0; round < 3; round++) {
      await churn(3, 300, 40, 100 + round * 10);
      await writer.pack();
    }
    assert.ok(ourPacks().length <= 3, `${ourPacks().length} packs`);
    git(gitdir, "fsck", "--full", "--strict", "--no-dangling");
    for (const p of ourPacks())
      git(gitdir, "verify-pack", join(packDir(), p.replace(/\.pack$/, ".idx")));
    assert.equal(checkHistory(gitdir, BRANCH), commitCount(gitdir, BRANCH));
    assert.equal(readStatusTree(gitdir, BRANCH).size, 301);
    assert.deepEqual(looseReachable(), []);
    assert.deepEqual(
      log.lines.filter((l) => Number(l.level) >= 50),
      [],
    );
  });

  test("a flush of thousands of new files writes them straight into a verified pack", async () => {
    const dir = tempDir();
    const big = bareRepo(dir, "big.git");
    const w = new StatusWriter({
      redis: redis.redis,
      prefix: `${redis.prefix}:big`,
      repo: big,
      intervalMs: 3_600_000,
      placement: () => ({ group: "edge", desiredHash: HASH, desiredCommit: "cd".repeat(20) }),
      logger: log.logger,
    });
    defer(async () => {
      await w.close({ flush: false });
      cleanup(dir);
    });
    for (let i = 0; i < 1500; i++) void w.recordAgent(fakeAgent(uidOf(i), { reportedHash: HASH }));
    await w.settled();
    const r = await w.flush();
    assert.ok(r.commit);
    assert.equal(r.files, 1501);
    const loose = Number(/^count: (\d+)$/m.exec(git(big, "count-objects", "-v"))?.[1]);
    assert.ok(loose < 10, `${loose} loose objects: the files are in a pack`);
    git(big, "fsck", "--full", "--strict", "--no-dangling");
    const packs = readdirSync(join(big, "objects", "pack")).filter((n) => n.endsWith(".idx"));
    for (const p of packs) git(big, "verify-pack", join(big, "objects", "pack", p));
    assert.equal(readStatusTree(big, BRANCH).size, 1501);
  });
});
