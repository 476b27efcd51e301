/**
 * Finds the Git directory of a local repository: a work tree (`<path>/.git`), a linked work
 * tree or submodule (`.git` file naming the directory; its `commondir` holds the shared
 * objects and branches), or a bare repository (`<path>` itself). Nothing in the work tree is
 * ever read: the branch head is read from the object store.
 */
import { readFile, stat } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { NotARepositoryError } from "./errors.js";

async function kind(path: string): Promise<"file" | "dir" | undefined> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? "dir" : s.isFile() ? "file" : undefined;
  } catch {
    return undefined;
  }
}

async function isGitDir(dir: string): Promise<boolean> {
  return (await kind(join(dir, "HEAD"))) === "file" && (await kind(join(dir, "objects"))) === "dir";
}

/** Resolves a `commondir` file (linked work trees keep objects and refs there). */
async function common(gitdir: string): Promise<string> {
  try {
    const text = (await readFile(join(gitdir, "commondir"), "utf8")).trim();
    return isAbsolute(text) ? text : resolve(gitdir, text);
  } catch {
    return gitdir;
  }
}

/** The absolute Git directory for `path`. Throws NotARepositoryError. */
export async function findGitDir(path: string): Promise<string> {
  const root = resolve(path);
  if ((await kind(root)) !== "dir") throw new NotARepositoryError(path);
  const dotGit = join(root, ".git");
  const dotGitKind = await kind(dotGit);
  if (dotGitKind === "dir" && (await isGitDir(dotGit))) return common(dotGit);
  if (dotGitKind === "file") {
    const m = /^gitdir:\s*(.+?)\s*$/m.exec(await readFile(dotGit, "utf8"));
    const target = m?.[1] ? resolve(root, m[1]) : undefined;
    if (target && (await isGitDir(target))) return common(target);
    throw new NotARepositoryError(path);
  }
  if (await isGitDir(root)) return root;
  throw new NotARepositoryError(path);
}
