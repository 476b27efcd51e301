/**
 * Redis capacity benchmark: `npm run bench:redis`. Not part of `npm test`.
 *
 * The real `serve` (a child process, status branch on) with simulated WebSocket agents, on a
 * private redis-server, so INFO figures are this service's alone. Phases:
 * 1. connect: every agent connects and applies the first config (a 3-stage rollout);
 * 2. steady state: BENCH_STEADY_S seconds of heartbeats (every 30 s, offered by the group);
 * 3. rollout: a new commit rolled out in 3 stages (10 / 50 / 100 %, no pause) to every agent;
 * 4. reconnect storm: `serve` killed (SIGKILL) and restarted; every agent reconnects and is
 *    configured again.
 * For each: Redis commands (INFO commandstats) in all and per 10,000 agents (scaled
 * linearly from BENCH_AGENTS), the top commands, and memory (used_memory, and MEMORY USAGE
 * by key shape) per agent. Environment: BENCH_AGENTS=2000, BENCH_STEADY_S=60.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { SimulatedFleet } from "../src/opamp/index.js";
import {
  callDelta,
  commandCalls,
  memoryByShape,
  startPrivateRedis,
  usedMemory,
} from "./redis-tools.js";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 2000);
const STEADY_S = Number(process.env.BENCH_STEADY_S ?? 60);
const PER = 10_000 / AGENTS;
const CLI = fileURLToPath(new URL("../bundle/cli.js", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const GROUP = `selector:
  match: {host.role: edge}
rollout:
  stages: [{percent: 10, pause: 0s}, {percent: 50, pause: 0s}, {percent: 100}]
  applyTimeout: 5m
heartbeatInterval: 30s
`;
const collector = (v: string) =>
  `receivers:\n  otlp:\n    protocols: {grpc: {}}\nprocessors:\n  batch: {timeout: ${v}}\nexporters:\n  debug: {}\nservice:\n  pipelines:\n    traces: {receivers: [otlp], processors: [batch], exporters: [debug]}\n`;

async function freePort(): Promise<number> {
  const s = createServer().listen(0, "127.0.0.1");
  await new Promise((r) => s.once("listening", r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

function git(dir: string, ...args: string[]): string {
  return execFileSync("git", ["-C", dir, ...args], { encoding: "utf8" });
}

function startServe(args: string[]): Promise<{ child: ChildProcess; apiPort: number }> {
  const child = spawn(process.execPath, [CLI, "serve", ...args], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    child.stdout?.on("data", (d) => {
      out += d;
      const m = /"msg":"serving".*?"apiPort":(\d+)|"apiPort":(\d+).*?"msg":"serving"/.exec(out);
      if (m) resolve({ child, apiPort: Number(m[1] ?? m[2]) });
      if (out.length > 1_000_000) out = out.slice(-100_000);
    });
    child.once("exit", (code) => reject(new Error(`serve exited ${code}`)));
  });
}

interface Phase {
  name: string;
  seconds: number;
  commands: number;
  top: Array<[string, number]>;
}

async function main(): Promise<void> {
  const redisServer = await startPrivateRedis();
  const admin = new Redis(redisServer.url);
  const repo = mkdtempSync(join(tmpdir(), "bench-redis-repo-"));
  git(repo, "init", "-q", "-b", "main");
  git(repo, "config", "user.email", "bench@example.com");
  git(repo, "config", "user.name", "bench");
  mkdirSync(join(repo, "groups/edge"), { recursive: true });
  writeFileSync(join(repo, "groups/edge/group.yaml"), GROUP);
  writeFileSync(join(repo, "groups/edge/collector.yaml"), collector("1s"));
  git(repo, "add", "-A");
  git(repo, "commit", "-qm", "v1");
  const opampPort = await freePort();
  const args = [
    "--repo",
    repo,
    "--state-dir",
    mkdtempSync(join(tmpdir(), "bench-redis-state-")),
    "--redis",
    redisServer.url,
    "--opamp-listen",
    `127.0.0.1:${opampPort}`,
    "--api-listen",
    "127.0.0.1:0",
    "--poll-interval",
    "500ms",
  ];
  let serve = await startServe(args);
  const rollout = async () => {
    const res = await fetch(`http://127.0.0.1:${serve.apiPort}/api/v1/rollouts/edge`);
    return (await res.json()) as { rollout?: { status: string } };
  };
  const phases: Phase[] = [];
  const measure = async (name: string, run: () => Promise<void>) => {
    const before = await commandCalls(admin);
    const t0 = performance.now();
    await run();
    const seconds = (performance.now() - t0) / 1000;
    const d = callDelta(before, await commandCalls(admin));
    const total = d.find(([k]) => k === "")?.[1] ?? 0;
    phases.push({ name, seconds, commands: total, top: d.filter(([k]) => k !== "").slice(0, 6) });
    console.log(`${name}: ${total} commands in ${seconds.toFixed(1)} s`);
  };

  const fleet = new SimulatedFleet({
    agents: AGENTS,
    url: `ws://127.0.0.1:${opampPort}/v1/opamp`,
    attributes: { "host.role": "edge" },
    applyMs: 50,
    heartbeatSeconds: 30,
  });
  const allOn = (n: number) => (s: { byHash: Record<string, number> }) =>
    Object.entries(s.byHash).some(([h, c]) => h !== "" && c === n);
  await measure("connect + first config", async () => {
    await fleet.start();
    await fleet.until(allOn(AGENTS), 600_000, 200);
  });
  const memConnected = await usedMemory(admin);
  await measure(`steady state (${STEADY_S} s)`, async () => {
    await sleep(STEADY_S * 1000);
  });
  const shapes = await memoryByShape(admin);
  const memSteady = await usedMemory(admin);

  const v1 = Object.keys(fleet.summary().byHash)[0] ?? "";
  await measure("rollout (3 stages, every agent)", async () => {
    writeFileSync(join(repo, "groups/edge/collector.yaml"), collector("2s"));
    git(repo, "commit", "-qam", "v2");
    await fleet.until((s) => (s.byHash[v1] ?? 0) === 0 && allOn(AGENTS)(s), 600_000, 200);
    for (;;) {
      if ((await rollout().catch(() => undefined))?.rollout?.status === "completed") break;
      await sleep(200);
    }
  });

  await measure("reconnect storm (serve SIGKILLed, restarted)", async () => {
    const exited = new Promise((r) => serve.child.once("exit", r));
    serve.child.kill("SIGKILL");
    await exited;
    await fleet.until((s) => s.connected < AGENTS, 60_000, 50);
    serve = await startServe(args);
    await fleet.until((s) => s.connected === AGENTS, 600_000, 200);
    await sleep(2000); // the last reports of reconnected agents
  });
  const memAfter = await usedMemory(admin);
  await fleet.stop();
  serve.child.kill("SIGTERM");
  await new Promise((r) => serve.child.once("exit", r));

  console.log(`\nRedis per 10,000 agents (measured with ${AGENTS}, scaled ×${PER.toFixed(1)}):`);
  console.log(
    "| phase | seconds | commands | per 10k agents | per 10k agents per s | top commands |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const p of phases)
    console.log(
      `| ${p.name} | ${p.seconds.toFixed(1)} | ${p.commands} | ${Math.round(p.commands * PER)} | ${Math.round((p.commands * PER) / p.seconds)} | ${p.top.map(([k, v]) => `${k} ${v}`).join(", ")} |`,
    );
  console.log(
    `\nused_memory: connected ${(memConnected / 1e6).toFixed(1)} MB, steady ${(memSteady / 1e6).toFixed(1)} MB, after storm ${(memAfter / 1e6).toFixed(1)} MB; ${Math.round(memSteady / AGENTS)} B per agent (with Redis' own ~1 MB)`,
  );
  console.log("\nMEMORY USAGE by key shape (steady state):");
  console.log("| key | keys | bytes | bytes per agent |");
  console.log("| --- | --- | --- | --- |");
  for (const [shape, bytes, keys] of shapes.slice(0, 14))
    console.log(`| \`${shape}\` | ${keys} | ${bytes} | ${(bytes / AGENTS).toFixed(1)} |`);
  admin.disconnect();
  await redisServer.stop();
}

await main();
process.exit(0);
