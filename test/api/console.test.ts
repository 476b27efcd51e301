/**
 * The console's pages against the in-memory backend, in process: login with the session
 * cookie, each page's content, server-side paging of a large fleet, the partial refresh,
 * assets with immutable cache headers, secure headers, and the bytes of a first load.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import pino from "pino";
import { AdminAccess, SESSION_COOKIE } from "../../src/api/access.js";
import { adminApp } from "../../src/api/admin-app.js";
import { fleetBody } from "../../src/api/console/fleet-page.js";
import { EventStreams } from "../../src/api/events-route.js";
import { waitFor } from "../helpers/wait.js";
import { FakeBackend, fakeAgent } from "./fake-backend.js";

const uid = (n: number) => `0190a000-0000-7000-8000-${String(n).padStart(12, "0")}`;

function setup(tokens: string[] = [], agents = 3) {
  const backend = new FakeBackend(
    Array.from({ length: agents }, (_, i) =>
      fakeAgent(uid(i + 1), { "host.name": `host-${i + 1}` }),
    ),
  );
  const access = new AdminAccess(tokens);
  const app = adminApp({
    backend,
    access,
    events: new EventStreams(backend),
    logger: pino({ level: "silent" }),
  });
  const get = (path: string, headers: Record<string, string> = {}) =>
    app.request(`http://127.0.0.1:4321${path}`, {
      headers: { Host: "127.0.0.1:4321", ...headers },
      redirect: "manual",
    });
  return { backend, app, get };
}

describe("console", () => {
  test("with tokens: pages ask for a login; the form sets an HttpOnly, SameSite=Strict session cookie", async () => {
    const { app, get } = setup(["s3cret"]);
    const first = await get("/groups/edge");
    assert.equal(first.status, 302);
    assert.equal(first.headers.get("location"), "/login?next=%2Fgroups%2Fedge");
    const form = await get("/login?next=%2Fgroups%2Fedge");
    assert.equal(form.status, 200);
    const text = await form.text();
    assert.match(text, /<label for="token">/);
    const login = (token: string, origin = "http://127.0.0.1:4321") =>
      app.request("http://127.0.0.1:4321/login", {
        method: "POST",
        headers: {
          Host: "127.0.0.1:4321",
          Origin: origin,
          "Content-Type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ token, next: "/groups/edge" }).toString(),
        redirect: "manual",
      });
    assert.equal((await login("wrong")).status, 401);
    assert.equal((await login("s3cret", "https://evil.example")).status, 403);
    const ok = await login("s3cret");
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get("location"), "/groups/edge");
    const cookie = ok.headers.get("set-cookie") ?? "";
    assert.match(cookie, new RegExp(`^${SESSION_COOKIE}=s3cret;`));
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.doesNotMatch(cookie, /Expires|Max-Age|Secure/); // a session cookie, plain HTTP
    const page = await get("/groups/edge", { Cookie: `${SESSION_COOKIE}=s3cret` });
    assert.equal(page.status, 200);
    // A next that leaves the site is not followed.
    const away = await app.request("http://127.0.0.1:4321/login", {
      method: "POST",
      headers: { Host: "127.0.0.1:4321", "Content-Type": "application/x-www-form-urlencoded" },
      body: "token=s3cret&next=//evil.example/",
      redirect: "manual",
    });
    assert.equal(away.headers.get("location"), "/");
  });

  test("without tokens there is no login; pages carry landmarks, labels and a viewport", async () => {
    const { get } = setup();
    assert.equal((await get("/login")).status, 302);
    const fleet = await (await get("/")).text();
    assert.match(fleet, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
    assert.match(fleet, /<main id="main"[^>]*data-live="fleet"/);
    assert.match(fleet, /<nav aria-label="Console">/);
    assert.match(fleet, /<label>Search <input type="search" name="q"/);
    assert.match(fleet, /<progress aria-label="edge stage 1"/);
    assert.match(fleet, /href="\/agents\/0190a000-0000-7000-8000-000000000001"/);
    assert.doesNotMatch(fleet, /Log out/);
  });

  test("group, agent and validation pages", async () => {
    const { get } = setup();
    const group = await (await get("/groups/edge")).text();
    assert.match(group, /<h1>Group edge<\/h1>/);
    assert.match(
      group,
      /action="\/api\/v1\/rollouts\/edge\/pause" data-action data-confirm="Pause the rollout of edge\?"/,
    );
    assert.match(group, /aria-current="step"/);
    assert.equal((await get("/groups/nope")).status, 404);
    assert.equal((await get("/groups")).headers.get("location"), "/groups/edge");
    const agent = await (await get(`/agents/${uid(1)}`)).text();
    assert.match(agent, /<pre class="diff"/);
    assert.match(agent, /<span class="del">-a: 1<\/span>/);
    assert.match(agent, /<span class="add">\+a: 2<\/span>/);
    assert.equal((await get("/agents/not-a-uid")).status, 404);
    const validation = await (await get("/validation")).text();
    assert.match(validation, /<h1>Validation<\/h1>/);
  });

  test("the agent list pages on the server with the cursor: 50 rows at a time, filters kept in the links", async () => {
    const { get } = setup([], 120);
    const first = await (await get("/?q=host")).text();
    assert.equal(first.match(/<tr data-uid=/g)?.length, 50);
    assert.match(first, /1–50 of 120, more follow/);
    assert.doesNotMatch(first, /rel="first"/);
    const nextOf = (html: string) =>
      html.match(/href="([^"]*)" rel="next"/)?.[1]?.replaceAll("&amp;", "&");
    assert.equal(nextOf(first), `/?q=host&after=${uid(50)}&from=51`);
    const second = await (await get(nextOf(first) ?? "")).text();
    assert.match(second, /51–100 of 120, more follow/);
    assert.match(second, new RegExp(`data-uid="${uid(51)}"`));
    const last = await (await get(nextOf(second) ?? "")).text();
    assert.equal(last.match(/<tr data-uid=/g)?.length, 20);
    assert.match(last, /101–120 of 120</);
    assert.match(last, /href="\/\?q=host" rel="first"/);
    assert.doesNotMatch(last, /rel="next"/);
    const one = await (await get("/?q=HOST-120")).text();
    assert.match(one, /1–1 of 1</);
  });

  test("the pager of a budget-bounded page: an estimate, an empty page that says more follow", async () => {
    const empty = String(
      await fleetBody(
        { search: "x" },
        { agents: [], next: uid(9), progress: { through: 10_000, of: 100_000 } },
        [],
        undefined,
      ),
    );
    assert.match(
      empty,
      /No match in the agents searched so far \(the first 10,000 of 100,000\), more follow/,
    );
    assert.match(empty, new RegExp(`href="/\\?q=x&amp;after=${uid(9)}" rel="next"`));
    const rows = [{ state: fakeAgent(uid(3)) }, { state: fakeAgent(uid(4)) }];
    const counted = String(
      await fleetBody(
        { group: "g", after: uid(1) },
        { agents: rows, estimate: 1234, next: uid(4), progress: { through: 900, of: 1500 } },
        [],
        undefined,
        51,
      ),
    );
    assert.match(counted, /51–52 of about 1234, more follow \(900 of 1,500 agents searched\)/);
    assert.match(
      counted,
      new RegExp(`href="/\\?group=g&amp;after=${uid(4)}&amp;from=53" rel="next"`),
    );
    assert.match(counted, /href="\/\?group=g" rel="first"/);
  });

  test("partial refresh answers only the main content", async () => {
    const { get } = setup();
    const partial = await (await get("/", { "X-Console-Partial": "1" })).text();
    assert.doesNotMatch(partial, /<html/);
    assert.match(partial, /^<h1>Fleet<\/h1>/);
  });

  test("secure headers, hashed immutable assets, and a first load under 200 KB", async () => {
    const { get } = setup();
    const res = await get("/");
    assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'self'/);
    assert.equal(res.headers.get("x-frame-options"), "SAMEORIGIN");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    const page = await res.text();
    const assets = [...page.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1] ?? "");
    assert.equal(assets.length, 2, "one script and one style sheet (built by npm run build)");
    let bytes = Buffer.byteLength(page);
    for (const path of assets) {
      assert.match(path, /-[A-Z0-9]{8}\.(js|css)$/);
      const a = await get(path);
      assert.equal(a.status, 200);
      assert.equal(a.headers.get("cache-control"), "public, max-age=31536000, immutable");
      bytes += (await a.arrayBuffer()).byteLength;
    }
    console.log(`console first load: ${bytes} bytes`);
    assert.ok(bytes < 200 * 1024, `first load ${bytes} bytes`);
    assert.equal((await get("/assets/nope.js")).status, 404);
  });
});

describe("event streams", () => {
  test("past the cap a new stream is answered 503; a closed one frees its place", async () => {
    const backend = new FakeBackend([fakeAgent(uid(1), {})]);
    const app = adminApp({
      backend,
      access: new AdminAccess([]),
      events: new EventStreams(backend, { maxStreams: 1 }),
      logger: pino({ level: "silent" }),
    });
    const open = () =>
      app.request("http://127.0.0.1:4321/api/v1/events", { headers: { Host: "127.0.0.1:4321" } });
    const first = await open();
    assert.equal(first.status, 200);
    const reader = (first.body as ReadableStream<Uint8Array>).getReader();
    assert.match(new TextDecoder().decode((await reader.read()).value), /event: hello/);
    const second = await open();
    assert.equal(second.status, 503);
    assert.equal(
      ((await second.json()) as { error: { code: string } }).error.code,
      "TOO_MANY_STREAMS",
    );
    await reader.cancel();
    await waitFor("the closed stream's place", async () => {
      const again = await open();
      if (again.status !== 200) return false;
      await again.body?.cancel();
      return true;
    });
  });
});
