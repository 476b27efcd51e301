/**
 * The admin routes' contract with their AdminBackend, as one suite run twice: against the
 * in-memory FakeBackend (test/api/routes.test.ts) and against the service's own backend with a
 * real repository, Redis and simulated agents (test/service/admin-backend.test.ts). Requests
 * go through the Hono app in process (`app.request`), guard and auth included.
 *
 * The fixture: one group with a rollout in flight, not paused, and `agents` (at least 2, all
 * connected, in that group).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { AdminAccess, SESSION_COOKIE } from "../../src/api/access.js";
import { adminApp } from "../../src/api/admin-app.js";
import type { AdminBackend } from "../../src/api/backend.js";
import { EventStreams } from "../../src/api/events-route.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";

export interface ContractFixture {
  backend: AdminBackend;
  group: string;
  /** Instance uids of the group's agents, sorted. */
  agents: string[];
  /** The component types every agent reports (kind → sorted types); undefined: none. */
  components?: Record<string, string[]>;
  close(): Promise<void>;
}

type Json = Record<string, unknown> & { error?: { code: string } };

export function backendContract(name: string, setup: () => Promise<ContractFixture>): void {
  describe(`admin routes against ${name}`, () => {
    const defer = deferred();
    let fx: ContractFixture;
    let app: ReturnType<typeof adminApp>;
    const access = new AdminAccess([]);

    before(async () => {
      fx = await setup();
      app = adminApp({
        backend: fx.backend,
        access,
        events: new EventStreams(fx.backend),
        logger: pino({ level: "silent" }),
      });
    });
    after(async () => {
      access.setTokens([]);
      await fx?.close();
    });

    const call = async (path: string, init: RequestInit = {}) => {
      const res = await app.request(`http://127.0.0.1${path}`, init);
      const text = await res.text();
      const body = res.headers.get("content-type")?.startsWith("application/json")
        ? (JSON.parse(text) as Json | Json[])
        : text;
      return { status: res.status, body, headers: res.headers };
    };
    const post = (path: string) =>
      call(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    const code = (b: unknown) => (b as Json).error?.code;

    test("agents: listed in uid order with their group, paged, filtered and searched", async () => {
      const all = await call("/api/v1/agents");
      assert.equal(all.status, 200);
      const rows = all.body as Json[];
      const ours = rows.filter((r) => fx.agents.includes(r.instanceUid as string));
      assert.deepEqual(
        ours.map((r) => r.instanceUid),
        fx.agents,
      );
      for (const r of ours) assert.equal(r.group, fx.group);
      assert.equal(all.headers.get("x-total-count"), String(rows.length));
      const page = await call("/api/v1/agents?offset=1&limit=1");
      assert.deepEqual(
        (page.body as Json[]).map((r) => r.instanceUid),
        [rows[1]?.instanceUid],
      );
      assert.equal(page.headers.get("x-total-count"), String(rows.length));
      const one = fx.agents[0] ?? "";
      const found = await call(`/api/v1/agents?q=${one.slice(-8).toUpperCase()}`);
      assert.deepEqual(
        (found.body as Json[]).map((r) => r.instanceUid),
        [one],
      );
      const inGroup = await call(`/api/v1/agents?group=${fx.group}&state=connected`);
      assert.equal((inGroup.body as Json[]).length, fx.agents.length);
      assert.deepEqual(await call("/api/v1/agents?group=no-such-group").then((r) => r.body), []);
      const bad = await call("/api/v1/agents?state=sleepy");
      assert.equal(bad.status, 400);
      assert.equal(code(bad.body), "BAD_FILTER");
      assert.equal((await call("/api/v1/agents?limit=-1")).status, 400);
    });

    test("agents: paged with the after= cursor; a limit over 1000 is refused", async () => {
      const all = (await call("/api/v1/agents").then((r) => r.body)) as Json[];
      const uids = all.map((r) => r.instanceUid as string);
      const read: string[] = [];
      for (let after = ""; ; ) {
        const page = await call(`/api/v1/agents?limit=1${after ? `&after=${after}` : ""}`);
        assert.equal(page.headers.get("x-total-count"), String(uids.length));
        const rows = page.body as Json[];
        if (rows.length === 0) break;
        assert.equal(rows.length, 1);
        after = rows[0]?.instanceUid as string;
        read.push(after);
      }
      assert.deepEqual(read, uids);
      // A cursor between uids (not itself an agent) starts at the next one.
      const between = `${uids[0]}~`.slice(0, 200);
      const next = await call(`/api/v1/agents?after=${between}&limit=1`);
      assert.deepEqual(
        (next.body as Json[]).map((r) => r.instanceUid),
        uids.filter((u) => u > between).slice(0, 1),
      );
      const filtered = await call(
        `/api/v1/agents?group=${fx.group}&after=${fx.agents[0]}&offset=1&limit=1`,
      );
      assert.deepEqual(
        (filtered.body as Json[]).map((r) => r.instanceUid),
        fx.agents.slice(2, 3),
      );
      assert.equal(filtered.headers.get("x-total-count"), String(fx.agents.length));
      assert.equal((await call("/api/v1/agents?limit=1000")).status, 200);
      const over = await call("/api/v1/agents?limit=1001");
      assert.equal(over.status, 400);
      assert.equal(code(over.body), "BAD_FILTER");
      assert.match(
        (over.body as unknown as { error: { message: string } }).error.message,
        /limit must be at most 1000; read more pages with after=/,
      );
    });

    test("components: each set the agents report, once, by its hash", async () => {
      const rows = (await call("/api/v1/agents").then((r) => r.body)) as Json[];
      const hashes = new Set(
        rows.map((r) => r.componentsHash).filter((h) => typeof h === "string"),
      );
      const sets = await call("/api/v1/components");
      assert.equal(sets.status, 200);
      assert.equal(sets.headers.get("X-Truncated"), null, "every set listed");
      const body = sets.body as unknown as Record<string, Record<string, string[]>>;
      assert.deepEqual(Object.keys(body).sort(), [...hashes].sort());
      assert.equal(hashes.size, fx.components ? 1 : 0);
      for (const set of Object.values(body)) assert.deepEqual(set, fx.components);
    });

    test("one agent: detail, config views, unknown and malformed uids", async () => {
      const uid = fx.agents[0] ?? "";
      const detail = await call(`/api/v1/agents/${uid}`);
      assert.equal(detail.status, 200);
      const a = detail.body as Json;
      assert.equal(a.instanceUid, uid);
      assert.equal(a.connected, true);
      assert.ok(Array.isArray(a.capabilities));
      assert.ok(a.description);
      const config = await call(`/api/v1/agents/${uid}/config`);
      assert.equal(config.status, 200);
      assert.ok("desired" in (config.body as Json) && "effective" in (config.body as Json));
      const unknown = await call("/api/v1/agents/00000000-0000-7000-8000-000000000000");
      assert.equal(unknown.status, 404);
      assert.equal(code(unknown.body), "AGENT_UNKNOWN");
      const malformed = await call("/api/v1/agents/NOT-A-UID");
      assert.equal(malformed.status, 400);
      assert.equal(code(malformed.body), "BAD_UID");
    });

    test("groups and rollouts: listed, one by name, unknown names 404", async () => {
      const groups = (await call("/api/v1/groups")).body as Json[];
      const g = groups.find((x) => x.name === fx.group);
      assert.ok(g, "the group is listed");
      assert.match(String(g.configHash), /^[0-9a-f]{64}$/);
      const one = await call(`/api/v1/groups/${fx.group}`);
      assert.equal(one.status, 200);
      assert.ok((one.body as Json).sync, "the group carries the sync state");
      assert.equal(code((await call("/api/v1/groups/nope")).body), "GROUP_UNKNOWN");
      const rollouts = (await call("/api/v1/rollouts")).body as Json[];
      assert.ok(rollouts.some((r) => r.group === fx.group));
      const r = await call(`/api/v1/rollouts/${fx.group}`);
      assert.equal((r.body as { rollout: { status: string } }).rollout.status, "in-progress");
      assert.ok(Array.isArray((await call(`/api/v1/rollouts/${fx.group}/history`)).body));
      const none = await call("/api/v1/rollouts/nope");
      assert.equal(none.status, 404);
      assert.equal(code(none.body), "ROLLOUT_UNKNOWN_GROUP");
    });

    test("rollout actions: pause and resume, refusals as 409, unknown names 404", async () => {
      const changes: string[] = [];
      defer(fx.backend.subscribe((b) => changes.push(...b.groups)));
      const paused = await post(`/api/v1/rollouts/${fx.group}/pause`);
      assert.equal(paused.status, 200);
      assert.equal(
        (paused.body as { rollout: { hold?: { by: string } } }).rollout.hold?.by.startsWith("api:"),
        true,
      );
      const again = await post(`/api/v1/rollouts/${fx.group}/pause`);
      assert.equal(again.status, 409);
      assert.equal(code(again.body), "ROLLOUT_ALREADY_PAUSED");
      const resumed = await post(`/api/v1/rollouts/${fx.group}/resume`);
      assert.equal(resumed.status, 200);
      assert.equal((resumed.body as { rollout: { hold?: unknown } }).rollout.hold, undefined);
      assert.equal(
        code((await post(`/api/v1/rollouts/${fx.group}/resume`)).body),
        "ROLLOUT_NOT_PAUSED",
      );
      assert.equal(code((await post("/api/v1/rollouts/nope/pause")).body), "ROLLOUT_UNKNOWN_GROUP");
      const bogus = await post(`/api/v1/rollouts/${fx.group}/explode`);
      assert.equal(bogus.status, 404);
      assert.equal(code(bogus.body), "NOT_FOUND");
      // Subscribers hear of the group's changes (batched).
      await waitFor("a change batch naming the group", () => changes.includes(fx.group), {
        timeoutMs: 2000,
        intervalMs: 20,
      });
    });

    test("restart: one agent or a group's connected agents, each with its outcome", async () => {
      const uid = fx.agents[0] ?? "";
      const one = await post(`/api/v1/agents/${uid}/restart`);
      assert.equal(one.status, 200);
      const rows = one.body as Json[];
      assert.deepEqual(
        rows.map((r) => [r.instanceUid, r.group]),
        [[uid, fx.group]],
      );
      // Connected here: sent, queued, or not accepted (the agent lacks AcceptsRestartCommand).
      const outcomes = ["sent", "queued", "not-accepted"];
      assert.ok(outcomes.includes(String(rows[0]?.result)), String(rows[0]?.result));
      const group = await post(`/api/v1/groups/${fx.group}/restart`);
      assert.equal(group.status, 200);
      const all = group.body as Json[];
      assert.deepEqual(
        all.map((r) => r.instanceUid),
        fx.agents,
      );
      for (const r of all) assert.ok(outcomes.includes(String(r.result)), String(r.result));
      assert.deepEqual((await post("/api/v1/groups/no-such-group/restart")).body, []);
      const malformed = await post("/api/v1/agents/NOT-A-UID/restart");
      assert.equal(malformed.status, 400);
      assert.equal(code(malformed.body), "BAD_UID");
    });

    test("tokens: none, a bearer header, or the console's session cookie", async () => {
      access.setTokens(["s3cret"]);
      defer(() => access.setTokens([]));
      assert.equal((await call("/api/v1/agents")).status, 401);
      const bearer = { headers: { Authorization: "Bearer s3cret" } };
      assert.equal((await call("/api/v1/agents", bearer)).status, 200);
      const cookie = { headers: { Cookie: `${SESSION_COOKIE}=s3cret` } };
      assert.equal((await call("/api/v1/agents", cookie)).status, 200);
      const wrong = { headers: { Cookie: `${SESSION_COOKIE}=guess` } };
      assert.equal((await call("/api/v1/agents", wrong)).status, 401);
      // The console asks for a login instead of answering 401.
      const page = await app.request("http://127.0.0.1/", { redirect: "manual" });
      assert.equal(page.status, 302);
      assert.match(page.headers.get("location") ?? "", /^\/login/);
    });

    test("health, readiness and unknown routes", async () => {
      assert.equal((await call("/healthz")).status, 200);
      assert.ok([200, 503].includes((await call("/readyz")).status));
      const missing = await call("/api/v1/nothing-here");
      assert.equal(missing.status, 404);
      assert.equal(code(missing.body), "NOT_FOUND");
    });
  });
}
