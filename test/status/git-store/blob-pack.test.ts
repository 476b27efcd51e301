/**
 * A big flush's blobs packed off the event loop, on a status render worker
 * (AgentRenderer.packBlobs, git-store/blob-pack.ts): the pack passes `git verify-pack` and
 * `git fsck` and stores alike files as deltas; a pack that fails fails with PackFailedError,
 * leaves no pack behind, and the worker goes on rendering.
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { AgentRenderer, snapshot } from "../../../src/status/agent-render.js";
import { PackFailedError } from "../../../src/status/errors.js";
import { writeBlobPack } from "../../../src/status/git-store/blob-pack.js";
import { hashObject } from "../../../src/status/git-store/objects.js";
import { bareRepo, cleanup, tempDir } from "../../sync/helpers/git-repo.js";
import { fakeAgent, git, uidOf } from "../helpers.js";

/** `n` agent-file-like blobs: alike but for a few lines, so most become deltas. */
function blobs(n: number) {
  return Array.from({ length: n }, (_, i) => {
    const content = Buffer.from(
      `agent: ${String(i).padStart(6, "0")}\nhealth:\n  healthy: true\n${"  component: ok\n".repeat(40)}`,
    );
    return { oid: hashObject("blob", content), content };
  });
}

/** A bare repository's pack directory, removed after the test. */
function packDirOf(t: { after(fn: () => void): void }): { gitdir: string; packDir: string } {
  const root = tempDir();
  t.after(() => cleanup(root));
  const gitdir = bareRepo(root, "status.git");
  const packDir = join(gitdir, "objects", "pack");
  mkdirSync(packDir, { recursive: true });
  return { gitdir, packDir };
}

const packFiles = (packDir: string) => readdirSync(packDir).filter((n) => /\.(pack|idx)$/.test(n));

for (const where of ["a render worker", "this thread"] as const) {
  test(`${where} writes a verified pack that git reads, with deltas`, async (t) => {
    const { gitdir, packDir } = packDirOf(t);
    const input = blobs(1200);
    let name: string;
    if (where === "this thread") name = await writeBlobPack(packDir, input, 50);
    else {
      const renderer = new AgentRenderer({}, 1);
      t.after(() => renderer.close());
      name = await renderer.packBlobs(packDir, input, 50);
      assert.equal(renderer.workers, 1, "a worker wrote it");
    }
    assert.deepEqual(packFiles(packDir).sort(), [`${name}.idx`, `${name}.pack`]);
    const listing = git(gitdir, "verify-pack", "-v", join(packDir, `${name}.idx`));
    assert.match(listing, /chain length = 1: \d+ objects?/, "alike files are stored as deltas");
    git(gitdir, "fsck", "--full", "--strict");
    for (const b of [input[0], input[777], input[1199]])
      assert.equal(git(gitdir, "cat-file", "-p", b?.oid ?? ""), b?.content.toString().trim());
  });
}

test("a pack that fails on the worker: PackFailedError, no pack left, the worker renders on", async (t) => {
  const { packDir } = packDirOf(t);
  const renderer = new AgentRenderer({}, 1);
  t.after(() => renderer.close());
  const [one] = blobs(1);
  if (!one) throw new Error("a blob");
  await assert.rejects(
    renderer.packBlobs(packDir, [one, one], 50),
    (err: unknown) =>
      err instanceof PackFailedError &&
      err.code === "STATUS_PACK_FAILED" &&
      /writing a pack of 2 new files failed: object [0-9a-f]{40} added twice/.test(err.message),
  );
  assert.deepEqual(packFiles(packDir), []);
  const uid = uidOf(1);
  const [result] = await renderer.render([
    {
      uid,
      path: `status/agents/edge/${uid}.yaml`,
      placement: { group: "edge", desiredHash: null, desiredCommit: null },
      agent: snapshot(fakeAgent(uid)),
    },
  ]);
  assert.ok(result && "payload" in result, JSON.stringify(result));
  assert.equal(renderer.workers, 1);
});
