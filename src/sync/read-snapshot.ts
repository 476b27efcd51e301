/**
 * Reads one commit of the fleet repository into a RepositorySnapshot (src/validate/model.ts),
 * straight from the object store: the watched root's `fleet.yaml` and every
 * `groups/<name>/` folder (its `group.yaml` and its other regular files; sub-folders are not
 * read). No checkout, no work tree.
 *
 * Reuse: a group folder whose tree id was read before is not read again (the same GroupFolder
 * object is returned), so a commit that changes one group of 1,000 reads about one group.
 * The reader keeps the folders of its last successful read.
 *
 * What the reader reports itself, as Findings (line 1, column 1: they concern whole entries):
 * - SYNC_SYMLINK_NOT_FOLLOWED (error): a symbolic link where the fleet is read (group file,
 *   group folder, `groups`, `fleet.yaml`, the watched path). Links are never followed, so a
 *   commit cannot make the service read outside the tree or the repository.
 * - SYNC_SUBMODULE_NOT_FOLLOWED (error): a submodule (gitlink) in the same places.
 * - SYNC_SUBFOLDER_IGNORED (warning): a folder inside a group folder (not served).
 * - SYNC_NOT_A_FOLDER / SYNC_NOT_A_FILE (error): `groups` is a file, `fleet.yaml` a folder.
 * - SYNC_PATH_NOT_FOUND (error): the watched path does not exist in the commit.
 */
import type { Finding, GroupFolder, RepositorySnapshot } from "../validate/model.js";
import { type ObjectStore, SYMLINK_MODE, type TreeEntry } from "./object-store.js";
import { joinRepoPath, normalizeFilePath } from "./paths.js";

export interface ReadStats {
  groupsRead: number;
  groupsReused: number;
  blobsRead: number;
  treesRead: number;
  durationMs: number;
}

export interface SnapshotRead {
  commit: string;
  /** Tree id of the watched root in this commit (undefined when the path is missing). */
  rootTreeId?: string;
  snapshot: RepositorySnapshot;
  /** Problems found while reading (see the module comment); errors stall the commit. */
  findings: Finding[];
  stats: ReadStats;
  /** Tree id of every group folder of the commit, by name (also those `only` left out). */
  groupTrees: Map<string, string>;
}

export interface ReadOptions {
  /**
   * Reads only the group folders this accepts (by name and tree id); the others are left out
   * of the snapshot (not read at all) but listed in `groupTrees`. Default: every group.
   */
  only?: (name: string, treeId: string) => boolean;
}

export interface SnapshotReaderOptions {
  /** Group folders read in parallel. Default 32. */
  concurrency?: number;
}

/** A folder's content plus its entries that are not served, rendered per group name. */
interface CachedGroup {
  folder: GroupFolder;
  /** Sub-folders (ignored, a warning) and symlinks or submodules (not followed, an error). */
  skipped: TreeEntry[];
}

const GROUPS = "groups";

function finding(
  file: string,
  code: string,
  severity: "error" | "warning",
  message: string,
  data?: Record<string, unknown>,
): Finding {
  return { file, line: 1, column: 1, severity, code, message, ...(data ? { data } : {}) };
}

/** The finding for an entry that is neither a regular file nor a folder. */
function notFollowed(file: string, entry: TreeEntry): Finding {
  const symlink = entry.mode === SYMLINK_MODE;
  return finding(
    file,
    symlink ? "SYNC_SYMLINK_NOT_FOLLOWED" : "SYNC_SUBMODULE_NOT_FOLLOWED",
    "error",
    symlink
      ? `${file} is a symbolic link; links are not followed: commit the file itself`
      : `${file} is a submodule; submodules are not read: commit the files themselves`,
    { mode: entry.mode },
  );
}

const isFile = (e: TreeEntry) => e.type === "blob" && e.mode !== SYMLINK_MODE;
const isFolder = (e: TreeEntry) => e.type === "tree";

export class SnapshotReader {
  readonly #store: ObjectStore;
  readonly #root: string;
  readonly #concurrency: number;
  #groups = new Map<string, CachedGroup>();

  /** `root` is the normalized watched path ("" for the repository root). */
  constructor(store: ObjectStore, root: string, options: SnapshotReaderOptions = {}) {
    this.#store = store;
    this.#root = root;
    this.#concurrency = options.concurrency ?? 32;
  }

  /** Reads `commit`. Throws ObjectReadError when the object store cannot be read. */
  async read(commit: string, options: ReadOptions = {}): Promise<SnapshotRead> {
    const started = performance.now();
    const stats: ReadStats = {
      groupsRead: 0,
      groupsReused: 0,
      blobsRead: 0,
      treesRead: 0,
      durationMs: 0,
    };
    const findings: Finding[] = [];
    const groups = new Map<string, GroupFolder>();
    const groupTrees = new Map<string, string>();
    const store = this.#store;
    const commitTree = await store.commitTree(commit);
    const readFile = (path: string) => this.#readFile(commitTree, path);
    const snapshot: RepositorySnapshot = { groups, readFile };
    const done = (rootTreeId?: string): SnapshotRead => {
      stats.durationMs = performance.now() - started;
      return { commit, rootTreeId, snapshot, findings, stats, groupTrees };
    };

    const rootTreeId = await this.#resolveRoot(commitTree, findings);
    if (!rootTreeId) return done();
    const rootEntries = await store.readTree(rootTreeId);
    stats.treesRead++;

    const fleet = rootEntries.find((e) => e.path === "fleet.yaml");
    if (fleet) {
      if (isFile(fleet)) {
        snapshot.fleet = await store.readBlob(fleet.oid);
        stats.blobsRead++;
      } else if (isFolder(fleet)) {
        findings.push(
          finding(
            "fleet.yaml",
            "SYNC_NOT_A_FILE",
            "error",
            "fleet.yaml is a folder; it must be a file",
          ),
        );
      } else {
        findings.push(notFollowed("fleet.yaml", fleet));
      }
    }

    const groupsEntry = rootEntries.find((e) => e.path === GROUPS);
    const next = new Map<string, CachedGroup>();
    if (groupsEntry && !isFolder(groupsEntry)) {
      findings.push(
        isFile(groupsEntry)
          ? finding(
              GROUPS,
              "SYNC_NOT_A_FOLDER",
              "error",
              "groups is a file; it must be a folder of group folders",
            )
          : notFollowed(GROUPS, groupsEntry),
      );
    } else if (groupsEntry) {
      const entries = await store.readTree(groupsEntry.oid);
      stats.treesRead++;
      const folders: TreeEntry[] = [];
      for (const entry of entries) {
        if (isFolder(entry)) {
          groupTrees.set(entry.path, entry.oid);
          if (options.only?.(entry.path, entry.oid) ?? true) folders.push(entry);
        } else if (!isFile(entry)) findings.push(notFollowed(`${GROUPS}/${entry.path}`, entry));
        // Plain files directly under groups/ (a README, say) are not groups: ignored.
      }
      const results = await mapLimit(folders, this.#concurrency, async (entry) => {
        let cached = this.#groups.get(entry.oid) ?? next.get(entry.oid);
        if (cached) {
          stats.groupsReused++;
        } else {
          cached = await this.#readGroup(entry.oid, stats);
          stats.groupsRead++;
        }
        next.set(entry.oid, cached);
        return cached;
      });
      folders.forEach((entry, i) => {
        const cached = results[i] as CachedGroup;
        const name = entry.path;
        groups.set(name, cached.folder);
        for (const skip of cached.skipped) {
          const file = `${GROUPS}/${name}/${skip.path}`;
          findings.push(
            isFolder(skip)
              ? finding(
                  file,
                  "SYNC_SUBFOLDER_IGNORED",
                  "warning",
                  `${file} is a folder; only the files directly in a group folder are served`,
                )
              : notFollowed(file, skip),
          );
        }
      });
    }
    this.#groups = next;
    return done(rootTreeId);
  }

  /** Walks the watched path from the commit's tree; undefined (with a finding) when absent. */
  async #resolveRoot(commitTree: string, findings: Finding[]): Promise<string | undefined> {
    let tree = commitTree;
    if (this.#root === "") return tree;
    const parts = this.#root.split("/");
    for (let i = 0; i < parts.length; i++) {
      const entry = (await this.#store.readTree(tree)).find((e) => e.path === parts[i]);
      const here = parts.slice(0, i + 1).join("/");
      if (!entry || isFile(entry)) {
        findings.push(
          finding(
            here,
            "SYNC_PATH_NOT_FOUND",
            "error",
            `the watched path ${this.#root} is not a folder of this commit`,
            {
              path: this.#root,
            },
          ),
        );
        return undefined;
      }
      if (!isFolder(entry)) {
        findings.push(notFollowed(here, entry));
        return undefined;
      }
      tree = entry.oid;
    }
    return tree;
  }

  async #readGroup(treeId: string, stats: ReadStats): Promise<CachedGroup> {
    const entries = await this.#store.readTree(treeId);
    stats.treesRead++;
    const folder: GroupFolder = { files: new Map(), treeId };
    const blobs = entries.filter(isFile);
    const bodies = await Promise.all(blobs.map((e) => this.#store.readBlob(e.oid)));
    stats.blobsRead += blobs.length;
    blobs.forEach((entry, i) => {
      const body = bodies[i] as Uint8Array;
      if (entry.path === "group.yaml") folder.groupYaml = body;
      else folder.files.set(entry.path, body);
    });
    const skipped = entries.filter((e) => !isFile(e));
    return { folder, skipped };
  }

  /**
   * `readFile` of the snapshot: a file of the watched root by root-relative path, from the
   * same commit. The path is checked again (normalized, no `..`, not absolute): an unsafe path
   * rejects with UnsafePathError. A missing file, a folder, a symlink or a submodule anywhere
   * on the way resolves undefined (links are not followed).
   */
  async #readFile(commitTree: string, path: string): Promise<Uint8Array | undefined> {
    const full = joinRepoPath(this.#root, normalizeFilePath(path)).split("/");
    let tree = commitTree;
    for (let i = 0; i < full.length; i++) {
      const entry = (await this.#store.readTree(tree)).find((e) => e.path === full[i]);
      if (!entry) return undefined;
      const last = i === full.length - 1;
      if (last) return isFile(entry) ? this.#store.readBlob(entry.oid) : undefined;
      if (!isFolder(entry)) return undefined;
      tree = entry.oid;
    }
    return undefined;
  }
}

/** Maps with at most `limit` calls in flight; results in input order. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
