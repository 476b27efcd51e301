/**
 * Git access for `opamp-gitops plan`: two commits of a local repository compared and read
 * straight from the object store (no checkout, no work tree), through the same SnapshotReader
 * `serve` uses, plus the agents the status branch knows.
 *
 * Cost is proportional to what a change touches: the watched root and `groups/` trees of both
 * commits are listed; only the group folders whose tree ids differ are read whole; of the
 * others only `group.yaml` is read (for the selectors), once, since it is the same blob in
 * both commits.
 */

import {
  type AgentCounts,
  type KnownAgents,
  readAgentCounts,
  readKnownAgents,
} from "./known-agents.js";
import { findGitDir } from "./local-repository.js";
import { ObjectStore } from "./object-store.js";
import { normalizeRepoPath } from "./paths.js";
import { type SnapshotRead, SnapshotReader } from "./read-snapshot.js";
import { resolveRevision } from "./revision.js";

/** The watched root of one commit, listed (nothing read yet). */
export interface FleetListing {
  commit: string;
  /** Entries of the watched root other than `groups`, by name → object id. */
  root: Map<string, string>;
  /** Group folders → tree id. */
  groups: Map<string, string>;
}

export class PlanSource {
  readonly store: ObjectStore;
  readonly #root: string;

  private constructor(store: ObjectStore, root: string) {
    this.store = store;
    this.#root = root;
  }

  /**
   * Opens the repository at `dir` (work tree, linked work tree or bare), watching `path`
   * ("" = the repository root). Throws NotARepositoryError, UnsafePathError.
   */
  static async open(dir: string, path = ""): Promise<PlanSource> {
    const gitdir = await findGitDir(dir);
    return new PlanSource(new ObjectStore(gitdir), normalizeRepoPath(path));
  }

  /** A revision (see revision.ts) → commit id. Throws RevisionNotFoundError. */
  resolve(revision: string): Promise<string> {
    return resolveRevision(this.store.gitdir, revision);
  }

  /** Lists the watched root and groups/ of `commit`; empty maps when the path is missing. */
  async list(commit: string): Promise<FleetListing> {
    const out: FleetListing = { commit, root: new Map(), groups: new Map() };
    let tree = await this.store.commitTree(commit);
    for (const part of this.#root.split("/").filter(Boolean)) {
      const entry = (await this.store.readTree(tree)).find((e) => e.path === part);
      if (entry?.type !== "tree") return out;
      tree = entry.oid;
    }
    for (const e of await this.store.readTree(tree)) {
      if (e.path !== "groups") out.root.set(e.path, `${e.mode}:${e.oid}`);
      else if (e.type === "tree")
        for (const g of await this.store.readTree(e.oid))
          if (g.type === "tree") out.groups.set(g.path, g.oid);
    }
    return out;
  }

  /** Reads `commit` as serve does, with only the group folders `names` holds. */
  read(commit: string, names: ReadonlySet<string>): Promise<SnapshotRead> {
    return new SnapshotReader(this.store, this.#root).read(commit, {
      only: (name) => names.has(name),
    });
  }

  /** A group folder's group.yaml (by the folder's tree id), or undefined. */
  async groupYaml(treeId: string): Promise<Uint8Array | undefined> {
    const entry = (await this.store.readTree(treeId)).find(
      (e) => e.path === "group.yaml" && e.type === "blob" && e.mode !== "120000",
    );
    return entry ? this.store.readBlob(entry.oid) : undefined;
  }

  /**
   * The agents recorded on the status branch `ref` (`refs/heads/<ref>`, else a remote-tracking
   * `origin/<ref>` as a CI clone has it, else any revision), or only those of the group
   * folders `groups` when given, at most `maxFiles`. Undefined when there is none.
   */
  async knownAgents(
    ref: string,
    groups?: ReadonlySet<string>,
    maxFiles?: number,
  ): Promise<(KnownAgents & { commit: string }) | undefined> {
    const commit = await this.#statusCommit(ref);
    if (!commit) return undefined;
    return { ...(await readKnownAgents(this.store, commit, "", groups, maxFiles)), commit };
  }

  /** The agents of `groups` on the status branch `ref`, counted; undefined without one. */
  async agentCounts(
    ref: string,
    groups: readonly string[],
  ): Promise<(AgentCounts & { commit: string }) | undefined> {
    const commit = await this.#statusCommit(ref);
    return commit ? { ...(await readAgentCounts(this.store, commit, groups)), commit } : undefined;
  }

  async #statusCommit(ref: string): Promise<string | undefined> {
    for (const candidate of [`refs/heads/${ref}`, `refs/remotes/origin/${ref}`, ref]) {
      try {
        return await this.resolve(candidate);
      } catch {
        // try the next spelling
      }
    }
    return undefined;
  }
}
