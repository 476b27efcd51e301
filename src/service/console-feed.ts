/**
 * The change feed of the console's server-sent events, correct across replicas:
 *
 * - rollout changes come from `RolloutController.onGroupChanged`, which already follows every
 *   replica's commits through the `<prefix>:rollouts` pub/sub channel;
 * - agent changes are seen only by the replica the agent is connected to: each replica
 *   publishes the uids that changed (at most once per batch interval) on
 *   `<prefix>:console-agents`, and every replica follows it (src/redis-subscriber.ts);
 * - a new served commit or stalled head is seen by each replica's own Git poll.
 *
 * Listeners get one ChangeBatch per interval (default 250 ms) in which something changed.
 * Each connect and disconnect is also kept, per agent, in a capped Redis list (the console's
 * connection history; 20 entries, 30 days).
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { ChangeBatch, ConnectionEvent } from "../api/backend.js";
import type { AgentEvents } from "../opamp/index.js";
import type { RolloutController } from "../queue/index.js";
import { follow, type RedisSubscriber } from "../redis-subscriber.js";

/** Agents named per batch at most; past it, `agentsOverflow` tells clients to reload all. */
export const MAX_BATCH_AGENTS = 500;
const HISTORY_MAX = 20;
const HISTORY_TTL_S = 30 * 24 * 3600;
/**
 * Appends a batch of connection events, grouped per key: KEYS[i] gets the next count of
 * ARGV entries (after ARGV[3 ..], a count then that many events, oldest first), capped at
 * ARGV[1] entries and kept ARGV[2] seconds. Per key, one LPUSH of all its events and one
 * EXPIRE; an LTRIM only once the list outgrew the cap (LPUSH returns its length). One command
 * per flush instead of three per event.
 */
const HISTORY_LUA = `
local max, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local at = 3
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[at])
  local len = redis.call('LPUSH', key, unpack(ARGV, at + 1, at + n))
  at = at + n + 1
  if len > max then redis.call('LTRIM', key, 0, max - 1) end
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
`;
/**
 * Agents per history script at most: a reconnect storm of N agents becomes N / 1000 short
 * scripts (each blocks Redis while it runs) instead of one of 2N commands.
 */
const HISTORY_CHUNK = 1000;

interface HistoryScript {
  /**
   * HISTORY_LUA by EVALSHA (ioredis loads it on NOSCRIPT): numkeys, keys, max, ttl, then per
   * key a count and its events.
   */
  consoleHistory(numKeys: number, ...args: Array<string | number>): Promise<number>;
}

export interface ConsoleFeedOptions {
  redis: Redis;
  prefix: string;
  replicaId: string;
  events: AgentEvents;
  rollouts: Pick<RolloutController, "onGroupChanged">;
  logger: Logger;
  /** The process' shared pub/sub connection. Default: one of the feed's own. */
  subscriber?: RedisSubscriber;
  intervalMs?: number;
}

/** What a replica publishes: its id, changed uids, and whether it named them all. */
interface AgentsMessage {
  r?: string;
  a?: unknown;
  o?: boolean;
}

/** Largest agents message: MAX_BATCH_AGENTS uids of at most 128 bytes, with room to spare. */
const MAX_MESSAGE_BYTES = MAX_BATCH_AGENTS * 256;

export class ConsoleFeed {
  readonly #options: ConsoleFeedOptions;
  readonly #listeners = new Set<(batch: ChangeBatch) => void>();
  readonly #groups = new Set<string>();
  readonly #agents = new Set<string>();
  /** Local agent changes not yet published to the other replicas. */
  readonly #local = new Set<string>();
  #history: Array<[string, ConnectionEvent]> = [];
  #overflow = false;
  #sync = false;
  #timer: NodeJS.Timeout | undefined;
  #unfollow: (() => void) | undefined;
  #unsubscribe: Array<() => void> = [];
  /** close() was called (and start() not called again since). */
  #closed = false;

  constructor(options: ConsoleFeedOptions) {
    this.#options = options;
    options.redis.defineCommand("consoleHistory", { lua: HISTORY_LUA });
  }

  get #channel(): string {
    return `${this.#options.prefix}:console-agents`;
  }

  historyKey(uid: string): string {
    return `${this.#options.prefix}:console:connections:${uid}`;
  }

  async start(): Promise<void> {
    const { events, rollouts } = this.#options;
    this.#closed = false;
    const agent = ({ instanceUid }: { instanceUid: string }) => this.#agentChanged(instanceUid);
    this.#unsubscribe.push(
      events.on("connected", (e) => {
        agent(e);
        this.#history.push([
          e.instanceUid,
          { at: Date.now(), type: "connected", transport: e.transport },
        ]);
      }),
      events.on("disconnected", (e) => {
        agent(e);
        this.#history.push([
          e.instanceUid,
          { at: Date.now(), type: "disconnected", reason: e.reason },
        ]);
      }),
      events.on("healthChanged", agent),
      events.on("remoteConfigStatusChanged", agent),
      events.on("effectiveConfigChanged", agent),
      events.on("descriptionChanged", agent),
      rollouts.onGroupChanged((group) => {
        this.#groups.add(group);
        this.#schedule();
      }),
    );
    this.#unfollow = await follow<AgentsMessage>(this.#options, this.#channel, {
      onMessage: (msg) => this.#remote(msg),
      // Changes published while disconnected are lost: clients reload what they show.
      onResubscribed: () => {
        this.#overflow = true;
        this.#schedule();
      },
      maxMessageBytes: MAX_MESSAGE_BYTES,
    });
    // Closed while subscribing: close() found nothing to unfollow.
    if (this.#closed) this.close();
  }

  /** The served commit or the head's validation changed. */
  syncChanged(): void {
    this.#sync = true;
    this.#schedule();
  }

  subscribe(listener: (batch: ChangeBatch) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#closed = true;
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unfollow?.();
    this.#unfollow = undefined;
    this.#listeners.clear();
  }

  #agentChanged(uid: string): void {
    this.#local.add(uid);
    this.#addAgent(uid);
    this.#schedule();
  }

  #addAgent(uid: string): void {
    if (this.#agents.size < MAX_BATCH_AGENTS) this.#agents.add(uid);
    else this.#overflow = true;
  }

  #remote(msg: AgentsMessage | null): void {
    if (typeof msg !== "object" || msg === null || msg.r === this.#options.replicaId) return;
    if (Array.isArray(msg.a))
      for (const uid of msg.a) if (typeof uid === "string") this.#addAgent(uid);
    if (msg.o) this.#overflow = true;
    this.#schedule();
  }

  #schedule(): void {
    this.#timer ??= setTimeout(() => this.#flush(), this.#options.intervalMs ?? 250);
    this.#timer.unref();
  }

  #flush(): void {
    this.#timer = undefined;
    const batch: ChangeBatch = {
      groups: [...this.#groups],
      agents: [...this.#agents],
      agentsOverflow: this.#overflow,
      sync: this.#sync,
    };
    const local = [...this.#local];
    const history = this.#history;
    this.#groups.clear();
    this.#agents.clear();
    this.#local.clear();
    this.#history = [];
    this.#overflow = false;
    this.#sync = false;
    if (local.length > 0 || history.length > 0) void this.#publish(local, history);
    for (const listener of this.#listeners) {
      try {
        listener(batch);
      } catch (err) {
        this.#options.logger.warn({ err }, "console feed listener threw");
      }
    }
  }

  async #publish(local: string[], history: Array<[string, ConnectionEvent]>): Promise<void> {
    const { redis, replicaId } = this.#options;
    try {
      const pipeline = redis.pipeline();
      if (local.length > 0) {
        const a = local.slice(0, MAX_BATCH_AGENTS);
        pipeline.publish(
          this.#channel,
          JSON.stringify({ r: replicaId, a, o: local.length > a.length }),
        );
      }
      const scripts = pipeline as unknown as HistoryScript;
      // Per agent, its events of this flush in order; only the newest HISTORY_MAX are kept.
      const byUid = new Map<string, string[]>();
      for (const [uid, event] of history) {
        const list = byUid.get(uid);
        if (list) list.push(JSON.stringify(event));
        else byUid.set(uid, [JSON.stringify(event)]);
      }
      const agents = [...byUid];
      for (let i = 0; i < agents.length; i += HISTORY_CHUNK) {
        const chunk = agents.slice(i, i + HISTORY_CHUNK);
        const args: Array<string | number> = chunk.map(([uid]) => this.historyKey(uid));
        args.push(HISTORY_MAX, HISTORY_TTL_S);
        for (const [, events] of chunk) {
          const kept = events.length > HISTORY_MAX ? events.slice(-HISTORY_MAX) : events;
          args.push(kept.length, ...kept);
        }
        scripts.consoleHistory(chunk.length, ...args);
      }
      await pipeline.exec();
    } catch (err) {
      this.#options.logger.warn({ err }, "console feed: cannot publish agent changes");
    }
  }

  /** The agent's connection history, newest first. */
  async connections(uid: string): Promise<ConnectionEvent[]> {
    const raw = await this.#options.redis.lrange(this.historyKey(uid), 0, HISTORY_MAX - 1);
    return raw.flatMap((t) => {
      try {
        return [JSON.parse(t) as ConnectionEvent];
      } catch {
        return [];
      }
    });
  }
}
