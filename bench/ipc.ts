/**
 * Messages between the benchmark orchestrator (bench/opamp.ts) and its forked processes
 * (bench/agents.ts, bench/baseline-server.ts), plus small helpers shared by all three.
 * Times are wall-clock milliseconds (performance.timeOrigin + performance.now()), so they
 * compare across processes of the same machine with sub-millisecond resolution.
 */

import { getHeapSpaceStatistics } from "node:v8";

/** Wall-clock time in milliseconds, sub-millisecond resolution. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs as many gc() as asked when node runs with --expose-gc; returns whether it could. */
export async function forceGc(rounds = 3): Promise<boolean> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return false;
  for (let i = 0; i < rounds; i++) {
    gc();
    await sleep(50);
  }
  return true;
}

export interface Memory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Committed size of V8's new space (young generation; grows under allocation pressure). */
  newSpace: number;
  /** Committed size of V8's old spaces (old, code, large objects...). */
  oldSpaces: number;
  /** Whether a full gc ran just before the reading. */
  gc: boolean;
}

export async function measureMemory(): Promise<Memory> {
  const gc = await forceGc();
  const m = process.memoryUsage();
  const spaces = getHeapSpaceStatistics();
  const newSpace = spaces
    .filter((s) => s.space_name === "new_space")
    .reduce((n, s) => n + s.space_size, 0);
  const all = spaces.reduce((n, s) => n + s.space_size, 0);
  return {
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    newSpace,
    oldSpaces: all - newSpace,
    gc,
  };
}

/** CPU time and handled messages of a server process between two wall-clock instants. */
export interface WindowSample {
  /** When the samples were actually taken (timers run late under load). */
  startedAt: number;
  endedAt: number;
  userMicros: number;
  systemMicros: number;
  messages: number;
}

/**
 * Samples process.cpuUsage() and `count()` at `startAt` and `endAt` (wall clock) and resolves
 * with the differences. Used identically by the server under test and by the baseline.
 */
export function sampleWindow(
  startAt: number,
  endAt: number,
  count: () => number,
  onStart?: () => void,
  onEnd?: () => void,
): Promise<WindowSample> {
  return new Promise((resolve) => {
    setTimeout(
      () => {
        onStart?.();
        const startedAt = now();
        const cpu0 = process.cpuUsage();
        const m0 = count();
        setTimeout(
          () => {
            const cpu = process.cpuUsage(cpu0);
            const messages = count() - m0;
            const endedAt = now();
            onEnd?.();
            resolve({
              startedAt,
              endedAt,
              userMicros: cpu.user,
              systemMicros: cpu.system,
              messages,
            });
          },
          Math.max(0, endAt - now()),
        );
      },
      Math.max(0, startAt - now()),
    );
  });
}

// ---- orchestrator → agents process ----

export interface ConnectCommand {
  type: "connect";
  /** ws:// URL of the server under test. */
  url: string;
  /** Several servers (replicas behind a balancer): agent i connects to urls[i % n] instead. */
  urls?: string[];
  /** How many agents this process opens, and the index of its first one (for host.name). */
  count: number;
  firstIndex: number;
  /** Loopback source addresses, used round-robin (ws option localAddress). */
  localAddresses: string[];
  /** Agents connecting at once (WebSocket handshake to settled first exchange). */
  concurrency: number;
  /**
   * Hex hash of the config every agent must have applied before it counts as settled; "*":
   * any config, received on this connect.
   */
  expectConfigHash?: string;
  /** Reconnect the agents this process already has (same uids, new sockets) instead of new ones. */
  reconnect?: boolean;
  /** Give up after this many ms. */
  timeoutMs: number;
  /** Interval of idle heartbeats once connected, in ms; 0 sends none. */
  idleHeartbeatMs: number;
}

export interface BlastCommand {
  type: "blast";
  /** Closed-loop heartbeats from every agent until stopAt; replies counted in [startAt, endAt). */
  startAt: number;
  endAt: number;
  stopAt: number;
  /**
   * Each message carries a Collector-shaped health report (pipelines → components, StatusOK)
   * whose only news is fresh timestamps, as a real Collector sends every second.
   */
  health?: boolean;
}

export type ToAgents =
  | ConnectCommand
  | BlastCommand
  | { type: "applyRecords" }
  | { type: "cpu" }
  | { type: "closeAgents"; timeoutMs: number }
  | { type: "exit" };

// ---- agents process → orchestrator ----

export interface ConnectedReport {
  type: "connected";
  opened: number;
  settled: number;
  failed: number;
  /** First few distinct error messages, for the report. */
  errors: string[];
  elapsedMs: number;
  /** Refused upgrades (503) and UNAVAILABLE replies, each retried (undefined: not counted). */
  shed?: number;
}

export interface BlastReport {
  type: "blastDone";
  sent: number;
  received: number;
  repliesInWindow: number;
  /** Messages still unanswered when the drain deadline passed. */
  unanswered: number;
  /** CPU time of this agents process inside [startAt, endAt), in microseconds. */
  cpuMicrosInWindow: number;
}

/** Per agent that applied a config: [receivedAt, appliedSentAt] and the hash it applied. */
export interface ApplyRecordsReport {
  type: "applyRecords";
  hash: string[];
  receivedAt: number[];
  sentAt: number[];
}

export type FromAgents =
  | ConnectedReport
  | BlastReport
  | ApplyRecordsReport
  | { type: "agentsClosed"; closed: number; terminated: number }
  | { type: "cpu"; userMicros: number; systemMicros: number };

// ---- orchestrator ↔ baseline server ----

export type ToBaseline =
  | { type: "memory" }
  | { type: "window"; startAt: number; endAt: number; profile: boolean }
  | { type: "exit" };

export type FromBaseline =
  | { type: "listening"; port: number }
  | { type: "memory"; memory: Memory; connections: number }
  | { type: "window"; sample: WindowSample; profile?: ProfileSummary };

// ---- CPU profile summaries ----

export interface ProfileEntry {
  /** "function (file:line)" */
  name: string;
  selfMs: number;
  selfPercent: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Self time per function. */
  byFunction: ProfileEntry[];
  /** Time with the function anywhere on the stack (selfMs holds that inclusive time). */
  inclusive: ProfileEntry[];
  /** Self time per script (node internals grouped by module). */
  byFile: ProfileEntry[];
  /** Where the .cpuprofile was written, if it was. */
  path?: string;
}
