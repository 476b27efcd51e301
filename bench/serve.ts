/**
 * `npm run bench:serve`: the real `serve` (Redis, rollouts, status branch on) against a peer
 * built on the opamp-go server library (bench/opamp-go-server, built here with the Go
 * toolchain), under the same load in one run: the same forked agent processes
 * (bench/agents.ts) connect, heartbeat and reconnect against each side in turn.
 *
 * Printed per side, and as ratios serve ÷ peer:
 *   - connect + first config: all N agents open a WebSocket, send their full state and are
 *     sent a config (then report APPLIED); wall time until every agent holds one;
 *   - heartbeat replies per second: every agent heartbeats in a closed loop (next message when
 *     the reply came), replies counted over a window;
 *   - RSS per connected agent: (RSS of the server's processes once all N are connected − RSS
 *     before the first of the N) ÷ N. Before that baseline each server gets a warm-up cohort
 *     (BENCH_WARMUP agents of their own, from a process of their own: bench/serve-load.ts
 *     warmUp) that connects and is configured, and, for serve, whose agents a status flush
 *     rendered; it stays connected, silent, while the N connect; for serve the second reading
 *     waits until a status flush rendered the N as well (its steady state). So what a server starts
 *     once, on first use, is in the baseline and not counted per agent: serve's status render
 *     worker threads (started at the first flush), code compiled on the first messages, pools
 *     grown to their first size. The same cohort and RSS readings for each side; the phase
 *     output prints the cohort's own growth and the server's thread count at both readings
 *     (a thread started during the N shows there). Every reading waits until the RSS stops
 *     moving (3 steps of 1 s in a row within 1 %, at most 30 s: settledRss), for each side
 *     alike, so neither is caught mid-burst. For serve with workers, the primary and all
 *     workers; Redis is not counted (the peer has none); and again BENCH_QUIET_SECONDS later
 *     with no message in between (garbage of the burst that each runtime gives back by then);
 *     serve's lines below it split that growth (its /metrics): V8 heap in use, live objects
 *     and garbage not yet collected, and external memory (Buffers); `node
 *     dist/bench/serve-memory.js` attributes the live part by object kind (heap snapshots);
 *   - reconnect storm: every socket is cut at once and all N agents reconnect at once (same
 *     uids); wall time until every agent was answered again. Agents honour Retry-After (503)
 *     and UNAVAILABLE's retry interval.
 *   - restart storm: then the server is stopped and started again (a new process with the same
 *     state: serve keeps its Redis prefix and state dir) and, once it serves, all N agents
 *     reconnect at once: a replica restart behind a load balancer. Its code is cold (nothing
 *     compiled yet), where the reconnect storm meets a server warmed by everything before;
 *     printed with the time the new process took to serve and its CPU per agent;
 *   - minor page faults (/proc/<pid>/stat minflt) per agent connected: pages touched anew,
 *     among them pages given back to the OS before the burst (malloc_trim) and faulted in again;
 *   - write syscalls (/proc/<pid>/io syscw: sockets to agents and to Redis, files) per agent
 *     connected and per heartbeat answered;
 *   - serve only: Redis commands (INFO commandstats) and Redis socket reads
 *     (total_reads_processed: a read per batch a client wrote, so about its round trips) per
 *     agent connected, per heartbeat answered and per agent of the storm, whole service (serve
 *     runs on a private redis-server; the top commands per phase go to stderr).
 *   - what shared the cores in the connect window: CPU per agent of the agent processes (the
 *     load) and, for serve, of Redis (INFO cpu), and the share of the machine's cores busy
 *     (/proc/stat). On a machine whose cores the three fill, connect's wall time is about
 *     their CPU summed ÷ the cores, so a server's CPU counts only beside the load's.
 *
 * Before the first round the agent processes run one unmeasured pass against a throwaway
 * Node floor (warm-load.ts, which says why), so the peer, measured first, does not meet them
 * cold.
 *
 * Environment:
 *   BENCH_AGENTS=3000           agents (BENCH_AGENTS=10000 for the issue's figure)
 *   BENCH_AGENT_PROCESSES=2     forked agent processes (≤ ~15 000 sockets each)
 *   BENCH_WARMUP=600            warm-up agents connected before the RSS baseline (0: none;
 *                               600: enough to start every render worker on 2 cores, and
 *                               more than serve's render worker renders before it is
 *                               stopped once idle (RENDER_WORKER_RECYCLE_AFTER), so the
 *                               baseline and the reading find the same threads)
 *   BENCH_WORKERS=1,2           serve runs, one per --workers value
 *   BENCH_BLAST_SECONDS=5       heartbeat window
 *   BENCH_CONCURRENCY=200       agents connecting at once per agent process
 *   BENCH_PEER=0                skip the opamp-go peer (serve alone; ratios print n/a)
 *   BENCH_FLOOR=1               also measure the Node floor (bench/node-floor-server.ts: the
 *                               peer's logic on plain `ws`, one thread, no Redis), printed as
 *                               a column before serve's: what the runtime alone costs
 *   BENCH_ROUNDS=1              rounds, each measuring the peer and every serve in turn; over
 *                               more than one, each figure prints as its median (range) and
 *                               each ratio as the median (range) of the rounds' own ratios
 *                               (bench/serve-table.ts): one run's ratio moves by ±20 % here
 *   BENCH_REDIS_URL             Redis for serve (default: a private redis-server started here)
 *   BENCH_QUIET_SECONDS=15      RSS read again this long after the RSS reading, no message
 *                               in between (what each server gives back after the burst)
 *   BENCH_WARMUP_QUIET_SECONDS=0 quiet after the warm-up cohort, before the baseline and the
 *                               N agents connect. With 0 the connect starts right after the
 *                               warm-up's status flush, so serve's next flush (every 10 s)
 *                               falls after it; with 15 one falls inside the connect window
 *                               and its render of the agents connected so far counts in CPU
 *                               per agent connected (+500-800 µs per agent here)
 *   BENCH_NODE_ARGS=""          extra options for serve's node, space-separated (to compare V8
 *                               settings; the peer is not affected)
 *   BENCH_PROFILE=1             serve --workers 1 runs under node --cpu-prof (profiles in
 *                               bench/out/serve-profile/)
 *   BENCH_MALLOC_ARENA_MAX=2    serve runs with MALLOC_ARENA_MAX set to this, as README's
 *                               "Memory allocator" tells production to (`serve --workers N`
 *                               sets it for its workers itself; a single process takes it from
 *                               its environment); empty: serve runs without it. Default: the
 *                               bench's own MALLOC_ARENA_MAX when set, else 2
 *   LD_PRELOAD=<libjemalloc.so> serve (and everything else started here) runs with jemalloc;
 *                               the malloc serve's processes ran with is printed under the
 *                               table (RSS per agent depends on it, README "Memory allocator")
 */
import { type ChildProcess, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { initRepository } from "../src/sync/init-repo.js";
import { Child } from "./child.js";
import { sleep } from "./ipc.js";
import { machineCpuMs } from "./machine-cpu.js";
import { callDelta, commandCalls, redisCpuMs, startPrivateRedis } from "./redis-tools.js";
import {
  type AgentsChild,
  benchConfigPath,
  connectAll,
  heartbeats,
  type LoadOptions,
  makeRepo,
  phase,
  ROOT,
  settledRss,
  startServe,
  statusCommitsSince,
  statusFilesRendered,
  statusHead,
  stopProcess,
  treeAllocators,
  treeCpuMs,
  treeMainThreadsCpuMs,
  treeMinorFaults,
  treeRss,
  treeThreads,
  treeUserMs,
  treeWriteSyscalls,
  warmUp,
} from "./serve-load.js";
import { type Figures, kb, type RedisCost, type Round, table } from "./serve-table.js";
import { startFloor, startListening, warmLoad } from "./warm-load.js";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 3000);
const PROCESSES = Number(process.env.BENCH_AGENT_PROCESSES ?? 2);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 600);
const WORKERS = (process.env.BENCH_WORKERS ?? "1,2").split(",").map(Number);
const BLAST_MS = Number(process.env.BENCH_BLAST_SECONDS ?? 5) * 1000;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 200);
const PROFILE = process.env.BENCH_PROFILE === "1";
const QUIET_MS = Number(process.env.BENCH_QUIET_SECONDS ?? 15) * 1000;
const WARMUP_QUIET_MS = Number(process.env.BENCH_WARMUP_QUIET_SECONDS ?? 0) * 1000;
/** MALLOC_ARENA_MAX of serve's environment ("" = unset): BENCH_MALLOC_ARENA_MAX above. */
const ARENAS = process.env.BENCH_MALLOC_ARENA_MAX ?? process.env.MALLOC_ARENA_MAX ?? "2";
const { MALLOC_ARENA_MAX: _, ...inherited } = process.env;
const SERVE_ENV: NodeJS.ProcessEnv =
  ARENAS === "" ? inherited : { ...inherited, MALLOC_ARENA_MAX: ARENAS };
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
const WITH_PEER = process.env.BENCH_PEER !== "0";
const WITH_FLOOR = process.env.BENCH_FLOOR === "1";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const LOAD: LoadOptions = { agents: AGENTS, concurrency: CONCURRENCY, blastMs: BLAST_MS };

/** Counters of the private Redis serve runs on: commands by name, and socket reads. */
async function redisCounters(redis: Redis): Promise<{ calls: Map<string, number>; reads: number }> {
  const calls = await commandCalls(redis);
  const stats = await redis.info("stats");
  return { calls, reads: Number(/^total_reads_processed:(\d+)/m.exec(stats)?.[1] ?? 0) };
}

/** Per-operation Redis cost between two counter readings (minus the INFO calls themselves). */
function redisCost(
  label: string,
  before: Awaited<ReturnType<typeof redisCounters>>,
  after: Awaited<ReturnType<typeof redisCounters>>,
  ops: number,
): RedisCost {
  const delta = callDelta(before.calls, after.calls).filter(([k]) => k !== "" && k !== "info");
  const commands = delta.reduce((n, [, v]) => n + v, 0);
  const top = delta.slice(0, 8).map(([k, v]) => `${k} ${(v / ops).toFixed(2)}`);
  phase(`${label}: Redis per op: ${top.join(", ")}`);
  return { commands: commands / ops, reads: (after.reads - before.reads - 2) / Math.max(ops, 1) };
}

/** V8 heap used and external memory of a serve process, from its /metrics. */
async function serveMemory(apiPort: number): Promise<{
  /** Time in GC pauses since start (all kinds; major: mark-compact), seconds. */
  gcSeconds: number;
  majorGcSeconds: number;
  quick: number;
  quiet: number;
  heapUsed: number;
  heapTotal: number;
  /** Of heapTotal, V8's young generation (new space): grown to its cap by a burst, then shrunk. */
  newSpaceTotal: number;
  external: number;
}> {
  const text = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
  const value = (name: string) =>
    Number(new RegExp(`^opamp_gitops_${name} (\\S+)`, "m").exec(text)?.[1] ?? Number.NaN);
  const gc = (kind: string) =>
    Number(
      new RegExp(
        `^opamp_gitops_nodejs_gc_duration_seconds_sum\\{kind="${kind}"\\} (\\S+)`,
        "m",
      ).exec(text)?.[1] ?? 0,
    );
  return {
    gcSeconds: gc("major") + gc("minor") + gc("incremental") + gc("weakcb"),
    majorGcSeconds: gc("major"),
    quick: value("opamp_quick_heartbeats_total"),
    quiet: value("opamp_quiet_heartbeats_total"),
    heapUsed: value("nodejs_heap_size_used_bytes"),
    heapTotal: value("nodejs_heap_size_total_bytes"),
    newSpaceTotal: value('nodejs_heap_space_size_total_bytes\\{space="new"\\}'),
    external: value("nodejs_external_memory_bytes"),
  };
}

/**
 * Stops the measured server and starts it again (a new process, the same state); resolves
 * once the new one serves: its pid, its agent URL and how long it took to serve, ms.
 */
type Restart = () => Promise<{ pid: number; url: string; readyMs: number }>;

/**
 * Runs the load against one server (`pid` for RSS, `url` for agents): first the warm-up
 * cohort from `warm` (BENCH_WARMUP agents; with `statusRepo`, until a status flush rendered
 * them), then the measured agents from `children`.
 */
async function measure(
  name: string,
  children: AgentsChild[],
  warm: AgentsChild,
  pid: number,
  url: string,
  restart: Restart,
  serve?: { redis: Redis; apiPort: number; statusRepo: string },
): Promise<Figures> {
  const redis = serve?.redis;
  const apiPort = serve?.apiPort;
  const count = async () => (redis ? await redisCounters(redis) : undefined);
  let rss0: number;
  if (WARMUP > 0) {
    phase(`${name}: warm-up: ${WARMUP} agents`);
    const w = await warmUp(warm, pid, url, {
      agents: WARMUP,
      firstIndex: AGENTS,
      quietMs: WARMUP_QUIET_MS,
      ...(serve ? { statusRepo: serve.statusRepo } : {}),
    });
    rss0 = w.rss;
    phase(
      `${name}: warm-up: ${w.settled}/${w.agents} configured${w.statusFiles === undefined ? "" : `, ${w.statusFiles} status files rendered`}; RSS +${(w.rssGrowth / 2 ** 20).toFixed(1)} MB (${(w.rssGrowth / w.agents / 1024).toFixed(1)} KB/agent with the fixed costs), threads ${w.threadsBefore} → ${w.threads}; baseline ${(rss0 / 2 ** 20).toFixed(1)} MB`,
    );
  } else rss0 = (await settledRss(pid)).rss;
  const threads0 = treeThreads(pid);
  const mem0 = apiPort === undefined ? undefined : await serveMemory(apiPort);
  phase(`${name}: connecting ${AGENTS} agents`);
  const r0 = await count();
  // What else ran on the same cores in the window: the agent processes and Redis (serve only).
  const loadCpu = () =>
    children.reduce((ms, ch) => ms + (ch.proc.pid ? treeCpuMs(ch.proc.pid) : 0), 0);
  const redisCpu0 = redis ? await redisCpuMs(redis) : 0;
  const load0 = loadCpu();
  const machine0 = machineCpuMs();
  const cpu0 = treeCpuMs(pid);
  const user0 = treeUserMs(pid);
  const main0 = treeMainThreadsCpuMs(pid);
  const w0 = treeWriteSyscalls(pid);
  const f0 = treeMinorFaults(pid);
  const head0 = serve ? statusHead(serve.statusRepo) : undefined;
  const c = await connectAll(children, [url], false, LOAD);
  const cpu1 = treeCpuMs(pid);
  const machine1 = machineCpuMs();
  const load1 = loadCpu();
  const redisCpu1 = redis ? await redisCpuMs(redis) : 0;
  const user1 = treeUserMs(pid);
  const main1 = treeMainThreadsCpuMs(pid);
  const w1 = treeWriteSyscalls(pid);
  const f1 = treeMinorFaults(pid);
  const r1 = await count();
  const commits = serve ? statusCommitsSince(serve.statusRepo, head0) : undefined;
  phase(
    `${name}: ${c.settled}/${AGENTS} configured in ${(c.elapsedMs / 1000).toFixed(2)} s (${c.shed ?? 0} shed and retried, ${c.failed} failed) ${c.errors.slice(0, 3).join("; ")}`,
  );
  // Serve's steady state includes its status flush of these agents (what it keeps of them):
  // the reading comes after a flush rendered them all, not by chance before or after it.
  const flushStart = Date.now();
  const files = serve ? await statusFilesRendered(serve.statusRepo, head0, c.settled) : 0;
  const cpuRendered = treeCpuMs(pid);
  if (serve)
    phase(
      `${name}: ${files} status files rendered ${((Date.now() - flushStart) / 1000).toFixed(1)} s after the last agent was configured (${commits} status commits while they connected)`,
    );
  const { rss: rss1, waitedMs } = await settledRss(pid);
  const threads1 = treeThreads(pid);
  phase(
    `${name}: RSS settled ${(waitedMs / 1000).toFixed(1)} s later: ${(rss1 / 2 ** 20).toFixed(1)} MB, +${((rss1 - rss0) / AGENTS / 1024).toFixed(1)} KB/agent; threads ${threads0} → ${threads1}`,
  );
  // serve stops its status render worker soon after a big flush (agent-render.ts), so the
  // reading may lack a thread the baseline had: its isolate's own memory then lowers RSS
  // per agent though it is no per-agent cost. Said, so the figure is not over-read.
  if (threads1 < threads0)
    phase(
      `${name}: note: ${threads0 - threads1} thread(s) fewer than at the baseline (a worker stopped): RSS per agent leaves out that worker's own memory (tens of MB, a fixed cost); compare the absolute RSS too`,
    );
  const mem1 = apiPort === undefined ? undefined : await serveMemory(apiPort);
  // The same agents after a quiet while (no message): what the server gives back once the
  // burst is over (V8's memory reducer starts 8 s after a GC; Go's scavenger returns pages
  // in the background). Read the same way for each side.
  await sleep(QUIET_MS);
  const rssQuiet = treeRss(pid);
  const memQuiet = apiPort === undefined ? undefined : await serveMemory(apiPort);
  phase(
    `${name}: ${QUIET_MS / 1000} s later: RSS ${(rssQuiet / 2 ** 20).toFixed(1)} MB, +${((rssQuiet - rss0) / AGENTS / 1024).toFixed(1)} KB/agent${memQuiet && mem0 ? `; V8 heap used ${kb((memQuiet.heapUsed - mem0.heapUsed) / AGENTS)}, committed ${kb((memQuiet.heapTotal - mem0.heapTotal) / AGENTS)}, external ${kb((memQuiet.external - mem0.external) / AGENTS)} per agent` : ""}`,
  );
  const r2 = await count();
  const cpu2 = treeCpuMs(pid);
  const w2 = treeWriteSyscalls(pid);
  const hb = await heartbeats(children, BLAST_MS);
  const cpu3 = treeCpuMs(pid);
  const w3 = treeWriteSyscalls(pid);
  // After the housekeeping interval (5 s), so the blast's batched last-seen writes are counted.
  await sleep(redis ? 5500 : 0);
  const r3 = await count();
  phase(`${name}: ${Math.round(hb.perSecond)} heartbeat replies/s`);
  const mem2 = apiPort === undefined ? undefined : await serveMemory(apiPort);
  if (memQuiet && mem2)
    phase(
      `${name}: of the window's heartbeats ${mem2.quick - memQuiet.quick} quick, ${mem2.quiet - memQuiet.quiet} of them without asking the desired state (metrics of the answering process)`,
    );
  const cpu4 = treeCpuMs(pid);
  const storm = await connectAll(children, [url], true, LOAD);
  const cpu5 = treeCpuMs(pid);
  await sleep(redis ? 5500 : 0);
  const r4 = await count();
  phase(
    `${name}: storm: ${storm.settled}/${AGENTS} answered again in ${(storm.elapsedMs / 1000).toFixed(2)} s, ${storm.shed} shed and retried, ${storm.failed} failed ${storm.errors.slice(0, 3).join("; ")}`,
  );
  // A replica restart: the server stops (its agents see their sockets close), a new process
  // starts with the same state (serve: same Redis prefix and state dir) and, once it serves,
  // every agent comes back at once, as agents held back by a load balancer would. Its code is
  // cold: what V8 compiled for the old process is gone.
  phase(`${name}: restarting the server`);
  const next = await restart();
  phase(`${name}: restarted, serving ${(next.readyMs / 1000).toFixed(2)} s after its start`);
  const cpu6 = treeCpuMs(next.pid);
  const cold = await connectAll(children, [next.url], true, LOAD);
  const cpu7 = treeCpuMs(next.pid);
  phase(
    `${name}: restart storm: ${cold.settled}/${AGENTS} answered again in ${(cold.elapsedMs / 1000).toFixed(2)} s, ${cold.shed} shed and retried, ${cold.failed} failed ${cold.errors.slice(0, 3).join("; ")}`,
  );
  const all = WARMUP > 0 ? [...children, warm] : children;
  for (const child of all) child.send({ type: "closeAgents", timeoutMs: 5000 });
  await Promise.all(all.map((ch) => ch.next("agentsClosed", 30_000)));
  return {
    name,
    connectMs: c.elapsedMs,
    settled: c.settled,
    heartbeatsPerSecond: hb.perSecond,
    connectCpuMicros: ((cpu1 - cpu0) * 1000) / AGENTS,
    connectUserMicros: ((user1 - user0) * 1000) / AGENTS,
    connectLoadCpuMicros: ((load1 - load0) * 1000) / AGENTS,
    connectMachineBusy: (machine1.busy - machine0.busy) / (machine1.total - machine0.total),
    ...(serve
      ? {
          connectRenderCpuMicros: ((cpuRendered - cpu0) * 1000) / AGENTS,
          connectMainThreadMicros: ((main1 - main0) * 1000) / AGENTS,
          connectRedisCpuMicros: ((redisCpu1 - redisCpu0) * 1000) / AGENTS,
          statusCommitsInConnect: commits ?? 0,
        }
      : {}),
    heartbeatCpuMicros: hb.replies > 0 ? ((cpu3 - cpu2) * 1000) / hb.replies : 0,
    stormCpuMicros: ((cpu5 - cpu4) * 1000) / AGENTS,
    connectWrites: (w1 - w0) / AGENTS,
    connectFaults: (f1 - f0) / AGENTS,
    heartbeatWrites: hb.replies > 0 ? (w3 - w2) / hb.replies : 0,
    rssPerAgentBytes: (rss1 - rss0) / AGENTS,
    rssQuietPerAgentBytes: (rssQuiet - rss0) / AGENTS,
    stormMs: storm.elapsedMs,
    stormSettled: storm.settled,
    stormShed: storm.shed ?? 0,
    restartReadyMs: next.readyMs,
    coldStormMs: cold.elapsedMs,
    coldStormSettled: cold.settled,
    coldStormShed: cold.shed ?? 0,
    coldStormCpuMicros: ((cpu7 - cpu6) * 1000) / AGENTS,
    ...(serve ? { allocator: treeAllocators(pid) } : {}),
    ...(mem0 && mem1
      ? {
          heapUsedPerAgentBytes: (mem1.heapUsed - mem0.heapUsed) / AGENTS,
          heapTotalPerAgentBytes: (mem1.heapTotal - mem0.heapTotal) / AGENTS,
          newSpacePerAgentBytes: (mem1.newSpaceTotal - mem0.newSpaceTotal) / AGENTS,
          externalPerAgentBytes: (mem1.external - mem0.external) / AGENTS,
        }
      : {}),
    ...(mem0 && mem1 && memQuiet && mem2
      ? {
          gc: {
            connect: ((mem1.gcSeconds - mem0.gcSeconds) * 1e6) / AGENTS,
            connectMajor: ((mem1.majorGcSeconds - mem0.majorGcSeconds) * 1e6) / AGENTS,
            heartbeat:
              hb.replies > 0 ? ((mem2.gcSeconds - memQuiet.gcSeconds) * 1e6) / hb.replies : 0,
          },
        }
      : {}),
    ...(r0 && r1 && r2 && r3 && r4
      ? {
          redis: {
            connect: redisCost(`${name}: connect`, r0, r1, AGENTS),
            heartbeat: redisCost(`${name}: heartbeat`, r2, r3, hb.replies),
            storm: redisCost(`${name}: storm`, r3, r4, AGENTS),
          },
        }
      : {}),
  };
}

/** Builds the peer (bench/opamp-go-server) into `dir` with the Go toolchain; returns its path. */
function buildPeer(dir: string): string {
  const bin = join(dir, "opamp-go-server");
  execFileSync("go", ["build", "-o", bin, "."], {
    cwd: join(ROOT, "bench", "opamp-go-server"),
    stdio: "inherit",
  });
  return bin;
}

/** Stands in for the peer when BENCH_PEER=0: every ratio prints n/a. */
const NO_PEER: Figures = {
  name: "opamp-go server (not run)",
  connectMs: 0,
  settled: AGENTS,
  heartbeatsPerSecond: 0,
  rssPerAgentBytes: 0,
  rssQuietPerAgentBytes: 0,
  stormMs: 0,
  stormSettled: AGENTS,
  stormShed: 0,
  stormCpuMicros: 0,
  restartReadyMs: 0,
  coldStormMs: 0,
  coldStormSettled: AGENTS,
  coldStormShed: 0,
  coldStormCpuMicros: 0,
  connectCpuMicros: 0,
  connectUserMicros: 0,
  connectLoadCpuMicros: 0,
  connectMachineBusy: 0,
  heartbeatCpuMicros: 0,
  connectWrites: 0,
  connectFaults: 0,
  heartbeatWrites: 0,
};

/**
 * One round: the peer (unless BENCH_PEER=0), the Node floor (with BENCH_FLOOR=1), then serve
 * with each BENCH_WORKERS value, each started, measured and stopped in turn (serve on its own
 * Redis prefix per round).
 */
async function measureRound(
  dir: string,
  repo: string,
  redisUrl: string,
  redis: Redis,
  measured: AgentsChild[],
  warm: AgentsChild,
  round: number,
): Promise<Round> {
  const config = benchConfigPath(repo);
  /** Measures a server that `start` starts (again on a restart), and stops it. */
  const measureStarted = async (
    name: string,
    start: () => Promise<{ proc: ChildProcess; port: number }>,
  ) => {
    let current = await start();
    const url = () => `ws://127.0.0.1:${current.port}/v1/opamp`;
    const restart: Restart = async () => {
      await stopProcess(current.proc);
      const t0 = Date.now();
      current = await start();
      return { pid: current.proc.pid as number, url: url(), readyMs: Date.now() - t0 };
    };
    try {
      return await measure(name, measured, warm, current.proc.pid as number, url(), restart);
    } finally {
      await stopProcess(current.proc);
    }
  };
  const peerBin = WITH_PEER ? buildPeer(dir) : "";
  const peer = WITH_PEER
    ? await measureStarted("opamp-go server", () =>
        startListening("opamp-go peer", peerBin, ["-config", config]),
      )
    : NO_PEER;
  const serves: Figures[] = [];
  if (WITH_FLOOR)
    serves.push(
      await measureStarted("node ws floor", () =>
        // With serve's node options and allocator, so the floor runs as serve's node does.
        startFloor(config, { nodeArgs: NODE_ARGS, env: SERVE_ENV }),
      ),
    );
  for (const workers of WORKERS) {
    // A restart keeps the prefix and the state dir: the same service, a new process.
    const start = () =>
      startServe(dir, repo, {
        workers,
        prefix: `bench-serve-${process.pid}-${workers}-${round}`,
        instance: `${workers}-${round}`,
        profile: PROFILE && workers === 1 && round === 1,
        nodeArgs: NODE_ARGS,
        env: SERVE_ENV,
        extra: ["--redis", redisUrl],
      });
    let s = await start();
    const restart: Restart = async () => {
      const code = await stopProcess(s.proc);
      if (code !== 0) phase(`serve --workers ${workers} exited with ${code} on its restart`);
      const t0 = Date.now();
      s = await start();
      return {
        pid: s.proc.pid as number,
        url: `ws://127.0.0.1:${s.port}/v1/opamp`,
        readyMs: Date.now() - t0,
      };
    };
    try {
      serves.push(
        await measure(
          `serve --workers ${workers}`,
          measured,
          warm,
          s.proc.pid as number,
          `ws://127.0.0.1:${s.port}/v1/opamp`,
          restart,
          { redis, apiPort: s.apiPort, statusRepo: repo },
        ),
      );
    } finally {
      const code = await stopProcess(s.proc);
      if (code !== 0) phase(`serve --workers ${workers} exited with ${code}`);
    }
  }
  return { peer, serves };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-serve-"));
  const children: AgentsChild[] = [];
  const load0 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const redisServer = await startPrivateRedis();
  const redis = new Redis(redisServer.url);
  try {
    const repo = makeRepo(dir);
    await initRepository(repo);
    for (let i = 0; i < PROCESSES; i++) children.push(new Child(`agents-${i}`, "./agents.js"));
    const warm: AgentsChild = new Child("agents-warm-up", "./agents.js");
    children.push(warm);
    const measured = children.slice(0, PROCESSES);
    await warmLoad(measured, benchConfigPath(repo), LOAD);
    const rounds: Round[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      if (ROUNDS > 1) phase(`round ${round} of ${ROUNDS}`);
      rounds.push(await measureRound(dir, repo, redisServer.url, redis, measured, warm, round));
    }
    const load1 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    const heading = `from ${PROCESSES} agent processes${NODE_ARGS.length > 0 ? ` (serve's node ${NODE_ARGS.join(" ")})` : ""}, after ${WARMUP} warm-up agents (connected before the RSS baseline); load average ${load0} before, ${load1} after`;
    const lines = table(rounds, { agents: AGENTS, heading, quietSeconds: QUIET_MS / 1000 });
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await Promise.all(children.map((c) => c.stop({ type: "exit" })));
    redis.disconnect();
    await redisServer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
