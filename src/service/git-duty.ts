/**
 * Git polled and fetched once for all replicas. The holder of the lease `<p>:lease:git` polls
 * the repository every `--poll-interval` and, for a remote, is the only replica that talks to
 * it: it shares each new head's objects through Redis and announces the head; the others copy
 * those objects into their own mirror and read the commit from there (the CommitExchange of
 * src/sync/commit-exchange.ts). A local repository is read in place by every replica (there
 * is nothing to fetch); only its polling is once-only.
 *
 * Keys (`<p>` is `--redis-prefix`):
 * - `<p>:git:head`: the last head announced; the channel of the same name carries each new one
 *   (and "poll": a follower that got a webhook asks the holder to check now).
 * - `<p>:git:objects`: hash, object id → the object in its loose form (zlib).
 * - `<p>:git:commit:<id>`: set of the object ids of a shared commit.
 * - `<p>:git:commits`: list of the shared commits, newest first. Only the newest
 *   `KEEP_COMMITS` are kept: objects no kept commit uses are deleted with the older manifests,
 *   so Redis holds a few snapshots of the watched tree, not the history.
 * A commit whose objects exceed `--git-share-max-bytes` is announced without objects
 * (GIT_SHARE_TOO_LARGE is logged): followers then fetch it from the remote themselves. So do
 * they when its objects were collected meanwhile.
 *
 * Fencing: the announcement (head, list, collection) is one Lua script that checks the lease
 * first, so a holder that lost the lease announces nothing. Objects and manifests are written
 * before it; they are content-addressed (a stale holder's writes are harmless), and a manifest
 * expires unless an announcement keeps it.
 *
 * A follower compares with `<p>:git:head` after its subscriber reconnects (messages published
 * meanwhile are lost). When the holder dies, another replica gets the lease within
 * `--leader-lease` and fetches from then on; one that becomes the holder checks at once.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { CodedError } from "../errors.js";
import { FENCE_CHECK_LUA, Lease } from "../lease.js";
import { follow, type RedisSubscriber } from "../redis-subscriber.js";
import type { AnnouncedHead, CommitExchange, CommitObjects, FleetSync } from "../sync/index.js";

/** Shared commits kept in Redis (the newest; a follower needs only the announced one). */
const KEEP_COMMITS = 3;
/** A manifest written for an announcement that never came (a lost lease) expires. */
const MANIFEST_TTL_S = 3600;
const POLL = "poll";

/** KEYS: lease, head, list, objects; ARGV: lease value, commit, manifest prefix, shared, keep. */
const ANNOUNCE_LUA = `${FENCE_CHECK_LUA}
if ARGV[4] == '1' then
  redis.call('PERSIST', ARGV[3] .. ARGV[2])
  redis.call('LREM', KEYS[3], 0, ARGV[2])
  redis.call('LPUSH', KEYS[3], ARGV[2])
  while redis.call('LLEN', KEYS[3]) > tonumber(ARGV[5]) do
    local old = redis.call('RPOP', KEYS[3])
    local sets = { ARGV[3] .. old }
    for _, c in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do sets[#sets + 1] = ARGV[3] .. c end
    local gone = redis.call('SDIFF', unpack(sets))
    for i = 1, #gone, 1000 do
      redis.call('HDEL', KEYS[4], unpack(gone, i, math.min(i + 999, #gone)))
    end
    redis.call('DEL', ARGV[3] .. old)
  end
end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then
  redis.call('SET', KEYS[2], ARGV[2])
  redis.call('PUBLISH', KEYS[2], ARGV[2])
end
return 1
`;

/** A commit's objects exceed `--git-share-max-bytes`: the other replicas fetch it themselves. */
export class CommitTooLargeToShareError extends CodedError {
  constructor(commit: string, bytes: number, maxBytes: number) {
    super(
      "GIT_SHARE_TOO_LARGE",
      `commit ${commit}: its watched tree is more than ${maxBytes} bytes (at least ${bytes}), ` +
        "over --git-share-max-bytes: not shared through Redis, every replica fetches it from the remote",
      { commit, bytes, maxBytes },
    );
  }
}

interface AnnounceScript {
  gitAnnounce(...args: string[]): Promise<number>;
}

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
  readonly #redis: Redis & AnnounceScript;
  #unfollow: (() => void) | undefined;
  readonly #key: string;
  readonly #objects: string;
  readonly #maxBytes: number;
  #sync?: FleetSync;
  #sharing: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: GitDutyOptions) {
    this.#options = options;
    this.#key = `${options.prefix}:git:head`;
    this.#objects = `${options.prefix}:git:objects`;
    this.#maxBytes = options.maxShareBytes ?? 64 * 1024 * 1024;
    options.redis.defineCommand("gitAnnounce", { numberOfKeys: 4, lua: ANNOUNCE_LUA });
    this.#redis = options.redis as Redis & AnnounceScript;
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
    let held = await this.lease.acquire().catch(() => false);
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
    const { prefix, logger } = this.#options;
    if (this.#closed) return false;
    try {
      const objects = await list();
      const shared = await this.#upload(objects);
      const held = this.lease.value;
      const result = await this.#redis.gitAnnounce(
        this.lease.key,
        this.#key,
        `${prefix}:git:commits`,
        this.#objects,
        held,
        commit,
        `${prefix}:git:commit:`,
        shared ? "1" : "0",
        String(KEEP_COMMITS),
      );
      if (result !== 1) return false;
      logger.info({ commit, objects: objects.oids.length, shared }, "Git head announced");
      return true;
    } catch (err) {
      logger.warn({ err, commit }, "could not share the Git head with the other replicas");
      return false;
    }
  }

  /** Stores the objects Redis lacks and the manifest; false when over the bound. */
  async #upload(objects: CommitObjects): Promise<boolean> {
    const redis = this.#options.redis;
    const oids = objects.oids;
    const sizes: number[] = [];
    for (let i = 0; i < oids.length; i += 1000) {
      const pipe = redis.pipeline();
      for (const oid of oids.slice(i, i + 1000)) pipe.hstrlen(this.#objects, oid);
      for (const [err, n] of (await pipe.exec()) ?? []) {
        if (err) throw err;
        sizes.push(Number(n));
      }
    }
    let total = sizes.reduce((a, b) => a + b, 0);
    const missing = oids.filter((_, i) => sizes[i] === 0);
    const tooLarge = (bytes: number) => {
      const error = new CommitTooLargeToShareError(objects.commit, bytes, this.#maxBytes);
      this.#options.logger.error({ err: error, code: error.code }, error.message);
      return false;
    };
    if (total > this.#maxBytes) return tooLarge(total);
    for (let i = 0; i < missing.length; i += 64) {
      const batch = missing.slice(i, i + 64);
      const bodies = await Promise.all(batch.map((oid) => objects.read(oid)));
      total += bodies.reduce((a, b) => a + b.length, 0);
      if (total > this.#maxBytes) return tooLarge(total);
      const fields: Array<string | Buffer> = [];
      batch.forEach((oid, j) => {
        fields.push(oid, bodies[j] as Buffer);
      });
      await redis.hset(this.#objects, ...fields);
    }
    const manifest = `${this.#options.prefix}:git:commit:${objects.commit}`;
    for (let i = 0; i < oids.length; i += 1000) {
      await redis
        .pipeline()
        .sadd(manifest, ...oids.slice(i, i + 1000))
        .expire(manifest, MANIFEST_TTL_S)
        .exec();
    }
    return true;
  }

  async announced(): Promise<AnnouncedHead | undefined> {
    const commit = await this.#options.redis.get(this.#key);
    if (!commit) return undefined;
    const oids = await this.#options.redis.smembers(`${this.#options.prefix}:git:commit:${commit}`);
    return oids.length > 0 ? { commit, oids } : { commit };
  }

  async objects(oids: readonly string[]): Promise<Array<Buffer | null>> {
    if (oids.length === 0) return [];
    return this.#options.redis.hmgetBuffer(this.#objects, ...oids);
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
