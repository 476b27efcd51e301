/**
 * The agents left out of their group's rollout because their build lacks a component type
 * the group's config needs (issue 14), shared by every replica through Redis:
 * `<prefix>:group:<g>:incompatible`, a hash uid → JSON `{"missing": ["exporters/x", …]}`.
 * Written by the replica that places the agent; read by the admin API, the status branch and
 * the all-incompatible check. An agent stays listed while disconnected (as rollout members
 * do) and leaves the list when it is placed elsewhere or becomes compatible.
 */
import type { Redis } from "ioredis";

/** How many example uids a summary names. */
export const INCOMPATIBLE_EXAMPLES = 10;

export interface IncompatibleAgent {
  uid: string;
  /** The needed component types the agent lacks, as `kind/type`. */
  missing: string[];
}

export interface IncompatibleSummary {
  count: number;
  /** At most INCOMPATIBLE_EXAMPLES agents, by uid. */
  examples: IncompatibleAgent[];
}

export class IncompatibleAgents {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #listeners = new Set<(group: string) => void>();

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  #key(group: string): string {
    return `${this.#prefix}:group:${group}:incompatible`;
  }

  async set(group: string, uid: string, missing: readonly string[]): Promise<void> {
    await this.#redis.hset(this.#key(group), uid, JSON.stringify({ missing }));
    this.#changed(group);
  }

  async remove(group: string, uid: string): Promise<void> {
    if ((await this.#redis.hdel(this.#key(group), uid)) > 0) this.#changed(group);
  }

  /**
   * Calls `listener` with the group after this process changed its list (other replicas'
   * changes arrive with the rollout membership changes they come with). Returns the
   * unsubscribe function.
   */
  subscribe(listener: (group: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(group: string): void {
    for (const listener of this.#listeners) {
      try {
        listener(group);
      } catch {
        // A listener's failure is its own (the status writer logs its own errors).
      }
    }
  }

  async removeGroup(group: string): Promise<void> {
    await this.#redis.del(this.#key(group));
  }

  /** Every listed uid of the group. */
  uids(group: string): Promise<string[]> {
    return this.#redis.hkeys(this.#key(group));
  }

  /** Count and up to `examples` agents (lowest uids first, so the list is stable). */
  async summary(group: string, examples = INCOMPATIBLE_EXAMPLES): Promise<IncompatibleSummary> {
    const key = this.#key(group);
    const count = await this.#redis.hlen(key);
    if (count === 0) return { count: 0, examples: [] };
    // A bounded read: HSCAN pages, then the lowest uids of what was seen. Exact for up to a
    // few thousand entries; beyond, any `examples` of them.
    const seen: string[] = [];
    let cursor = "0";
    do {
      const [next, flat] = await this.#redis.hscan(key, cursor, "COUNT", 1000);
      cursor = next;
      for (let i = 0; i < flat.length; i += 2) seen.push(`${flat[i]}\n${flat[i + 1]}`);
    } while (cursor !== "0" && seen.length < 5000);
    seen.sort();
    return {
      count,
      examples: seen.slice(0, examples).map((entry) => {
        const [uid = "", json = "{}"] = entry.split("\n");
        let missing: string[] = [];
        try {
          missing = (JSON.parse(json) as { missing?: string[] }).missing ?? [];
        } catch {
          // Written only by this module; an unreadable entry still counts.
        }
        return { uid, missing };
      }),
    };
  }
}
