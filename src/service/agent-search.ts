/**
 * The index behind the console's and the API's agent search (`q=`): the Redis hash
 * `<p>:agent-search:v1`, instance uid → the agent's searchable text (its uid and attribute
 * values as the views show them, redacted, lowercased, NUL-separated). A search reads that
 * hash (HSCAN, about 5000 at a time) instead of every stored agent, and loads only the matches.
 *
 * Maintenance: every replica writes the text of its agents when their description changes
 * (batched per event-loop turn into one HSET). An agent stored without an entry (stored before
 * the index existed, or its write lost) is indexed by the first search that misses it, with
 * HSETNX, so that a text read before a change never overwrites the change's; an entry whose
 * uid is no longer stored is removed then. Between a description change and its
 * write, a search may still see the old text: the backend re-checks what it loads.
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { viewAttribute } from "../api/views.js";
import { type AgentEvents, type AgentState, agentAttributes } from "../opamp/index.js";

/**
 * The searchable text of an agent: its uid and attribute values as the API shows them
 * (redacted), so a search cannot probe a hidden value one character at a time.
 */
export function searchText(state: Readonly<AgentState>): string {
  const values = [...agentAttributes(state)].map(([k, v]) => viewAttribute(k, v)[1]);
  return [state.instanceUid, ...values].join("\0").toLowerCase();
}

export class AgentSearchIndex {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #logger: Logger;
  /** Texts of changed descriptions (written over what is there). */
  #pending = new Map<string, string>();
  /** Texts of agents read by a search (written only where no entry is: never over a change). */
  #backfill = new Map<string, string>();
  #scheduled = false;

  constructor(redis: Redis, prefix: string, logger: Logger) {
    this.#redis = redis;
    this.#key = `${prefix}:agent-search:v1`;
    this.#logger = logger;
  }

  /** Indexes agents whose description changes here; returns the unsubscribe function. */
  watch(events: AgentEvents): () => void {
    return events.on("descriptionChanged", ({ agent }) => {
      this.#pending.set(agent.instanceUid, searchText(agent));
      this.#schedule();
    });
  }

  /**
   * The uids of `uids` (sorted as given) whose text contains `needle` (lowercase). `load`
   * reads an agent that has no entry yet.
   */
  async search(
    needle: string,
    uids: readonly string[],
    load: (uids: readonly string[]) => Promise<Array<Readonly<AgentState>>>,
  ): Promise<string[]> {
    // Only uids are kept from the scan (the matches, and which have an entry), not texts.
    const stored = new Set(uids);
    const matched = new Set<string>();
    const indexed = new Set<string>();
    const gone: string[] = [];
    let cursor = "0";
    do {
      const [next, flat] = await this.#redis.hscan(this.#key, cursor, "COUNT", 5000);
      cursor = next;
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const uid = flat[i] as string;
        if (!stored.has(uid)) gone.push(uid);
        else if (!indexed.has(uid)) {
          indexed.add(uid);
          if (flat[i + 1]?.includes(needle)) matched.add(uid);
        }
      }
    } while (cursor !== "0");
    const missing = uids.filter((u) => !indexed.has(u));
    for (let i = 0; i < missing.length; i += 500) {
      const loaded = await load(missing.slice(i, i + 500));
      for (const state of loaded) {
        const text = searchText(state);
        if (text.includes(needle)) matched.add(state.instanceUid);
        this.#backfill.set(state.instanceUid, text);
      }
      this.#schedule();
    }
    if (gone.length > 0) await this.#redis.hdel(this.#key, ...gone);
    return uids.filter((u) => matched.has(u));
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => void this.#flush());
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    const [changed, read] = [this.#pending, this.#backfill];
    this.#pending = new Map();
    this.#backfill = new Map();
    const pipeline = this.#redis.pipeline();
    if (changed.size > 0) pipeline.hset(this.#key, Object.fromEntries(changed));
    for (const [uid, text] of read) if (!changed.has(uid)) pipeline.hsetnx(this.#key, uid, text);
    try {
      const failed = (await pipeline.exec())?.find(([err]) => err);
      if (failed?.[0]) throw failed[0];
    } catch (err) {
      // The next search indexes what is missing; a changed text waits for the next change.
      this.#logger.warn(
        { err, agents: changed.size + read.size },
        "agent search index not written",
      );
    }
  }
}
