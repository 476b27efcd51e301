/**
 * Agents whose status file may have changed and is not rendered yet, in Redis, so that a
 * change seen by any replica survives the death of every process until the writer renders it.
 *
 *   <base>:dirty       ZSET uid → mark (the value of <base>:dirty-seq when last marked)
 *   <base>:dirty-seq   STRING counter, one increment per `mark` call
 *
 * Contract:
 * - `mark(uids)` is one script call per 1,000 uids (an INCR and one ZADD inside), whatever the
 *   number of agents;
 *   a uid marked again gets a higher mark, so `clear` never drops a change it did not see.
 * - `clear(entries)` removes a uid only if its mark is still the one read: a change marked
 *   while the writer rendered keeps the uid dirty for the next flush.
 * - Concurrency: any replica marks; only the status writer reads and clears. A writer that
 *   dies between rendering and clearing leaves the uids dirty: the next writer renders them
 *   again (the pending store drops what equals the recorded content).
 */
import type { Redis } from "ioredis";

// One INCR and one ZADD of every uid (not a ZADD per uid): two commands per call.
const MARK_LUA = `
local n = redis.call('INCR', KEYS[2])
local args = {}
for i = 1, #ARGV do
  args[2 * i - 1] = n
  args[2 * i] = ARGV[i]
end
redis.call('ZADD', KEYS[1], unpack(args))
return n
`;

// One ZMSCORE of every uid and one ZREM of those whose mark still holds.
const CLEAR_LUA = `
local uids = {}
for i = 1, #ARGV, 2 do uids[#uids + 1] = ARGV[i] end
local scores = redis.call('ZMSCORE', KEYS[1], unpack(uids))
local gone = {}
for i, uid in ipairs(uids) do
  if scores[i] and scores[i] == ARGV[2 * i] then gone[#gone + 1] = uid end
end
if #gone > 0 then redis.call('ZREM', KEYS[1], unpack(gone)) end
return #gone
`;

interface Scripts {
  statusMarkDirty(dirty: string, seq: string, ...uids: string[]): Promise<number>;
  statusClearDirty(dirty: string, ...uidMarks: string[]): Promise<number>;
}

/** A dirty agent as read: its uid and the mark that must still hold when it is cleared. */
export interface DirtyEntry {
  uid: string;
  mark: string;
}

const BATCH = 1000;

export class DirtyAgents {
  readonly #redis: Redis & Scripts;
  readonly #key: string;
  readonly #seq: string;

  /** `base` is the branch's key base (statusKeys().base); `redis` is shared. */
  constructor(redis: Redis, base: string) {
    redis.defineCommand("statusMarkDirty", { numberOfKeys: 2, lua: MARK_LUA });
    redis.defineCommand("statusClearDirty", { numberOfKeys: 1, lua: CLEAR_LUA });
    this.#redis = redis as Redis & Scripts;
    this.#key = `${base}:dirty`;
    this.#seq = `${base}:dirty-seq`;
  }

  /**
   * Marks agents dirty: one script call per 1,000 uids, sent back to back (ioredis writes
   * commands as they come; an explicit pipeline object costs more to build than it saves).
   */
  async mark(uids: readonly string[]): Promise<void> {
    const calls: Promise<number>[] = [];
    for (let i = 0; i < uids.length; i += BATCH)
      calls.push(this.#redis.statusMarkDirty(this.#key, this.#seq, ...uids.slice(i, i + BATCH)));
    await Promise.all(calls);
  }

  /** Every dirty agent with its mark, oldest mark first. */
  async read(): Promise<DirtyEntry[]> {
    const flat = await this.#redis.zrange(this.#key, 0, -1, "WITHSCORES");
    const out: DirtyEntry[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2)
      out.push({ uid: flat[i] as string, mark: flat[i + 1] as string });
    return out;
  }

  /** Number of dirty agents (ZCARD). */
  size(): Promise<number> {
    return this.#redis.zcard(this.#key);
  }

  /** Clears the entries whose mark did not change since they were read. */
  async clear(entries: readonly DirtyEntry[]): Promise<void> {
    for (let i = 0; i < entries.length; i += BATCH) {
      const args = entries.slice(i, i + BATCH).flatMap((e) => [e.uid, e.mark]);
      await this.#redis.statusClearDirty(this.#key, ...args);
    }
  }
}
