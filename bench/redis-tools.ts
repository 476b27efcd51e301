/**
 * Redis helpers for benchmarks: a private redis-server on a free port (so INFO figures are
 * the benchmark's alone), command counts (INFO commandstats) and memory by key shape.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { Redis } from "ioredis";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A redis-server of its own (no persistence), or BENCH_REDIS_URL when set. */
export async function startPrivateRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const fixed = process.env.BENCH_REDIS_URL;
  if (fixed) return { url: fixed, stop: async () => {} };
  const probeServer = createServer().listen(0, "127.0.0.1");
  await once(probeServer, "listening");
  const { port } = probeServer.address() as { port: number };
  probeServer.close();
  const proc: ChildProcess = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null });
    probe.on("error", () => {});
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      break;
    } catch {
      probe.disconnect();
      if (i > 100) throw new Error("redis-server did not start");
      await sleep(50);
    }
  }
  return {
    url,
    async stop() {
      const exited = once(proc, "exit");
      proc.kill("SIGTERM");
      await exited;
    },
  };
}

/** Every command's calls so far (INFO commandstats), and their total under "". */
export async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info("commandstats");
  const out = new Map<string, number>([["", 0]]);
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    out.set(m[1] ?? "?", Number(m[2]));
    out.set("", (out.get("") ?? 0) + Number(m[2]));
  }
  return out;
}

/** `after - before` per command, largest first. */
export function callDelta(
  before: Map<string, number>,
  after: Map<string, number>,
): Array<[string, number]> {
  return [...after]
    .map(([k, v]): [string, number] => [k, v - (before.get(k) ?? 0)])
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1]);
}

/** used_memory (bytes) from INFO memory. */
export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info("memory");
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
}

/**
 * CPU time the Redis server has used since it started (INFO cpu: used_cpu_user +
 * used_cpu_sys, every thread of it), ms. Of the whole server: with BENCH_REDIS_URL pointing
 * at a shared Redis, other clients' work counts too.
 */
export async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const n = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
  return (n("used_cpu_user") + n("used_cpu_sys")) * 1000;
}

/**
 * MEMORY USAGE of every key, summed by key shape (32-hex uids and long hex hashes replaced
 * by `<uid>`/`<hash>`, numbers by `<n>`): where the bytes per agent go.
 */
export async function memoryByShape(redis: Redis): Promise<Array<[string, number, number]>> {
  const sums = new Map<string, { bytes: number; keys: number }>();
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "COUNT", 1000);
    cursor = next;
    const sizes = await Promise.all(keys.map((k) => redis.memory("USAGE", k)));
    keys.forEach((k, i) => {
      const shape = k
        .replace(/[0-9a-f]{64}/g, "<hash>")
        .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<uid>")
        .replace(/[0-9a-f]{32}/g, "<uid>")
        .replace(/\d+/g, "<n>");
      const s = sums.get(shape) ?? { bytes: 0, keys: 0 };
      s.bytes += Number(sizes[i] ?? 0);
      s.keys++;
      sums.set(shape, s);
    });
  } while (cursor !== "0");
  return [...sums]
    .map(([shape, s]): [string, number, number] => [shape, s.bytes, s.keys])
    .sort((a, b) => b[1] - a[1]);
}
