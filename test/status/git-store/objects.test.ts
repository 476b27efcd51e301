/**
 * The status writer's Git store on its own: Git's delta format (seeded random edits) and tree
 * serialization, compared with `git mktree`.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { applyDelta, createDelta } from "../../../src/status/git-store/delta.js";
import { ObjectWriter, serializeTree } from "../../../src/status/git-store/objects.js";
import { SeededRandom } from "../../helpers/seeded-random.js";
import { bareRepo, cleanup, tempDir } from "../../sync/helpers/git-repo.js";
import { git, gitBuffer, uidOf } from "../helpers.js";

describe("Git delta format", () => {
  test("random edits round-trip; a 10,000-entry tree with 100 changes is a small delta", () => {
    const rnd = new SeededRandom(0x5eed_de17);
    for (let t = 0; t < 300; t++) {
      const base = rnd.bytes(rnd.int(4000));
      let target = Buffer.from(base);
      for (let k = 0; k < 6; k++) {
        const at = rnd.int(target.length + 1);
        const cut = rnd.int(40);
        target = Buffer.concat([
          target.subarray(0, at),
          rnd.bytes(rnd.int(60)),
          target.subarray(at + cut),
        ]);
      }
      const roundTrip = applyDelta(base, createDelta(base, target));
      assert.ok(roundTrip.equals(target), `case ${t} of seed ${rnd.seed} (RANDOM_SEED replays it)`);
    }
    const entries = new Map(
      Array.from({ length: 10_000 }, (_, i) => [
        `${uidOf(i)}.yaml`,
        { mode: "100644", oid: randomBytes(20).toString("hex") },
      ]),
    );
    const before = serializeTree(entries);
    for (let i = 0; i < 100; i++)
      entries.set(`${uidOf(i * 97)}.yaml`, {
        mode: "100644",
        oid: randomBytes(20).toString("hex"),
      });
    const after = serializeTree(entries);
    const delta = createDelta(before, after);
    assert.ok(applyDelta(before, delta).equals(after));
    assert.ok(delta.length < 8_000, `delta ${delta.length} bytes for a ${after.length}-byte tree`);
    assert.throws(() => applyDelta(before, Buffer.from([1, 2, 3])));
  });
});

describe("objects", () => {
  let root: string;
  before(() => {
    root = tempDir();
  });
  after(() => cleanup(root));

  test("trees are written in Git's order and read back (same ids as git mktree)", async () => {
    const gitdir = bareRepo(root, "objects.git");
    const w = new ObjectWriter(gitdir);
    const blob = await w.write("blob", Buffer.from("x\n"));
    const sub = await w.writeTree(new Map([["f", { mode: "100644", oid: blob }]]));
    const entries = new Map([
      ["a.b", { mode: "100644", oid: blob }],
      ["a", { mode: "40000", oid: sub }],
      ["a-b", { mode: "100644", oid: blob }],
      ["a0", { mode: "100644", oid: blob }],
      ["é", { mode: "100644", oid: blob }],
    ]);
    const oid = await w.writeTree(entries);
    const input = [...entries]
      .map(([n, e]) => `${e.mode === "40000" ? "040000 tree" : "100644 blob"} ${e.oid}\t${n}`)
      .join("\n");
    assert.equal(gitBuffer(gitdir, ["mktree"], `${input}\n`).toString().trim(), oid);
    git(gitdir, "fsck", "--strict", "--no-dangling");
    const fresh = new ObjectWriter(gitdir);
    assert.deepEqual(await fresh.readTree(oid), entries);
    assert.equal((await fresh.read(blob)).content.toString(), "x\n");
  });

  test("objects are written under a temporary name and renamed: no partial file is left", async () => {
    const gitdir = bareRepo(root, "atomic.git");
    const w = new ObjectWriter(gitdir);
    const blobs = Array.from({ length: 200 }, (_, i) => Buffer.from(`blob ${i}\n`));
    const ids = await w.writeBlobs(blobs);
    const files = readdirSync(join(gitdir, "objects"), { recursive: true }).map(String);
    assert.deepEqual(
      files.filter((f) => f.includes(".tmp-")),
      [],
    );
    git(gitdir, "fsck", "--strict", "--no-dangling");
    assert.equal(git(gitdir, "cat-file", "-p", ids[199] ?? "").trim(), "blob 199");
  });
});
