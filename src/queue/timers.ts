/**
 * Rollout timers (stage pauses, apply deadlines) as BullMQ delayed jobs in the queue
 * `<prefix>:rollout-timers`. The only file that imports bullmq.
 *
 * - A timer is a job named "tick" with data `{ group, rolloutId, at }` and job id
 *   `<rolloutId>.<at>`: asking twice for the same wake while it is pending adds one job.
 *   (BullMQ refuses custom ids with ':' unless they have exactly three parts, so the prefix
 *   is not repeated in the id: the queue's key prefix already scopes it.)
 * - Jobs are idempotent: the handler re-evaluates the group with now ≥ `at`, so a job run twice
 *   (after a stall) or late changes nothing more than running it once.
 * - Completed jobs are removed at once (so a later wake with the same id is not swallowed);
 *   failed ones are retried with backoff, then kept (last 1000) for inspection.
 * - BullMQ needs `maxRetriesPerRequest: null` on the connections it blocks on; the Worker
 *   duplicates the given connection for that and BullMQ forces the option on the duplicate.
 */
import { Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";

export const TIMER_QUEUE = "rollout-timers";

export interface TimerJob {
  group: string;
  rolloutId: string;
  /** When the tick is due (ms since the epoch). */
  at: number;
}

export interface RolloutTimersOptions {
  /** Connection for the queue and the worker (the worker duplicates it for blocking reads). */
  connection: Redis;
  prefix: string;
  logger: Logger;
  /** Runs one due tick; a rejection makes BullMQ retry the job. */
  handle(job: TimerJob): Promise<void>;
  /** Jobs handled at once by this process (default 8). */
  concurrency?: number;
  /** BullMQ stalled-job check interval in ms (default 30 000). */
  stalledIntervalMs?: number;
  /**
   * BullMQ job lock in ms (default 30 000): a tick whose worker died (SIGKILL) is found
   * stalled once its lock expired, at the next stalled check, and run again by another replica.
   */
  lockDurationMs?: number;
}

export class RolloutTimers {
  readonly #options: RolloutTimersOptions;
  readonly #queue: Queue<TimerJob>;
  #worker?: Worker<TimerJob>;
  #closing?: Promise<void>;

  constructor(options: RolloutTimersOptions) {
    this.#options = options;
    this.#queue = new Queue<TimerJob>(TIMER_QUEUE, {
      connection: options.connection,
      prefix: options.prefix,
      defaultJobOptions: {
        removeOnComplete: true,
        removeOnFail: 1000,
        attempts: 10,
        backoff: { type: "exponential", delay: 500 },
      },
    });
    this.#queue.on("error", (err) => options.logger.warn({ err }, "rollout timer queue error"));
  }

  /** Starts processing due timers. */
  async start(): Promise<void> {
    if (this.#worker || this.#closing) return;
    const worker = new Worker<TimerJob>(TIMER_QUEUE, (job) => this.#options.handle(job.data), {
      connection: this.#options.connection,
      prefix: this.#options.prefix,
      concurrency: this.#options.concurrency ?? 8,
      stalledInterval: this.#options.stalledIntervalMs ?? 30_000,
      lockDuration: this.#options.lockDurationMs ?? 30_000,
      autorun: true,
    });
    worker.on("error", (err) => this.#options.logger.warn({ err }, "rollout timer worker error"));
    worker.on("failed", (job, err) =>
      this.#options.logger.warn({ err, job: job?.data }, "rollout timer failed; BullMQ retries it"),
    );
    this.#worker = worker;
    await worker.waitUntilReady();
  }

  /** Schedules a tick for `group` at `at` (now or in the past: as soon as possible). */
  async schedule(group: string, rolloutId: string, at: number): Promise<void> {
    if (this.#closing) return;
    const delay = Math.max(0, at - Date.now());
    await this.#queue.add("tick", { group, rolloutId, at }, { jobId: `${rolloutId}.${at}`, delay });
  }

  /**
   * Idempotent: stops the worker and the queue, bounded even when Redis is unreachable.
   * The worker is closed with `force` (its blocking connection is dropped, not QUIT, which
   * would wait for Redis): a tick still running is abandoned, BullMQ finds it stalled and runs
   * it again elsewhere, which is harmless since ticks are idempotent.
   */
  close(waitMs = 2000): Promise<void> {
    this.#closing ??= (async () => {
      const log = this.#options.logger;
      if (this.#worker && !(await within(this.#worker.close(true), waitMs))) {
        log.warn("rollout timer worker did not stop in time");
      }
      if (!(await within(this.#queue.close(), waitMs))) {
        log.warn("rollout timer queue did not close in time (Redis unreachable?)");
      }
    })();
    return this.#closing;
  }
}

/** Whether `p` settled within `ms` (its rejection counts as settled). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
