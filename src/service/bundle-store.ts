/**
 * Bundles by id (src/bundle.ts), so that any bundle a rollout serves — its target, or a stable
 * bundle introduced by an older commit — can be served after a restart and after a rollback.
 * Memory for the hot path, Redis (`<prefix>:bundles`, id → JSON of the declared parts) for
 * restarts. A config-only bundle needs no entry: its id is its config hash.
 *
 * Secret references are stored as written; they are resolved in memory when first served
 * (resolved values never reach Redis).
 */
import type { Redis } from "ioredis";
import type { BundleParts } from "../bundle.js";

export class BundleStore {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #byId = new Map<string, BundleParts>();
  #changes = 0;

  /** Bumped whenever a bundle appears or goes (what `get` answers may differ); starts at 0. */
  get changes(): number {
    return this.#changes;
  }

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#key = `${prefix}:bundles`;
  }

  async load(): Promise<void> {
    for (const [id, json] of Object.entries(await this.#redis.hgetall(this.#key)))
      this.#byId.set(id, JSON.parse(json) as BundleParts);
    this.#changes++;
  }

  /** The parts of bundle `id`: stored ones, else a config-only bundle (id = config hash). */
  get(id: string): BundleParts {
    return this.#byId.get(id) ?? { configHash: id, telemetry: {}, packages: [] };
  }

  async put(id: string, parts: BundleParts): Promise<void> {
    if (id === parts.configHash || this.#byId.has(id)) return;
    const stored: BundleParts = {
      configHash: parts.configHash,
      telemetry: parts.telemetry,
      packages: parts.packages,
    };
    await this.#redis.hset(this.#key, id, JSON.stringify(stored));
    this.#byId.set(id, stored);
    this.#changes++;
  }

  /** Drops every bundle whose id is not in `keep`. */
  async prune(keep: ReadonlySet<string>): Promise<void> {
    const drop = [...this.#byId.keys()].filter((id) => !keep.has(id));
    if (drop.length === 0) return;
    await this.#redis.hdel(this.#key, ...drop);
    for (const id of drop) this.#byId.delete(id);
    this.#changes++;
  }
}
