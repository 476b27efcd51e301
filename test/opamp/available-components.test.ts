/**
 * The AvailableComponents handshake (OpAMP spec, "Initial Handshake"): an agent with the
 * ReportsAvailableComponents capability sends the hash; the server, holding no map for it,
 * sets ReportAvailableComponents; the agent sends the map, which is stored per agent and kept
 * when later messages carry the same hash alone; a new hash replaces it and is asked for again.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AgentCapabilities as Caps, ServerToAgentFlags } from "../../src/opamp/capabilities.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import type { AvailableComponents } from "../../src/opamp/messages.js";
import { TestAgent } from "../helpers/agent.js";
import { startTestServer, type TestServer } from "../helpers/opamp-server.js";

const CAPS = Caps.ReportsStatus | Caps.ReportsAvailableComponents;
const FULL: AvailableComponents = {
  hash: new Uint8Array([1, 2, 3]),
  components: {
    receivers: { subComponentMap: { otlp: {} } },
    exporters: {
      subComponentMap: {
        debug: { metadata: [{ key: "code.namespace", value: { stringValue: "x" } }] },
      },
    },
  },
};
const asks = (flags: bigint) =>
  (flags & ServerToAgentFlags.ReportAvailableComponents) ===
  ServerToAgentFlags.ReportAvailableComponents;

describe("available components", () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  for (const transport of ["websocket", "http"] as const) {
    test(`hash, request, map, then hash alone keeps the map (${transport})`, async () => {
      const a = new TestAgent({ transport, url: t.url });
      await a.connect();
      const first = await a.send({ capabilities: CAPS, availableComponents: { hash: FULL.hash } });
      assert.ok(asks(first.flags), "the server asks for the map it does not hold");
      const second = await a.send({ capabilities: CAPS, availableComponents: FULL });
      assert.ok(!asks(second.flags), "nothing asked once the map is stored");
      const third = await a.send({ capabilities: CAPS, availableComponents: { hash: FULL.hash } });
      assert.ok(!asks(third.flags));
      const stored = await t.server.store.load(uidToString(a.uid));
      assert.deepEqual(
        Object.keys(stored?.availableComponents?.components?.receivers?.subComponentMap ?? {}),
        ["otlp"],
        "the map survives a hash-only report with the same hash",
      );
      const changed = await a.send({
        capabilities: CAPS,
        availableComponents: { hash: new Uint8Array([9]) },
      });
      assert.ok(asks(changed.flags), "a new hash is asked for again");
      const later = await t.server.store.load(uidToString(a.uid));
      assert.equal(Object.keys(later?.availableComponents?.components ?? {}).length, 0);
      a.close();
    });
  }

  test("an agent without the capability is never asked", async () => {
    const a = new TestAgent({ transport: "http", url: t.url });
    const reply = await a.send({
      capabilities: Caps.ReportsStatus,
      availableComponents: { hash: FULL.hash },
    });
    assert.ok(!asks(reply.flags));
  });
});
