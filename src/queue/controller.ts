/**
 * The rollout controller: the service's one object for rollouts (DESIGN §3).
 *
 * - Inputs: a group's committed spec (`applyGroup`), membership (`join`/`leave`), agent
 *   events (`connected`, `disconnected`, `report`, `health`) and people (`pause`, `resume`,
 *   `promote`, `abort`). Each returns a promise that resolves once the change is in Redis;
 *   callers on the OpAMP path need not wait for it.
 * - The hot path: `served(group, uid)`, synchronous, from memory, no Redis command.
 * - `onServeChanged` tells the OpAMP side when answers may have changed (a stage started, a
 *   rollout ended, an agent rejected the target), whichever replica made the change.
 * - `events` emits the notices for the status writer (once, on the replica that committed).
 *
 * Every replica keeps every group in memory and follows the others over pub/sub; any replica
 * may write (src/queue/group-sync.ts serialises writers per group by version). Timers are
 * BullMQ delayed jobs (src/queue/wakes.ts, src/queue/timers.ts) that any replica may run.
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { follow, type RedisSubscriber } from "../redis-subscriber.js";
import { AgentDirectory } from "./agent-directory.js";
import {
  ControllerNotStartedError,
  NoRolloutInFlightError,
  RolloutHoldError,
  UnknownGroupError,
} from "./errors.js";
import { GroupSync, servingChanges, type WriteStats } from "./group-sync.js";
import { type EndedRollout, endedRollouts, RolloutHistory } from "./history.js";
import type {
  GroupRollout,
  HashRef,
  ReportStatus,
  RolloutEvent,
  RolloutPolicy,
  StepResult,
} from "./model.js";
import { RolloutNotices } from "./notices.js";
import { inFlight, servedRef } from "./serve.js";
import { type GroupRolloutStatus, statusOf } from "./status.js";
import { type ChangeMessage, MAX_INLINE_MESSAGE, RolloutStore } from "./store.js";
import { Wakes } from "./wakes.js";

export interface RolloutControllerOptions {
  /** Commands connection (shared); `maxRetriesPerRequest: null`, as src/redis.ts makes it. */
  redis: Redis;
  prefix: string;
  logger: Logger;
  /** The process' shared pub/sub connection. Default: one of the controller's own. */
  subscriber?: RedisSubscriber;
  /** Events arriving within this of the first are written together (ms, default 2). */
  batchWindowMs?: number;
  /**
   * A group writes at most once per this while events keep arriving (ms, default 20): the
   * events of agents connecting in a burst are written together (group-sync.ts).
   */
  commitIntervalMs?: number;
  /** Overdue timers are looked for this often, in case one was lost (ms, default 30 000). */
  sweepIntervalMs?: number;
  /** BullMQ stalled-job check interval (ms, default 30 000). */
  stalledIntervalMs?: number;
  /** BullMQ job lock of a running tick (ms, default 30 000). */
  lockDurationMs?: number;
  /**
   * The service's last outage (ms since the epoch), asked before every tick: a group steps it
   * first (onOutage, once per outage), so a deadline that fell due while no process could
   * reach Redis is moved, not failed. A rejection (Redis unreachable) fails the tick, which is
   * retried. Default: none asked.
   */
  outages?: () => Promise<{ from: number; to: number } | undefined>;
  /**
   * What an apply deadline moved by an outage keeps at least after it (ms, capped at the
   * apply timeout; default 0): agents come back after a retry delay or reconnect backoff.
   */
  outageGraceMs?: number;
}

export interface GroupSpecInput {
  group: string;
  /** Config hash of the group's files, and the commit that introduced it. */
  hash: string;
  commit: string;
  policy: RolloutPolicy;
}

export interface ServeChange {
  group: string;
  /** Agents whose answer may have changed; undefined: any agent of the group. */
  uids?: readonly string[];
}

type ControlType = "pause" | "resume" | "promote" | "abort";

export class RolloutController {
  readonly events: RolloutNotices;
  readonly #options: RolloutControllerOptions;
  readonly #store: RolloutStore;
  readonly #wakes: Wakes;
  readonly #writerId = randomBytes(8).toString("hex");
  readonly #groups = new Map<string, GroupSync>();
  /** Groups added or dropped (part of servingVersion). */
  #groupChanges = 0;
  readonly #writeStats: WriteStats = { commits: 0, memberCommits: 0, conflicts: 0, resyncs: 0 };
  readonly #agents = new AgentDirectory();
  readonly #serveListeners = new Set<(change: ServeChange) => void>();
  readonly #groupListeners = new Set<(group: string) => void>();
  readonly #history: RolloutHistory;
  #unfollow?: () => void;
  #started?: Promise<void>;
  #closing?: Promise<void>;

  constructor(options: RolloutControllerOptions) {
    this.#options = options;
    this.events = new RolloutNotices((err, notice) =>
      options.logger.error({ err, notice: notice.type }, "rollout notice listener threw"),
    );
    this.#store = new RolloutStore(options.redis, options.prefix);
    this.#history = new RolloutHistory(options.redis, options.prefix);
    this.#wakes = new Wakes({
      redis: options.redis,
      prefix: options.prefix,
      logger: options.logger,
      groups: () => this.#groups.values(),
      tick: (group, at) => this.#tick(group, at),
      ...(options.sweepIntervalMs ? { sweepIntervalMs: options.sweepIntervalMs } : {}),
      ...(options.stalledIntervalMs ? { stalledIntervalMs: options.stalledIntervalMs } : {}),
      ...(options.lockDurationMs ? { lockDurationMs: options.lockDurationMs } : {}),
    });
  }

  /**
   * Subscribes, loads every group, reschedules their timers and starts the timer worker; the
   * first ticks, as every tick, step the service's last outage first (`outages`).
   * Idempotent: later calls return the first one's promise.
   */
  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    // Before loading, so no change falls in between. After a reconnect, versions are compared:
    // changes published meanwhile are lost.
    this.#unfollow = await follow<ChangeMessage>(this.#options, this.#store.keys.channel, {
      onMessage: (msg) => this.#onChange(msg),
      onResubscribed: () => this.#resync(),
      decode: changeMessage,
      // A message carries at most MAX_INLINE_MESSAGE of records (longer ones say "reload").
      maxMessageBytes: 4 * MAX_INLINE_MESSAGE,
    });
    for (const group of await this.#store.groups()) await this.#load(group);
    await this.#wakes.start();
  }

  /** Idempotent: stops timers, the subscriber and pending batches (they reject). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#started?.catch(() => {});
      await Promise.all([...this.#groups.values()].map((s) => s.close()));
      await this.#wakes.close();
      this.#unfollow?.();
    })();
    return this.#closing;
  }

  // The hot path ---------------------------------------------------------------------------

  /** The hash (and its commit) to serve `uid` of `group` now; undefined: serve nothing. */
  served(group: string, uid: string): Readonly<HashRef> | undefined {
    const sync = this.#groups.get(group);
    return sync ? servedRef(sync.state, uid) : undefined;
  }

  /**
   * Increases whenever what `served` or `stable` answer may have changed (a group's rollout
   * state replaced, a group added or dropped); equal values mean equal answers. Hot path: O(1).
   */
  get servingVersion(): number {
    return servingChanges() + this.#groupChanges;
  }

  /** The group's stable hash (last fully rolled out), from memory; undefined when none. */
  stable(group: string): Readonly<HashRef> | undefined {
    return this.#groups.get(group)?.state.stable;
  }

  /** The uids the group's rollout counts as members (connected or not), from memory. */
  members(group: string): string[] {
    return [...(this.#groups.get(group)?.state.members.keys() ?? [])];
  }

  /** Subscribes to changes of served answers; returns the unsubscribe function. */
  onServeChanged(listener: (change: ServeChange) => void): () => void {
    this.#serveListeners.add(listener);
    return () => this.#serveListeners.delete(listener);
  }

  /**
   * Subscribes to any change of a group's rollout state (counts, stages, holds, endings,
   * removal), whichever replica made it; listeners run synchronously after the change is
   * applied in memory. Returns the unsubscribe function.
   */
  onGroupChanged(listener: (group: string) => void): () => void {
    this.#groupListeners.add(listener);
    return () => this.#groupListeners.delete(listener);
  }

  /** The group's ended rollouts, newest first (at most 20). */
  history(group: string): Promise<EndedRollout[]> {
    return this.#history.list(group);
  }

  // Git ------------------------------------------------------------------------------------

  /**
   * A valid commit's spec for a group: starts, updates or supersedes its rollout. `members`,
   * when given, is the group's complete membership (joins and leaves are derived from it).
   */
  async applyGroup(spec: GroupSpecInput, members?: Iterable<string>): Promise<GroupRolloutStatus> {
    const sync = await this.#sync(spec.group);
    const events: RolloutEvent[] = [];
    if (members) {
      const wanted = new Set(members);
      for (const uid of sync.state.members.keys()) {
        if (!wanted.has(uid)) events.push({ type: "leave", uid });
      }
      for (const uid of wanted) {
        const previous = this.#agents.groupOf(uid);
        if (previous && previous !== spec.group) this.leave(previous, uid).catch(() => {});
        if (!sync.state.members.has(uid)) events.push(...this.#agents.joinEvents(uid));
        this.#agents.assign(uid, spec.group);
      }
    }
    const { hash, commit, policy } = spec;
    events.push({ type: "commit", hash, commit, policy });
    return statusOf((await sync.enqueue(events)).state);
  }

  /** The group is gone from Git: its rollout in flight is aborted and its state deleted. */
  async removeGroup(group: string, by = "git: group removed"): Promise<void> {
    const sync = this.#groups.get(group);
    if (!sync) return;
    if (inFlight(sync.state)) await sync.enqueue([{ type: "abort", by }]);
    await sync.idle();
    await this.#store.remove(group);
    this.#drop(group);
  }

  // Membership and agent events ------------------------------------------------------------

  /** `uid` belongs to `group` (it leaves the group it was in, if another). */
  async join(group: string, uid: string): Promise<void> {
    const previous = this.#agents.groupOf(uid);
    if (previous === group) return;
    this.#agents.assign(uid, group);
    const left = previous ? this.leave(previous, uid) : undefined;
    await (await this.#sync(group)).enqueue(this.#agents.joinEvents(uid));
    await left;
  }

  leave(group: string, uid: string): Promise<void> {
    this.#agents.unassign(uid, group);
    return this.#send(group, { type: "leave", uid });
  }

  connected(uid: string): Promise<void> {
    this.#agents.connected(uid);
    return this.#sendFor(uid, { type: "connected", uid });
  }

  /** `lost`: it vanished with its (dead) process; an unacknowledged apply deadline is dropped. */
  disconnected(uid: string, lost = false): Promise<void> {
    this.#agents.disconnected(uid);
    return this.#sendFor(uid, { type: "disconnected", uid, ...(lost ? { lost: true } : {}) });
  }

  /** RemoteConfigStatus of an agent: the config `hash` (lowercase hex) it reports on. */
  report(uid: string, hash: string, status: ReportStatus, error?: string): Promise<void> {
    return this.#sendFor(uid, { type: "report", uid, hash, status, ...(error ? { error } : {}) });
  }

  health(uid: string, healthy: boolean, error?: string): Promise<void> {
    this.#agents.health(uid, healthy, error);
    return this.#sendFor(uid, { type: "health", uid, healthy, ...(error ? { error } : {}) });
  }

  // People ---------------------------------------------------------------------------------

  /** Holds promotion: no new stage starts. Throws when none is in flight or already held. */
  pause(group: string, by: string): Promise<GroupRolloutStatus> {
    return this.#control(group, "pause", by);
  }
  /** Lifts any hold (API, Git or failures). Throws when nothing is held. */
  resume(group: string, by: string): Promise<GroupRolloutStatus> {
    return this.#control(group, "resume", by);
  }
  /** Starts the next stage now (skips the gate and pause); at the last stage, completes. */
  promote(group: string, by: string): Promise<GroupRolloutStatus> {
    return this.#control(group, "promote", by);
  }
  /** Ends the rollout in flight: every agent is served the stable hash. */
  abort(group: string, by: string): Promise<GroupRolloutStatus> {
    return this.#control(group, "abort", by);
  }

  /** The group's rollout status, from memory; undefined for an unknown group. */
  status(group: string): GroupRolloutStatus | undefined {
    const sync = this.#groups.get(group);
    return sync ? statusOf(sync.state) : undefined;
  }

  groups(): string[] {
    return [...this.#groups.keys()].sort();
  }

  /**
   * Rollout writes of this process since it started (counters): commits, of those member-only
   * (store.ts commitMembers), writes that lost a race to another replica and were stepped
   * again, and writes refused because memory differed from Redis (resyncs: reloaded).
   */
  writeStats(): Readonly<WriteStats> {
    return this.#writeStats;
  }

  /** Resolves once every event given so far is written (for tests and orderly shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.#groups.values()].map((s) => s.idle()));
  }

  async #control(group: string, type: ControlType, by: string): Promise<GroupRolloutStatus> {
    const sync = this.#groups.get(group);
    if (!sync) throw new UnknownGroupError(group);
    const { ignored, state } = await sync.enqueue([{ type, by }]);
    const id = state.rollout?.id ?? "";
    if (ignored[0] === "ROLLOUT_NOT_IN_FLIGHT") throw new NoRolloutInFlightError(group, type);
    if (ignored[0] === "ROLLOUT_ALREADY_PAUSED") throw new RolloutHoldError(group, id, true);
    if (ignored[0] === "ROLLOUT_NOT_PAUSED") throw new RolloutHoldError(group, id, false);
    return statusOf(state);
  }

  // Plumbing -------------------------------------------------------------------------------

  #sendFor(uid: string, event: RolloutEvent): Promise<void> {
    const group = this.#agents.groupOf(uid);
    return group ? this.#send(group, event) : Promise.resolve();
  }

  async #send(group: string, event: RolloutEvent): Promise<void> {
    if (!this.#started) throw new ControllerNotStartedError();
    await this.#groups.get(group)?.enqueue([event]);
  }

  /** The group's sync, loaded or created. */
  async #sync(group: string): Promise<GroupSync> {
    if (!this.#started) throw new ControllerNotStartedError();
    await this.#started;
    return this.#groups.get(group) ?? this.#load(group);
  }

  async #load(group: string): Promise<GroupSync> {
    const loaded = await this.#store.load(group);
    const existing = this.#groups.get(group);
    if (existing) return existing;
    const sync = new GroupSync(group, loaded, this.#store, {
      logger: this.#options.logger,
      stats: this.#writeStats,
      writerId: this.#writerId,
      batchWindowMs: this.#options.batchWindowMs ?? 2,
      commitIntervalMs: this.#options.commitIntervalMs ?? 20,
      committed: (_s, before, result) => this.#committed(before, result),
      changed: (s, before, serve) => this.#changed(s, before, serve),
    });
    this.#groups.set(group, sync);
    this.#groupChanges++;
    this.#agents.addGroup(sync.state);
    return sync;
  }

  #drop(group: string): void {
    const sync = this.#groups.get(group);
    if (!sync) return;
    this.#groups.delete(group);
    this.#groupChanges++;
    sync.close().catch(() => {});
    this.#agents.removeGroup(sync.state);
    this.#notifyServe({ group });
    this.#notifyGroup(group);
  }

  /** A batch of this process is in Redis: announce it, refresh answers, set its timers. */
  #committed(before: GroupRollout, result: StepResult): void {
    if (this.#closing) return;
    const { group } = result.state;
    this.#history
      .record(group, endedRollouts(before, result))
      .catch((err) => this.#options.logger.warn({ err, group }, "cannot record rollout history"));
    for (const notice of result.notices) this.events.emit(notice);
    this.#notifyGroup(group);
    for (const effect of result.effects) {
      if (effect.type === "serve-changed") {
        this.#notifyServe(effect.uids ? { group, uids: effect.uids } : { group });
      } else {
        this.#wakes.schedule(group, result.state.rollout?.id ?? "", effect.at);
      }
    }
  }

  /** Another replica's change was applied (or the group reloaded). */
  #changed(sync: GroupSync, before: GroupRollout, serve: ChangeMessage["s"]): void {
    if (this.#closing) return;
    this.#notifyGroup(sync.group);
    if (!serve) return;
    this.#agents.follow(before, sync.state, serve);
    this.#notifyServe(serve === "all" ? { group: sync.group } : { group: sync.group, uids: serve });
  }

  #notifyServe(change: ServeChange): void {
    this.#call(this.#serveListeners, change, "serve-changed");
  }

  #notifyGroup(group: string): void {
    this.#call(this.#groupListeners, group, "group-changed");
  }

  /** Calls every listener; one that throws is logged and does not stop the others. */
  #call<T>(listeners: Iterable<(arg: T) => void>, arg: T, what: string): void {
    for (const listener of listeners) {
      try {
        listener(arg);
      } catch (err) {
        this.#options.logger.error({ err }, `${what} listener threw`);
      }
    }
  }

  #onChange(msg: ChangeMessage): void {
    if (this.#closing) return;
    const sync = this.#groups.get(msg.g);
    if (msg.removed) this.#drop(msg.g);
    else if (sync) sync.receive(msg);
    else {
      this.#load(msg.g)
        .then((s) => {
          this.#notifyServe({ group: s.group });
          this.#notifyGroup(s.group);
        })
        .catch((err) =>
          this.#options.logger.warn({ err, group: msg.g }, "cannot load rollout group"),
        );
    }
  }

  /** After the subscriber reconnects: reload the groups whose version moved meanwhile. */
  async #resync(): Promise<void> {
    if (this.#closing || this.#groups.size === 0) return;
    try {
      const versions = await this.#store.versions([...this.#groups.keys()]);
      for (const [group, version] of versions) {
        const sync = this.#groups.get(group);
        if (sync && version > sync.version) await sync.reload();
      }
    } catch (err) {
      this.#options.logger.warn({ err }, "rollout resync failed");
    }
  }

  /** A due timer: steps the group with now ≥ `at` (idempotent). */
  async #tick(group: string, at: number): Promise<void> {
    if (this.#closing) throw new Error("closing: another worker will run this tick");
    let sync = this.#groups.get(group);
    if (!sync && (await this.#store.groups()).includes(group)) sync = await this.#load(group);
    if (!sync) return;
    const outage = await this.#options.outages?.();
    const graceMs = this.#options.outageGraceMs;
    const events: RolloutEvent[] = outage
      ? [{ type: "outage", ...outage, ...(graceMs ? { graceMs } : {}) }, { type: "tick" }]
      : [{ type: "tick" }];
    await sync.enqueue(events, at);
  }
}

/** A change message as published by RolloutStore; throws on anything else. */
function changeMessage(text: string): ChangeMessage {
  const msg = JSON.parse(text) as Partial<ChangeMessage> | null;
  if (typeof msg?.g !== "string" || typeof msg.v !== "number")
    throw new TypeError("not a rollout change message");
  return msg as ChangeMessage;
}
