/**
 * What one client of the admin port may ask, so that whoever reaches the port over the
 * network cannot exhaust the service through it or guess its tokens:
 *
 * - requests: at most `requestsPerMinute` per client in each fixed one-minute window
 *   (hono-rate-limiter and its memory store); beyond it, `429 RATE_LIMITED` with
 *   `Retry-After` (seconds until the window ends) and the draft-6 `RateLimit-*` headers.
 * - failed authentication: once a client drew `authFailuresPerMinute` answers of 401 (a
 *   bearer token, console login or webhook signature not accepted) in a window, every request
 *   of it is refused with `429 AUTH_RATE_LIMITED` until that window ends.
 *
 * A client is its TCP peer address, an IPv6 one by its /64 (client-address.ts). Clients on
 * the loopback interface (the CLI, probes and sidecars of this host) are never limited unless
 * `limitLoopback`, and `/healthz` and `/readyz` never are: a refused probe restarts the
 * service. Behind a reverse proxy every client has the proxy's address: limit there instead.
 * Counts are per process (`serve --workers N` shares the port between N of them). Memory: one
 * entry per client seen in the last two windows.
 */
import type { Context, MiddlewareHandler } from "hono";
import { MemoryStore, rateLimiter } from "hono-rate-limiter";
import type { AdminEnv } from "./admin-env.js";
import { clientKey, isLoopbackAddress } from "./client-address.js";
import { fail } from "./reply.js";

export interface AdminLimitOptions {
  /** Requests per client per minute; 0 for no limit. Default 600. */
  requestsPerMinute?: number;
  /** Answers of 401 per client per minute before it is refused; 0 for no limit. Default 20. */
  authFailuresPerMinute?: number;
  /** Limit loopback clients too (tests). Default false. */
  limitLoopback?: boolean;
  /** Window length in ms. Default 60 000 (the flags are per minute). */
  windowMs?: number;
}

/** Counts of refusals since start, for /metrics. */
export interface AdminLimitStats {
  rateLimited: number;
  authLimited: number;
}

const PROBES = new Set(["/healthz", "/readyz"]);

export class AdminLimits {
  readonly stats: AdminLimitStats = { rateLimited: 0, authLimited: 0 };
  readonly #options: Required<AdminLimitOptions>;
  readonly #requests = new MemoryStore<AdminEnv>();
  readonly #failures = new MemoryStore<AdminEnv>();

  constructor({
    requestsPerMinute = 600,
    authFailuresPerMinute = 20,
    limitLoopback = false,
    windowMs = 60_000,
  }: AdminLimitOptions = {}) {
    this.#options = { requestsPerMinute, authFailuresPerMinute, limitLoopback, windowMs };
  }

  /** The middlewares, in order: failed-authentication guard, then the request limit. */
  middleware(): MiddlewareHandler<AdminEnv>[] {
    const { requestsPerMinute, authFailuresPerMinute, windowMs } = this.#options;
    const out: MiddlewareHandler<AdminEnv>[] = [];
    if (authFailuresPerMinute > 0) out.push(this.#authGuard(authFailuresPerMinute, windowMs));
    if (requestsPerMinute > 0)
      out.push(
        rateLimiter<AdminEnv>({
          windowMs,
          limit: requestsPerMinute,
          standardHeaders: "draft-6",
          store: this.#requests,
          keyGenerator: (c) => clientKey(c.env?.incoming?.socket.remoteAddress),
          skip: (c) => this.#exempt(c),
          handler: (c) => {
            this.stats.rateLimited++;
            const after = c.res.headers.get("Retry-After") ?? "60";
            return fail(
              c,
              429,
              "RATE_LIMITED",
              `more than ${requestsPerMinute} requests per minute from this address; retry after ${after} s`,
            );
          },
        }),
      );
    return out;
  }

  /** Stops the stores' timers and forgets every count. Idempotent. */
  close(): void {
    this.#requests.shutdown();
    this.#failures.shutdown();
  }

  #exempt(c: Context<AdminEnv>): boolean {
    if (PROBES.has(c.req.path)) return true;
    return !this.#options.limitLoopback && isLoopbackAddress(c.env?.incoming?.socket.remoteAddress);
  }

  #authGuard(limit: number, windowMs: number): MiddlewareHandler<AdminEnv> {
    // The store's own window logic; init only reads windowMs.
    this.#failures.init({ windowMs } as Parameters<MemoryStore<AdminEnv>["init"]>[0]);
    return async (c, next) => {
      if (this.#exempt(c)) return next();
      const key = clientKey(c.env?.incoming?.socket.remoteAddress);
      const seen = this.#failures.get(key);
      const left = (seen?.resetTime?.getTime() ?? 0) - Date.now();
      if (seen && left > 0 && seen.totalHits >= limit) {
        this.stats.authLimited++;
        const after = Math.max(1, Math.ceil(left / 1000));
        c.header("Retry-After", String(after));
        return fail(
          c,
          429,
          "AUTH_RATE_LIMITED",
          `${limit} failed authentications in a minute from this address; retry after ${after} s`,
        );
      }
      await next();
      if (c.res.status === 401) this.#failures.increment(key);
    };
  }
}
