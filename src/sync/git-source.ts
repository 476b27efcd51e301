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
import {
  adoptCommit,
  type CommitExchange,
  CommitObjectLister,
  type CommitObjects,
  NoAnnouncedHeadError,
} from "./commit-exchange.js";
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
  /**
   * How the head was learnt when following another replica (`follow()`): "shared" (objects
   * copied from the exchange), or "fetched" (not shared: read from the remote after all).
   */
  followed?: "shared" | "fetched";
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
  #reads = 0;
  #lister?: CommitObjectLister;
  /** Objects known to be in the mirror (those of the last commit adopted). */
  #adopted = new Set<string>();
  /** The commit those objects are of. */
  #adoptedHead?: string;

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

  /** The last head returned by `refresh()` or `follow()`. */
  get head(): string | undefined {
    return this.#head;
  }

  /** Reads of the source itself (`refresh()` calls; for a remote, each lists or fetches). */
  get reads(): number {
    return this.#reads;
  }

  /** The objects of `commit` that a follower needs (see commit-exchange.ts). */
  async commitObjects(commit: string): Promise<CommitObjects> {
    this.#lister ??= new CommitObjectLister(this.store, this.root);
    return this.#lister.list(commit);
  }

  /**
   * Takes the head another replica fetched and shared through `exchange` instead of asking the
   * remote (for a local repository, which is read in place, this is `refresh()`). The head's
   * objects are copied into the mirror; a head that was not shared (too large, collected) is
   * fetched from the remote after all. Throws NoAnnouncedHeadError (retryable) while no head
   * was announced, ObjectReadError for a shared object that does not match its id.
   */
  async follow(exchange: CommitExchange): Promise<HeadUpdate> {
    const mirror = this.#mirror;
    if (!mirror) return this.refresh();
    const head = await exchange.announced();
    if (!head) throw new NoAnnouncedHeadError();
    const previous = this.#head;
    const changed = head.commit !== previous;
    // The same head as before a restart: its objects may still have to be copied.
    if (!changed && this.#adopted.has(head.commit))
      return { commit: head.commit, previous, changed, fetched: false };
    await mirror.open();
    const oids = head.oids;
    const adopted =
      oids !== undefined &&
      (await adoptCommit(mirror.store, exchange, { commit: head.commit, oids }, this.#adopted));
    if (!oids || !adopted) return { ...(await this.refresh()), followed: "fetched" };
    this.#adopted = new Set(oids);
    this.#adoptedHead = head.commit;
    this.#store = mirror.store;
    let historyRewritten: boolean | undefined;
    if (changed) await this.store.refreshCache();
    if (previous !== undefined && changed) {
      const depth = this.#options.ancestryDepth ?? 10_000;
      const ancestor = await this.store.isAncestor(previous, head.commit, depth);
      historyRewritten = ancestor === undefined ? undefined : !ancestor;
    }
    this.#head = head.commit;
    return {
      commit: head.commit,
      previous,
      changed,
      historyRewritten,
      fetched: false,
      followed: "shared",
    };
  }

  /**
   * One attempt to bring the branch head up to date. Throws SyncError subclasses:
   * SYNC_NOT_A_REPOSITORY, SYNC_EMPTY_REPOSITORY, SYNC_BRANCH_NOT_FOUND, SYNC_AUTH_FAILED,
   * SYNC_CREDENTIALS_UNAVAILABLE, SYNC_REMOTE_UNREACHABLE, SYNC_READ_FAILED.
   */
  async refresh(): Promise<HeadUpdate> {
    this.#reads++;
    let commit: string;
    let fetched = false;
    if (this.#mirror) {
      const update = await this.#mirror.update(this.#adoptedHead);
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
