/**
 * The JSON admin API under `/api/v1` (bearer token or console session; see access.ts):
 *
 *   GET  /agents[?group=g&state=connected|disconnected|unauthorized&q=text&after=uid&offset=n&limit=n]
 *        (an array in uid order; a page is `limit` agents, default 50, at most 1000 (more is
 *        refused with 400); `after` is a cursor, stable while agents come and go: pass the
 *        `X-Next-After` header of the previous page, present while more may follow, with
 *        `offset=<X-Next-Offset>` when that header is present (a filtered page whose budget
 *        ran out while still skipping `offset`); a filtered
 *        page's work is bounded (src/service/agent-list.ts), so it may be short, even empty,
 *        and still have it. `X-Total-Count`: how many match in all, when known exactly (always
 *        unfiltered; filtered, when counted within the count budget); otherwise
 *        `X-Total-Count-Estimate`, extrapolated from a counted sample)
 *   GET  /agents/<uid>             GET /agents/<uid>/config (desired vs effective, redacted)
 *   GET  /groups                   GET /groups/<group>
 *   GET  /components               AvailableComponents hash → kind → types (bounded:
 *        `X-Truncated: true` when sets were left out; component-sets.ts)
 *   GET  /rollouts                 GET /rollouts/<group>        GET /rollouts/<group>/history
 *   POST /rollouts/<group>/pause|resume|promote|abort   (X-Opamp-Gitops-Actor: who)
 *   POST /agents/<uid>/revoke      (its certificates and per-agent tokens; X-Opamp-Gitops-Actor)
 *   POST /agents/<uid>/restart     POST /groups/<group>/restart   (RESTART; likewise)
 *   GET  /events                   (server-sent events, events-route.ts)
 *
 * Errors are JSON `{error: {code, message}}`.
 */
import type { Context } from "hono";
import { Hono } from "hono";
import { isCanonicalUid } from "../opamp/index.js";
import { RolloutError } from "../queue/index.js";
import type { AdminEnv } from "./admin-env.js";
import type { AdminBackend, AgentQuery, RolloutAction } from "./backend.js";
import { fail, reply } from "./reply.js";
import { agentView } from "./views.js";

const ACTIONS = new Set<RolloutAction>(["pause", "resume", "promote", "abort"]);
const STATES = new Set(["connected", "disconnected", "unauthorized"]);
/** Agents per page of GET /agents when `limit` is not given. */
export const DEFAULT_AGENT_LIMIT = 50;
/**
 * The largest `limit` of GET /agents: a page costs the service a read of each of its agents
 * (plus, filtered, a bounded scan; admin-backend.ts).
 */
export const MAX_AGENT_LIMIT = 1000;

/** Parses the list query of GET /agents (and the console's list); a string is the refusal. */
export function agentQuery(get: (name: string) => string | undefined): AgentQuery | string {
  const q: AgentQuery = {};
  const group = get("group");
  const state = get("state");
  const search = get("q")?.trim();
  if (group) q.group = group;
  if (state) {
    if (!STATES.has(state))
      return `state must be connected, disconnected or unauthorized, not "${state.slice(0, 40)}"`;
    q.state = state as AgentQuery["state"];
  }
  if (search) q.search = search.slice(0, 200);
  const after = get("after");
  if (after) q.after = after.slice(0, 200);
  for (const key of ["offset", "limit"] as const) {
    const raw = get(key);
    if (raw === undefined || raw === "") continue;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 0) return `${key} must be a whole number ≥ 0`;
    q[key] = n;
  }
  q.limit ??= DEFAULT_AGENT_LIMIT;
  if (q.limit > MAX_AGENT_LIMIT)
    return `limit must be at most ${MAX_AGENT_LIMIT}; read more pages with after=<X-Next-After of a page>`;
  return q;
}

/** Who asked, as the CLI says (user@host), for the audit trail; the address is always added. */
export function actorOf(c: Context<AdminEnv>, via = "api"): string {
  const actor = (c.req.header("x-opamp-gitops-actor") ?? "").replace(/[^\w.@:-]/g, "").slice(0, 64);
  const address = c.env?.incoming?.socket?.remoteAddress ?? "?";
  return `${via}:${actor ? `${actor} via ` : ""}${address}`;
}

export function apiRoutes(backend: AdminBackend): Hono<AdminEnv> {
  const api = new Hono<AdminEnv>();

  api.get("/agents", async (c) => {
    const query = agentQuery((n) => c.req.query(n));
    if (typeof query === "string") return fail(c, 400, "BAD_FILTER", query);
    const page = await backend.agents(query);
    if (page.total !== undefined) c.header("X-Total-Count", String(page.total));
    else if (page.estimate !== undefined) c.header("X-Total-Count-Estimate", String(page.estimate));
    if (page.next !== undefined) c.header("X-Next-After", page.next);
    if (page.nextOffset !== undefined) c.header("X-Next-Offset", String(page.nextOffset));
    return reply(
      c,
      200,
      page.agents.map((a) => ({
        ...agentView(a.state, a.group, false, a.unauthorizedGroup),
        ...(a.bundle ? { bundle: a.bundle } : {}),
      })),
    );
  });

  api.get("/agents/:uid", async (c) => {
    const uid = c.req.param("uid");
    if (!isCanonicalUid(uid))
      return fail(c, 400, "BAD_UID", "an instance uid is a lowercase canonical UUID");
    const a = await backend.agent(uid);
    if (!a) return fail(c, 404, "AGENT_UNKNOWN", `no agent ${uid}`);
    return reply(c, 200, {
      ...agentView(a.state, a.group, true, a.unauthorizedGroup),
      ...(a.bundle ? { bundle: a.bundle } : {}),
      ...(await backend.agentCredentials?.(uid)),
    });
  });

  api.post("/agents/:uid/restart", async (c) => {
    const uid = c.req.param("uid");
    if (!isCanonicalUid(uid))
      return fail(c, 400, "BAD_UID", "an instance uid is a lowercase canonical UUID");
    if (!backend.restart) return fail(c, 404, "NOT_FOUND", "commands are not supported");
    const via = c.get("session") ? "console" : "api";
    return reply(c, 200, await backend.restart({ uids: [uid] }, actorOf(c, via)));
  });

  api.post("/groups/:name/restart", async (c) => {
    if (!backend.restart) return fail(c, 404, "NOT_FOUND", "commands are not supported");
    const via = c.get("session") ? "console" : "api";
    return reply(c, 200, await backend.restart({ group: c.req.param("name") }, actorOf(c, via)));
  });

  api.post("/agents/:uid/revoke", async (c) => {
    const uid = c.req.param("uid");
    if (!isCanonicalUid(uid))
      return fail(c, 400, "BAD_UID", "an instance uid is a lowercase canonical UUID");
    if (!backend.revokeAgent) return fail(c, 404, "NOT_FOUND", "agent credentials are not managed");
    const via = c.get("session") ? "console" : "api";
    return reply(c, 200, {
      instanceUid: uid,
      revoked: await backend.revokeAgent(uid, actorOf(c, via)),
    });
  });

  api.get("/agents/:uid/config", async (c) => {
    const uid = c.req.param("uid");
    if (!isCanonicalUid(uid))
      return fail(c, 400, "BAD_UID", "an instance uid is a lowercase canonical UUID");
    const configs = await backend.agentConfigs(uid);
    if (!configs) return fail(c, 404, "AGENT_UNKNOWN", `no agent ${uid}`);
    return reply(c, 200, configs);
  });

  // Each group and rollout also lists its incompatible agents (agent-aware checks).
  const incompatible = async (group: string) =>
    (await backend.incompatible?.(group)) ?? { count: 0, examples: [] };
  const withIncompatible = <T extends object>(group: string, body: T) =>
    incompatible(group).then((inc) => ({ ...body, incompatible: inc }));

  api.get("/groups", async (c) =>
    reply(c, 200, await Promise.all(backend.groups().map((g) => withIncompatible(g.name, g)))),
  );

  api.get("/groups/:name", async (c) => {
    const name = c.req.param("name");
    const group = backend.groups().find((g) => g.name === name);
    return group
      ? reply(c, 200, await withIncompatible(name, { ...group, sync: backend.syncState() }))
      : fail(c, 404, "GROUP_UNKNOWN", `no group "${name}" in the served commit`);
  });

  api.get("/components", async (c) => {
    const listed = await backend.componentSets?.();
    // A header, not a body field: the body stays hash → kinds, which clients index by hash.
    if (listed?.truncated) c.header("X-Truncated", "true");
    return reply(c, 200, listed?.sets ?? {});
  });

  api.get("/rollouts", async (c) =>
    reply(c, 200, await Promise.all(backend.rollouts().map((s) => withIncompatible(s.group, s)))),
  );

  api.get("/rollouts/:group", async (c) => {
    const name = c.req.param("group");
    const status = backend.rollout(name);
    return status
      ? reply(c, 200, await withIncompatible(name, status))
      : fail(c, 404, "ROLLOUT_UNKNOWN_GROUP", `no group "${name}"`);
  });

  api.get("/rollouts/:group/history", async (c) => {
    const name = c.req.param("group");
    if (!backend.rollout(name)) return fail(c, 404, "ROLLOUT_UNKNOWN_GROUP", `no group "${name}"`);
    return reply(c, 200, await backend.history(name));
  });

  api.post("/rollouts/:group/:action", async (c) => {
    const action = c.req.param("action") as RolloutAction;
    if (!ACTIONS.has(action))
      return fail(
        c,
        404,
        "NOT_FOUND",
        `no rollout action "${action.slice(0, 40)}" (pause, resume, promote, abort)`,
      );
    const via = c.get("session") ? "console" : "api";
    try {
      return reply(c, 200, await backend.control(c.req.param("group"), action, actorOf(c, via)));
    } catch (err) {
      if (err instanceof RolloutError) {
        const status = err.code === "ROLLOUT_UNKNOWN_GROUP" ? 404 : 409;
        return fail(c, status, err.code, err.message);
      }
      throw err;
    }
  });

  return api;
}
