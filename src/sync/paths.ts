/**
 * Path and branch-name checks. Every path the sync module reads from a tree goes through
 * `normalizeRepoPath`: POSIX separators, no absolute path, no `..`, so nothing can read
 * outside the watched root of the commit.
 */
import { InvalidSourceError, UnsafePathError } from "./errors.js";

/**
 * Normalizes a repository-relative path: collapses `.` segments and repeated or trailing
 * slashes. Throws UnsafePathError for an absolute path, a `..` segment, a backslash or a NUL.
 * Returns "" for the root itself ("", ".", "./").
 */
export function normalizeRepoPath(path: string): string {
  if (path.includes("\0")) throw new UnsafePathError(path, "contains a NUL character");
  if (path.includes("\\")) throw new UnsafePathError(path, "use / as the separator");
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path))
    throw new UnsafePathError(path, "must be relative to the repository root");
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw new UnsafePathError(path, "must not contain '..'");
    parts.push(part);
  }
  return parts.join("/");
}

/** `normalizeRepoPath` for a file: the result must name something below the root. */
export function normalizeFilePath(path: string): string {
  const normalized = normalizeRepoPath(path);
  if (normalized === "") throw new UnsafePathError(path, "names the root, not a file");
  return normalized;
}

/** Joins the watched root and a path below it ("" root means the repository root). */
export function joinRepoPath(root: string, path: string): string {
  return root === "" ? path : path === "" ? root : `${root}/${path}`;
}

/**
 * Checks a branch name the way `git check-ref-format --branch` does (the common rules) and
 * returns its short form ("refs/heads/x" → "x").
 */
export function checkBranchName(branch: string): string {
  const name = branch.startsWith("refs/heads/") ? branch.slice("refs/heads/".length) : branch;
  const bad =
    name === "" ||
    name === "@" ||
    name.startsWith("-") ||
    name.startsWith("/") ||
    name.endsWith("/") ||
    name.endsWith(".") ||
    name.endsWith(".lock") ||
    name.includes("..") ||
    name.includes("//") ||
    name.includes("@{") ||
    name.split("/").some((p) => p.startsWith(".")) ||
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we reject
    /[\x00-\x20\x7f~^:?*[\\]/.test(name);
  if (bad) throw new InvalidSourceError(`"${branch}" is not a valid branch name`, { branch });
  return name;
}
