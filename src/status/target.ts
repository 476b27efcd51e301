/**
 * Where status commits go. Two modes (DESIGN §4), same layout:
 *
 * - `branch` (default): an orphan branch (`opamp-status`) whose history shares nothing with
 *   the config branch, so status commits never trigger its CI and never conflict with merges.
 *   A commit's parent is the status branch head.
 * - `folder`: a `status/` folder on the config branch. A commit's parent is the config branch
 *   head; user commits are never rewritten: when the branch moves, the status changes are
 *   applied again on top of the new head.
 *
 * A publish is a compare-and-swap of the branch: it succeeds only if the branch still points
 * at the commit the new one was built on; otherwise it answers "moved" and the writer builds
 * again on the new head.
 */
import type { ObjectWriter } from "./git-store/objects.js";

export type StatusMode = "branch" | "folder";

/**
 * What a remote target needs to send a commit's new objects itself: the store they were
 * written to, and the new blobs' content by id (in memory already). A local target needs
 * neither.
 */
export interface PublishedObjects {
  objects: ObjectWriter;
  fresh: ReadonlyMap<string, Uint8Array>;
}

export interface StatusTarget {
  /** "local" (a repository on this machine) or "remote" (pushed over HTTP(S)). */
  readonly kind: "local" | "remote";
  /** The branch status commits are published to. */
  readonly branch: string;
  /** The object store commits are written into. */
  readonly gitdir: string;
  /** Prepares the store (and checks the branch is safe to write). */
  open(): Promise<void>;
  /** The commit to build on (undefined: the status branch does not exist yet). */
  base(): Promise<string | undefined>;
  /** Forgets the remembered head (a remote is asked again at the next `base()`). */
  invalidate(): void;
  /**
   * Points the branch at `commit` if it still points at `base`. Resolves "published" or
   * "moved" (someone else published first); throws SyncError subclasses when the repository
   * or the remote fails (RemoteUnreachableError, AuthenticationError, PublishFailedError).
   */
  publish(
    commit: string,
    base: string | undefined,
    sent: PublishedObjects,
  ): Promise<"published" | "moved">;
  /** Whether loose objects that no status commit reaches may be deleted (own repository). */
  readonly ownsStore: boolean;
}
