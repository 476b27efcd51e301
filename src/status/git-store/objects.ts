/**
 * Writing and reading the objects of status commits with isomorphic-git's object API
 * (`writeObject`, `readObject`, `writeCommit`), with the hashing and zlib work done by node:
 * blobs and trees are hashed with node:crypto and deflated with node:zlib, then handed to
 * `writeObject` in deflated form; isomorphic-git would do both in JavaScript, one thread-pool
 * job per object.
 *
 * - Files are written under a temporary name and renamed into place (crash-safe).
 * - An object a pack already holds is not written again as a loose copy (isomorphic-git only
 *   checks loose objects).
 * - Trees are parsed here (a 10,000-entry tree in milliseconds) and kept in a small LRU by id,
 *   so a flush re-reads nothing it wrote or read recently.
 */
import { createHash } from "node:crypto";
import { rename, unlink, writeFile } from "node:fs/promises";
import * as git from "isomorphic-git";
import { ObjectReadError } from "../../sync/errors.js";
import { readingFs } from "../../sync/git-fs.js";
import { deflateObject, inflateObject } from "./object-zlib.js";
import { PackIndexSet } from "./pack-index.js";

export type ObjectType = "blob" | "tree" | "commit" | "tag";

/** A tree entry: its raw mode ("100644", "100755", "40000", "120000", "160000") and id. */
export interface Entry {
  mode: string;
  oid: string;
}

export type TreeEntries = ReadonlyMap<string, Entry>;

export const TREE_MODE = "40000";
export const FILE_MODE = "100644";

/** Git's tree order: byte order of names, a tree's name compared as if it ended in "/". */
function sortKey(name: string, mode: string): Buffer {
  return Buffer.from(mode === TREE_MODE ? `${name}/` : name);
}

/** The raw content of a tree object. */
export function serializeTree(entries: TreeEntries): Buffer {
  const list = [...entries].map(([name, e]) => ({ name, e, key: sortKey(name, e.mode) }));
  list.sort((a, b) => Buffer.compare(a.key, b.key));
  const parts: Buffer[] = [];
  for (const { name, e } of list) {
    parts.push(Buffer.from(`${e.mode} ${name}\0`), Buffer.from(e.oid, "hex"));
  }
  return Buffer.concat(parts);
}

/** Parses a tree object's raw content. */
export function parseTree(raw: Uint8Array): Map<string, Entry> {
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Map<string, Entry>();
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    const nul = buf.indexOf(0, sp);
    if (sp < 0 || nul < 0 || nul + 21 > buf.length) throw new Error("truncated tree object");
    const mode = buf.toString("latin1", i, sp);
    const name = buf.toString("utf8", sp + 1, nul);
    out.set(name, { mode, oid: buf.toString("hex", nul + 1, nul + 21) });
    i = nul + 21;
  }
  return out;
}

/** `<type> <size>\0<content>`, its id, and its deflated form. */
export function wrapObject(
  type: ObjectType,
  content: Uint8Array,
): { oid: string; deflated: Buffer; size: number } {
  const wrapped = Buffer.concat([Buffer.from(`${type} ${content.length}\0`), content]);
  return {
    oid: createHash("sha1").update(wrapped).digest("hex"),
    deflated: deflateObject(wrapped, 1),
    size: content.length,
  };
}

/** An object's id, without compressing it. */
export function hashObject(type: ObjectType, content: Uint8Array): string {
  return createHash("sha1").update(`${type} ${content.length}\0`).update(content).digest("hex");
}

/** Inflates a loose object and checks its id; returns type and content. */
export function unwrapLoose(
  oid: string,
  deflated: Uint8Array,
): { type: ObjectType; content: Buffer } {
  const wrapped = inflateObject(deflated);
  if (createHash("sha1").update(wrapped).digest("hex") !== oid)
    throw new ObjectReadError(`object ${oid} (checksum mismatch)`);
  const nul = wrapped.indexOf(0);
  const [type, size] = wrapped.subarray(0, nul).toString("latin1").split(" ");
  const content = wrapped.subarray(nul + 1);
  if (Number(size) !== content.length) throw new ObjectReadError(`object ${oid} (bad size)`);
  return { type: type as ObjectType, content };
}

export interface WriteStats {
  /** Loose objects written (objects already present are not counted). */
  objects: number;
  /** Their deflated bytes. */
  bytes: number;
}

let tmpCounter = 0;

/**
 * isomorphic-git writes a loose object in place and later skips any path that exists, so a
 * crash mid-write would leave a truncated object forever. Here every file it writes goes to a
 * temporary name first and is renamed into place (what git itself does).
 */
function atomicWrites(client: ReturnType<typeof readingFs>): ReturnType<typeof readingFs> {
  const promises = {
    ...client.promises,
    writeFile: async (path: string, data: Uint8Array | string, options?: unknown) => {
      const tmp = `${path}.tmp-${process.pid}-${tmpCounter++}`;
      try {
        await writeFile(tmp, data, options as Parameters<typeof writeFile>[2]);
        await rename(tmp, path);
      } catch (err) {
        await unlink(tmp).catch(() => {});
        throw err;
      }
    },
  };
  return { promises } as ReturnType<typeof readingFs>;
}

export class ObjectWriter {
  readonly gitdir: string;
  readonly fs: ReturnType<typeof readingFs>;
  readonly packs: PackIndexSet;
  /** isomorphic-git's cache (pack indexes); dropped by `resetCache()` after packing. */
  cache: object = {};
  readonly written: WriteStats = { objects: 0, bytes: 0 };
  readonly #trees = new Map<string, Map<string, Entry>>();
  readonly #treeCacheSize: number;

  constructor(gitdir: string, treeCacheSize = 64) {
    this.gitdir = gitdir;
    this.fs = atomicWrites(readingFs(gitdir));
    this.packs = new PackIndexSet(gitdir);
    this.#treeCacheSize = treeCacheSize;
  }

  resetCache(): void {
    this.cache = {};
  }

  /**
   * Writes one object unless a pack holds it (isomorphic-git skips it when a loose copy
   * exists); returns its id. `written` counts the calls that reached the loose store.
   */
  async write(type: ObjectType, content: Uint8Array): Promise<string> {
    const { oid, deflated } = wrapObject(type, content);
    if (this.packs.has(oid)) return oid;
    await git.writeObject({
      fs: this.fs,
      gitdir: this.gitdir,
      type,
      object: deflated,
      format: "deflated",
      oid,
    });
    this.written.objects++;
    this.written.bytes += deflated.length;
    return oid;
  }

  /** Writes many blobs, `concurrency` at a time; ids in input order. */
  async writeBlobs(contents: readonly Uint8Array[], concurrency = 64): Promise<string[]> {
    await this.packs.refresh();
    const out = new Array<string>(contents.length);
    for (let i = 0; i < contents.length; i += concurrency) {
      const slice = contents.slice(i, i + concurrency);
      const ids = await Promise.all(slice.map((c) => this.write("blob", c)));
      ids.forEach((id, j) => {
        out[i + j] = id;
      });
    }
    return out;
  }

  /** Writes a tree and remembers its entries. */
  async writeTree(entries: Map<string, Entry>): Promise<string> {
    const oid = await this.write("tree", serializeTree(entries));
    this.#remember(oid, entries);
    return oid;
  }

  async writeCommit(commit: {
    tree: string;
    parents: string[];
    message: string;
    author: { name: string; email: string };
    timestamp: number;
  }): Promise<string> {
    const who = {
      name: commit.author.name,
      email: commit.author.email,
      timestamp: Math.floor(commit.timestamp / 1000),
      timezoneOffset: 0,
    };
    const oid = await git.writeCommit({
      fs: this.fs,
      gitdir: this.gitdir,
      commit: {
        tree: commit.tree,
        parent: commit.parents,
        author: who,
        committer: who,
        message: commit.message,
      },
    });
    this.written.objects++;
    return oid;
  }

  /** An object's type and content (loose: inflated and checked with node; packed: via isomorphic-git). */
  async read(oid: string): Promise<{ type: ObjectType; content: Buffer }> {
    let result: Awaited<ReturnType<typeof git.readObject>>;
    try {
      result = await git.readObject({
        fs: this.fs,
        gitdir: this.gitdir,
        oid,
        format: "deflated",
        cache: this.cache,
      });
    } catch (err) {
      throw new ObjectReadError(`object ${oid}`, err);
    }
    if (result.format === "deflated") return unwrapLoose(oid, result.object as Uint8Array);
    if (result.format !== "content") throw new ObjectReadError(`object ${oid} (${result.format})`);
    const obj = result.object as Uint8Array;
    return {
      type: result.type as ObjectType,
      content: Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength),
    };
  }

  async readTree(oid: string): Promise<Map<string, Entry>> {
    const hit = this.#trees.get(oid);
    if (hit) {
      this.#trees.delete(oid);
      this.#trees.set(oid, hit);
      return hit;
    }
    const { type, content } = await this.read(oid);
    if (type !== "tree") throw new ObjectReadError(`tree ${oid} (a ${type})`);
    const entries = parseTree(content);
    this.#remember(oid, entries);
    return entries;
  }

  /** A commit's tree, parents and committer e-mail. */
  async readCommit(
    oid: string,
  ): Promise<{ tree: string; parents: string[]; committerEmail?: string }> {
    const { type, content } = await this.read(oid);
    if (type !== "commit") throw new ObjectReadError(`commit ${oid} (a ${type})`);
    const head = content.toString("utf8", 0, content.indexOf("\n\n"));
    const tree = /^tree ([0-9a-f]{40})$/m.exec(head)?.[1];
    if (!tree) throw new ObjectReadError(`commit ${oid} (no tree)`);
    const parents = [...head.matchAll(/^parent ([0-9a-f]{40})$/gm)].map((m) => m[1] as string);
    const committerEmail = /^committer [^<]*<([^>]*)>/m.exec(head)?.[1];
    return { tree, parents, committerEmail };
  }

  #remember(oid: string, entries: Map<string, Entry>): void {
    this.#trees.delete(oid);
    this.#trees.set(oid, entries);
    while (this.#trees.size > this.#treeCacheSize) {
      const first = this.#trees.keys().next().value as string;
      this.#trees.delete(first);
    }
  }
}
