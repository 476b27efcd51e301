/**
 * Hostile agents benchmark: `npm run bench:hostile`. Not part of `npm test`.
 *
 * The whole service (Git sync, rollouts, OpAMP, admin API, status writer) runs in this
 * process against examples/repo and real Redis. A child process plays the agents, so their
 * encoding costs do not count here:
 *   1. maximal reports: BENCH_AGENTS WebSocket agents each send BENCH_REPORTS different
 *      reports at every default limit (1 MiB of effective config in 4 YAML files of flat keys
 *      with secrets, 256 attributes, 1,024 health components). Measured meanwhile: the worst
 *      event-loop delay (perf_hooks) and the worst `/healthz` latency (polled every 50 ms).
 *      Target: both under 100 ms. Messages from 64 KiB on are decoded in worker threads
 *      (src/opamp/decode-pool.ts); the figures say how many were.
 *   2. a client that never reads: it sends BENCH_FLOOD_MIB of retried messages without
 *      reading a reply. Measured: this process's RSS growth while it floods, and after it is
 *      dropped (the bound: the send buffer and queue limits, not the flood size).
 *
 * Environment: BENCH_AGENTS=8, BENCH_REPORTS=4, BENCH_FLOOD_MIB=8, REDIS_URL, BENCH_LOG_LEVEL
 * (the service's log level, default error; lines go to stdout).
 */
import { type ChildProcess, execFileSync, fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { connectRedis, deleteKeysWithPrefix } from "../src/redis.js";
import { Service } from "../src/service/service.js";
import { loadSettings } from "../src/settings.js";
import { type HealthzPoller, pollHealthz } from "./healthz-poller.js";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 8);
const REPORTS = Number(process.env.BENCH_REPORTS ?? 4);
const FLOOD_MIB = Number(process.env.BENCH_FLOOD_MIB ?? 8);
const TARGET_MS = 100;
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "opamp-gitops-bench-hostile-"));
  const repo = join(root, "fleet");
  cpSync(fileURLToPath(new URL("../../examples/repo", import.meta.url)), repo, {
    recursive: true,
  });
  const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, stdio: "ignore" });
  git("init", "-q", "-b", "main");
  git("add", ".");
  git("-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "fleet");
  const prefix = `bench-hostile-${randomBytes(4).toString("hex")}`;
  const settings = loadSettings(
    {
      repo,
      stateDir: join(root, "state"),
      opampListen: "127.0.0.1:0",
      apiListen: "127.0.0.1:0",
      statusInterval: "1h", // flushed once, explicitly, after the reports
      redisPrefix: prefix,
    },
    process.env,
  );
  const redis = await connectRedis(settings.redisUrl);
  const service = new Service({
    settings,
    redis,
    logger: pino({ level: process.env.BENCH_LOG_LEVEL ?? "error" }),
  });
  const { opampPort, apiPort } = await service.start();
  const url = `ws://127.0.0.1:${opampPort}/v1/opamp`;
  let poller: HealthzPoller | undefined;
  try {
    console.log(
      `hostile agents benchmark: ${AGENTS} agents × ${REPORTS} maximal reports, then a ${FLOOD_MIB} MiB flood that is never read`,
    );
    const load = () =>
      loadavg()
        .map((l) => l.toFixed(1))
        .join(" ");
    console.log(
      `  machine: load average ${load()} (1/5/15 min) on ${availableParallelism()} cores`,
    );
    // 1. Maximal reports.
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    poller = pollHealthz(`http://127.0.0.1:${apiPort}/healthz`);
    const cpuBefore = threadCpu();
    const sent = await runChild(["reports", url, String(AGENTS), String(REPORTS)]);
    const cpuAfter = threadCpu();
    delay.disable();
    const healthzDuringReports = poller.worstMs;
    // Then the status writer renders and commits what the agents reported (Git objects of
    // ~1.5 MB per agent): measured apart, since it is the status writer's cost, not the port's.
    const flushDelay = monitorEventLoopDelay({ resolution: 10 });
    flushDelay.enable();
    // A failed flush is a result to report (the lock lost, the disk full), not a crash.
    const flushError = await service.status?.flush().then(
      () => undefined,
      (err: Error & { code?: string }) => `${err.code ?? err.name}: ${err.message}`,
    );
    flushDelay.disable();
    await poller.stop();
    const worstDelay = delay.max / 1e6;
    const pool = service.opamp.decoder.stats;
    console.log(
      `  reports sent: ${sent.messages}, ${mb(sent.bytes)} in all; decoded in workers: ${pool.offloaded}, on the event loop: ${pool.inline}; load average after: ${load()}`,
    );
    if (cpuBefore && cpuAfter) {
      const loop = cpuAfter.loop - cpuBefore.loop;
      const others = cpuAfter.others - cpuBefore.others;
      console.log(
        `  CPU time while agents report: event-loop thread ${loop} ms (${(loop / sent.messages).toFixed(1)} ms per report), other threads ${others} ms`,
      );
    }
    console.log(
      `  worst event-loop delay while agents report: ${worstDelay.toFixed(0)} ms (p99 ${(delay.percentile(99) / 1e6).toFixed(0)} ms); target < ${TARGET_MS} ms ${worstDelay < TARGET_MS ? "✓" : "✗"}`,
    );
    console.log(
      `  worst /healthz latency while agents report: ${healthzDuringReports.toFixed(0)} ms; target < ${TARGET_MS} ms ${healthzDuringReports < TARGET_MS ? "✓" : "✗"}`,
    );
    console.log(
      `  status flush of those reports: ${flushError ? `FAILED (${flushError}); ` : ""}worst event-loop delay ${(flushDelay.max / 1e6).toFixed(0)} ms; worst /healthz latency overall ${poller.worstMs.toFixed(0)} ms over ${poller.polls} polls${poller.failures > 0 ? `, ${poller.failures} failed (${poller.firstError})` : ""}`,
    );

    // 2. A client that never reads (a raw socket: it does not even answer pings).
    if (FLOOD_MIB <= 0) return;
    for (let i = 0; i < 3; i++) {
      global.gc?.();
      await new Promise((r) => setTimeout(r, 200));
    }
    const memBefore = process.memoryUsage();
    const before = memBefore.rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const ws = service.opamp.wsStats;
    const judged = () => ws.slowReaders + ws.deadPeers + ws.flooders;
    const judgedBefore = judged();
    const floodStarted = Date.now();
    let flood: (ChildResult & { dropped?: boolean }) | undefined;
    let sentAfterS = 0;
    const running = startChild(["flood", url, String(FLOOD_MIB)]);
    void running.then(({ result }) => {
      flood = result;
      sentAfterS = (Date.now() - floodStarted) / 1000;
    });
    // Dropped when its unread replies pass the send buffer, or (replies small enough for the
    // kernel's socket buffers) when it misses a ping: within two ping intervals (60 s).
    const WAIT_MS = 180_000;
    let tick = 0;
    while (judged() === judgedBefore && Date.now() - floodStarted < WAIT_MS) {
      await new Promise((r) => setTimeout(r, 100));
      if (process.env.BENCH_TRACE && ++tick % 50 === 0)
        console.log(
          `    ${((Date.now() - floodStarted) / 1000).toFixed(0)} s: ${JSON.stringify(ws)} agents ${service.opamp.connectedAgents}`,
        );
    }
    const dropped = judged() > judgedBefore;
    const droppedAfterS = (Date.now() - floodStarted) / 1000;
    const { child } = await running;
    child.kill();
    clearInterval(sampler);
    await new Promise((r) => setTimeout(r, 500));
    global.gc?.();
    const memAfter = process.memoryUsage();
    const after = memAfter.rss;
    console.log(
      `  never-reading client: sent ${mb(flood?.bytes ?? 0)} in ${flood?.messages ?? 0} messages (in ${sentAfterS.toFixed(0)} s); ${dropped ? `dropped by the server after ${droppedAfterS.toFixed(0)} s` : `NOT dropped within ${WAIT_MS / 1000} s`} (drops: unread replies past the send buffer ${ws.slowReaders}, missed pings ${ws.deadPeers}, over 4,096 messages in flight ${ws.flooders}; reads paused ${ws.pausedReads} times, at most ${ws.maxPending} messages waiting)`,
    );
    console.log(
      `  RSS growth under the never-reading client: ${mb(peak - before)} at the peak; ${mb(after - before)} after it was dropped (of which JS heap ${mb(memAfter.heapUsed - memBefore.heapUsed)}, buffers ${mb(memAfter.external - memBefore.external)})`,
    );
  } finally {
    await poller?.stop();
    await service.close();
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * CPU time of this process' threads, in ms, from Linux /proc (undefined elsewhere): the
 * event-loop thread, and all others (decode and render workers, GC helpers, libuv). Unlike
 * the delays, which grow with the machine's load, CPU time says what the work costs.
 */
function threadCpu(): { loop: number; others: number } | undefined {
  try {
    let loop = 0;
    let others = 0;
    for (const tid of readdirSync("/proc/self/task")) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // utime + stime (fields 14 and 15), in clock ticks of 10 ms (CLK_TCK 100 on Linux).
      const ms = (Number(fields[11]) + Number(fields[12])) * 10;
      if (Number(tid) === process.pid) loop += ms;
      else others += ms;
    }
    return { loop, others };
  } catch {
    return undefined;
  }
}

interface ChildResult {
  messages: number;
  bytes: number;
}

/** Forks the agents process; resolves with its first report (it may keep running). */
async function startChild(args: string[]): Promise<{ result: ChildResult; child: ChildProcess }> {
  const script = fileURLToPath(new URL("./hostile-agents.js", import.meta.url));
  const child = fork(script, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const result = await new Promise<ChildResult>((resolve, reject) => {
    child.once("message", (m: ChildResult) => resolve(m));
    child.once("exit", (code) => reject(new Error(`agents exited with ${code}`)));
  });
  return { result, child };
}

async function runChild(args: string[]): Promise<ChildResult> {
  return (await startChild(args)).result;
}

await main();
process.exit(0);
