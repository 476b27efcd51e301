/**
 * One writer per status branch across replicas: a Redis lock with a random token and a TTL,
 * renewed every TTL/3 while held. Only the holder's token can renew or release it, so a
 * replica that stalled past the TTL cannot release its successor's lock.
 *
 * The lock saves work; it is not what keeps history safe: a publish is a compare-and-swap of
 * the branch (a ref lock locally, a fast-forward-only push remotely), so two writers that
 * both believe they hold the lock still cannot overwrite each other's commits.
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";

const RENEW_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`;
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

interface Scripts {
  statusLockRenew(key: string, token: string, ttl: string): Promise<number>;
  statusLockRelease(key: string, token: string): Promise<number>;
}

export interface WriterLockOptions {
  /** Lock lifetime without renewal, ms. Default 30 000. */
  ttlMs?: number;
  /** Called once when a renewal finds the lock gone or taken. */
  onLost?: () => void;
}

export class WriterLock {
  readonly key: string;
  readonly token = randomBytes(16).toString("hex");
  readonly #redis: Redis & Scripts;
  readonly #ttl: number;
  readonly #onLost?: () => void;
  #held = false;
  #timer?: NodeJS.Timeout;

  constructor(redis: Redis, key: string, options: WriterLockOptions = {}) {
    this.key = key;
    this.#ttl = options.ttlMs ?? 30_000;
    this.#onLost = options.onLost;
    redis.defineCommand("statusLockRenew", { numberOfKeys: 1, lua: RENEW_LUA });
    redis.defineCommand("statusLockRelease", { numberOfKeys: 1, lua: RELEASE_LUA });
    this.#redis = redis as Redis & Scripts;
  }

  get held(): boolean {
    return this.#held;
  }

  /** Takes the lock if free (or renews it if ours); true when held afterwards. */
  async acquire(): Promise<boolean> {
    if (this.#held) return this.renew();
    const ok = await this.#redis.set(this.key, this.token, "PX", this.#ttl, "NX");
    if (ok !== "OK") return false;
    this.#held = true;
    this.#timer = setInterval(
      () => void this.renew().catch(() => {}),
      Math.max(100, this.#ttl / 3),
    );
    this.#timer.unref();
    return true;
  }

  /** Extends the lock; false (and `onLost`) when it is no longer ours. */
  async renew(): Promise<boolean> {
    if (!this.#held) return false;
    const ok = await this.#redis.statusLockRenew(this.key, this.token, String(this.#ttl));
    if (ok === 1) return true;
    this.#drop();
    this.#onLost?.();
    return false;
  }

  /** Gives the lock up (only if still ours). */
  async release(): Promise<void> {
    const was = this.#held;
    this.#drop();
    if (was) await this.#redis.statusLockRelease(this.key, this.token).catch(() => 0);
  }

  #drop(): void {
    this.#held = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
