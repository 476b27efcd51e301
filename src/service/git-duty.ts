/**
 * Git polling done once for all replicas: the holder of the lease `<p>:lease:git` polls (and,
 * for a remote, fetches) every `--poll-interval`; the others do not poll at all. Whoever reads
 * a new head announces it: `<p>:git:head` holds the last head seen and the channel
 * `<p>:git:head` carries it, so the other replicas check at once (a local read, or for a
 * remote one fetch of that commit) and serve the same commit within a moment.
 *
 * A follower also compares with `<p>:git:head` after its subscriber reconnects (messages
 * published meanwhile are lost). When the holder dies, another replica gets the lease within
 * `--leader-lease` and polls from then on; one that becomes the holder checks at once.
 * Webhook triggers still check on the replica that received them, and announce what they find.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { Lease } from "../lease.js";
import { follow, type RedisSubscriber } from "../redis-subscriber.js";
import type { FleetSync } from "../sync/index.js";

export interface GitDutyOptions {
  redis: Redis;
  prefix: string;
  ttlMs: number;
  logger: Logger;
  /** The process' shared pub/sub connection. Default: one of its own. */
  subscriber?: RedisSubscriber;
  /** Called each time this replica becomes the lease holder (after its first check). */
  onHolder?: () => void;
}

export class GitDuty {
  readonly lease: Lease;
  readonly #options: GitDutyOptions;
  #unfollow: (() => void) | undefined;
  readonly #key: string;
  #sync?: FleetSync;
  #closed = false;

  constructor(options: GitDutyOptions) {
    this.#options = options;
    this.#key = `${options.prefix}:git:head`;
    this.lease = new Lease(options.redis, `${options.prefix}:lease:git`, {
      ttlMs: options.ttlMs,
      onLost: () => options.logger.info("no longer polling Git (another replica does)"),
    });
  }

  /** Whether this replica polls now (FleetSync's `pollWhen`). */
  readonly polling = (): boolean => this.lease.held;

  /**
   * Starts following announcements and campaigning for the lease. Call after the first check
   * of `sync` (every replica reads the repository once at start).
   */
  async start(sync: FleetSync): Promise<void> {
    this.#sync = sync;
    sync.on("headChanged", ({ commit }) => void this.#announce(commit));
    if (sync.status.head) await this.#announce(sync.status.head);
    let held = false;
    this.lease.campaign((now) => {
      if (now && !held) {
        this.#options.logger.info({ fence: this.lease.fence }, "polling Git for all replicas");
        void sync.trigger();
        this.#options.onHolder?.();
      }
      held = now;
    });
    this.#unfollow = await follow<string>(this.#options, this.#key, {
      onMessage: (commit) => this.#heard(commit),
      // Resubscribed after a reconnect: announcements made meanwhile were lost.
      onResubscribed: async () => {
        const commit = await this.#options.redis.get(this.#key);
        if (commit) this.#heard(commit);
      },
      decode: commitId,
      maxMessageBytes: 128,
    });
  }

  /** Stores and publishes a head this replica read, when it is news. */
  async #announce(commit: string): Promise<void> {
    if (this.#closed) return;
    try {
      const before = await this.#options.redis.set(this.#key, commit, "GET");
      if (before !== commit) await this.#options.redis.publish(this.#key, commit);
    } catch (err) {
      this.#options.logger.warn({ err }, "could not announce the Git head to the other replicas");
    }
  }

  #heard(commit: string): void {
    const sync = this.#sync;
    if (this.#closed || !sync || sync.status.head === commit) return;
    void sync.trigger();
  }

  /** Stops following and releases the lease, so another replica polls at once. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#unfollow?.();
    await this.lease.release();
  }
}

/** A commit id as announced (SHA-1 or SHA-256 hex); throws on anything else. */
function commitId(text: string): string {
  if (!/^[0-9a-f]{40}(?:[0-9a-f]{24})?$/.test(text)) throw new TypeError("not a commit id");
  return text;
}
