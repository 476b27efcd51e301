/**
 * The admin port against a client that floods it or guesses tokens: requests per client per
 * minute, failed authentications per client per minute, open connections per address and
 * silent connections are bounded, over real sockets. Probes and loopback clients are never
 * rate-limited; a limited client is served again once its window ends.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { describe, test } from "node:test";
import fc from "fast-check";
import pino from "pino";
import { AdminServer, type AdminServerOptions } from "../../src/api/admin-server.js";
import { clientKey, isLoopbackAddress } from "../../src/api/client-address.js";
import { loadSettings, SettingsError } from "../../src/settings.js";
import { startTestService } from "../helpers/service.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { FakeBackend, fakeAgent } from "./fake-backend.js";

const defer = deferred();

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

async function startAdmin(options: Partial<AdminServerOptions>): Promise<{
  server: AdminServer;
  port: number;
  call: (
    method: string,
    path: string,
    headers?: Record<string, string>,
    body?: string,
  ) => Promise<Answer>;
}> {
  const server = new AdminServer({
    backend: new FakeBackend([fakeAgent("0123456789abcdef0123456789abcdef")]),
    logger: pino({ level: "silent" }),
    port: 0,
    ...options,
  });
  const { port } = await server.start();
  defer(() => server.close());
  const call = (
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: string,
  ) =>
    new Promise<Answer>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port, method, path, headers, agent: false },
        (res) => {
          let text = "";
          res.on("data", (d) => (text += d));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: text.startsWith("{") ? JSON.parse(text) : {},
            }),
          );
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  return { server, port, call };
}

describe("client address keys", () => {
  test("IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by its /64, loopback recognised", () => {
    assert.equal(clientKey("10.1.2.3"), "10.1.2.3");
    assert.equal(clientKey("::ffff:10.1.2.3"), "10.1.2.3");
    assert.equal(clientKey("2001:db8:0:1:aaaa::1"), "2001:db8:0:1::/64");
    assert.equal(clientKey("2001:db8::1"), "2001:db8:0:0::/64");
    assert.equal(clientKey("2001:0db8:0000:0001:ffff:ffff:ffff:ffff"), "2001:db8:0:1::/64");
    assert.equal(clientKey("fe80::1%eth0"), "fe80:0:0:0::/64");
    assert.equal(clientKey(undefined), "");
    for (const a of ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"])
      assert.equal(isLoopbackAddress(a), true, a);
    for (const a of ["10.0.0.1", "::2", "::ffff:10.0.0.1", "2001:db8::1", undefined])
      assert.equal(isLoopbackAddress(a), false, String(a));
  });

  test("any two IPv6 addresses of one /64 share a key; IPv4 addresses keep their own", () => {
    fc.assert(
      fc.property(
        fc.ipV6(),
        fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 4, maxLength: 4 }),
        (a, low) => {
          const key = clientKey(a);
          assert.match(key, /^([0-9a-f]{1,4}:){4}:\/64$/);
          const prefix = key.slice(0, -"::/64".length);
          // The same /64 written in full with another interface identifier.
          assert.equal(clientKey(`${prefix}:${low.map((g) => g.toString(16)).join(":")}`), key);
        },
      ),
    );
    fc.assert(fc.property(fc.ipV4(), (a) => clientKey(a) === a && clientKey(`::ffff:${a}`) === a));
  });
});

describe("admin port limits", () => {
  test("beyond the request limit a client gets 429 RATE_LIMITED with Retry-After, probes still pass, and the next window serves it again", async () => {
    const { server, call } = await startAdmin({
      limits: { requestsPerMinute: 3, limitLoopback: true, windowMs: 1500 },
    });
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const ok = await call("GET", "/api/v1/agents");
      assert.equal(ok.status, 200);
      remaining.push(String(ok.headers["ratelimit-remaining"]));
    }
    assert.deepEqual(remaining, ["2", "1", "0"]);
    const refused = await call("GET", "/api/v1/agents");
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error?.code, "RATE_LIMITED");
    assert.match(refused.body.error?.message ?? "", /more than 3 requests per minute/);
    const after = Number(refused.headers["retry-after"]);
    assert.ok(Number.isInteger(after) && after >= 1 && after <= 2, `Retry-After ${after}`);
    assert.match(refused.body.error?.message ?? "", new RegExp(`retry after ${after} s`));
    // A probe refused would restart the service: never limited.
    assert.equal((await call("GET", "/healthz")).status, 200);
    assert.equal((await call("GET", "/readyz")).status, 200);
    assert.equal(server.refusals().rateLimited, 1);
    await waitFor(
      "the next window",
      async () => (await call("GET", "/api/v1/agents")).status === 200,
      {
        intervalMs: 250,
      },
    );
  });

  test("loopback clients are not rate-limited by default", async () => {
    const { server, call } = await startAdmin({ limits: { requestsPerMinute: 2 } });
    for (let i = 0; i < 6; i++) assert.equal((await call("GET", "/api/v1/agents")).status, 200);
    assert.equal(server.refusals().rateLimited, 0);
  });

  test("after the failed-authentication limit every request of the client gets 429, even with a good token; good requests do not count", async () => {
    const { server, call } = await startAdmin({
      tokens: ["good-token"],
      webhookSecret: "hook-secret",
      limits: { authFailuresPerMinute: 3, requestsPerMinute: 0, limitLoopback: true },
    });
    const good = { Authorization: "Bearer good-token" };
    for (let i = 0; i < 10; i++)
      assert.equal((await call("GET", "/api/v1/agents", good)).status, 200);
    assert.equal(
      (await call("GET", "/api/v1/agents", { Authorization: "Bearer guess-1" })).status,
      401,
    );
    assert.equal((await call("GET", "/api/v1/agents")).status, 401);
    // A webhook with a wrong signature counts too.
    const payload = JSON.stringify({ ref: "refs/heads/main" });
    const wrong = `sha256=${createHmac("sha256", "not-the-secret").update(payload).digest("hex")}`;
    const hook = await call(
      "POST",
      "/hooks/git",
      {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": wrong,
        "X-GitHub-Event": "push",
      },
      payload,
    );
    assert.equal(hook.status, 401);
    const locked = await call("GET", "/api/v1/agents", good);
    assert.equal(locked.status, 429);
    assert.equal(locked.body.error?.code, "AUTH_RATE_LIMITED");
    assert.match(locked.body.error?.message ?? "", /3 failed authentications in a minute/);
    assert.ok(Number(locked.headers["retry-after"]) >= 1);
    assert.equal((await call("GET", "/healthz")).status, 200);
    assert.equal(server.refusals().authLimited, 1);
  });

  test("connections beyond the per-address cap are closed before a byte is read; a freed slot serves again", async () => {
    const { server, port, call } = await startAdmin({ maxConnectionsPerAddress: 2 });
    const open = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const s = connect(port, "127.0.0.1", () => resolve(s));
        s.on("error", reject);
      });
    const [a, b] = [await open(), await open()];
    defer(() => {
      a.destroy();
      b.destroy();
    });
    const third = await open();
    const closed = await new Promise<boolean>((resolve) => {
      third.on("close", () => resolve(true));
      third.on("data", () => resolve(false));
      third.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    });
    assert.equal(closed, true, "the third connection is closed unanswered");
    assert.equal(server.refusals().connections, 1);
    a.destroy();
    await waitFor("a slot freed", async () => (await call("GET", "/healthz")).status === 200, {
      ignoreErrors: true,
    });
  });

  test("a flood of refused connections costs one log line, not one per connection", async () => {
    const lines: Array<{ msg: string; refused?: Array<{ address: string; count: number }> }> = [];
    const logger = pino(
      { level: "warn" },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    );
    const { server, port } = await startAdmin({ maxConnectionsPerAddress: 1, logger });
    const held = connect(port, "127.0.0.1");
    defer(() => held.destroy());
    await new Promise((resolve) => held.once("connect", resolve));
    for (let i = 0; i < 20; i++) {
      const s = connect(port, "127.0.0.1");
      await new Promise((resolve) => s.once("close", resolve).once("error", () => {}));
    }
    assert.equal(server.refusals().connections, 20);
    const refusals = lines.filter(
      (l) => l.msg === "admin client connections refused: per-address cap",
    );
    assert.equal(refusals.length, 1, JSON.stringify(lines));
    assert.deepEqual(refusals[0]?.refused, [{ address: "127.0.0.1", count: 1 }]);
  });

  test("a connection that sends no request is closed after the header time", async () => {
    const { port } = await startAdmin({ headersTimeoutMs: 200 });
    const socket = connect(port, "127.0.0.1");
    defer(() => socket.destroy());
    // Read what the server answers (Node's 408 may come before the close): a paused socket
    // with unread bytes never sees the end, so its close would not be seen.
    socket.resume();
    const closed = await new Promise<boolean>((resolve) => {
      socket.on("close", () => resolve(true));
      // Far beyond the 200 ms (checked every 50 ms): still open means no bound.
      setTimeout(() => resolve(false), 5000).unref();
    });
    assert.equal(closed, true, "a silent connection stays open");
  });
});

describe("admin limits settings", () => {
  test("flags, environment and defaults; a negative count is refused naming its flag", () => {
    const base = { repo: ".", stateDir: "/tmp/x" };
    assert.deepEqual(loadSettings(base, {}).apiLimits, {
      requestsPerMinute: 600,
      authFailuresPerMinute: 20,
      maxConnectionsPerAddress: 64,
    });
    assert.deepEqual(
      loadSettings(
        { ...base, apiRateLimit: "0", apiAuthFailureLimit: "5" },
        {
          OPAMP_GITOPS_API_MAX_CONNECTIONS_PER_ADDRESS: "8",
        },
      ).apiLimits,
      { requestsPerMinute: 0, authFailuresPerMinute: 5, maxConnectionsPerAddress: 8 },
    );
    assert.throws(
      () => loadSettings({ ...base, apiRateLimit: "-1" }, {}),
      (err: unknown) => err instanceof SettingsError && /--api-rate-limit/.test(err.message),
    );
  });

  test("the service wires them: its admin port caps connections and counts the refusal in /metrics", async () => {
    const svc = await startTestService({ apiMaxConnectionsPerAddress: "1" });
    defer(() => svc.close());
    const held = connect(svc.apiPort, "127.0.0.1");
    defer(() => held.destroy());
    await new Promise<void>((resolve) => held.on("connect", () => resolve()));
    const refused = connect(svc.apiPort, "127.0.0.1");
    await new Promise<void>((resolve) =>
      refused.on("close", () => resolve()).on("error", () => {}),
    );
    held.destroy();
    const metrics = await waitFor(
      "metrics",
      async () => {
        const r = await fetch(`http://127.0.0.1:${svc.apiPort}/metrics`);
        return r.ok ? r.text() : undefined;
      },
      { ignoreErrors: true },
    );
    // At least the one refused above (a metrics request racing the freed slot may add one).
    const count = /opamp_gitops_admin_refused_total\{reason="connections"\} (\d+)/.exec(metrics);
    assert.ok(Number(count?.[1]) >= 1, count?.[0] ?? "no opamp_gitops_admin_refused_total");
  });
});
