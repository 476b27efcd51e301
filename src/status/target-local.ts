/**
 * A local repository as the status target: objects are written into its own object store and
 * the branch ref is moved with Git's lock-file protocol (`refs/heads/<branch>.lock`, created
 * exclusively, renamed over the ref), so a `git` command running at the same time is either
 * refused by our lock or refuses us, and a publish never overwrites a commit it did not see.
 */
import { mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import * as git from "isomorphic-git";
import { isGitNotFound } from "../sync/git-errors.js";
import { readingFs } from "../sync/git-fs.js";
import { findGitDir } from "../sync/local-repository.js";
import { BranchCheckedOutError, PublishFailedError } from "./errors.js";
import type { StatusTarget } from "./target.js";

/** A ref lock older than this is left over by a crashed process and is removed. */
const STALE_LOCK_MS = 5 * 60_000;

export class LocalTarget implements StatusTarget {
  readonly kind = "local";
  readonly ownsStore = false;
  readonly branch: string;
  readonly #repo: string;
  #gitdir?: string;

  constructor(repo: string, branch: string) {
    this.#repo = repo;
    this.branch = branch;
  }

  get gitdir(): string {
    if (!this.#gitdir) throw new PublishFailedError("the local status target was not opened");
    return this.#gitdir;
  }

  async open(): Promise<void> {
    const gitdir = await findGitDir(this.#repo);
    await checkNotCheckedOut(this.#repo, gitdir, this.branch);
    this.#gitdir = gitdir;
  }

  async base(): Promise<string | undefined> {
    try {
      return await git.resolveRef({
        fs: readingFs(this.gitdir),
        gitdir: this.gitdir,
        ref: `refs/heads/${this.branch}`,
      });
    } catch (err) {
      if (isGitNotFound(err)) return undefined;
      throw new PublishFailedError(`cannot read branch ${this.branch}`, {}, err);
    }
  }

  invalidate(): void {}

  async publish(commit: string, base: string | undefined): Promise<"published" | "moved"> {
    const ref = join(this.gitdir, "refs", "heads", ...this.branch.split("/"));
    const lock = `${ref}.lock`;
    let locked = false;
    try {
      await mkdir(dirname(ref), { recursive: true });
      await removeStaleLock(lock);
      const fh = await open(lock, "wx");
      locked = true;
      try {
        if ((await this.base()) !== base) return "moved";
        await fh.writeFile(`${commit}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(lock, ref);
      locked = false;
      return "published";
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST")
        throw new PublishFailedError(
          `branch ${this.branch} is locked by another process (${lock})`,
          { lock },
          err,
        );
      throw err instanceof PublishFailedError
        ? err
        : new PublishFailedError(`cannot update branch ${this.branch}`, {}, err);
    } finally {
      if (locked) await rm(lock, { force: true }).catch(() => {});
    }
  }
}

async function removeStaleLock(lock: string): Promise<void> {
  try {
    const s = await stat(lock);
    if (Date.now() - s.mtimeMs > STALE_LOCK_MS) await rm(lock, { force: true });
  } catch {
    // No lock.
  }
}

async function headRef(path: string): Promise<string | undefined> {
  try {
    const m = /^ref:\s*(\S+)/.exec(await readFile(path, "utf8"));
    return m?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Refuses a branch checked out in a work tree (the main one or a linked one): moving it
 * would leave that work tree behind its branch, as `git push` refuses to
 * (receive.denyCurrentBranch).
 */
async function checkNotCheckedOut(repo: string, gitdir: string, branch: string): Promise<void> {
  const full = `refs/heads/${branch}`;
  const bare = await isBare(gitdir);
  if (!bare && (await headRef(join(gitdir, "HEAD"))) === full)
    throw new BranchCheckedOutError(repo, branch);
  let worktrees: string[] = [];
  try {
    worktrees = await readdir(join(gitdir, "worktrees"));
  } catch {
    worktrees = [];
  }
  for (const w of worktrees)
    if ((await headRef(join(gitdir, "worktrees", w, "HEAD"))) === full)
      throw new BranchCheckedOutError(repo, branch);
}

async function isBare(gitdir: string): Promise<boolean> {
  try {
    return /^\s*bare\s*=\s*true\s*$/im.test(await readFile(join(gitdir, "config"), "utf8"));
  } catch {
    return false;
  }
}
