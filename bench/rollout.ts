/**
 * Rollout benchmark: `npm run bench:rollout`. Not part of `npm test`.
 *
 * One group of simulated agents in this process, driven through the controller API as the
 * OpAMP side would drive it: on every serve-changed signal each agent looks up its served
 * hash; an agent offered a new hash reports APPLYING at once and APPLIED after its own apply
 * time. Three stages (10 / 50 / 100 %) with zero pause. Measured:
 *
 * - rollout overhead: time from the commit to `completed`, minus the agents' own apply time
 *   (3 stages × BENCH_APPLY_MS); target ≤ 1 s for the whole fleet;
 * - Redis commands per agent message during the rollout (INFO commandstats deltas);
 * - Redis commands per heartbeat of an agent whose state did not change; target 0;
 * - the served-hash answer's cost per message (ns), with a rollout in flight and without.
 *
 * Redis: a private redis-server on a free port (so the command counts are ours alone), or
 * BENCH_REDIS_URL. Environment: BENCH_AGENTS=10000, BENCH_APPLY_MS=50.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { pino } from "pino";
import { RolloutController } from "../src/queue/index.js";
import type { RolloutNotice, RolloutPolicy } from "../src/queue/model.js";
import { startPrivateRedis } from "./redis-tools.js";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 10_000);
const APPLY_MS = Number(process.env.BENCH_APPLY_MS ?? 50);
const OVERHEAD_TARGET_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Total Redis command calls so far, and per command (INFO commandstats). */
async function commandStats(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info("commandstats");
  const stats = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    stats.set(m[1] ?? "", Number(m[2]));
  }
  return stats;
}

function delta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const d = new Map<string, number>();
  for (const [k, v] of after) {
    const n = v - (before.get(k) ?? 0) - (k === "info" ? 1 : 0);
    if (n > 0) d.set(k, n);
  }
  return d;
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

class Fleet {
  readonly running = new Map<string, string | undefined>();
  readonly applying = new Map<string, string>();
  messages = 0;
  /** When set, agents ignore offers (they stop answering). */
  frozen = false;

  constructor(
    readonly c: RolloutController,
    readonly uids: string[],
  ) {
    for (const u of uids) this.running.set(u, undefined);
    c.onServeChanged((change) => {
      for (const uid of change.uids ?? this.uids) this.offer(uid);
    });
  }

  offer(uid: string): void {
    if (this.frozen) return;
    const desired = this.c.served("edge", uid)?.hash;
    if (!desired || desired === this.running.get(uid) || desired === this.applying.get(uid)) return;
    this.applying.set(uid, desired);
    this.messages++;
    const ignore = () => {};
    this.c.report(uid, desired, "APPLYING").catch(ignore);
    setTimeout(() => {
      this.applying.delete(uid);
      this.running.set(uid, desired);
      this.messages++;
      this.c.report(uid, desired, "APPLIED").catch(ignore);
    }, APPLY_MS);
  }
}

function policy(stages: number[]): RolloutPolicy {
  return {
    stages: stages.map((percent) => ({ percent, pauseMs: 0 })),
    applyTimeoutMs: 300_000,
    maxFailures: { count: 0 },
    onFailure: "rollback",
    paused: false,
  };
}

function waitNotice(c: RolloutController, type: RolloutNotice["type"]): Promise<number> {
  return new Promise((resolve) => {
    const off = c.events.on(type, () => {
      off();
      resolve(performance.now());
    });
  });
}

function servedCost(c: RolloutController, uids: string[], calls: number): number {
  let sink = 0;
  for (let i = 0; i < 10_000; i++)
    sink += c.served("edge", uids[i % uids.length] ?? "")?.hash.length ?? 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++)
    sink += c.served("edge", uids[i % uids.length] ?? "")?.hash.length ?? 0;
  const ns = Number(process.hrtime.bigint() - start) / calls;
  if (sink < 0) console.log(sink);
  return ns;
}

async function main(): Promise<void> {
  const redisServer = await startPrivateRedis();
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  const stats = new Redis(redisServer.url);
  const prefix = `bench-rollout-${randomBytes(4).toString("hex")}`;
  const c = new RolloutController({ redis, prefix, logger: pino({ level: "warn" }) });
  await c.start();
  const uids = Array.from({ length: AGENTS }, (_, i) => randomBytes(16).toString("hex") + i);
  const fleet = new Fleet(c, uids);
  const A = "a".repeat(64);
  const B = "b".repeat(64);
  try {
    // Setup: the fleet joins, connects, and gets A in one stage.
    let t = performance.now();
    await c.applyGroup({ group: "edge", hash: A, commit: "aaaaaaa1", policy: policy([100]) }, uids);
    await Promise.all(uids.map((u) => c.connected(u)));
    await Promise.all(uids.map((u) => c.health(u, true)));
    for (const u of fleet.uids) fleet.offer(u);
    while (c.status("edge")?.stable?.hash !== A) await sleep(5);
    await c.idle();
    console.log(
      `setup: ${AGENTS} agents joined, connected and on A in ${Math.round(performance.now() - t)} ms`,
    );

    // The measured rollout: A → B, 10 / 50 / 100 %, zero pause.
    fleet.messages = 0;
    const before = await commandStats(stats);
    const stageTimes: Array<[string, number]> = [];
    const off = c.events.on("*", (n) =>
      stageTimes.push([`${n.type}${"stage" in n ? ` ${n.stage}` : ""}`, performance.now()]),
    );
    const completed = waitNotice(c, "completed");
    t = performance.now();
    await c.applyGroup({
      group: "edge",
      hash: B,
      commit: "bbbbbbb2",
      policy: policy([10, 50, 100]),
    });
    const end = await completed;
    await c.idle();
    off();
    const after = await commandStats(stats);
    const total = end - t;
    const overhead = total - 3 * APPLY_MS;
    const d = delta(before, after);
    const rolloutCommands = sum(d);
    const rolloutMessages = fleet.messages;

    // Steady state: every agent sends a heartbeat (unchanged state), ten rounds.
    const hbBefore = await commandStats(stats);
    const hbStart = performance.now();
    let heartbeats = 0;
    for (let round = 0; round < 10; round++) {
      for (const uid of uids) {
        c.served("edge", uid);
        heartbeats++;
      }
    }
    const hbMs = performance.now() - hbStart;
    const hbDelta = delta(hbBefore, await commandStats(stats));
    const hbCommands = sum(hbDelta);

    // Served-hash cost: stable (no rollout in flight), then with a rollout in flight.
    const stableNs = servedCost(c, uids, 2_000_000);
    fleet.frozen = true; // agents stop answering: the rollout stays in flight
    await c.applyGroup({
      group: "edge",
      hash: "c".repeat(64),
      commit: "ccccccc3",
      policy: policy([50, 100]),
    });
    const inFlightNs = servedCost(c, uids, 2_000_000);
    await c.abort("edge", "bench");

    console.log("");
    console.log(
      `rollout of ${AGENTS} agents, 3 stages (10/50/100 %), zero pause, agent apply time ${APPLY_MS} ms`,
    );
    let prev = t;
    for (const [name, at] of stageTimes) {
      console.log(
        `  ${name.padEnd(16)} +${Math.round(at - t)
          .toString()
          .padStart(5)} ms  (Δ ${Math.round(at - prev)} ms)`,
      );
      prev = at;
    }
    console.log(`  commit → completed:        ${Math.round(total)} ms`);
    console.log(`  agents' own apply time:    ${3 * APPLY_MS} ms (3 stages × ${APPLY_MS} ms)`);
    console.log(
      `  rollout overhead:          ${Math.round(overhead)} ms   target ≤ ${OVERHEAD_TARGET_MS} ms: ${overhead <= OVERHEAD_TARGET_MS ? "MET" : "NOT MET"}`,
    );
    console.log("");
    console.log(
      `Redis during the rollout: ${rolloutCommands} commands for ${rolloutMessages} agent messages = ${(rolloutCommands / rolloutMessages).toFixed(4)} per message`,
    );
    console.log(
      `  by command: ${[...d]
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
    );
    console.log(`  (writes are batched: each EVALSHA is one atomic commit of a batch of events)`);
    console.log("");
    console.log(
      `steady state: ${heartbeats} heartbeats (unchanged agents) in ${hbMs.toFixed(1)} ms → ${hbCommands} Redis commands = ${(hbCommands / heartbeats).toFixed(6)} per heartbeat   target 0: ${hbCommands === 0 ? "MET" : "NOT MET"}`,
    );
    if (hbCommands > 0)
      console.log(
        `  by command: ${[...hbDelta].map(([k, v]) => `${k}=${v}`).join(" ")} (BullMQ's background polling, not heartbeats?)`,
      );
    console.log(
      `served-hash answer: ${stableNs.toFixed(0)} ns/message (no rollout in flight), ${inFlightNs.toFixed(0)} ns/message (rollout in flight)`,
    );
    const ok = overhead <= OVERHEAD_TARGET_MS && hbCommands === 0;
    console.log("");
    console.log(ok ? "all targets met" : "SOME TARGETS NOT MET");
    process.exitCode = ok ? 0 : 1;
  } finally {
    await c.close();
    const keys = await redis.keys(`${prefix}:*`);
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
    redis.disconnect();
    stats.disconnect();
    await redisServer.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
