/**
 * Creates a Git repository from a folder's files and commits them (for the demo and tools):
 * `git init -b <branch>`, every file added, one commit. Only regular files are added; `.git`
 * is skipped. isomorphic-git does the work, so no git executable is needed.
 */
import * as fs from "node:fs";
import { join, relative, sep } from "node:path";
import * as git from "isomorphic-git";

export interface InitRepositoryOptions {
  branch?: string;
  message?: string;
  author?: { name: string; email: string };
}

function listFiles(dir: string, root = dir): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === ".git") continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(path, root));
    else if (entry.isFile()) out.push(relative(root, path).split(sep).join("/"));
  }
  return out.sort();
}

/** Initialises `dir` as a repository and commits its files; resolves with the commit id. */
export async function initRepository(
  dir: string,
  {
    branch = "main",
    message = "Initial commit",
    author = { name: "opamp-gitops", email: "opamp-gitops@localhost" },
  }: InitRepositoryOptions = {},
): Promise<string> {
  await git.init({ fs, dir, defaultBranch: branch });
  for (const filepath of listFiles(dir)) await git.add({ fs, dir, filepath });
  return git.commit({ fs, dir, message, author });
}
