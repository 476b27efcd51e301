/**
 * The admin port (default 127.0.0.1:4321), apart from the agents' port: the Hono app of
 * admin-app.ts (health, readiness, metrics, the push webhook, the JSON admin API under
 * `/api/v1` and the console under `/`) on Node's HTTP server through @hono/node-server.
 * Request bodies are never drained by the adapter: a refused or cut request closes its
 * connection instead. Each connection gets 10 s (`headersTimeoutMs`) to start a request and
 * send its headers and 60 s for the whole request (http-guards.ts, as on the OpAMP port); a
 * client (client-address.ts: an IPv6 one by its /64) at most `maxConnectionsPerAddress` open
 * connections, and the per-client limits of admin-limits.ts.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener, RequestError } from "@hono/node-server";
import type { Logger } from "pino";
import { guardSockets, httpTimeouts } from "../http-guards.js";
import { AdminAccess } from "./access.js";
import { adminApp } from "./admin-app.js";
import { type AdminLimitOptions, AdminLimits } from "./admin-limits.js";
import type { AdminBackend } from "./backend.js";
import { clientKey } from "./client-address.js";
import { EventStreams } from "./events-route.js";

/**
 * A request the adapter cannot even turn into a URL (a Host that is no host name, a bad
 * absolute target): never routed, refused as the guard would.
 */
function unroutable(err: unknown): Response {
  const hostError = err instanceof RequestError && err.message === "Invalid URL";
  const [status, code, message] = hostError
    ? [403, "HOST_NOT_ALLOWED", "the Host header is not a name of this service"]
    : [400, "BAD_REQUEST", "the request target cannot be parsed"];
  return new Response(`${JSON.stringify({ error: { code, message } }, null, 2)}\n`, {
    status,
    headers: { "Content-Type": "application/json", Connection: "close" },
  });
}

export { WEBHOOK_MAX_BYTES } from "./webhook-route.js";

export interface AdminServerOptions {
  backend: AdminBackend;
  logger: Logger;
  host?: string;
  port?: number;
  /** Accepted bearer tokens for /api/v1 and the console; none = open (logged as a warning). */
  tokens?: readonly string[];
  /** Secret of POST /hooks/git; undefined answers 404 there. */
  webhookSecret?: string;
  /** Branch whose pushes trigger a fetch (others are acknowledged and ignored). */
  branch?: string;
  /** DNS names the API may be reached by besides localhost and IP addresses (Host check). */
  allowedHosts?: readonly string[];
  /** Per-client request and failed-authentication limits (defaults of AdminLimitOptions). */
  limits?: AdminLimitOptions;
  /** Open connections per client (loopback included; IPv6 by /64). Default 64. */
  maxConnectionsPerAddress?: number;
  /** Time a connection may take to send its request headers, ms. Default 10 000. */
  headersTimeoutMs?: number;
}

/** Refusals of the admin port's limits since start, for /metrics. */
export interface AdminRefusals {
  rateLimited: number;
  authLimited: number;
  connections: number;
}

export class AdminServer {
  readonly #options: AdminServerOptions;
  readonly #server: Server;
  readonly #access: AdminAccess;
  readonly #events: EventStreams;
  readonly #limits: AdminLimits;
  readonly #sockets: { refused: number };

  constructor(options: AdminServerOptions) {
    this.#options = options;
    this.#access = new AdminAccess(options.tokens ?? []);
    this.#events = new EventStreams(options.backend);
    this.#limits = new AdminLimits(options.limits);
    const app = adminApp({
      backend: options.backend,
      access: this.#access,
      events: this.#events,
      limits: this.#limits,
      logger: options.logger,
      ...(options.webhookSecret ? { webhookSecret: options.webhookSecret } : {}),
      ...(options.branch ? { branch: options.branch } : {}),
      ...(options.allowedHosts ? { allowedHosts: options.allowedHosts } : {}),
    });
    const timeouts = httpTimeouts(
      options.headersTimeoutMs === undefined ? {} : { headersTimeoutMs: options.headersTimeoutMs },
    );
    this.#server = createServer(
      timeouts,
      getRequestListener(app.fetch, {
        overrideGlobalObjects: false,
        autoCleanupIncoming: false,
        // HTTP/1.0 without Host passes the guard, as before (browsers always send one).
        hostname: "localhost",
        errorHandler: unroutable,
      }),
    );
    this.#sockets = guardSockets(this.#server, options.logger, {
      maxPerAddress: options.maxConnectionsPerAddress ?? 64,
      silentMs: timeouts.headersTimeout,
      tls: false,
      label: "admin client",
      // Counted per client as the rate limits are: a host holds a whole IPv6 /64.
      addressKey: clientKey,
    });
  }

  /** Requests and connections refused by the limits since start. */
  refusals(): AdminRefusals {
    return { ...this.#limits.stats, connections: this.#sockets.refused };
  }

  /**
   * Replaces the accepted bearer tokens (rotation without restart); none opens the API. Event
   * streams opened with a token no longer accepted end. Returns how many ended.
   */
  setTokens(tokens: readonly string[]): number {
    if (this.#access.setTokens(tokens))
      this.#options.logger.warn("admin API tokens file now holds no token: the API is open");
    const ended = this.#events.endRefused((c) => this.#access.allowed(c));
    if (ended > 0)
      this.#options.logger.info(
        { ended },
        "admin tokens rotated: event streams of tokens removed ended",
      );
    return ended;
  }

  async start(): Promise<{ port: number }> {
    if (this.#access.open)
      this.#options.logger.warn(
        "admin API has no bearer tokens configured: it is open to whoever reaches its port",
      );
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#options.port ?? 4321, this.#options.host ?? "127.0.0.1", () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    const { port } = this.#server.address() as AddressInfo;
    this.#options.logger.info({ port }, "admin API listening");
    return { port };
  }

  close(): Promise<void> {
    this.#events.closeAll();
    this.#limits.close();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
