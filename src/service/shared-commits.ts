/**
 * The Redis side of sharing fetched commits between replicas (used by git-duty.ts): the
 * objects of each new head, its manifest, and the fenced announcement.
 *
 * Keys (`<p>` is `--redis-prefix`):
 * - `<p>:git:head`: the last head announced; the channel of the same name carries each one.
 * - `<p>:git:objects`: hash, object id → the object in its loose form (zlib).
 * - `<p>:git:commit:<id>`: set of the object ids of a shared commit.
 * - `<p>:git:commits`: list of the shared commits, newest first. Only the newest
 *   `KEEP_COMMITS` are kept: objects no kept commit uses are deleted with the older manifests,
 *   so Redis holds a few snapshots of the watched tree, not the history.
 *
 * Fencing: the announcement (head, list, collection) is one Lua script that checks the lease
 * first, so a holder that lost the lease announces nothing. Objects and manifests are written
 * before it; they are content-addressed (a stale holder's writes are harmless), and a manifest
 * expires unless an announcement keeps it. Memory: a commit over the bound is read (at most
 * `maxBytes` of it, in this process) and nothing of it is written.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { CodedError } from "../errors.js";
import { FENCE_CHECK_LUA, type Lease } from "../lease.js";
import type { AnnouncedHead, CommitObjects } from "../sync/index.js";

/** Shared commits kept in Redis (the newest; a follower needs only the announced one). */
const KEEP_COMMITS = 3;
/** A manifest written for an announcement that never came (a lost lease) expires, s. */
const MANIFEST_TTL_S = 3600;

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

export class SharedCommits {
  /** `<p>:git:head`: the key and the channel of announcements. */
  readonly headKey: string;
  readonly #redis: Redis & AnnounceScript;
  readonly #prefix: string;
  readonly #objects: string;
  readonly #maxBytes: number;
  readonly #logger: Logger;

  /** `maxBytes`: bound of one commit's objects (loose form). Default 64 MiB. */
  constructor(o: { redis: Redis; prefix: string; logger: Logger; maxBytes?: number }) {
    o.redis.defineCommand("gitAnnounce", { numberOfKeys: 4, lua: ANNOUNCE_LUA });
    this.#redis = o.redis as Redis & AnnounceScript;
    this.#prefix = o.prefix;
    this.headKey = `${o.prefix}:git:head`;
    this.#objects = `${o.prefix}:git:objects`;
    this.#maxBytes = o.maxBytes ?? 64 * 1024 * 1024;
    this.#logger = o.logger;
  }

  /**
   * Stores the objects Redis lacks and the commit's manifest. False (GIT_SHARE_TOO_LARGE
   * logged, nothing written) when the commit's objects exceed the bound.
   */
  async upload(objects: CommitObjects): Promise<boolean> {
    const redis = this.#redis;
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
    const fields: Array<string | Buffer> = [];
    for (let i = 0; i < missing.length && total <= this.#maxBytes; i += 64) {
      const batch = missing.slice(i, i + 64);
      const bodies = await Promise.all(batch.map((oid) => objects.read(oid)));
      batch.forEach((oid, j) => {
        const body = bodies[j] as Buffer;
        total += body.length;
        fields.push(oid, body);
      });
    }
    if (total > this.#maxBytes) {
      const error = new CommitTooLargeToShareError(objects.commit, total, this.#maxBytes);
      this.#logger.error({ err: error, code: error.code }, error.message);
      return false;
    }
    for (let i = 0; i < fields.length; i += 128) {
      await redis.hset(this.#objects, ...fields.slice(i, i + 128));
    }
    const manifest = `${this.#prefix}:git:commit:${objects.commit}`;
    for (let i = 0; i < oids.length; i += 1000) {
      await redis
        .pipeline()
        .sadd(manifest, ...oids.slice(i, i + 1000))
        .expire(manifest, MANIFEST_TTL_S)
        .exec();
    }
    return true;
  }

  /**
   * Makes `commit` the announced head (with its objects when `shared`), if `lease` is still
   * held; publishes it when it is news. False when the lease was lost.
   */
  async announce(lease: Lease, commit: string, shared: boolean): Promise<boolean> {
    const result = await this.#redis.gitAnnounce(
      lease.key,
      this.headKey,
      `${this.#prefix}:git:commits`,
      this.#objects,
      lease.value,
      commit,
      `${this.#prefix}:git:commit:`,
      shared ? "1" : "0",
      String(KEEP_COMMITS),
    );
    return result === 1;
  }

  /** The announced head, with its object ids when they are shared. */
  async announced(): Promise<AnnouncedHead | undefined> {
    const commit = await this.#redis.get(this.headKey);
    if (!commit) return undefined;
    const oids = await this.#redis.smembers(`${this.#prefix}:git:commit:${commit}`);
    return oids.length > 0 ? { commit, oids } : { commit };
  }

  /** Objects in their loose form, null for those not (or no longer) shared. */
  async objects(oids: readonly string[]): Promise<Array<Buffer | null>> {
    if (oids.length === 0) return [];
    return this.#redis.hmgetBuffer(this.#objects, ...oids);
  }
}
