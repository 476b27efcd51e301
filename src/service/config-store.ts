/**
 * Config files by hash, so that any hash a rollout serves (the target, or a stable hash
 * introduced by an older commit) can be served after a restart. Kept in memory for the hot
 * path and in Redis (`<prefix>:configs`, hash → JSON) for restarts; entries no group
 * references any more are pruned.
 */
import type { Redis } from "ioredis";
import type { ConfigFile } from "../config-hash.js";

interface StoredFile {
  name: string;
  contentType: string;
  body: string; // base64
}

export class ConfigStore {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #byHash = new Map<string, readonly ConfigFile[]>();
  #changes = 0;

  /** Bumped whenever an entry appears or goes (what `get` answers may differ); starts at 0. */
  get changes(): number {
    return this.#changes;
  }

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#key = `${prefix}:configs`;
  }

  /** Loads every stored config into memory (once, at start). */
  async load(): Promise<void> {
    const all = await this.#redis.hgetall(this.#key);
    for (const [hash, json] of Object.entries(all)) {
      const files = (JSON.parse(json) as StoredFile[]).map((f) => ({
        name: f.name,
        contentType: f.contentType,
        body: Buffer.from(f.body, "base64"),
      }));
      this.#byHash.set(hash, files);
    }
    this.#changes++;
  }

  /** The files of `hash`, from memory; undefined when unknown. Synchronous (hot path). */
  get(hash: string): readonly ConfigFile[] | undefined {
    return this.#byHash.get(hash);
  }

  /** Stores the files of `hash` (idempotent). */
  async put(hash: string, files: readonly ConfigFile[]): Promise<void> {
    if (this.#byHash.has(hash)) return;
    const stored: StoredFile[] = files.map((f) => ({
      name: f.name,
      contentType: f.contentType,
      body: Buffer.from(f.body).toString("base64"),
    }));
    await this.#redis.hset(this.#key, hash, JSON.stringify(stored));
    this.#byHash.set(hash, files);
    this.#changes++;
  }

  /** Drops every config whose hash is not in `keep`. */
  async prune(keep: ReadonlySet<string>): Promise<void> {
    const drop = [...this.#byHash.keys()].filter((h) => !keep.has(h));
    if (drop.length === 0) return;
    await this.#redis.hdel(this.#key, ...drop);
    for (const h of drop) this.#byHash.delete(h);
    this.#changes++;
  }
}
