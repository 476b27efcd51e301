/**
 * `opamp-gitops serve`: settings → Redis (a private redis-server when none answers locally)
 * → the service → signals. Logs are JSON lines on stdout; on a terminal, a few plain progress
 * lines go to stderr as well (what is being read, where things listen).
 *
 * Shutdown on SIGTERM/SIGINT, in order and bounded (`shutdownMs`, default 20 s; a second
 * signal or the deadline exits at once with 1): stop accepting agents, drain rollout writes,
 * flush the status branch, close Redis, stop a private redis-server.
 */
import { join } from "node:path";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { createLogger } from "../logger.js";
import { connectOrStartRedis } from "../redis-private.js";
import { Service } from "../service/service.js";
import { resolveSettings, type Settings, type SettingsFlags } from "../settings.js";
import { SyncError } from "../sync/index.js";

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

/** Starts the service from flags/env/settings file. Throws SettingsError, RedisUnavailableError, SyncError. */
export async function startServe(
  flags: SettingsFlags & { settings?: string },
  { progress = (_: string) => {} }: { progress?: (line: string) => void } = {},
): Promise<ServeHandle> {
  const settings = resolveSettings(flags);
  const logger = createLogger(settings.logLevel);
  const redis = await connectOrStartRedis(settings.redisUrl, {
    dataDir: join(settings.stateDir, "redis"),
    log: (msg) => {
      logger.info(msg);
      progress(msg);
    },
  });
  redis.redis.on("error", (err) => logger.warn({ err }, "Redis connection error; reconnecting"));
  const service = new Service({ settings, redis: redis.redis, logger, progress });
  if (settings.repo) progress(`reading ${settings.repo} (branch ${settings.branch})…`);
  let stopping: Promise<void> | undefined;
  const stop = (beforeQuit?: (r: Redis) => Promise<void>) => {
    stopping ??= (async () => {
      await service.close().catch((err) => logger.error({ err }, "shutdown step failed"));
      await beforeQuit?.(redis.redis).catch((err) => logger.warn({ err }, "cleanup failed"));
      await redis.redis.quit().catch(() => redis.redis.disconnect());
      await redis.stop();
    })();
    return stopping;
  };
  try {
    const ports = await service.start();
    logger.info({ ...ports, repo: settings.repo ?? null }, "serving");
    progress(
      `serving: OpAMP on ${settings.opampHost}:${ports.opampPort}, admin API on http://${settings.apiHost}:${ports.apiPort}`,
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
};

/** What to tell the user when the service cannot start; undefined for an unexpected error. */
export function startFailure(err: unknown): string | undefined {
  if (err instanceof SyncError) return `cannot serve the fleet repository: ${err.message}`;
  const e = err as { code?: string; address?: string; port?: number; syscall?: string };
  const why = e.syscall === "listen" && e.code ? LISTEN_ERRORS[e.code] : undefined;
  if (why)
    return `cannot listen on ${e.address}:${e.port}: ${why}; see --opamp-listen and --api-listen`;
  return undefined;
}

/** The command's action: runs until a signal; resolves with the exit code. */
export async function runServe(
  flags: SettingsFlags & { settings?: string },
  { shutdownMs = 20_000 } = {},
): Promise<number> {
  const tty = process.stderr.isTTY === true;
  let handle: ServeHandle;
  try {
    handle = await startServe(flags, {
      progress: (line) => tty && process.stderr.write(`opamp-gitops: ${line}\n`),
    });
  } catch (err) {
    const message = startFailure(err);
    if (message === undefined) throw err;
    process.stderr.write(`opamp-gitops: ${message}\n`);
    return 1;
  }
  const { logger } = handle;
  return new Promise<number>((resolve) => {
    const onSignal = (signal: string) => {
      if (signalled) {
        logger.warn({ signal }, "second signal: exiting now");
        process.exit(1);
      }
      signalled = true;
      logger.info({ signal }, "shutting down");
      const force = setTimeout(() => {
        logger.error({ shutdownMs }, "shutdown took too long; exiting");
        process.exit(1);
      }, shutdownMs);
      void handle.stop().then(() => {
        clearTimeout(force);
        logger.info("stopped");
        resolve(0);
      });
    };
    let signalled = false;
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
  });
}
