/**
 * Keeps the object store from growing without bound (a `git gc` for status commits, without
 * the git command line):
 *
 * 1. Walks the status branch back from its head over the commits still stored loose, and
 *    collects the loose objects they introduced, each with its path.
 * 2. Writes them into one pack, newest first: the newest version of each path whole, each
 *    older version as a delta against the next newer one (chains at most `maxDepth` long),
 *    so the 10,000-entry folder tree rewritten by every flush costs a few kilobytes a
 *    version instead of its full size, and the latest state reads without delta chains.
 *    A file with no newer version in the pack is a delta against the previous file of its
 *    folder when that is smaller (agent files of one group differ in a few lines).
 * 3. Reads the pack back in full (pack-verify.ts), then deletes the loose copies. In a store
 *    the writer owns (a remote's clone), loose objects no status commit reaches (commits
 *    discarded after a rejected push) are deleted once older than `graceMs`.
 * 4. When the writer's packs are more than `maxPacks`, merges the smallest ones (geometric
 *    progression, like `git repack --geometric=2`) by concatenation, without inflating.
 *
 * Runs between flushes (never during one). In a user's repository, only objects reachable
 * from status commits are touched, and packs are merged only when no multi-pack-index
 * exists. The packs the writer made are listed in `<gitdir>/opamp-gitops/status-packs`.
 */
import { mkdir, readdir, readFile, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { PackFailedError } from "../errors.js";
import { type PackBlob, writeBlobPack } from "./blob-pack.js";
import { createDelta } from "./delta.js";
import {
  hashObject,
  type ObjectType,
  type ObjectWriter,
  TREE_MODE,
  unwrapLoose,
} from "./objects.js";
import { OwnPacks } from "./own-packs.js";
import { PackWriter } from "./pack-write.js";

export interface PackerOptions {
  /** Longest delta chain. Default 50 (Git's default). */
  maxDepth?: number;
  /** Merge the writer's packs when there are more than this. Default 8. */
  maxPacks?: number;
  /** Delete loose objects no status commit reaches (only in a store the writer owns). */
  prune?: boolean;
  /** Age before an unreachable loose object is deleted, ms. Default 10 min. */
  graceMs?: number;
  /**
   * Writes packBlobs' pack (blob-pack.ts writeBlobPack, or the same run elsewhere: the
   * status writer hands it to its render worker threads). Default: writeBlobPack, here.
   */
  writeBlobPack?: BlobPackWriter;
}

/** Writes `blobs` into one new verified pack in `packDir`; resolves with its name. */
export type BlobPackWriter = (
  packDir: string,
  blobs: readonly PackBlob[],
  maxDepth: number,
) => Promise<string>;

export interface PackResult {
  objects: number;
  deltas: number;
  /** Size of the new pack file. */
  packBytes: number;
  /** Loose objects deleted (packed, or unreachable and old). */
  removedLoose: number;
  /** Packs merged into one (0: no merge). */
  merged: number;
  ms: number;
}

interface Item {
  oid: string;
  type: ObjectType;
  path: string;
}

export class Packer {
  readonly #objects: ObjectWriter;
  readonly #maxDepth: number;
  readonly #maxPacks: number;
  readonly #prune: boolean;
  readonly #graceMs: number;
  readonly #packDir: string;
  readonly #packs: OwnPacks;
  readonly #writeBlobPack: BlobPackWriter;

  constructor(objects: ObjectWriter, options: PackerOptions = {}) {
    this.#objects = objects;
    this.#maxDepth = options.maxDepth ?? 50;
    this.#maxPacks = options.maxPacks ?? 8;
    this.#prune = options.prune ?? false;
    this.#graceMs = options.graceMs ?? 10 * 60_000;
    this.#writeBlobPack = options.writeBlobPack ?? writeBlobPack;
    this.#packs = new OwnPacks(objects.gitdir);
    this.#packDir = this.#packs.packDir;
  }

  /**
   * Writes many new blobs straight into one pack rather than as loose objects (a big flush:
   * thousands of new files in one commit), each a delta against the previous one when that
   * is smaller; the pack is read back in full before it is used (`writeBlobPack`: on a
   * worker thread in the status writer). Returns the ids in input order.
   */
  async packBlobs(contents: readonly Uint8Array[]): Promise<string[]> {
    await this.#objects.packs.refresh();
    const ids = contents.map((c) => hashObject("blob", c));
    const seen = new Set<string>();
    const todo: Array<{ oid: string; content: Uint8Array }> = [];
    for (const [i, oid] of ids.entries()) {
      if (seen.has(oid) || this.#objects.packs.has(oid)) continue;
      seen.add(oid);
      todo.push({ oid, content: contents[i] as Uint8Array });
    }
    if (todo.length === 0) return ids;
    await mkdir(this.#packDir, { recursive: true });
    const name = await this.#writeBlobPack(this.#packDir, todo, this.#maxDepth);
    await this.#packs.remember([name], []);
    this.#objects.resetCache();
    await this.#objects.packs.refresh();
    return ids;
  }

  /** Loose object ids of the store. */
  async looseObjectIds(): Promise<Set<string>> {
    const out = new Set<string>();
    const root = join(this.#objects.gitdir, "objects");
    let dirs: string[];
    try {
      dirs = (await readdir(root)).filter((d) => /^[0-9a-f]{2}$/.test(d));
    } catch {
      return out;
    }
    for (const d of dirs) {
      let names: string[];
      try {
        names = await readdir(join(root, d));
      } catch {
        continue;
      }
      for (const n of names) if (/^[0-9a-f]{38}$/.test(n)) out.add(d + n);
    }
    return out;
  }

  #loosePath(oid: string): string {
    return join(this.#objects.gitdir, "objects", oid.slice(0, 2), oid.slice(2));
  }

  /** Packs the loose objects of the status commits up to `tip`. */
  async pack(tip: string | undefined): Promise<PackResult> {
    const t0 = performance.now();
    const result: PackResult = {
      objects: 0,
      deltas: 0,
      packBytes: 0,
      removedLoose: 0,
      merged: 0,
      ms: 0,
    };
    await this.#objects.packs.refresh();
    const loose = await this.looseObjectIds();
    const items = tip ? await this.#collect(tip, loose) : [];
    if (items.length > 0) {
      const writer = new PackWriter(this.#packDir);
      let name: string;
      try {
        await mkdir(this.#packDir, { recursive: true });
        await writer.open(items.length);
        await this.#write(writer, items, result);
        name = await writer.finish();
      } catch (err) {
        await writer.abort();
        throw new PackFailedError(`writing a pack of ${items.length} objects failed`, err);
      }
      await this.#packs.verifyOrRemove(name);
      result.packBytes = writer.size;
      await this.#packs.remember([name], []);
      for (let i = 0; i < items.length; i += 64) {
        const chunk = items.slice(i, i + 64);
        await Promise.all(chunk.map((it) => unlink(this.#loosePath(it.oid)).catch(() => {})));
        for (const it of chunk) loose.delete(it.oid);
        result.removedLoose += chunk.length;
      }
    }
    await this.#objects.packs.refresh();
    for (const oid of loose) {
      // Loose copies of packed objects, and (own store) unreachable ones past the grace time.
      const packed = this.#objects.packs.has(oid);
      if (!packed && !this.#prune) continue;
      if (!packed) {
        const s = await stat(this.#loosePath(oid)).catch(() => undefined);
        if (!s || Date.now() - s.mtimeMs < this.#graceMs) continue;
      }
      await unlink(this.#loosePath(oid)).catch(() => {});
      result.removedLoose++;
    }
    result.merged = await this.#packs.merge(this.#maxPacks);
    this.#objects.resetCache();
    await this.#objects.packs.refresh();
    result.ms = performance.now() - t0;
    return result;
  }

  /** Loose objects introduced by the loose commits from `tip` back, newest first. */
  async #collect(tip: string, loose: Set<string>): Promise<Item[]> {
    const items: Item[] = [];
    const seen = new Set<string>();
    const add = (oid: string, type: ObjectType, path: string) => {
      if (seen.has(oid) || !loose.has(oid) || this.#objects.packs.has(oid)) return;
      seen.add(oid);
      items.push({ oid, type, path });
    };
    const diff = async (tree: string, parent: string | undefined, path: string) => {
      add(tree, "tree", path);
      const now = await this.#objects.readTree(tree);
      const before = parent ? await this.#objects.readTree(parent) : new Map();
      for (const [name, e] of now) {
        const old = before.get(name);
        if (old?.oid === e.oid) continue;
        const child = path === "" ? name : `${path}/${name}`;
        if (e.mode === TREE_MODE)
          await diff(e.oid, old?.mode === TREE_MODE ? old.oid : undefined, child);
        else if (e.mode !== "160000") add(e.oid, "blob", child);
      }
    };
    let commit: string | undefined = tip;
    let walked = 0;
    while (commit && loose.has(commit) && !seen.has(commit) && walked < 100_000) {
      walked++;
      const c = await this.#objects.readCommit(commit);
      add(commit, "commit", "\0commit");
      const parent = c.parents[0];
      const parentTree = parent
        ? await this.#objects
            .readCommit(parent)
            .then((p) => p.tree)
            .catch(() => undefined)
        : undefined;
      await diff(c.tree, parentTree, "");
      commit = parent;
    }
    return items;
  }

  /**
   * Writes the items in order. A blob or tree is stored as a delta when a good base is in the
   * pack already: the next newer version of the same path, or else (blobs) the last file
   * written from the same folder (agent files of a group differ in a few lines).
   */
  async #write(writer: PackWriter, items: Item[], result: PackResult): Promise<void> {
    type Known = { oid: string; content: Buffer; depth: number };
    const newer = new Map<string, Known>();
    const lastInDir = new Map<string, Known>();
    const WINDOW = 64;
    for (let i = 0; i < items.length; i += WINDOW) {
      const chunk = items.slice(i, i + WINDOW);
      const raws = await Promise.all(chunk.map((it) => readFile(this.#loosePath(it.oid))));
      for (const [k, item] of chunk.entries()) {
        const { type, content } = unwrapLoose(item.oid, raws[k] as Buffer);
        if (type !== item.type)
          throw new Error(`object ${item.oid} is a ${type}, not a ${item.type}`);
        const dir = item.path.slice(0, Math.max(0, item.path.lastIndexOf("/")));
        const candidates: Known[] = [];
        if (item.type !== "commit") {
          const same = newer.get(item.path);
          if (same) candidates.push(same);
          const near = item.type === "blob" ? lastInDir.get(dir) : undefined;
          if (near && near !== same) candidates.push(near);
        }
        let best: { base: Known; delta: Buffer } | undefined;
        for (const base of candidates) {
          if (base.depth >= this.#maxDepth || writer.offsetOf(base.oid) === undefined) continue;
          const delta = createDelta(base.content, content);
          if (!best || delta.length < best.delta.length) best = { base, delta };
        }
        let depth = 0;
        if (best && best.delta.length < content.length / 2) {
          await writer.addDelta(item.oid, best.base.oid, best.delta);
          depth = best.base.depth + 1;
          result.deltas++;
        } else {
          await writer.addObject(item.oid, type, content);
        }
        result.objects++;
        if (item.type === "commit") continue;
        const known = { oid: item.oid, content, depth };
        newer.set(item.path, known);
        if (item.type === "blob") lastInDir.set(dir, known);
      }
    }
  }
}
