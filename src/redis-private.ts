/**
 * A private redis-server for a single-node install (DESIGN §6): when nothing answers at the
 * configured local address and `redis-server` is on the PATH, `serve` starts one there with
 * its data in `<stateDir>/redis` (append-only file on, fsync every second) and stops it on
 * exit. A remote address, or no redis-server, gives RedisUnavailableError with what to do.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, statSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import type { Redis } from "ioredis";
import { connectRedis, RedisUnavailableError } from "./redis.js";

const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** The redis-server executable on `path` (default: PATH), or undefined. */
export function findRedisServer(path = process.env.PATH ?? ""): string | undefined {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, "redis-server");
    if (statSync(candidate, { throwIfNoEntry: false })?.isFile()) return candidate;
  }
  return undefined;
}

export interface PrivateRedis {
  /** The connection (as connectRedis makes it). */
  redis: Redis;
  /** Set when this process started redis-server: stop it with `stop()`. */
  server?: ChildProcess;
  /** Stops the private server (SHUTDOWN, which writes the AOF), if one was started. */
  stop(): Promise<void>;
}

/**
 * Connects to `url`; if nothing answers there and it is a local address, starts redis-server
 * on that port with its data in `dataDir`, waits until it answers, and connects.
 */
export async function connectOrStartRedis(
  url: string,
  { dataDir, log = () => {} }: { dataDir: string; log?: (msg: string) => void },
): Promise<PrivateRedis> {
  try {
    const redis = await connectRedis(url);
    return { redis, stop: async () => {} };
  } catch (err) {
    if (!(err instanceof RedisUnavailableError)) throw err;
    const parsed = new URL(url);
    const executable = findRedisServer();
    if (!LOCAL_HOSTS.has(parsed.hostname) || parsed.password || !executable) {
      throw new RedisUnavailableError(url, err.cause, {
        hint: !executable
          ? "install Redis (e.g. apt install redis-server) or pass --redis <url>"
          : parsed.password
            ? "a URL with a password names a Redis you run, so no private redis-server is started"
            : "it is not a local address, so no private redis-server is started",
      });
    }
    const dir = resolve(dataDir);
    mkdirSync(dir, { recursive: true });
    const port = parsed.port || "6379";
    const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
    const server = spawn(
      executable,
      [
        "--port",
        port,
        "--bind",
        host === "localhost" ? "127.0.0.1" : host,
        "--dir",
        dir,
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        // BullMQ and the rollout store must never lose keys to eviction.
        "--maxmemory-policy",
        "noeviction",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    // Whatever ends this process (an error, process.exit, a second signal), the private
    // server goes with it; SIGTERM makes redis-server write its AOF before exiting.
    const onExit = () => server.kill("SIGTERM");
    process.on("exit", onExit);
    server.once("exit", () => process.off("exit", onExit));
    let stderr = "";
    server.stderr?.on("data", (d) => {
      stderr = (stderr + String(d)).slice(-2000);
    });
    log(`started a private redis-server on ${host}:${port} with its data in ${dir}`);
    let lastError: unknown = err;
    for (let i = 0; i < 100 && server.exitCode === null; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        const redis = await connectRedis(url, { timeoutMs: 1000 });
        return { redis, server, stop: () => stopServer(server) };
      } catch (e) {
        lastError = (e as RedisUnavailableError).cause ?? e;
      }
    }
    server.kill("SIGKILL");
    throw new RedisUnavailableError(url, lastError, {
      hint: `a private redis-server did not start: ${stderr.trim().split("\n").pop() ?? "no output"}`,
    });
  }
}

/** SIGTERM makes redis-server flush its AOF and exit; waits up to 10 s. */
function stopServer(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const force = setTimeout(() => server.kill("SIGKILL"), 10_000);
    server.once("exit", () => {
      clearTimeout(force);
      done();
    });
    server.kill("SIGTERM");
  });
}
