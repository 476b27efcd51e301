/**
 * The working copy a step edits: a mutable view over an immutable GroupRollout that collects
 * effects, notices and what changed, and keeps the gate counter (`Rollout.waiting`) exact.
 * Used by the machine (machine.ts, lifecycle.ts, outcomes.ts) only.
 */
import { cachedScore } from "./cohort.js";
import type {
  AgentRecord,
  Effect,
  GroupRollout,
  HashRef,
  IgnoredCode,
  MemberRecord,
  Rollout,
  RolloutNotice,
  StepResult,
} from "./model.js";
import { currentThreshold } from "./serve.js";
import type { ShardMapDraft } from "./shard-map.js";

type NoticeBody = RolloutNotice extends infer N
  ? N extends RolloutNotice
    ? Omit<N, "group" | "rolloutId" | "at">
    : never
  : never;

/** Drops false and undefined fields, so equal records serialise alike. */
function canonical(a: AgentRecord): AgentRecord {
  const out: AgentRecord = {};
  if (a.offeredAt !== undefined) out.offeredAt = a.offeredAt;
  if (a.acked) out.acked = true;
  if (a.applied) out.applied = true;
  if (a.failure) out.failure = a.failure;
  if (a.rejected) out.rejected = true;
  return out;
}

export class Draft {
  readonly group: string;
  readonly now: number;
  stable?: HashRef;
  rollout?: Rollout;
  seq: number;
  readonly members: ShardMapDraft<MemberRecord>;
  readonly agents: ShardMapDraft<AgentRecord>;
  readonly notices: RolloutNotice[] = [];
  readonly ignored: StepResult["ignored"] = [];
  readonly changedMembers = new Set<string>();
  readonly changedAgents = new Set<string>();
  newRollout = false;
  readonly #wakes = new Set<number>();
  #serveAll = false;
  readonly #serveUids = new Set<string>();

  constructor(state: GroupRollout, now: number) {
    this.group = state.group;
    this.now = now;
    this.stable = state.stable;
    const r = state.rollout;
    this.rollout = r && { ...r, thresholds: [...r.thresholds], failureList: [...r.failureList] };
    this.seq = state.seq;
    this.members = state.members.edit();
    this.agents = state.agents.edit();
  }

  /** The rollout in flight, if any. */
  live(): Rollout | undefined {
    return this.rollout?.status === "in-progress" ? this.rollout : undefined;
  }

  /** Whether `uid` keeps the current stage's gate closed. */
  blocking(uid: string): boolean {
    const r = this.live();
    if (!r || r.stage < 0) return false;
    const m = this.members.get(uid);
    if (!m || cachedScore(r.id, uid) > currentThreshold(r)) return false;
    const rec = this.agents.get(uid);
    if (rec?.failure) return false;
    if (rec?.applied && m.healthy !== false) return false;
    // Never offered while disconnected: not waited for until it connects.
    return m.connected || rec?.offeredAt !== undefined;
  }

  /** Writes a member (null removes it) and/or an agent record, keeping `waiting` exact. */
  touch(uid: string, change: { member?: MemberRecord | null; agent?: AgentRecord }): void {
    const before = this.blocking(uid);
    if (change.member === null) this.members.delete(uid);
    else if (change.member) this.members.set(uid, change.member);
    if (change.member !== undefined) this.changedMembers.add(uid);
    if (change.agent) {
      this.agents.set(uid, canonical(change.agent));
      this.changedAgents.add(uid);
    }
    const r = this.live();
    if (r) r.waiting += Number(this.blocking(uid)) - Number(before);
  }

  notice(body: NoticeBody): void {
    const r = this.rollout;
    if (!r) return;
    this.notices.push({
      ...body,
      group: this.group,
      rolloutId: r.id,
      at: this.now,
    } as RolloutNotice);
  }

  wake(at: number): void {
    this.#wakes.add(at);
  }

  serveChanged(uid?: string): void {
    if (uid === undefined) this.#serveAll = true;
    else this.#serveUids.add(uid);
  }

  ignore(index: number, code: IgnoredCode): void {
    this.ignored.push({ index, code });
  }

  finish(): StepResult {
    const effects: Effect[] = [...this.#wakes]
      .sort((a, b) => a - b)
      .map((at) => ({
        type: "wake" as const,
        at,
      }));
    if (this.#serveAll) effects.push({ type: "serve-changed" });
    else if (this.#serveUids.size > 0) {
      effects.push({ type: "serve-changed", uids: [...this.#serveUids] });
    }
    const state: GroupRollout = {
      group: this.group,
      seq: this.seq,
      members: this.members.finish(),
      agents: this.agents.finish(),
    };
    if (this.stable) state.stable = this.stable;
    if (this.rollout) state.rollout = this.rollout;
    return {
      state,
      effects,
      notices: this.notices,
      ignored: this.ignored,
      changed: {
        core: true,
        members: this.changedMembers,
        agents: this.changedAgents,
        newRollout: this.newRollout,
      },
    };
  }
}
