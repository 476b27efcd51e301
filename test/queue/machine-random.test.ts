/**
 * Randomized invariants of the rollout machine: thousands of seeded random event sequences
 * (joins and leaves, connects and disconnects, APPLYING/APPLIED/FAILED for any hash, health,
 * commits of new, same and stable hashes with random policies, pause/resume/promote/abort,
 * time passing, batches, and restarts = serialise + parse), with the invariants checked after
 * every step. A failure prints the seed; RANDOM_SEED=<n> replays one sequence.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { roundTrip } from "../../src/queue/codec.js";
import { emptyGroup, stepAll } from "../../src/queue/machine.js";
import type { GroupRollout, RolloutEvent, RolloutPolicy } from "../../src/queue/model.js";
import { mulberry32 } from "../helpers/seeded-random.js";
import { checkInvariants } from "./helpers/invariants.js";

const HASHES = ["h1", "h2", "h3", "h4"];
const SEQUENCES = Number(process.env.RANDOM_SEQUENCES ?? 3000);
const STEPS = 60;

class Gen {
  constructor(readonly rand: () => number) {}
  int(n: number): number {
    return Math.floor(this.rand() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  chance(p: number): boolean {
    return this.rand() < p;
  }
  policy(): RolloutPolicy {
    const stages: RolloutPolicy["stages"] = [];
    let percent = 0;
    const count = 1 + this.int(4);
    for (let i = 0; i < count - 1; i++) {
      percent = Math.min(99, percent + 1 + this.int(60));
      if (stages.length > 0 && percent <= (stages[stages.length - 1]?.percent ?? 0)) break;
      stages.push({ percent, pauseMs: this.chance(0.5) ? 0 : this.int(800) });
    }
    stages.push({ percent: 100, pauseMs: this.chance(0.7) ? 0 : this.int(800) });
    return {
      stages,
      applyTimeoutMs: 100 + this.int(1500),
      maxFailures: this.chance(0.5) ? { count: this.int(4) } : { percent: this.int(30) },
      onFailure: this.chance(0.5) ? "rollback" : "pause",
      paused: this.chance(0.15),
    };
  }
}

function randomEvent(g: Gen, s: GroupRollout, pool: readonly string[]): RolloutEvent {
  const uid = g.pick(pool);
  const target = s.rollout?.target.hash;
  const roll = g.int(100);
  if (roll < 12) return { type: "join", uid };
  if (roll < 16) return { type: "leave", uid };
  if (roll < 26) return { type: "connected", uid };
  if (roll < 32) return { type: "disconnected", uid };
  if (roll < 62) {
    const hash =
      g.chance(0.7) && target ? target : g.chance(0.5) && s.stable ? s.stable.hash : g.pick(HASHES);
    const status = g.pick(["APPLYING", "APPLIED", "APPLIED", "FAILED"] as const);
    return { type: "report", uid, hash, status, ...(status === "FAILED" ? { error: "bad" } : {}) };
  }
  if (roll < 72) return { type: "health", uid, healthy: g.chance(0.8), error: "sick" };
  if (roll < 80) {
    const hash = g.chance(0.3) && target ? target : g.pick(HASHES);
    return { type: "commit", hash, commit: `c${g.int(1e6)}`, policy: g.policy() };
  }
  if (roll < 88) return { type: g.pick(["pause", "resume", "promote", "abort"] as const), by: "p" };
  return { type: "tick" };
}

function runSequence(seed: number): void {
  const g = new Gen(mulberry32(seed));
  const pool = Array.from({ length: 4 + g.int(30) }, (_, i) => `s${seed}-u${i}`);
  let state = emptyGroup("g");
  let now = 1_000_000;
  for (let i = 0; i < STEPS; i++) {
    now += g.chance(0.5) ? 0 : g.int(600);
    if (g.chance(0.05)) state = roundTrip(state); // a restart
    const batch = g.chance(0.2) ? 2 + g.int(4) : 1;
    const events = Array.from({ length: batch }, () => randomEvent(g, state, pool));
    const result = stepAll(state, events, now);
    try {
      checkInvariants(state, result, batch === 1, pool);
    } catch (err) {
      (err as Error).message += `\n(seed ${seed}, step ${i}, events ${JSON.stringify(events)})`;
      throw err;
    }
    state = result.state;
  }
}

test(`random sequences keep the invariants (${SEQUENCES} × ${STEPS} steps)`, () => {
  const only = process.env.RANDOM_SEED;
  if (only) return runSequence(Number(only));
  for (let seed = 1; seed <= SEQUENCES; seed++) runSequence(seed);
});

test("the random generator reaches every status and notice", () => {
  const statuses = new Set<string>();
  const notices = new Set<string>();
  for (let seed = 1; seed <= 300; seed++) {
    const g = new Gen(mulberry32(seed));
    const pool = Array.from({ length: 10 }, (_, i) => `c${seed}-u${i}`);
    let state = emptyGroup("g");
    let now = 0;
    for (let i = 0; i < STEPS; i++) {
      now += g.int(600);
      const result = stepAll(state, [randomEvent(g, state, pool)], now);
      for (const n of result.notices) notices.add(n.type);
      state = result.state;
      if (state.rollout) statuses.add(state.rollout.status);
    }
  }
  assert.deepEqual([...statuses].sort(), [
    "aborted",
    "completed",
    "in-progress",
    "rolled-back",
    "superseded",
  ]);
  assert.equal(notices.size, 12, [...notices].join());
});
