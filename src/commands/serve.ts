/**
 * `opamp-gitops serve`: settings → Redis (a private redis-server when none answers locally)
 * → the service → signals. Logs are JSON lines on stdout; on a terminal, a few plain progress
 * lines go to stderr as well (what is being read, where things listen).
 *
 * Shutdown on SIGTERM/SIGINT, in order and bounded (`shutdownMs`, default 20 s; a second
 * signal or the deadline exits at once with 1): stop accepting agents, drain rollout writes,
 * flush the status branch, close Redis, stop a private redis-server. A signal while starting
 * exits at once (a private redis-server is stopped by its exit hook, redis-private.ts).
 */
import cluster from "node:cluster";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { createLogger } from "../logger.js";
import { startMallocTrim } from "../malloc-trim.js";
import { connectRedis } from "../redis.js";
import { connectOrStartRedis } from "../redis-private.js";
import { Service } from "../service/service.js";
import { resolveSettings, type Settings, type SettingsFlags } from "../settings.js";
import { SyncError } from "../sync/index.js";
import { setServeV8Flags } from "../v8-flags.js";
import { runPrimary, SERVING_MESSAGE, SHUTDOWN_MESSAGE } from "./serve-workers.js";

export interface ServeHandle {
  service: Service;
  settings: Settings;
  logger: Logger;
  opampPort: number;
  apiPort: number;
  /**
   * Stops everything (idempotent); resolves when done. `beforeQuit` runs with the Redis
   * connection after the service closed and before Redis is closed.
   */
  stop(beforeQuit?: (redis: Redis) => Promise<void>): Promise<void>;
}

export interface StartOptions {
  progress?: (line: string) => void;
  /** Where OPAMP_GITOPS_* variables are read. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Runs with the Redis connection after the service closed, before Redis is closed. */
  beforeQuit?: (redis: Redis) => Promise<void>;
}

/** Starts the service from flags/env/settings file. Throws SettingsError, RedisUnavailableError, SyncError. */
export async function startServe(
  flags: SettingsFlags & { settings?: string },
  { progress = () => {}, env = process.env, beforeQuit: cleanup }: StartOptions = {},
): Promise<ServeHandle> {
  const settings = resolveSettings(flags, env);
  const logger = createLogger(settings.logLevel);
  // A worker only connects: the primary owns the private redis-server. A worker (re)started
  // while Redis is down must not start a second one on its port; it fails, and the primary
  // starts it again later (serve-workers.ts).
  const redis = cluster.isWorker
    ? { redis: await connectRedis(settings.redisUrl), stop: async () => {} }
    : await connectOrStartRedis(settings.redisUrl, {
        dataDir: join(settings.stateDir, "redis"),
        log: (msg) => {
          logger.info(msg);
          progress(msg);
        },
      });
  redis.redis.on("error", (err) => logger.warn({ err }, "Redis connection error; reconnecting"));
  let service: Service | undefined;
  let stopping: Promise<void> | undefined;
  // What connect bursts free stays in glibc's arenas otherwise (src/malloc-trim.ts).
  const trim = startMallocTrim({ intervalMs: settings.mallocTrimIntervalMs });
  if (settings.mallocTrimIntervalMs > 0 && !trim)
    logger.debug("malloc_trim is not available here (not glibc, or no koffi binary)");
  const stop = (beforeQuit = cleanup) => {
    stopping ??= (async () => {
      trim?.close();
      await service?.close().catch((err) => logger.error({ err }, "shutdown step failed"));
      // Commands (QUIT too) wait for an answer a dead Redis never gives: bounded.
      const within = (p: Promise<unknown> | undefined, ms: number) =>
        Promise.race([p?.catch((err) => logger.warn({ err }, "cleanup failed")), sleep(ms)]);
      await within(beforeQuit?.(redis.redis), 3000);
      await within(redis.redis.quit(), 2000);
      redis.redis.disconnect();
      await redis.stop();
    })();
    return stopping;
  };
  try {
    service = new Service({ settings, redis: redis.redis, logger, progress });
    if (settings.repo) progress(`reading ${settings.repo} (branch ${settings.branch})…`);
    const ports = await service.start();
    logger.info({ ...ports, repo: settings.repo ?? null, replicaId: service.replicaId }, "serving");
    const host = (h: string) => (h.includes(":") ? `[${h}]` : h);
    progress(
      `serving: OpAMP on ${host(settings.opampHost)}:${ports.opampPort}, admin API on http://${host(settings.apiHost)}:${ports.apiPort}`,
    );
    return { service, settings, logger, ...ports, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: "the address is already in use (another opamp-gitops, or another program?)",
  EACCES: "permission denied (ports below 1024 need privileges)",
  EADDRNOTAVAIL: "this machine has no such address",
  ENOTFOUND: "the host name does not resolve",
  EAI_AGAIN: "the host name does not resolve",
};

/** What to tell the user when the service cannot start; undefined for an unexpected error. */
export function startFailure(err: unknown): string | undefined {
  if (err instanceof SyncError) return `cannot serve the fleet repository: ${err.message}`;
  const e = err as {
    code?: string;
    address?: string;
    hostname?: string;
    port?: number;
    syscall?: string;
    message?: string;
  };
  const why =
    e.code && (e.syscall === "listen" || e.syscall === "getaddrinfo") && LISTEN_ERRORS[e.code];
  if (why) {
    const where = [e.address ?? e.hostname, e.port].filter((x) => x !== undefined).join(":");
    return `cannot listen on ${where}: ${why}; see --opamp-listen and --api-listen`;
  }
  // node:tls refuses a certificate or key it cannot read (OpenSSL's PEM/ASN.1 errors).
  if (typeof e.code === "string" && e.code.startsWith("ERR_OSSL"))
    return `the TLS certificate or key cannot be used (${e.message}); check --tls-cert, --tls-key and --tls-client-ca`;
  return undefined;
}

/**
 * Runs `start`, then waits for SIGTERM/SIGINT and stops within `shutdownMs`; resolves with
 * the exit code. Signal handlers are installed first: a signal while starting exits at once.
 */
export async function runUntilSignal(
  start: () => Promise<ServeHandle>,
  { shutdownMs = 20_000, onStop }: { shutdownMs?: number; onStop?: () => Promise<void> } = {},
): Promise<number> {
  let handle: ServeHandle | undefined;
  let signalled = false;
  let resolveStopped: (code: number) => void = () => {};
  const stopped = new Promise<number>((r) => {
    resolveStopped = r;
  });
  const onSignal = (signal: string) => {
    if (signalled || !handle) {
      handle?.logger.warn({ signal }, "exiting now");
      process.exit(1);
    }
    signalled = true;
    const { logger } = handle;
    logger.info({ signal }, "shutting down");
    const force = setTimeout(() => {
      logger.error({ shutdownMs }, "shutdown took too long; exiting");
      process.exit(1);
    }, shutdownMs);
    void (async () => {
      await onStop?.().catch((err) => logger.warn({ err }, "stopping failed"));
      await handle.stop();
      clearTimeout(force);
      logger.info("stopped");
      resolveStopped(0);
    })();
  };
  // SIGHUP re-reads the tokens files and the client CA (rotation without restart).
  process.on("SIGHUP", () => {
    if (!handle || signalled) return;
    handle.logger.info({ signal: "SIGHUP" }, "reloading credentials");
    handle.service.credentials.reload();
  });
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  if (cluster.isWorker) {
    // The primary asks over IPC (see serve-workers.ts); a primary gone means stop too.
    process.on("message", (m) => {
      if (m !== SHUTDOWN_MESSAGE || signalled) return;
      // Asked to stop before it served: nothing to drain, and not a failure.
      if (!handle) process.exit(0);
      onSignal("primary");
    });
    process.on("disconnect", () => {
      if (!signalled) onSignal("primary gone");
    });
  }
  try {
    handle = await start();
    if (cluster.isWorker) process.send?.(SERVING_MESSAGE);
  } catch (err) {
    const message = startFailure(err);
    if (message === undefined) throw err;
    process.stderr.write(`opamp-gitops: ${message}\n`);
    return 1;
  }
  return stopped;
}

/**
 * The command's action: runs until a signal; resolves with the exit code. With `--workers`
 * above 1 this process becomes the cluster primary (serve-workers.ts) and each worker runs
 * this same action as one replica.
 */
export function runServe(
  flags: SettingsFlags & { settings?: string },
  { shutdownMs = 20_000 } = {},
): Promise<number> {
  // Before the service allocates or compiles much (heap growth, inlining budget).
  setServeV8Flags();
  if (cluster.isPrimary && resolveSettings(flags, process.env).workers > 1)
    return runPrimary(flags, { shutdownMs });
  const tty = process.stderr.isTTY === true && cluster.isPrimary;
  return runUntilSignal(
    () =>
      startServe(flags, {
        progress: (line) => tty && process.stderr.write(`opamp-gitops: ${line}\n`),
      }),
    { shutdownMs },
  );
}
