/**
 * The smart-HTTP steps both remote repositories share (the source mirror, remote-mirror.ts,
 * and the status target, status/target-remote.ts): a bare clone tracking one branch, listing
 * the remote's branch heads, fetching one branch, and turning isomorphic-git's and fetch's
 * errors into SyncErrors with a stable code.
 */
import fs from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import * as git from "isomorphic-git";
import {
  AuthenticationError,
  BranchNotFoundError,
  RemoteUnreachableError,
  SyncError,
} from "./errors.js";
import { isGitNotFound } from "./git-errors.js";

type HttpClient = Parameters<typeof git.fetch>[0]["http"];

/** `loaded` of `total` (total 0 when unknown) in `phase`. */
export type FetchProgressListener = (e: { phase: string; loaded: number; total: number }) => void;

/**
 * Makes `gitdir` a bare repository whose origin is `url`, fetching `branch`. Nothing is done
 * when it already is; when it was made for another URL, `reset` deletes it first (a mirror
 * starts over), otherwise it is re-pointed in place (the status store keeps its own packs).
 */
export async function openBareClone(o: {
  gitdir: string;
  url: string;
  branch: string;
  reset: boolean;
}): Promise<void> {
  const { gitdir, url, branch } = o;
  let configured: unknown;
  try {
    configured = await git.getConfig({ fs, gitdir, path: "remote.origin.url" });
  } catch {
    configured = undefined;
  }
  if (configured === url) return;
  if (o.reset) await rm(gitdir, { recursive: true, force: true });
  await mkdir(gitdir, { recursive: true });
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

export interface RemoteCall {
  http: HttpClient;
  url: string;
  /** Authentication headers (copied per call: isomorphic-git adds its own to the object). */
  headers: Record<string, string>;
  /** Whether credentials were sent (for the authentication error's message). */
  withAuth: boolean;
}

/** The remote's branch heads under `prefix` (protocol v2, one small request). */
export async function listHeads(
  c: RemoteCall,
  prefix = "refs/heads/",
): Promise<Array<{ ref: string; oid: string }>> {
  try {
    const refs = await git.listServerRefs({
      http: c.http,
      url: c.url,
      headers: { ...c.headers },
      protocolVersion: 2,
      prefix,
    });
    return refs.filter((r) => r.ref.startsWith("refs/heads/"));
  } catch (err) {
    throw mapRemoteError(c.url, err, c.withAuth);
  }
}

/** Fetches `branch` into `gitdir`; resolves the fetched head (null when the server sent none). */
export async function fetchBranch(
  c: RemoteCall & { gitdir: string; branch: string; onProgress?: FetchProgressListener },
): Promise<string | null> {
  const { url, branch, onProgress } = c;
  try {
    const result = await git.fetch({
      fs,
      http: c.http,
      gitdir: c.gitdir,
      url,
      ref: branch,
      remoteRef: `refs/heads/${branch}`,
      singleBranch: true,
      tags: false,
      headers: { ...c.headers },
      cache: {},
      ...(onProgress
        ? {
            onProgress: (e: { phase: string; loaded: number; total?: number }) =>
              onProgress({ phase: e.phase, loaded: e.loaded, total: e.total ?? 0 }),
          }
        : {}),
    });
    return result.fetchHead;
  } catch (err) {
    if (isGitNotFound(err)) throw new BranchNotFoundError(url, branch, []);
    throw mapRemoteError(url, err, c.withAuth);
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
