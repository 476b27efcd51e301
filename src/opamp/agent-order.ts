/**
 * The stored agents in uid order, for lists paged with a cursor: the sorted set
 * `<prefix>:agent-order`, every member scored 0 so that Redis keeps them in byte order and
 * ZRANGEBYLEX reads the uids after a cursor in O(log N + page), never the whole fleet.
 *
 * AgentStore.save adds a new agent to it beside the set `<prefix>:agents` (the set stays the
 * source of truth: other readers SMEMBERS or SSCAN it). Uids in the set but not in the order
 * (stored before the order existed, or by a replica of an older version) are copied in by
 * sync(), which every list calls: two O(1) commands when both agree, one SSCAN pass over the
 * set when they do not (shared by concurrent callers, at most one per COPY_INTERVAL_MS).
 */
import type { Redis } from "ioredis";

/** The shortest time between two copies of the set into the order (ms). */
const COPY_INTERVAL_MS = 30_000;

/** The sorted set's key. */
export function agentOrderKey(prefix: string): string {
  return `${prefix}:agent-order`;
}

export class AgentOrder {
  readonly #redis: Redis;
  readonly #set: string;
  readonly key: string;
  #copying: Promise<void> | undefined;
  /** When the last copy ended (ms since the epoch); 0: none yet. */
  #copiedAt = 0;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#set = `${prefix}:agents`;
    this.key = agentOrderKey(prefix);
  }

  /**
   * Up to `count` uids in order that sort after `after` (all when undefined), the first
   * `offset` of them skipped. One ZRANGEBYLEX: O(log N + offset + count).
   */
  after(after: string | undefined, count: number, offset = 0): Promise<string[]> {
    const min = after === undefined ? "-" : `(${after}`;
    return this.#redis.zrangebylex(this.key, min, "+", "LIMIT", offset, count);
  }

  /** How many uids in the order sort up to `uid`, itself included. One ZLEXCOUNT: O(log N). */
  rank(uid: string): Promise<number> {
    return this.#redis.zlexcount(this.key, "-", `[${uid}`);
  }

  /**
   * How many agents are stored (the order's cardinality), after copying what the order lacks
   * (see the module comment).
   */
  async sync(): Promise<number> {
    const [[, stored], [, ordered]] = (await this.#redis
      .pipeline()
      .scard(this.#set)
      .zcard(this.key)
      .exec()) as [[unknown, number], [unknown, number]];
    if (ordered >= stored) return ordered;
    // While replicas of an older version add agents to the set alone (a rolling upgrade), the
    // two keep differing: copy at most once per COPY_INTERVAL_MS, not per list.
    if (!this.#copying && Date.now() - this.#copiedAt < COPY_INTERVAL_MS) return ordered;
    this.#copying ??= this.#copy().finally(() => {
      this.#copying = undefined;
      this.#copiedAt = Date.now();
    });
    await this.#copying;
    return this.#redis.zcard(this.key);
  }

  async #copy(): Promise<void> {
    let cursor = "0";
    do {
      const [next, uids] = await this.#redis.sscan(this.#set, cursor, "COUNT", 1000);
      cursor = next;
      if (uids.length > 0) await this.#redis.zadd(this.key, ...uids.flatMap((u) => [0, u]));
    } while (cursor !== "0");
  }
}
