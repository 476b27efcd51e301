/**
 * Revisions as a pull-request check names them (`--base origin/main --head HEAD`, a commit id,
 * a tag, `main~2`) resolved to commit ids in a repository's object store, with no work tree.
 *
 * Accepted: a full or abbreviated (at least 4 hex digits) commit id; a ref name as Git expands
 * it (`HEAD`, `main`, `refs/heads/main`, `origin/main`, `v1.2`), an annotated tag peeled to its
 * commit; followed by any number of `~N` (N-th first parent) and `^` / `^1` (first parent).
 * Anything else (`^2`, `@{upstream}`, ranges) is a RevisionNotFoundError that says so.
 */
import * as git from "isomorphic-git";
import { SyncError } from "./errors.js";
import { readingFs } from "./git-fs.js";

/** A revision that does not name a commit of the repository. */
export class RevisionNotFoundError extends SyncError {
  constructor(revision: string, reason: string) {
    super("SYNC_REVISION_NOT_FOUND", `revision "${revision}" ${reason}`, { revision });
  }
}

const SUFFIX = /(~\d*|\^\d*)$/;
/** Most tag objects peeled before giving up (a tag of a tag of ...). */
const MAX_PEEL = 10;

/** Resolves `revision` in the repository at `gitdir` to a 40-hex commit id. */
export async function resolveRevision(gitdir: string, revision: string): Promise<string> {
  const fs = readingFs(gitdir);
  const cache = {};
  let base = revision.trim();
  const steps: number[] = [];
  for (let m = SUFFIX.exec(base); m && base.length > m[0].length; m = SUFFIX.exec(base)) {
    const op = m[0];
    const n = op.length > 1 ? Number(op.slice(1)) : 1;
    if (op.startsWith("^") && n > 1)
      throw new RevisionNotFoundError(revision, `uses ${op}: only first parents (~N, ^) are read`);
    steps.unshift(op.startsWith("^") ? Math.min(n, 1) : n);
    base = base.slice(0, -op.length);
  }
  if (base === "" || /\s|\.\.|@\{|:/.test(base))
    throw new RevisionNotFoundError(
      revision,
      "is not a commit id or a ref name (ranges, reflog and path syntax are not read)",
    );

  let oid: string | undefined;
  if (/^[0-9a-f]{40}$/i.test(base)) oid = base.toLowerCase();
  else {
    try {
      oid = await git.resolveRef({
        fs,
        gitdir,
        ref: await git.expandRef({ fs, gitdir, ref: base }),
      });
    } catch {
      if (/^[0-9a-f]{4,39}$/i.test(base)) {
        try {
          oid = await git.expandOid({ fs, gitdir, oid: base.toLowerCase(), cache });
        } catch (err) {
          const ambiguous = (err as { code?: string }).code === "AmbiguousError";
          throw new RevisionNotFoundError(
            revision,
            ambiguous
              ? "is an ambiguous abbreviated commit id"
              : "names no commit of the repository",
          );
        }
      }
    }
  }
  if (!oid)
    throw new RevisionNotFoundError(
      revision,
      "names no branch, tag or commit of the repository (in a CI clone, fetch it first: git fetch origin <branch>)",
    );

  let commit = await peel(gitdir, fs, cache, oid, revision);
  for (const n of steps) {
    for (let i = 0; i < n; i++) {
      const { commit: c } = await git.readCommit({ fs, gitdir, oid: commit, cache });
      const parent = c.parent[0];
      if (!parent)
        throw new RevisionNotFoundError(revision, `goes past the first commit (${commit})`);
      commit = parent;
    }
  }
  return commit;
}

/** The commit `oid` is, or the commit an annotated tag (chain) points to. */
async function peel(
  gitdir: string,
  fs: ReturnType<typeof readingFs>,
  cache: object,
  oid: string,
  revision: string,
): Promise<string> {
  let current = oid;
  for (let i = 0; i < MAX_PEEL; i++) {
    let type: string;
    try {
      ({ type } = await git.readObject({ fs, gitdir, oid: current, format: "content", cache }));
    } catch {
      throw new RevisionNotFoundError(
        revision,
        `points to ${current}, which is not in the repository`,
      );
    }
    if (type === "commit") return current;
    if (type !== "tag") throw new RevisionNotFoundError(revision, `is a ${type}, not a commit`);
    const { tag } = await git.readTag({ fs, gitdir, oid: current, cache });
    current = tag.object;
  }
  throw new RevisionNotFoundError(revision, "is a chain of more than 10 tags");
}
