/**
 * Reads a directory (a working tree: what a pull-request check runs on) into a
 * RepositorySnapshot: `fleet.yaml` and every `groups/<name>/` folder with its regular files.
 *
 * Symbolic links are never followed (a link could point outside the repository): each one is
 * reported as WORKTREE_SYMLINK_NOT_FOLLOWED (error) and left out. Folders inside a group
 * folder are not read (WORKTREE_SUBFOLDER_IGNORED, warning). `readFile` accepts only
 * normalized repository-relative paths and refuses any path through a link, so it cannot
 * leave the root.
 */
import { lstat, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  FileTooLargeError,
  PathRefusedError,
  SymlinkNotFollowedError,
  WorkingTreeNotADirectoryError,
  WorkingTreeNotFoundError,
} from "./errors.js";
import { finding, START } from "./findings.js";
import type { Finding, GroupFolder, RepositorySnapshot } from "./model.js";
import { unsafePathReason } from "./schema-ref.js";

export interface WorkingTreeRead {
  snapshot: RepositorySnapshot;
  /** Problems found while reading; pass them to validateSnapshot's `findings` option. */
  findings: Finding[];
}

/** Files larger than this are not read at all (the validator's own limit is far lower). */
const READ_CAP = 64 * 1024 * 1024;

function symlinkFinding(path: string): Finding {
  return finding(
    path,
    START,
    "error",
    "WORKTREE_SYMLINK_NOT_FOLLOWED",
    `${path} is a symbolic link; links are not followed (one could point outside the repository): commit the file or folder itself`,
    { path },
  );
}

async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Reads a regular file, or records why it is not read. */
async function readRegular(
  abs: string,
  rel: string,
  size: number,
  findings: Finding[],
): Promise<Uint8Array | undefined> {
  if (size > READ_CAP) {
    findings.push(
      finding(
        rel,
        START,
        "error",
        "YAML_FILE_TOO_LARGE",
        `the file is ${size} bytes, far over the limit; it was not read`,
        { size },
      ),
    );
    return undefined;
  }
  return new Uint8Array(await readFile(abs));
}

/** Reads the working tree at `root`. Throws WorkingTreeError when root is not a directory. */
export async function readWorkingTree(root: string): Promise<WorkingTreeRead> {
  const rootStat = await lstatOrUndefined(root);
  if (!rootStat) throw new WorkingTreeNotFoundError(root);
  if (!rootStat.isDirectory()) throw new WorkingTreeNotADirectoryError(root);

  const findings: Finding[] = [];
  const groups = new Map<string, GroupFolder>();
  const snapshot: RepositorySnapshot = { groups, readFile: (path) => readInside(root, path) };

  const fleetStat = await lstatOrUndefined(join(root, "fleet.yaml"));
  if (fleetStat?.isSymbolicLink()) findings.push(symlinkFinding("fleet.yaml"));
  else if (fleetStat?.isFile()) {
    const bytes = await readRegular(
      join(root, "fleet.yaml"),
      "fleet.yaml",
      fleetStat.size,
      findings,
    );
    if (bytes) snapshot.fleet = bytes;
  } else if (fleetStat)
    findings.push(
      finding(
        "fleet.yaml",
        START,
        "error",
        "WORKTREE_NOT_A_FILE",
        "fleet.yaml is not a regular file",
      ),
    );

  const groupsStat = await lstatOrUndefined(join(root, "groups"));
  if (groupsStat?.isSymbolicLink()) findings.push(symlinkFinding("groups"));
  else if (groupsStat && !groupsStat.isDirectory())
    findings.push(
      finding(
        "groups",
        START,
        "error",
        "WORKTREE_NOT_A_FOLDER",
        "groups is not a folder; it must hold one folder per group",
      ),
    );
  else if (groupsStat) {
    const entries = await readdir(join(root, "groups"), { withFileTypes: true });
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const rel = `groups/${entry.name}`;
      if (entry.isSymbolicLink()) findings.push(symlinkFinding(rel));
      else if (entry.isDirectory())
        groups.set(entry.name, await readGroup(join(root, "groups", entry.name), rel, findings));
      // Plain files directly in groups/ (a README) are not groups.
    }
  }
  return { snapshot, findings };
}

async function readGroup(abs: string, rel: string, findings: Finding[]): Promise<GroupFolder> {
  const folder: GroupFolder = { files: new Map() };
  const entries = await readdir(abs, { withFileTypes: true });
  for (const entry of entries) {
    const path = `${rel}/${entry.name}`;
    if (entry.isSymbolicLink()) {
      findings.push(symlinkFinding(path));
    } else if (entry.isDirectory()) {
      findings.push(
        finding(
          path,
          START,
          "warning",
          "WORKTREE_SUBFOLDER_IGNORED",
          `${path}/ is a folder inside a group folder; it is not read or served`,
          { path },
        ),
      );
    } else if (entry.isFile()) {
      const st = await lstat(join(abs, entry.name));
      const bytes = await readRegular(join(abs, entry.name), path, st.size, findings);
      if (!bytes) continue;
      if (entry.name === "group.yaml") folder.groupYaml = bytes;
      else folder.files.set(entry.name, bytes);
    }
  }
  return folder;
}

/**
 * Reads a file by repository-relative path, never through a link and never outside `root`.
 * Resolves undefined when there is no such regular file; throws WorkingTreeError for a path
 * that is not normalized or goes through a symbolic link.
 */
async function readInside(root: string, path: string): Promise<Uint8Array | undefined> {
  const unsafe = unsafePathReason(path);
  if (unsafe) throw new PathRefusedError(path, unsafe);
  let abs = root;
  const segments = path.split("/");
  for (let i = 0; i < segments.length; i++) {
    abs = join(abs, segments[i] as string);
    const st = await lstatOrUndefined(abs);
    if (!st) return undefined;
    if (st.isSymbolicLink())
      throw new SymlinkNotFollowedError(path, segments.slice(0, i + 1).join("/"));
    if (i === segments.length - 1) {
      if (!st.isFile()) return undefined;
      if (st.size > READ_CAP) throw new FileTooLargeError(path, st.size);
      return new Uint8Array(await readFile(abs));
    }
    if (!st.isDirectory()) return undefined;
  }
  return undefined;
}
