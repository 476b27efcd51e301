/**
 * One writer per status branch across replicas: a lease (src/lease.ts) on `<base>:lock`,
 * renewed every TTL/3 while held. Its value carries a fencing token (a counter incremented at
 * every acquisition): the ack script (pending-store.ts) writes only while the lock still holds
 * the value this writer acquired, so a writer that stalled past the TTL and resumes cannot
 * overwrite its successor's facts, and nothing pending is dropped by it.
 *
 * The lock saves work; it is not what keeps history safe: a publish is a compare-and-swap of
 * the branch (a ref lock locally, a fast-forward-only push remotely), so two writers that
 * both believe they hold the lock still cannot overwrite each other's commits.
 *
 * TTL: `--leader-lease` in serve (default 5 s): a successor takes over at its first flush
 * after the holder's lease expired, so at most TTL + one flush interval after a SIGKILL.
 */
import type { Redis } from "ioredis";
import { Lease } from "../lease.js";

export interface WriterLockOptions {
  /** Lock lifetime without renewal, ms. Default 30 000. */
  ttlMs?: number;
  /** Called once when a renewal finds the lock gone or taken. */
  onLost?: () => void;
}

export class WriterLock {
  readonly key: string;
  readonly #lease: Lease;
  /** The value of the last hold: fenced writes check it even after the hold slipped. */
  #token = "\u0000not-held";

  constructor(redis: Redis, key: string, options: WriterLockOptions = {}) {
    this.key = key;
    this.#lease = new Lease(redis, key, {
      ttlMs: options.ttlMs ?? 30_000,
      ...(options.onLost ? { onLost: options.onLost } : {}),
    });
  }

  /** The fenced value (`<fence>:<random>`) of this writer's last hold, for the ack script. */
  get token(): string {
    return this.#token;
  }

  /** The fencing token of the current hold; 0 when not held. */
  get fence(): number {
    return this.#lease.fence;
  }

  get held(): boolean {
    return this.#lease.held;
  }

  /** Takes the lock if free (or renews it if ours); true when held afterwards. */
  async acquire(): Promise<boolean> {
    const held = await this.#lease.acquire();
    if (held) this.#token = this.#lease.value;
    return held;
  }

  /** Extends the lock; false (and `onLost`) when it is no longer ours. */
  renew(): Promise<boolean> {
    return this.#lease.renew();
  }

  /** Gives the lock up (only if still ours). */
  release(): Promise<void> {
    return this.#lease.release();
  }
}
