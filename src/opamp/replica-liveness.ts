/**
 * Process liveness in Redis, so that agents of a process that died (`kill -9`, a lost host)
 * are marked disconnected within a bounded time even if they never come back.
 *
 * Keys (prefix `<p>`):
 * - `<p>:replica:<id>`: a string with a TTL of `timeoutMs`, refreshed every `timeoutMs / 3`;
 *   its absence means the process is dead (Redis' clock decides, not the hosts').
 * - `<p>:replicas`: the set of process ids that may still own agents.
 * - `<p>:replica:<id>:agents`: uids whose `connected` event this process emitted (added on
 *   connect, removed on disconnect); the candidates of a sweep.
 * - `<p>:service:alive-at`, `<p>:service:outage`: when some process last refreshed its key,
 *   and the last gap longer than the timeout (service-alive.ts): every process gone, or none
 *   reaching Redis, is recorded (and logged) by the first refresh after it, whether a
 *   process's start or a liveness tick, and rollouts ask for it before each tick
 *   (lastOutage()) so that this time does not count against apply deadlines.
 *
 * Every tick each process refreshes its key and sweeps the ids in `<p>:replicas` whose key is
 * gone: an agent of the dead process still stored as `connected` with an `owner` naming it
 * is set disconnected by a Lua script (atomic with respect to a reconnect elsewhere, which
 * rewrites `owner`), and a `disconnected` event with `lost: true` is emitted for it here, so
 * rollout membership and the status branch learn it. Several processes may sweep at once:
 * only the one whose script flipped an agent emits its event. Bound: an agent of a process
 * killed at T is disconnected by T + timeoutMs + timeoutMs / 3 (plus one sweep's duration).
 *
 * A process whose own key expired (stalled, or cut off from Redis for longer than the
 * timeout) may have been swept while its agents stayed connected to it: it re-claims them
 * (sets them connected again and re-emits `connected`).
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { AgentStore } from "./agent-store.js";
import type { AgentEvents } from "./events.js";
import type { LiveAgents } from "./live-agents.js";
import { type Outage, ServiceAlive } from "./service-alive.js";

/**
 * Flips an agent to disconnected iff it is stored connected, owned by the given process, and
 * that process' liveness key (KEYS[2]) is still absent: a process that stalled past its
 * timeout, came back and re-claimed its agents between a sweep's check and this flip keeps
 * them (it re-claims only what was flipped before it set its key again).
 */
const MARK_LOST_LUA = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('HGET', KEYS[1], 'connected') ~= '1' then return 0 end
local owner = redis.call('HGET', KEYS[1], 'owner') or ''
if string.sub(owner, 1, #ARGV[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'connected', '0', 'lastDisconnectedAt', ARGV[2])
return 1
`;

/**
 * Sets an agent connected again iff it is stored disconnected and owned by this process.
 * Returns the stored `lastDisconnectedAt` (when the sweep marked it; "" if none), or nil.
 */
const RECLAIM_LUA = `
if redis.call('HGET', KEYS[1], 'connected') ~= '0' then return false end
local owner = redis.call('HGET', KEYS[1], 'owner') or ''
if string.sub(owner, 1, #ARGV[1]) ~= ARGV[1] then return false end
redis.call('HSET', KEYS[1], 'connected', '1')
return redis.call('HGET', KEYS[1], 'lastDisconnectedAt') or ''
`;

/**
 * Forgets a swept process (its agent set, its entry in the replica set) iff its liveness key
 * (KEYS[1]) is still absent: a process that came back during the sweep re-claimed its agents
 * and rewrote its set, which must survive for a later sweep should it really die. Counts the
 * forgotten process in KEYS[4] (replicasLostKey), in the same step: the status writer re-marks
 * every agent when it sees the count change (what the dead process held in memory is gone).
 */
const FORGET_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('INCR', KEYS[4])
return 1
`;

/**
 * The key counting the processes forgotten by sweeps (a STRING counter, never reset): it
 * changes after every process that stopped, killed or not. Readers compare it with the value
 * they saw last.
 */
export function replicasLostKey(prefix: string): string {
  return `${prefix}:replicas-lost`;
}

/** Agents marked per round of concurrent commands in a sweep. */
const SWEEP_SLICE = 256;

interface Scripts {
  replicaMarkLost(
    key: string,
    replicaKey: string,
    ownerPrefix: string,
    now: string,
  ): Promise<number>;
  replicaReclaim(key: string, ownerPrefix: string): Promise<string | null>;
  replicaForget(
    replicaKey: string,
    agentSet: string,
    replicas: string,
    lost: string,
    id: string,
  ): Promise<number>;
}

export interface ReplicaLivenessOptions {
  redis: Redis;
  /** Redis key prefix of the service. */
  prefix: string;
  /** This process' id: the first part of the `owner` it stores (`<id>/<connection>`). */
  replicaId: string;
  events: AgentEvents;
  store: AgentStore;
  /** This process' agents, for re-claiming them after its own key expired. */
  live: LiveAgents;
  logger: Logger;
  /** A process whose key was not refreshed for this long is dead, in ms. Default 15 000. */
  timeoutMs?: number;
  now?: () => number;
}

/** A process id unique per start (a restarted container often gets the same pid). */
export function newReplicaId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
}

export class ReplicaLiveness {
  readonly #options: Required<ReplicaLivenessOptions>;
  readonly #redis: Redis & Scripts;
  readonly #alive: ServiceAlive;
  readonly #adds = new Set<string>();
  readonly #removes = new Set<string>();
  #flushing = false;
  /** A membership write failed: the next tick rewrites this process' agent set. */
  #dirty = false;
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> = Promise.resolve();
  /** The timer's refresh on its way, if any. */
  #refreshing: Promise<void> | undefined;
  /** A re-claim on its way, if any: it runs beside refreshes, which must keep their pace. */
  #reclaiming: Promise<void> | undefined;
  /** The timer's sweep is queued or running. */
  #sweeping = false;
  #stopped = false;
  /** The key was set once: from then on, finding it gone means it expired. */
  #registered = false;

  constructor(options: ReplicaLivenessOptions) {
    this.#options = { timeoutMs: 15_000, now: Date.now, ...options };
    this.#alive = new ServiceAlive({
      redis: options.redis,
      prefix: options.prefix,
      timeoutMs: this.#options.timeoutMs,
      now: this.#options.now,
      onEnded: (outage) =>
        options.logger.warn(
          { downFrom: new Date(outage.from).toISOString(), downMs: outage.to - outage.from },
          "no replica served for longer than the replica timeout: rollouts' apply deadlines are moved by the outage",
        ),
    });
    options.redis.defineCommand("replicaMarkLost", { numberOfKeys: 2, lua: MARK_LOST_LUA });
    options.redis.defineCommand("replicaReclaim", { numberOfKeys: 1, lua: RECLAIM_LUA });
    options.redis.defineCommand("replicaForget", { numberOfKeys: 4, lua: FORGET_LUA });
    this.#redis = options.redis as Redis & Scripts;
    options.events.on("connected", ({ instanceUid }) => this.#queue(instanceUid, true));
    options.events.on("disconnected", ({ instanceUid, lost }) => {
      if (!lost) this.#queue(instanceUid, false);
    });
  }

  #key(id = this.#options.replicaId): string {
    return `${this.#options.prefix}:replica:${id}`;
  }

  /**
   * Says the service serves now and returns its last outage (service-alive.ts): the rollouts
   * ask before each tick, so a deadline that fell due while no process could reach Redis is
   * moved by the outage before it is checked. Rejects when Redis cannot be reached.
   */
  lastOutage(): Promise<Outage | undefined> {
    return this.#alive.refresh();
  }

  /** Registers this process and starts the refresh-and-sweep timer. */
  async start(): Promise<void> {
    await this.#refresh();
    const every = Math.max(50, Math.floor(this.#options.timeoutMs / 3));
    this.#timer = setInterval(() => {
      // The refresh never waits behind a sweep: a sweep slowed by many agents or a loaded host
      // must not let this process' own key expire (then its agents would be swept too).
      this.#refreshing ??= this.#guarded(() => this.#refresh()).finally(() => {
        this.#refreshing = undefined;
      });
      if (this.#sweeping) return;
      this.#sweeping = true;
      this.#tick = this.#tick
        .then(() => this.#guarded(() => this.sweep()))
        .finally(() => {
          this.#sweeping = false;
        });
    }, every);
    this.#timer.unref();
  }

  /** Runs one step unless stopped; a failure is logged (the next tick retries). */
  async #guarded(step: () => Promise<unknown>): Promise<void> {
    if (this.#stopped) return;
    try {
      await step();
    } catch (err) {
      this.#options.logger.warn({ err }, "replica liveness check failed; will retry");
    }
  }

  /** One refresh, then one sweep (for tests; the timer runs the two apart). Never throws. */
  tick(): Promise<void> {
    this.#tick = this.#tick.then(() => this.#run());
    return this.#tick;
  }

  async #run(): Promise<void> {
    if (this.#stopped) return;
    try {
      await this.#refresh();
      await this.#reclaiming;
      await this.sweep();
    } catch (err) {
      this.#options.logger.warn({ err }, "replica liveness check failed; will retry");
    }
  }

  async #refresh(): Promise<void> {
    const { prefix, replicaId, timeoutMs } = this.#options;
    const [[, renewed] = []] =
      (await this.#redis
        .multi()
        .pexpire(this.#key(), timeoutMs)
        .set(this.#key(), String(this.#options.now()), "PX", timeoutMs)
        .sadd(`${prefix}:replicas`, replicaId)
        .exec()) ?? [];
    await this.lastOutage();
    if (renewed === 0 && this.#registered) {
      // Rewrite the agent set too (below): a sweep may have deleted it.
      this.#dirty = true;
      // Not awaited: re-claiming many agents on a loaded host may outlast the timeout, and
      // our key must not expire meanwhile (then we would be swept, and re-claim, again).
      this.#reclaiming ??= this.#guarded(() => this.#reclaim()).finally(() => {
        this.#reclaiming = undefined;
      });
    }
    this.#registered = true;
    if (this.#dirty) {
      this.#dirty = false;
      for (const live of this.#options.live.values()) this.#adds.add(live.state.instanceUid);
      await this.#flush();
    }
  }

  /** Our key had expired: agents still connected here may have been swept by another process. */
  async #reclaim(): Promise<void> {
    this.#options.logger.warn("this process' liveness key had expired; re-claiming its agents");
    const all = [...this.#options.live.values()];
    // Slices of concurrent commands, as in a sweep.
    for (let i = 0; i < all.length; i += SWEEP_SLICE) {
      const slice = all.slice(i, i + SWEEP_SLICE);
      const swept = await Promise.all(
        slice.map((live) =>
          this.#redis.replicaReclaim(
            this.#agentKey(live.state.instanceUid),
            `${this.#options.replicaId}/`,
          ),
        ),
      );
      for (const [j, live] of slice.entries()) {
        const at = swept[j];
        const uid = live.state.instanceUid;
        if (at === null || at === undefined || this.#options.live.get(uid) !== live) continue;
        const agent = live.state;
        // Memory takes the disconnect time the sweep stored (and announced): what this
        // process shows and records again then differs from what it recorded before.
        if (at !== "" && Number.isFinite(Number(at))) agent.lastDisconnectedAt = Number(at);
        this.#options.events.emit("connected", {
          instanceUid: uid,
          transport: agent.transport,
          agent,
        });
      }
    }
  }

  #agentKey(uid: string): string {
    return `${this.#options.prefix}:agent:${uid}`;
  }

  /**
   * Marks the agents of every dead process disconnected. Resolves with how many were marked.
   * Safe to run on several processes at once.
   */
  async sweep(): Promise<number> {
    const { prefix, replicaId } = this.#options;
    let marked = 0;
    for (const id of await this.#redis.smembers(`${prefix}:replicas`)) {
      if (id === replicaId || (await this.#redis.exists(this.#key(id))) === 1) continue;
      const set = `${this.#key(id)}:agents`;
      const uids = await this.#redis.smembers(set);
      // Slices of concurrent commands: one connection pipelines them, memory stays bounded.
      for (let i = 0; i < uids.length; i += SWEEP_SLICE) {
        const slice = uids.slice(i, i + SWEEP_SLICE);
        const at = String(this.#options.now());
        const flipped = await Promise.all(
          slice.map((uid) =>
            this.#redis.replicaMarkLost(this.#agentKey(uid), this.#key(id), `${id}/`, at),
          ),
        );
        const lost = slice.filter((_, j) => flipped[j] === 1);
        marked += lost.length;
        const agents = await Promise.all(lost.map((uid) => this.#options.store.load(uid)));
        for (const agent of agents) {
          // Reconnected elsewhere since the flip (that save rewrote owner): its connect stands.
          // Connected here already (its batched save has not rewritten owner yet): same.
          // Connected again with the same owner: that process came back and re-claimed it.
          if (
            !agent?.owner.startsWith(`${id}/`) ||
            agent.connected ||
            this.#options.live.get(agent.instanceUid)
          )
            continue;
          this.#options.events.emit("disconnected", {
            instanceUid: agent.instanceUid,
            reason: `its server process ${id} stopped`,
            agent,
            lost: true,
          });
        }
      }
      const forgotten = await this.#redis.replicaForget(
        this.#key(id),
        set,
        `${prefix}:replicas`,
        replicasLostKey(prefix),
        id,
      );
      if (forgotten === 1)
        this.#options.logger.info({ replica: id }, "swept the agents of a stopped server process");
      else this.#options.logger.warn({ replica: id }, "a swept server process came back");
    }
    return marked;
  }

  /**
   * Marks disconnected every agent stored as connected whose owner process has no liveness
   * key: agents left "connected" by a version without liveness keys, or by a process whose
   * agent set was lost. One pass over every stored agent (SSCAN): run once by the replica
   * that takes the Git lease, not per tick. Safe beside sweeps (the same atomic flip).
   * Resolves with how many were marked.
   */
  async sweepOrphans(): Promise<number> {
    const { prefix, replicaId } = this.#options;
    const alive = new Map<string, boolean>([[replicaId, true]]);
    let marked = 0;
    let cursor = "0";
    do {
      const [next, uids] = await this.#redis.sscan(`${prefix}:agents`, cursor, "COUNT", 500);
      cursor = next;
      const rows = await Promise.all(
        uids.map((uid) => this.#redis.hmget(this.#agentKey(uid), "connected", "owner")),
      );
      for (const [i, [connected, owner]] of rows.entries()) {
        const uid = uids[i] as string;
        // Connected here (its batched save may not have rewritten owner yet): not an orphan.
        if (connected !== "1" || this.#options.live.get(uid)) continue;
        const id = (owner ?? "").slice(0, Math.max(0, (owner ?? "").lastIndexOf("/")));
        if (!alive.has(id)) alive.set(id, (await this.#redis.exists(this.#key(id))) === 1);
        if (alive.get(id)) continue;
        const at = String(this.#options.now());
        const flipped = await this.#redis.replicaMarkLost(
          this.#agentKey(uid),
          this.#key(id),
          `${id}/`,
          at,
        );
        if (flipped !== 1) continue;
        const agent = await this.#options.store.load(uid);
        if (!agent?.owner.startsWith(`${id}/`) || agent.connected || this.#options.live.get(uid))
          continue;
        marked++;
        this.#options.events.emit("disconnected", {
          instanceUid: uid,
          reason: `its server process ${id || "(unknown)"} is not running`,
          agent,
          lost: true,
        });
      }
    } while (cursor !== "0");
    if (marked > 0)
      this.#options.logger.info({ marked }, "disconnected agents of stopped processes");
    return marked;
  }

  #queue(uid: string, add: boolean): void {
    (add ? this.#removes : this.#adds).delete(uid);
    (add ? this.#adds : this.#removes).add(uid);
    if (!this.#flushing) {
      this.#flushing = true;
      setImmediate(() => void this.#flush());
    }
  }

  async #flush(): Promise<void> {
    const adds = [...this.#adds];
    const removes = [...this.#removes];
    this.#adds.clear();
    this.#removes.clear();
    this.#flushing = false;
    if (adds.length === 0 && removes.length === 0) return;
    const set = `${this.#key()}:agents`;
    // Plain commands, so that on the agent-write connection they keep their place after
    // the agents' saves issued before them (a manual pipeline would be written at once).
    const writes: Promise<number>[] = [];
    if (adds.length > 0) writes.push(this.#redis.sadd(set, ...adds));
    if (removes.length > 0) writes.push(this.#redis.srem(set, ...removes));
    try {
      await Promise.all(writes);
    } catch {
      this.#dirty = true;
    }
  }

  /**
   * Stops the timer and deletes this process' liveness key, so that the next sweep anywhere
   * handles any agent whose disconnect could not be stored (agents already stored as
   * disconnected are skipped). Call after the OpAMP server closed. Errors are ignored.
   */
  async close(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#refreshing;
    await this.#reclaiming;
    await this.#tick;
    await this.#flush();
    await this.#redis.del(this.#key()).catch(() => {});
  }
}
