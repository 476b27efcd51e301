/**
 * Status changes waiting for their commit, in Redis, so none is lost when a process dies and
 * any replica can record while one writes. Keys (`<base>` = `<prefix>:status:{<branch>}`, the
 * hash tag keeps every key of a branch in one cluster slot for the scripts):
 *
 *   <base>:pending      HASH path → JSON {c: YAML text | null (delete), f: facts | null}
 *   <base>:pending-seq  HASH path → sequence number of its latest pending change
 *   <base>:seq          STRING counter of recorded changes
 *   <base>:digest       HASH agent path → SHA-1 of the latest recorded content (dedup)
 *   <base>:uids         HASH uid → "<recorded at, µs>|<path>" (where its file is now)
 *   <base>:facts        HASH path → facts JSON of the committed file (counts and messages)
 *   <base>:lock         STRING writer lock token (lock.ts)
 *   <base>:dirty        ZSET agents changed but not rendered yet (dirty-agents.ts)
 *
 * Contract:
 * - `record` is atomic per agent: an unchanged content (same digest) records nothing; a new
 *   group moves the file (the old path gets a delete). A conditional record (`notBefore`)
 *   is dropped when an event recorded the agent after that time, so a reconcile that read
 *   older state never overwrites newer.
 * - A pending change leaves Redis only through `ack`, after its commit was published, and
 *   only if it was not recorded again meanwhile (the sequence number still matches).
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { LockLostError } from "./errors.js";

/**
 * Records agent files: ARGV[1] is notBefore ('0': unconditional), then per agent uid, path,
 * payload ('' removes) and digest. Returns each agent's result in order: 1 changed, 0 same
 * content, -1 dropped (recorded by an event after notBefore). One script call per batch.
 *
 * Agents of a batch touch disjoint fields (their uids, paths and current paths differ), so
 * the reads are two HMGETs and the writes a few bulk commands (about ten per batch instead of
 * eight per agent), with the same outcome as recording them one after the other. A batch
 * that names a uid or a path twice is recorded one agent after the other.
 */
const RECORD_LUA = `
local pending, pseq, seq, digest, uids = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local notBefore = ARGV[1]
local del = '{"c":null,"f":null}'
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
local count = (#ARGV - 1) / 4
local uidList, pathList, seen, bulk = {}, {}, {}, true
for j = 1, count do
  local u, p = ARGV[4 * j - 2], ARGV[4 * j - 1]
  uidList[j], pathList[j] = u, p
  if seen['u' .. u] or seen['p' .. p] then bulk = false end
  seen['u' .. u], seen['p' .. p] = true, true
end
local function split(cur)
  if not cur then return nil, nil end
  local sep = string.find(cur, '|', 1, true)
  return string.sub(cur, 1, sep - 1), string.sub(cur, sep + 1)
end
local curs, digs = {}, {}
if bulk and count > 0 then
  curs = redis.call('HMGET', uids, unpack(uidList))
  for j = 1, count do
    local _, cp = split(curs[j])
    if cp and cp ~= pathList[j] then
      if seen['p' .. cp] then bulk = false end
      seen['p' .. cp] = true
    end
  end
end
if bulk and count > 0 then digs = redis.call('HMGET', digest, unpack(pathList)) end
-- Writes: done at once one agent at a time, or gathered for bulk commands at the end.
local hdelDigest, hdelUids, hsetUids, hsetDigest, puts = {}, {}, {}, {}, {}
local function put(p, body)
  if bulk then
    puts[#puts + 1] = p
    puts[#puts + 1] = body
    return
  end
  local n = redis.call('INCR', seq)
  redis.call('HSET', pending, p, body)
  redis.call('HSET', pseq, p, n)
end
local function dropDigest(p)
  if bulk then hdelDigest[#hdelDigest + 1] = p else redis.call('HDEL', digest, p) end
end
local function record(j, uid, path, payload, dg)
  local cur
  if bulk then cur = curs[j] else cur = redis.call('HGET', uids, uid) end
  local curT, curPath = split(cur)
  if notBefore ~= '0' and curT and curT > notBefore then return -1 end
  if payload == '' then
    dropDigest(path)
    put(path, del)
    if curPath == path then
      if bulk then hdelUids[#hdelUids + 1] = uid else redis.call('HDEL', uids, uid) end
    end
    return 1
  end
  local changed = 0
  if curPath and curPath ~= path then
    dropDigest(curPath)
    put(curPath, del)
    changed = 1
  end
  local dgNow
  if bulk then
    hsetUids[#hsetUids + 1] = uid
    hsetUids[#hsetUids + 1] = now .. '|' .. path
    dgNow = digs[j]
  else
    redis.call('HSET', uids, uid, now .. '|' .. path)
    dgNow = redis.call('HGET', digest, path)
  end
  if dgNow == dg then return changed end
  if bulk then
    hsetDigest[#hsetDigest + 1] = path
    hsetDigest[#hsetDigest + 1] = dg
  else
    redis.call('HSET', digest, path, dg)
  end
  put(path, payload)
  return 1
end
local out = {}
for j = 1, count do
  out[j] = record(j, uidList[j], pathList[j], ARGV[4 * j], ARGV[4 * j + 1])
end
if #hdelDigest > 0 then redis.call('HDEL', digest, unpack(hdelDigest)) end
if #hdelUids > 0 then redis.call('HDEL', uids, unpack(hdelUids)) end
if #hsetUids > 0 then redis.call('HSET', uids, unpack(hsetUids)) end
if #hsetDigest > 0 then redis.call('HSET', digest, unpack(hsetDigest)) end
if #puts > 0 then
  local n = redis.call('INCRBY', seq, #puts / 2) - #puts / 2
  local seqs = {}
  for i = 1, #puts, 2 do
    n = n + 1
    seqs[i], seqs[i + 1] = puts[i], n
  end
  redis.call('HSET', pending, unpack(puts))
  redis.call('HSET', pseq, unpack(seqs))
end
return out
`;

/**
 * Acknowledges a commit: ARGV[1] the lock token ('' none), then per path its path, the
 * sequence number read with it ('' none) and its facts ('' removed). Bulk commands: one HMGET
 * of the sequence numbers, then at most two HDELs of pending changes and one HSET and one
 * HDEL of facts.
 */
const ACK_LUA = `
local pending, pseq, facts = KEYS[1], KEYS[2], KEYS[3]
if ARGV[1] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[1] then return 0 end
local paths, last = {}, {}
for i = 2, #ARGV, 3 do
  paths[#paths + 1] = ARGV[i]
  last[ARGV[i]] = #paths
end
local seqs = redis.call('HMGET', pseq, unpack(paths))
local done, put, gone = {}, {}, {}
for j, p in ipairs(paths) do
  local s, f = ARGV[3 * j], ARGV[3 * j + 1]
  if s ~= '' and seqs[j] == s then done[#done + 1] = p end
  -- A path named twice: its last facts win, as if written one after the other.
  if last[p] ~= j then
  elseif f == '' then gone[#gone + 1] = p else
    put[#put + 1] = p
    put[#put + 1] = f
  end
end
if #done > 0 then
  redis.call('HDEL', pending, unpack(done))
  redis.call('HDEL', pseq, unpack(done))
end
if #put > 0 then redis.call('HSET', facts, unpack(put)) end
if #gone > 0 then redis.call('HDEL', facts, unpack(gone)) end
return 1
`;

/** Records per record script call (each runs about ten commands per record). */
const RECORD_BATCH = 100;

/** Pending contents per read round trip (`read`), bytes. */
const READ_CHUNK_BYTES = 2_000_000;

/** The bytes as a Buffer, without copying (written to the socket as they are). */
const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

interface Scripts {
  statusRecord(...args: Array<string | Buffer>): Promise<number[]>;
  statusAck(...args: string[]): Promise<number>;
}

export interface StatusKeys {
  base: string;
  pending: string;
  pendingSeq: string;
  seq: string;
  digest: string;
  uids: string;
  facts: string;
  lock: string;
}

export function statusKeys(prefix: string, branch: string): StatusKeys {
  const base = `${prefix}:status:{${branch}}`;
  return {
    base,
    pending: `${base}:pending`,
    pendingSeq: `${base}:pending-seq`,
    seq: `${base}:seq`,
    digest: `${base}:digest`,
    uids: `${base}:uids`,
    facts: `${base}:facts`,
    lock: `${base}:lock`,
  };
}

/** One agent file to record: its path, YAML text and facts (JSON-compatible). */
export interface AgentRecord {
  uid: string;
  path: string;
  content: string;
  facts: unknown;
}

/**
 * An agent file ready for Redis: its pending entry (JSON as UTF-8 bytes, in an ArrayBuffer of
 * its own so a worker can transfer it) and the digest of its text.
 */
export interface EncodedRecord {
  uid: string;
  path: string;
  payload: Uint8Array;
  digest: string;
}

const utf8 = new TextEncoder();

/** Encodes a record for `recordEncoded` (pure: the render worker does it off the event loop). */
export function encodeRecord(r: AgentRecord): EncodedRecord {
  return {
    uid: r.uid,
    path: r.path,
    payload: utf8.encode(JSON.stringify({ c: r.content, f: r.facts })),
    digest: createHash("sha1").update(r.content).digest("hex"),
  };
}

/** A pending change as read for a flush. */
export interface PendingChange {
  path: string;
  /** The file's new text; null deletes the file. */
  content: string | null;
  facts: unknown;
  seq: string;
}

/** `<seconds><microseconds, 6 digits>` from Redis' clock: comparable as strings. */
export type RedisMicros = string;

export class PendingStore {
  readonly keys: StatusKeys;
  readonly #redis: Redis & Scripts;
  readonly #branch: string;

  /** `redis` is shared; the store only defines its scripts on it. */
  constructor(redis: Redis, options: { prefix: string; branch: string }) {
    this.keys = statusKeys(options.prefix, options.branch);
    this.#branch = options.branch;
    redis.defineCommand("statusRecord", { numberOfKeys: 5, lua: RECORD_LUA });
    redis.defineCommand("statusAck", { numberOfKeys: 4, lua: ACK_LUA });
    this.#redis = redis as Redis & Scripts;
  }

  get redis(): Redis {
    return this.#redis;
  }

  /** The script's keys and notBefore, then each record's uid, path, payload and digest. */
  #recordArgs(
    notBefore: string,
    records: ReadonlyArray<readonly [string, string, string | Buffer, string]>,
  ): Array<string | Buffer> {
    const k = this.keys;
    const args: Array<string | Buffer> = [k.pending, k.pendingSeq, k.seq, k.digest, k.uids];
    args.push(notBefore);
    for (const r of records) args.push(...r);
    return args;
  }

  /**
   * Records agent files in one round trip. With `notBefore`, an agent recorded by an event
   * after that time is left alone. Resolves the number of agents whose files changed.
   */
  record(records: readonly AgentRecord[], notBefore?: RedisMicros): Promise<number> {
    return this.recordEncoded(records.map(encodeRecord), notBefore);
  }

  /**
   * `record` of records already encoded (`encodeRecord`): one script call per RECORD_BATCH
   * records, sent back to back (one round trip).
   */
  async recordEncoded(records: readonly EncodedRecord[], notBefore?: RedisMicros): Promise<number> {
    const calls: Promise<number[]>[] = [];
    for (let i = 0; i < records.length; i += RECORD_BATCH) {
      const batch = records
        .slice(i, i + RECORD_BATCH)
        .map((r) => [r.uid, r.path, asBuffer(r.payload), r.digest] as const);
      calls.push(this.#redis.statusRecord(...this.#recordArgs(notBefore ?? "0", batch)));
    }
    let changed = 0;
    for (const results of await Promise.all(calls)) for (const r of results) if (r === 1) changed++;
    return changed;
  }

  /** Records the removal of an agent's file (unless an event recorded it after `notBefore`). */
  async remove(uid: string, path: string, notBefore?: RedisMicros): Promise<boolean> {
    const [r] = await this.#redis.statusRecord(
      ...this.#recordArgs(notBefore ?? "0", [[uid, path, "", ""]]),
    );
    return r === 1;
  }

  /**
   * Records the removal of the files of agents the service no longer knows (wherever each
   * file is now: `<base>:uids`). One round trip to find them, one to remove them. Resolves
   * the number of files removed.
   */
  async removeAgents(uids: readonly string[]): Promise<number> {
    if (uids.length === 0) return 0;
    const where = await this.#redis.hmget(this.keys.uids, ...uids);
    const removals: Array<readonly [string, string, string, string]> = [];
    uids.forEach((uid, i) => {
      const v = where[i];
      if (v) removals.push([uid, v.slice(v.indexOf("|") + 1), "", ""]);
    });
    const calls: Promise<number[]>[] = [];
    for (let i = 0; i < removals.length; i += RECORD_BATCH)
      calls.push(
        this.#redis.statusRecord(...this.#recordArgs("0", removals.slice(i, i + RECORD_BATCH))),
      );
    let removed = 0;
    for (const results of await Promise.all(calls)) for (const r of results) if (r === 1) removed++;
    return removed;
  }

  /** Redis' clock, for `notBefore`. */
  async now(): Promise<RedisMicros> {
    const [s, us] = await this.#redis.time();
    return `${s}${String(us).padStart(6, "0")}`;
  }

  /** Paths with a change waiting for a commit. */
  async pendingPaths(): Promise<Set<string>> {
    return new Set(await this.#redis.hkeys(this.keys.pending));
  }

  /**
   * Every pending change. Sequence numbers are read first, then the contents in chunks of
   * about 2 MB (sizes from HSTRLEN), yielding to the event loop between chunks, so megabytes
   * of agent files never arrive in one reply. A change recorded between the two reads is
   * read with the older sequence number: its acknowledgement then leaves it pending, and the
   * next flush writes it again (never the reverse, which could drop a change).
   */
  async read(): Promise<PendingChange[]> {
    const seqs = await this.#redis.hgetall(this.keys.pendingSeq);
    const paths = Object.keys(seqs);
    const sizes = paths.length
      ? await this.#redis.pipeline(paths.map((p) => ["hstrlen", this.keys.pending, p])).exec()
      : [];
    const out: PendingChange[] = [];
    let chunk: string[] = [];
    let bytes = 0;
    const readChunk = async () => {
      const raws = await this.#redis.hmget(this.keys.pending, ...chunk);
      raws.forEach((raw, i) => {
        const path = chunk[i] as string;
        if (raw === null) return; // acknowledged meanwhile by a writer that lost its lock
        const parsed = JSON.parse(raw) as { c: string | null; f: unknown };
        out.push({ path, content: parsed.c, facts: parsed.f, seq: seqs[path] ?? "" });
      });
      chunk = [];
      bytes = 0;
      await new Promise<void>((r) => setImmediate(r));
    };
    for (let i = 0; i < paths.length; i++) {
      chunk.push(paths[i] as string);
      bytes += Number(sizes?.[i]?.[1] ?? 0);
      if (bytes >= READ_CHUNK_BYTES) await readChunk();
    }
    if (chunk.length > 0) await readChunk();
    return out;
  }

  /** Number of pending changes (cheap: HLEN). */
  async size(): Promise<number> {
    return this.#redis.hlen(this.keys.pending);
  }

  /**
   * After a publish: drops the pending changes that were not recorded again since they were
   * read, and stores the committed facts of every file the commit wrote (null: removed).
   * With `lockToken`, nothing is written unless the writer lock still holds that token
   * (throws LockLostError).
   */
  async ack(
    entries: ReadonlyArray<{ path: string; seq?: string; facts: unknown | null }>,
    lockToken = "",
  ): Promise<void> {
    const CHUNK = 1000;
    for (let i = 0; i < entries.length; i += CHUNK) {
      const args: string[] = [lockToken];
      for (const e of entries.slice(i, i + CHUNK))
        args.push(e.path, e.seq ?? "", e.facts === null ? "" : JSON.stringify(e.facts));
      const done = await this.#redis.statusAck(
        this.keys.pending,
        this.keys.pendingSeq,
        this.keys.facts,
        this.keys.lock,
        ...args,
      );
      // A writer that lost the lock must not overwrite its successor's facts.
      if (done === 0) throw new LockLostError(this.#branch);
    }
  }

  /** The committed facts of every file (path → parsed facts). */
  async facts(): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    let cursor = "0";
    do {
      const [next, flat] = await this.#redis.hscan(this.keys.facts, cursor, "COUNT", 2000);
      cursor = next;
      for (let i = 0; i + 1 < flat.length; i += 2)
        out.set(flat[i] as string, JSON.parse(flat[i + 1] as string));
    } while (cursor !== "0");
    return out;
  }

  /** Where each agent's file is now (uid → path). */
  async placements(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let cursor = "0";
    do {
      const [next, flat] = await this.#redis.hscan(this.keys.uids, cursor, "COUNT", 2000);
      cursor = next;
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const v = flat[i + 1] as string;
        out.set(flat[i] as string, v.slice(v.indexOf("|") + 1));
      }
    } while (cursor !== "0");
    return out;
  }
}
