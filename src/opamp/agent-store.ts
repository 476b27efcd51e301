/**
 * Agent state in Redis, one hash per agent (`<prefix>:agent:<uid>`) plus an index set
 * (`<prefix>:agents`) and the same uids in order (`<prefix>:agent-order`, agent-order.ts), so
 * any replica can serve any agent.
 *
 * Writes happen only when something meaningful changed. Heartbeats that change nothing are
 * not written one by one: last-seen times and sequence numbers are batched by `touch()` and
 * written by `flushTouches()`, which the server calls on an interval.
 *
 * Every method sends plain commands, in call order, on the one connection it is given; give
 * it the connection of `pipelinedConnection` (src/redis.ts): the commands of many agents
 * issued in one event-loop turn then leave as one write (one syscall for a whole turn's
 * connects, saves and disconnects), and the order of one agent's commands (a save, then its
 * disconnect) is still the call order.
 */
import type { Redis } from "ioredis";
import { agentOrderKey } from "./agent-order.js";
import {
  type AgentState,
  emptyAgentState,
  REPORT_FIELD_NAMES,
  type ReportField,
  setReportField,
  type Transport,
} from "./agent-state.js";
import { decodeSubMessage } from "./codec.js";
import type { AvailableComponents } from "./messages.js";

/** Scalar fields written with every state save. */
type ScalarField =
  | "seq"
  | "caps"
  | "transport"
  | "connected"
  | "lastConnectedAt"
  | "lastDisconnectedAt"
  | "lastSeenAt"
  | "offeredSettings"
  | "scopes"
  | "credential"
  | "owner";

export interface AgentStoreOptions {
  /** Key prefix shared with the rest of the service, e.g. "opamp-gitops". */
  prefix: string;
}

/**
 * Stores a disconnect unless the agent is served by another replica now: it is stored as
 * connected there (its `owner`), or another replica heard from it later than this one did
 * (HTTP polls alternating between replicas write no owner, only last-seen times).
 * KEYS[1] the agent; ARGV[1] this replica's owner prefix (`<replica>/`), ARGV[2] when this
 * replica last heard from the agent (ms), then field/value pairs to write.
 */
const DISCONNECT_LUA = `
local cur = redis.call('HMGET', KEYS[1], 'connected', 'owner', 'lastSeenAt')
if cur[1] == '1' then
  local owner = cur[2] or ''
  if owner ~= '' and string.sub(owner, 1, #ARGV[1]) ~= ARGV[1] then return 0 end
  local seen = tonumber(cur[3] or '0') or 0
  if seen > tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1
`;

interface Scripts {
  agentDisconnect(
    key: string,
    ownerPrefix: string,
    ...values: (string | Buffer)[]
  ): Promise<number>;
}

export class AgentStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #touched = new Map<string, { lastSeenAt: number; seq: bigint }>();
  /** New agents of this tick, not yet sent to the index set; #indexed settles with them. */
  #newUids: Set<string> | undefined;
  #indexed: Promise<unknown> | undefined;
  /** replicaAlive() lookups on their way, by replica id. */
  readonly #aliveAsked = new Map<string, Promise<boolean>>();

  constructor(redis: Redis, { prefix }: AgentStoreOptions) {
    redis.defineCommand("agentDisconnect", { numberOfKeys: 1, lua: DISCONNECT_LUA });
    this.#redis = redis;
    this.#prefix = prefix;
  }

  #key(uid: string): string {
    return `${this.#prefix}:agent:${uid}`;
  }

  /**
   * Loads an agent, or undefined when none is stored. One round trip. `owner` is the stored
   * owner ("" none); `componentSet` the component set its record is counted in ("" none;
   * src/service/component-sets.ts repairs it on connect when it differs from the stored
   * components' set).
   */
  async load(
    uid: string,
  ): Promise<(AgentState & { owner: string; componentSet: string }) | undefined> {
    const raw = await this.#redis.hgetallBuffer(this.#key(uid));
    if (!raw || Object.keys(raw).length === 0) return undefined;
    const text = (f: ScalarField) => raw[f]?.toString() ?? "";
    const num = (f: ScalarField) => (text(f) === "" ? null : Number(text(f)));
    const state = emptyAgentState(uid, (text("transport") || "websocket") as Transport, 0);
    state.sequenceNum = BigInt(text("seq") || "0");
    state.capabilities = BigInt(text("caps") || "0");
    state.connected = text("connected") === "1";
    state.lastConnectedAt = num("lastConnectedAt");
    state.lastDisconnectedAt = num("lastDisconnectedAt");
    state.lastSeenAt = num("lastSeenAt") ?? 0;
    state.offeredSettingsHash = text("offeredSettings") || null;
    // Scopes are single lines (a tokens-file line's tail), so newline-joined.
    state.scopes = text("scopes") === "" ? [] : text("scopes").split("\n");
    state.credential = text("credential");
    for (const field of REPORT_FIELD_NAMES) {
      const bytes = raw[field];
      if (bytes) setReportField(state, field, bytes);
    }
    return Object.assign(state, {
      owner: text("owner"),
      componentSet: raw.componentSet?.toString() ?? "",
    });
  }

  /**
   * What agent lists filter on (src/service/agent-list.ts), for many agents at once: each
   * stored agent with its connected flag, scopes and description only (every other field left
   * empty), or undefined when none is stored. One HMGET per agent, sent together: far fewer
   * bytes read and decoded than load() for agents that report effective configs, component
   * lists and health.
   */
  async loadBrief(uids: readonly string[]): Promise<Array<AgentState | undefined>> {
    const replies = await Promise.all(
      uids.map((uid) =>
        this.#redis.hmgetBuffer(this.#key(uid), "connected", "scopes", "transport", "description"),
      ),
    );
    return uids.map((uid, i) => {
      const [connected, scopes, transport, description] = replies[i] ?? [];
      // `connected` is written by every save: without it no agent is stored.
      if (!connected) return undefined;
      const state = emptyAgentState(uid, (transport?.toString() || "websocket") as Transport, 0);
      state.connected = connected.toString() === "1";
      state.scopes = scopes && scopes.length > 0 ? scopes.toString().split("\n") : [];
      if (description) setReportField(state, "description", description);
      return state;
    });
  }

  /**
   * Writes the scalar fields and the given report fields of `state`. `owner` names the
   * replica and connection serving the agent (used for duplicate-uid detection); `isNew`
   * adds the uid to the index set and to the uid order (agent-order.ts). One HSET (and, for
   * the new agents of one tick, one SADD and one ZADD); on pipelinedConnection's connection,
   * the saves of one turn share a write.
   */
  async save(
    state: AgentState,
    fields: readonly ReportField[],
    owner: string,
    isNew = false,
  ): Promise<void> {
    const uid = state.instanceUid;
    const values = this.#values(state, fields, owner);
    this.#touched.delete(uid);
    if (!isNew) {
      await this.#redis.hset(this.#key(uid), ...values);
      return;
    }
    // The index's SADD and ZADD join this turn's write with the HSET (#index),
    // so a SIGKILL cannot leave a stored agent missing from the index and the uid order.
    const indexed = this.#index(uid);
    await Promise.all([this.#redis.hset(this.#key(uid), ...values), indexed]);
  }

  /**
   * Adds `uid` to the index set and the uid order with the other new agents of this tick: one
   * SADD and one ZADD per tick (a connect burst of new agents is not one each). Settles when
   * both did. Sent on process.nextTick: pipelinedConnection's connection writes a turn's
   * commands on setImmediate, which always runs after this tick's nextTick queue, so the index
   * commands leave in the same write as the HSET.
   */
  #index(uid: string): Promise<unknown> {
    if (!this.#newUids) {
      const batch = new Set<string>();
      this.#newUids = batch;
      this.#indexed = new Promise((resolve, reject) =>
        process.nextTick(() => {
          this.#newUids = undefined;
          const uids = [...batch];
          Promise.all([
            this.#redis.sadd(`${this.#prefix}:agents`, ...uids),
            this.#redis.zadd(agentOrderKey(this.#prefix), ...uids.flatMap((u) => [0, u])),
          ]).then(resolve, reject);
        }),
      );
    }
    this.#newUids.add(uid);
    return this.#indexed as Promise<unknown>;
  }

  /**
   * Stores a disconnect seen by the replica of `owner` (`<replica>/<connection>`), unless the
   * stored agent is connected through another replica now (it moved: a load balancer sent it
   * elsewhere, or its HTTP polls alternate: see DISCONNECT_LUA). Resolves false when it was
   * not stored. One EVALSHA (ioredis sends the script itself once per connection); saves
   * called before it reach Redis before it (one connection, call order).
   */
  async saveDisconnect(state: AgentState, owner: string): Promise<boolean> {
    const replica = `${owner.slice(0, owner.lastIndexOf("/"))}/`;
    const values = this.#values(state, [], owner);
    this.#touched.delete(state.instanceUid);
    const redis = this.#redis as Redis & Scripts;
    const key = this.#key(state.instanceUid);
    const seen = String(state.lastSeenAt);
    return (await redis.agentDisconnect(key, replica, seen, ...values)) === 1;
  }

  #values(state: AgentState, fields: readonly ReportField[], owner: string): (string | Buffer)[] {
    const values: (string | Buffer)[] = [
      "seq",
      state.sequenceNum.toString(),
      "caps",
      state.capabilities.toString(),
      "transport",
      state.transport,
      "connected",
      state.connected ? "1" : "0",
      "lastConnectedAt",
      String(state.lastConnectedAt ?? ""),
      "lastDisconnectedAt",
      String(state.lastDisconnectedAt ?? ""),
      "lastSeenAt",
      String(state.lastSeenAt),
      "offeredSettings",
      state.offeredSettingsHash ?? "",
      "scopes",
      state.scopes.join("\n"),
      "credential",
      state.credential,
      "owner",
      owner,
    ];
    for (const field of fields) {
      const bytes = state.encoded[field];
      if (bytes) values.push(field, bytes);
    }
    return values;
  }

  /** Records a heartbeat in memory; written by the next flushTouches(). */
  touch(uid: string, lastSeenAt: number, seq: bigint): void {
    this.#touched.set(uid, { lastSeenAt, seq });
  }

  /**
   * Writes every batched heartbeat: one HSET per agent, sent together (pipelinedConnection's
   * connection makes them one write). Returns how many agents were written.
   */
  async flushTouches(): Promise<number> {
    if (this.#touched.size === 0) return 0;
    const batch = [...this.#touched];
    this.#touched.clear();
    const writes = batch.map(([uid, t]) =>
      this.#redis.hset(this.#key(uid), "lastSeenAt", String(t.lastSeenAt), "seq", t.seq.toString()),
    );
    const results = await Promise.allSettled(writes);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) {
      // Put them back (newer touches win) so a Redis outage loses no last-seen time.
      for (const [uid, t] of batch) if (!this.#touched.has(uid)) this.#touched.set(uid, t);
      throw failed.reason;
    }
    return batch.length;
  }

  /**
   * The stored AvailableComponents of each uid (null: none stored), read in slices of 1000
   * HGETs sent together, for checks over a whole group without loading every agent.
   */
  async availableComponents(
    uids: readonly string[],
  ): Promise<Map<string, AvailableComponents | null>> {
    const out = new Map<string, AvailableComponents | null>();
    for (let i = 0; i < uids.length; i += 1000) {
      const chunk = uids.slice(i, i + 1000);
      const results = await Promise.all(
        chunk.map((uid) => this.#redis.hgetBuffer(this.#key(uid), "availableComponents")),
      );
      chunk.forEach((uid, j) => {
        const bytes = results[j];
        out.set(
          uid,
          bytes ? decodeSubMessage<AvailableComponents>("AvailableComponents", bytes) : null,
        );
      });
    }
    return out;
  }

  /**
   * Whether the server process `replica` still holds its liveness key (replica-liveness.ts
   * owns that key: `<prefix>:replica:<id>`). False for "" (no owner stored). Callers asking
   * about one id while a lookup of it is on its way share that lookup's answer.
   */
  replicaAlive(replica: string): Promise<boolean> {
    if (!replica) return Promise.resolve(false);
    // One EXISTS per replica in flight, shared: after a process died, every one of its agents
    // reconnecting elsewhere asks about the same id at once (a storm of the same question).
    let asked = this.#aliveAsked.get(replica);
    if (!asked) {
      asked = this.#redis
        .exists(`${this.#prefix}:replica:${replica}`)
        .then((n) => n === 1)
        .finally(() => this.#aliveAsked.delete(replica));
      this.#aliveAsked.set(replica, asked);
    }
    return asked;
  }

  /** Every stored instance uid. */
  async list(): Promise<string[]> {
    return this.#redis.smembers(`${this.#prefix}:agents`);
  }
}
