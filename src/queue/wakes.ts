/**
 * The controller's timers: turns the machine's `wake` effects into BullMQ delayed jobs
 * (src/queue/timers.ts), runs due ones as `tick` events, and makes sure none is lost:
 * - adding a job is retried until it succeeds or the controller closes;
 * - at start, every in-flight group's pending wakes are scheduled again (job ids make that
 *   harmless) and the group is ticked at once, for whatever fell due while no process ran
 *   (after an outage of the whole service, its apply deadlines are moved first: onOutage);
 * - every `sweepIntervalMs`, a group with a wake overdue by 5 s is ticked (a job lost
 *   between a write and its `add`, e.g. when the process died in between).
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { Backoff } from "../backoff.js";
import { type GroupSync, REDIS_RETRY } from "./group-sync.js";
import { pendingWakes } from "./machine.js";
import { inFlight } from "./serve.js";
import { RolloutTimers } from "./timers.js";

export interface WakesOptions {
  redis: Redis;
  prefix: string;
  logger: Logger;
  /** The groups this process holds. */
  groups(): Iterable<GroupSync>;
  /** Runs a due tick of `group` (time `at`); rejects to have BullMQ retry it. */
  tick(group: string, at: number): Promise<void>;
  sweepIntervalMs?: number;
  stalledIntervalMs?: number;
  lockDurationMs?: number;
}

const OVERDUE_MS = 5000;

export class Wakes {
  readonly #options: WakesOptions;
  readonly #timers: RolloutTimers;
  #sweep?: NodeJS.Timeout;
  #closed = false;

  constructor(options: WakesOptions) {
    this.#options = options;
    this.#timers = new RolloutTimers({
      connection: options.redis,
      prefix: options.prefix,
      logger: options.logger,
      handle: (job) => options.tick(job.group, job.at),
      ...(options.stalledIntervalMs ? { stalledIntervalMs: options.stalledIntervalMs } : {}),
      ...(options.lockDurationMs ? { lockDurationMs: options.lockDurationMs } : {}),
    });
  }

  /**
   * Reschedules the loaded groups' wakes, ticks them once (as a timer job does: the service's
   * last outage first, so a deadline that fell due while no process ran is moved, not
   * failed), and starts the worker.
   */
  async start(): Promise<void> {
    const now = Date.now();
    for (const sync of this.#options.groups()) {
      const r = inFlight(sync.state);
      if (!r) continue;
      for (const at of pendingWakes(sync.state)) await this.#timers.schedule(sync.group, r.id, at);
      this.#options.tick(sync.group, now).catch(() => {});
    }
    await this.#timers.start();
    this.#sweep = setInterval(() => this.#sweepOverdue(), this.#options.sweepIntervalMs ?? 30_000);
    this.#sweep.unref();
  }

  /** Adds the timer job; retried in the background until added or closed. */
  schedule(group: string, rolloutId: string, at: number): void {
    void (async () => {
      const backoff = new Backoff(REDIS_RETRY);
      while (!this.#closed) {
        try {
          return await this.#timers.schedule(group, rolloutId, at);
        } catch (err) {
          const delay = backoff.next();
          this.#options.logger.warn(
            { err, group, at, retryInMs: delay },
            "cannot schedule rollout timer",
          );
          await new Promise((r) => setTimeout(r, delay).unref());
        }
      }
    })();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweep);
    await this.#timers.close();
  }

  #sweepOverdue(): void {
    const now = Date.now();
    for (const sync of this.#options.groups()) {
      // As a timer job's tick (the service's last outage first), failing quietly: the next
      // sweep tries again.
      if (pendingWakes(sync.state).some((at) => at < now - OVERDUE_MS))
        this.#options.tick(sync.group, now).catch(() => {});
    }
  }
}
