/**
 * Git polled and fetched once for all replicas. The holder of the lease `<p>:lease:git` polls
 * the repository every `--poll-interval` and, for a remote, is the only replica that talks to
 * it: it shares each new head's objects through Redis and announces the head; the others copy
 * those objects into their own mirror and read the commit from there (the CommitExchange of
 * src/sync/commit-exchange.ts). A local repository is read in place by every replica (there
 * is nothing to fetch); only its polling is once-only.
 *
 * What is stored in Redis, the bound (`--git-share-max-bytes`) and the fencing of
 * announcements: shared-commits.ts. A commit over the bound is announced without objects
 * (GIT_SHARE_TOO_LARGE is logged): followers fetch it from the remote themselves, as they do
 * when its objects were collected meanwhile. The channel `<p>:git:head` carries each new head,
 * and "poll": a follower that got a webhook asks the holder to check now.
 *
 * A follower compares with `<p>:git:head` after its subscriber reconnects (messages published
 * meanwhile are lost). When the holder dies, another replica gets the lease within
 * `--leader-lease` and fetches from then on; one that becomes the holder checks at once.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { Lease } from "../lease.js";
import { follow, type RedisSubscriber } from "../redis-subscriber.js";
import type { AnnouncedHead, CommitExchange, CommitObjects, FleetSync } from "../sync/index.js";
import { SharedCommits } from "./shared-commits.js";

const POLL = "poll";

export interface GitDutyOptions {
  redis: Redis;
  prefix: string;
  ttlMs: number;
  logger: Logger;
  /** The process' shared pub/sub connection. Default: one of its own. */
  subscriber?: RedisSubscriber;
  /** Bound of one shared commit's objects (loose form), bytes. Default 64 MiB. */
  maxShareBytes?: number;
  /** Called each time this replica becomes the lease holder (after its first check). */
  onHolder?: () => void;
}

export class GitDuty implements CommitExchange {
  readonly lease: Lease;
  readonly #options: GitDutyOptions;
  readonly #store: SharedCommits;
  #unfollow: (() => void) | undefined;
  readonly #key: string;
  #sync?: FleetSync;
  #sharing: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: GitDutyOptions) {
    this.#options = options;
    this.#store = new SharedCommits({
      redis: options.redis,
      prefix: options.prefix,
      logger: options.logger,
      ...(options.maxShareBytes ? { maxBytes: options.maxShareBytes } : {}),
    });
    this.#key = this.#store.headKey;
    this.lease = new Lease(options.redis, `${options.prefix}:lease:git`, {
      ttlMs: options.ttlMs,
      onLost: () => options.logger.info("no longer fetching Git (another replica does)"),
    });
  }

  /** Whether this replica polls now (FleetSync's `pollWhen`). */
  readonly polling = (): boolean => this.lease.held;

  /** Whether this replica fetches from the remote now (CommitExchange). */
  readonly fetching = (): boolean => this.lease.held;

  /**
   * Makes a first attempt at the lease, then follows announcements and keeps campaigning.
   * Call before the first check of `sync`, so that only the holder reads the remote.
   */
  async start(sync: FleetSync): Promise<void> {
    this.#sync = sync;
    sync.on("headChanged", ({ commit, followed }) => {
      if (followed === "fetched")
        this.#options.logger.warn(
          { commit },
          "the announced Git head was not shared through Redis: fetched it from the remote",
        );
    });
    this.#closed = false;
    let held = await this.lease.acquire().catch(() => false);
    // Closed meanwhile: close() may have released before the lease was won.
    if (this.#closed) {
      if (held) await this.lease.release();
      return;
    }
    if (held)
      this.#options.logger.info({ fence: this.lease.fence }, "fetching Git for all replicas");
    this.lease.campaign((now) => {
      if (now && !held) {
        this.#options.logger.info({ fence: this.lease.fence }, "fetching Git for all replicas");
        void sync.trigger();
        this.#options.onHolder?.();
      }
      held = now;
    });
    this.#unfollow = await follow<string>(this.#options, this.#key, {
      onMessage: (message) => this.#heard(message),
      // Resubscribed after a reconnect: announcements made meanwhile were lost.
      onResubscribed: async () => {
        const commit = await this.#options.redis.get(this.#key);
        if (commit) this.#heard(commit);
      },
      decode: headMessage,
      maxMessageBytes: 128,
    });
    // Closed while subscribing: close() found nothing to unfollow.
    if (this.#closed) {
      this.#unfollow();
      this.#unfollow = undefined;
      return;
    }
    if (this.lease.held) this.#options.onHolder?.();
  }

  /** A webhook arrived here: the holder checks now (this replica, or the one told so). */
  poke(): void {
    if (this.lease.held || !this.#sync) void this.#sync?.trigger();
    else
      void this.#options.redis
        .publish(this.#key, POLL)
        .catch((err) => this.#options.logger.warn({ err }, "could not pass a webhook on"));
  }

  share(commit: string, list: () => Promise<CommitObjects>): Promise<boolean> {
    const run = this.#sharing.then(() => this.#share(commit, list));
    this.#sharing = run;
    return run;
  }

  async #share(commit: string, list: () => Promise<CommitObjects>): Promise<boolean> {
    const { logger } = this.#options;
    if (this.#closed) return false;
    try {
      const objects = await list();
      const shared = await this.#store.upload(objects);
      if (!(await this.#store.announce(this.lease, commit, shared))) return false;
      logger.info({ commit, objects: objects.oids.length, shared }, "Git head announced");
      return true;
    } catch (err) {
      logger.warn({ err, commit }, "could not share the Git head with the other replicas");
      return false;
    }
  }

  announced(): Promise<AnnouncedHead | undefined> {
    return this.#store.announced();
  }

  objects(oids: readonly string[]): Promise<Array<Buffer | null>> {
    return this.#store.objects(oids);
  }

  #heard(message: string): void {
    const sync = this.#sync;
    if (this.#closed || !sync) return;
    if (message === POLL) {
      if (this.lease.held) void sync.trigger();
      return;
    }
    if (!this.lease.held && sync.status.head !== message) void sync.trigger();
  }

  /** Stops following and releases the lease, so another replica polls at once. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#unfollow?.();
    await this.lease.release();
  }
}

/** A commit id as announced (SHA-1 or SHA-256 hex), or "poll"; throws on anything else. */
function headMessage(text: string): string {
  if (text !== POLL && !/^[0-9a-f]{40}(?:[0-9a-f]{24})?$/.test(text))
    throw new TypeError("not a commit id");
  return text;
}
