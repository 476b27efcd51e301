/**
 * When the service last served, and its last outage, in Redis, so that rollouts do not count
 * time in which no agent's report could count against apply deadlines.
 *
 * Keys (prefix `<p>`):
 * - `<p>:service:alive-at`: when a process of the service last reached Redis through
 *   `refresh()` (its clock, ms; never moved back; no TTL);
 * - `<p>:service:outage`: the last outage, `<from>:<to>` (ms), kept `keepMs`.
 *
 * An outage is a gap longer than `timeoutMs` between two refreshes of any process: every
 * process was gone (a restart of the whole service), or none could reach Redis (a Redis
 * outage, a network cut) while they ran. A replica cut off alone is none: the others refresh.
 * The refresh that ends the gap records it, atomically, so whichever process or path reaches
 * Redis first after it (a liveness tick, a rollout timer's tick on any replica) finds it.
 * Only the last outage is kept: a second one before a group's next tick hides the first.
 * Times are the processes' clocks (as rollouts' deadlines are); a refresh that waited for
 * Redis carries the time it was asked, so with refreshes one at a time every third of the
 * timeout (replica-liveness.ts) an outage is recorded up to a third of the timeout short.
 *
 * Concurrency: any number of processes and calls; each call is one script run.
 */
import type { Redis } from "ioredis";

/** The service could not serve from `from` to `to` (ms since the epoch). */
export interface Outage {
  from: number;
  to: number;
}

/**
 * KEYS[1] alive-at, KEYS[2] outage; ARGV[1] now (ms), ARGV[2] the gap that is an outage
 * (ms), ARGV[3] how long the outage is kept (ms). Returns the last outage ("" none) and 1
 * when this call recorded it, else 0.
 */
const REFRESH_LUA = `
local now = tonumber(ARGV[1])
local prev = tonumber(redis.call('GET', KEYS[1]) or '')
if prev == nil or now > prev then redis.call('SET', KEYS[1], ARGV[1]) end
local ended = 0
if prev ~= nil and now - prev > tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], string.format('%d:%d', prev, now), 'PX', ARGV[3])
  ended = 1
end
return {redis.call('GET', KEYS[2]) or '', ended}
`;

interface Scripts {
  serviceAliveRefresh(
    aliveAt: string,
    outage: string,
    now: string,
    gapMs: string,
    keepMs: string,
  ): Promise<[string, number]>;
}

export interface ServiceAliveOptions {
  redis: Redis;
  /** Redis key prefix of the service. */
  prefix: string;
  /** A gap between refreshes longer than this is an outage (ms). Default 15 000. */
  timeoutMs?: number;
  /**
   * The last outage is kept this long (ms): longer than any apply timeout, since a group's
   * next tick after it may be its next deadline. Default 7 days.
   */
  keepMs?: number;
  /** Called with the outage a refresh of this instance ended (once per outage, service-wide). */
  onEnded?: (outage: Outage) => void;
  now?: () => number;
}

export class ServiceAlive {
  readonly #redis: Redis & Scripts;
  readonly #keys: [string, string];
  readonly #timeoutMs: number;
  readonly #keepMs: number;
  readonly #now: () => number;
  readonly #onEnded: ((outage: Outage) => void) | undefined;

  constructor({
    redis,
    prefix,
    timeoutMs = 15_000,
    keepMs = 7 * 24 * 3600_000,
    onEnded,
    now = Date.now,
  }: ServiceAliveOptions) {
    redis.defineCommand("serviceAliveRefresh", { numberOfKeys: 2, lua: REFRESH_LUA });
    this.#redis = redis as Redis & Scripts;
    this.#keys = [`${prefix}:service:alive-at`, `${prefix}:service:outage`];
    this.#timeoutMs = timeoutMs;
    this.#keepMs = keepMs;
    this.#now = now;
    this.#onEnded = onEnded;
  }

  /**
   * Says the service serves now, and returns its last outage (the one this call ended, if
   * any), or undefined when none is recorded. Rejects when Redis cannot be reached.
   */
  async refresh(): Promise<Outage | undefined> {
    const [recorded, ended] = await this.#redis.serviceAliveRefresh(
      ...this.#keys,
      String(Math.floor(this.#now())),
      String(this.#timeoutMs),
      String(this.#keepMs),
    );
    const outage = parseOutage(recorded);
    if (outage && ended === 1) this.#onEnded?.(outage);
    return outage;
  }
}

/** `<from>:<to>` as stored; undefined for anything else. */
export function parseOutage(text: string | null | undefined): Outage | undefined {
  const match = /^(\d+):(\d+)$/.exec(text ?? "");
  if (!match) return undefined;
  const from = Number(match[1]);
  const to = Number(match[2]);
  return to > from ? { from, to } : undefined;
}
