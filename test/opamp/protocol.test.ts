/**
 * The specification's MUSTs for a server, as one suite run against both transports.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  AgentCapabilities as Caps,
  RemoteConfigStatus,
  SERVER_CAPABILITIES,
  ServerErrorResponseType,
  ServerToAgentFlags,
} from "../../src/opamp/capabilities.js";
import { encodeAgentToServer } from "../../src/opamp/codec.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import type { AgentToServer } from "../../src/opamp/messages.js";
import { type Received, TestAgent } from "../helpers/agent.js";
import { startTestServer, type TestServer, yamlConfig } from "../helpers/opamp-server.js";
import { deferred } from "../helpers/teardown.js";

const defer = deferred();

const CAPS =
  Caps.ReportsStatus |
  Caps.AcceptsRemoteConfig |
  Caps.ReportsEffectiveConfig |
  Caps.ReportsHealth |
  Caps.ReportsRemoteConfig;
const description = (host: string) => ({
  identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol-contrib" } }],
  nonIdentifyingAttributes: [{ key: "host.name", value: { stringValue: host } }],
});
const fullState = (host = "edge-1"): Partial<AgentToServer> => ({
  capabilities: CAPS,
  agentDescription: description(host),
  health: { healthy: true, status: "StatusOK" },
  effectiveConfig: {
    configMap: {
      configMap: { "collector.yaml": { body: Buffer.from("a: 1\n"), contentType: "text/yaml" } },
    },
  },
});
const hex = (b: unknown) => Buffer.from(b as Uint8Array).toString("hex");
const remoteHash = (m: Received) => hex((m.remoteConfig as { configHash: Uint8Array }).configHash);

for (const transport of ["websocket", "http"] as const) {
  describe(`OpAMP server over ${transport}`, () => {
    let t: TestServer;
    const agents: TestAgent[] = [];
    const agent = async () => {
      const a = new TestAgent({ transport, url: t.url });
      await a.connect();
      agents.push(a);
      return a;
    };
    /** An agent the server already knows (full state reported twice, as the server asks). */
    const knownAgent = async (fields = fullState()) => {
      const a = await agent();
      await a.send(fields);
      await a.send(fields);
      return a;
    };

    before(async () => {
      t = await startTestServer({ resendIntervalMs: 300 });
    });
    after(async () => {
      for (const a of agents) a.close();
      await t.close();
    });

    test("every reply carries the server capabilities and the agent's instance uid", async () => {
      const a = await agent();
      for (const reply of [await a.send(fullState()), await a.send({ capabilities: CAPS })]) {
        assert.equal(reply.capabilities, SERVER_CAPABILITIES);
        assert.deepEqual(hex(reply.instanceUid), a.uidHex);
      }
    });

    test("an unknown agent's first message is its full state; past its first it is asked; a known one in sequence is not", async () => {
      const a = await agent();
      const first = await a.send(fullState());
      assert.equal(
        first.flags,
        0n,
        "the first message (sequence 0, with its description) is not asked again",
      );
      const second = await a.send(fullState());
      assert.equal(second.flags, 0n);
      const heartbeat = await a.send({ capabilities: CAPS });
      assert.equal(heartbeat.flags, 0n);
      // One this service does not know, seen past its first message (a reconnect after the
      // service lost it), or without its description, is asked for the full state.
      for (const late of [
        { seq: 7n, message: fullState() },
        { seq: 0n, message: { capabilities: CAPS } },
      ]) {
        const b = await agent();
        b.seq = late.seq;
        const reply = await b.send(late.message);
        assert.equal(
          reply.flags & ServerToAgentFlags.ReportFullState,
          ServerToAgentFlags.ReportFullState,
          `sequence ${late.seq}`,
        );
      }
    });

    test("a sequence_num gap asks for full state; a retried duplicate is answered without it", async () => {
      const a = await knownAgent();
      a.seq += 5n;
      const gap = await a.send({ capabilities: CAPS });
      assert.equal(
        gap.flags & ServerToAgentFlags.ReportFullState,
        ServerToAgentFlags.ReportFullState,
      );
      a.seq -= 1n; // resend the same sequence number: a retry
      const retry = await a.send({ capabilities: CAPS });
      assert.equal(retry.flags, 0n);
    });

    test("a present sub-message replaces the stored one; an absent one keeps it", async () => {
      const a = await knownAgent();
      await a.send({ capabilities: CAPS, health: { healthy: false, lastError: "exporter down" } });
      const stored = await t.server.store.load(uidToString(a.uid));
      assert.equal(stored?.health?.healthy, false);
      assert.equal(stored?.health?.lastError, "exporter down");
      assert.equal(
        stored?.description?.nonIdentifyingAttributes?.[0]?.value?.stringValue,
        "edge-1",
      );
      assert.ok(stored?.effectiveConfig?.configMap?.configMap?.["collector.yaml"]);
      assert.equal(stored?.capabilities, CAPS);
    });

    test("remote config is sent only while the reported hash differs, never again after FAILED", async () => {
      const config = yamlConfig({ "collector.yaml": `receivers: {otlp: {}}\n# ${transport}\n` });
      t.desired.all = { config };
      defer(async () => {
        t.desired.all = undefined;
      });
      const a = await agent();
      const offer = await a.send(fullState());
      assert.equal(remoteHash(offer), config?.hash);
      const files = (
        offer.remoteConfig as {
          config: { configMap: Record<string, { body: Uint8Array; contentType: string }> };
        }
      ).config.configMap;
      assert.equal(
        Buffer.from(files["collector.yaml"]?.body ?? []).toString(),
        config?.files[0] && Buffer.from(config.files[0].body).toString(),
      );
      assert.equal(files["collector.yaml"]?.contentType, "text/yaml");

      // Already offered on this session: not repeated on the next message.
      assert.equal((await a.send({ capabilities: CAPS })).remoteConfig, null);

      const failed = {
        lastRemoteConfigHash: Buffer.from(config?.hash ?? "", "hex"),
        status: RemoteConfigStatus.FAILED,
        errorMessage: "bad exporter",
      };
      const afterFailed = await a.send({ capabilities: CAPS, remoteConfigStatus: failed });
      assert.equal(afterFailed.remoteConfig, null);
      // Even on a new session (as after a reconnect) an equal hash is never resent.
      const again = new TestAgent({ transport, url: t.url, uid: a.uid });
      await again.connect();
      agents.push(again);
      again.seq = a.seq;
      a.close();
      assert.equal((await again.send({ capabilities: CAPS })).remoteConfig, null);
    });

    test("remote config is not sent to an agent that does not accept it", async () => {
      t.desired.all = { config: yamlConfig({ "collector.yaml": "x: 1\n" }) };
      defer(async () => {
        t.desired.all = undefined;
      });
      const a = await agent();
      const reply = await a.send({ ...fullState(), capabilities: Caps.ReportsStatus });
      assert.equal(reply.remoteConfig, null);
    });

    test("a retried message gets the offer again (the first reply may have been lost), once per resend interval", async () => {
      const config = yamlConfig({ "collector.yaml": `retry: ${transport}\n` });
      t.desired.all = { config };
      defer(async () => {
        t.desired.all = undefined;
      });
      const a = await knownAgent();
      // knownAgent's first reply carried the offer; repeating that message's sequence number
      // is answered with the config at most once per 300 ms resend interval (a client looping
      // on one message gets short replies), and after the interval with it again.
      const started = Date.now();
      let resent = 0;
      for (let i = 0; i < 20; i++) {
        a.seq -= 1n;
        const quick = await a.send(fullState());
        assert.equal(quick.errorResponse, null);
        if (quick.remoteConfig) resent++;
      }
      // At most one resend per interval, however slow this machine is.
      assert.ok(resent <= Math.floor((Date.now() - started) / 300) + 1, `${resent} resends`);
      await new Promise((r) => setTimeout(r, 350));
      a.seq -= 1n;
      const retry = await a.send(fullState());
      assert.equal(remoteHash(retry), config?.hash);
    });

    test("connection settings carry an explicit heartbeat, offered once; no endpoint unless advertised", async () => {
      t.desired.all = { heartbeatIntervalSeconds: 15 };
      defer(async () => {
        t.desired.all = undefined;
      });
      const a = await agent();
      const reply = await a.send({
        ...fullState(),
        capabilities: CAPS | Caps.AcceptsOpAMPConnectionSettings | Caps.ReportsHeartbeat,
      });
      const opamp = (
        reply.connectionSettings as {
          opamp: {
            destinationEndpoint: string;
            certificate: unknown;
            heartbeatIntervalSeconds: { toString(): string };
          };
        }
      ).opamp;
      assert.equal(opamp.destinationEndpoint, "", "no endpoint without --advertise-url");
      assert.equal(opamp.certificate, null);
      assert.equal(opamp.heartbeatIntervalSeconds.toString(), "15");
      const next = await a.send({ capabilities: CAPS | Caps.AcceptsOpAMPConnectionSettings });
      assert.equal(next.connectionSettings, null);
      const other = await agent();
      assert.equal(
        (await other.send(fullState("edge-2"))).connectionSettings,
        null,
        "not offered without AcceptsOpAMPConnectionSettings",
      );
    });

    test("RequestInstanceUid is answered with a new 16-byte uid", async () => {
      const a = await agent();
      const reply = await a.send({ ...fullState(), flags: 1n });
      const newUid = (reply.agentIdentification as { newInstanceUid: Uint8Array }).newInstanceUid;
      assert.equal(newUid.length, 16);
      assert.notEqual(hex(newUid), a.uidHex);
      assert.equal(
        await t.server.store.load(uidToString(a.uid)),
        undefined,
        "nothing stored under the temporary uid",
      );
    });

    test("custom capabilities are stored", async () => {
      const a = await knownAgent();
      await a.send({
        capabilities: CAPS,
        customCapabilities: { capabilities: ["io.opentelemetry.pprof"] },
      });
      const stored = await t.server.store.load(uidToString(a.uid));
      assert.deepEqual(stored?.customCapabilities?.capabilities, ["io.opentelemetry.pprof"]);
    });

    test("an instance_uid that is not 16 bytes is a BAD_REQUEST, and other agents are still served", async () => {
      const a = await agent();
      const reply = await a.sendRaw(
        encodeAgentToServer({ instanceUid: new Uint8Array(8), capabilities: CAPS }),
      );
      const error = reply.errorResponse as { type: number; errorMessage: string };
      assert.equal(error.type, ServerErrorResponseType.BadRequest);
      assert.match(error.errorMessage, /instance_uid must be 16 bytes, got 8/);
      assert.equal(reply.remoteConfig, null, "error_response alone");
      const good = await agent();
      assert.equal((await good.send(fullState())).errorResponse, null);
    });

    test("agent_disconnect marks the agent disconnected and is still answered", async () => {
      const a = await knownAgent();
      const disconnected = new Promise((resolve) =>
        t.server.events.on(
          "disconnected",
          (e) => e.instanceUid === uidToString(a.uid) && resolve(e.reason),
        ),
      );
      const reply = await a.send({ capabilities: CAPS, agentDisconnect: {} });
      assert.equal(reply.capabilities, SERVER_CAPABILITIES);
      assert.equal(await disconnected, "agent_disconnect");
      const stored = await t.server.store.load(uidToString(a.uid));
      assert.equal(stored?.connected, false);
      assert.ok(stored?.lastDisconnectedAt);
    });

    test("events report connection, description, health, effective config and remote config status", async () => {
      const seen: string[] = [];
      const a = new TestAgent({ transport, url: t.url });
      const uid = uidToString(a.uid);
      const offs = (
        [
          "connected",
          "descriptionChanged",
          "healthChanged",
          "effectiveConfigChanged",
          "remoteConfigStatusChanged",
        ] as const
      ).map((name) => t.server.events.on(name, (e) => e.instanceUid === uid && seen.push(name)));
      await a.connect();
      agents.push(a);
      await a.send(fullState());
      await a.send(fullState()); // unchanged: no second round of events
      await a.send({
        capabilities: CAPS,
        remoteConfigStatus: {
          status: RemoteConfigStatus.APPLYING,
          lastRemoteConfigHash: Buffer.alloc(32, 1),
        },
      });
      for (const off of offs) off();
      assert.deepEqual(seen, [
        "connected",
        "descriptionChanged",
        "healthChanged",
        "effectiveConfigChanged",
        "remoteConfigStatusChanged",
      ]);
    });
  });
}
