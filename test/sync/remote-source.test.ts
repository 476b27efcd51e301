/**
 * A remote repository over smart HTTP (`git http-backend` behind node:http): mirrored into the
 * state directory with no work tree, fetched only when the branch moved, with credentials
 * from a file or a variable, and clear errors for auth, missing branches and empty remotes.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { GitSource } from "../../src/sync/git-source.js";
import { SnapshotReader } from "../../src/sync/read-snapshot.js";
import { deferred } from "../helpers/teardown.js";
import { groupFiles } from "./helpers/fleet.js";
import { GitHttpServer, httpBackendPath } from "./helpers/git-http-server.js";
import { bareRepo, cleanup, TestRepo, tempDir } from "./helpers/git-repo.js";

const defer = deferred();

const skip = httpBackendPath() ? false : "git-http-backend is not installed";

describe("remote Git source over smart HTTP", { skip }, () => {
  let root: string;
  let server: GitHttpServer;
  let work: TestRepo;
  const dirs: string[] = [];
  const stateDir = () => {
    const d = tempDir();
    dirs.push(d);
    return d;
  };

  before(async () => {
    root = tempDir();
    bareRepo(root, "fleet.git");
    bareRepo(root, "empty.git");
    work = new TestRepo();
    work.git("remote", "add", "origin", join(root, "fleet.git"));
    work.writeAll(groupFiles("edge")).commit("first");
    work.git("push", "-q", "origin", "main");
    server = await GitHttpServer.start({ root });
  });
  after(async () => {
    await server.close();
    cleanup(root, work.dir, ...dirs);
  });

  test("clones into <stateDir>/source.git (bare, no work tree) and reads the head", async () => {
    const dir = join(stateDir(), "not", "yet", "there");
    const source = new GitSource({ repo: server.url("fleet.git"), stateDir: dir });
    const head = await source.refresh();
    assert.equal(head.commit, work.head());
    assert.equal(head.fetched, true);
    assert.ok(existsSync(join(dir, "source.git", "objects")));
    assert.ok(!existsSync(join(dir, "source.git", "groups")), "no checkout");
    const read = await new SnapshotReader(source.store, source.root).read(head.commit);
    assert.deepEqual([...read.snapshot.groups.keys()], ["edge"]);
  });

  test("the clone reports its progress (for the terminal)", async () => {
    const events: Array<{ phase: string; loaded: number; total: number }> = [];
    const source = new GitSource({
      repo: server.url("fleet.git"),
      stateDir: stateDir(),
      onProgress: (e) => events.push(e),
    });
    await source.refresh();
    assert.ok(events.length > 0, "progress was reported");
    assert.ok(events.every((e) => typeof e.phase === "string" && e.loaded >= 0));
  });

  test("an idle poll costs one request; a pushed commit is fetched incrementally", async () => {
    const dir = stateDir();
    const packs = () => readdirSync(join(dir, "source.git", "objects", "pack")).sort();
    const source = new GitSource({ repo: server.url("fleet.git"), stateDir: dir });
    await source.refresh();
    const n = server.requests.length;
    const packsBefore = packs();
    const idle = await source.refresh();
    assert.equal(idle.changed, false);
    assert.equal(idle.fetched, false);
    // Protocol v2 ls-refs with a refs/heads/ prefix: the capability GET and one small POST.
    assert.deepEqual(
      server.requests.slice(n).map((r) => `${r.method} ${r.url.replace(/\?.*/, "")}`),
      ["GET /fleet.git/info/refs", "POST /fleet.git/git-upload-pack"],
    );
    assert.deepEqual(packs(), packsBefore, "nothing fetched, nothing written");

    work.writeAll(groupFiles("gateway")).commit("second");
    work.git("push", "-q", "origin", "main");
    const moved = await source.refresh();
    assert.equal(moved.commit, work.head());
    assert.equal(moved.fetched, true);
    assert.equal(moved.historyRewritten, false);
    // Incremental: the new pack holds the new commit's objects only (commit, root tree,
    // groups tree, gateway tree, 2 blobs), not the whole history again.
    const added = packs().filter((p) => p.endsWith(".idx") && !packsBefore.includes(p));
    assert.equal(added.length, 1);
    const idx = readFileSync(join(dir, "source.git", "objects", "pack", added[0] as string));
    const objects = idx.readUInt32BE(8 + 255 * 4); // v2 .idx: fan-out[255] = object count
    assert.equal(objects, 6);
    const read = await new SnapshotReader(source.store, source.root).read(moved.commit);
    assert.deepEqual([...read.snapshot.groups.keys()].sort(), ["edge", "gateway"]);
  });

  test("a force-pushed branch is fetched and reported as a rewritten history", async () => {
    const source = new GitSource({ repo: server.url("fleet.git"), stateDir: stateDir() });
    const before = await source.refresh();
    work.git("reset", "-q", "--hard", "HEAD~1");
    work.write("groups/edge/collector.yaml", "rewritten: true\n");
    const rewritten = work.commit("rewritten");
    work.git("push", "-q", "-f", "origin", "main");
    const head = await source.refresh();
    assert.equal(head.commit, rewritten);
    assert.equal(head.previous, before.commit);
    assert.equal(head.historyRewritten, true);
    const read = await new SnapshotReader(source.store, source.root).read(head.commit);
    assert.equal(
      Buffer.from(read.snapshot.groups.get("edge")?.files.get("collector.yaml") ?? []).toString(),
      "rewritten: true\n",
    );
  });

  test("a missing branch and an empty remote fail with their codes", async () => {
    await assert.rejects(
      new GitSource({
        repo: server.url("fleet.git"),
        branch: "prod",
        stateDir: stateDir(),
      }).refresh(),
      (err: Error & { code?: string; data?: Record<string, unknown> }) => {
        assert.equal(err.code, "SYNC_BRANCH_NOT_FOUND");
        assert.deepEqual(err.data?.available, ["main"]);
        return true;
      },
    );
    await assert.rejects(
      new GitSource({ repo: server.url("empty.git"), stateDir: stateDir() }).refresh(),
      { code: "SYNC_EMPTY_REPOSITORY" },
    );
  });

  test("a remote that accepts the connection and never answers times out (no hang)", async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    defer(async () => {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const { port } = silent.address() as AddressInfo;
    const source = new GitSource({
      repo: `http://127.0.0.1:${port}/fleet.git`,
      stateDir: stateDir(),
      httpTimeoutMs: 200,
    });
    // Without the idle timeout this would hang until the test runner's timeout.
    await assert.rejects(source.refresh(), (err: Error & { code?: string }) => {
      assert.equal(err.code, "SYNC_REMOTE_UNREACHABLE");
      assert.match(err.message, /no response data for 200 ms/);
      return true;
    });
  });

  test("a state directory mirrored from another URL is started over", async () => {
    const dir = stateDir();
    bareRepo(root, "other.git");
    const other = new TestRepo();
    dirs.push(other.dir);
    other.git("remote", "add", "origin", join(root, "other.git"));
    other.writeAll(groupFiles("other")).commit();
    other.git("push", "-q", "origin", "main");
    await new GitSource({ repo: server.url("fleet.git"), stateDir: dir }).refresh();
    const source = new GitSource({ repo: server.url("other.git"), stateDir: dir });
    const head = await source.refresh();
    assert.equal(head.commit, other.head());
    const read = await new SnapshotReader(source.store, source.root).read(head.commit);
    assert.deepEqual([...read.snapshot.groups.keys()], ["other"]);
  });

  test("credentials in the URL, SSH addresses and a missing state directory are refused", () => {
    assert.throws(
      () => new GitSource({ repo: "https://user:secret@example.com/f.git", stateDir: "/tmp/x" }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, "SYNC_INVALID_SOURCE");
        assert.doesNotMatch(err.message, /secret/);
        return true;
      },
    );
    assert.throws(
      () => new GitSource({ repo: "git@github.com:org/fleet.git", stateDir: "/tmp/x" }),
      {
        code: "SYNC_INVALID_SOURCE",
      },
    );
    assert.throws(
      () => new GitSource({ repo: "ssh://git@github.com/org/fleet.git", stateDir: "/tmp/x" }),
      {
        code: "SYNC_INVALID_SOURCE",
      },
    );
    assert.throws(() => new GitSource({ repo: "https://example.com/f.git" }), {
      code: "SYNC_INVALID_SOURCE",
    });
  });
});

describe("remote authentication", { skip }, () => {
  let root: string;
  let server: GitHttpServer;
  const dirs: string[] = [];
  const TOKEN = "s3cr3t-token";

  before(async () => {
    root = tempDir();
    bareRepo(root, "fleet.git");
    const work = new TestRepo();
    dirs.push(work.dir);
    work.git("remote", "add", "origin", join(root, "fleet.git"));
    work.writeAll(groupFiles("edge")).commit();
    work.git("push", "-q", "origin", "main");
    server = await GitHttpServer.start({
      root,
      token: TOKEN,
      basic: { username: "ci", password: "pw" },
    });
  });
  after(async () => {
    await server.close();
    cleanup(root, ...dirs);
  });

  const state = () => {
    const d = tempDir();
    dirs.push(d);
    return d;
  };

  test("without credentials: 401 → SYNC_AUTH_FAILED saying authentication is required", async () => {
    const source = new GitSource({ repo: server.url("fleet.git"), stateDir: state() });
    await assert.rejects(
      source.refresh(),
      (err: Error & { code?: string; data?: Record<string, unknown> }) => {
        assert.equal(err.code, "SYNC_AUTH_FAILED");
        assert.equal(err.data?.statusCode, 401);
        assert.equal(err.data?.withCredentials, false);
        assert.match(err.message, /requires authentication/);
        return true;
      },
    );
  });

  test("a token from a file works (basic with the token as password, or bearer); a wrong one is refused", async () => {
    const dir = state();
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, `${TOKEN}\n`);
    const ok = new GitSource({
      repo: server.url("fleet.git"),
      stateDir: dir,
      auth: { type: "token", token: { file: tokenFile } },
    });
    assert.ok((await ok.refresh()).commit);
    const bearer = new GitSource({
      repo: server.url("fleet.git"),
      stateDir: state(),
      auth: { type: "token", token: { file: tokenFile }, scheme: "bearer" },
    });
    assert.ok((await bearer.refresh()).commit);

    writeFileSync(tokenFile, "wrong\n");
    const rotated = await ok.refresh().catch((e: unknown) => e);
    assert.equal(
      (rotated as { code?: string }).code,
      "SYNC_AUTH_FAILED",
      "the file is re-read each time",
    );
    assert.equal((rotated as { data?: Record<string, unknown> }).data?.withCredentials, true);
    assert.doesNotMatch(JSON.stringify(rotated), /wrong|s3cr3t/);
  });

  test("basic credentials from the injected environment; a missing variable is reported by name", async () => {
    const auth = {
      type: "basic" as const,
      username: "ci",
      password: { env: "FLEET_GIT_PASSWORD" },
    };
    const good = new GitSource({
      repo: server.url("fleet.git"),
      stateDir: state(),
      auth,
      env: { FLEET_GIT_PASSWORD: "pw" },
    });
    assert.ok((await good.refresh()).commit);
    const missing = new GitSource({
      repo: server.url("fleet.git"),
      stateDir: state(),
      auth,
      env: {},
    });
    await assert.rejects(missing.refresh(), (err: Error & { code?: string }) => {
      assert.equal(err.code, "SYNC_CREDENTIALS_UNAVAILABLE");
      assert.match(err.message, /FLEET_GIT_PASSWORD/);
      return true;
    });
    const noFile = new GitSource({
      repo: server.url("fleet.git"),
      stateDir: state(),
      auth: { type: "token", token: { file: "/nonexistent/token" } },
    });
    await assert.rejects(noFile.refresh(), { code: "SYNC_CREDENTIALS_UNAVAILABLE" });
  });
});
