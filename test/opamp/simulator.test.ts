/**
 * The fleet simulator against the real server: it must behave like the Collector supervisor,
 * since the quick start, the end-to-end tests and users' load tests rely on it.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import { RemoteConfigStatus } from "../../src/opamp/capabilities.js";
import { OpampServer } from "../../src/opamp/server.js";
import { SimulatedFleet } from "../../src/opamp/simulator/fleet.js";
import { SimulatedAgent } from "../../src/opamp/simulator/simulated-agent.js";
import { startTestServer, yamlConfig } from "../helpers/opamp-server.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";

const defer = deferred();

for (const transport of ["websocket", "http"] as const) {
  describe(`simulated fleet over ${transport}`, () => {
    test("applies configs, reports effective config, and rolls back a config that fails", async () => {
      const t = await startTestServer();
      defer(() => t.close());
      const fleet = new SimulatedFleet({
        agents: 12,
        url: t.url,
        transport,
        attributes: { "deployment.environment": "test" },
        failWhen: "BREAKS",
        applyMs: 20,
        heartbeatSeconds: 1,
        batch: 5,
      });
      defer(() => fleet.stop());
      const good = yamlConfig({ "collector.yaml": `good: ${transport}\n` });
      t.desired.all = { config: good, heartbeatIntervalSeconds: 1 };
      let started = 0;
      await fleet.start((n) => (started = n));
      assert.equal(started, 12);
      if (transport === "websocket") await t.server.refresh();
      await fleet.until((s) => s.byHash[(good?.hash ?? "").slice(0, 12)] === 12, 15_000);

      const stored = await t.server.store.load(fleet.agents[0]?.uid ?? "");
      assert.equal(stored?.remoteConfigStatus?.status, RemoteConfigStatus.APPLIED);
      assert.equal(stored?.reportedHash, good?.hash);
      const files = stored?.effectiveConfig?.configMap?.configMap ?? {};
      assert.equal(
        Buffer.from(files["collector.yaml"]?.body ?? []).toString(),
        `good: ${transport}\n`,
      );
      assert.ok(
        stored?.description?.nonIdentifyingAttributes?.some(
          (kv) => kv.key === "deployment.environment",
        ),
      );

      // A config that makes the agents fail: FAILED for it, then the supervisor's own
      // rollback runs (and reports) the previous config again.
      const bad = yamlConfig({ "collector.yaml": "BREAKS: true\n" });
      const failed = new Set<string>();
      t.server.events.on("remoteConfigStatusChanged", (e) => {
        if (e.status.status === RemoteConfigStatus.FAILED) failed.add(e.instanceUid);
      });
      t.desired.all = { config: bad, heartbeatIntervalSeconds: 1 };
      if (transport === "websocket") await t.server.refresh();
      await fleet.until((s) => s.failed === 12, 15_000);
      const after = await fleet.until(
        (s) => s.byHash[(good?.hash ?? "").slice(0, 12)] === 12,
        15_000,
      );
      assert.equal(after.connected, 12);
      // The agents' own view changes when they send; the server's when it handled that.
      const uid1 = fleet.agents[1]?.uid ?? "";
      const back = await waitFor(
        "agent 1 reporting the previous config again",
        async () => {
          const state = await t.server.store.load(uid1);
          return state?.reportedHash === good?.hash ? state : undefined;
        },
        { timeoutMs: 5000, intervalMs: 50 },
      );
      assert.equal(back?.health?.healthy, true);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(failed.size, 12);
    });
  });
}

test("a simulated agent reconnects with backoff after the server goes away", async () => {
  const t = await startTestServer();
  defer(() => t.close()); // the server is closed by the test; closing again is a no-op
  let again: OpampServer | undefined;
  defer(() => again?.close());
  const fleet = new SimulatedFleet({ agents: 2, url: t.url, applyMs: 10, heartbeatSeconds: 30 });
  defer(() => fleet.stop());
  await fleet.start();
  assert.equal(fleet.summary().connected, 2);
  const port = new URL(t.url).port;
  await t.server.close();
  await fleet.until((s) => s.reconnects >= 2 && s.connected === 0, 10_000);
  // A new server on the same port and Redis: the agents come back by themselves.
  again = new OpampServer({
    redis: t.redis.redis,
    prefix: t.redis.prefix,
    logger: t.log.logger,
    host: "127.0.0.1",
    port: Number(port),
  });
  await again.start();
  await fleet.until((s) => s.connected === 2, 15_000);
  // An agent counts itself connected once its socket is open; the server once it handled
  // the first message: wait (bounded) for that.
  const server = again;
  await waitFor("the server to count both agents", () => server.connectedAgents === 2, {
    timeoutMs: 5000,
    intervalMs: 50,
  });
});

test("stop() ends a reconnect wait: an agent told to come back in an hour stops now", async () => {
  // A load balancer that sheds every upgrade for an hour (503 + Retry-After).
  let shed = 0;
  const balancer = createServer((_req, res) => res.writeHead(503).end());
  balancer.on("upgrade", (_req, socket) => {
    shed++;
    socket.end(
      "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3600\r\nContent-Length: 0\r\n\r\n",
    );
  });
  balancer.listen(0, "127.0.0.1");
  await once(balancer, "listening");
  defer(() => new Promise((r) => balancer.close(r)));
  const { port } = balancer.address() as AddressInfo;
  const agent = new SimulatedAgent({ url: `ws://127.0.0.1:${port}/v1/opamp`, applyMs: 10 });
  let started = false;
  const starting = agent.start().then(() => (started = true));
  await waitFor("the agent to be shed", () => shed === 1 && agent.lastError !== "");
  assert.match(agent.lastError ?? "", /503; retry after 3600000 ms/);
  assert.equal(started, false, "still waiting out the hour");
  await agent.stop();
  // Before the fix this wait held start() (and the process: a ref'd timer) for the hour.
  await waitFor("start() to return", () => started, { timeoutMs: 5000 });
  assert.equal(agent.status, "stopped");
  await starting;
  assert.equal(shed, 1, "no attempt after stop()");
});

test("stop() while applying a config: the agent stays stopped and never reconnects", async () => {
  const t = await startTestServer();
  let closed = false;
  defer(() => !closed && t.close());
  const config = yamlConfig({ "collector.yaml": "slow: apply\n" });
  t.desired.all = { config, heartbeatIntervalSeconds: 1 };
  const agent = new SimulatedAgent({ url: t.url, applyMs: 300, heartbeatSeconds: 1 });
  await agent.start();
  await waitFor("the agent applying the config", () => agent.status === "applying");
  await agent.stop();
  // Past the apply: before the fix it set itself "connected" again here.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(agent.status, "stopped");
  assert.equal(agent.runningHash, "", "the apply stopped with the agent");
  // The server goes away: a resurrected agent would start reconnecting, for ever.
  await t.close();
  closed = true;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(agent.status, "stopped");
  assert.equal(agent.counts.reconnects, 0);
});
