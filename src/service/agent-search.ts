/**
 * The index behind the console's and the API's agent search (`q=`): the Redis hash
 * `<p>:agent-search:v1:<rules>`, instance uid → the agent's searchable text (its uid and
 * attribute values as the views show them, redacted, lowercased, NUL-separated). `<rules>`
 * names the redaction rules the texts went through (REDACTION_RULES_VERSION and the
 * secretlint rule ids): after a rules change a new index is built, so a value the new rules
 * hide is not searchable through an old text (the old hash is left for an operator to DEL). A
 * search walks the agents in uid order a slice at a time (admin-backend.ts) and reads only that
 * slice's texts (match(): one HMGET), loading only the matches.
 *
 * Maintenance: every replica writes the text of its agents when their description changes
 * (batched per 250 ms window into one HSET; with the fleet's redaction key given to watch(), a
 * window's texts are computed in a worker thread: search-texts.ts). An agent stored without
 * an entry (stored before the index existed, or its write lost) is indexed by the first
 * search that reads it
 * (remember(), with HSETNX, so that a text read before a change never overwrites the
 * change's), and only while the agent is still stored (BACKFILL_LUA checks its record in the same
 * step): a text read before the agent was removed never brings its entry back after a search
 * removed it. An entry whose agent is no longer stored is removed by the first search that
 * reads it (forget()). A change whose write fails is written again
 * (after RETRY_MS, doubling up to MAX_RETRY_MS, unless a newer change came; writes run one at
 * a time, so a failed write never re-queues a text older than one written meanwhile). Between a
 * description change and its write, a search may still see the old text: the backend
 * re-checks what it loads. A replica that dies in that window leaves the old text until the
 * agent's next description change.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { viewAttribute } from "../api/views.js";
import { type AgentEvents, type AgentState, agentAttributes } from "../opamp/index.js";
import { REDACTION_RULES_VERSION, SECRETLINT_RULE_IDS } from "../redact/index.js";
import { type SearchSubject, searchTextOf } from "./search-text.js";
import { SearchTexts } from "./search-texts.js";

/**
 * How long a first change waits for others before they are written together (ms). A connect
 * burst's texts go to the worker and to Redis once per window: at 20 ms, 3,000 agents
 * connecting in 3.5 s were ~100 worker requests, each ~0.6–1 ms of the main thread's wall
 * time (waking the worker while agents keep both cores busy), and ~100 HSETs.
 */
const WRITE_WINDOW_MS = 250;
/** First wait before a failed write is tried again (ms); doubles per failure up to the max. */
const RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;

/** Uids per BACKFILL_LUA call: one call's Redis time stays short (a search reads 10,000). */
const BACKFILL_CHUNK = 500;

/**
 * Writes the texts of agents a search read, each only where no entry is (HSETNX: never over a
 * change's text) and only while the agent is stored: its record holds `connected`, which every
 * save writes (AgentStore.loadBrief reads the same field). Checked in the same step as the
 * write, so an agent removed after the search read it, and whose entry a later search forgot,
 * does not get its entry back. KEYS[1] the index, KEYS[2..] the agents' records; ARGV uid,
 * text pairs in the same order. Returns how many entries were written.
 */
const BACKFILL_LUA = `
local written = 0
for i = 2, #KEYS do
  if redis.call('HEXISTS', KEYS[i], 'connected') == 1 then
    written = written + redis.call('HSETNX', KEYS[1], ARGV[2 * i - 3], ARGV[2 * i - 2])
  end
end
return written
`;

interface BackfillScript {
  agentSearchBackfill(numKeys: number, ...keysAndArgs: string[]): unknown;
}

/** The index's key suffix: which redaction rules its texts went through. */
const RULES = `r${REDACTION_RULES_VERSION}-${createHash("sha256")
  .update(SECRETLINT_RULE_IDS.join("\n"))
  .digest("hex")
  .slice(0, 12)}`;

/**
 * The searchable text of an agent (search-text.ts), redacted as views are: searchTextOf with
 * the view redactor, which the service keys with the fleet's key.
 */
export function searchText(state: Readonly<AgentState>): string {
  return searchTextOf(subject(state), viewAttribute);
}

/** What the text of `state` is computed from (plain data: it crosses to a worker). */
function subject(state: Readonly<AgentState>): SearchSubject {
  return { uid: state.instanceUid, attributes: [...agentAttributes(state)] };
}

export class AgentSearchIndex {
  readonly #redis: Redis;
  readonly #prefix: string;
  /** The Redis hash of the texts. */
  readonly key: string;
  readonly #logger: Logger;
  /**
   * Agents whose description changed (their texts written over what is there): the state
   * itself, read at the flush, so a burst of changes to one agent is one text, the last.
   */
  #pending = new Map<string, Readonly<AgentState>>();
  /** Agents read by a search (written only where no entry is: never over a change). */
  #backfill = new Map<string, Readonly<AgentState>>();
  /** Computes texts off the event loop once watch() has the key; undefined: here. */
  #texts: SearchTexts | undefined;
  #scheduled = false;
  /**
   * The last flush: flushes run one at a time, so a failed one re-queues its texts knowing
   * that no later flush took a newer text of the same agent meanwhile.
   */
  #flushing: Promise<void> = Promise.resolve();
  /** The wait before the next retry of a failed write (ms); 0: none failed. */
  #retryMs = 0;

  constructor(redis: Redis, prefix: string, logger: Logger) {
    redis.defineCommand("agentSearchBackfill", { lua: BACKFILL_LUA });
    this.#redis = redis;
    this.#prefix = prefix;
    this.key = `${prefix}:agent-search:v1:${RULES}`;
    this.#logger = logger;
  }

  /**
   * Indexes agents whose description changes here; returns the function that stops it (and
   * the worker). `redactionKey`: the key of the view redactor (useViewRedactor); given, texts
   * are computed in a worker thread with it, else on this thread by searchText().
   */
  watch(events: AgentEvents, redactionKey?: Uint8Array): () => void {
    const texts = redactionKey ? new SearchTexts(redactionKey) : undefined;
    this.#texts = texts;
    const off = events.on("descriptionChanged", ({ agent }) => {
      this.#pending.set(agent.instanceUid, agent);
      this.#schedule();
    });
    return () => {
      off();
      void texts?.close();
    };
  }

  /** Texts computed so far in the worker and on this thread (tests, metrics). */
  get textStats(): { inWorker: number; here: number } {
    return { ...(this.#texts?.stats ?? { inWorker: 0, here: 0 }) };
  }

  /**
   * Which of `uids` the index says contain `needle` (lowercase): `matches`, and `unknown`, the
   * uids without an entry, which the caller loads, checks and passes to remember(). One HMGET;
   * the caller re-checks what it loads (the index may lag a description change).
   */
  async match(
    needle: string,
    uids: readonly string[],
  ): Promise<{ matches: Set<string>; unknown: string[] }> {
    const matches = new Set<string>();
    const unknown: string[] = [];
    if (uids.length === 0) return { matches, unknown };
    const texts = await this.#redis.hmget(this.key, ...uids);
    uids.forEach((uid, i) => {
      const text = texts[i];
      if (text === null || text === undefined) unknown.push(uid);
      else if (text.includes(needle)) matches.add(uid);
    });
    return { matches, unknown };
  }

  /**
   * Indexes agents a search read without an entry: with HSETNX (never over a change's text),
   * and only those still stored when written (BACKFILL_LUA).
   */
  remember(states: Iterable<Readonly<AgentState>>): void {
    for (const state of states) this.#backfill.set(state.instanceUid, state);
    if (this.#backfill.size > 0) this.#schedule();
  }

  /** Removes the entries of agents no longer stored. */
  async forget(uids: readonly string[]): Promise<void> {
    if (uids.length > 0) await this.#redis.hdel(this.key, ...uids);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // A window, not a turn: a connect burst's descriptions are one HSET per window. Behind the
    // flush in flight, if any (it may still fail and re-queue older texts).
    setTimeout(() => {
      // A flush that threw (not a failed write: that is caught) must not stop later ones.
      this.#flushing = this.#flushing.then(() => this.#flush()).catch(() => {});
    }, WRITE_WINDOW_MS);
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    const [changed, read] = [this.#pending, this.#backfill];
    this.#pending = new Map();
    this.#backfill = new Map();
    const states = [
      ...changed.values(),
      ...[...read.values()].filter((s) => !changed.has(s.instanceUid)),
    ];
    const texts = this.#texts
      ? await this.#texts.texts(states.map(subject))
      : states.map((s) => searchText(s));
    // In the order of `states`: the changed agents first, then those a search read.
    const entries = states.map((s, i): [string, string] => [s.instanceUid, texts[i] ?? ""]);
    const pipeline = this.#redis.pipeline();
    if (changed.size > 0)
      pipeline.hset(this.key, Object.fromEntries(entries.slice(0, changed.size)));
    const backfill = entries.slice(changed.size);
    for (let i = 0; i < backfill.length; i += BACKFILL_CHUNK) {
      const chunk = backfill.slice(i, i + BACKFILL_CHUNK);
      const keys = chunk.map(([uid]) => `${this.#prefix}:agent:${uid}`);
      (pipeline as unknown as BackfillScript).agentSearchBackfill(
        1 + keys.length,
        this.key,
        ...keys,
        ...chunk.flat(),
      );
    }
    try {
      const failed = (await pipeline.exec())?.find(([err]) => err);
      if (failed?.[0]) throw failed[0];
      this.#retryMs = 0;
    } catch (err) {
      // A changed text is written again (unless a newer one waits: no other flush ran since
      // this one took its texts); a text read by a search is not needed: the next search
      // indexes what is missing.
      for (const [uid, state] of changed)
        if (!this.#pending.has(uid)) this.#pending.set(uid, state);
      this.#retryMs = Math.min(MAX_RETRY_MS, this.#retryMs * 2 || RETRY_MS);
      this.#logger.warn(
        { err, agents: changed.size + read.size, retryMs: this.#retryMs },
        "agent search index not written; will retry",
      );
      if (changed.size > 0) setTimeout(() => this.#schedule(), this.#retryMs).unref();
    }
  }
}
