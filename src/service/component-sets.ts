/**
 * The component sets agents report (GET /api/v1/components), kept in Redis per set so that
 * listing them never reads the agents: `<p>:component-sets:v1` (hash: the AvailableComponents
 * hash in hex → its kinds as JSON, kind → sorted types, as views show them) and
 * `<p>:component-sets:v1:agents` (hash: hex → how many stored agents name it). Each agent's
 * record names its set in the field `componentSet`, so a change moves exactly one count.
 *
 * Maintenance: the replica that stores a report of an agent's components (the
 * availableComponentsChanged event, emitted after the save) moves the agent to the new set in
 * one script (SET_LUA): the field, both counts and the set's kinds together, so replicas
 * recording the same agent (a reconnect elsewhere, HTTP polls alternating) never count it twice.
 * A set no agent names any more is removed in the same step. A hash without its map (the agent
 * changed its build; the server asks for the map) moves the agent out of its old set until the
 * map comes. Agents stored before this index (or by a replica of an older version) are counted
 * by build(): one walk over the stored agents per Redis, marked done by
 * `<p>:component-sets:v1:built`; every replica starting before the mark walks (idempotent:
 * the walk only counts agents whose record names no set yet).
 *
 * Cost: listing is one HGETALL, O(distinct sets), whatever the fleet's size; a report of a
 * new set is one EVALSHA; a heartbeat nothing. An agent record deleted outside the service
 * keeps its count (its set stays listed until the count's other agents leave it).
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { componentsHashOf, componentTypes } from "../api/views.js";
import type { AgentEvents, AgentState, AvailableComponents } from "../opamp/index.js";

/** Agents read per step of build(). */
const BUILD_CHUNK = 500;

/**
 * Moves an agent to the set it reports. KEYS[1] its record, KEYS[2] the sets (hex → kinds
 * JSON), KEYS[3] the counts (hex → agents); ARGV[1] the set's hex ('' none: no map reported),
 * ARGV[2] its kinds JSON, ARGV[3] '1' to count only an agent whose record names no set yet
 * (build(): never over a live report's move). Only a stored record (`connected` is written by
 * every save) is touched: a script never makes a partial record. Returns 1 when it moved.
 */
const SET_LUA = `
if redis.call('HEXISTS', KEYS[1], 'connected') == 0 then return 0 end
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

interface Scripts {
  componentSetMove(
    record: string,
    sets: string,
    counts: string,
    ...args: string[]
  ): Promise<number>;
}

/** kind → sorted types of each set, by the set's AvailableComponents hash in hex. */
export type ComponentSetMap = Record<string, Record<string, string[]>>;

export interface ComponentSetsOptions {
  redis: Redis;
  /** The Redis key prefix shared with the agent store (`<p>:agent:<uid>`, `<p>:agents`). */
  prefix: string;
  logger: Logger;
  /** The stored AvailableComponents of uids (AgentStore.availableComponents), for build(). */
  components(uids: readonly string[]): Promise<Map<string, AvailableComponents | null>>;
}

export class ComponentSets {
  readonly #o: ComponentSetsOptions;
  readonly #redis: Redis & Scripts;
  readonly key: string;
  readonly countsKey: string;
  readonly #builtKey: string;
  /** Moves on their way (awaited by idle()). */
  readonly #writing = new Set<Promise<unknown>>();
  /** close() was called: a walk stops after its current step (unmarked: the next start walks). */
  #closed = false;

  constructor(options: ComponentSetsOptions) {
    options.redis.defineCommand("componentSetMove", { numberOfKeys: 3, lua: SET_LUA });
    this.#o = options;
    this.#redis = options.redis as Redis & Scripts;
    this.key = `${options.prefix}:component-sets:v1`;
    this.countsKey = `${this.key}:agents`;
    this.#builtKey = `${this.key}:built`;
  }

  /** Records the sets of agents whose components change here; returns the unsubscribe. */
  watch(events: AgentEvents): () => void {
    return events.on("availableComponentsChanged", ({ agent }) => {
      const write = this.record(agent)
        .catch((err) =>
          this.#o.logger.warn(
            { err, agent: agent.instanceUid },
            "component set not recorded; the agent's next report of a new set records it",
          ),
        )
        .finally(() => this.#writing.delete(write));
      this.#writing.add(write);
    });
  }

  /**
   * Moves a stored agent to the set it reports (none without a map); `onlyNew`: only when its
   * record names no set yet. Resolves whether it moved. One EVALSHA.
   */
  async record(agent: Readonly<AgentState>, onlyNew = false): Promise<boolean> {
    const hash = componentsHashOf(agent) ?? "";
    const kinds = hash ? JSON.stringify(componentTypes(agent)) : "";
    const record = `${this.#o.prefix}:agent:${agent.instanceUid}`;
    const moved = await this.#redis.componentSetMove(
      record,
      this.key,
      this.countsKey,
      hash,
      kinds,
      onlyNew ? "1" : "",
    );
    return moved === 1;
  }

  /** Every set some stored agent names. One HGETALL: O(distinct sets), not O(agents). */
  async sets(): Promise<ComponentSetMap> {
    const out: ComponentSetMap = {};
    for (const [hash, kinds] of Object.entries(await this.#o.redis.hgetall(this.key)))
      out[hash] = JSON.parse(kinds) as Record<string, string[]>;
    return out;
  }

  /**
   * Counts the stored agents whose record names no set yet (stored before this index), unless
   * a walk already finished on this Redis: SSCAN over `<p>:agents`, BUILD_CHUNK agents' stored
   * components at a time. Returns how many agents it counted (0 when the mark was there).
   */
  async build(): Promise<number> {
    if ((await this.#o.redis.exists(this.#builtKey)) === 1) return 0;
    let cursor = "0";
    let counted = 0;
    do {
      const [next, uids] = await this.#o.redis.sscan(
        `${this.#o.prefix}:agents`,
        cursor,
        "COUNT",
        BUILD_CHUNK,
      );
      cursor = next;
      const stored = await this.#o.components(uids);
      const moved = await Promise.all(
        [...stored].flatMap(([uid, availableComponents]) => {
          if (!availableComponents) return [];
          const agent = { instanceUid: uid, availableComponents } as Readonly<AgentState>;
          return [this.record(agent, true)];
        }),
      );
      counted += moved.filter(Boolean).length;
    } while (cursor !== "0" && !this.#closed);
    if (this.#closed) return counted;
    await this.#o.redis.set(this.#builtKey, String(Date.now()));
    return counted;
  }

  /** Stops a walk of build() after its current step; settles when the moves on their way did. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#writing]);
  }
}
