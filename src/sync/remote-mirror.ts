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
import fs from "node:fs";
import { rm } from "node:fs/promises";
import * as git from "isomorphic-git";
import { authHeaders, type Env, type GitAuth } from "./credentials.js";
import {
  AuthenticationError,
  BranchNotFoundError,
  EmptyRepositoryError,
  RemoteUnreachableError,
  SyncError,
} from "./errors.js";
import { createHttpClient } from "./http-client.js";
import { ObjectStore } from "./object-store.js";

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

/** `loaded` of `total` (total 0 when unknown) in `phase`. */
export type FetchProgressListener = (e: { phase: string; loaded: number; total: number }) => void;

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

  /** Creates the bare mirror, or starts over when it was made for another URL. */
  async open(): Promise<void> {
    const { gitdir, url, branch } = this.#options;
    let configured: unknown;
    try {
      configured = await git.getConfig({ fs, gitdir, path: "remote.origin.url" });
    } catch {
      configured = undefined;
    }
    if (configured !== url) {
      await rm(gitdir, { recursive: true, force: true });
      await git.init({ fs, bare: true, dir: gitdir, defaultBranch: branch });
      await git.setConfig({ fs, gitdir, path: "remote.origin.url", value: url });
      // isomorphic-git's fetch refuses to run without a fetch refspec for the remote.
      await git.setConfig({
        fs,
        gitdir,
        path: "remote.origin.fetch",
        value: `+refs/heads/${branch}:refs/remotes/origin/${branch}`,
      });
    }
    this.#opened = true;
  }

  /** Brings the branch up to date and returns its head. Throws SyncError subclasses. */
  async update(): Promise<MirrorUpdate> {
    if (!this.#opened) await this.open();
    const { url, branch, gitdir, auth, env } = this.#options;
    const auth0 = await authHeaders(auth, env);
    const withAuth = auth !== undefined;
    let refs: Array<{ ref: string; oid: string }>;
    try {
      // A fresh headers object per call: isomorphic-git adds its own headers to it.
      refs = await git.listServerRefs({
        http: this.#http,
        url,
        headers: { ...auth0 },
        protocolVersion: 2,
        prefix: "refs/heads/",
      });
    } catch (err) {
      throw mapRemoteError(url, err, withAuth);
    }
    const heads = refs.filter((r) => r.ref.startsWith("refs/heads/"));
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
    if (local === remoteHead) return { commit: local, fetched: false };
    let fetchHead: string | null;
    try {
      const result = await git.fetch({
        fs,
        http: this.#http,
        gitdir,
        url,
        ref: branch,
        remoteRef: `refs/heads/${branch}`,
        singleBranch: true,
        tags: false,
        headers: { ...auth0 },
        cache: {},
        ...(this.#options.onProgress
          ? {
              onProgress: (e: { phase: string; loaded: number; total?: number }) =>
                this.#options.onProgress?.({
                  phase: e.phase,
                  loaded: e.loaded,
                  total: e.total ?? 0,
                }),
            }
          : {}),
      });
      fetchHead = result.fetchHead;
    } catch (err) {
      if ((err as { code?: string }).code === "NotFoundError")
        throw new BranchNotFoundError(url, branch, []);
      throw mapRemoteError(url, err, withAuth);
    }
    if (!fetchHead) throw new EmptyRepositoryError(url);
    await this.store.setBranch(branch, fetchHead);
    return { commit: fetchHead, fetched: true };
  }
}

/** isomorphic-git's errors that mean the remote is not (or not really) a Git server. */
const NOT_A_GIT_SERVER = new Set([
  "SmartHttpError",
  "EmptyServerResponseError",
  "UnknownTransportError",
]);

/** isomorphic-git and fetch errors → SyncError with a stable code. */
export function mapRemoteError(source: string, err: unknown, withAuth: boolean): SyncError {
  if (err instanceof SyncError) return err;
  const e = err as {
    code?: string;
    data?: { statusCode?: number };
    message?: string;
    cause?: unknown;
  };
  if (e.code === "HttpError") {
    const status = e.data?.statusCode ?? 0;
    if (status === 401 || status === 403)
      return new AuthenticationError(source, status, withAuth, err);
    return new RemoteUnreachableError(source, `HTTP ${status}`, { statusCode: status }, err);
  }
  if (e.code && NOT_A_GIT_SERVER.has(e.code))
    return new RemoteUnreachableError(
      source,
      `not a Git smart-HTTP server (${e.code})`,
      { reason: e.code },
      err,
    );
  if (e.code && /^[A-Z]\w+Error$/.test(e.code))
    // Any other isomorphic-git error: the transfer or the local mirror went wrong.
    return new SyncError(
      "SYNC_FETCH_FAILED",
      `fetching ${source} failed: ${e.message}`,
      { source, reason: e.code },
      { cause: err },
    );
  // Node's fetch: TypeError("fetch failed") with the socket error as cause, or an abort.
  const cause = e.cause as { code?: string; message?: string } | undefined;
  const detail = cause?.code ?? cause?.message ?? e.message ?? String(err);
  return new RemoteUnreachableError(
    source,
    detail,
    { reason: cause?.code ?? e.code ?? "network" },
    err,
  );
}
