/**
 * The status store's zlib sized per object (git-store/object-zlib.ts): every size round-trips,
 * plain zlib and Git read what it writes (small windows included), and a pack of objects of
 * every window size and of multi-byte size headers passes `git verify-pack` and our own
 * read-back, which now checks each entry's inflated size against its header.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { deflateSync, inflateSync } from "node:zlib";
import fc from "fast-check";
import { PackFailedError } from "../../../src/status/errors.js";
import { writeBlobPack } from "../../../src/status/git-store/blob-pack.js";
import { deflateObject, inflateObject } from "../../../src/status/git-store/object-zlib.js";
import { hashObject } from "../../../src/status/git-store/objects.js";
import { verifyOrRemovePack } from "../../../src/status/git-store/pack-verify.js";
import { bareRepo, cleanup, tempDir } from "../../sync/helpers/git-repo.js";
import { git } from "../helpers.js";

/** Text-like bytes (compressible, as agent files are) or random ones (not), 0 to 70 KB. */
const objectBytes = fc.oneof(
  fc.uint8Array({ maxLength: 70_000 }),
  fc
    .array(fc.constantFrom("agent: a\n", "  healthy: true\n", "status: ok\n", "x"), {
      maxLength: 5_000,
    })
    .map((parts) => Buffer.from(parts.join(""))),
);

test("deflateObject round-trips any bytes, through inflateObject and plain zlib", () => {
  fc.assert(
    fc.property(objectBytes, fc.integer({ min: 1, max: 9 }), (bytes, level) => {
      const deflated = deflateObject(bytes, level);
      assert.deepEqual(inflateObject(deflated, bytes.length), Buffer.from(bytes));
      assert.deepEqual(inflateObject(deflated), Buffer.from(bytes), "size unknown");
      assert.deepEqual(inflateSync(deflated), Buffer.from(bytes), "any zlib reader");
    }),
    { numRuns: 150 },
  );
});

test("a size that is wrong costs a copy, not a wrong result", () => {
  const bytes = Buffer.from("agent: x\n".repeat(500));
  const deflated = deflateObject(bytes);
  for (const size of [0, 10, bytes.length - 1, bytes.length * 3])
    assert.deepEqual(inflateObject(deflated, size), bytes);
});

test("the window is sized to the object, and small files compress as with zlib's defaults", () => {
  const file = Buffer.from(
    `agent:\n  uid: 0123abcd\n${"  component:\n    healthy: true\n    status: StatusOK\n".repeat(20)}`,
  );
  const deflated = deflateObject(file);
  // zlib's header names the window: CINFO = log2(window) - 8 (RFC 1950); 7 is 32 KiB.
  assert.ok((deflated[0] as number) >> 4 < 7, "a window smaller than zlib's default");
  assert.ok(deflated.length <= deflateSync(file).length * 1.05, "no worse than the defaults");
});

test("a pack of objects of every window size and long size headers reads back in Git", async (t) => {
  const root = tempDir();
  t.after(() => cleanup(root));
  const gitdir = bareRepo(root, "status.git");
  const packDir = join(gitdir, "objects", "pack");
  mkdirSync(packDir, { recursive: true });
  const sizes = [0, 1, 15, 16, 200, 2_047, 2_048, 40_000, 70_000, 300_000];
  const blobs = sizes
    .flatMap((n) => [randomBytes(n), Buffer.from("status: ok\n".repeat(n / 11 + 1)).subarray(0, n)])
    .map((content) => ({ oid: hashObject("blob", content), content }))
    .filter((b, i, all) => all.findIndex((o) => o.oid === b.oid) === i)
    .sort((a, b) => (a.oid < b.oid ? -1 : 1));
  const name = await writeBlobPack(packDir, blobs, 50);
  git(gitdir, "verify-pack", join(packDir, `${name}.idx`));
  git(gitdir, "fsck", "--full", "--strict");
  for (const b of blobs)
    assert.equal(git(gitdir, "cat-file", "-s", b.oid), String(b.content.length));

  // A header stating another size than the data holds fails our read-back.
  const packPath = join(packDir, `${name}.pack`);
  const pack = readFileSync(packPath);
  const at = 12; // the first entry: its header's low four bits are part of the size
  pack[at] = ((pack[at] as number) & 0xf0) | (((pack[at] as number) + 1) & 0x0f);
  const body = pack.subarray(0, pack.length - 20);
  createHash("sha1").update(body).digest().copy(pack, body.length); // the checksum still holds
  writeFileSync(packPath, pack);
  await assert.rejects(verifyOrRemovePack(packDir, name), (err: Error) => {
    assert.ok(err instanceof PackFailedError);
    assert.match(String((err.cause as Error).message), /header says/);
    return true;
  });
});
