/**
 * A private mirror of a remote repository's watched branch in the state directory
 * (`<stateDir>/source.git`): a bare repository (no work tree), kept current with
 * isomorphic-git over smart HTTP.
 *
 * `update()` first lists the remote's branches (one GET, protocol v2 with a `refs/heads/`
 * prefix), and fetches only when the branch moved, so an idle poll costs one request and
 * writes nothing. After a fetch the local `refs/heads/<branch>` is forced to the fetched
 * commit: a rewritten (force-pushed) history is taken as it is, and the next fetch can tell
 * the server what we already have (isomorphic-git only offers local branches as "haves").
 */
import { authHeaders, type Env, type GitAuth } from "./credentials.js";
import { BranchNotFoundError, EmptyRepositoryError } from "./errors.js";
import { createHttpClient } from "./http-client.js";
import { ObjectStore } from "./object-store.js";
import {
  type FetchProgressListener,
  fetchBranch,
  listHeads,
  openBareClone,
} from "./remote-fetch.js";

export type { FetchProgressListener } from "./remote-fetch.js";

export interface RemoteMirrorOptions {
  url: string;
  gitdir: string;
  branch: string;
  auth?: GitAuth;
  env: Env;
  idleTimeoutMs?: number;
  /** Called as a fetch progresses (isomorphic-git's phases, e.g. "Receiving objects"). */
  onProgress?: FetchProgressListener;
}

export interface MirrorUpdate {
  commit: string;
  /** Objects were transferred (the branch had moved). */
  fetched: boolean;
}

export class RemoteMirror {
  readonly store: ObjectStore;
  readonly #options: RemoteMirrorOptions;
  readonly #http;
  #opened = false;

  constructor(options: RemoteMirrorOptions) {
    this.#options = options;
    this.store = new ObjectStore(options.gitdir);
    this.#http = createHttpClient({ idleTimeoutMs: options.idleTimeoutMs });
  }

  /** Creates the bare mirror, or starts over when it was made for another URL. Idempotent. */
  async open(): Promise<void> {
    if (this.#opened) return;
    const { gitdir, url, branch } = this.#options;
    await openBareClone({ gitdir, url, branch, reset: true });
    this.#opened = true;
  }

  /**
   * Brings the branch up to date and returns its head. Throws SyncError subclasses.
   * `present`: a commit whose objects are here though the branch does not point to it (one
   * copied from another replica): when the remote's head is that commit, nothing is fetched.
   * The branch is not moved to it: its history is not here, and the branch is what the next
   * fetch tells the server we have.
   */
  async update(present?: string): Promise<MirrorUpdate> {
    await this.open();
    const { url, branch, gitdir, auth, env, onProgress } = this.#options;
    const call = {
      http: this.#http,
      url,
      headers: await authHeaders(auth, env),
      withAuth: auth !== undefined,
    };
    const heads = await listHeads(call);
    if (heads.length === 0) throw new EmptyRepositoryError(url);
    const remoteHead = heads.find((r) => r.ref === `refs/heads/${branch}`)?.oid;
    if (!remoteHead) {
      throw new BranchNotFoundError(
        url,
        branch,
        heads.map((r) => r.ref.slice("refs/heads/".length)),
      );
    }
    const local = await this.store.resolveBranch(branch);
    if (local === remoteHead || present === remoteHead)
      return { commit: remoteHead, fetched: false };
    const fetchHead = await fetchBranch({ ...call, gitdir, branch, onProgress });
    if (!fetchHead) throw new EmptyRepositoryError(url);
    await this.store.setBranch(branch, fetchHead);
    return { commit: fetchHead, fetched: true };
  }
}
