/**
 * Health is judged by meaning: a Collector re-reporting StatusOK with new timestamps costs no
 * Redis command (counted with MONITOR on the test's own key prefix) and announces nothing (so
 * the status writer is not called), while a real change is written and announced.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AgentCapabilities as Caps } from "../../src/opamp/capabilities.js";
import { decodeSubMessage } from "../../src/opamp/codec.js";
import type { AgentEventName } from "../../src/opamp/events.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import type { ComponentHealth } from "../../src/opamp/messages.js";
import { TestAgent } from "../helpers/agent.js";
import { healthAt, reversed, HEALTH_START as START } from "../helpers/collector-health.js";
import { startTestServer, type TestServer } from "../helpers/opamp-server.js";
import { monitorPrefix, type PrefixMonitor } from "../helpers/redis-monitor.js";

const at = healthAt;

for (const transport of ["websocket", "http"] as const) {
  describe(`timestamp-only health reports over ${transport}`, () => {
    let t: TestServer;
    let monitor: PrefixMonitor;
    const events: AgentEventName[] = [];
    const a = () => new TestAgent({ transport, url: t.url });
    let agent: TestAgent;
    const CAPS = Caps.ReportsStatus | Caps.ReportsHealth;

    before(async () => {
      // No periodic flush inside the test: the batched write happens when the test says.
      t = await startTestServer({ flushIntervalMs: 3_600_000 });
      monitor = await monitorPrefix(t.redis.prefix);
      for (const name of [
        "connected",
        "disconnected",
        "descriptionChanged",
        "capabilitiesChanged",
        "remoteConfigStatusChanged",
        "healthChanged",
        "effectiveConfigChanged",
      ] as const)
        t.server.events.on(name, () => events.push(name));
      agent = a();
      await agent.connect();
      await agent.send({ capabilities: CAPS, health: at(0) });
      await agent.send({ capabilities: CAPS, health: at(0) });
    });
    after(async () => {
      agent?.close();
      await monitor?.stop();
      await t?.close();
    });

    test("a stream of them costs no Redis command and no event until the batched flush", async () => {
      await monitor.settle();
      monitor.reset();
      events.length = 0;
      for (let s = 1; s <= 30; s++) {
        const health = s % 2 ? reversed(at(s)) : at(s);
        await agent.send({ capabilities: CAPS, health });
      }
      await monitor.settle();
      assert.equal(
        monitor.commands.length,
        0,
        `no Redis command: ${JSON.stringify(monitor.commands)}`,
      );
      assert.deepEqual(events, [], "nothing announced, so no status-writer call");
      // The state in memory is fresh all the same.
      const live = t.server.handler.live.get(uidToString(agent.uid));
      assert.equal(String(live?.state.health?.statusTimeUnixNano), String(START + 30_000_000_000n));

      await t.server.store.flushTouches();
      await monitor.settle();
      const key = `${t.redis.prefix}:agent:${uidToString(agent.uid)}`;
      assert.ok(monitor.commands.length > 0, "the batched flush writes");
      for (const c of monitor.commands) {
        assert.ok(c.includes(key), `only the flush of this agent: ${c.join(" ")}`);
        assert.ok(!c.includes("health"), `the flush does not write health: ${c.join(" ")}`);
      }
    });

    test("a meaningful change is written and announced, carrying the fresh timestamps", async () => {
      await monitor.settle();
      monitor.reset();
      events.length = 0;
      const health = at(40, {
        "pipeline:traces/exporter:otlp": ["StatusRecoverableError", "connection refused"],
      });
      await agent.send({ capabilities: CAPS, health });
      await monitor.settle();
      assert.deepEqual(events, ["healthChanged"]);
      assert.ok(
        monitor.commands.some((c) => c.includes("health")),
        JSON.stringify(monitor.commands),
      );
      const key = `${t.redis.prefix}:agent:${uidToString(agent.uid)}`;
      const stored = decodeSubMessage<ComponentHealth>(
        "ComponentHealth",
        (await t.redis.redis.hgetBuffer(key, "health")) as Buffer,
      );
      assert.equal(stored.healthy, false);
      assert.equal(String(stored.statusTimeUnixNano), String(START + 40_000_000_000n));
      // Back to OK is a change too.
      events.length = 0;
      await agent.send({ capabilities: CAPS, health: at(41) });
      assert.deepEqual(events, ["healthChanged"]);
    });

    test("timestamps refreshed in memory ride along with the next write that happens anyway", async () => {
      await agent.send({ capabilities: CAPS, health: at(50) });
      const key = `${t.redis.prefix}:agent:${uidToString(agent.uid)}`;
      const read = async () =>
        decodeSubMessage<ComponentHealth>(
          "ComponentHealth",
          (await t.redis.redis.hgetBuffer(key, "health")) as Buffer,
        );
      assert.equal(String((await read()).statusTimeUnixNano), String(START + 41_000_000_000n));
      // A description change is written: the refreshed health goes with it, announced or not.
      events.length = 0;
      await agent.send({
        capabilities: CAPS,
        agentDescription: {
          identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
        },
      });
      assert.deepEqual(events, ["descriptionChanged"]);
      assert.equal(String((await read()).statusTimeUnixNano), String(START + 50_000_000_000n));
    });
  });
}
