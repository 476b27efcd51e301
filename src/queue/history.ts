/**
 * Recent ended rollouts per group, for the status branch's `history` (DESIGN §4).
 *
 *   <prefix>:group:<g>:rollout-history   LIST  ended rollouts (JSON), newest first, ≤ 20
 *
 * Written by the replica that committed the end (the notice's replica), right after the
 * commit; a crash between the two loses that entry only (the notice itself is in the
 * `rollout-notices` stream). The list outlives the group's rollout state on purpose: a group
 * removed from Git and added back keeps its past.
 */
import type { Redis } from "ioredis";
import type { GroupRollout, HashRef, Rollout, RolloutStatus, StepResult } from "./model.js";

/** Entries kept per group. */
export const HISTORY_MAX = 20;

export interface EndedRollout {
  id: string;
  status: Exclude<RolloutStatus, "in-progress">;
  from?: HashRef;
  target: HashRef;
  startedAt: number;
  endedAt: number;
  endReason?: string;
}

const TERMINAL = new Set(["rolled-back", "aborted", "superseded", "completed"]);

/** The rollouts a committed step ended (one per terminal notice), as history entries. */
export function endedRollouts(before: GroupRollout, result: StepResult): EndedRollout[] {
  const out: EndedRollout[] = [];
  for (const n of result.notices) {
    if (!TERMINAL.has(n.type)) continue;
    const r: Rollout | undefined = [result.state.rollout, before.rollout].find(
      (x) => x?.id === n.rolloutId,
    );
    if (!r) continue;
    const status = (r.status === "in-progress" ? n.type : r.status) as EndedRollout["status"];
    const entry: EndedRollout = {
      id: r.id,
      status,
      target: r.target,
      startedAt: r.startedAt,
      endedAt: r.endedAt ?? n.at,
    };
    if (r.from) entry.from = r.from;
    const reason = r.endReason ?? (n.type === "superseded" ? `superseded by ${n.by}` : undefined);
    if (reason) entry.endReason = reason;
    out.push(entry);
  }
  return out;
}

export class RolloutHistory {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  key(group: string): string {
    return `${this.#prefix}:group:${group}:rollout-history`;
  }

  /** Prepends `entries` (oldest first) and trims the list to HISTORY_MAX. */
  async record(group: string, entries: readonly EndedRollout[]): Promise<void> {
    if (entries.length === 0) return;
    await this.#redis
      .multi()
      .lpush(this.key(group), ...entries.map((e) => JSON.stringify(e)))
      .ltrim(this.key(group), 0, HISTORY_MAX - 1)
      .exec();
  }

  /** Newest first; entries that do not parse are skipped. */
  async list(group: string, limit = HISTORY_MAX): Promise<EndedRollout[]> {
    const raw = await this.#redis.lrange(this.key(group), 0, limit - 1);
    const out: EndedRollout[] = [];
    for (const s of raw) {
      try {
        out.push(JSON.parse(s) as EndedRollout);
      } catch {
        // A damaged entry costs one line of history, not the group file.
      }
    }
    return out;
  }
}
