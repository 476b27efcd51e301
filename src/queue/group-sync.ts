/**
 * One group's state in this process, kept in step with Redis.
 *
 * - Events are batched: those arriving within `batchWindowMs` of the first are stepped together
 *   and written in one round trip (src/queue/store.ts). Batches of a group run one at a time,
 *   and a group writes at most once per `commitIntervalMs` while events keep coming (agents
 *   connecting by the thousand: one commit, one published change and one Lua run per
 *   interval instead of per agent event); the first event after a quiet interval waits only
 *   `batchWindowMs`.
 * - A batch that changed member records only (agents connecting, leaving, reporting health
 *   while no rollout decision depends on it) is written with RolloutStore.commitMembers: it
 *   checks the core version and those members only, so replicas whose agents connect to the
 *   same group do not make each other retry. Its version may then be ahead of this process's:
 *   the state follows the published changes in order (own included) up to it. If a replica
 *   on older code wrote last (it does not record the core version), the batch is stepped
 *   again and written in full. When others' member-only writes came between, this batch's
 *   members are applied here once memory reaches the version before its own.
 * - A write refused although nothing was written since (memory differs from Redis at the same
 *   version) reloads the group; refused again, the batch is written in full after a backoff.
 * - A write that finds a newer version (another replica wrote first) waits briefly for that
 *   change to arrive over pub/sub (or reloads), then steps the same events again.
 * - A write that fails (Redis unreachable) is retried with backoff until it succeeds or the
 *   controller closes; the events wait, served hashes keep coming from memory.
 * - Changes published by other replicas are applied from the message when it follows the
 *   local version, else the group is reloaded.
 * - A batch that changes nothing is not written: zero Redis commands.
 */
import type { Logger } from "pino";
import { Backoff, type BackoffOptions } from "../backoff.js";
import { encodeCore } from "./codec.js";
import { ControllerClosedError } from "./errors.js";
import { emptyGroup, stepAll } from "./machine.js";
import type { GroupRollout, IgnoredCode, RolloutEvent, StepResult } from "./model.js";
import { servedChanges } from "./serve.js";
import { applyChange, type ChangeMessage, type Loaded, type RolloutStore } from "./store.js";

/** Rollout writes of a process (counters, shared by its groups). */
export interface WriteStats {
  /** Writes committed, and of those the member-only ones (store.ts commitMembers). */
  commits: number;
  memberCommits: number;
  /** Writes that lost to another writer's and were stepped again. */
  conflicts: number;
  /**
   * Writes refused although nothing was written since this process's state: memory differed
   * from Redis at the same version (a hand-edited record, a codec that does not round-trip).
   * The group was reloaded; not counted in `conflicts`.
   */
  resyncs: number;
}

export interface SyncHooks {
  logger: Logger;
  /** Counted into as writes happen. */
  stats: WriteStats;
  /** Identifies this process's writes in published changes. */
  writerId: string;
  batchWindowMs: number;
  /** Least time between the starts of two writes of the group (ms); 0: back to back. */
  commitIntervalMs: number;
  /** A batch of this process was committed (notices, served hashes, wakes to act on). */
  committed(sync: GroupSync, before: GroupRollout, result: StepResult): void;
  /**
   * Another replica's change was applied or the group reloaded; `serve` as published (for a
   * reload: the agents whose answer differs, serve.ts servedChanges).
   */
  changed(sync: GroupSync, before: GroupRollout, serve: ChangeMessage["s"]): void;
}

export interface Outcome {
  /** Codes of this caller's events that changed nothing (e.g. ROLLOUT_NOT_IN_FLIGHT). */
  ignored: IgnoredCode[];
  state: GroupRollout;
}

interface Item {
  events: RolloutEvent[];
  tickAt: number;
  resolve(outcome: Outcome): void;
  reject(err: unknown): void;
}

/**
 * Retrying a rollout write or timer that Redis refused (group-sync.ts, wakes.ts): 100 ms,
 * doubling, at most 5 s, without jitter.
 */
export const REDIS_RETRY: BackoffOptions = { initialMs: 100, factor: 2, maxMs: 5_000, jitter: 0 };
const CATCH_UP_MS = 100;
const CLOSE_WAIT_MS = 2000;

/** Bumped by every assignment of any GroupSync's state in this process (see servingChanges). */
let stateChanges = 0;

/**
 * A counter bumped whenever any group's rollout state in memory is replaced (states are
 * replaced, never edited in place: store.ts and machine.ts build new ones), so whatever
 * `served` answers may have changed since a caller last read a lower value. Starts at 0.
 */
export function servingChanges(): number {
  return stateChanges;
}

export class GroupSync {
  readonly group: string;
  #state!: GroupRollout;
  get state(): GroupRollout {
    return this.#state;
  }
  set state(next: GroupRollout) {
    this.#state = next;
    stateChanges++;
  }
  version: number;
  /** The version that last changed the core or agent records (member-only writes keep it). */
  coreVersion: number;
  readonly #store: RolloutStore;
  readonly #hooks: SyncHooks;
  #pending: Item[] = [];
  #timer?: NodeJS.Timeout;
  #running?: Promise<void>;
  #reloading?: Promise<void>;
  #closed = false;
  #wakeUp?: () => void;
  /** Set while a write waits for a newer version to arrive (#catchUp). */
  #advanced?: () => void;
  /** performance.now() when the last write started. */
  #lastWriteAt = Number.NEGATIVE_INFINITY;

  constructor(group: string, loaded: Loaded | undefined, store: RolloutStore, hooks: SyncHooks) {
    this.group = group;
    this.state = loaded?.state ?? emptyGroup(group);
    this.version = loaded?.version ?? 0;
    this.coreVersion = loaded?.coreVersion ?? 0;
    this.#store = store;
    this.#hooks = hooks;
  }

  /** Queues events (stepped in order with the next batch); resolves once they are in Redis. */
  enqueue(events: RolloutEvent[], tickAt = 0): Promise<Outcome> {
    if (this.#closed) return Promise.reject(new ControllerClosedError());
    return new Promise((resolve, reject) => {
      this.#pending.push({ events, tickAt, resolve, reject });
      this.#schedule();
    });
  }

  /** Starts the timer of the next write, unless one is due or running. */
  #schedule(): void {
    if (this.#timer || this.#running || this.#closed || this.#pending.length === 0) return;
    const sinceLast = performance.now() - this.#lastWriteAt;
    const wait = Math.max(this.#hooks.batchWindowMs, this.#hooks.commitIntervalMs - sinceLast);
    this.#timer = setTimeout(() => this.#kick(), wait);
  }

  /** Resolves when every event queued so far is written (or rejected). */
  async idle(): Promise<void> {
    while (!this.#closed && (this.#running || this.#pending.length > 0)) {
      if (!this.#running) this.#kick();
      await this.#running;
    }
  }

  /** Applies a change another replica published (or this one: then it is already known). */
  receive(msg: ChangeMessage): void {
    if (msg.v <= this.version) return;
    // Our own write arriving before its reply: the write's caller reports it.
    const own = msg.w === this.#hooks.writerId;
    if (msg.v === this.version + 1 && !msg.reload && (msg.c !== undefined || msg.mo)) {
      const before = this.state;
      this.state = applyChange(this.state, msg);
      this.version = msg.v;
      if (!msg.mo) this.coreVersion = msg.v;
      this.#advanced?.();
      if (!own) this.#hooks.changed(this, before, msg.s);
      return;
    }
    if (own) return; // the reply sets the state; nothing to read back
    this.reload().catch((err) =>
      this.#hooks.logger.warn({ err, group: this.group }, "rollout state reload failed"),
    );
  }

  /**
   * Reads the group from Redis again (one at a time); keeps memory if it is not newer, unless
   * `force` (memory is known to differ from Redis at the same version).
   */
  reload(force = false): Promise<void> {
    // A forced reload must read after now: one in flight may keep memory as it is.
    if (force && this.#reloading) {
      const again = () => this.reload(true);
      return this.#reloading.then(again, again);
    }
    this.#reloading ??= (async () => {
      try {
        const loaded = await this.#store.load(this.group);
        const version = loaded?.version ?? 0;
        if (loaded && version < this.version) return;
        if (loaded && version === this.version && !force) return;
        const before = this.state;
        this.state = loaded?.state ?? emptyGroup(this.group);
        this.version = version;
        this.coreVersion = loaded?.coreVersion ?? 0;
        this.#advanced?.();
        this.#hooks.changed(this, before, servedChanges(before, this.state));
      } finally {
        this.#reloading = undefined;
      }
    })();
    return this.#reloading;
  }

  /** Stops: pending events are rejected with ControllerClosedError; a running write ends. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#wakeUp?.();
    this.#advanced?.();
    for (const item of this.#pending.splice(0)) item.reject(new ControllerClosedError());
    // A write waiting for Redis to come back is not waited for beyond this.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#running,
      new Promise((resolve) => {
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  #kick(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#running || this.#closed) return;
    this.#lastWriteAt = performance.now();
    this.#running = this.#process(this.#pending.splice(0)).finally(() => {
      this.#running = undefined;
      // Events that arrived meanwhile: the next write after the interval (idle() does not wait).
      this.#schedule();
    });
  }

  async #process(items: Item[]): Promise<void> {
    const events = items.flatMap((i) => i.events);
    const tickAt = Math.max(...items.map((i) => i.tickAt));
    const backoff = new Backoff(REDIS_RETRY);
    // Set when a member-only write was refused because a replica on older code wrote last,
    // or twice because memory differs from Redis: the batch is written in full.
    let full = false;
    let resynced = false;
    for (;;) {
      if (this.#closed) {
        for (const item of items) item.reject(new ControllerClosedError());
        return;
      }
      const before = this.state;
      const expected = this.version;
      const result = stepAll(before, events, Math.max(Date.now(), tickAt));
      try {
        if (!isNoop(before, result)) {
          const serve = serveOf(result);
          const membersOnly = !full && expected > 0 && isMembersOnly(before, result);
          const committed = membersOnly
            ? await this.#store.commitMembers(
                this.coreVersion,
                before,
                result,
                serve,
                this.#hooks.writerId,
              )
            : await this.#store.commit(expected, before, result, serve, this.#hooks.writerId);
          const { ok, version, coreVersion } = committed;
          if (!ok && committed.full) {
            // The stored core version may be stale (store.ts): step again, write in full.
            full = true;
            if (version > expected) {
              this.#hooks.stats.conflicts++;
              await this.#catchUp(version);
            }
            continue;
          }
          if (!ok && version <= expected) {
            // Nothing was written since this state, yet a member differs: memory is off.
            // Reload; if that changes nothing (the refusal comes back), write in full (the
            // whole group's version is checked, not the members' text), after a backoff.
            this.#hooks.stats.resyncs++;
            this.#hooks.logger.warn(
              { group: this.group, version, full: resynced },
              "rollout state in memory differs from Redis; reloading",
            );
            if (resynced) {
              full = true;
              await this.#sleep(backoff.next());
            }
            resynced = true;
            await this.reload(true);
            continue;
          }
          if (!ok) {
            this.#hooks.stats.conflicts++;
            await this.#catchUp(version);
            continue;
          }
          this.#hooks.stats.commits++;
          if (membersOnly) this.#hooks.stats.memberCommits++;
          if (version === expected + 1 && this.version === expected) {
            this.state = result.state;
            this.version = version;
            this.coreVersion = coreVersion;
          } else if (version > this.version && membersOnly) {
            // Other replicas' member-only writes came between (the core version did not move):
            // follow them, then apply this batch's members here. Its own message may be a
            // reload (too large to inline), which receive() does not act on.
            if (this.version < version - 1) await this.#catchUp(version - 1);
            if (this.version === version - 1) {
              this.state = withMembers(this.state, result);
              this.version = version;
            }
          } else if (version > this.version) {
            // Other replicas' writes arrived meanwhile: follow the published changes up to
            // this one, which carries this batch.
            await this.#catchUp(version);
          }
          this.#hooks.committed(this, before, result);
        }
        settle(items, result);
        return;
      } catch (err) {
        const delay = backoff.next();
        this.#hooks.logger.warn(
          { err, group: this.group, events: events.length, retryInMs: delay },
          "cannot write rollout state; retrying",
        );
        await this.#sleep(delay);
      }
    }
  }

  /** Another writer committed `stored`: wait for its change to arrive, else reload. */
  async #catchUp(stored: number): Promise<void> {
    // Woken by receive() as each change arrives, not by polling: two workers writing the
    // same group cross often while agents connect.
    const deadline = Date.now() + CATCH_UP_MS;
    while (this.version < stored && Date.now() < deadline && !this.#closed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.#advanced = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#advanced = undefined;
    }
    if (this.version < stored) await this.reload();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}

function isNoop(before: GroupRollout, r: StepResult): boolean {
  return (
    r.notices.length === 0 &&
    r.changed.members.size === 0 &&
    r.changed.agents.size === 0 &&
    !r.changed.newRollout &&
    encodeCore(r.state) === encodeCore(before)
  );
}

/**
 * The step changed member records and nothing else (no core field, agent record, notice or
 * timer): it holds on any state with the same core and agent records and the same records for
 * those members (machine.ts reads other members only in steps that change the core).
 */
function isMembersOnly(before: GroupRollout, r: StepResult): boolean {
  return (
    r.changed.members.size > 0 &&
    r.changed.agents.size === 0 &&
    !r.changed.newRollout &&
    r.notices.length === 0 &&
    !r.effects.some((e) => e.type === "wake") &&
    encodeCore(r.state) === encodeCore(before)
  );
}

/** `state` with the member records `r` changed set as `r` left them. */
function withMembers(state: GroupRollout, r: StepResult): GroupRollout {
  const members = state.members.edit();
  for (const uid of r.changed.members) {
    const m = r.state.members.get(uid);
    if (m) members.set(uid, m);
    else members.delete(uid);
  }
  return { ...state, members: members.finish() };
}

function serveOf(r: StepResult): ChangeMessage["s"] {
  let uids: string[] | undefined;
  for (const e of r.effects) {
    if (e.type !== "serve-changed") continue;
    if (!e.uids) return "all";
    uids = [...(uids ?? []), ...e.uids];
  }
  return uids;
}

function settle(items: Item[], result: StepResult): void {
  let offset = 0;
  for (const item of items) {
    const end = offset + item.events.length;
    const ignored = result.ignored
      .filter((i) => i.index >= offset && i.index < end)
      .map((i) => i.code);
    item.resolve({ ignored, state: result.state });
    offset = end;
  }
}
