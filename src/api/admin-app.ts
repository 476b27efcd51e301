/**
 * The routes of the admin port, as one Hono app: secure headers, the per-client limits
 * (admin-limits.ts) and the request guard (request-guard.ts: Host, Origin, Content-Type) on
 * every request, then
 *
 *   GET /healthz, /readyz (Redis and Git), /metrics (Prometheus)   (no token)
 *   POST /hooks/git                                                (HMAC or token)
 *   /api/v1/…  the JSON admin API (api-routes.ts) and its events   (bearer token or session)
 *   /…         the console (console/routes.ts)                     (session; login form)
 *
 * Everything the routes know of the service comes through the AdminBackend.
 */
import { Hono } from "hono";
import { secureHeaders } from "hono/secure-headers";
import type { Logger } from "pino";
import type { AdminAccess } from "./access.js";
import type { AdminEnv } from "./admin-env.js";
import type { AdminLimits } from "./admin-limits.js";
import { apiRoutes } from "./api-routes.js";
import type { AdminBackend } from "./backend.js";
import { consoleRoutes } from "./console/routes.js";
import type { EventStreams } from "./events-route.js";
import { fail, reply } from "./reply.js";
import { requestGuard } from "./request-guard.js";
import { webhookHandler } from "./webhook-route.js";

export interface AdminAppOptions {
  backend: AdminBackend;
  access: AdminAccess;
  events: EventStreams;
  logger: Logger;
  webhookSecret?: string;
  /** Branch whose pushes trigger a fetch. Default "main". */
  branch?: string;
  allowedHosts?: readonly string[];
  /** Serve the console under `/` (default true). */
  console?: boolean;
  /** Per-client request and failed-authentication limits (admin-limits.ts); none without. */
  limits?: AdminLimits;
}

export function adminApp(o: AdminAppOptions): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();
  const guard = requestGuard(o.allowedHosts);
  const { backend, access } = o;

  app.use(
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", "data:"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
      crossOriginEmbedderPolicy: false,
      // Not "no-referrer": with it, browsers send `Origin: null` on form posts (the login
      // form), which the CSRF check refuses.
      referrerPolicy: "same-origin",
    }),
  );
  for (const limit of o.limits?.middleware() ?? []) app.use(limit);
  app.use(async (c, next) => {
    const refused = guard({
      method: c.req.method,
      path: c.req.path,
      header: (name) => c.req.header(name),
    });
    if (!refused) return next();
    // The body is not read: close the connection after the answer rather than drain it.
    if (c.req.method !== "GET" && c.req.method !== "HEAD" && c.env?.outgoing)
      c.env.outgoing.shouldKeepAlive = false;
    return fail(c, refused.status as 403 | 415, refused.code, refused.message);
  });

  app.get("/healthz", (c) => reply(c, 200, { status: "ok" }));
  app.get("/readyz", async (c) => {
    const r = await backend.ready();
    return reply(c, r.ready ? 200 : 503, r);
  });
  app.get("/metrics", async (c) => {
    const m = await backend.metrics();
    return c.body(m.body, 200, { "Content-Type": m.type });
  });
  app.post(
    "/hooks/git",
    webhookHandler(backend, { secret: o.webhookSecret, branch: o.branch ?? "main" }),
  );

  app.use("/api/v1/*", async (c, next) => {
    if (!access.allowed(c)) return fail(c, 401, "UNAUTHORIZED", "missing or invalid bearer token");
    c.set("session", !access.open && c.req.header("authorization") === undefined);
    return next();
  });
  app.get("/api/v1/events", o.events.handler());
  app.route("/api/v1", apiRoutes(backend));
  if (o.console !== false) app.route("/", consoleRoutes(backend, access));

  app.notFound((c) => fail(c, 404, "NOT_FOUND", `no route ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => {
    o.logger.error({ err, url: c.req.url }, "admin API request failed");
    return fail(c, 500, "INTERNAL", "internal error; see the service log");
  });
  return app;
}
