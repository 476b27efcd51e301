/**
 * A big flush's blobs packed off the event loop (blob-pack-thread.ts): the worker thread's
 * pack passes `git verify-pack` and `git fsck` and stores alike files as deltas; where no
 * worker can start, the same pack is written on the calling thread; a pack that fails in the
 * worker fails with PackFailedError and leaves no pack behind.
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { PackFailedError } from "../../../src/status/errors.js";
import { writeBlobPackOffThread } from "../../../src/status/git-store/blob-pack-thread.js";
import { hashObject } from "../../../src/status/git-store/objects.js";
import { bareRepo, cleanup, tempDir } from "../../sync/helpers/git-repo.js";
import { git } from "../helpers.js";

/** `n` agent-file-like blobs: alike but for a few lines, so most become deltas. */
function blobs(n: number) {
  return Array.from({ length: n }, (_, i) => {
    const content = Buffer.from(
      `agent: ${String(i).padStart(6, "0")}\nhealth:\n  healthy: true\n${"  component: ok\n".repeat(40)}`,
    );
    return { oid: hashObject("blob", content), content };
  });
}

function packFiles(gitdir: string): string[] {
  return readdirSync(join(gitdir, "objects", "pack")).filter((n) => /\.(pack|idx)$/.test(n));
}

test("a worker thread writes a verified pack that git reads, with deltas", async () => {
  const root = tempDir();
  const gitdir = bareRepo(root, "status.git");
  try {
    const packDir = join(gitdir, "objects", "pack");
    mkdirSync(packDir, { recursive: true });
    const input = blobs(1200);
    const { name, offThread } = await writeBlobPackOffThread(packDir, input, 50);
    assert.equal(offThread, true);
    assert.deepEqual(packFiles(gitdir).sort(), [`${name}.idx`, `${name}.pack`]);
    const listing = git(gitdir, "verify-pack", "-v", join(packDir, `${name}.idx`));
    assert.match(listing, /chain length = 1: \d+ objects?/, "alike files are stored as deltas");
    git(gitdir, "fsck", "--full", "--strict");
    for (const b of [input[0], input[777], input[1199]])
      assert.equal(git(gitdir, "cat-file", "-p", b?.oid ?? ""), b?.content.toString().trim());
  } finally {
    cleanup(root);
  }
});

test("where no worker can start, the same pack is written on this thread", async () => {
  const root = tempDir();
  const gitdir = bareRepo(root, "status.git");
  try {
    const packDir = join(gitdir, "objects", "pack");
    mkdirSync(packDir, { recursive: true });
    const input = blobs(50);
    const missing = pathToFileURL(join(root, "no-such-worker.js"));
    const { name, offThread } = await writeBlobPackOffThread(packDir, input, 50, missing);
    assert.equal(offThread, false);
    git(gitdir, "verify-pack", join(packDir, `${name}.idx`));
    assert.equal(
      git(gitdir, "cat-file", "-p", input[10]?.oid ?? ""),
      input[10]?.content.toString().trim(),
    );
  } finally {
    cleanup(root);
  }
});

test("a pack that fails in the worker fails with PackFailedError and leaves no pack", async () => {
  const root = tempDir();
  const gitdir = bareRepo(root, "status.git");
  try {
    const packDir = join(gitdir, "objects", "pack");
    mkdirSync(packDir, { recursive: true });
    const [one] = blobs(1);
    if (!one) throw new Error("a blob");
    await assert.rejects(
      writeBlobPackOffThread(packDir, [one, one], 50),
      (err: unknown) =>
        err instanceof PackFailedError &&
        err.code === "STATUS_PACK_FAILED" &&
        /writing a pack of 2 new files failed: object [0-9a-f]{40} added twice/.test(err.message),
    );
    assert.deepEqual(packFiles(gitdir), []);
  } finally {
    cleanup(root);
  }
});
