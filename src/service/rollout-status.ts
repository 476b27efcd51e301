/**
 * The status writer's view of rollouts (src/status RolloutStatusSource) over the rollout
 * controller: the current rollout from its in-memory status, ended ones from its history in
 * Redis, and a change signal for any change of a group's rollout on any replica.
 */
import type { EndedRollout, RolloutController, RolloutView } from "../queue/index.js";
import type {
  GroupRolloutInfo,
  RolloutHistoryEntry,
  RolloutProgress,
  RolloutStatusSource,
} from "../status/index.js";

function progress(v: RolloutView): RolloutProgress {
  const p: RolloutProgress = {
    id: v.id,
    state: v.status,
    target: v.target,
    stage: v.stage,
    stages: v.stages,
    members: v.members,
    cohort: v.cohort,
    applied: v.applied,
    failed: v.failed,
    pending: v.pending,
    startedAt: v.startedAt,
    failures: v.failures.map((f) => ({ ...f })),
  };
  if (v.from) p.from = v.from;
  if (v.percent !== undefined) p.percent = v.percent;
  if (v.hold) p.hold = { ...v.hold };
  if (v.endedAt !== undefined) p.endedAt = v.endedAt;
  if (v.endReason) p.endReason = v.endReason;
  return p;
}

function historyEntry(e: EndedRollout): RolloutHistoryEntry {
  const h: RolloutHistoryEntry = {
    id: e.id,
    state: e.status,
    target: e.target,
    startedAt: e.startedAt,
    endedAt: e.endedAt,
  };
  if (e.from) h.from = e.from;
  if (e.endReason) h.endReason = e.endReason;
  return h;
}

/** The incompatible agents of a group (IncompatibleAgents), and a signal when they change. */
export interface IncompatibleSource {
  summary(
    group: string,
  ): Promise<{ count: number; examples: { uid: string; missing: string[] }[] }>;
  subscribe(listener: (group: string) => void): () => void;
}

export class RolloutStatusAdapter implements RolloutStatusSource {
  readonly #rollouts: RolloutController;
  readonly #filesOf: (hash: string) => string[] | undefined;
  readonly #configHashOf: (bundleId: string) => string;
  readonly #incompatible: IncompatibleSource | undefined;

  /**
   * `filesOf` names the files of a served bundle (the config store), for the served block;
   * `configHashOf` gives a bundle's config hash, which the served block names (rollouts move
   * bundles; their target and source stay bundle ids); `incompatible` adds the group's
   * incompatible agents.
   */
  constructor(
    rollouts: RolloutController,
    filesOf: (hash: string) => string[] | undefined = () => undefined,
    configHashOf: (bundleId: string) => string = (id) => id,
    incompatible?: IncompatibleSource,
  ) {
    this.#rollouts = rollouts;
    this.#filesOf = filesOf;
    this.#configHashOf = configHashOf;
    this.#incompatible = incompatible;
  }

  async status(group: string): Promise<GroupRolloutInfo | undefined> {
    const view = this.#rollouts.status(group);
    const ended = await this.#rollouts.history(group);
    const incompatible = await this.#incompatible?.summary(group);
    const listed = incompatible && incompatible.count > 0 ? { incompatible } : {};
    if (!view?.rollout && ended.length === 0 && !listed.incompatible) return undefined;
    const current = view?.rollout;
    const served = view?.served;
    const files = served && this.#filesOf(served.hash);
    const info: GroupRolloutInfo = {
      served: served
        ? { ...served, hash: this.#configHashOf(served.hash), ...(files ? { files } : {}) }
        : null,
      history: ended.filter((e) => e.id !== current?.id).map(historyEntry),
      ...listed,
    };
    if (current) info.current = progress(current);
    return info;
  }

  subscribe(listener: (group: string) => void): () => void {
    const off = this.#rollouts.onGroupChanged(listener);
    const offIncompatible = this.#incompatible?.subscribe(listener);
    return () => {
      off();
      offIncompatible?.();
    };
  }
}
