/**
 * The agent list of the admin API and the console (AdminBackend.agents): pages in uid order,
 * read from the uid order (`<p>:agent-order`, src/opamp/agent-order.ts) after the `after`
 * cursor, so a page never reads the whole fleet.
 *
 * Cost per request:
 * - unfiltered: the page's uids (one ZRANGEBYLEX per LIMIT_CHUNK) and their agents; the total
 *   is the order's cardinality (ZCARD), exact.
 * - filtered (group, state, search): the walk goes on in uid order until the page is full or
 *   its budget is spent: EXAMINE_BUDGET uids examined and `offset + max(limit, LOAD_BUDGET)`
 *   agents loaded (WALK_CHUNK at a time). A search reads only each slice's texts from the
 *   search index (agent-search.ts, one HMGET) and reads only their matches (and agents
 *   without a text); a group or state filter reads each agent it examines, its connected flag,
 *   scopes and description only (AgentStore.loadBrief); only the page's agents are loaded in
 *   full. A page cut short by the budget comes back short (even empty) with `next`: the last
 *   uid examined, and `nextOffset` when it ran out while still skipping `offset` (the skip
 *   still owed, to be sent as `offset` with `after=next`).
 * - filtered counts: exact when the page's own walk started at the beginning and reached the
 *   end; otherwise a count walk from the beginning with the same budget, cached COUNT_TTL_MS
 *   per filter and shared by concurrent requests: exact (`total`) when it reaches the end,
 *   else `estimate` = matches / examined × stored agents (a sample in uid order).
 *
 * Paging is exact under concurrent inserts and removals: a page holds the matches after the
 * cursor in uid order, so an agent stored throughout is listed once across the pages, and one
 * added or removed meanwhile is listed at most once.
 */
import type { AgentPage, AgentQuery, AgentRecord } from "../api/backend.js";
import type { AgentOrder, AgentState } from "../opamp/index.js";
import { type AgentSearchIndex, searchText } from "./agent-search.js";

/** Uids a filtered walk examines per request at most. */
export const EXAMINE_BUDGET = 10_000;
/** Agents a filtered walk loads per request beyond its offset, unless its limit is larger. */
export const LOAD_BUDGET = 2_000;
/** Uids read per ZRANGEBYLEX of a filtered walk (and at most per one of an unfiltered page). */
const WALK_CHUNK = 500;
/** The smallest slice a filtered walk reads. */
const MIN_CHUNK = 16;
/** How long a filtered count is reused (ms), and for how many filters at most. */
const COUNT_TTL_MS = 10_000;
const COUNT_CACHE = 64;

export interface AgentListParts {
  order: AgentOrder;
  /** The search index; without it a search loads every agent it examines. */
  search?: AgentSearchIndex | undefined;
  /** The agents of `uids` (undefined: not stored), in the same order. */
  load(uids: readonly string[]): Promise<Array<Readonly<AgentState> | undefined>>;
  /**
   * Like load(), but a stored agent may come with only what the filters read: its connected
   * flag, scopes and description (AgentStore.loadBrief).
   */
  brief(uids: readonly string[]): Promise<Array<Readonly<AgentState> | undefined>>;
  /** Where the service places an agent (what the group and state filters compare). */
  place(state: Readonly<AgentState>): Pick<AgentRecord, "group" | "unauthorizedGroup">;
  record(state: Readonly<AgentState>): AgentRecord;
}

interface Walked {
  /** The matches kept for the page (when collecting), in order. */
  picked: string[];
  /** The last uid examined. */
  cursor: string | undefined;
  matched: number;
  examined: number;
  /** Every uid after the start was examined. */
  done: boolean;
  /** The matches still to skip when the walk stopped (its budget ran out while skipping). */
  skip: number;
}

type Count = { total: number } | { estimate: number };

export class AgentList {
  readonly #p: AgentListParts;
  /** Filtered counts (see the module comment), oldest first. */
  readonly #counts = new Map<string, { at: number; count: Promise<Count> }>();

  constructor(parts: AgentListParts) {
    this.#p = parts;
  }

  async page(q: AgentQuery): Promise<AgentPage> {
    const stored = await this.#p.order.sync();
    const limit = q.limit ?? Number.POSITIVE_INFINITY;
    if (!(q.group || q.state || q.search)) {
      const { agents, next } = await this.#plain(q.after, q.offset ?? 0, limit);
      return { agents, total: stored, ...(next !== undefined ? { next } : {}) };
    }
    const needle = q.search?.toLowerCase();
    const w = await this.#walk(q, needle, q.after, q.offset ?? 0, limit, true);
    const count: Count =
      q.after === undefined && w.done ? { total: w.matched } : await this.#count(q, needle, stored);
    // The page's agents in full, checked again (one that changed since may drop out).
    const agents = (await this.#p.load(w.picked)).flatMap((state) => {
      const r = state && this.#p.record(state);
      return r && matchesQuery(q, needle, r) ? [r] : [];
    });
    if (w.done || w.cursor === undefined) return { agents, ...count };
    const through = await this.#p.order.rank(w.cursor);
    // The budget ran out while skipping `offset`: the rest of the skip goes with the cursor.
    const rest = w.skip > 0 ? { nextOffset: w.skip } : {};
    return { agents, ...count, next: w.cursor, ...rest, progress: { through, of: stored } };
  }

  /** An unfiltered page: `offset` is skipped by Redis (ZRANGEBYLEX LIMIT), not loaded. */
  async #plain(after: string | undefined, offset: number, limit: number) {
    const agents: AgentRecord[] = [];
    let cursor = after;
    while (agents.length < limit) {
      const want = Math.min(WALK_CHUNK, limit - agents.length);
      // One uid more than wanted says whether more follow, without another round trip.
      const uids = await this.#p.order.after(cursor, want + 1, offset);
      offset = 0;
      const more = uids.length > want;
      if (more) uids.pop();
      const states = await this.#p.load(uids);
      for (const state of states) if (state) agents.push(this.#p.record(state));
      cursor = uids.at(-1) ?? cursor;
      if (!more) return { agents };
    }
    return { agents, next: cursor };
  }

  /**
   * Matches of `q` after `after`, `skip` of them skipped, until `limit` are found or the budget
   * is spent. `collect` false: only counted.
   */
  async #walk(
    q: AgentQuery,
    needle: string | undefined,
    after: string | undefined,
    skip: number,
    limit: number,
    collect: boolean,
  ): Promise<Walked> {
    const { order, search, brief, place } = this.#p;
    const w: Walked = { picked: [], cursor: after, matched: 0, examined: 0, done: false, skip };
    const loadBudget = skip + Math.max(Number.isFinite(limit) ? limit : 0, LOAD_BUDGET);
    let loaded = 0;
    // Slices start at about what the page needs (a dense filter reads little past its page)
    // and double up to WALK_CHUNK (a sparse one soon reads in large slices).
    let size = Math.max(MIN_CHUNK, Number.isFinite(limit) ? skip + limit : WALK_CHUNK);
    while (w.examined < EXAMINE_BUDGET && loaded < loadBudget) {
      const want = Math.min(size, WALK_CHUNK, EXAMINE_BUDGET - w.examined, loadBudget - loaded);
      size *= 2;
      const uids = await order.after(w.cursor, want + 1);
      const more = uids.length > want;
      if (more) uids.pop();
      let candidates = uids;
      let unknown = new Set<string>();
      if (needle && search) {
        const found = await search.match(needle, uids);
        unknown = new Set(found.unknown);
        candidates = uids.filter((u) => found.matches.has(u) || unknown.has(u));
      }
      const states = await brief(candidates);
      loaded += candidates.length;
      const byUid = new Map<string, Readonly<AgentState>>();
      const gone: string[] = [];
      candidates.forEach((uid, i) => {
        const state = states[i];
        if (state) byUid.set(uid, state);
        else if (!unknown.has(uid)) gone.push(uid);
      });
      if (search && needle) {
        search.remember([...unknown].flatMap((u) => byUid.get(u) ?? []));
        await search.forget(gone);
      }
      for (const uid of uids) {
        w.cursor = uid;
        w.examined++;
        const state = byUid.get(uid);
        if (!state) continue;
        if (!matchesQuery(q, needle, { state, ...place(state) })) continue;
        w.matched++;
        if (w.skip > 0) w.skip--;
        else if (collect) w.picked.push(uid);
        if (w.picked.length >= limit) {
          w.done = !more && uid === uids.at(-1);
          return w;
        }
      }
      if (!more) {
        w.done = true;
        return w;
      }
    }
    return w;
  }

  /** The count of a filter (see the module comment), cached and shared. */
  #count(q: AgentQuery, needle: string | undefined, stored: number): Promise<Count> {
    const key = JSON.stringify([q.group ?? "", q.state ?? "", needle ?? ""]);
    const now = Date.now();
    const hit = this.#counts.get(key);
    if (hit && now - hit.at < COUNT_TTL_MS) return hit.count;
    const count = this.#walk(q, needle, undefined, 0, Number.POSITIVE_INFINITY, false).then(
      (w): Count =>
        w.done
          ? { total: w.matched }
          : { estimate: Math.round((w.matched / Math.max(1, w.examined)) * stored) },
    );
    this.#counts.delete(key);
    this.#counts.set(key, { at: now, count });
    // Oldest first (Map order): drop beyond the bound.
    for (const k of this.#counts.keys()) {
      if (this.#counts.size <= COUNT_CACHE) break;
      this.#counts.delete(k);
    }
    // Only this entry: a newer count of the same filter may have replaced it meanwhile.
    count.catch(() => {
      if (this.#counts.get(key)?.count === count) this.#counts.delete(key);
    });
    return count;
  }
}

/** Whether an agent passes the list's group, state and (lowercased) search filters. */
export function matchesQuery(q: AgentQuery, needle: string | undefined, r: AgentRecord): boolean {
  if (q.group && r.group !== q.group) return false;
  if (q.state === "unauthorized") {
    if (r.unauthorizedGroup === undefined) return false;
  } else if (q.state && r.state.connected !== (q.state === "connected")) return false;
  return !needle || searchText(r.state).includes(needle);
}
