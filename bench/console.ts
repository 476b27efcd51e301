/**
 * Console and agent-list benchmark: `npm run bench:console`. Not part of `npm test`.
 *
 * BENCH_AGENTS (default 100,000) agents stored in a private redis-server (so its command
 * counts and CPU are the benchmark's alone; BENCH_REDIS_URL to use another), with their search
 * texts indexed; every 10th agent disconnected; a fleet provider places every 1000th agent in
 * group "rare" and the rest in "big". The paged API and the console's fleet page are served by
 * the real Hono app and the service's backend, in process. Per request, the median of
 * BENCH_RUNS (default 5): wall time, this process' CPU, Redis commands and Redis CPU, with the
 * load average. A "walk" reads every page of a filter with the `X-Next-After` cursor and
 * prints its totals. Informational.
 */
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import pino from "pino";
import { AdminAccess } from "../src/api/access.js";
import { adminApp } from "../src/api/admin-app.js";
import { EventStreams } from "../src/api/events-route.js";
import {
  type AgentState,
  AgentStore,
  agentAttributes,
  encodeSubMessage,
  type OpampServer,
} from "../src/opamp/index.js";
import type { RolloutController } from "../src/queue/index.js";
import { ServiceBackend } from "../src/service/admin-backend.js";
import { AgentSearchIndex, searchText } from "../src/service/agent-search.js";
import type { ConfigStore } from "../src/service/config-store.js";
import type { ConsoleFeed } from "../src/service/console-feed.js";
import type { FleetProvider } from "../src/service/fleet-provider.js";
import type { ServiceMetrics } from "../src/service/metrics.js";
import { fakeAgent } from "../test/api/fake-backend.js";
import { commandCalls, redisCpuMs, startPrivateRedis } from "./redis-tools.js";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const uid = (n: number) => `0190a000-0000-7000-8000-${n.toString(16).padStart(12, "0")}`;

/** The agent with its description and health encoded, as the server stores them. */
function encoded(agent: AgentState): AgentState {
  if (agent.description)
    agent.encoded.description = Buffer.from(
      encodeSubMessage("AgentDescription", agent.description),
    );
  if (agent.health)
    agent.encoded.health = Buffer.from(encodeSubMessage("ComponentHealth", agent.health));
  return agent;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

const server = await startPrivateRedis();
const redis = new Redis(server.url);
const probe = new Redis(server.url);
const prefix = "bench-console";
try {
  const store = new AgentStore(redis, { prefix });
  const search = new AgentSearchIndex(redis, prefix, pino({ level: "silent" }));
  const t0 = performance.now();
  for (let i = 0; i < AGENTS; i += 2000) {
    const batch: Array<Promise<unknown>> = [];
    const texts: Record<string, string> = {};
    for (let n = i; n < Math.min(i + 2000, AGENTS); n++) {
      const agent = encoded(fakeAgent(uid(n), { "host.name": `host-${n}` }));
      agent.connected = n % 10 !== 0;
      texts[agent.instanceUid] = searchText(agent);
      batch.push(store.save(agent, ["description", "health"], "bench", true));
    }
    batch.push(redis.hset(search.key, texts));
    await Promise.all(batch);
  }
  console.log(`stored and indexed ${AGENTS} agents in ${Math.round(performance.now() - t0)} ms`);
  // Only what the agent list reads is real: the store, an empty live map; no repository.
  const opamp = { handler: { live: new Map() }, store } as unknown as OpampServer;
  const rollouts = { groups: () => [], status: () => undefined } as unknown as RolloutController;
  const provider = {
    groupOf: (s: Readonly<AgentState>) =>
      Number(agentAttributes(s).get("host.name")?.slice(5)) % 1000 === 0 ? "rare" : "big",
    unauthorizedGroup: () => undefined,
  } as unknown as FleetProvider;
  const backend = new ServiceBackend({
    redis,
    prefix,
    opamp,
    rollouts,
    configs: {} as ConfigStore,
    sync: undefined,
    provider,
    status: undefined,
    feed: { subscribe: () => () => {} } as unknown as ConsoleFeed,
    metrics: () => ({}) as ServiceMetrics,
    search,
  });
  const app = adminApp({
    backend,
    access: new AdminAccess([]),
    events: new EventStreams(backend),
    logger: pino({ level: "silent" }),
  });
  const request = async (path: string) => {
    const res = await app.request(`http://127.0.0.1${path}`);
    const body = await res.arrayBuffer();
    return {
      res,
      bytes: body.byteLength,
      rows: path.startsWith("/api/") ? JSON.parse(Buffer.from(body).toString()).length : 0,
    };
  };
  /** One request's cost: wall, CPU here, Redis commands and Redis CPU. */
  const once = async (path: string) => {
    const calls0 = (await commandCalls(probe)).get("") ?? 0;
    const rcpu0 = await redisCpuMs(probe);
    const start = performance.now();
    const cpu0 = process.cpuUsage();
    const out = await request(path);
    const used = process.cpuUsage(cpu0);
    const wall = performance.now() - start;
    const rcpu = (await redisCpuMs(probe)) - rcpu0;
    // The two INFO commands of the probe itself are not the request's.
    const calls = ((await commandCalls(probe)).get("") ?? 0) - calls0 - 2;
    return { ...out, wall, cpu: (used.user + used.system) / 1000, calls, rcpu };
  };
  /** BENCH_RUNS requests: medians, and the worst (the first pays a filter's count walk). */
  const measure = async (label: string, path: string) => {
    const runs = [];
    for (let r = 0; r < RUNS; r++) runs.push(await once(path));
    const last = runs.at(-1);
    const h = last?.res.headers;
    const count = h?.get("x-total-count") ?? `~${h?.get("x-total-count-estimate") ?? "?"}`;
    const worst = runs.reduce((a, b) => (b.cpu > a.cpu ? b : a));
    const page = path.startsWith("/api/")
      ? `${last?.rows} rows, count ${count}, next ${h?.get("x-next-after") ? "yes" : "no"}`
      : `${last?.bytes} bytes`;
    console.log(
      `${label}: median ${median(runs.map((r) => r.wall)).toFixed(1)} ms, CPU ${median(runs.map((r) => r.cpu)).toFixed(1)} ms, ` +
        `Redis ${median(runs.map((r) => r.calls))} commands / ${median(runs.map((r) => r.rcpu)).toFixed(1)} ms CPU ` +
        `(worst: CPU ${worst.cpu.toFixed(1)} ms, ${worst.calls} commands), ${page} (load ${load()})`,
    );
  };
  /** Every page of `path` with the cursor: requests, rows and summed costs. */
  const walk = async (label: string, path: string) => {
    let [requests, rows, cpu, calls, rcpu, wall] = [0, 0, 0, 0, 0, 0];
    for (let after = ""; ; ) {
      const r = await once(`${path}${after ? `&after=${after}` : ""}`);
      requests++;
      rows += r.rows;
      cpu += r.cpu;
      calls += r.calls;
      rcpu += r.rcpu;
      wall += r.wall;
      const next = r.res.headers.get("x-next-after");
      if (!next || requests > 10_000) break;
      after = next;
    }
    console.log(
      `${label}: ${requests} requests, ${rows} rows, ${wall.toFixed(0)} ms, CPU ${cpu.toFixed(0)} ms, Redis ${calls} commands / ${rcpu.toFixed(0)} ms CPU (load ${load()})`,
    );
  };
  const rare = `host-${AGENTS - 1}`;
  await measure("GET /api/v1/agents (first 50)", "/api/v1/agents");
  await measure(
    "GET /api/v1/agents, deep page (after=)",
    `/api/v1/agents?after=${uid(AGENTS - 100)}`,
  );
  await measure("GET /api/v1/agents?q=host-1 (dense search)", "/api/v1/agents?q=host-1");
  await measure("GET /api/v1/agents?q=host-4999 (11+ matches)", "/api/v1/agents?q=host-4999");
  await measure(`GET /api/v1/agents?q=${rare} (1 match)`, `/api/v1/agents?q=${rare}`);
  await measure("GET /api/v1/agents?group=rare (1 in 1000)", "/api/v1/agents?group=rare");
  await measure(
    "GET /api/v1/agents?state=disconnected (1 in 10)",
    "/api/v1/agents?state=disconnected",
  );
  await measure("fleet page, unfiltered", "/");
  await measure("fleet page, searched host-4999", "/?q=host-4999");
  await walk("walk ?q=host-4999&limit=50", "/api/v1/agents?q=host-4999&limit=50");
  await walk("walk ?group=rare&limit=50", "/api/v1/agents?group=rare&limit=50");
  await walk("walk ?limit=1000 (everything)", "/api/v1/agents?limit=1000");
} finally {
  probe.disconnect();
  redis.disconnect();
  await server.stop();
}
