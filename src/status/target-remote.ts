/**
 * A remote repository (http/https) as the status target: commits are made in a private bare
 * repository in the state directory (`<stateDir>/status.git`) and pushed with the same
 * credentials as the source: fetched with isomorphic-git, pushed with a pack built here
 * (push-pack.ts, sync/receive-pack.ts), which sends a 10,000-file flush in a fraction of the
 * time isomorphic-git's push took.
 *
 * The branch head is remembered from the last fetch or push, so a flush costs one push (two
 * requests) and no fetch. A push the remote refuses because the branch moved (someone else
 * pushed) answers "moved": the head is fetched again and the writer rebuilds on it. A push is
 * never forced.
 *
 * Every fetch leaves one more pack in the store. The store is the writer's own, so after a
 * fetch the packs fetched are adopted into the writer's pack list and merged with the
 * writer's packs once there are more than `maxPacks` (own-packs.ts): their number stays
 * bounded however often the branch moves.
 */
import fs from "node:fs";
import * as git from "isomorphic-git";
import { authHeaders, type Env, type GitAuth } from "../sync/credentials.js";
import { BranchNotFoundError } from "../sync/errors.js";
import { createHttpClient } from "../sync/http-client.js";
import { pushPack } from "../sync/receive-pack.js";
import { fetchBranch, listHeads, openBareClone } from "../sync/remote-fetch.js";
import { OwnPacks } from "./git-store/index.js";
import { buildPushPack } from "./push-pack.js";
import type { PublishedObjects, StatusTarget } from "./target.js";

export interface RemoteTargetOptions {
  url: string;
  /** The bare repository commits are made in, e.g. `<stateDir>/status.git`. */
  gitdir: string;
  /** The branch to publish to. */
  branch: string;
  /** "folder" mode: the branch must exist (it is the config branch). */
  mustExist: boolean;
  auth?: GitAuth;
  env?: Env;
  httpTimeoutMs?: number;
  /** Merge packs after a fetch when the store has more than this. Default 8. */
  maxPacks?: number;
}

export class RemoteTarget implements StatusTarget {
  readonly kind = "remote";
  readonly ownsStore = true;
  readonly branch: string;
  readonly gitdir: string;
  readonly #options: RemoteTargetOptions;
  readonly #http;
  readonly #packs: OwnPacks;
  /** The remote head as last seen; undefined = unknown, null = the branch does not exist. */
  #head: string | null | undefined;

  constructor(options: RemoteTargetOptions) {
    this.#options = options;
    this.branch = options.branch;
    this.gitdir = options.gitdir;
    this.#http = createHttpClient({ idleTimeoutMs: options.httpTimeoutMs });
    this.#packs = new OwnPacks(options.gitdir);
  }

  async open(): Promise<void> {
    const { gitdir, url, branch } = this.#options;
    await openBareClone({ gitdir, url, branch, reset: false });
  }

  async #call() {
    const { url, auth, env } = this.#options;
    const headers = await authHeaders(auth, env ?? {});
    return { http: this.#http, url, headers, withAuth: auth !== undefined };
  }

  invalidate(): void {
    this.#head = undefined;
  }

  async base(): Promise<string | undefined> {
    if (this.#head === undefined) {
      this.#head = await this.#fetch();
      await this.#tidy();
    }
    return this.#head ?? undefined;
  }

  /**
   * Adopts the packs fetched and merges while there are too many. A failure leaves the
   * packs as they are (nothing is removed before the merged pack reads back) and is not the
   * publish's concern: the packer, which merges the same list, reports it.
   */
  async #tidy(): Promise<void> {
    const max = Math.max(1, this.#options.maxPacks ?? 8);
    try {
      await this.#packs.adopt();
      while ((await this.#packs.merge(max)) > 0) {}
    } catch {
      // Left for the packer.
    }
  }

  /** Lists the remote branch and fetches it when it moved; null when it does not exist. */
  async #fetch(): Promise<string | null> {
    const { url, branch, gitdir } = this.#options;
    const call = await this.#call();
    const heads = await listHeads(call, `refs/heads/${branch}`);
    const remote = heads.find((r) => r.ref === `refs/heads/${branch}`)?.oid;
    if (!remote) {
      if (this.#options.mustExist) throw new BranchNotFoundError(url, branch, []);
      return null;
    }
    const local = await this.#local(`refs/heads/${branch}`);
    if (local === remote) return remote;
    const fetched = await fetchBranch({ ...call, gitdir, branch });
    if (!fetched) throw new BranchNotFoundError(url, branch, []);
    await this.#setLocal(`refs/heads/${branch}`, fetched);
    return fetched;
  }

  async #local(ref: string): Promise<string | undefined> {
    try {
      return await git.resolveRef({ fs, gitdir: this.gitdir, ref });
    } catch {
      return undefined;
    }
  }

  async #setLocal(ref: string, value: string): Promise<void> {
    await git.writeRef({ fs, gitdir: this.gitdir, ref, value, force: true });
  }

  /**
   * Pushes `commit` if the remote branch is still at `base` (sync/receive-pack.ts): the new
   * objects go in a pack built here (push-pack.ts) from the writer's store and the flush's
   * blobs in `sent`.
   */
  async publish(
    commit: string,
    base: string | undefined,
    sent: PublishedObjects,
  ): Promise<"published" | "moved"> {
    const { branch } = this.#options;
    const call = await this.#call();
    const result = await pushPack(call, {
      ref: `refs/heads/${branch}`,
      oldOid: base,
      newOid: commit,
      pack: () => buildPushPack(sent.objects, commit, base, sent.fresh),
    });
    if (result === "moved") {
      this.#head = undefined;
      return "moved";
    }
    this.#head = commit;
    await this.#setLocal(`refs/heads/${branch}`, commit);
    return "published";
  }
}
