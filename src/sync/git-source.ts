/**
 * The Git source: where commits of the fleet repository come from.
 *
 * - A local repository (a path to a work tree, a linked work tree or a bare repository) is
 *   read in place from its object store; its work tree is never looked at.
 * - A remote one (http/https URL) is mirrored into `<stateDir>/source.git` (bare, no work
 *   tree) and fetched by `refresh()`.
 *
 * `refresh()` is one attempt, no timers: it returns the branch head and whether it moved,
 * and tells a rewritten history (the previous head is not an ancestor of the new one) without
 * failing on it. Polling, triggers and backoff are FleetSync's job.
 */
import { join, resolve } from "node:path";
import type { Env, GitAuth } from "./credentials.js";
import { BranchNotFoundError, EmptyRepositoryError, InvalidSourceError } from "./errors.js";
import { findGitDir } from "./local-repository.js";
import { ObjectStore } from "./object-store.js";
import { checkBranchName, normalizeRepoPath } from "./paths.js";
import { type FetchProgressListener, RemoteMirror } from "./remote-mirror.js";

export interface GitSourceOptions {
  /** A local repository path, or an http(s) URL (no credentials in it). */
  repo: string;
  /** Watched branch. Default "main". */
  branch?: string;
  /** Watched sub-folder (as Flux's `path`): relative, no `..`. Default: the repository root. */
  path?: string;
  /** Where a remote is mirrored (`<stateDir>/source.git`). Required for a remote. */
  stateDir?: string;
  /** Credentials for a remote (from files or variables, see credentials.ts). */
  auth?: GitAuth;
  /** The environment that `{ env: NAME }` secrets are read from. Default: empty. */
  env?: Env;
  /** HTTP idle timeout for a remote, ms. Default 30 000. */
  httpTimeoutMs?: number;
  /** Commits walked at most to tell a fast-forward from a rewrite. Default 10 000. */
  ancestryDepth?: number;
  /** The head seen before a restart, so a rewrite across a restart is reported too. */
  previousHead?: string;
  /** Progress of fetches from a remote (the first one is a full clone). */
  onProgress?: FetchProgressListener;
}

export interface HeadUpdate {
  /** The branch head now. */
  commit: string;
  /** The head before this refresh (undefined on the first one). */
  previous?: string;
  /** The head moved since the previous refresh. */
  changed: boolean;
  /**
   * The previous head is not an ancestor of the new one: history was rewritten (a force
   * push, a reset). Undefined when unknown (first refresh, or the walk hit `ancestryDepth`).
   */
  historyRewritten?: boolean;
  /** A remote transferred objects in this refresh. */
  fetched: boolean;
}

/** Parses `repo`: an http(s) URL, a `file:` URL or a path. */
export function parseRepo(
  repo: string,
): { kind: "remote"; url: string } | { kind: "local"; path: string } {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repo)) {
    let url: URL;
    try {
      url = new URL(repo);
    } catch {
      throw new InvalidSourceError(`"${repo}" is not a valid URL`, { repo });
    }
    if (url.protocol === "file:") return { kind: "local", path: decodeURIComponent(url.pathname) };
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new InvalidSourceError(
        `unsupported scheme ${url.protocol} in ${url.origin}: use an http(s) URL (SSH is not supported)`,
        { scheme: url.protocol },
      );
    if (url.username || url.password) {
      url.username = "";
      url.password = "";
      throw new InvalidSourceError(
        `credentials in the repository URL are not accepted (they show in ps and logs): ` +
          `give a token file or variable instead`,
        { url: url.toString() },
      );
    }
    return { kind: "remote", url: url.toString().replace(/\/$/, "") };
  }
  if (/^[\w.-]+@[\w.-]+:/.test(repo))
    throw new InvalidSourceError(
      `"${repo}" is an SSH address: use the repository's https URL with a token`,
      { repo },
    );
  return { kind: "local", path: repo };
}

export class GitSource {
  readonly kind: "local" | "remote";
  /** The URL or path, for messages (never carries credentials). */
  readonly location: string;
  readonly branch: string;
  /** The watched sub-folder, normalized; "" is the repository root. */
  readonly root: string;
  readonly #options: GitSourceOptions;
  #mirror?: RemoteMirror;
  #store?: ObjectStore;
  #head?: string;

  /** Checks the options (throws InvalidSourceError / UnsafePathError); does no I/O. */
  constructor(options: GitSourceOptions) {
    this.#options = options;
    const parsed = parseRepo(options.repo);
    this.kind = parsed.kind;
    this.location = parsed.kind === "remote" ? parsed.url : parsed.path;
    this.branch = checkBranchName(options.branch ?? "main");
    this.root = normalizeRepoPath(options.path ?? "");
    this.#head = options.previousHead;
    if (parsed.kind === "remote") {
      if (!options.stateDir)
        throw new InvalidSourceError("a remote repository needs a state directory", {
          url: parsed.url,
        });
      this.#mirror = new RemoteMirror({
        url: parsed.url,
        gitdir: resolve(join(options.stateDir, "source.git")),
        branch: this.branch,
        auth: options.auth,
        env: options.env ?? {},
        idleTimeoutMs: options.httpTimeoutMs,
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      });
      this.#store = this.#mirror.store;
    }
  }

  /** The object store commits are read from (after the first successful `refresh()`). */
  get store(): ObjectStore {
    if (!this.#store) throw new InvalidSourceError("the source was not refreshed yet");
    return this.#store;
  }

  /** Sets the head remembered from before a restart (ignored once a refresh happened). */
  assumeHead(commit: string): void {
    this.#head ??= commit;
  }

  /** The last head returned by `refresh()`. */
  get head(): string | undefined {
    return this.#head;
  }

  /**
   * One attempt to bring the branch head up to date. Throws SyncError subclasses:
   * SYNC_NOT_A_REPOSITORY, SYNC_EMPTY_REPOSITORY, SYNC_BRANCH_NOT_FOUND, SYNC_AUTH_FAILED,
   * SYNC_CREDENTIALS_UNAVAILABLE, SYNC_REMOTE_UNREACHABLE, SYNC_READ_FAILED.
   */
  async refresh(): Promise<HeadUpdate> {
    let commit: string;
    let fetched = false;
    if (this.#mirror) {
      const update = await this.#mirror.update();
      commit = update.commit;
      fetched = update.fetched;
    } else {
      this.#store ??= new ObjectStore(await findGitDir(this.location));
      const found = await this.#store.resolveBranch(this.branch);
      if (!found) {
        const branches = await this.#store.listBranches();
        if (branches.length === 0) throw new EmptyRepositoryError(this.location);
        throw new BranchNotFoundError(this.location, this.branch, branches);
      }
      commit = found;
    }
    const previous = this.#head;
    const changed = previous !== commit;
    let historyRewritten: boolean | undefined;
    if (changed) await this.store.refreshCache();
    if (previous !== undefined && changed) {
      const ancestor = await this.store.isAncestor(
        previous,
        commit,
        this.#options.ancestryDepth ?? 10_000,
      );
      historyRewritten = ancestor === undefined ? undefined : !ancestor;
    } else if (previous !== undefined) {
      historyRewritten = false;
    }
    this.#head = commit;
    return { commit, previous, changed, historyRewritten, fetched };
  }
}
