/**
 * Rollout state in Redis. Keys (prefix = `--redis-prefix`):
 *
 *   <prefix>:rollout-groups              SET   names of groups with rollout state
 *   <prefix>:group:<g>:rollout           HASH  version, cv (core version), mv (version of the
 *                                              last member-only write), state (core JSON,
 *                                              src/queue/codec.ts), agentsKey (key of the
 *                                              current rollout's records)
 *   <prefix>:group:<g>:members           HASH  uid → member JSON (membership = field present)
 *   <prefix>:rollout:<id>:agents         HASH  uid → agent JSON of rollout <id>; kept 7 days
 *                                              after the rollout ends
 *   <prefix>:rollout-notices             STREAM notices (field `notice`, JSON), ≈100 000 kept
 *   <prefix>:rollouts                    pub/sub channel of committed changes
 *
 * Concurrency: writers serialise by compare-and-set, in one Lua script (one round trip) per
 * commit that checks, writes and publishes atomically; every commit bumps `version`, so the
 * published changes form one gapless sequence per group.
 * - `commit` (anything that changes the core, agent records or notices) checks `version`:
 *   it was computed from the whole current state. It sets `cv` to the new version.
 * - `commitMembers` (a step that changed member records only: agents connecting, leaving,
 *   reporting health while no decision depends on it) checks `cv` and, per member written,
 *   its stored value: members of other agents may have changed meanwhile (another replica's
 *   agents connecting), and that does not change this step's result (machine.ts reads other
 *   members only in steps that change the core). Two replicas whose agents connect to the
 *   same group therefore no longer retry each other's writes. It sets `mv` to the new version,
 *   and writes only while `version` == max(cv, mv): replicas on older code (a rolling upgrade
 *   or a rollback) commit in full without setting `cv`, so after such a write `cv` may be
 *   stale; the writer is then told to commit in full (`full`), which sets `cv` again.
 * A writer that lost gets `{ ok: false }` and steps its events again on the newer state.
 */
import type { Redis } from "ioredis";
import {
  decodeAgent,
  decodeMember,
  decodeState,
  encodeAgent,
  encodeCore,
  encodeMember,
} from "./codec.js";
import type { GroupRollout, RolloutNotice, StepResult } from "./model.js";
import { COMMIT_LUA, LOAD_LUA, MEMBERS_LUA, REMOVE_LUA } from "./scripts.js";

export { NOTICES_MAX_LEN } from "./scripts.js";

/** Agent records of an ended rollout stay this long (seconds) for the status writer. */
export const ENDED_ROLLOUT_TTL_S = 7 * 24 * 3600;
/** Published changes larger than this carry no data; subscribers reload the group. */
export const MAX_INLINE_MESSAGE = 256 * 1024;

export interface RolloutKeys {
  groups: string;
  core(group: string): string;
  members(group: string): string;
  agents(rolloutId: string): string;
  notices: string;
  channel: string;
}

export function rolloutKeys(prefix: string): RolloutKeys {
  return {
    groups: `${prefix}:rollout-groups`,
    core: (g) => `${prefix}:group:${g}:rollout`,
    members: (g) => `${prefix}:group:${g}:members`,
    agents: (id) => `${prefix}:rollout:${id}:agents`,
    notices: `${prefix}:rollout-notices`,
    channel: `${prefix}:rollouts`,
  };
}

/** A change as published on the channel (and applied by other replicas). */
export interface ChangeMessage {
  /** Group, and the version this change produced (0 with `removed`). */
  g: string;
  v: number;
  /** Id of the writing process. */
  w?: string;
  /** Core JSON; absent with `reload`, `removed` or `mo`. */
  c?: string;
  /** Members only (commitMembers): the core and agent records are those of version v - 1. */
  mo?: true;
  /** Changed members (null = left) and agent records. */
  m?: Record<string, string | null>;
  a?: Record<string, string>;
  /** The rollout changed: agent records not in `a` are gone. */
  n?: boolean;
  /** Served hashes changed: "all" or these uids. */
  s?: "all" | string[];
  /** Too large to inline: read the group from Redis. */
  reload?: boolean;
  removed?: boolean;
}

interface Scripts {
  rolloutCommit(...args: Array<string | number>): Promise<[number, number]>;
  rolloutMembers(...args: Array<string | number>): Promise<[number, number, number, number]>;
  rolloutLoad(
    coreKey: string,
    membersKey: string,
  ): Promise<[string, string, string[], string[], string] | null>;
  rolloutRemove(...args: string[]): Promise<number>;
}

export interface Loaded {
  state: GroupRollout;
  version: number;
  /** The version that last changed the core or agent records (≤ version). */
  coreVersion: number;
}

/** A commit's answer: written or not, and the stored versions after it. */
export interface Committed {
  ok: boolean;
  version: number;
  coreVersion: number;
  /**
   * commitMembers refused because the last write did not record the core version (a replica
   * on older code): the step must be written in full (commit) instead.
   */
  full?: true;
}

export class RolloutStore {
  readonly keys: RolloutKeys;
  readonly #redis: Redis & Scripts;

  /** `redis` is shared; the store only defines its scripts on it (EVALSHA, reloaded on NOSCRIPT). */
  constructor(redis: Redis, prefix: string) {
    this.keys = rolloutKeys(prefix);
    redis.defineCommand("rolloutCommit", { numberOfKeys: 7, lua: COMMIT_LUA });
    redis.defineCommand("rolloutMembers", { numberOfKeys: 3, lua: MEMBERS_LUA });
    redis.defineCommand("rolloutLoad", { numberOfKeys: 2, lua: LOAD_LUA });
    redis.defineCommand("rolloutRemove", { numberOfKeys: 4, lua: REMOVE_LUA });
    this.#redis = redis as Redis & Scripts;
  }

  async groups(): Promise<string[]> {
    return (await this.#redis.smembers(this.keys.groups)).sort();
  }

  /** Reads one group atomically (a consistent snapshot), or undefined if it has no state. */
  async load(group: string): Promise<Loaded | undefined> {
    const raw = await this.#redis.rolloutLoad(this.keys.core(group), this.keys.members(group));
    if (!raw) return undefined;
    const [version, core, members, agents, coreVersion] = raw;
    return {
      version: Number(version),
      coreVersion: Number(coreVersion),
      state: decodeState(core, pairs(members), pairs(agents)),
    };
  }

  /** Current versions of `groups` (0 for none), in one round trip. */
  async versions(groups: readonly string[]): Promise<Map<string, number>> {
    const pipeline = this.#redis.pipeline();
    for (const g of groups) pipeline.hget(this.keys.core(g), "version");
    const replies = (await pipeline.exec()) ?? [];
    return new Map(groups.map((g, i) => [g, Number(replies[i]?.[1] ?? 0)]));
  }

  /**
   * Writes a step's result if the stored version is still `expected`. Resolves
   * `{ ok: true, version }` or, when another writer got there first, `{ ok: false, version }`
   * with the stored version.
   */
  async commit(
    expected: number,
    before: GroupRollout,
    result: StepResult,
    serveChanged: ChangeMessage["s"],
    writerId: string,
  ): Promise<Committed> {
    const { state, changed, notices } = result;
    const g = state.group;
    const next = expected + 1;
    const core = encodeCore(state);
    const memberSets: string[] = [];
    const memberDels: string[] = [];
    const inlineMembers: Record<string, string | null> = {};
    for (const uid of changed.members) {
      const m = state.members.get(uid);
      if (m) memberSets.push(uid, encodeMember(m));
      else memberDels.push(uid);
      inlineMembers[uid] = m ? encodeMember(m) : null;
    }
    const agentSets: string[] = [];
    const inlineAgents: Record<string, string> = {};
    for (const uid of changed.agents) {
      const a = state.agents.get(uid);
      if (!a) continue;
      const text = encodeAgent(a);
      agentSets.push(uid, text);
      inlineAgents[uid] = text;
    }
    const rolloutId = state.rollout?.id ?? "";
    const agentsKey = this.keys.agents(rolloutId);
    const oldKey = before.rollout ? this.keys.agents(before.rollout.id) : agentsKey;
    const ended = state.rollout !== undefined && state.rollout.status !== "in-progress";
    let message = JSON.stringify({
      g,
      v: next,
      w: writerId,
      c: core,
      m: inlineMembers,
      a: inlineAgents,
      ...(changed.newRollout ? { n: true } : {}),
      ...(serveChanged ? { s: serveChanged } : {}),
    } satisfies ChangeMessage);
    if (message.length > MAX_INLINE_MESSAGE) {
      message = JSON.stringify({
        g,
        v: next,
        w: writerId,
        reload: true,
        s: "all",
      } satisfies ChangeMessage);
    }
    const [ok, version] = await this.#redis.rolloutCommit(
      this.keys.core(g),
      this.keys.members(g),
      agentsKey,
      this.keys.groups,
      this.keys.notices,
      oldKey,
      this.keys.channel,
      String(expected),
      String(next),
      core,
      g,
      changed.newRollout ? "1" : "0",
      ENDED_ROLLOUT_TTL_S,
      ended ? ENDED_ROLLOUT_TTL_S : 0,
      memberSets.length / 2,
      memberDels.length,
      agentSets.length / 2,
      notices.length,
      ...memberSets,
      ...memberDels,
      ...agentSets,
      ...notices.map((n: RolloutNotice) => JSON.stringify(n)),
      message,
    );
    return { ok: ok === 1, version, coreVersion: ok === 1 ? version : 0 };
  }

  /**
   * Writes a step that changed member records only (`before` → `result`, see membersOnly),
   * if the last write was a member-only one or a full one that set `cv` (else `full`), the
   * stored core version is still `expectedCore` and each changed member is stored as in
   * `before`. The new version is whatever follows the stored one (other replicas' member
   * writes may have come between). Resolves `{ ok, version, coreVersion }` (stored values).
   */
  async commitMembers(
    expectedCore: number,
    before: GroupRollout,
    result: StepResult,
    serveChanged: ChangeMessage["s"],
    writerId: string,
  ): Promise<Committed> {
    const { state, changed } = result;
    const g = state.group;
    const args: string[] = [];
    const inline: Record<string, string | null> = {};
    for (const uid of changed.members) {
      const was = before.members.get(uid);
      const m = state.members.get(uid);
      const text = m ? encodeMember(m) : "";
      args.push(uid, was ? encodeMember(was) : "", text);
      inline[uid] = m ? text : null;
    }
    // The version is the script's to choose: the message is sent in two parts around it.
    const rest = JSON.stringify({
      w: writerId,
      mo: true,
      m: inline,
      ...(serveChanged ? { s: serveChanged } : {}),
    } satisfies Omit<ChangeMessage, "g" | "v">);
    const head = `{"g":${JSON.stringify(g)},"v":`;
    let tail = `,${rest.slice(1)}`;
    if (head.length + tail.length > MAX_INLINE_MESSAGE) {
      tail = `,${JSON.stringify({ w: writerId, reload: true, s: "all" }).slice(1)}`;
    }
    const [ok, version, coreVersion, full] = await this.#redis.rolloutMembers(
      this.keys.core(g),
      this.keys.members(g),
      this.keys.channel,
      String(expectedCore),
      changed.members.size,
      ...args,
      head,
      tail,
    );
    return { ok: ok === 1, version, coreVersion, ...(full === 1 ? { full: true as const } : {}) };
  }

  /** Deletes a group's state (its last rollout's agent records expire later). */
  async remove(group: string): Promise<void> {
    const message = JSON.stringify({ g: group, v: 0, removed: true } satisfies ChangeMessage);
    await this.#redis.rolloutRemove(
      this.keys.core(group),
      this.keys.members(group),
      this.keys.groups,
      this.keys.channel,
      String(ENDED_ROLLOUT_TTL_S),
      group,
      message,
    );
  }
}

function* pairs(flat: readonly string[]): Iterable<[string, string]> {
  for (let i = 0; i + 1 < flat.length; i += 2) yield [flat[i] as string, flat[i + 1] as string];
}

/**
 * Applies a published change to the state it was made from (version `msg.v - 1`). The caller
 * checks the version; a `reload` or `removed` message cannot be applied this way.
 */
export function applyChange(state: GroupRollout, msg: ChangeMessage): GroupRollout {
  if (msg.c === undefined && !msg.mo) throw new Error("a change without data cannot be applied");
  const members = state.members.edit();
  for (const [uid, text] of Object.entries(msg.m ?? {})) {
    if (text === null) members.delete(uid);
    else members.set(uid, decodeMember(text));
  }
  if (msg.c === undefined) return { ...state, members: members.finish() };
  const core = decodeState(msg.c, [], []);
  const agents = state.agents.edit();
  if (msg.n) agents.clear();
  for (const [uid, text] of Object.entries(msg.a ?? {})) agents.set(uid, decodeAgent(text));
  return { ...core, members: members.finish(), agents: agents.finish() };
}
