/**
 * What bench/serve.ts and bench/scale.ts share: the `serve` processes under test (started,
 * measured through /proc, stopped), the bench repository, and the forked agent processes
 * (bench/agents.ts) connected and driven in closed-loop heartbeat blasts.
 */
import type { ChildProcess } from "node:child_process";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connectRedis, deleteKeysWithPrefix } from "../src/redis.js";
import type { Child } from "./child.js";
import { type ConnectedReport, type FromAgents, now, sleep, type ToAgents } from "./ipc.js";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(ROOT, "dist", "bundle", "cli.js");
export const TIMEOUT_MS = 180_000;

export type AgentsChild = Child<ToAgents, FromAgents>;

export interface LoadOptions {
  agents: number;
  /** Index of the first agent (their host.name); default 0. A second cohort starts past the first. */
  firstIndex?: number;
  /** Agents connecting at once per agent process (a storm: all of them). */
  concurrency: number;
  blastMs: number;
}

/** A progress line on stderr. */
export function phase(line: string, tag = "bench:serve"): void {
  process.stderr.write(`[${tag}] ${line}\n`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** `pid` and all its descendants (Linux /proc). */
function tree(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop() as number;
    out.push(p);
    try {
      const children = readFileSync(`/proc/${p}/task/${p}/children`, "utf8");
      for (const c of children.split(" ").filter(Boolean)) stack.push(Number(c));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * The sum over `pid` and its descendants of /proc/<pid>/stat's fields numbered `fields`
 * (1-based, as proc(5) numbers them).
 */
function treeStat(pid: number, ...fields: number[]): number {
  return treeStatOf(pid, (p) => `/proc/${p}/stat`, fields);
}

/** treeStat over each process's own stat file or, with `path`, another per-process file. */
function treeStatOf(pid: number, path: (p: number) => string, fields: number[]): number {
  let total = 0;
  for (const p of tree(pid)) {
    try {
      const stat = readFileSync(path(p), "utf8");
      // Fields 1 and 2 (pid, "(comm)") end at the last ")": field 3 is the first after it.
      const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      for (const f of fields) total += Number(after[f - 3]);
    } catch {
      // gone
    }
  }
  return total;
}

/** CPU time (user + system) of `pid` and its descendants, in ms (Linux: 100 ticks/s). */
export function treeCpuMs(pid: number): number {
  return treeStat(pid, 14, 15) * 10;
}

/** User-mode CPU time (no system time) of `pid` and its descendants, in ms. */
export function treeUserMs(pid: number): number {
  return treeStat(pid, 14) * 10;
}

/**
 * CPU time (user + system) of the main thread of `pid` and of each descendant, in ms: the
 * event loops. The rest of treeCpuMs is other threads': V8's helpers (the optimizing compiler,
 * concurrent and parallel GC), worker threads (render, decode, search) and libuv's pool.
 */
export function treeMainThreadsCpuMs(pid: number): number {
  return treeStatOf(pid, (p) => `/proc/${p}/task/${p}/stat`, [14, 15]) * 10;
}

/**
 * Minor page faults (`minflt`) of `pid` and descendants: pages touched for the first time or
 * again after the process gave them back (malloc_trim, V8's heap shrinking). On a VM each
 * costs far more CPU than on bare metal.
 */
export function treeMinorFaults(pid: number): number {
  return treeStat(pid, 10);
}

/** Write syscalls (`syscw` of /proc/<pid>/io: sockets and files) of `pid` and descendants. */
export function treeWriteSyscalls(pid: number): number {
  let total = 0;
  for (const p of tree(pid)) {
    try {
      total += Number(/^syscw:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/io`, "utf8"))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return total;
}

/**
 * The malloc each process of `pid`'s tree runs with, distinct values joined: "jemalloc",
 * "tcmalloc" or "mimalloc" when one is mapped (LD_PRELOAD), else "glibc malloc" with the
 * MALLOC_ARENA_MAX of the process' environment. RSS per agent depends on it.
 */
export function treeAllocators(pid: number): string {
  const seen = new Set<string>();
  for (const p of tree(pid)) {
    try {
      const maps = readFileSync(`/proc/${p}/maps`, "utf8");
      const preloaded = /lib(jemalloc|tcmalloc|mimalloc)/.exec(maps)?.[1];
      if (preloaded) {
        seen.add(preloaded);
        continue;
      }
      const environ = readFileSync(`/proc/${p}/environ`, "utf8").split("\0");
      const arenas = environ.find((e) => e.startsWith("MALLOC_ARENA_MAX="))?.split("=")[1];
      seen.add(`glibc malloc (MALLOC_ARENA_MAX ${arenas ?? "unset"})`);
    } catch {
      // gone
    }
  }
  return [...seen].join(", ");
}

/** Threads of `pid` and all its descendants (Linux /proc): worker threads started show here. */
export function treeThreads(pid: number): number {
  let total = 0;
  for (const p of tree(pid)) {
    try {
      total += Number(
        /^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0,
      );
    } catch {
      // gone
    }
  }
  return total;
}

/** RSS in bytes of `pid` and all its descendants (Linux /proc). */
export function treeRss(pid: number): number {
  let total = 0;
  for (const p of tree(pid)) {
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    } catch {
      // gone
    }
  }
  return total;
}

/**
 * RSS of `pid`'s tree once it stopped moving after a burst: sampled every `stepMs` until
 * `stableSteps` steps in a row each changed it by less than 1 % (or `maxMs` passed), so a server still freeing
 * the burst's garbage (or still growing) is not caught mid-way. Both sides of a comparison
 * are read this way at the same point of the run.
 */
export async function settledRss(
  pid: number,
  { stepMs = 1000, maxMs = 30_000, stableSteps = 3 }: SettleOptions = {},
): Promise<{ rss: number; waitedMs: number }> {
  const start = Date.now();
  let last = treeRss(pid);
  let stable = 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, stepMs));
    const rss = treeRss(pid);
    const waitedMs = Date.now() - start;
    // Several steady steps in a row: `serve --workers 2` grows in steps while its workers
    // start (~100 MB each over several seconds), and one quiet second between two steps
    // made the baseline early and RSS per agent read 32–83 KB in runs of the same code.
    stable = Math.abs(rss - last) < last * 0.01 ? stable + 1 : 0;
    if (stable >= stableSteps || waitedMs >= maxMs) return { rss, waitedMs };
    last = rss;
  }
}

/** settledRss: a sample every `stepMs`; settled after `stableSteps` steps within 1 %, or `maxMs`. */
interface SettleOptions {
  stepMs?: number;
  maxMs?: number;
  stableSteps?: number;
}

/** The status branch's head in `repo` (serve's default local status target), or undefined. */
export function statusHead(repo: string, branch = "opamp-status"): string | undefined {
  try {
    return execFileSync(
      "git",
      ["-C", repo, "rev-parse", "--verify", "-q", `refs/heads/${branch}`],
      {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      },
    ).trim();
  } catch {
    return undefined; // no flush yet
  }
}

/** `git <args(head)>` in `repo` with the status branch's head; undefined before its first commit. */
function gitAtStatusHead(
  repo: string,
  branch: string,
  args: (head: string) => string[],
): string | undefined {
  const head = statusHead(repo, branch);
  if (head === undefined) return undefined;
  return execFileSync("git", ["-C", repo, ...args(head)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
    maxBuffer: 64 * 2 ** 20,
  });
}

/** Commits on the status branch of `repo` after `since` (all of them when undefined). */
export function statusCommitsSince(
  repo: string,
  since: string | undefined,
  branch = "opamp-status",
): number {
  const out = gitAtStatusHead(repo, branch, (head) => [
    "rev-list",
    "--count",
    since === undefined ? head : `${since}..${head}`,
  ]);
  return Number(out?.trim() ?? 0);
}

/**
 * Agent status files (status/agents/) written or changed on the status branch of `repo` since
 * commit `since` (all of them when undefined): a file means a flush rendered that agent, in
 * serve's render worker threads. Files left from an earlier serve on the same repo do not count.
 */
export function statusAgentFilesSince(
  repo: string,
  since: string | undefined,
  branch = "opamp-status",
): number {
  const out = gitAtStatusHead(repo, branch, (head) =>
    since === undefined
      ? ["ls-tree", "-r", "--name-only", head, "--", "status/agents/"]
      : ["diff", "--name-only", "--diff-filter=AM", since, head, "--", "status/agents/"],
  );
  return out === undefined ? 0 : out.split("\n").filter(Boolean).length;
}

/**
 * Waits until the status branch of `repo` holds `count` agent files written or changed since
 * commit `since` (statusAgentFilesSince: a flush rendered that many agents; serve flushes
 * every 10 s by default), at most `timeoutMs`. Resolves the count last read.
 */
export async function statusFilesRendered(
  repo: string,
  since: string | undefined,
  count: number,
  timeoutMs = 60_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const files = statusAgentFilesSince(repo, since);
    if (files >= count || Date.now() >= deadline) return files;
    await sleep(500);
  }
}

/** What a warm-up cohort (warmUp) did before the baseline reading. */
export interface WarmUpReport {
  agents: number;
  settled: number;
  /** RSS growth of the server's processes from before the cohort to the baseline, bytes. */
  rssGrowth: number;
  /** Threads of the server's processes before the cohort and at the baseline. */
  threadsBefore: number;
  threads: number;
  /** Agent status files on the status branch at the baseline (serve only; else undefined). */
  statusFiles?: number;
  /** The baseline: settled RSS of the server's processes with the cohort connected, bytes. */
  rss: number;
}

/**
 * Connects a warm-up cohort of `o.agents` agents (their own uids, host.name from
 * `o.firstIndex`) from `child`, and reads the baseline RSS only once the server started what
 * it starts lazily on first use, so those fixed costs do not count as per-agent memory: each
 * agent configured, and with `statusRepo` (serve) until a status flush rendered every cohort
 * agent (status files on the branch: serve's render worker threads then exist), at most
 * `flushTimeoutMs`. The cohort stays connected while the measured agents connect; it sends
 * no heartbeats. Applied the same way to every server compared (the flush wait is serve's
 * only because only serve has a status branch).
 */
export async function warmUp(
  child: AgentsChild,
  pid: number,
  url: string,
  o: {
    agents: number;
    firstIndex: number;
    statusRepo?: string;
    flushTimeoutMs?: number;
    /** Quiet (no message) after the cohort before the baseline, ms. Default 0. */
    quietMs?: number;
  },
): Promise<WarmUpReport> {
  const { rss: rssBefore } = await settledRss(pid);
  const threadsBefore = treeThreads(pid);
  const head0 = o.statusRepo === undefined ? undefined : statusHead(o.statusRepo);
  const c = await connectAll([child], [url], false, {
    agents: o.agents,
    firstIndex: o.firstIndex,
    concurrency: o.agents,
    blastMs: 0,
  });
  let statusFiles: number | undefined;
  if (o.statusRepo !== undefined) {
    statusFiles = await statusFilesRendered(o.statusRepo, head0, c.settled, o.flushTimeoutMs);
  }
  await sleep(o.quietMs ?? 0);
  const { rss } = await settledRss(pid);
  return {
    agents: o.agents,
    settled: c.settled,
    rssGrowth: rss - rssBefore,
    threadsBefore,
    threads: treeThreads(pid),
    ...(statusFiles === undefined ? {} : { statusFiles }),
    rss,
  };
}

export function split(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0),
  );
}

let octet = 10;
/** Loopback source addresses for one phase (a fresh /24: no port still in TIME_WAIT). */
export function addresses(count: number): string[] {
  octet++;
  return Array.from({ length: count }, (_, i) => `127.${octet}.1.${i + 1}`);
}

/**
 * Connects `o.agents` agents spread over the children; agent i connects to urls[i % n].
 * `reconnect`: the children's agents come back on new sockets, all at once (a storm).
 */
export async function connectAll(
  children: AgentsChild[],
  urls: string[],
  reconnect: boolean,
  o: LoadOptions,
): Promise<ConnectedReport> {
  const shares = split(o.agents, children.length);
  const local = addresses(
    Math.max(children.length, Math.ceil(o.agents / 20_000) * children.length),
  );
  const per = Math.ceil(local.length / children.length);
  let first = o.firstIndex ?? 0;
  children.forEach((child, i) => {
    const count = shares[i] as number;
    child.send({
      type: "connect",
      url: urls[0] as string,
      urls,
      count,
      firstIndex: first,
      localAddresses: local.slice(i * per, (i + 1) * per),
      // A storm: every agent at once.
      concurrency: reconnect ? count : o.concurrency,
      ...(reconnect ? { reconnect: true } : { expectConfigHash: "*" }),
      timeoutMs: TIMEOUT_MS,
      idleHeartbeatMs: 0,
    });
    first += count;
  });
  const reports = await Promise.all(children.map((c) => c.next("connected", TIMEOUT_MS + 30_000)));
  return {
    type: "connected",
    opened: reports.reduce((n, r) => n + r.opened, 0),
    settled: reports.reduce((n, r) => n + r.settled, 0),
    failed: reports.reduce((n, r) => n + r.failed, 0),
    errors: reports.flatMap((r) => r.errors),
    elapsedMs: Math.max(...reports.map((r) => r.elapsedMs)),
    shed: reports.reduce((n, r) => n + (r.shed ?? 0), 0),
  };
}

/** Closed-loop heartbeats: replies per second in the window, and all replies of the blast. */
export async function heartbeats(
  children: AgentsChild[],
  blastMs: number,
): Promise<{ perSecond: number; replies: number }> {
  const BLAST_MS = blastMs;
  const startAt = now() + 1000;
  const endAt = startAt + BLAST_MS;
  for (const c of children) c.send({ type: "blast", startAt, endAt, stopAt: endAt + 300 });
  const reports = await Promise.all(children.map((c) => c.next("blastDone", BLAST_MS + 60_000)));
  return {
    perSecond: reports.reduce((n, r) => n + r.repliesInWindow, 0) / (BLAST_MS / 1000),
    replies: reports.reduce((n, r) => n + r.received, 0),
  };
}

export async function stopProcess(p: ChildProcess): Promise<number | null> {
  if (p.exitCode !== null) return p.exitCode;
  const exited = new Promise<number | null>((r) => p.once("exit", (code) => r(code)));
  p.kill("SIGTERM");
  const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

/**
 * Deletes the keys a bench's `serve` wrote under `prefix` in the shared Redis (the one serve
 * uses without `--redis`: OPAMP_GITOPS_REDIS_URL or redis://127.0.0.1:6379), so runs leave
 * nothing behind (a 3,000-agent run writes ~6,000 keys).
 */
export async function forgetPrefix(
  prefix: string,
  url = process.env.OPAMP_GITOPS_REDIS_URL ?? "redis://127.0.0.1:6379",
): Promise<void> {
  const redis = await connectRedis(url);
  try {
    await deleteKeysWithPrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
}

/**
 * Starts `serve` on the bench repository and waits until it serves the bench group.
 * `instance` names its state directory; `prefix` its Redis keys (replicas share one).
 */
export async function startServe(
  dir: string,
  repo: string,
  {
    workers,
    prefix,
    instance,
    profile = false,
    extra = [],
    nodeArgs = [],
    env = process.env,
  }: {
    workers: number;
    prefix: string;
    instance: string;
    profile?: boolean;
    extra?: string[];
    /** Options for node itself (before the script), e.g. --heapsnapshot-signal. */
    nodeArgs?: string[];
    /** serve's environment. Default: this process'. */
    env?: NodeJS.ProcessEnv;
  },
): Promise<{ proc: ChildProcess; port: number; apiPort: number }> {
  const [port, apiPort] = [await freePort(), await freePort()];
  const profileDir = join(ROOT, "bench", "out", "serve-profile");
  if (profile) mkdirSync(profileDir, { recursive: true });
  const proc = spawn(
    process.execPath,
    [
      ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []),
      ...nodeArgs,
      CLI,
      "serve",
      "--repo",
      repo,
      "--state-dir",
      join(dir, `state-${instance}`),
      "--redis-prefix",
      prefix,
      "--opamp-listen",
      `127.0.0.1:${port}`,
      "--api-listen",
      `127.0.0.1:${apiPort}`,
      "--workers",
      String(workers),
      "--log-level",
      "warn",
      ...extra,
    ],
    { stdio: ["ignore", "ignore", "inherit"], env },
  );
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`serve exited with ${proc.exitCode}`);
    if (Date.now() > deadline) throw new Error("serve did not serve the bench group in 60 s");
    const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/groups/bench`).catch(() => null);
    if (res?.ok && ((await res.json()) as { configHash: string | null }).configHash) break;
    // Polled often enough that "restarted server serving after" reads a start to ~50 ms.
    await sleep(50);
  }
  return { proc, port, apiPort };
}

export const COLLECTOR = `receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:4317}
processors:
  batch: {}
exporters:
  otlphttp:
    endpoint: https://otlp.example.internal
service:
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [otlphttp]}
`;

/** The collector config of makeRepo's group `bench`, which every benchmark server serves. */
export function benchConfigPath(repo: string): string {
  return join(repo, "groups", "bench", "collector.yaml");
}

export function makeRepo(dir: string): string {
  const repo = join(dir, "repo");
  mkdirSync(join(repo, "groups", "bench"), { recursive: true });
  writeFileSync(
    join(repo, "fleet.yaml"),
    "rollout:\n  stages:\n    - {percent: 100}\nheartbeatInterval: 30s\n",
  );
  writeFileSync(
    join(repo, "groups", "bench", "group.yaml"),
    "selector:\n  match:\n    service.name: otelcol-bench\n",
  );
  writeFileSync(benchConfigPath(repo), COLLECTOR);
  return repo;
}
