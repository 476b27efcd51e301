/**
 * Read access to a repository's object store through isomorphic-git: refs, commits, trees
 * and blobs, straight from `objects/` (loose and packed), with no work tree and no checkout.
 * Every failure is an ObjectReadError (the cause keeps isomorphic-git's error).
 */
import { createHash, randomBytes } from "node:crypto";
import { access, mkdir, readdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { deflateSync, inflateSync } from "node:zlib";
import * as git from "isomorphic-git";
import { ObjectReadError } from "./errors.js";
import { isGitNotFound } from "./git-errors.js";
import { readingFs } from "./git-fs.js";

export interface TreeEntry {
  /** Octal mode: 100644 / 100755 file, 040000 tree, 120000 symlink, 160000 submodule. */
  mode: string;
  path: string;
  oid: string;
  type: "blob" | "tree" | "commit";
}

export const SYMLINK_MODE = "120000";

/** Inflates a loose object, checks its id, and returns its content (of the expected type). */
function unwrapLoose(oid: string, type: string, deflated: Uint8Array): Uint8Array {
  let wrapped: Buffer;
  try {
    wrapped = inflateSync(deflated);
  } catch (err) {
    throw new ObjectReadError(`${type} ${oid} (corrupt)`, err);
  }
  if (createHash("sha1").update(wrapped).digest("hex") !== oid)
    throw new ObjectReadError(`${type} ${oid} (checksum mismatch)`);
  const nul = wrapped.indexOf(0);
  const [kind, size] = wrapped.subarray(0, nul).toString("latin1").split(" ");
  const body = wrapped.subarray(nul + 1);
  if (kind !== type || Number(size) !== body.length)
    throw new ObjectReadError(`${type} ${oid} (a ${kind} of ${size} bytes)`);
  return body;
}

export class ObjectStore {
  readonly gitdir: string;
  readonly #fs: ReturnType<typeof readingFs>;
  /** isomorphic-git's cache (parsed pack indexes and packs), shared by every read. */
  #cache: object = {};
  #packs = new Set<string>();

  constructor(gitdir: string) {
    this.gitdir = gitdir;
    this.#fs = readingFs(gitdir);
  }

  /** The commit a local branch points to, or undefined when the branch does not exist. */
  async resolveBranch(branch: string): Promise<string | undefined> {
    try {
      return await git.resolveRef({
        fs: this.#fs,
        gitdir: this.gitdir,
        ref: `refs/heads/${branch}`,
      });
    } catch (err) {
      if (isGitNotFound(err)) return undefined;
      throw new ObjectReadError(`ref refs/heads/${branch}`, err);
    }
  }

  async listBranches(): Promise<string[]> {
    try {
      return await git.listBranches({ fs: this.#fs, gitdir: this.gitdir });
    } catch (err) {
      throw new ObjectReadError("the branch list", err);
    }
  }

  /** Points a local branch at a commit, whatever it pointed to before. */
  async setBranch(branch: string, oid: string): Promise<void> {
    await git.writeRef({
      fs: this.#fs,
      gitdir: this.gitdir,
      ref: `refs/heads/${branch}`,
      value: oid,
      force: true,
    });
  }

  /** The root tree id of a commit. */
  async commitTree(commit: string): Promise<string> {
    try {
      const { commit: c } = await git.readCommit({
        fs: this.#fs,
        gitdir: this.gitdir,
        oid: commit,
        cache: this.#cache,
      });
      return c.tree;
    } catch (err) {
      throw new ObjectReadError(`commit ${commit}`, err);
    }
  }

  async readTree(oid: string): Promise<TreeEntry[]> {
    try {
      const { tree } = await git.readTree({
        fs: this.#fs,
        gitdir: this.gitdir,
        oid,
        cache: this.#cache,
      });
      return tree;
    } catch (err) {
      throw new ObjectReadError(`tree ${oid}`, err);
    }
  }

  /** An object as isomorphic-git stores it: deflated if loose, inflated if packed. */
  async #readStored(
    oid: string,
    what: string,
  ): Promise<Awaited<ReturnType<typeof git.readObject>>> {
    try {
      return await git.readObject({
        fs: this.#fs,
        gitdir: this.gitdir,
        oid,
        format: "deflated",
        cache: this.#cache,
      });
    } catch (err) {
      throw new ObjectReadError(what, err);
    }
  }

  /**
   * A blob's content. Loose objects are asked for in their stored (deflated) form, then
   * inflated and SHA-1-checked with node:zlib and node:crypto: isomorphic-git would inflate
   * them in JavaScript (pako) and hash them with WebCrypto (a thread-pool job per object).
   * Packed objects come inflated and checked from isomorphic-git's pack reader.
   */
  async readBlob(oid: string): Promise<Uint8Array> {
    const result = await this.#readStored(oid, `blob ${oid}`);
    if (result.format === "content" && result.type === "blob") return result.object;
    if (result.format !== "deflated") throw new ObjectReadError(`blob ${oid} (a ${result.type})`);
    return unwrapLoose(oid, "blob", result.object);
  }

  /**
   * An object in its loose form: zlib of `<type> <size>\0<body>`, the bytes of a file under
   * `objects/` (what `addLoose` takes). Loose objects are returned as stored; packed ones are
   * wrapped and deflated here.
   */
  async readLoose(oid: string): Promise<Buffer> {
    const result = await this.#readStored(oid, `object ${oid}`);
    if (result.format === "deflated") return Buffer.from(result.object);
    if (result.format !== "content") throw new ObjectReadError(`object ${oid} (${result.format})`);
    const body = result.object;
    return deflateSync(
      Buffer.concat([Buffer.from(`${result.type} ${body.length}\0`, "latin1"), body]),
    );
  }

  /** Whether `oid` is stored loose here (packed objects are not looked for: cheap). */
  async hasLoose(oid: string): Promise<boolean> {
    return access(this.#loosePath(oid)).then(
      () => true,
      () => false,
    );
  }

  /**
   * Stores an object given in its loose form (see `readLoose`), after checking that its bytes
   * hash to `oid` (ObjectReadError otherwise: nothing is written). Written to a temporary
   * name and renamed, so a reader never sees half an object.
   */
  async addLoose(oid: string, loose: Uint8Array): Promise<void> {
    let wrapped: Buffer;
    try {
      wrapped = inflateSync(loose);
    } catch (err) {
      throw new ObjectReadError(`object ${oid} (corrupt)`, err);
    }
    if (createHash("sha1").update(wrapped).digest("hex") !== oid)
      throw new ObjectReadError(`object ${oid} (checksum mismatch)`);
    const path = this.#loosePath(oid);
    await mkdir(join(path, ".."), { recursive: true });
    const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
    await writeFile(temp, loose);
    await rename(temp, path);
  }

  #loosePath(oid: string): string {
    if (!/^[0-9a-f]{40}$/.test(oid)) throw new ObjectReadError(`object ${oid} (not an object id)`);
    return join(this.gitdir, "objects", oid.slice(0, 2), oid.slice(2));
  }

  /**
   * Whether `ancestor` is reachable from `commit` (or equal to it). Undefined when the walk
   * would exceed `maxDepth` commits or an object is missing: the answer is unknown.
   */
  async isAncestor(
    ancestor: string,
    commit: string,
    maxDepth: number,
  ): Promise<boolean | undefined> {
    if (ancestor === commit) return true;
    try {
      return await git.isDescendent({
        fs: this.#fs,
        gitdir: this.gitdir,
        oid: commit,
        ancestor,
        depth: maxDepth,
        cache: this.#cache,
      });
    } catch {
      return undefined;
    }
  }

  /**
   * Drops cached pack data when packs were removed (a `git gc` in a local repository, say),
   * so deleted packs do not stay in memory. Cheap: one directory listing.
   */
  async refreshCache(): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(`${this.gitdir}/objects/pack`)).filter((n) => n.endsWith(".idx"));
    } catch {
      names = [];
    }
    const now = new Set(names);
    for (const name of this.#packs) {
      if (!now.has(name)) {
        this.#cache = {};
        break;
      }
    }
    this.#packs = now;
  }
}
