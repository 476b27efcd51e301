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
 *   - RSS per connected agent: (RSS of the server's processes once all are connected − RSS
 *     before the first agent) ÷ N. For serve with workers, the primary and all workers; Redis
 *     is not counted (the peer has none);
 *   - reconnect storm: every socket is cut at once and all N agents reconnect at once (same
 *     uids); wall time until every agent was answered again. Agents honour Retry-After (503)
 *     and UNAVAILABLE's retry interval.
 *
 * Environment:
 *   BENCH_AGENTS=3000           agents (BENCH_AGENTS=10000 for the issue's figure)
 *   BENCH_AGENT_PROCESSES=2     forked agent processes (≤ ~15 000 sockets each)
 *   BENCH_WORKERS=1,2           serve runs, one per --workers value
 *   BENCH_BLAST_SECONDS=5       heartbeat window
 *   BENCH_CONCURRENCY=200       agents connecting at once per agent process
 *   BENCH_PROFILE=1             serve --workers 1 runs under node --cpu-prof (profiles in
 *                               bench/out/serve-profile/)
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { initRepository } from "../src/sync/init-repo.js";
import { Child } from "./child.js";
import { type ConnectedReport, type FromAgents, now, sleep, type ToAgents } from "./ipc.js";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 3000);
const PROCESSES = Number(process.env.BENCH_AGENT_PROCESSES ?? 2);
const WORKERS = (process.env.BENCH_WORKERS ?? "1,2").split(",").map(Number);
const BLAST_MS = Number(process.env.BENCH_BLAST_SECONDS ?? 5) * 1000;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 200);
const PROFILE = process.env.BENCH_PROFILE === "1";
const TIMEOUT_MS = 180_000;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(ROOT, "dist", "src", "cli.js");

type AgentsChild = Child<ToAgents, FromAgents>;

interface Figures {
  name: string;
  connectMs: number;
  settled: number;
  heartbeatsPerSecond: number;
  rssPerAgentBytes: number;
  stormMs: number;
  stormSettled: number;
  stormShed: number;
}

function phase(line: string): void {
  process.stderr.write(`[bench:serve] ${line}\n`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** RSS in bytes of `pid` and all its descendants (Linux /proc). */
function treeRss(pid: number): number {
  let total = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop() as number;
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
      const children = readFileSync(`/proc/${p}/task/${p}/children`, "utf8");
      for (const c of children.split(" ").filter(Boolean)) stack.push(Number(c));
    } catch {
      // gone
    }
  }
  return total;
}

function split(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0),
  );
}

let octet = 10;
/** Loopback source addresses for one phase (a fresh /24: no port still in TIME_WAIT). */
function addresses(count: number): string[] {
  octet++;
  return Array.from({ length: count }, (_, i) => `127.${octet}.1.${i + 1}`);
}

async function connectAll(
  children: AgentsChild[],
  url: string,
  reconnect: boolean,
): Promise<ConnectedReport> {
  const shares = split(AGENTS, children.length);
  const local = addresses(Math.max(children.length, Math.ceil(AGENTS / 20_000) * children.length));
  const per = Math.ceil(local.length / children.length);
  let first = 0;
  children.forEach((child, i) => {
    const count = shares[i] as number;
    child.send({
      type: "connect",
      url,
      count,
      firstIndex: first,
      localAddresses: local.slice(i * per, (i + 1) * per),
      // A storm: every agent at once.
      concurrency: reconnect ? count : CONCURRENCY,
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

async function heartbeats(children: AgentsChild[]): Promise<number> {
  const startAt = now() + 1000;
  const endAt = startAt + BLAST_MS;
  for (const c of children) c.send({ type: "blast", startAt, endAt, stopAt: endAt + 300 });
  const reports = await Promise.all(children.map((c) => c.next("blastDone", BLAST_MS + 60_000)));
  return reports.reduce((n, r) => n + r.repliesInWindow, 0) / (BLAST_MS / 1000);
}

/** Runs the load against one server (`pid` for RSS, `url` for agents). */
async function measure(
  name: string,
  children: AgentsChild[],
  pid: number,
  url: string,
): Promise<Figures> {
  await sleep(1000);
  const rss0 = treeRss(pid);
  phase(`${name}: connecting ${AGENTS} agents`);
  const c = await connectAll(children, url, false);
  phase(
    `${name}: ${c.settled}/${AGENTS} configured in ${(c.elapsedMs / 1000).toFixed(2)} s (${c.failed} failed) ${c.errors.slice(0, 3).join("; ")}`,
  );
  await sleep(1000);
  const rss1 = treeRss(pid);
  const hb = await heartbeats(children);
  phase(`${name}: ${Math.round(hb)} heartbeat replies/s`);
  const storm = await connectAll(children, url, true);
  phase(
    `${name}: storm: ${storm.settled}/${AGENTS} answered again in ${(storm.elapsedMs / 1000).toFixed(2)} s, ${storm.shed} shed and retried`,
  );
  for (const child of children) child.send({ type: "closeAgents", timeoutMs: 5000 });
  await Promise.all(children.map((ch) => ch.next("agentsClosed", 30_000)));
  return {
    name,
    connectMs: c.elapsedMs,
    settled: c.settled,
    heartbeatsPerSecond: hb,
    rssPerAgentBytes: (rss1 - rss0) / AGENTS,
    stormMs: storm.elapsedMs,
    stormSettled: storm.settled,
    stormShed: storm.shed ?? 0,
  };
}

async function stopProcess(p: ChildProcess): Promise<number | null> {
  if (p.exitCode !== null) return p.exitCode;
  const exited = new Promise<number | null>((r) => p.once("exit", (code) => r(code)));
  p.kill("SIGTERM");
  const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

async function startPeer(
  dir: string,
  config: string,
): Promise<{ proc: ChildProcess; port: number }> {
  const bin = join(dir, "opamp-go-server");
  execFileSync("go", ["build", "-o", bin, "."], {
    cwd: join(ROOT, "bench", "opamp-go-server"),
    stdio: "inherit",
  });
  const proc = spawn(bin, ["-config", config], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout?.once("data", (d: Buffer) => resolve(JSON.parse(d.toString()).port));
    proc.once("exit", (code) => reject(new Error(`opamp-go peer exited with ${code}`)));
  });
  return { proc, port };
}

async function startServe(
  dir: string,
  repo: string,
  workers: number,
): Promise<{ proc: ChildProcess; port: number }> {
  const [port, apiPort] = [await freePort(), await freePort()];
  const profileDir = join(ROOT, "bench", "out", "serve-profile");
  if (PROFILE && workers === 1) mkdirSync(profileDir, { recursive: true });
  const proc = spawn(
    process.execPath,
    [
      ...(PROFILE && workers === 1 ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []),
      CLI,
      "serve",
      "--repo",
      repo,
      "--state-dir",
      join(dir, `state-${workers}`),
      "--redis-prefix",
      `bench-serve-${process.pid}-${workers}`,
      "--opamp-listen",
      `127.0.0.1:${port}`,
      "--api-listen",
      `127.0.0.1:${apiPort}`,
      "--workers",
      String(workers),
      "--log-level",
      "warn",
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`serve exited with ${proc.exitCode}`);
    if (Date.now() > deadline) throw new Error("serve did not serve the bench group in 60 s");
    const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/groups/bench`).catch(() => null);
    if (res?.ok && ((await res.json()) as { configHash: string | null }).configHash) break;
    await sleep(200);
  }
  return { proc, port };
}

const COLLECTOR = `receivers:
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

function makeRepo(dir: string): string {
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
  writeFileSync(join(repo, "groups", "bench", "collector.yaml"), COLLECTOR);
  return repo;
}

const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : "n/a");

function print(peer: Figures, serves: Figures[], load: string): void {
  const rows: [string, (f: Figures) => string][] = [
    [`connect + first config to all ${AGENTS}`, (f) => `${(f.connectMs / 1000).toFixed(2)} s`],
    ["heartbeat replies per second", (f) => `${Math.round(f.heartbeatsPerSecond)}`],
    ["RSS per connected agent", (f) => `${(f.rssPerAgentBytes / 1024).toFixed(1)} KB`],
    [
      `reconnect storm: all ${AGENTS} answered again`,
      (f) => `${(f.stormMs / 1000).toFixed(2)} s (${f.stormShed} shed)`,
    ],
  ];
  const ratios: ((s: Figures) => string)[] = [
    (s) => `${ratio(s.connectMs, peer.connectMs)}× (target ≤ 1.0)`,
    (s) => `${ratio(s.heartbeatsPerSecond, peer.heartbeatsPerSecond)}× (target ≥ 1.0)`,
    (s) => `${ratio(s.rssPerAgentBytes, peer.rssPerAgentBytes)}× (target ≤ 1.0 with 1 worker)`,
    (s) => `${ratio(s.stormMs, peer.stormMs)}×`,
  ];
  const out: string[] = [
    "",
    `bench:serve — ${AGENTS} WebSocket agents from ${PROCESSES} agent processes; ${load}`,
    "",
    `| | ${peer.name} | ${serves.map((s) => `${s.name} | ratio`).join(" | ")} |`,
    `|---|---|${serves.map(() => "---|---").join("|")}|`,
  ];
  rows.forEach(([label, value], i) => {
    const r = ratios[i] as (s: Figures) => string;
    out.push(
      `| ${label} | ${value(peer)} | ${serves.map((s) => `${value(s)} | ${r(s)}`).join(" | ")} |`,
    );
  });
  for (const f of [peer, ...serves])
    if (f.settled < AGENTS || f.stormSettled < AGENTS)
      out.push(`! ${f.name}: only ${f.settled} configured, ${f.stormSettled} after the storm`);
  process.stdout.write(`${out.join("\n")}\n`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-serve-"));
  const children: AgentsChild[] = [];
  const running: ChildProcess[] = [];
  const load0 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  try {
    const repo = makeRepo(dir);
    await initRepository(repo);
    for (let i = 0; i < PROCESSES; i++) children.push(new Child(`agents-${i}`, "./agents.js"));
    const peerProc = await startPeer(dir, join(repo, "groups", "bench", "collector.yaml"));
    running.push(peerProc.proc);
    const peer = await measure(
      "opamp-go server",
      children,
      peerProc.proc.pid as number,
      `ws://127.0.0.1:${peerProc.port}/v1/opamp`,
    );
    await stopProcess(peerProc.proc);
    const serves: Figures[] = [];
    for (const workers of WORKERS) {
      const s = await startServe(dir, repo, workers);
      running.push(s.proc);
      serves.push(
        await measure(
          `serve --workers ${workers}`,
          children,
          s.proc.pid as number,
          `ws://127.0.0.1:${s.port}/v1/opamp`,
        ),
      );
      const code = await stopProcess(s.proc);
      if (code !== 0) phase(`serve --workers ${workers} exited with ${code}`);
    }
    const load1 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    print(peer, serves, `load average ${load0} before, ${load1} after`);
  } finally {
    for (const p of running) await stopProcess(p);
    await Promise.all(children.map((c) => c.stop({ type: "exit" })));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
