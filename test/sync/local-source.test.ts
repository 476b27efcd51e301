/**
 * A local repository as the source: the branch head's tree is read from the object store
 * (no checkout), a sub-folder can be watched, and bad sources fail with clear codes.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { GitSource } from "../../src/sync/git-source.js";
import { SnapshotReader } from "../../src/sync/read-snapshot.js";
import { groupFiles } from "./helpers/fleet.js";
import { cleanup, git, TestRepo, tempDir } from "./helpers/git-repo.js";

const text = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString() : undefined);
const dirs: string[] = [];
after(() => cleanup(...dirs));

function repo(): TestRepo {
  const r = new TestRepo();
  dirs.push(r.dir);
  return r;
}

async function readHead(source: GitSource) {
  const head = await source.refresh();
  return new SnapshotReader(source.store, source.root).read(head.commit);
}

describe("local Git source", () => {
  test("reads fleet.yaml, group folders and their files from the branch head, not the work tree", async () => {
    const r = repo();
    r.write("fleet.yaml", "heartbeatInterval: 30s\n")
      .writeAll(groupFiles("edge"))
      .writeAll(groupFiles("gateway"))
      .write("groups/gateway/extra.json", "{}")
      .write("README.md", "not read");
    const commit = r.commit("fleet");
    // Uncommitted work-tree changes must not be seen.
    r.write("groups/edge/collector.yaml", "dirty: true\n").write("groups/new/group.yaml", "x: 1\n");

    const source = new GitSource({ repo: r.dir });
    const head = await source.refresh();
    assert.equal(head.commit, commit);
    assert.equal(head.changed, true);
    const read = await new SnapshotReader(source.store, source.root).read(commit);
    assert.equal(text(read.snapshot.fleet), "heartbeatInterval: 30s\n");
    assert.deepEqual([...read.snapshot.groups.keys()].sort(), ["edge", "gateway"]);
    const edge = read.snapshot.groups.get("edge");
    assert.match(text(edge?.groupYaml) ?? "", /service.name: "edge"/);
    assert.deepEqual([...(edge?.files.keys() ?? [])], ["collector.yaml"]);
    assert.doesNotMatch(text(edge?.files.get("collector.yaml")) ?? "", /dirty/);
    assert.deepEqual([...(read.snapshot.groups.get("gateway")?.files.keys() ?? [])].sort(), [
      "collector.yaml",
      "extra.json",
    ]);
    assert.equal(edge?.treeId, r.git("rev-parse", `${commit}:groups/edge`));
    assert.deepEqual(read.findings, []);
    assert.equal(text(await read.snapshot.readFile("README.md")), "not read");
    assert.equal(await read.snapshot.readFile("nope.json"), undefined);
  });

  test("a bare repository and a branch other than main", async () => {
    const r = repo();
    r.writeAll(groupFiles("edge")).commit();
    r.git("checkout", "-q", "-b", "fleet/prod");
    r.writeAll(groupFiles("prod")).commit();
    const parent = tempDir();
    dirs.push(parent);
    const bare = `${parent}/bare.git`;
    git(r.dir, "clone", "-q", "--bare", r.dir, bare);
    const read = await readHead(new GitSource({ repo: bare, branch: "fleet/prod" }));
    assert.deepEqual([...read.snapshot.groups.keys()].sort(), ["edge", "prod"]);
  });

  test("--path watches a sub-folder, as Flux does; files outside it are invisible", async () => {
    const r = repo();
    r.write("fleet.yaml", "outside: true\n");
    for (const [p, c] of Object.entries(groupFiles("edge"))) r.write(`deploy/fleet/${p}`, c);
    r.write("deploy/fleet/schemas/custom.json", '{"type":"object"}');
    r.commit();
    const source = new GitSource({ repo: r.dir, path: "./deploy//fleet/" });
    assert.equal(source.root, "deploy/fleet");
    const read = await readHead(source);
    assert.equal(read.snapshot.fleet, undefined);
    assert.deepEqual([...read.snapshot.groups.keys()], ["edge"]);
    assert.equal(text(await read.snapshot.readFile("schemas/custom.json")), '{"type":"object"}');
    assert.equal(await read.snapshot.readFile("fleet.yaml"), undefined);
    await assert.rejects(read.snapshot.readFile("../fleet.yaml"), { code: "SYNC_UNSAFE_PATH" });
    await assert.rejects(read.snapshot.readFile("/etc/passwd"), { code: "SYNC_UNSAFE_PATH" });
  });

  test("a watched path missing from the commit is a finding (the commit stalls)", async () => {
    const r = repo();
    r.writeAll(groupFiles("edge")).commit();
    const read = await readHead(new GitSource({ repo: r.dir, path: "deploy/fleet" }));
    assert.equal(read.snapshot.groups.size, 0);
    assert.equal(read.findings[0]?.code, "SYNC_PATH_NOT_FOUND");
    assert.equal(read.findings[0]?.severity, "error");
  });

  test("'..' or an absolute --path is refused before any I/O", () => {
    for (const path of ["../other", "fleet/../../x", "/etc", "a\\b"])
      assert.throws(() => new GitSource({ repo: "/nowhere", path }), { code: "SYNC_UNSAFE_PATH" });
  });

  test("a symlink in a group folder is not followed and is reported; sub-folders are ignored", async () => {
    const r = repo();
    r.writeAll(groupFiles("edge"))
      .symlink("groups/edge/secrets.yaml", "/etc/passwd")
      .symlink("groups/linked", "../outside")
      .write("groups/edge/conf.d/extra.yaml", "a: 1\n")
      .write("schemas/real.json", "{}")
      .symlink("schemas/link.json", "real.json")
      .commit();
    const read = await readHead(new GitSource({ repo: r.dir }));
    const edge = read.snapshot.groups.get("edge");
    assert.deepEqual([...(edge?.files.keys() ?? [])], ["collector.yaml"]);
    assert.equal(read.snapshot.groups.has("linked"), false);
    const byFile = new Map(read.findings.map((f) => [f.file, f]));
    assert.equal(byFile.get("groups/edge/secrets.yaml")?.code, "SYNC_SYMLINK_NOT_FOLLOWED");
    assert.equal(byFile.get("groups/edge/secrets.yaml")?.severity, "error");
    assert.match(byFile.get("groups/edge/secrets.yaml")?.message ?? "", /symbolic link/);
    assert.equal(byFile.get("groups/linked")?.code, "SYNC_SYMLINK_NOT_FOLLOWED");
    assert.equal(byFile.get("groups/edge/conf.d")?.code, "SYNC_SUBFOLDER_IGNORED");
    assert.equal(byFile.get("groups/edge/conf.d")?.severity, "warning");
    assert.equal(await read.snapshot.readFile("schemas/link.json"), undefined);
    assert.equal(text(await read.snapshot.readFile("schemas/real.json")), "{}");
  });

  test("missing branch, empty repository, not a repository: errors with codes", async () => {
    const r = repo();
    await assert.rejects(
      new GitSource({ repo: r.dir }).refresh(),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, "SYNC_EMPTY_REPOSITORY");
        assert.match(err.message, /no commits yet/);
        return true;
      },
    );
    r.writeAll(groupFiles("edge")).commit();
    await assert.rejects(
      new GitSource({ repo: r.dir, branch: "prod" }).refresh(),
      (err: Error & { code?: string; data?: Record<string, unknown> }) => {
        assert.equal(err.code, "SYNC_BRANCH_NOT_FOUND");
        assert.match(err.message, /branch "prod" does not exist.*branches: main/);
        assert.deepEqual(err.data?.available, ["main"]);
        return true;
      },
    );
    const plain = tempDir();
    dirs.push(plain);
    await assert.rejects(new GitSource({ repo: plain }).refresh(), {
      code: "SYNC_NOT_A_REPOSITORY",
    });
    assert.throws(() => new GitSource({ repo: r.dir, branch: "bad..name" }), {
      code: "SYNC_INVALID_SOURCE",
    });
  });

  test("a rewritten history (reset + new commit) is read and reported, never an error", async () => {
    const r = repo();
    r.writeAll(groupFiles("edge")).commit("one");
    const source = new GitSource({ repo: r.dir });
    const first = await source.refresh();
    assert.equal(first.historyRewritten, undefined);
    r.write("groups/edge/collector.yaml", "a: 1\n");
    const second = r.commit("two");
    const ff = await source.refresh();
    assert.equal(ff.commit, second);
    assert.equal(ff.historyRewritten, false);
    r.git("reset", "-q", "--hard", first.commit);
    r.write("groups/edge/collector.yaml", "b: 2\n");
    const rewritten = r.commit("rewritten");
    const update = await source.refresh();
    assert.equal(update.commit, rewritten);
    assert.equal(update.previous, second);
    assert.equal(update.historyRewritten, true);
    const same = await source.refresh();
    assert.equal(same.changed, false);
  });

  test("packed objects and refs (after git gc) read the same", async () => {
    const r = repo();
    r.writeAll(groupFiles("edge")).writeAll(groupFiles("gateway")).commit();
    const before = await readHead(new GitSource({ repo: r.dir }));
    r.git("gc", "-q", "--aggressive");
    const after = await readHead(new GitSource({ repo: r.dir }));
    assert.deepEqual([...after.snapshot.groups.keys()], [...before.snapshot.groups.keys()]);
    assert.equal(
      text(after.snapshot.groups.get("edge")?.files.get("collector.yaml")),
      text(before.snapshot.groups.get("edge")?.files.get("collector.yaml")),
    );
  });
});
