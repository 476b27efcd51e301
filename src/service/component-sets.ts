/**
 * The component sets agents report (GET /api/v1/components), kept in Redis per set so that
 * listing them never reads the agents: `<p>:component-sets:v1` (hash: the AvailableComponents
 * hash in hex → its kinds as JSON, kind → sorted types, as views show them) and
 * `<p>:component-sets:v1:agents` (hash: hex → how many stored agents name it). Each agent's
 * record names its set in the field `componentSet`, so a change moves exactly one count. The
 * first agent counted in a set writes its kinds; later reporters of the same hash do not
 * rewrite them (one hash, one set: an agent reporting other kinds under a known hash is not
 * shown).
 *
 * Maintenance: the replica that stores a report of an agent's components (the
 * availableComponentsChanged event, emitted after the save) moves the agent to the new set in
 * one script (SET_LUA): the field, both counts and the set's kinds together, so replicas
 * recording the same agent (a reconnect elsewhere, HTTP polls alternating) never count it twice.
 * The script moves only while the record still holds the components bytes that replica saved
 * (their SHA-1): two replicas' moves applied in the opposite order of their saves cannot leave
 * the record naming a set other than its stored map's. A set no agent names any more is
 * removed in the same step. A hash without its map (the agent changed its build; the server
 * asks for the map) moves the agent out of its old set until the map comes.
 *
 * Self-repair: every connect loads the agent's record (AgentStore.load, which returns its
 * `componentSet`); when that differs from the set of its stored components (written by a
 * replica of an older version, or a move lost to a crash), the `connected` event moves it. No
 * extra command when they agree.
 *
 * Agents stored before this index are counted by run(): one walk over the stored agents per
 * Redis, marked done by `<p>:component-sets:v1:built`. One process walks at a time (the lock
 * `…:lock`, SET NX PX, refreshed every step); the others wait for the mark or the lock's
 * expiry. A walk reads each record's `componentSet` first and skips the counted ones without
 * decoding, so a walk restarted after a crash passes quickly over what is done. Undecodable
 * records are skipped (logged); a failed move leaves the walk unmarked and it runs again
 * (backoff 1 s doubling to 60 s), as does a walk that failed (Redis unreachable).
 *
 * Cost: listing is HSCAN pages, O(distinct sets), at most MAX_LISTED sets or MAX_LISTED_BYTES
 * of kinds (then `truncated`), whatever the fleet's size; a report of a new set is one EVALSHA;
 * a heartbeat nothing. An agent record deleted outside the service keeps its count (its set
 * stays listed until the count's other agents leave it); docs/architecture.md says how to
 * rebuild the counts.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { componentsHashOf, componentTypes } from "../api/views.js";
import { decodeSubMessage } from "../opamp/codec.js";
import type { AgentEvents, AgentState, AvailableComponents } from "../opamp/index.js";
import { hasComponentMap } from "../opamp/index.js";

/** Agents read per step of a walk (one HMGET each, sent together). */
const BUILD_CHUNK = 500;
/** The walk lock's lifetime in ms; refreshed every step, so only a dead walker lets it lapse. */
const LOCK_MS = 30_000;
/** First and longest wait in ms before a failed walk runs again (doubling in between). */
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 60_000;
/** Sets listed at most by sets(), and bytes of kinds JSON: past either, `truncated`. */
export const MAX_LISTED = 10_000;
export const MAX_LISTED_BYTES = 16 * 1024 * 1024;
/** Fields per HSCAN page of sets() (a hint: small hashes come whole). */
const LIST_PAGE = 200;

/**
 * Moves an agent to the set it reports. KEYS[1] its record, KEYS[2] the sets (hex → kinds
 * JSON), KEYS[3] the counts (hex → agents); ARGV[1] the set's hex ('' none: no map reported),
 * ARGV[2] its kinds JSON, ARGV[3] '1' to count only an agent whose record names no set yet
 * (a walk: never over a live report's move), ARGV[4] the SHA-1 (hex) of the components bytes
 * the caller saw saved: the record must still hold them (a later save's own move decides).
 * Only a stored record (`connected` is written by every save) is touched: a script never makes
 * a partial record. Returns 1 when it moved.
 */
const SET_LUA = `
if redis.call('HEXISTS', KEYS[1], 'connected') == 0 then return 0 end
local saved = redis.call('HGET', KEYS[1], 'availableComponents') or ''
if redis.sha1hex(saved) ~= ARGV[4] then return 0 end
local old = redis.call('HGET', KEYS[1], 'componentSet')
if ARGV[3] == '1' and old then return 0 end
old = old or ''
if old == ARGV[1] then return 0 end
if old ~= '' and redis.call('HINCRBY', KEYS[3], old, -1) <= 0 then
  redis.call('HDEL', KEYS[3], old)
  redis.call('HDEL', KEYS[2], old)
end
if ARGV[1] == '' then
  redis.call('HDEL', KEYS[1], 'componentSet')
else
  redis.call('HSET', KEYS[1], 'componentSet', ARGV[1])
  redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
  redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
end
return 1
`;

/**
 * The walk lock, held while KEYS[1] holds ARGV[1] (the walker's token): ARGV[2] ms > 0 extends
 * it, '0' releases it. Returns 1 while held, 0 when another walker has it (or nobody).
 */
const LOCK_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`;

interface Scripts {
  componentSetMove(
    record: string,
    sets: string,
    counts: string,
    ...args: string[]
  ): Promise<number>;
  componentSetsLock(lock: string, token: string, ms: string): Promise<number>;
}

/** kind → sorted types of each set, by the set's AvailableComponents hash in hex. */
export type ComponentSetMap = Record<string, Record<string, string[]>>;

/** What sets() lists: the sets, and whether some were left out (MAX_LISTED, MAX_LISTED_BYTES). */
export interface ComponentSetList {
  sets: ComponentSetMap;
  truncated: boolean;
}

export interface ComponentSetsOptions {
  redis: Redis;
  /** The Redis key prefix shared with the agent store (`<p>:agent:<uid>`, `<p>:agents`). */
  prefix: string;
  logger: Logger;
}

/** SHA-1 (hex) of components bytes as stored (none: the empty string's), as SET_LUA checks. */
function sha1hex(bytes: Uint8Array | undefined): string {
  return createHash("sha1")
    .update(bytes ?? new Uint8Array(0))
    .digest("hex");
}

export class ComponentSets {
  readonly #o: ComponentSetsOptions;
  readonly #redis: Redis & Scripts;
  readonly key: string;
  readonly countsKey: string;
  readonly builtKey: string;
  readonly lockKey: string;
  /** Moves on their way (awaited by close()). */
  readonly #writing = new Set<Promise<unknown>>();
  /** close() was called: a walk stops after its current step (unmarked: the next start walks). */
  #closed = false;
  /** Ends run()'s current wait (close()). */
  #wake: (() => void) | undefined;

  constructor(options: ComponentSetsOptions) {
    options.redis.defineCommand("componentSetMove", { numberOfKeys: 3, lua: SET_LUA });
    options.redis.defineCommand("componentSetsLock", { numberOfKeys: 1, lua: LOCK_LUA });
    this.#o = options;
    this.#redis = options.redis as Redis & Scripts;
    this.key = `${options.prefix}:component-sets:v1`;
    this.countsKey = `${this.key}:agents`;
    this.builtKey = `${this.key}:built`;
    this.lockKey = `${this.key}:lock`;
  }

  /**
   * Records the sets of agents whose components change here, and repairs the set of an agent
   * whose loaded record names another set than its stored components (`componentSet` of
   * AgentStore.load, on its `connected` event). Returns the unsubscribe.
   */
  watch(events: AgentEvents): () => void {
    const offChanged = events.on("availableComponentsChanged", ({ agent }) => this.#write(agent));
    const offConnected = events.on("connected", ({ agent }) => {
      // Only a state loaded from its record carries `componentSet` (a new agent has none).
      const named = (agent as { componentSet?: unknown }).componentSet;
      if (typeof named !== "string" || named === (componentsHashOf(agent) ?? "")) return;
      this.#write(agent);
    });
    return () => {
      offChanged();
      offConnected();
    };
  }

  #write(agent: Readonly<AgentState>): void {
    const write = this.record(agent)
      .catch((err) =>
        this.#o.logger.warn(
          { err, agent: agent.instanceUid },
          "component set not recorded; the agent's next report of a new set or connect records it",
        ),
      )
      .finally(() => this.#writing.delete(write));
    this.#writing.add(write);
  }

  /**
   * Moves a stored agent to the set it reports (none without a map), if its record still holds
   * the components bytes of `agent` (`agent.encoded`, as saved); `onlyNew`: only when its
   * record names no set yet. Resolves whether it moved. One EVALSHA. A state loaded from its
   * record (with `componentSet`) is updated to name the set it was moved to.
   */
  async record(agent: Readonly<AgentState>, onlyNew = false): Promise<boolean> {
    const hash = componentsHashOf(agent) ?? "";
    const moved = await this.#move(
      agent.instanceUid,
      hash,
      hash ? JSON.stringify(componentTypes(agent)) : "",
      sha1hex(agent.encoded?.availableComponents),
      onlyNew,
    );
    // A later connect event of this live state then compares with what this move wrote.
    const loaded = agent as { componentSet?: unknown };
    if (typeof loaded.componentSet === "string") loaded.componentSet = hash;
    return moved;
  }

  async #move(
    uid: string,
    hash: string,
    kinds: string,
    sha1: string,
    onlyNew: boolean,
  ): Promise<boolean> {
    const record = `${this.#o.prefix}:agent:${uid}`;
    const args = [hash, kinds, onlyNew ? "1" : "", sha1];
    return (await this.#redis.componentSetMove(record, this.key, this.countsKey, ...args)) === 1;
  }

  /**
   * The sets some stored agent names: HSCAN pages of LIST_PAGE, O(distinct sets), not
   * O(agents); at most MAX_LISTED sets and MAX_LISTED_BYTES of kinds JSON, then `truncated`.
   */
  async sets(): Promise<ComponentSetList> {
    const sets: ComponentSetMap = {};
    let listed = 0;
    let bytes = 0;
    let cursor = "0";
    do {
      const [next, fields] = await this.#o.redis.hscan(this.key, cursor, "COUNT", LIST_PAGE);
      cursor = next;
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const hash = fields[i] as string;
        const kinds = fields[i + 1] as string;
        // HSCAN may return a field twice (a rehash between pages): counted once.
        if (hash in sets) continue;
        if (listed >= MAX_LISTED || bytes + kinds.length > MAX_LISTED_BYTES)
          return { sets, truncated: true };
        sets[hash] = JSON.parse(kinds) as Record<string, string[]>;
        listed++;
        bytes += kinds.length;
      }
    } while (cursor !== "0");
    return { sets, truncated: false };
  }

  /**
   * Walks until the agents stored before this index are counted on this Redis (the mark), or
   * close(): see the file comment. Never rejects; failures are logged and the walk retried.
   */
  async run(): Promise<void> {
    let retryMs = RETRY_MIN_MS;
    while (!this.#closed) {
      let wait = LOCK_MS / 2;
      try {
        const counted = await this.build();
        if (counted !== undefined) {
          if (counted > 0)
            this.#o.logger.info({ counted }, "component sets of stored agents counted");
          if (!this.#closed) return;
        }
        // Another process walks: look again for its mark (or its lock's expiry) later.
      } catch (err) {
        this.#o.logger.warn(
          { err, retryMs },
          "component sets of stored agents not all counted yet",
        );
        wait = retryMs;
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      }
      // close() during the walk: its wake-up came before this wait.
      if (this.#closed) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /**
   * One walk (see the file comment): counts the stored agents whose record names no set yet,
   * unless the mark is there (0). Resolves how many it counted, or undefined when another
   * process holds the walk lock (or took it over mid-walk). Rejects when Redis fails or some
   * move failed (the walk is then not marked).
   */
  async build(): Promise<number | undefined> {
    const redis = this.#o.redis;
    if ((await redis.exists(this.builtKey)) === 1) return 0;
    const token = randomBytes(12).toString("hex");
    if ((await redis.set(this.lockKey, token, "PX", LOCK_MS, "NX")) !== "OK") return undefined;
    let cursor = "0";
    let counted = 0;
    let undecodable = 0;
    let failed = 0;
    let firstError: unknown;
    try {
      do {
        const [next, uids] = await redis.sscan(
          `${this.#o.prefix}:agents`,
          cursor,
          "COUNT",
          BUILD_CHUNK,
        );
        cursor = next;
        const rows = await Promise.all(
          uids.map((uid) =>
            redis.hmgetBuffer(
              `${this.#o.prefix}:agent:${uid}`,
              "componentSet",
              "availableComponents",
            ),
          ),
        );
        const moves: Promise<boolean>[] = [];
        uids.forEach((uid, i) => {
          const [named, bytes] = rows[i] ?? [];
          // Counted already (or no components stored): nothing to decode or send.
          if (named || !bytes) return;
          let components: AvailableComponents;
          try {
            components = decodeSubMessage<AvailableComponents>("AvailableComponents", bytes);
          } catch (err) {
            undecodable++;
            firstError ??= err;
            return;
          }
          if (!hasComponentMap(components)) return;
          const agent = { instanceUid: uid, availableComponents: components } as AgentState;
          const hash = componentsHashOf(agent) ?? "";
          const kinds = JSON.stringify(componentTypes(agent));
          moves.push(
            this.#move(uid, hash, kinds, sha1hex(bytes), true).catch((err) => {
              failed++;
              firstError ??= err;
              return false;
            }),
          );
        });
        counted += (await Promise.all(moves)).filter(Boolean).length;
        if (cursor !== "0" && !this.#closed) {
          // Held for the next step; lost (this process stalled past LOCK_MS): another walks.
          if ((await this.#redis.componentSetsLock(this.lockKey, token, String(LOCK_MS))) !== 1)
            return undefined;
        }
      } while (cursor !== "0" && !this.#closed);
      if (undecodable > 0)
        this.#o.logger.warn(
          { undecodable, err: firstError },
          "agent records whose components do not decode were not counted in any set",
        );
      if (failed > 0)
        throw new AggregateError([firstError], `${failed} component set moves failed`);
      if (this.#closed) return counted;
      await redis.set(this.builtKey, String(Date.now()));
      return counted;
    } finally {
      await this.#redis.componentSetsLock(this.lockKey, token, "0").catch(() => undefined);
    }
  }

  /** Stops run() after its current step; settles when the moves on their way did. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await Promise.all([...this.#writing]);
  }
}
