/**
 * The pack a status push sends (sync/receive-pack.ts): the objects `commit` adds to `base`,
 * found by comparing trees path by path, each deflated once with node's zlib.
 *
 * A tree or file whose id equals the base's at the same path is the remote's already and is
 * skipped with everything under it; what differs is sent, including an object the remote may
 * hold elsewhere (harmless: the server keeps one copy). Gitlinks (mode 160000) name commits
 * of other repositories and are never sent. The flush's new blobs come from `fresh` (their
 * bytes are in memory: reading them back from a blob pack would inflate and resolve deltas
 * again); anything else is read from the store (new trees and the commit are loose objects).
 * The event loop is yielded to every YIELD_EVERY objects, so a 10,000-file pack does not hold
 * it for its whole build.
 */
import { createHash } from "node:crypto";
import { deflateObject } from "./git-store/object-zlib.js";
import type { ObjectType, ObjectWriter } from "./git-store/objects.js";
import { entryHeader, packHeader, TYPE_CODE } from "./git-store/pack-format.js";

const TREE_MODE = "40000";
const GITLINK_MODE = "160000";
const YIELD_EVERY = 200;

/** The ids `commit` adds to `base` (see the file comment), each with its type. */
export async function newObjects(
  objects: ObjectWriter,
  commit: string,
  base: string | undefined,
): Promise<Map<string, ObjectType>> {
  const out = new Map<string, ObjectType>([[commit, "commit"]]);
  const tree = (await objects.readCommit(commit)).tree;
  const baseTree = base ? (await objects.readCommit(base)).tree : undefined;
  const walk = async (oid: string, old: string | undefined): Promise<void> => {
    if (oid === old || out.has(oid)) return;
    out.set(oid, "tree");
    const entries = await objects.readTree(oid);
    const before = old ? await objects.readTree(old) : undefined;
    for (const [name, e] of entries) {
      const was = before?.get(name);
      if (was?.oid === e.oid || e.mode === GITLINK_MODE) continue;
      if (e.mode === TREE_MODE) await walk(e.oid, was?.mode === TREE_MODE ? was.oid : undefined);
      else out.set(e.oid, "blob");
    }
  };
  await walk(tree, baseTree);
  return out;
}

/**
 * The pack (version 2, whole objects) of what `commit` adds to `base`, as chunks to send in
 * order. `fresh` maps blob ids to their content (the flush's new files).
 */
export async function buildPushPack(
  objects: ObjectWriter,
  commit: string,
  base: string | undefined,
  fresh: ReadonlyMap<string, Uint8Array>,
): Promise<Buffer[]> {
  const wanted = await newObjects(objects, commit, base);
  const hash = createHash("sha1");
  const chunks: Buffer[] = [];
  const push = (b: Buffer) => {
    hash.update(b);
    chunks.push(b);
  };
  push(packHeader(wanted.size));
  let n = 0;
  for (const [oid, type] of wanted) {
    const known = type === "blob" ? fresh.get(oid) : undefined;
    const content = known ?? (await objects.read(oid)).content;
    push(entryHeader(TYPE_CODE[type], content.length));
    push(deflateObject(content));
    if (++n % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
  }
  chunks.push(hash.digest());
  return chunks;
}
