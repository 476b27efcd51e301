/**
 * The pack of a status push (src/status/push-pack.ts), with Git as the oracle: the objects a
 * commit adds to its base are what `git rev-list --objects` lists, gitlinks are left out,
 * and the pack is one `git index-pack` reads whole, every object with its content.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ObjectWriter } from "../../src/status/git-store/objects.js";
import { buildPushPack, newObjects } from "../../src/status/push-pack.js";
import { bareRepo, cleanup, git, TestRepo, tempDir } from "../sync/helpers/git-repo.js";

describe("the pack a status push sends", () => {
  const repo = new TestRepo();
  const root = tempDir();
  after(() => cleanup(repo.dir, root));

  const base = repo
    .writeAll({
      "status/agents/edge/a.yaml": "a: 1\n",
      "status/agents/edge/b.yaml": "b: 1\n",
      "status/agents/core/c.yaml": "c: 1\n",
      "status/fleet.yaml": "agents: 3\n",
    })
    .commit("base");
  repo.write("status/agents/edge/a.yaml", "a: 2\n");
  repo.write("status/agents/edge/new.yaml", "new: 1\n");
  repo.remove("status/agents/edge/b.yaml");
  // A gitlink (a submodule's commit), staged by hand: `git add -A` would drop it.
  repo.git("add", "-A");
  repo.git("update-index", "--add", "--cacheinfo", `160000,${"1".repeat(40)},vendor/module`);
  repo.git("commit", "-q", "-m", "tip");
  const tip = repo.head();
  const objects = new ObjectWriter(join(repo.dir, ".git"));

  test("holds what Git lists as new, and no gitlink", async () => {
    const ours = await newObjects(objects, tip, base);
    const gits = git(repo.dir, "rev-list", "--objects", tip, `^${base}`)
      .split("\n")
      .map((l) => l.split(" ")[0] as string)
      .filter((oid) => oid !== "");
    assert.deepEqual([...ours.keys()].sort(), gits.sort());
    assert.ok(!ours.has("1".repeat(40)), "a gitlink's commit is not sent");
    assert.equal(ours.get(tip), "commit");
    // Without a base, everything the commit reaches.
    const all = await newObjects(objects, base, undefined);
    const gitsAll = git(repo.dir, "rev-list", "--objects", base).split("\n").filter(Boolean);
    assert.equal(all.size, gitsAll.length);
  });

  test("is a pack Git reads whole, with each object's content", async () => {
    const content = Buffer.from("a: 2\n");
    const blob = git(repo.dir, "rev-parse", `${tip}:status/agents/edge/a.yaml`);
    const pack = Buffer.concat(await buildPushPack(objects, tip, base, new Map([[blob, content]])));
    const into = bareRepo(root, "into.git");
    execFileSync("git", ["index-pack", "--stdin"], { cwd: into, input: pack });
    const wanted = await newObjects(objects, tip, base);
    const listed = execFileSync("git", ["cat-file", "--batch-check"], {
      cwd: into,
      input: `${[...wanted.keys()].join("\n")}\n`,
    }).toString();
    assert.doesNotMatch(listed, /missing/);
    assert.equal(listed.trim().split("\n").length, wanted.size);
    assert.equal(git(into, "cat-file", "-p", blob), "a: 2");
    assert.equal(git(into, "cat-file", "-t", tip), "commit");
  });
});
