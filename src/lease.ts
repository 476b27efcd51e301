/**
 * A lease in Redis: which replica does a once-only duty (polling Git, writing the status
 * branch) while several `serve` processes share one Redis.
 *
 * Keys:
 * - `<key>`: `<fence>:<random>` of the holder, with a TTL of `ttlMs`, renewed every `ttlMs / 3`
 *   while held. A holder that dies (SIGKILL) stops renewing: another replica takes the lease
 *   once the key expired, i.e. within `ttlMs` plus its own attempt period (`ttlMs / 3`).
 * - `<key>:fence`: a counter INCRemented at each acquisition: the fencing token. It only grows,
 *   so a write made under an old lease can be told from one made under the current one.
 *
 * A holder whose key expired while nobody else took the lease gets it back at its next renewal
 * (same value, same fence): a long flush under load keeps its lease while its process lives.
 *
 * Fencing: a write that must come from the current holder only checks, in the same Lua script
 * that writes, that `GET <key>` still equals `value` (see `FENCE_CHECK_LUA`). A holder that
 * stalled past the TTL (a long GC pause, cut off from Redis) and resumes therefore cannot
 * write: its value (fence and random part) is not the key's any more. Writes outside Redis
 * (a Git push) are compare-and-swaps of their own (see src/status/publish.ts).
 *
 * Concurrency: each method is one atomic Lua script; `campaign()` runs one attempt at a time.
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";

const ACQUIRE_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur == false then
  local fence = redis.call('INCR', KEYS[2])
  local value = fence .. ':' .. ARGV[1]
  redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
  return value
end
if string.sub(cur, -#ARGV[1] - 1) == ':' .. ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return cur
end
return false
`;
// An expired key is taken back only if no acquisition happened since (the fence counter still
// holds this value's fence): no other holder existed in between, so fencing is intact.
const RENEW_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if cur == false and redis.call('GET', KEYS[2]) == string.match(ARGV[1], '^(%d+):') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`;
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** The check a fenced Lua write starts with: KEYS[1] is the lease key, ARGV[1] its value. */
export const FENCE_CHECK_LUA = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end`;

interface Scripts {
  leaseAcquire(key: string, fence: string, id: string, ttl: string): Promise<string | null>;
  leaseRenew(key: string, fence: string, value: string, ttl: string): Promise<number>;
  leaseRelease(key: string, value: string): Promise<number>;
}

export interface LeaseOptions {
  /** Lifetime without renewal, ms (`--leader-lease`). Default 5 000. */
  ttlMs?: number;
  /** Called once each time the lease is found gone or taken by another replica. */
  onLost?: () => void;
}

export class Lease {
  readonly key: string;
  readonly #id = randomBytes(12).toString("hex");
  readonly #redis: Redis & Scripts;
  readonly #ttl: number;
  readonly #onLost?: () => void;
  #value: string | undefined;
  #renewer?: NodeJS.Timeout;
  #campaign?: NodeJS.Timeout;
  #attempt: Promise<unknown> = Promise.resolve();

  constructor(redis: Redis, key: string, options: LeaseOptions = {}) {
    this.key = key;
    this.#ttl = options.ttlMs ?? 5_000;
    this.#onLost = options.onLost;
    redis.defineCommand("leaseAcquire", { numberOfKeys: 2, lua: ACQUIRE_LUA });
    redis.defineCommand("leaseRenew", { numberOfKeys: 2, lua: RENEW_LUA });
    redis.defineCommand("leaseRelease", { numberOfKeys: 1, lua: RELEASE_LUA });
    this.#redis = redis as Redis & Scripts;
  }

  get ttlMs(): number {
    return this.#ttl;
  }

  get held(): boolean {
    return this.#value !== undefined;
  }

  /** The holder's value (`<fence>:<random>`) for fenced writes; "" when not held. */
  get value(): string {
    return this.#value ?? "";
  }

  /** The fencing token of the current hold (grows with every acquisition); 0 when not held. */
  get fence(): number {
    return this.#value ? Number(this.#value.split(":")[0]) : 0;
  }

  /** Takes the lease if free (or renews it if ours); true when held afterwards. */
  async acquire(): Promise<boolean> {
    if (this.#value) return this.renew();
    const value = await this.#redis.leaseAcquire(
      this.key,
      `${this.key}:fence`,
      this.#id,
      String(this.#ttl),
    );
    if (!value) return false;
    this.#value = value;
    this.#renewer = setInterval(
      () => void this.renew().catch(() => {}),
      Math.max(50, Math.floor(this.#ttl / 3)),
    );
    this.#renewer.unref();
    return true;
  }

  /**
   * Extends the lease; false (and `onLost`) when it is no longer ours. A key that expired
   * (this process stalled past the TTL: a blocked event loop, a slow Redis) is taken back
   * with the same value when nobody acquired the lease since; once another replica did, the
   * fence counter moved and the lease stays lost.
   */
  async renew(): Promise<boolean> {
    const value = this.#value;
    if (!value) return false;
    const ok = await this.#redis.leaseRenew(
      this.key,
      `${this.key}:fence`,
      value,
      String(this.#ttl),
    );
    if (ok === 1) return true;
    if (this.#value !== value) return this.held;
    this.#drop();
    this.#onLost?.();
    return false;
  }

  /**
   * Keeps trying to hold the lease: an attempt now and every `ttlMs / 3`, calling `onHeld`
   * after each attempt that holds it (first or renewed) and `onLost` when it slips. Attempt
   * failures (Redis down) count as not held.
   */
  campaign(onAttempt: (held: boolean) => void = () => {}): void {
    const attempt = () => {
      this.#attempt = this.#attempt
        .then(() => this.acquire())
        .then(
          (held) => onAttempt(held),
          () => onAttempt(false),
        );
      return this.#attempt;
    };
    void attempt();
    this.#campaign = setInterval(attempt, Math.max(50, Math.floor(this.#ttl / 3)));
    this.#campaign.unref();
  }

  /** Stops campaigning and gives the lease up (only if still ours), so a successor is quick. */
  async release(): Promise<void> {
    clearInterval(this.#campaign);
    await this.#attempt;
    const value = this.#value;
    this.#drop();
    if (value) await this.#redis.leaseRelease(this.key, value).catch(() => 0);
  }

  #drop(): void {
    this.#value = undefined;
    clearInterval(this.#renewer);
    this.#renewer = undefined;
  }
}
