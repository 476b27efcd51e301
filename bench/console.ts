/**
 * Console benchmark: `npm run bench:console`. Not part of `npm test`.
 *
 * BENCH_AGENTS (default 50,000) agents stored in real Redis; the console's fleet page and the
 * paged API served by the real Hono app and the service's backend, in process:
 *   - the fleet page, unfiltered (reads only its 50 agents): time and bytes;
 *   - the fleet page searched, without the search index (reads every stored agent) and with
 *     it (src/service/agent-search.ts: the first search indexes the agents stored before it,
 *     later ones read the index and load only the matches);
 *   - GET /api/v1/agents?limit=50.
 * Each figure is the median of BENCH_RUNS (default 5) requests, wall clock and this process'
 * CPU time (the Redis server's is not counted), with the load average. Informational.
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
  encodeSubMessage,
  type OpampServer,
} from "../src/opamp/index.js";
import type { RolloutController } from "../src/queue/index.js";
import { deleteKeysWithPrefix } from "../src/redis.js";
import { ServiceBackend } from "../src/service/admin-backend.js";
import { AgentSearchIndex } from "../src/service/agent-search.js";
import type { ConfigStore } from "../src/service/config-store.js";
import type { ConsoleFeed } from "../src/service/console-feed.js";
import type { ServiceMetrics } from "../src/service/metrics.js";
import { fakeAgent } from "../test/api/fake-backend.js";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 50_000);
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

const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const prefix = `bench-console-${process.pid}`;
try {
  const store = new AgentStore(redis, { prefix });
  const t0 = performance.now();
  for (let i = 0; i < AGENTS; i += 2000) {
    const batch = [];
    for (let n = i; n < Math.min(i + 2000, AGENTS); n++)
      batch.push(
        store.save(
          encoded(fakeAgent(uid(n), { "host.name": `host-${n}` })),
          ["description", "health"],
          "bench",
          true,
        ),
      );
    await Promise.all(batch);
  }
  console.log(`stored ${AGENTS} agents in ${Math.round(performance.now() - t0)} ms`);
  // Only what the agent list reads is real: the store, an empty live map; no repository.
  const opamp = { handler: { live: new Map() }, store } as unknown as OpampServer;
  const rollouts = { groups: () => [], status: () => undefined } as unknown as RolloutController;
  const parts = {
    redis,
    opamp,
    rollouts,
    configs: {} as ConfigStore,
    sync: undefined,
    provider: undefined,
    status: undefined,
    feed: { subscribe: () => () => {} } as unknown as ConsoleFeed,
    metrics: () => ({}) as ServiceMetrics,
  };
  const appOf = (backend: ServiceBackend) =>
    adminApp({
      backend,
      access: new AdminAccess([]),
      events: new EventStreams(backend),
      logger: pino({ level: "silent" }),
    });
  const plain = appOf(new ServiceBackend(parts));
  const search = new AgentSearchIndex(redis, prefix, pino({ level: "silent" }));
  const indexed = appOf(new ServiceBackend({ ...parts, search }));
  const measure = async (label: string, path: string, app = plain, runs = RUNS) => {
    const times: number[] = [];
    const cpu: number[] = [];
    let bytes = 0;
    for (let r = 0; r < runs; r++) {
      const start = performance.now();
      const cpu0 = process.cpuUsage();
      const res = await app.request(`http://127.0.0.1${path}`);
      bytes = (await res.arrayBuffer()).byteLength;
      const used = process.cpuUsage(cpu0);
      cpu.push((used.user + used.system) / 1000);
      times.push(performance.now() - start);
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    console.log(
      `${label}: median ${median(times).toFixed(1)} ms, CPU ${median(cpu).toFixed(1)} ms, ${bytes} bytes (load ${load})`,
    );
  };
  await measure("fleet page, unfiltered (50 of all)", "/");
  await measure("fleet page, page 500", `/?offset=${Math.max(0, AGENTS - 100)}`);
  await measure("fleet page, searched, no index (loads all)", "/?q=host-4999");
  await measure(
    "fleet page, first search with the index (indexes all)",
    "/?q=host-4999",
    indexed,
    1,
  );
  await measure("fleet page, searched with the index", "/?q=host-4999", indexed);
  await measure("fleet page, searched with the index, 1 match", "/?q=host-49999", indexed);
  await measure("GET /api/v1/agents?limit=50", "/api/v1/agents?limit=50");
  // Both paths find the same agents.
  const total = async (app: typeof plain) =>
    (await app.request("http://127.0.0.1/api/v1/agents?q=host-4999")).headers.get("x-total-count");
  console.log(
    `matches of "host-4999": ${await total(plain)} without the index, ${await total(indexed)} with it`,
  );
} finally {
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
}
