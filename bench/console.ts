/**
 * Console benchmark: `npm run bench:console`. Not part of `npm test`.
 *
 * BENCH_AGENTS (default 50,000) agents stored in real Redis; the console's fleet page and the
 * paged API served by the real Hono app and the service's backend, in process:
 *   - the fleet page, unfiltered (reads only its 50 agents): time and bytes;
 *   - the fleet page searched (reads every stored agent to count matches): time;
 *   - GET /api/v1/agents?limit=50.
 * Each figure is the median of BENCH_RUNS (default 5) requests. Informational, no target.
 */
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import pino from "pino";
import { AdminAccess } from "../src/api/access.js";
import { adminApp } from "../src/api/admin-app.js";
import { EventStreams } from "../src/api/events-route.js";
import { AgentStore, type OpampServer } from "../src/opamp/index.js";
import type { RolloutController } from "../src/queue/index.js";
import { deleteKeysWithPrefix } from "../src/redis.js";
import { ServiceBackend } from "../src/service/admin-backend.js";
import type { ConfigStore } from "../src/service/config-store.js";
import type { ConsoleFeed } from "../src/service/console-feed.js";
import type { ServiceMetrics } from "../src/service/metrics.js";
import { fakeAgent } from "../test/api/fake-backend.js";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 50_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const uid = (n: number) => `0190a000-0000-7000-8000-${n.toString(16).padStart(12, "0")}`;

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
          fakeAgent(uid(n), { "host.name": `host-${n}` }),
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
  const backend = new ServiceBackend({
    redis,
    opamp,
    rollouts,
    configs: {} as ConfigStore,
    sync: undefined,
    provider: undefined,
    status: undefined,
    feed: { subscribe: () => () => {} } as unknown as ConsoleFeed,
    metrics: () => ({}) as ServiceMetrics,
  });
  const app = adminApp({
    backend,
    access: new AdminAccess([]),
    events: new EventStreams(backend),
    logger: pino({ level: "silent" }),
  });
  const measure = async (label: string, path: string) => {
    const times: number[] = [];
    let bytes = 0;
    for (let r = 0; r < RUNS; r++) {
      const start = performance.now();
      const res = await app.request(`http://127.0.0.1${path}`);
      bytes = (await res.arrayBuffer()).byteLength;
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)] ?? 0;
    console.log(`${label}: median ${median.toFixed(1)} ms, ${bytes} bytes`);
  };
  await measure("fleet page, unfiltered (50 of all)", "/");
  await measure("fleet page, page 500", `/?offset=${Math.max(0, AGENTS - 100)}`);
  await measure("fleet page, searched (scans all)", "/?q=host-4999");
  await measure("GET /api/v1/agents?limit=50", "/api/v1/agents?limit=50");
} finally {
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
}
