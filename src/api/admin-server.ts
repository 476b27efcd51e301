/**
 * The admin port (default 127.0.0.1:4321), apart from the agents' port: `/healthz`,
 * `/readyz` (Redis and Git reachable), `/metrics` (Prometheus), `POST /hooks/git`
 * (HMAC-verified push webhook) and the JSON admin API under `/api/v1` (bearer tokens):
 *
 *   GET  /api/v1/agents[?group=g&state=connected|disconnected|unauthorized]
 *   GET  /api/v1/agents/<uid>
 *   GET  /api/v1/groups            GET /api/v1/groups/<group>
 *   GET  /api/v1/components        AvailableComponents hash → kind → types
 *   GET  /api/v1/rollouts          GET /api/v1/rollouts/<group>
 *   POST /api/v1/rollouts/<group>/pause|resume|promote|abort   (X-Opamp-Gitops-Actor: who)
 *
 * Errors are JSON `{error: {code, message}}` with 400/401/403/404/409/413/415/503. Every
 * request first passes request-guard.ts (Host, Origin, Content-Type: DNS rebinding and CSRF).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { bearerAuthenticator, isCanonicalUid } from "../opamp/index.js";
import { RolloutError } from "../queue/index.js";
import type { Service } from "../service/service.js";
import { ServiceMetrics } from "./metrics.js";
import { requestGuard } from "./request-guard.js";
import { agentView, componentsHashOf, componentTypes } from "./views.js";
import { verifyWebhook } from "./webhook.js";

export interface AdminServerOptions {
  service: Service;
  redis: Redis;
  logger: Logger;
  host?: string;
  port?: number;
  /** Accepted bearer tokens for /api/v1; none = open (logged as a warning). */
  tokens?: readonly string[];
  /** Secret of POST /hooks/git; undefined answers 404 there. */
  webhookSecret?: string;
  /** Branch whose pushes trigger a fetch (others are acknowledged and ignored). */
  branch?: string;
  /** DNS names the API may be reached by besides localhost and IP addresses (Host check). */
  allowedHosts?: readonly string[];
}

/** Largest webhook body read, in bytes; reading stops there (413). */
export const WEBHOOK_MAX_BYTES = 1024 * 1024;

type Reply = { status: number; body: unknown; type?: string };
const json = (status: number, body: unknown): Reply => ({ status, body });
const fail = (status: number, code: string, message: string) =>
  json(status, { error: { code, message } });

export class AdminServer {
  readonly metrics: ServiceMetrics;
  readonly #o: AdminServerOptions;
  readonly #server: Server;
  #authorized: ReturnType<typeof bearerAuthenticator>;
  #open: boolean;
  readonly #guard: ReturnType<typeof requestGuard>;

  constructor(options: AdminServerOptions) {
    this.#o = options;
    this.metrics = new ServiceMetrics(options.service);
    this.#authorized = bearerAuthenticator(options.tokens ?? []);
    this.#open = (options.tokens ?? []).length === 0;
    this.#guard = requestGuard(options.allowedHosts);
    this.#server = createServer((req, res) => {
      void this.#route(req, res)
        .catch((err): Reply => {
          options.logger.error({ err, url: req.url }, "admin API request failed");
          return fail(500, "INTERNAL", "internal error; see the service log");
        })
        .then((reply) => send(res, reply));
    });
  }

  /** Replaces the accepted bearer tokens (rotation without restart); none opens the API. */
  setTokens(tokens: readonly string[]): void {
    this.#authorized = bearerAuthenticator(tokens);
    if (tokens.length === 0 && !this.#open)
      this.#o.logger.warn("admin API tokens file now holds no token: the API is open");
    this.#open = tokens.length === 0;
  }

  async start(): Promise<{ port: number }> {
    if ((this.#o.tokens ?? []).length === 0)
      this.#o.logger.warn(
        "admin API has no bearer tokens configured: it is open to whoever reaches its port",
      );
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#o.port ?? 4321, this.#o.host ?? "127.0.0.1", () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    const { port } = this.#server.address() as AddressInfo;
    this.#o.logger.info({ port }, "admin API listening");
    return { port };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<Reply> {
    const url = new URL(req.url ?? "/", "http://admin");
    const parts = url.pathname.split("/").filter(Boolean);
    const method = req.method ?? "GET";
    const refused = this.#guard(req, url.pathname);
    if (refused) {
      // The body is not read: close the connection after the answer rather than drain it.
      if (method !== "GET" && method !== "HEAD") res.shouldKeepAlive = false;
      return fail(refused.status, refused.code, refused.message);
    }
    if (url.pathname === "/healthz") return json(200, { status: "ok" });
    if (url.pathname === "/readyz") return this.#ready();
    if (url.pathname === "/metrics") {
      return {
        status: 200,
        body: await this.metrics.registry.metrics(),
        type: this.metrics.registry.contentType,
      };
    }
    if (url.pathname === "/hooks/git" && method === "POST") return this.#webhook(req, res);
    if (parts[0] !== "api" || parts[1] !== "v1")
      return fail(404, "NOT_FOUND", `no route ${method} ${url.pathname}`);
    if (!this.#authorized(req.headers))
      return fail(401, "UNAUTHORIZED", "missing or invalid bearer token");
    const [, , resource, name, action] = parts;
    const { service } = this.#o;
    if (resource === "agents" && method === "GET")
      return name ? this.#agent(name) : this.#agents(url);
    if (resource === "groups" && method === "GET")
      return name ? this.#group(name) : json(200, await this.#groups());
    if (resource === "components" && method === "GET" && !name) return this.#components();
    if (resource === "rollouts" && method === "GET") {
      if (!name)
        return json(
          200,
          await Promise.all(service.rollouts.groups().map((g) => this.#rolloutStatus(g))),
        );
      const status = await this.#rolloutStatus(name);
      return status ? json(200, status) : fail(404, "ROLLOUT_UNKNOWN_GROUP", `no group "${name}"`);
    }
    if (resource === "rollouts" && name && method === "POST" && action)
      return this.#control(name, action, req);
    return fail(404, "NOT_FOUND", `no route ${method} ${url.pathname}`);
  }

  async #ready(): Promise<Reply> {
    const checks: Record<string, { ok: boolean; error?: string }> = {};
    try {
      // Commands wait for a reconnect (maxRetriesPerRequest: null): bound the probe.
      await Promise.race([
        this.#o.redis.ping(),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error("no answer within 1 s")), 1000).unref(),
        ),
      ]);
      checks.redis = { ok: true };
    } catch (err) {
      checks.redis = { ok: false, error: (err as Error).message };
    }
    const sync = this.#o.service.sync;
    if (sync) {
      const st = sync.status as { serving?: string; lastError?: { message: string } };
      checks.git = st.serving
        ? { ok: true }
        : { ok: false, error: st.lastError?.message ?? "no valid commit read yet" };
    }
    const ok = Object.values(checks).every((c) => c.ok);
    return json(ok ? 200 : 503, { ready: ok, checks });
  }

  async #webhook(req: IncomingMessage, res: ServerResponse): Promise<Reply> {
    const secret = this.#o.webhookSecret;
    if (!secret)
      return fail(
        404,
        "WEBHOOK_DISABLED",
        "no webhook secret is configured (--webhook-secret-file)",
      );
    const body = await readLimited(req, WEBHOOK_MAX_BYTES);
    if (!body) {
      res.shouldKeepAlive = false; // the rest of the body is never read
      return fail(413, "TOO_LARGE", "webhook body over 1 MiB");
    }
    const verdict = verifyWebhook(req.headers, body, secret);
    if (!verdict.ok) return fail(401, "WEBHOOK_UNAUTHORIZED", verdict.reason);
    const branch = this.#o.branch ?? "main";
    if (verdict.ref !== undefined && verdict.ref !== `refs/heads/${branch}`) {
      return json(200, {
        triggered: false,
        reason: `push to ${verdict.ref}, not refs/heads/${branch}`,
      });
    }
    void this.#o.service.sync?.trigger();
    return json(202, { triggered: true, provider: verdict.provider });
  }

  async #agents(url: URL): Promise<Reply> {
    const group = url.searchParams.get("group");
    const state = url.searchParams.get("state");
    if (state && state !== "connected" && state !== "disconnected" && state !== "unauthorized") {
      return fail(
        400,
        "BAD_FILTER",
        `state must be connected, disconnected or unauthorized, not "${state}"`,
      );
    }
    const { service } = this.#o;
    const out = [];
    for (const uid of (await service.opamp.store.list()).sort()) {
      const agent =
        service.opamp.handler.live.get(uid)?.state ?? (await service.opamp.store.load(uid));
      if (!agent) continue;
      const g = service.provider?.groupOf(agent);
      const denied = service.provider?.unauthorizedGroup(agent);
      if (group && g !== group) continue;
      if (
        state === "unauthorized"
          ? denied === undefined
          : state && agent.connected !== (state === "connected")
      )
        continue;
      out.push(agentView(agent, g, false, denied));
    }
    return json(200, out);
  }

  /**
   * Every distinct component set the agents reported: AvailableComponents hash (hex, as
   * `componentsHash` in agent rows) → kind → types. For `plan`'s incompatible agents.
   */
  async #components(): Promise<Reply> {
    const { service } = this.#o;
    const out: Record<string, Record<string, string[]>> = {};
    for (const uid of await service.opamp.store.list()) {
      const agent =
        service.opamp.handler.live.get(uid)?.state ?? (await service.opamp.store.load(uid));
      const hash = agent && componentsHashOf(agent);
      if (agent && hash && !out[hash]) out[hash] = componentTypes(agent);
    }
    return json(200, out);
  }

  async #agent(uid: string): Promise<Reply> {
    if (!isCanonicalUid(uid))
      return fail(400, "BAD_UID", "an instance uid is a lowercase canonical UUID");
    const { service } = this.#o;
    const agent =
      service.opamp.handler.live.get(uid)?.state ?? (await service.opamp.store.load(uid));
    if (!agent) return fail(404, "AGENT_UNKNOWN", `no agent ${uid}`);
    const { provider } = service;
    return json(
      200,
      agentView(agent, provider?.groupOf(agent), true, provider?.unauthorizedGroup(agent)),
    );
  }

  /**
   * A group's rollout status plus its incompatible agents (count and examples: agents left
   * out of its rollouts for lacking a component type its config uses).
   */
  async #rolloutStatus(group: string) {
    const { service } = this.#o;
    const status = service.rollouts.status(group);
    return status && { ...status, incompatible: await service.incompatible.summary(group) };
  }

  async #groups() {
    const { service } = this.#o;
    const current = service.sync?.current;
    const groups = [...(current?.groups.values() ?? [])];
    const incompatible = await Promise.all(groups.map((g) => service.incompatible.summary(g.name)));
    return groups.map((g, i) => {
      const status = service.rollouts.status(g.name);
      // What the group's agents are served (after a rollback: the stable hash, not Git's).
      const served = status
        ? (status.served ?? null)
        : { hash: g.configHash, commit: g.hashCommit };
      const files =
        served?.hash === g.configHash
          ? g.files.map((f) => f.name)
          : ((served && service.configs.get(served.hash)?.map((f) => f.name)) ?? []);
      return {
        name: g.name,
        configHash: served?.hash ?? null,
        hashCommit: served?.commit ?? null,
        servedCommit: current?.commit,
        priority: g.priority,
        files,
        rollout: status?.rollout ?? null,
        incompatible: incompatible[i] ?? { count: 0, examples: [] },
      };
    });
  }

  async #group(name: string): Promise<Reply> {
    const group = (await this.#groups()).find((g) => g.name === name);
    const status = this.#o.service.sync?.status;
    return group
      ? json(200, { ...group, sync: status })
      : fail(404, "GROUP_UNKNOWN", `no group "${name}" in the served commit`);
  }

  async #control(group: string, action: string, req: IncomingMessage): Promise<Reply> {
    const { rollouts } = this.#o.service;
    // Who asked, as the CLI says (user@host), for the audit trail; the address is always added.
    const actor = String(req.headers["x-opamp-gitops-actor"] ?? "")
      .replace(/[^\w.@:-]/g, "")
      .slice(0, 64);
    const by = `api:${actor ? `${actor} via ` : ""}${req.socket.remoteAddress ?? "?"}`;
    const actions = {
      pause: rollouts.pause,
      resume: rollouts.resume,
      promote: rollouts.promote,
      abort: rollouts.abort,
    };
    const run = Object.hasOwn(actions, action)
      ? actions[action as keyof typeof actions]
      : undefined;
    if (!run)
      return fail(
        404,
        "NOT_FOUND",
        `no rollout action "${action}" (pause, resume, promote, abort)`,
      );
    try {
      return json(200, await run.call(rollouts, group, by));
    } catch (err) {
      if (err instanceof RolloutError) {
        const status = err.code === "ROLLOUT_UNKNOWN_GROUP" ? 404 : 409;
        return fail(status, err.code, err.message);
      }
      throw err;
    }
  }
}

function send(res: ServerResponse, reply: Reply): void {
  const text =
    typeof reply.body === "string" ? reply.body : `${JSON.stringify(reply.body, replacer, 2)}\n`;
  res.writeHead(reply.status, { "Content-Type": reply.type ?? "application/json" }).end(text);
}

const replacer = (_k: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v);

/**
 * The request body, or undefined as soon as it passes `limit` bytes (a Content-Length over
 * the limit is refused before reading): reading stops there and the connection is closed
 * after the answer, so a client cannot make the server read (or buffer) more.
 */
function readLimited(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  if (Number(req.headers["content-length"] ?? 0) > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= limit) {
        chunks.push(c);
        return;
      }
      req.off("data", onData);
      req.pause();
      chunks.length = 0;
      resolve(undefined);
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
