/** A driver for the pure rollout machine in tests: a clock, a state, and what came out. */
import { emptyGroup, stepAll } from "../../../src/queue/machine.js";
import type {
  Effect,
  GroupRollout,
  RolloutEvent,
  RolloutNotice,
  RolloutPolicy,
  StepResult,
} from "../../../src/queue/model.js";
import { servedRef, stableOrTarget } from "../../../src/queue/serve.js";

export function policy(overrides: Partial<RolloutPolicy> = {}): RolloutPolicy {
  return {
    stages: [
      { percent: 10, pauseMs: 0 },
      { percent: 50, pauseMs: 0 },
      { percent: 100, pauseMs: 0 },
    ],
    applyTimeoutMs: 60_000,
    maxFailures: { count: 0 },
    onFailure: "rollback",
    paused: false,
    ...overrides,
  };
}

export const uids = (n: number, prefix = "agent") =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(5, "0")}`);

export class MachineSim {
  state: GroupRollout;
  now = 1_000_000;
  notices: RolloutNotice[] = [];
  effects: Effect[] = [];
  last!: StepResult;

  constructor(group = "edge") {
    this.state = emptyGroup(group);
  }

  send(...events: RolloutEvent[]): StepResult {
    this.last = stepAll(this.state, events, this.now);
    this.state = this.last.state;
    this.notices.push(...this.last.notices);
    this.effects.push(...this.last.effects);
    return this.last;
  }

  /** Members that join and connect. */
  fleet(members: readonly string[]): StepResult {
    return this.send(
      ...members.flatMap((uid): RolloutEvent[] => [
        { type: "join", uid },
        { type: "connected", uid },
      ]),
    );
  }

  commit(hash: string, p: RolloutPolicy = policy(), commit = `c-${hash}`): StepResult {
    return this.send({ type: "commit", hash, commit, policy: p });
  }

  tick(advanceMs = 0): StepResult {
    this.now += advanceMs;
    return this.send({ type: "tick" });
  }

  served(uid: string): string | undefined {
    return servedRef(this.state, uid)?.hash;
  }

  /** Members served the target now. */
  cohort(): string[] {
    return [...this.state.members.keys()].filter((u) => stableOrTarget(this.state, u) === "target");
  }

  /** Every cohort member reports APPLIED for the target (and healthy). */
  applyAll(hash = this.state.rollout?.target.hash ?? ""): StepResult {
    return this.send(
      ...this.cohort().flatMap((uid): RolloutEvent[] => [
        { type: "report", uid, hash, status: "APPLIED" },
        { type: "health", uid, healthy: true },
      ]),
    );
  }

  types(): string[] {
    return this.notices.map((n) => n.type);
  }
}
