/**
 * Packs fetched into the private clone of a remote target (`<stateDir>/status.git`): every
 * fetch by isomorphic-git leaves one more pack, and they are adopted and merged with the
 * writer's own packs, so their number stays bounded however often the branch moves; the
 * merged packs pass `git fsck --full` and the branch's whole history reads. Packs that share
 * objects (a fetched pack holding what the writer's packs hold too) merge into one copy each.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { OwnPacks } from "../../../src/status/git-store/own-packs.js";
import { StatusWriter } from "../../../src/status/status-writer.js";
import { RemoteTarget } from "../../../src/status/target-remote.js";
import { capturedLogger } from "../../helpers/logger.js";
import { type TestRedis, testRedis } from "../../helpers/redis.js";
import { deferred } from "../../helpers/teardown.js";
import { groupFiles } from "../../sync/helpers/fleet.js";
import { GitHttpServer, httpBackendPath } from "../../sync/helpers/git-http-server.js";
import { bareRepo, cleanup, TestRepo, tempDir } from "../../sync/helpers/git-repo.js";
import { fakeAgent, git, gitBuffer, readStatusTree, uidOf } from "../helpers.js";

const skip = httpBackendPath() ? false : "git-http-backend is not installed";
const BRANCH = "opamp-status";
const HASH = "ab".repeat(32);
const BOUND = 8;
const defer = deferred();

const packsOf = (gitdir: string) =>
  readdirSync(join(gitdir, "objects", "pack")).filter((n) => n.endsWith(".pack"));

/** Every object the branch reaches is in the store and reads (through git). */
function assertHistoryReads(gitdir: string, ref: string, commits: number): void {
  git(gitdir, "fsck", "--full", "--no-dangling");
  const objects = git(gitdir, "rev-list", "--objects", ref)
    .split("\n")
    .map((l) => l.slice(0, 40));
  const check = gitBuffer(gitdir, ["cat-file", "--batch-check"], `${objects.join("\n")}\n`)
    .toString()
    .trim()
    .split("\n");
  assert.equal(check.length, objects.length);
  assert.deepEqual(
    check.filter((l) => l.endsWith("missing")),
    [],
  );
  assert.equal(Number(git(gitdir, "rev-list", "--count", ref)), commits);
  // Every blob's content, not just its presence.
  gitBuffer(gitdir, ["cat-file", "--batch"], `${objects.join("\n")}\n`);
}

describe("packs fetched into a remote target's store", { skip }, () => {
  let root: string;
  let remote: string;
  let server: GitHttpServer;
  let other: TestRepo;
  const dirs: string[] = [];

  /** Someone else commits to the status branch and pushes. */
  const theyPush = (round: number) => {
    // One file flips between two contents (objects the store has already are sent again),
    // another grows (deltas in the fetched packs).
    other.write("flip.txt", round % 2 === 0 ? "even\n" : "odd\n");
    other.write("log.txt", `${readFileSync(join(other.dir, "log.txt"), "utf8")}round ${round}\n`);
    other.write(`notes/${round % 5}.txt`, `note ${round}\n`.repeat(50));
    const c = other.commit(`round ${round}`);
    other.git("push", "-q", remote, BRANCH);
    return c;
  };

  before(async () => {
    root = tempDir();
    remote = bareRepo(root, "fleet.git");
    other = new TestRepo();
    dirs.push(other.dir);
    other.writeAll(groupFiles("edge")).commit("config");
    other.git("push", "-q", remote, "main");
    other.git("checkout", "-q", "--orphan", BRANCH);
    other.git("rm", "-rq", "--cached", ".");
    other.remove("groups");
    other.write("log.txt", "start\n").commit("start");
    other.git("push", "-q", remote, BRANCH);
    server = await GitHttpServer.start({ root });
  });
  after(async () => {
    await server.close();
    cleanup(root, ...dirs);
  });

  test("30 fetches leave at most 8 packs; git fsck finds nothing missing", async () => {
    const stateDir = tempDir();
    dirs.push(stateDir);
    const gitdir = join(stateDir, "status.git");
    const target = new RemoteTarget({
      url: server.url("fleet.git"),
      gitdir,
      branch: BRANCH,
      mustExist: false,
    });
    await target.open();
    assert.equal(await target.base(), git(remote, "rev-parse", BRANCH));
    for (let round = 0; round < 30; round++) {
      const theirs = theyPush(round);
      target.invalidate();
      assert.equal(await target.base(), theirs);
      assert.ok(packsOf(gitdir).length <= BOUND, `round ${round}: ${packsOf(gitdir).length} packs`);
    }
    assert.ok(packsOf(gitdir).length <= BOUND, `${packsOf(gitdir).length} packs`);
    assertHistoryReads(gitdir, BRANCH, 31);
    // Every pack left is in the writer's list, so the packer merges it too.
    const own = new Set(await new OwnPacks(gitdir).list());
    for (const p of packsOf(gitdir)) assert.ok(own.has(p.slice(0, -5)), p);
  });

  test("a writer whose pushes are rejected 30 times keeps at most 8 packs", async () => {
    const redis: TestRedis = await testRedis();
    defer(() => redis.close());
    const stateDir = tempDir();
    dirs.push(stateDir);
    const log = capturedLogger("warn");
    const w = new StatusWriter({
      redis: redis.redis,
      prefix: redis.prefix,
      repo: server.url("fleet.git"),
      stateDir,
      intervalMs: 3_600_000,
      placement: () => ({ group: "edge", desiredHash: HASH, desiredCommit: "cd".repeat(20) }),
      packAfterObjects: 20,
      logger: log.logger,
    });
    defer(() => w.close({ flush: false }));
    // The branch has their files; the writer adds status/ next to them.
    let commits = Number(git(remote, "rev-list", "--count", BRANCH));
    for (let round = 0; round < 30; round++) {
      other.git("pull", "-q", "--ff-only", remote, BRANCH);
      const theirs = theyPush(100 + round);
      commits++;
      for (let i = 0; i < 5; i++)
        void w.recordAgent(
          fakeAgent(uidOf((round * 3 + i) % 40), {
            reportedHash: HASH,
            lastError: `round ${round}`,
            healthy: false,
          }),
        );
      await w.settled();
      const r = await w.flush();
      assert.ok(r.commit, `round ${round}`);
      commits++;
      if (round > 0) assert.equal(r.attempts, 2, `round ${round}: rejected once`);
      assert.equal(git(remote, "rev-parse", `${BRANCH}^`), theirs);
      const packs = packsOf(w.target.gitdir).length;
      assert.ok(packs <= BOUND, `round ${round}: ${packs} packs`);
    }
    await w.pack();
    const gitdir = w.target.gitdir;
    assert.ok(packsOf(gitdir).length <= BOUND, `${packsOf(gitdir).length} packs`);
    assert.equal(git(gitdir, "rev-parse", BRANCH), git(remote, "rev-parse", BRANCH));
    assertHistoryReads(gitdir, BRANCH, commits);
    assert.equal(readStatusTree(gitdir, BRANCH).size, readStatusTree(remote, BRANCH).size);
    assert.deepEqual(
      log.lines.filter((l) => Number(l.level) >= 50),
      [],
    );
  });
});

describe("merging packs that share objects", () => {
  test("each object is kept once; deltas against a dropped copy point at the kept one", async () => {
    const dir = tempDir();
    defer(() => cleanup(dir));
    const work = new TestRepo();
    const src = join(dir, "src.git");
    for (let i = 0; i < 12; i++) {
      work.write("big.txt", `${"line\n".repeat(400)}version ${i}\n`);
      work.write(`f${i % 3}.txt`, `${"x".repeat(2000)}${i}\n`);
      work.commit(`c${i}`);
    }
    const store = bareRepo(dir, "store.git");
    work.git("push", "-q", store, "main");
    work.git("clone", "-q", "--bare", store, src);
    cleanup(work.dir);
    const ids = (...args: string[]) => `${git(src, "rev-list", "--objects", ...args)}\n`;
    // Two packs made by git: the newest commit's objects (whole), and the whole history,
    // where older versions are deltas against those newest ones (copies dropped in merging).
    const pack = (input: string) =>
      execFileSync(
        "git",
        ["--git-dir", src, "pack-objects", "--delta-base-offset", "-q", join(dir, "p")],
        {
          input,
          encoding: "utf8",
        },
      ).trim();
    const a = pack(ids("-n", "1", "main"));
    const b = pack(ids("main"));
    // The store keeps only these two packs.
    git(store, "repack", "-a", "-d", "-q");
    const packDir = join(store, "objects", "pack");
    for (const n of readdirSync(packDir)) cleanup(join(packDir, n));
    for (const sum of [a, b])
      for (const ext of ["pack", "idx"])
        renameSync(join(dir, `p-${sum}.${ext}`), join(packDir, `pack-${sum}.${ext}`));
    assert.equal(packsOf(store).length, 2);
    const own = new OwnPacks(store);
    assert.equal(await own.adopt(), 2);
    assert.equal(await own.merge(1), 2);
    assert.equal(packsOf(store).length, 1);
    const idx = readdirSync(packDir).find((n) => n.endsWith(".idx")) as string;
    const verify = git(store, "verify-pack", "-v", join(packDir, idx));
    assert.match(verify, /: ok$/m);
    assert.equal(
      Number(/^non delta: (\d+)/m.exec(verify)?.[1] ?? 0) +
        [...verify.matchAll(/^chain length = \d+: (\d+) objects?$/gm)].reduce(
          (n, m) => n + Number(m[1]),
          0,
        ),
      ids("main").trim().split("\n").length,
      "each object once",
    );
    assertHistoryReads(store, "main", 12);
    git(store, "fsck", "--full", "--strict", "--no-dangling");
  });
});
