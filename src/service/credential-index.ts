/**
 * The cluster-wide credential indexes one replica holds in memory, kept in step with Redis:
 * the per-agent tokens the agent port accepts and the deny list (API revocations, beside Git's
 * fleet.yaml `revoked:` list).
 *
 * - Redis `<p>:agent-tokens` (digest → uid, group, expiry): minted tokens (token-minter.ts
 *   adds them, then calls `addToken`). Expired ones are dropped at every read.
 * - Redis `<p>:revoked` (uid → when, by whom) and `<p>:revoked-serials`: API revocations,
 *   held in memory with Git's list by a DenyList (deny-list.ts).
 * - `<p>:credentials-version`, bumped on every change: the indexes are re-read whole when it
 *   moves (checked every `pollMs`, the fallback for a lost message).
 * - Channel `<p>:revocations`: an API revocation is published there (the uid) and every
 *   replica (following it, src/redis-subscriber.ts) re-reads the indexes at once, so the
 *   agent's connections everywhere are closed and its credentials refused without a poll.
 *
 * Lookups (`token`, `revocation`, `refuses`) are synchronous, from memory. `onRevoked` gets
 * the uids that became revoked, whoever revoked them (this replica, another one, Git).
 */
import type { PeerCertificate } from "node:tls";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { follow, type RedisSubscriber } from "../redis-subscriber.js";
import { DenyList, type Revocation } from "./deny-list.js";
import type { TokenEntry } from "./token-minter.js";

export interface CredentialIndexOptions {
  redis: Redis;
  prefix: string;
  logger: Logger;
  /** How often other replicas' changes are looked for, ms. Default 2000. */
  pollMs?: number | undefined;
  /** The process' shared pub/sub connection. Default: one of its own. */
  subscriber?: RedisSubscriber | undefined;
  /** Called with the uids that just became revoked. */
  onRevoked: (uids: readonly string[]) => void;
  now: () => number;
}

export class CredentialIndex {
  readonly #options: CredentialIndexOptions;
  #tokens = new Map<string, TokenEntry>();
  readonly #denied = new DenyList();
  #version: string | null = null;
  #reloading: Promise<void> | undefined;
  #reloadAgain: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #unfollow: (() => void) | undefined;
  /** close() was called (and start() not called again since). */
  #closed = false;

  constructor(options: CredentialIndexOptions) {
    this.#options = options;
  }

  #key(name: string): string {
    return `${this.#options.prefix}:${name}`;
  }

  /** Loads the indexes and starts watching for other replicas' changes. Idempotent. */
  async start(): Promise<void> {
    this.#closed = false;
    if (!this.#unfollow) await this.#subscribe();
    // Closed while subscribing: close() found nothing to unfollow.
    if (this.#closed) return this.close();
    await this.#reload();
    // Closed meanwhile: no poll timer after close().
    if (this.#closed) return;
    clearInterval(this.#timer);
    this.#timer = setInterval(() => {
      void this.#reload().catch((err) =>
        this.#options.logger.warn({ err }, "cannot read agent credential changes; will retry"),
      );
    }, this.#options.pollMs ?? 2000);
    this.#timer.unref();
  }

  async #subscribe(): Promise<void> {
    const { logger } = this.#options;
    // A message (the uid) only says "look": the indexes in Redis are the truth, re-read whole.
    const look = () =>
      this.#reload().catch((err) =>
        logger.warn({ err }, "cannot read a published revocation; the poll will retry"),
      );
    this.#unfollow = await follow<string>(this.#options, this.#key("revocations"), {
      onMessage: look,
      onResubscribed: look,
      decode: (uid) => uid,
      maxMessageBytes: 1024,
    });
  }

  /** Stops watching. Idempotent. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#unfollow?.();
    this.#unfollow = undefined;
  }

  /**
   * Re-reads the indexes when the version moved. One read at a time: asked while one runs,
   * another follows it (a message, the poll and a resubscription may ask at once), and a read
   * older than a change this process made meanwhile (revoke, mint) is discarded and redone, so
   * a revocation is never undone by a read that began before it.
   */
  #reload(): Promise<void> {
    if (this.#reloading) {
      this.#reloadAgain ??= this.#reloading
        .catch(() => {})
        .then(() => {
          this.#reloadAgain = undefined;
          return this.#reload();
        });
      return this.#reloadAgain;
    }
    this.#reloading = this.#readIndexes().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  async #readIndexes(): Promise<void> {
    const { redis } = this.#options;
    for (;;) {
      const version = await redis.get(this.#key("credentials-version"));
      if (version === this.#version && this.#version !== null) return;
      const [tokens, revoked, serials] = await Promise.all([
        redis.hgetall(this.#key("agent-tokens")),
        redis.hgetall(this.#key("revoked")),
        redis.smembers(this.#key("revoked-serials")),
      ]);
      // This process changed the indexes while they were read: what was read may predate it.
      if (Number(this.#version ?? -1) > Number(version ?? 0)) continue;
      // Expired tokens are refused like unknown ones: dropped here and from Redis, so the index
      // holds only live tokens (it is read whole at every change).
      const now = this.#options.now();
      const live = new Map<string, TokenEntry>();
      const expired: string[] = [];
      for (const [d, v] of Object.entries(tokens)) {
        const entry = JSON.parse(v) as TokenEntry;
        if (entry.notAfter <= now) expired.push(d);
        else live.set(d, entry);
      }
      if (expired.length > 0) await redis.hdel(this.#key("agent-tokens"), ...expired);
      this.#tokens = live;
      const added = this.#denied.loadApi(revoked, serials);
      this.#version = version ?? "0";
      if (added.length > 0) this.#options.onRevoked(added);
      return;
    }
  }

  async #bump(): Promise<void> {
    const version = await this.#options.redis.incr(this.#key("credentials-version"));
    // Never lowered: a later change may have been counted here first.
    if (version > Number(this.#version ?? -1)) this.#version = String(version);
  }

  /** The minted token of `digest` (live or not yet dropped); undefined when unknown. */
  token(digest: string): TokenEntry | undefined {
    return this.#tokens.get(digest);
  }

  /** A token just written to the Redis index: tells the other replicas, indexes it here. */
  async addToken(digest: string, entry: TokenEntry): Promise<void> {
    await this.#bump();
    this.#tokens.set(digest, entry);
  }

  /** The revocation of `uid`, from the API or Git; undefined when it is not revoked. */
  revocation(uid: string): Revocation | undefined {
    return this.#denied.get(uid);
  }

  /** Every revoked uid with its record. */
  revocations(): Map<string, Revocation> {
    return this.#denied.all();
  }

  /** Whether `cert` is refused (its agent revoked, or its serial denied). */
  refuses(cert: PeerCertificate): boolean {
    return this.#denied.refuses(cert);
  }

  /**
   * Revokes `uid` for good (admin API): `serialOf()` gives its current certificate's serial,
   * which joins the deny set. Idempotent: the first revocation's record is kept.
   */
  async revoke(
    uid: string,
    by: string,
    serialOf: () => Promise<string | undefined>,
  ): Promise<Revocation> {
    const existing = this.#denied.fromApi(uid);
    if (existing) return existing;
    const record: Revocation = { at: new Date(this.#options.now()).toISOString(), by };
    const serial = await serialOf();
    const { redis } = this.#options;
    const multi = redis.multi().hsetnx(this.#key("revoked"), uid, JSON.stringify(record));
    if (serial) multi.sadd(this.#key("revoked-serials"), serial);
    // Its tokens stay in the index, so that every replica answers them "revoked" (refused even
    // on an open endpoint) rather than "unknown".
    await multi.exec();
    await this.#bump();
    this.#denied.addApi(uid, record, serial);
    this.#options.logger.info({ instanceUid: uid, by }, "agent credentials revoked");
    this.#options.onRevoked([uid]);
    // Every replica re-reads at once (this one too, finding nothing new).
    await redis.publish(this.#key("revocations"), uid);
    return record;
  }

  /**
   * The deny list of the current Git commit (fleet.yaml `revoked:`). It replaces the previous
   * one: a uid removed from the list may connect again (API revocations stay).
   */
  setGitRevoked(uids: readonly string[], commit: string): void {
    const at = new Date(this.#options.now()).toISOString();
    const added = this.#denied.setGit(uids, commit, at);
    if (added.length > 0) this.#options.onRevoked(added);
  }
}
