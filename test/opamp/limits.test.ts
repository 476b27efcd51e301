/**
 * Limits on what an agent reports: each one refused with BAD_REQUEST naming the limit and its
 * setting (nothing of the report stored), or, for error text, cut with a visible marker.
 * Run with messages prepared on the event loop and in a decode worker (decode-pool.ts).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TRUNCATED_MARKER } from "../../src/opamp/agent-limits.js";
import {
  AgentCapabilities as Caps,
  ServerErrorResponseType,
} from "../../src/opamp/capabilities.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import type {
  AgentToServer,
  ComponentHealth,
  ConnectionSettingsStatusMessage,
  KeyValue,
  PackageStatusesMessage,
} from "../../src/opamp/messages.js";
import { TestAgent } from "../helpers/agent.js";
import { startTestServer, type TestServer } from "../helpers/opamp-server.js";

const CAPS = Caps.ReportsStatus | Caps.ReportsEffectiveConfig | Caps.ReportsHealth;
const attrs = (n: number, valueBytes = 4): KeyValue[] =>
  Array.from({ length: n }, (_, i) => ({
    key: `k${i}`,
    value: { stringValue: "v".repeat(valueBytes) },
  }));
const files = (n: number, bytes: number) => ({
  configMap: {
    configMap: Object.fromEntries(
      Array.from({ length: n }, (_, i) => [
        `f${i}.yaml`,
        { body: Buffer.alloc(bytes, 0x61), contentType: "text/yaml" },
      ]),
    ),
  },
});
/** A health tree of `n` components in total (root included), nested two levels. */
const healthTree = (n: number, attributes: KeyValue[] = []): ComponentHealth => {
  const children: Record<string, ComponentHealth> = {};
  for (let i = 0; i < n - 1; i++) children[`c${i}`] = { healthy: true, attributes };
  return { healthy: true, componentHealthMap: { pipeline: { componentHealthMap: children } } };
};

// Twice: messages prepared on the event loop, and every message prepared in a decode worker.
for (const [mode, thresholdBytes] of [
  ["on the event loop", undefined],
  ["in a decode worker", 0],
] as const)
  describe(`agent report limits (messages prepared ${mode})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer({
        ...(thresholdBytes === undefined ? {} : { decode: { thresholdBytes } }),
        limits: {
          maxAttributes: 8,
          maxAttributeBytes: 64,
          maxConfigFiles: 3,
          maxConfigBytes: 1000,
          maxHealthComponents: 10,
          maxAvailableComponents: 10,
          maxErrorMessageBytes: 32,
          maxAgentBytes: 3000,
        },
      });
    });
    after(() => t.close());

    /** Sends `fields` from a fresh agent; asserts BAD_REQUEST naming `flag`, nothing stored. */
    const refused = async (fields: Partial<AgentToServer>, flag: string, limit: string) => {
      for (const transport of ["websocket", "http"] as const) {
        const a = new TestAgent({ transport, url: t.url });
        await a.connect();
        const reply = await a.send({ capabilities: CAPS, ...fields });
        const error = reply.errorResponse as { type: number; errorMessage: string } | null;
        assert.equal(error?.type, ServerErrorResponseType.BadRequest, `${limit} over ${transport}`);
        assert.ok(error?.errorMessage.includes(flag), error?.errorMessage);
        assert.ok(error?.errorMessage.includes(limit), error?.errorMessage);
        assert.equal(await t.server.store.load(uidToString(a.uid)), undefined, "nothing stored");
        a.close();
      }
    };
    const accepted = async (fields: Partial<AgentToServer>) => {
      const a = new TestAgent({ transport: "http", url: t.url });
      const reply = await a.send({ capabilities: CAPS, ...fields });
      assert.equal(reply.errorResponse, null);
      return a;
    };

    test("attribute count", async () => {
      await accepted({
        agentDescription: { identifyingAttributes: attrs(4), nonIdentifyingAttributes: attrs(4) },
      });
      await refused(
        {
          agentDescription: { identifyingAttributes: attrs(4), nonIdentifyingAttributes: attrs(5) },
        },
        "--max-agent-attributes",
        "maxAttributes",
      );
    });

    test("attribute size (key and value, nested values included)", async () => {
      await accepted({ agentDescription: { identifyingAttributes: attrs(1, 60) } });
      await refused(
        { agentDescription: { identifyingAttributes: attrs(1, 64) } },
        "--max-attribute-bytes",
        "maxAttributeBytes",
      );
      const nested: KeyValue = {
        key: "n",
        value: {
          arrayValue: { values: Array.from({ length: 20 }, () => ({ stringValue: "abcd" })) },
        },
      };
      await refused(
        { agentDescription: { nonIdentifyingAttributes: [nested] } },
        "--max-attribute-bytes",
        "maxAttributeBytes",
      );
    });

    test("effective config file count", async () => {
      await accepted({ effectiveConfig: files(3, 10) });
      await refused({ effectiveConfig: files(4, 10) }, "--max-config-files", "maxConfigFiles");
    });

    test("effective config total bytes", async () => {
      await accepted({ effectiveConfig: files(2, 400) });
      await refused({ effectiveConfig: files(3, 400) }, "--max-config-bytes", "maxConfigBytes");
    });

    test("health component count (the whole tree)", async () => {
      await accepted({ health: healthTree(9) });
      await refused({ health: healthTree(12) }, "--max-health-components", "maxHealthComponents");
    });

    test("available components (every nesting level counted)", async () => {
      const tree = (kinds: number, perKind: number) => ({
        hash: new Uint8Array([1]),
        components: Object.fromEntries(
          Array.from({ length: kinds }, (_, k) => [
            `kind${k}`,
            {
              subComponentMap: Object.fromEntries(
                Array.from({ length: perKind }, (_, i) => [`t${i}`, {}]),
              ),
            },
          ]),
        ),
      });
      await accepted({ availableComponents: tree(2, 4) }); // 2 + 8 entries
      await refused(
        { availableComponents: tree(2, 5) },
        "--max-available-components",
        "maxAvailableComponents",
      );
    });

    test("available components hash bytes (fixed: a hash is a digest)", async () => {
      const components = { receivers: { subComponentMap: { otlp: {} } } };
      await accepted({ availableComponents: { hash: new Uint8Array(64), components } });
      // With its map or alone (the server then asks for the map): refused either way.
      await refused(
        { availableComponents: { hash: new Uint8Array(65), components } },
        "a fixed limit",
        "componentsHashBytes",
      );
      await refused(
        { availableComponents: { hash: new Uint8Array(65) } },
        "a fixed limit",
        "componentsHashBytes",
      );
    });

    test("error messages are cut with a visible marker", async () => {
      const long = `${"é".repeat(30)} the rest`;
      const a = await accepted({
        remoteConfigStatus: {
          lastRemoteConfigHash: new Uint8Array(32),
          status: 3,
          errorMessage: long,
        },
        health: { healthy: false, lastError: long },
        packageStatuses: {
          packages: { plugin: { name: "plugin", status: 3, errorMessage: long } },
          errorMessage: long,
        },
        connectionSettingsStatus: { status: 3, errorMessage: long },
      });
      const stored = await t.server.store.load(uidToString(a.uid));
      const message = stored?.remoteConfigStatus?.errorMessage ?? "";
      assert.ok(message.startsWith("é".repeat(16)), message);
      assert.ok(message.includes(TRUNCATED_MARKER), message);
      assert.ok(message.includes(`(${Buffer.byteLength(long)} bytes)`), message);
      assert.ok(!message.includes("the rest"));
      assert.ok(stored?.health?.lastError?.includes(TRUNCATED_MARKER));
      // Package and connection-settings errors are cut the same way.
      const packages = stored?.packageStatuses as PackageStatusesMessage | null | undefined;
      const settings = stored?.connectionSettingsStatus as
        | ConnectionSettingsStatusMessage
        | null
        | undefined;
      for (const text of [
        packages?.errorMessage,
        packages?.packages?.plugin?.errorMessage,
        settings?.errorMessage,
      ]) {
        assert.ok(text?.includes(TRUNCATED_MARKER), text);
        assert.ok(!text?.includes("the rest"), text);
      }
    });

    test("bytes stored per agent: a report that would exceed them is refused, the earlier state kept", async () => {
      for (const transport of ["websocket", "http"] as const) {
        const a = new TestAgent({ transport, url: t.url });
        await a.connect();
        assert.equal(
          (await a.send({ capabilities: CAPS, effectiveConfig: files(2, 450) })).errorResponse,
          null,
        );
        const reply = await a.send({
          capabilities: CAPS,
          health: healthTree(9, attrs(8, 50)), // ~4 KB encoded, with the config over 3000 bytes
          agentDescription: { identifyingAttributes: attrs(1) },
        });
        assert.ok(reply.errorResponse, "refused");
        const error = reply.errorResponse as { errorMessage: string };
        assert.match(error.errorMessage, /maxAgentBytes.*--max-agent-bytes/);
        const stored = await t.server.store.load(uidToString(a.uid));
        assert.equal(stored?.description, null, "the refused report was not merged");
        assert.ok(stored?.effectiveConfig, "the earlier report is kept");
        a.close();
      }
    });

    test(`messages were prepared ${mode}`, () => {
      const { offloaded, inline } = t.server.decoder.stats;
      if (thresholdBytes === 0) assert.ok(offloaded > 0 && inline === 0, `${offloaded}/${inline}`);
      else assert.ok(offloaded === 0 && inline > 0, `${offloaded}/${inline}`);
    });
  });
