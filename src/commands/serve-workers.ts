/**
 * `serve --workers N` (N > 1): this process becomes a node:cluster primary that forks N
 * workers, each running the whole service (a replica: see README "Several replicas") on the
 * shared OpAMP and admin ports. `--worker-scheduling` (schedulingPolicy):
 * - "os" (default, cluster SCHED_NONE): the workers accept connections from the shared socket
 *   themselves; a worker whose event loop is free takes the next one. The primary's round
 *   robin cost an IPC round trip per connection (a handle sent, an ack written back) and
 *   handed each worker one connection per ack, so a busy worker held up the connections
 *   queued for it (bench:serve, --workers 2, loaded machine: connect 133 → 63 s, CPU per
 *   connect 9.4 → 5.7 ms, write syscalls per connect 11.0 → 6.1; agents split 516/546). The
 *   kernel's choice can be uneven on an idle host, and connection limits are per worker.
 * - "rr" (SCHED_RR): the primary accepts and hands connections out round robin: an even
 *   spread at the cost of that hop.
 *
 * - A private redis-server, when one is needed, is started here, once, before the workers
 *   (each would otherwise try to start its own), and stopped after they all exited.
 * - A worker that dies after it served is forked again; one that dies within 10 s of its start
 *   is forked again after a delay that doubles up to 30 s. A worker that dies before any
 *   worker served (bad settings, port in use, repository unreadable: it printed why) stops
 *   them all, and the primary exits with that worker's code: retrying would not help.
 * - SIGTERM/SIGINT: each worker that serves is asked over IPC to shut down (a signal could
 *   reach it twice, from the terminal and from here, and a second signal means "exit now");
 *   resolves with 0 when every one of them exited with 0, else 1. A worker still starting (a
 *   replacement) has nothing to drain and may not listen for IPC yet (a message before its
 *   listener is lost): it gets SIGTERM, and how it ends does not count (started while Redis is
 *   down, it fails at its connect). A second signal, or `shutdownMs` passing, kills the
 *   workers (SIGKILL) and resolves with 1.
 * - Workers shut down on their own when the primary's IPC channel closes (the primary died).
 * - Workers start with `MALLOC_ARENA_MAX=2` unless the primary's environment sets it (any
 *   value, kept as is): glibc reads it only at a process's start, and a worker is one (see
 *   workerEnv).
 */
import cluster, { type Worker } from "node:cluster";
import { createServer } from "node:net";
import { join } from "node:path";
import { createLogger } from "../logger.js";
import { connectOrStartRedis } from "../redis-private.js";
import { resolveSettings, type Settings, type SettingsFlags } from "../settings.js";
import { startFailure } from "./serve.js";

/** The IPC message a worker takes as its shutdown signal. */
export const SHUTDOWN_MESSAGE = "opamp-gitops:shutdown";
/** The IPC message a worker sends once it serves. */
export const SERVING_MESSAGE = "opamp-gitops:serving";

const QUICK_DEATH_MS = 10_000;

/** The node:cluster scheduling policy of a `--worker-scheduling` setting. */
export function schedulingPolicy(setting: Settings["workerScheduling"]): number {
  return setting === "rr" ? cluster.SCHED_RR : cluster.SCHED_NONE;
}

/** Binds `host:port` and lets it go again; rejects with the listen error. Port 0: nothing to check. */
function canListen(host: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/**
 * The environment a worker is forked with, on top of the primary's own (cluster.fork merges
 * it in): its slot, and glibc's malloc arena limit where the operator did not choose one. By
 * default each of a worker's threads (libuv's pool, V8's GC helpers, the decode and render
 * workers) gets an arena of its own, up to 8 per core, each keeping what a connect burst
 * freed (README "Memory allocator": 25–32 against 33–37 KB of RSS per agent, CPU
 * unchanged). Ignored where the C library is not glibc.
 */
export function workerEnv(slot: number, env: NodeJS.ProcessEnv): Record<string, string> {
  return {
    OPAMP_GITOPS_WORKER_SLOT: String(slot),
    ...(env.MALLOC_ARENA_MAX === undefined ? { MALLOC_ARENA_MAX: "2" } : {}),
  };
}

/** Runs the primary until a signal; resolves with the exit code. */
export async function runPrimary(
  flags: SettingsFlags & { settings?: string },
  { shutdownMs = 20_000, env = process.env } = {},
): Promise<number> {
  const settings = resolveSettings(flags, env);
  const logger = createLogger(settings.logLevel).child({ module: "primary" });
  // A port that cannot be had fails here, once, with the message a single process gives
  // (each worker would otherwise fail on its own).
  try {
    await canListen(settings.opampHost, settings.opampPort);
    await canListen(settings.apiHost, settings.apiPort);
  } catch (err) {
    const message = startFailure(err);
    if (message === undefined) throw err;
    process.stderr.write(`opamp-gitops: ${message}\n`);
    return 1;
  }
  const redis = await connectOrStartRedis(settings.redisUrl, {
    dataDir: join(settings.stateDir, "redis"),
    log: (msg) => logger.info(msg),
  });
  // Workers open their own connections; the primary only keeps a private server alive.
  redis.redis.disconnect();
  let stopping = false;
  /** Some worker served: one failing to start later is restarted, not fatal. */
  let anyServed = false;
  let failStart: (code: number) => void = () => {};
  const startFailed = new Promise<number>((resolve) => {
    failStart = resolve;
  });
  const restartDelay = new Map<number, number>();
  /** Pending restarts, cleared when stopping. */
  const restarts = new Set<NodeJS.Timeout>();
  /** Workers that said they serve. */
  const serving = new WeakSet<Worker>();
  const fork = (slot: number): Worker => {
    const worker = cluster.fork(workerEnv(slot, env));
    const startedAt = Date.now();
    worker.on("message", (m) => {
      if (m !== SERVING_MESSAGE) return;
      serving.add(worker);
      anyServed = true;
    });
    worker.on("exit", (code, signal) => {
      if (stopping) return;
      // No worker ever served: this one's reason (it printed it) stops them all.
      if (!anyServed) {
        failStart(code ?? 1);
        return;
      }
      const quick = Date.now() - startedAt < QUICK_DEATH_MS;
      const delay = quick ? Math.min(30_000, (restartDelay.get(slot) ?? 250) * 2) : 0;
      restartDelay.set(slot, quick ? delay : 250);
      logger.error(
        { worker: slot, pid: worker.process.pid, code, signal, restartInMs: delay },
        "worker died; starting another",
      );
      // Not unref'd: with every worker dead and waiting here, this timer is all that keeps
      // the primary alive (its event loop would empty, and Node exits 13).
      const timer = setTimeout(() => {
        restarts.delete(timer);
        if (stopping) return;
        const next = fork(slot);
        workers.set(slot, next);
        logger.info({ worker: slot, pid: next.process.pid }, "worker restarted");
      }, delay);
      restarts.add(timer);
    });
    return worker;
  };
  const workers = new Map<number, Worker>();
  // Before the first fork (see the file's comment). Set here, not at import: tests import
  // this module into processes that fork for other reasons.
  cluster.schedulingPolicy = schedulingPolicy(settings.workerScheduling);
  for (let slot = 0; slot < settings.workers; slot++) workers.set(slot, fork(slot));
  logger.info(
    {
      workers: settings.workers,
      scheduling: cluster.schedulingPolicy === cluster.SCHED_RR ? "rr" : "os",
      pids: [...workers.values()].map((w) => w.process.pid),
    },
    "workers started",
  );

  const code = await new Promise<number>((resolve) => {
    void startFailed.then((failed) => {
      if (stopping) return;
      stopping = true;
      logger.error({ code: failed }, "a worker could not start; stopping");
      for (const w of workers.values()) if (w.process.exitCode === null) w.send(SHUTDOWN_MESSAGE);
      void Promise.all(
        [...workers.values()].map(
          (w) =>
            new Promise<void>((done) => {
              if (w.process.exitCode !== null || w.process.signalCode !== null) return done();
              w.once("exit", () => done());
            }),
        ),
      ).then(() => resolve(failed || 1));
    });
    const onSignal = (signal: string) => {
      if (stopping) {
        logger.warn({ signal }, "killing the workers now");
        for (const w of workers.values()) w.process.kill("SIGKILL");
        resolve(1);
        return;
      }
      stopping = true;
      logger.info({ signal }, "shutting down the workers");
      const force = setTimeout(() => {
        logger.error({ shutdownMs }, "workers took too long to stop; killing them");
        for (const w of workers.values()) w.process.kill("SIGKILL");
        resolve(1);
      }, shutdownMs + 2000);
      void Promise.all(
        [...workers.values()].map(
          (w) =>
            new Promise<number>((done) => {
              // One that died before the shutdown was logged then and is being replaced:
              // it does not make this shutdown unclean.
              if (w.process.exitCode !== null || w.process.signalCode !== null) return done(0);
              if (!serving.has(w)) {
                w.once("exit", (c, sig) => {
                  logger.info(
                    { pid: w.process.pid, code: c, signal: sig },
                    "starting worker stopped",
                  );
                  done(0);
                });
                w.process.kill("SIGTERM");
                return;
              }
              w.once("exit", (c) => done(c ?? 1));
              w.send(SHUTDOWN_MESSAGE);
            }),
        ),
      ).then((codes) => {
        clearTimeout(force);
        resolve(codes.every((c) => c === 0) ? 0 : 1);
      });
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
  });
  for (const timer of restarts) clearTimeout(timer);
  await redis.stop();
  logger.info({ code }, "stopped");
  return code;
}
