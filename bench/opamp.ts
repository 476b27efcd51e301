/**
 * OpAMP server benchmark: `npm run bench:opamp`. Not part of `npm test`.
 *
 * This process hosts the server under test (so its memoryUsage() is the server's) with real
 * Redis, and forks agent processes (bench/agents.ts, ≤ 9 000 WebSocket agents each, spread over
 * loopback source addresses). It measures memory per connected agent, steady-state heartbeat
 * throughput and CPU per message, Redis commands per heartbeat and per real-shaped health report
 * (a Collector's component tree, StatusOK with fresh timestamps), and config push latency; then
 * runs the same agents against a bare `ws` baseline (bench/baseline-server.ts) to compare.
 *
 * Environment (all optional):
 *   BENCH_AGENTS=10000            agents (≤ ~19 000: the server holds one fd per agent)
 *   BENCH_BLAST_SECONDS=10        steady-state measurement window
 *   BENCH_PUSH_ROUNDS=3           config pushes to time
 *   BENCH_IDLE_HEARTBEAT_SECONDS=30  heartbeat interval outside the blast (0: none)
 *   BENCH_CONNECT_CONCURRENCY=100 agents connecting at once, per agents process
 *   BENCH_FLUSH_MS=5000           server flushIntervalMs (batched last-seen writes)
 *   BENCH_PROFILE=1               CPU-profile both servers in the blast window and the first push
 *   BENCH_HEAP_SNAPSHOT=1         write a heap snapshot of the server once agents are idle
 *   BENCH_SKIP_BASELINE=1         skip the baseline
 *   REDIS_URL=redis://127.0.0.1:6379
 */
import { randomBytes, randomInt } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { writeHeapSnapshot } from "node:v8";
import { Redis } from "ioredis";
import { pino } from "pino";
import { type ConfigFile, configHash } from "../src/config-hash.js";
import { RemoteConfigStatus } from "../src/opamp/capabilities.js";
import type { DesiredState, DesiredStateProvider } from "../src/opamp/desired.js";
import { OpampServer } from "../src/opamp/server.js";
import { pipelinedConnection } from "../src/redis.js";
import { Child } from "./child.js";
import {
  type ConnectedReport,
  type FromAgents,
  type FromBaseline,
  type Memory,
  measureMemory,
  now,
  type ProfileSummary,
  sampleWindow,
  sleep,
  type ToAgents,
  type ToBaseline,
  type WindowSample,
} from "./ipc.js";
import { WindowProfiler } from "./profile.js";

// ---------------------------------------------------------------------------------------------
// Settings

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number`);
  return Math.floor(n);
}

const AGENTS = envInt("BENCH_AGENTS", 10_000);
const MAX_PER_PROCESS = 9000;
const AGENTS_PER_ADDRESS = 2000;
const BLAST_MS = envInt("BENCH_BLAST_SECONDS", 10) * 1000;
const WARMUP_MS = 2000;
const PUSH_ROUNDS = envInt("BENCH_PUSH_ROUNDS", 3);
const IDLE_HEARTBEAT_MS = envInt("BENCH_IDLE_HEARTBEAT_SECONDS", 30) * 1000;
const CONCURRENCY = envInt("BENCH_CONNECT_CONCURRENCY", 100);
const FLUSH_MS = envInt("BENCH_FLUSH_MS", 5000);
const PROFILE = process.env.BENCH_PROFILE === "1";
const HEAP_SNAPSHOT = process.env.BENCH_HEAP_SNAPSHOT === "1";
/** Where profiles and heap snapshots go (outside the repository). */
const OUT_DIR = process.env.BENCH_OUT_DIR ?? join(tmpdir(), "opamp-bench");
const SKIP_BASELINE = process.env.BENCH_SKIP_BASELINE === "1";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const CONNECT_TIMEOUT_MS = 180_000;
const IDLE_SETTLE_MS = 5000;
/** Idle phase of the server under test: its Redis commands are counted, then memory read. */
const IDLE_MS = 10_000;
const PUSH_TIMEOUT_MS = 20_000;
const WATCHDOG_MS = 15 * 60_000;

const TARGET_RSS_PER_AGENT = 20 * 1024;
const TARGET_PUSH_MS = 1000;

// ---------------------------------------------------------------------------------------------
// Small helpers

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] as number;
}

function dist(values: number[]): { n: number; p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: r1(percentile(sorted, 50)),
    p99: r1(percentile(sorted, 99)),
    max: r1(sorted[sorted.length - 1] ?? Number.NaN),
  };
}

function r1(x: number): number {
  return Math.round(x * 10) / 10;
}
function r3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KB`;
}
/** Flags CPU used by others (Redis, kernel, unrelated jobs) during a measurement window. */
function others(cores: number | null): string {
  if (cores === null) return "";
  const text = ` (others: ${(cores * 100).toFixed(0)}% of a core)`;
  return cores > 0.3 ? `${text} — WARNING: other load skews msg/s` : text;
}
function busy(share: number | null): string {
  return share === null ? "?" : `${(share * 100).toFixed(0)}%`;
}
function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** A collector-like config of about 1.5 KB; `version` changes its hash. */
function benchConfig(version: number): { hash: string; files: ConfigFile[] } {
  const yaml = [
    `# bench config version ${version}`,
    "receivers:",
    "  otlp:",
    "    protocols:",
    "      grpc: { endpoint: 0.0.0.0:4317 }",
    "      http: { endpoint: 0.0.0.0:4318 }",
    "  hostmetrics:",
    "    collection_interval: 30s",
    "    scrapers: { cpu: {}, memory: {}, disk: {}, filesystem: {}, network: {}, load: {} }",
    "processors:",
    "  memory_limiter: { check_interval: 1s, limit_percentage: 80, spike_limit_percentage: 20 }",
    "  batch: { send_batch_size: 8192, timeout: 5s }",
    "  resourcedetection: { detectors: [env, system], timeout: 2s, override: false }",
    "  attributes/env:",
    "    actions:",
    "      - { key: deployment.environment, value: production, action: upsert }",
    `      - { key: bench.config.version, value: "${version}", action: upsert }`,
    "exporters:",
    "  otlphttp:",
    "    endpoint: https://otel-gateway.example.internal:4318",
    "    compression: gzip",
    "    retry_on_failure: { enabled: true, initial_interval: 5s, max_interval: 30s }",
    "    sending_queue: { enabled: true, num_consumers: 4, queue_size: 5000 }",
    "extensions:",
    "  health_check: { endpoint: 0.0.0.0:13133 }",
    "  pprof: { endpoint: 127.0.0.1:1777 }",
    "service:",
    "  extensions: [health_check, pprof]",
    "  telemetry: { logs: { level: info }, metrics: { level: normal } }",
    "  pipelines:",
    "    metrics:",
    "      receivers: [otlp, hostmetrics]",
    "      processors: [memory_limiter, resourcedetection, attributes/env, batch]",
    "      exporters: [otlphttp]",
    "    traces:",
    "      receivers: [otlp]",
    "      processors: [memory_limiter, resourcedetection, attributes/env, batch]",
    "      exporters: [otlphttp]",
    "    logs:",
    "      receivers: [otlp]",
    "      processors: [memory_limiter, resourcedetection, attributes/env, batch]",
    "      exporters: [otlphttp]",
    "",
  ].join("\n");
  const files: ConfigFile[] = [
    { name: "collector.yaml", contentType: "text/yaml", body: Buffer.from(yaml) },
  ];
  return { hash: configHash(files), files };
}

/** Name under which the batched last-seen writes of AgentStore.flushTouches are counted. */
const FLUSH_HSET = "hset(flush)";

/**
 * Counts the commands a Redis client sends, by name (pipelines and MULTI included). The
 * HSETs of flushTouches (key, lastSeenAt, t, seq, n) are counted apart, as FLUSH_HSET.
 */
function countCommands(redis: Redis): Map<string, number> {
  const counts = new Map<string, number>();
  const original = redis.sendCommand.bind(redis);
  redis.sendCommand = ((command: { name: string; args: unknown[] }, ...rest: unknown[]) => {
    const a = command.args;
    const name =
      command.name === "hset" && a.length === 5 && a[1] === "lastSeenAt" && a[3] === "seq"
        ? FLUSH_HSET
        : command.name;
    counts.set(name, (counts.get(name) ?? 0) + 1);
    return (original as (...a: unknown[]) => unknown)(command, ...rest);
  }) as typeof redis.sendCommand;
  return counts;
}

/** Machine-wide CPU ticks from /proc/stat (Linux), to show idle time in a window. */
function machineCpu(): { busy: number; idle: number; steal: number } | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const [, user, nice, system, idle, iowait, irq, softirq, steal] = line
      .trim()
      .split(/\s+/)
      .map(Number);
    return {
      busy: (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0),
      idle: (idle ?? 0) + (iowait ?? 0),
      steal: steal ?? 0,
    };
  } catch {
    return undefined;
  }
}

/** Share of the machine's CPU time that was busy between two machineCpu() readings. */
function busyShare(
  a: ReturnType<typeof machineCpu>,
  b: ReturnType<typeof machineCpu>,
): number | null {
  if (!a || !b) return null;
  const busy = b.busy - a.busy;
  const total = busy + (b.idle - a.idle) + (b.steal - a.steal);
  return total > 0 ? r3(busy / total) : null;
}

function diffCounts(
  after: Map<string, number>,
  before: Map<string, number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, n] of after) {
    const d = n - (before.get(name) ?? 0);
    if (d > 0) out[name] = d;
  }
  return out;
}

function sum(record: Record<string, number>, exclude: readonly string[] = []): number {
  return Object.entries(record)
    .filter(([k]) => !exclude.includes(k))
    .reduce((n, [, v]) => n + v, 0);
}

/** INFO commandstats as command → calls (whole Redis server, every client). */
async function commandStats(admin: Redis): Promise<Map<string, number>> {
  const text = await admin.info("commandstats");
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m) out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

async function deleteKeys(admin: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  for (let pass = 0; pass < 3; pass++) {
    let cursor = "0";
    let rounds = 0;
    do {
      const [next, keys] = await admin.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) deleted += await admin.unlink(...keys);
    } while (cursor !== "0" && ++rounds < 100_000);
    await sleep(200);
  }
  return deleted;
}

// ---------------------------------------------------------------------------------------------
// Agents processes

type AgentsChild = Child<ToAgents, FromAgents>;

function split(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0),
  );
}

/** Loopback source addresses for one phase (a fresh /24 so no port is still in TIME_WAIT). */
function addresses(octet2: number, octet3: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `127.${octet2}.${octet3}.${i + 1}`);
}

async function connectAgents(
  children: AgentsChild[],
  url: string,
  localAddresses: string[],
  expectConfigHash: string | undefined,
): Promise<ConnectedReport & { perProcess: ConnectedReport[] }> {
  const shares = split(AGENTS, children.length);
  const perAddress = Math.ceil(localAddresses.length / children.length);
  let first = 0;
  children.forEach((child, i) => {
    child.send({
      type: "connect",
      url,
      count: shares[i] as number,
      firstIndex: first,
      localAddresses: localAddresses.slice(i * perAddress, (i + 1) * perAddress),
      concurrency: CONCURRENCY,
      ...(expectConfigHash ? { expectConfigHash } : {}),
      timeoutMs: CONNECT_TIMEOUT_MS,
      idleHeartbeatMs: IDLE_HEARTBEAT_MS,
    });
    first += shares[i] as number;
  });
  const reports = await Promise.all(
    children.map((c) => c.next("connected", CONNECT_TIMEOUT_MS + 30_000)),
  );
  return {
    type: "connected",
    opened: reports.reduce((n, r) => n + r.opened, 0),
    settled: reports.reduce((n, r) => n + r.settled, 0),
    failed: reports.reduce((n, r) => n + r.failed, 0),
    errors: reports.flatMap((r) => r.errors),
    elapsedMs: Math.max(...reports.map((r) => r.elapsedMs)),
    perProcess: reports,
  };
}

interface BlastResult {
  window: WindowSample;
  sent: number;
  received: number;
  repliesInWindow: number;
  unanswered: number;
  agentsCpuMicros: number;
  /** Busy share of all the machine's CPUs in the window (Linux), null elsewhere. */
  machineBusy: number | null;
}

/** Closed-loop heartbeats from every agent; the server is sampled by `serverWindow`. */
async function blast(
  children: AgentsChild[],
  serverWindow: (startAt: number, endAt: number) => Promise<WindowSample>,
  health = false,
): Promise<BlastResult> {
  const startAt = now() + WARMUP_MS;
  const endAt = startAt + BLAST_MS;
  const stopAt = endAt + 300;
  for (const c of children) c.send({ type: "blast", startAt, endAt, stopAt, health });
  let cpuStart: ReturnType<typeof machineCpu>;
  let cpuEnd: ReturnType<typeof machineCpu>;
  const machine = (async () => {
    await sleep(Math.max(0, startAt - now()));
    cpuStart = machineCpu();
    await sleep(Math.max(0, endAt - now()));
    cpuEnd = machineCpu();
  })();
  const window = await serverWindow(startAt, endAt);
  await machine;
  const reports = await Promise.all(
    children.map((c) => c.next("blastDone", BLAST_MS + WARMUP_MS + 60_000)),
  );
  return {
    window,
    sent: reports.reduce((n, r) => n + r.sent, 0),
    received: reports.reduce((n, r) => n + r.received, 0),
    repliesInWindow: reports.reduce((n, r) => n + r.repliesInWindow, 0),
    unanswered: reports.reduce((n, r) => n + r.unanswered, 0),
    agentsCpuMicros: reports.reduce((n, r) => n + r.cpuMicrosInWindow, 0),
    machineBusy: busyShare(cpuStart, cpuEnd),
  };
}

async function closeAgents(
  children: AgentsChild[],
): Promise<{ closed: number; terminated: number }> {
  for (const c of children) c.send({ type: "closeAgents", timeoutMs: 20_000 });
  const reports = await Promise.all(children.map((c) => c.next("agentsClosed", 60_000)));
  return {
    closed: reports.reduce((n, r) => n + r.closed, 0),
    terminated: reports.reduce((n, r) => n + r.terminated, 0),
  };
}

function throughput(b: BlastResult) {
  const seconds = (b.window.endedAt - b.window.startedAt) / 1000;
  const cpuMicros = b.window.userMicros + b.window.systemMicros;
  return {
    windowSeconds: r3(seconds),
    serverMessages: b.window.messages,
    messagesPerSecond: Math.round(b.window.messages / seconds),
    agentRepliesPerSecond: Math.round(b.repliesInWindow / (BLAST_MS / 1000)),
    serverCpuMicrosPerMessage: r3(cpuMicros / Math.max(1, b.window.messages)),
    serverCpuUserMicrosPerMessage: r3(b.window.userMicros / Math.max(1, b.window.messages)),
    serverCpuSystemMicrosPerMessage: r3(b.window.systemMicros / Math.max(1, b.window.messages)),
    serverCpuUtilisation: r3(cpuMicros / 1e6 / seconds),
    agentsCpuUtilisation: r3(b.agentsCpuMicros / 1e6 / (BLAST_MS / 1000)),
    machineBusy: b.machineBusy,
    /** CPU (in cores) used by everything else in the window: Redis, the kernel, other jobs. */
    otherCpuCores:
      b.machineBusy === null
        ? null
        : r3(
            b.machineBusy * availableParallelism() -
              cpuMicros / 1e6 / seconds -
              b.agentsCpuMicros / 1e6 / (BLAST_MS / 1000),
          ),
    sent: b.sent,
    received: b.received,
    unanswered: b.unanswered,
  };
}

function perAgentMemory(before: Memory, after: Memory, agents: number) {
  const per = (k: keyof Omit<Memory, "gc">) =>
    Math.round((after[k] - before[k]) / Math.max(1, agents));
  return {
    agents,
    gc: before.gc && after.gc,
    before: { ...before },
    after: { ...after },
    rssPerAgent: per("rss"),
    /** RSS growth less the young generation's growth, which is a constant, not per agent. */
    rssPerAgentExNewSpace: Math.round(
      (after.rss - before.rss - (after.newSpace - before.newSpace)) / Math.max(1, agents),
    ),
    heapTotalPerAgent: per("heapTotal"),
    newSpacePerAgent: per("newSpace"),
    oldSpacesPerAgent: per("oldSpaces"),
    /** RSS growth not explained by the committed V8 heap and array buffers: native. */
    nativePerAgent: Math.round(
      (after.rss -
        before.rss -
        (after.heapTotal - before.heapTotal) -
        (after.arrayBuffers - before.arrayBuffers)) /
        Math.max(1, agents),
    ),
    heapUsedPerAgent: per("heapUsed"),
    externalPerAgent: per("external"),
    arrayBuffersPerAgent: per("arrayBuffers"),
  };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const started = now();
  const lines: string[] = [];
  const out = (line = "") => {
    lines.push(line);
    console.log(line);
  };
  const phase = (text: string) =>
    console.error(`[bench ${((now() - started) / 1000).toFixed(1)} s] ${text}`);

  if (!(globalThis as { gc?: unknown }).gc) {
    console.error("warning: run with node --expose-gc for memory figures after a full gc");
  }
  const processes = Math.max(1, Math.ceil(AGENTS / MAX_PER_PROCESS));
  const addressCount = Math.max(processes, Math.ceil(AGENTS / AGENTS_PER_ADDRESS));
  const octet2 = randomInt(1, 255);
  const prefix = `bench-${randomBytes(6).toString("hex")}`;

  // The connection serve gives its agent store (one write per turn).
  const redisBase = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const redis = pipelinedConnection(redisBase, pino({ level: "silent" }));
  const admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  await admin.connect();
  const commands = countCommands(redis);

  const v1 = benchConfig(1);
  let desiredState: DesiredState = { config: v1 };
  const desired: DesiredStateProvider = { desired: () => desiredState };
  const server = new OpampServer({
    redis,
    prefix,
    logger: pino({ level: process.env.BENCH_LOG_LEVEL ?? "error" }),
    host: "127.0.0.1",
    port: 0,
    desired,
    flushIntervalMs: FLUSH_MS,
  });

  // Instrumentation: messages handled (heartbeats answered on the fast path included), and
  // the batched last-seen flushes.
  const handledCount = () => server.handler.stats.messages;
  let healthEvents = 0;
  server.events.on("healthChanged", () => healthEvents++);
  const flushes = { calls: 0, agents: 0, maxMs: 0 };
  const flushTouches = server.store.flushTouches.bind(server.store);
  server.store.flushTouches = async () => {
    const t = now();
    const n = await flushTouches();
    if (n > 0) {
      flushes.calls++;
      flushes.agents += n;
      flushes.maxMs = Math.max(flushes.maxMs, now() - t);
    }
    return n;
  };
  // Config push: when the server started and finished storing each change (Redis round trip).
  const saves: { start: number[]; end: number[] } = { start: [], end: [] };
  const save = server.store.save.bind(server.store);
  server.store.save = async (...args) => {
    if (pushHash === "") return save(...args);
    const t = now();
    await save(...args);
    saves.start.push(t);
    saves.end.push(now());
  };
  // Config push: when each agent's APPLIED for the current hash reached the server.
  let pushHash = "";
  let applied = new Map<string, number>();
  let onAllApplied: (() => void) | undefined;
  let appliedTarget = Number.POSITIVE_INFINITY;
  server.events.on("remoteConfigStatusChanged", (e) => {
    if (pushHash === "" || e.status.status !== RemoteConfigStatus.APPLIED) return;
    const hash = e.status.lastRemoteConfigHash;
    if (!hash || Buffer.from(hash).toString("hex") !== pushHash) return;
    if (!applied.has(e.instanceUid)) applied.set(e.instanceUid, now());
    if (applied.size >= appliedTarget) onAllApplied?.();
  });

  const children: AgentsChild[] = [];
  let baseline: Child<ToBaseline, FromBaseline> | undefined;
  const watchdog = setTimeout(() => {
    console.error(`benchmark exceeded ${WATCHDOG_MS / 1000} s; stopping`);
    for (const c of children) c.proc.kill("SIGKILL");
    baseline?.proc.kill("SIGKILL");
    process.exit(2);
  }, WATCHDOG_MS);
  watchdog.unref();

  const result: Record<string, unknown> = {
    agents: AGENTS,
    agentProcesses: processes,
    sourceAddresses: addressCount,
    blastSeconds: BLAST_MS / 1000,
    idleHeartbeatSeconds: IDLE_HEARTBEAT_MS / 1000,
    flushIntervalMs: FLUSH_MS,
    node: process.version,
  };
  let serverClosed = false;
  try {
    const { port } = await server.start();
    const url = `ws://127.0.0.1:${port}/v1/opamp`;
    for (let i = 0; i < processes; i++) {
      children.push(new Child(`agents-${i}`, "./agents.js"));
    }
    await sleep(500);

    // 1. Memory per connected agent.
    const memBefore = await measureMemory();
    phase(`connecting ${AGENTS} agents from ${processes} processes to the OpAMP server`);
    const connected = await connectAgents(
      children,
      url,
      addresses(octet2, 1, addressCount),
      v1.hash,
    );
    phase(
      `connected: ${connected.opened} open, ${connected.settled} settled, ${connected.failed} failed in ${(connected.elapsedMs / 1000).toFixed(1)} s`,
    );
    // Idle fleet: agents heartbeat at their idle interval; count the Redis commands it costs.
    const idleCmd0 = new Map(commands);
    const idleHandled0 = handledCount();
    const idleStart = now();
    await sleep(IDLE_MS);
    const idleCmds = diffCounts(commands, idleCmd0);
    const idleHeartbeats = handledCount() - idleHandled0;
    result.idle = {
      seconds: r1((now() - idleStart) / 1000),
      heartbeats: idleHeartbeats,
      commandsByName: idleCmds,
      directPerHeartbeat: r3(
        (sum(idleCmds) - (idleCmds[FLUSH_HSET] ?? 0)) / Math.max(1, idleHeartbeats),
      ),
      amortizedPerHeartbeat: r3(sum(idleCmds) / Math.max(1, idleHeartbeats)),
    };
    const memAfter = await measureMemory();
    const liveAgents = server.connectedAgents;
    const memory = perAgentMemory(memBefore, memAfter, liveAgents);
    result.connect = {
      opened: connected.opened,
      settled: connected.settled,
      failed: connected.failed,
      errors: connected.errors,
      seconds: r1(connected.elapsedMs / 1000),
      serverConnectedAgents: liveAgents,
    };
    result.memory = memory;
    if (HEAP_SNAPSHOT) {
      mkdirSync(OUT_DIR, { recursive: true });
      result.heapSnapshot = writeHeapSnapshot(
        join(OUT_DIR, `opamp-server-${Date.now()}.heapsnapshot`),
      );
      phase(`heap snapshot written to ${result.heapSnapshot}`);
    }

    // Redis footprint of one agent (sampled).
    const sampleKeys = (await admin.scan("0", "MATCH", `${prefix}:agent:*`, "COUNT", 200))[1].slice(
      0,
      20,
    );
    let redisBytes = 0;
    for (const key of sampleKeys) redisBytes += Number((await admin.memory("USAGE", key)) ?? 0);
    result.redisBytesPerAgent = sampleKeys.length
      ? Math.round(redisBytes / sampleKeys.length)
      : null;

    // 2 + 4. Steady-state heartbeats: throughput, CPU per message, Redis commands.
    phase(`blast: closed-loop heartbeats from every agent, ${BLAST_MS / 1000} s window`);
    const info0 = await commandStats(admin);
    const handled0 = handledCount();
    const flush0 = { ...flushes };
    let cmdStart = new Map<string, number>();
    let cmdEnd = new Map<string, number>();
    let flushAtStart = { ...flushes };
    let flushAtEnd = { ...flushes };
    const profiler = new WindowProfiler();
    let profiling: Promise<void> = Promise.resolve();
    const ours = await blast(children, async (startAt, endAt) => {
      const sample = await sampleWindow(
        startAt,
        endAt,
        handledCount,
        () => {
          cmdStart = new Map(commands);
          flushAtStart = { ...flushes };
          if (PROFILE) profiling = profiler.start();
        },
        () => {
          cmdEnd = new Map(commands);
          flushAtEnd = { ...flushes };
        },
      );
      await profiling;
      return sample;
    });
    let oursProfile: ProfileSummary | undefined;
    if (PROFILE) {
      mkdirSync(OUT_DIR, { recursive: true });
      oursProfile = await profiler.stop(
        join(OUT_DIR, `opamp-server-blast-${Date.now()}.cpuprofile`),
      );
    }
    // Let a flush happen so the phase's batched writes are counted, then read the totals.
    await sleep(FLUSH_MS + 500);
    const info1 = await commandStats(admin);
    const phaseHeartbeats = handledCount() - handled0;
    const infoDelta = diffCounts(info1, info0);
    delete infoDelta.info;
    const windowCmds = diffCounts(cmdEnd, cmdStart);
    const windowHeartbeats = ours.window.messages;
    const windowFlushHsets = windowCmds[FLUSH_HSET] ?? 0;
    const phaseFlushAgents = flushes.agents - flush0.agents;
    const windowDirect = sum(windowCmds) - windowFlushHsets;
    result.throughput = throughput(ours);
    result.redis = {
      window: {
        heartbeats: windowHeartbeats,
        commandsByName: windowCmds,
        commands: sum(windowCmds),
        flushesCompleted: flushAtEnd.calls - flushAtStart.calls,
        flushHsets: windowFlushHsets,
        directPerHeartbeat: r3(windowDirect / Math.max(1, windowHeartbeats)),
        amortizedPerHeartbeat: r3(sum(windowCmds) / Math.max(1, windowHeartbeats)),
      },
      phase: {
        heartbeats: phaseHeartbeats,
        infoCommandstatsDelta: infoDelta,
        commands: sum(infoDelta),
        flushes: flushes.calls - flush0.calls,
        flushedAgents: phaseFlushAgents,
        directPerHeartbeat: r3((sum(infoDelta) - phaseFlushAgents) / Math.max(1, phaseHeartbeats)),
        amortizedPerHeartbeat: r3(sum(infoDelta) / Math.max(1, phaseHeartbeats)),
      },
      longestFlushMs: r1(flushes.maxMs),
    };
    if (oursProfile) result.profileOurs = oursProfile;
    phase(
      `blast done: ${(result.throughput as { messagesPerSecond: number }).messagesPerSecond} msg/s`,
    );

    // 4b. A real-shaped health stream: every message carries a Collector's health (pipelines →
    // components, StatusOK) whose only news is fresh timestamps. Judged by meaning, it must
    // cost what a bare heartbeat costs: no Redis command beyond the batched last-seen flush.
    phase(
      `health stream: closed-loop health reports from every agent, ${BLAST_MS / 1000} s window`,
    );
    const healthEvents0 = healthEvents;
    let hStart = new Map<string, number>();
    let hEnd = new Map<string, number>();
    const healthBlast = await blast(
      children,
      (startAt, endAt) =>
        sampleWindow(
          startAt,
          endAt,
          handledCount,
          () => {
            hStart = new Map(commands);
          },
          () => {
            hEnd = new Map(commands);
          },
        ),
      true,
    );
    const hCmds = diffCounts(hEnd, hStart);
    const hMessages = healthBlast.window.messages;
    const hFlush = hCmds[FLUSH_HSET] ?? 0;
    result.healthStream = {
      messages: hMessages,
      messagesPerSecond: throughput(healthBlast).messagesPerSecond,
      serverCpuMicrosPerMessage: throughput(healthBlast).serverCpuMicrosPerMessage,
      commandsByName: hCmds,
      commands: sum(hCmds),
      flushHsets: hFlush,
      directPerMessage: r3((sum(hCmds) - hFlush) / Math.max(1, hMessages)),
      amortizedPerMessage: r3(sum(hCmds) / Math.max(1, hMessages)),
      healthChangedEvents: healthEvents - healthEvents0,
    };
    phase(`health stream done: ${hMessages} messages, ${sum(hCmds)} Redis commands`);

    // 3. Config push.
    const rounds: Record<string, unknown>[] = [];
    for (let round = 0; round < PUSH_ROUNDS; round++) {
      const next = benchConfig(round + 2);
      applied = new Map();
      saves.start = [];
      saves.end = [];
      appliedTarget = server.connectedAgents;
      pushHash = next.hash;
      const all = new Promise<void>((resolve) => {
        onAllApplied = resolve;
      });
      const pushProfiler = new WindowProfiler();
      if (PROFILE && round === 0) await pushProfiler.start();
      desiredState = { config: next };
      const t0 = now();
      const pushed = await server.refresh(); // pushes in slices; replies are handled meanwhile
      const refreshMs = now() - t0;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise((r) => (timer = setTimeout(r, PUSH_TIMEOUT_MS)))]);
      clearTimeout(timer);
      if (PROFILE && round === 0) {
        result.profilePush = await pushProfiler.stop(
          join(OUT_DIR, `opamp-server-push-${Date.now()}.cpuprofile`),
        );
      }
      const serverLatencies = [...applied.values()].map((t) => t - t0);
      for (const c of children) c.send({ type: "applyRecords" });
      const records = await Promise.all(children.map((c) => c.next("applyRecords", 30_000)));
      const received: number[] = [];
      const turnaround: number[] = [];
      for (const rec of records) {
        rec.hash.forEach((h, i) => {
          if (h !== next.hash) return;
          received.push((rec.receivedAt[i] as number) - t0);
          turnaround.push((rec.sentAt[i] as number) - (rec.receivedAt[i] as number));
        });
      }
      const total = serverLatencies.length ? Math.max(...serverLatencies) : Number.NaN;
      rounds.push({
        agents: appliedTarget,
        pushed,
        refreshMs: r1(refreshMs),
        appliedAtServer: applied.size,
        allApplied: applied.size >= appliedTarget,
        totalMs: r1(total),
        appliedAtServerMs: dist(serverLatencies),
        receivedByAgentMs: dist(received),
        agentTurnaroundMs: dist(turnaround),
        saveStartedMs: dist(saves.start.map((t) => t - t0)),
        saveRoundTripMs: dist(saves.end.map((t, i) => t - (saves.start[i] as number))),
      });
      phase(
        `push ${round + 1}: ${applied.size}/${appliedTarget} APPLIED, all within ${r1(total)} ms`,
      );
      pushHash = "";
      await sleep(1500);
    }
    result.push = rounds;

    phase("closing agents");
    await closeAgents(children);
    const closeDeadline = now() + 30_000;
    while (server.connectedAgents > 0 && now() < closeDeadline) await sleep(50);
    await server.close();
    serverClosed = true;

    // 5. Baseline.
    if (!SKIP_BASELINE) {
      phase("baseline: bare ws server");
      const b = new Child<ToBaseline, FromBaseline>("baseline", "./baseline-server.js", [
        "--expose-gc",
      ]);
      baseline = b;
      const { port: bport } = await b.next("listening", 30_000);
      await sleep(500);
      b.send({ type: "memory" });
      const bBefore = await b.next("memory", 30_000);
      const bConnected = await connectAgents(
        children,
        `ws://127.0.0.1:${bport}/v1/opamp`,
        addresses(octet2, 2, addressCount),
        undefined,
      );
      phase(`baseline connected: ${bConnected.opened} open, ${bConnected.failed} failed`);
      await sleep(IDLE_SETTLE_MS);
      b.send({ type: "memory" });
      const bAfter = await b.next("memory", 30_000);
      const bMemory = perAgentMemory(bBefore.memory, bAfter.memory, bAfter.connections);
      const bBlast = await blast(children, async (startAt, endAt) => {
        b.send({ type: "window", startAt, endAt, profile: PROFILE });
        const w = await b.next("window", endAt - now() + 60_000);
        if (w.profile) result.profileBaseline = w.profile;
        return w.sample;
      });
      result.baseline = {
        connect: {
          opened: bConnected.opened,
          failed: bConnected.failed,
          seconds: r1(bConnected.elapsedMs / 1000),
        },
        memory: bMemory,
        throughput: throughput(bBlast),
      };
      phase("baseline done");
      await closeAgents(children);
      await b.stop({ type: "exit" });
    }
  } finally {
    clearTimeout(watchdog);
    await Promise.all(children.map((c) => c.stop({ type: "exit" })));
    if (baseline) await baseline.stop({ type: "exit" });
    if (!serverClosed) await server.close().catch(() => {});
    await sleep(500);
    result.redisKeysDeleted = await deleteKeys(admin, prefix);
    redis.disconnect();
    redisBase.disconnect();
    admin.disconnect();
  }

  report(result, out);
  result.elapsedSeconds = r1((now() - started) / 1000);
  console.log(JSON.stringify(result));
}

// ---------------------------------------------------------------------------------------------
// Report

type Throughput = ReturnType<typeof throughput>;
type MemoryFigures = ReturnType<typeof perAgentMemory>;
interface PushRound {
  agents: number;
  pushed: number;
  refreshMs: number;
  appliedAtServer: number;
  allApplied: boolean;
  totalMs: number;
  appliedAtServerMs: ReturnType<typeof dist>;
  receivedByAgentMs: ReturnType<typeof dist>;
  agentTurnaroundMs: ReturnType<typeof dist>;
  saveStartedMs: ReturnType<typeof dist>;
  saveRoundTripMs: ReturnType<typeof dist>;
}

function report(result: Record<string, unknown>, out: (line?: string) => void): void {
  const memory = result.memory as MemoryFigures;
  const tp = result.throughput as Throughput;
  const redis = result.redis as {
    window: Record<string, number | Record<string, number>>;
    phase: Record<string, number | Record<string, number>>;
    longestFlushMs: number;
  };
  const rounds = result.push as PushRound[];
  const base = result.baseline as
    | { memory: MemoryFigures; throughput: Throughput; connect: { opened: number } }
    | undefined;
  const connect = result.connect as {
    opened: number;
    settled: number;
    failed: number;
    seconds: number;
    errors: string[];
  };

  out("");
  out("=== OpAMP server benchmark ===");
  out(
    `${result.agents} WebSocket agents in ${result.agentProcesses} processes over ${result.sourceAddresses} loopback source addresses; Node ${result.node}; Redis real; flushIntervalMs ${result.flushIntervalMs}; idle heartbeat ${result.idleHeartbeatSeconds} s`,
  );
  out(
    `connect: ${connect.opened} open, ${connect.settled} settled (config v1 APPLIED), ${connect.failed} failed, ${connect.seconds} s`,
  );
  if (connect.errors.length) out(`  errors: ${connect.errors.join("; ")}`);
  out("");
  out(`1. Memory per connected agent (${memory.agents} agents, idle, after gc: ${memory.gc})`);
  out(
    `   RSS   ${mb(memory.before.rss)} → ${mb(memory.after.rss)}: ${kb(memory.rssPerAgent)} per agent (${kb(memory.rssPerAgentExNewSpace)} without the new-space growth)`,
  );
  out(
    `   heap  ${mb(memory.before.heapUsed)} → ${mb(memory.after.heapUsed)}: ${kb(memory.heapUsedPerAgent)} per agent; external ${kb(memory.externalPerAgent)}, arrayBuffers ${kb(memory.arrayBuffersPerAgent)} per agent`,
  );
  out(
    `   committed V8 heap ${kb(memory.heapTotalPerAgent)} per agent (old spaces ${kb(memory.oldSpacesPerAgent)}, new space ${kb(memory.newSpacePerAgent)}); native (RSS − heap − array buffers) ${kb(memory.nativePerAgent)}`,
  );
  if (result.redisBytesPerAgent !== null)
    out(`   Redis: ~${result.redisBytesPerAgent} bytes per agent hash (MEMORY USAGE, sampled)`);
  if (base) {
    out(
      `   baseline (bare ws): RSS ${kb(base.memory.rssPerAgent)} (${kb(base.memory.rssPerAgentExNewSpace)} without new-space growth), heap used ${kb(base.memory.heapUsedPerAgent)}, committed ${kb(base.memory.heapTotalPerAgent)} (new space ${kb(base.memory.newSpacePerAgent)}), arrayBuffers ${kb(base.memory.arrayBuffersPerAgent)}, native ${kb(base.memory.nativePerAgent)} per connection → ratio ours/baseline RSS ${(memory.rssPerAgent / base.memory.rssPerAgent).toFixed(2)}`,
    );
  }
  out("");
  out(`2. Steady-state heartbeats (closed loop, every agent, ${tp.windowSeconds} s window)`);
  out(
    `   ours:     ${tp.messagesPerSecond} msg/s handled (agents counted ${tp.agentRepliesPerSecond} replies/s); server CPU ${tp.serverCpuMicrosPerMessage} µs/msg (user ${tp.serverCpuUserMicrosPerMessage}, sys ${tp.serverCpuSystemMicrosPerMessage}); server CPU ${(tp.serverCpuUtilisation * 100).toFixed(0)}% of a core, agents ${(tp.agentsCpuUtilisation * 100).toFixed(0)}%, machine ${busy(tp.machineBusy)} busy${others(tp.otherCpuCores)}`,
  );
  if (base) {
    const bt = base.throughput;
    out(
      `   baseline: ${bt.messagesPerSecond} msg/s handled (agents counted ${bt.agentRepliesPerSecond} replies/s); server CPU ${bt.serverCpuMicrosPerMessage} µs/msg (user ${bt.serverCpuUserMicrosPerMessage}, sys ${bt.serverCpuSystemMicrosPerMessage}); server CPU ${(bt.serverCpuUtilisation * 100).toFixed(0)}% of a core, agents ${(bt.agentsCpuUtilisation * 100).toFixed(0)}%, machine ${busy(bt.machineBusy)} busy${others(bt.otherCpuCores)}`,
    );
    out(
      `   ratio ours/baseline: CPU per message ${(tp.serverCpuMicrosPerMessage / bt.serverCpuMicrosPerMessage).toFixed(2)}×, msg/s ${(tp.messagesPerSecond / bt.messagesPerSecond).toFixed(2)}×`,
    );
  }
  out("");
  out("3. Config push (desired config changed, server.refresh(), until every APPLIED is back)");
  rounds.forEach((r, i) => {
    out(
      `   push ${i + 1}: ${r.appliedAtServer}/${r.agents} APPLIED, all within ${r.totalMs} ms; refresh() ${r.refreshMs} ms for ${r.pushed} pushes; APPLIED at server p50 ${r.appliedAtServerMs.p50} / p99 ${r.appliedAtServerMs.p99} ms; received by agent p50 ${r.receivedByAgentMs.p50} / p99 ${r.receivedByAgentMs.p99} ms; agent turnaround p99 ${r.agentTurnaroundMs.p99} ms`,
    );
    out(
      `           server began storing the APPLIED (batched Redis pipeline) p50 ${r.saveStartedMs.p50} / p99 ${r.saveStartedMs.p99} ms after refresh(); store round trip p50 ${r.saveRoundTripMs.p50} / p99 ${r.saveRoundTripMs.p99} ms`,
    );
  });
  out("");
  const w = redis.window;
  const p = redis.phase;
  out("4. Redis commands per heartbeat (steady state)");
  out(
    `   in the window (counted on the server's Redis client): ${w.commands} commands for ${w.heartbeats} heartbeats, of which ${w.flushHsets} HSETs of batched last-seen flushes: direct ${w.directPerHeartbeat}/heartbeat, amortized incl. flushes ${w.amortizedPerHeartbeat}/heartbeat`,
  );
  out(`     by command: ${JSON.stringify(w.commandsByName)}`);
  const idle = result.idle as {
    seconds: number;
    heartbeats: number;
    commandsByName: Record<string, number>;
    directPerHeartbeat: number;
    amortizedPerHeartbeat: number;
  };
  out(
    `   idle fleet (${result.idleHeartbeatSeconds} s heartbeats, ${idle.seconds} s before the blast): ${idle.heartbeats} heartbeats, commands ${JSON.stringify(idle.commandsByName)}: direct ${idle.directPerHeartbeat}, amortized ${idle.amortizedPerHeartbeat} per heartbeat (a heartbeat interval longer than flushIntervalMs leaves ~1 batched HSET per heartbeat)`,
  );
  out(
    `   whole phase (INFO commandstats, all Redis clients): ${p.commands} commands for ${p.heartbeats} messages, ${p.flushes} flushes writing ${p.flushedAgents} agents: direct ${p.directPerHeartbeat}, amortized ${p.amortizedPerHeartbeat} per heartbeat`,
  );
  out(
    `     by command: ${JSON.stringify(p.infoCommandstatsDelta)}; longest flush ${redis.longestFlushMs} ms`,
  );
  const hs = result.healthStream as
    | {
        messages: number;
        messagesPerSecond: number;
        serverCpuMicrosPerMessage: number;
        commandsByName: Record<string, number>;
        commands: number;
        flushHsets: number;
        directPerMessage: number;
        amortizedPerMessage: number;
        healthChangedEvents: number;
      }
    | undefined;
  if (hs) {
    out("");
    out("4b. Redis commands per message of a real-shaped health stream");
    out(
      `   every message carries a Collector's health (${hs.messagesPerSecond} msg/s, server CPU ${hs.serverCpuMicrosPerMessage} µs/msg): ${hs.commands} commands for ${hs.messages} messages, of which ${hs.flushHsets} HSETs of batched last-seen flushes: direct ${hs.directPerMessage}/message, amortized incl. flushes ${hs.amortizedPerMessage}/message; healthChanged events ${hs.healthChangedEvents}`,
    );
    out(`     by command: ${JSON.stringify(hs.commandsByName)}`);
  }
  for (const [label, key] of [
    ["OpAMP server in the blast window", "profileOurs"],
    ["baseline server in the blast window", "profileBaseline"],
    ["OpAMP server during push 1 (refresh() until all APPLIED)", "profilePush"],
  ] as const) {
    const prof = result[key] as ProfileSummary | undefined;
    if (!prof) continue;
    out("");
    out(
      `CPU profile of the ${label} (${prof.totalMs} ms sampled)${prof.path ? `, ${prof.path}` : ""}`,
    );
    out("   self time by function:");
    for (const e of prof.byFunction.slice(0, 20))
      out(`     ${e.selfPercent.toFixed(1).padStart(5)}%  ${e.name}`);
    out("   inclusive time:");
    for (const e of prof.inclusive.slice(0, 25))
      out(`     ${e.selfPercent.toFixed(1).padStart(5)}%  ${e.name}`);
    out("   self time by file:");
    for (const e of prof.byFile.slice(0, 12))
      out(`     ${e.selfPercent.toFixed(1).padStart(5)}%  ${e.name}`);
  }

  out("");
  out("Targets");
  const targets: Record<string, boolean> = {};
  targets.rssPerAgent = memory.rssPerAgent <= TARGET_RSS_PER_AGENT;
  out(
    `   [${targets.rssPerAgent ? "met" : "NOT met"}] ≤ 20 KB RSS per agent: ${kb(memory.rssPerAgent)} at ${memory.agents} agents (${kb(memory.rssPerAgentExNewSpace)} without new-space growth)`,
  );
  const pushOk = rounds.filter((r) => r.allApplied && r.totalMs <= TARGET_PUSH_MS).length;
  targets.push = rounds.length > 0 && pushOk === rounds.length;
  out(
    `   [${targets.push ? "met" : "NOT met"}] all ${memory.agents} agents APPLIED within 1 s of refresh(): ${pushOk}/${rounds.length} rounds (totals ${rounds.map((r) => `${r.totalMs} ms`).join(", ")})${memory.agents < 10_000 ? " — note: fewer than the 10 000 agents of the target" : ""}`,
  );
  targets.redisPerHeartbeat = (w.directPerHeartbeat as number) === 0;
  out(
    `   [${targets.redisPerHeartbeat ? "met" : "NOT met"}] 0 Redis commands per unchanged heartbeat: ${w.directPerHeartbeat} direct, ${w.amortizedPerHeartbeat} amortized with flushes`,
  );
  if (hs) {
    targets.redisPerHealthReport = hs.directPerMessage === 0;
    out(
      `   [${targets.redisPerHealthReport ? "met" : "NOT met"}] 0 Redis commands per timestamp-only health report: ${hs.directPerMessage} direct, ${hs.amortizedPerMessage} amortized with flushes`,
    );
  }
  if (base) {
    const ratio = tp.serverCpuMicrosPerMessage / base.throughput.serverCpuMicrosPerMessage;
    out(
      `   [info] per-message CPU ${ratio.toFixed(2)}× the bare ws baseline${ratio > 2 ? " (over 2×: run with BENCH_PROFILE=1 for the hot spots)" : ""}`,
    );
  }
  result.targets = targets;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
