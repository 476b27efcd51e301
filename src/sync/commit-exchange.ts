/**
 * Commits fetched once for all replicas. The replica that holds the Git lease fetches from
 * the remote; it hands each new head's objects (see `CommitObjectLister`) to a
 * `CommitExchange`, which shares them (src/service/git-duty.ts: through Redis). The other
 * replicas never talk to the remote: they copy the objects of the announced head into their
 * own mirror (`adoptCommit`) and read, validate and serve it as if they had fetched it.
 *
 * The objects of a commit are what reading and validating it can touch: the commit, the trees
 * on the way to the watched path, and everything below that path (group folders, and any file
 * a group may name, such as its own JSON Schema). History is not shared: a follower cannot
 * tell a rewritten history (`historyRewritten` stays unknown).
 */
import { SyncError } from "./errors.js";
import type { ObjectStore } from "./object-store.js";

/** The objects of one commit, listed; `read` gives one in its loose form (zlib). */
export interface CommitObjects {
  commit: string;
  oids: readonly string[];
  read(oid: string): Promise<Buffer>;
}

/** The head the fetching replica announced, and its objects' ids if it shared them. */
export interface AnnouncedHead {
  commit: string;
  /** Undefined: not shared (over the size bound, collected): fetch it from the remote. */
  oids?: readonly string[];
}

/** The seam between FleetSync and whatever carries commits between replicas. */
export interface CommitExchange {
  /** Whether this replica fetches from the remote now (the Git lease holder). */
  fetching(): boolean;
  /**
   * Fetching replica, after each fetch of a head it did not share yet: shares the commit
   * (`list` gives its objects) and announces it. Calls are handled in order. Resolves true
   * once announced, false when that failed; never rejects (failures are the exchange's to
   * report).
   */
  share(commit: string, list: () => Promise<CommitObjects>): Promise<boolean>;
  /** Following replica: the announced head; undefined while none was announced yet. */
  announced(): Promise<AnnouncedHead | undefined>;
  /** Following replica: objects in their loose form, null for one no longer shared. */
  objects(oids: readonly string[]): Promise<Array<Buffer | null>>;
}

/** A follower has nothing to serve yet: no replica announced a head. Retried. */
export class NoAnnouncedHeadError extends SyncError {
  constructor() {
    super(
      "SYNC_WAITING_FOR_FETCHER",
      "no head announced yet by the replica that fetches Git (the Git lease holder)",
    );
  }
}

/**
 * Lists a commit's objects (see the module comment). Subtrees unchanged since the previous
 * listing are not walked again: a commit that changes one group of 1,000 reads a few trees.
 */
export class CommitObjectLister {
  readonly #store: ObjectStore;
  readonly #root: string[];
  /** Each tree of the last listing → itself and every object below it. */
  #below = new Map<string, readonly string[]>();

  /** `root` is the normalized watched path ("" for the repository root). */
  constructor(store: ObjectStore, root: string) {
    this.#store = store;
    this.#root = root === "" ? [] : root.split("/");
  }

  async list(commit: string): Promise<CommitObjects> {
    const oids = [commit];
    let tree = await this.#store.commitTree(commit);
    for (const part of this.#root) {
      oids.push(tree);
      const entry = (await this.#store.readTree(tree)).find((e) => e.path === part);
      // A missing watched path is a finding of the read; its objects are the path so far.
      if (entry?.type !== "tree") return this.#objects(commit, oids);
      tree = entry.oid;
    }
    const next = new Map<string, readonly string[]>();
    oids.push(...(await this.#walk(tree, next)));
    this.#below = next;
    return this.#objects(commit, oids);
  }

  async #walk(tree: string, next: Map<string, readonly string[]>): Promise<readonly string[]> {
    const known = this.#below.get(tree) ?? next.get(tree);
    if (known) {
      next.set(tree, known);
      return known;
    }
    const out = [tree];
    for (const entry of await this.#store.readTree(tree)) {
      if (entry.type === "tree") out.push(...(await this.#walk(entry.oid, next)));
      else if (entry.type === "blob") out.push(entry.oid);
      // A submodule's commit is not in this repository: nothing to share.
    }
    next.set(tree, out);
    return out;
  }

  #objects(commit: string, oids: string[]): CommitObjects {
    const store = this.#store;
    return { commit, oids: [...new Set(oids)], read: (oid) => store.readLoose(oid) };
  }
}

/**
 * Copies the objects of `head` that `store` lacks from the exchange into it. Resolves false
 * when some were not shared any more (the caller fetches from the remote instead); throws
 * ObjectReadError when a shared object does not hash to its id.
 */
export async function adoptCommit(
  store: ObjectStore,
  exchange: CommitExchange,
  head: { commit: string; oids: readonly string[] },
  known: Set<string>,
): Promise<boolean> {
  const missing: string[] = [];
  for (const oid of head.oids) {
    if (known.has(oid)) continue;
    if (await store.hasLoose(oid)) known.add(oid);
    else missing.push(oid);
  }
  // Batches bound one reply's size (objects of a few KiB: a few MiB per batch).
  for (let i = 0; i < missing.length; i += 500) {
    const batch = missing.slice(i, i + 500);
    const bodies = await exchange.objects(batch);
    for (let j = 0; j < batch.length; j++) {
      const body = bodies[j];
      const oid = batch[j] as string;
      if (!body) return false;
      await store.addLoose(oid, body);
      known.add(oid);
    }
  }
  return true;
}
