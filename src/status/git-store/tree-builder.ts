/**
 * Applies file changes to a tree and writes only what changed: new blobs, and the trees on the
 * path from each changed file to the root. Every other subtree keeps its id (it is not read or
 * written), so a flush of 100 agent files writes 100 blobs, the folders holding them, and
 * status/, status/agents/ and the root. A folder of n entries that a flush touches is written
 * once, whole (n entries): Git trees are not incremental; `stats.treeEntries` counts that cost.
 * Empty folders disappear, as Git has no empty trees.
 */
import type { Entry, ObjectWriter } from "./objects.js";
import { FILE_MODE, TREE_MODE } from "./objects.js";

/** path → new content, or null to delete the file. */
export type FileChanges = ReadonlyMap<string, Uint8Array | null>;

export interface ApplyStats {
  blobs: number;
  trees: number;
  /** Entries of every tree written (the cost of rewriting large folders). */
  treeEntries: number;
}

interface Node {
  files: Map<string, string | null>;
  dirs: Map<string, Node>;
}

const newNode = (): Node => ({ files: new Map(), dirs: new Map() });

/** Writes the changes on top of `root` (undefined: an empty tree); returns the new root id. */
export async function applyChanges(
  objects: ObjectWriter,
  root: string | undefined,
  changes: FileChanges,
  blobIds?: ReadonlyMap<string, string>,
): Promise<{ tree: string | undefined; stats: ApplyStats }> {
  const stats: ApplyStats = { blobs: 0, trees: 0, treeEntries: 0 };
  const ids = new Map(blobIds ?? []);
  const toWrite = [...changes].filter(
    (e): e is [string, Uint8Array] => e[1] !== null && !ids.has(e[0]),
  );
  const written = await objects.writeBlobs(toWrite.map(([, c]) => c));
  for (const [i, [path]] of toWrite.entries()) ids.set(path, written[i] as string);
  stats.blobs = toWrite.length;

  const top = newNode();
  for (const [path, content] of changes) {
    const parts = path.split("/");
    const name = parts.pop() as string;
    let node = top;
    for (const dir of parts) {
      let child = node.dirs.get(dir);
      if (!child) {
        child = newNode();
        node.dirs.set(dir, child);
      }
      node = child;
    }
    node.files.set(name, content === null ? null : (ids.get(path) as string));
  }

  async function apply(node: Node, tree: string | undefined): Promise<string | undefined> {
    const before = tree ? await objects.readTree(tree) : new Map<string, Entry>();
    let entries: Map<string, Entry> | undefined;
    const edit = () => {
      entries ??= new Map(before);
      return entries;
    };
    for (const [name, oid] of node.files) {
      const old = before.get(name);
      if (oid === null) {
        if (old) edit().delete(name);
      } else if (!old || old.oid !== oid || old.mode !== FILE_MODE) {
        edit().set(name, { mode: FILE_MODE, oid });
      }
    }
    for (const [name, child] of node.dirs) {
      const old = before.get(name);
      const oldTree = old?.mode === TREE_MODE ? old.oid : undefined;
      const next = await apply(child, oldTree);
      if (next === undefined) {
        if (old) edit().delete(name);
      } else if (next !== oldTree) {
        edit().set(name, { mode: TREE_MODE, oid: next });
      }
    }
    if (!entries) return tree;
    if (entries.size === 0) return undefined;
    stats.trees++;
    stats.treeEntries += entries.size;
    return objects.writeTree(entries);
  }

  const tree = await apply(top, root);
  return { tree, stats };
}
