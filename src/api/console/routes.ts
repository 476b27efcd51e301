/**
 * The console under `/`: fleet, group, agent and validation pages, the login form and the
 * built assets. Pages need what `/api/v1` needs (access.ts): without a valid session they
 * redirect to `/login?next=…`; the form checks the token and keeps it in the session cookie.
 * With no token configured there is no login. The console never edits configuration: its only
 * writes are the rollout controls, posted by the client to the JSON API.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { deleteCookie, setCookie } from "hono/cookie";
import { html } from "hono/html";
import { isCanonicalUid } from "../../opamp/index.js";
import { type AdminAccess, SESSION_COOKIE } from "../access.js";
import type { AdminEnv } from "../admin-env.js";
import { agentQuery } from "../api-routes.js";
import type { AdminBackend } from "../backend.js";
import { agentBody } from "./agent-page.js";
import { ConsoleAssets } from "./assets.js";
import { fleetBody, PAGE_SIZE } from "./fleet-page.js";
import { gitWeb } from "./git-links.js";
import { groupBody } from "./group-page.js";
import { page } from "./layout.js";
import { validationBody } from "./validation-page.js";

/** A same-site path to return to after login ("/" for anything else). */
function safeNext(next: string | undefined): string {
  return next && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) ? next : "/";
}

export function consoleRoutes(backend: AdminBackend, access: AdminAccess): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();
  const assets = new ConsoleAssets();
  const opts = (nav: Parameters<typeof page>[1]["nav"], title: string, live?: string) => ({
    nav,
    title,
    assets: assets.names,
    session: !access.open,
    ...(live ? { live } : {}),
  });
  const web = () => gitWeb(backend.syncState()?.source);

  app.get("/assets/:name", (c) => assets.serve(c));

  const loginForm = (next: string, error?: string) =>
    html`<h1>Log in</h1>
<form class="login" method="post" action="/login">
${error ? html`<p class="bad" role="alert">${error}</p>` : ""}
<input type="hidden" name="next" value="${next}">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
<p class="muted">A token of the service's --api-tokens-file. It is kept in a session cookie.</p>
</form>`;

  app.get("/login", (c) => {
    const next = safeNext(c.req.query("next"));
    if (access.open) return c.redirect(next, 302);
    return page(c, opts("login", "Log in"), loginForm(next));
  });

  app.post("/login", bodyLimit({ maxSize: 8 * 1024 }), async (c) => {
    const form = await c.req.parseBody();
    const token = typeof form.token === "string" ? form.token.trim() : "";
    const next = safeNext(typeof form.next === "string" ? form.next : undefined);
    if (access.open) return c.redirect(next, 303);
    if (!token || !access.accepts(token))
      return page(
        c,
        { ...opts("login", "Log in"), session: false },
        loginForm(next, "That token is not accepted."),
        401,
      );
    setCookie(c, SESSION_COOKIE, token, {
      httpOnly: true,
      sameSite: "Strict",
      secure: new URL(c.req.url).protocol === "https:",
      path: "/",
    });
    return c.redirect(next, 303);
  });

  app.post("/logout", bodyLimit({ maxSize: 8 * 1024 }), (c) => {
    deleteCookie(c, SESSION_COOKIE, { path: "/" });
    return c.redirect("/login", 303);
  });

  // Everything below needs a session (or a bearer header, or an open API).
  app.use("*", async (c, next) => {
    if (access.allowed(c)) return next();
    const target = `${c.req.path}${new URL(c.req.url).search}`;
    return c.redirect(`/login?next=${encodeURIComponent(target)}`, 302);
  });

  app.get("/", async (c) => {
    const q = agentQuery((n) => c.req.query(n));
    const query = typeof q === "string" ? {} : q;
    query.limit = PAGE_SIZE;
    const [agents, groups] = [await backend.agents(query), backend.groups()];
    // The first row's position, shown only: carried by the pager's links (or an offset's).
    const from = query.after
      ? Math.max(1, Math.floor(Number(c.req.query("from"))) || 1)
      : (query.offset ?? 0) + 1;
    return page(
      c,
      opts("fleet", "Fleet", "fleet"),
      fleetBody(query, agents, groups, backend.validation(), from),
    );
  });

  app.get("/groups", (c) => {
    const groups = backend.groups();
    const name = c.req.query("name") ?? groups[0]?.name;
    if (name) return c.redirect(`/groups/${encodeURIComponent(name)}`, 302);
    return page(
      c,
      opts("group", "Groups"),
      html`<h1>Groups</h1><p>The served commit has no group.</p>`,
    );
  });

  app.get("/groups/:name", async (c) => {
    const name = c.req.param("name");
    const groups = backend.groups();
    const group = groups.find((g) => g.name === name);
    if (!group)
      return page(
        c,
        opts("group", "Unknown group"),
        html`<h1>No group ${name}</h1><p><a href="/groups">All groups</a></p>`,
        404,
      );
    const history = backend.rollout(name) ? await backend.history(name) : [];
    return page(
      c,
      opts("group", `Group ${name}`, `group:${name}`),
      groupBody(group, groups, backend.rollout(name), history, web()),
    );
  });

  app.get("/agents/:uid", async (c) => {
    const uid = c.req.param("uid");
    const agent = isCanonicalUid(uid) ? await backend.agent(uid) : undefined;
    if (!agent)
      return page(
        c,
        opts("agent", "Unknown agent"),
        html`<h1>No agent ${uid}</h1><p><a href="/">Fleet</a></p>`,
        404,
      );
    const [configs, history] = await Promise.all([
      backend.agentConfigs(uid),
      backend.connections(uid),
    ]);
    return page(
      c,
      opts("agent", `Agent ${uid.slice(0, 13)}`, `agent:${uid}`),
      agentBody(agent, configs, history),
    );
  });

  app.get("/validation", (c) =>
    page(
      c,
      opts("validation", "Validation", "validation"),
      validationBody(backend.validation(), web()),
    ),
  );

  return app;
}
