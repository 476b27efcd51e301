/**
 * Instance uid ownership under mutual TLS, end to end: the credential is the client
 * certificate (no bearer tokens). A second client presenting another certificate of the same
 * CA and claiming a connected agent's uid, with no description or with a copy of the victim's
 * (descriptions are public on the status branch), is handed `new_instance_uid`, never gets
 * the victim's config, never ends its session and changes nothing stored; over HTTPS and WSS
 * both ways. The same certificate reconnecting with the same description takes its uid over.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import type WebSocket from "ws";
import { AgentCapabilities as Caps, RemoteConfigStatus } from "../../src/opamp/capabilities.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import type { AgentToServer } from "../../src/opamp/messages.js";
import { type AgentTls, TestAgent } from "../helpers/agent.js";
import { makeTestCerts, type TestCerts } from "../helpers/certs.js";
import { startTestServer, type TestServer, yamlConfig } from "../helpers/opamp-server.js";
import { deferred } from "../helpers/teardown.js";

const defer = deferred();

const CAPS = Caps.ReportsStatus | Caps.AcceptsRemoteConfig | Caps.ReportsRemoteConfig;
const description = (host: string) => ({
  identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
  nonIdentifyingAttributes: [{ key: "host.name", value: { stringValue: host } }],
});
const newUid = (m: Record<string, unknown>) =>
  (m.agentIdentification as { newInstanceUid: Uint8Array } | null)?.newInstanceUid;
const forgedFailure = (host?: string): Partial<AgentToServer> => ({
  capabilities: CAPS,
  ...(host ? { agentDescription: description(host) } : {}),
  remoteConfigStatus: {
    lastRemoteConfigHash: new Uint8Array(32),
    status: RemoteConfigStatus.FAILED,
    errorMessage: "forged",
  },
});

describe("instance uid ownership with client certificates (mTLS)", () => {
  let certs: TestCerts;
  let t: TestServer;
  let victimTls: AgentTls;
  let attackerTls: AgentTls;
  const open: TestAgent[] = [];
  const agent = async (transport: "websocket" | "http", tls: AgentTls, uid?: Uint8Array) => {
    const a = new TestAgent({ transport, url: t.url, tls, ...(uid ? { uid } : {}) });
    await a.connect();
    open.push(a);
    return a;
  };

  before(async () => {
    certs = makeTestCerts(["agent-2"]);
    t = await startTestServer({
      tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca },
    });
    t.desired.all = { config: yamlConfig({ "secret.yaml": "password: hunter2\n" }) };
    victimTls = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    const other = certs.clients["agent-2"];
    assert.ok(other);
    attackerTls = { ca: certs.ca, cert: other.cert, key: other.key };
  });
  after(async () => {
    for (const a of open) a.close();
    await t?.close();
  });

  for (const victimTransport of ["websocket", "http"] as const) {
    for (const attackerTransport of ["websocket", "http"] as const) {
      test(`another certificate over ${attackerTransport === "http" ? "HTTPS" : "WSS"} claiming a ${victimTransport === "http" ? "HTTPS" : "WSS"} agent's uid gets a new uid and nothing else`, async () => {
        const host = `victim-${victimTransport}-${attackerTransport}`;
        const v = await agent(victimTransport, victimTls);
        await v.send({ capabilities: CAPS, agentDescription: description(host) });
        const served = await v.send({ capabilities: CAPS, agentDescription: description(host) });
        const offered = [served, ...v.received].some((m) => m.remoteConfig);
        assert.ok(offered, "the victim is served its config");
        const uid = uidToString(v.uid);
        const stored = await t.server.store.load(uid);
        assert.match(stored?.credential ?? "", /^cert:[0-9a-f]{64}$/, "owned by its certificate");
        const disconnected: string[] = [];
        const off = t.server.events.on("disconnected", (e) => {
          if (e.instanceUid === uid) disconnected.push(e.reason);
        });
        defer(() => off());
        // Without a description, then with a copy of the victim's.
        for (const copy of [undefined, host]) {
          const attacker = await agent(attackerTransport, attackerTls, v.uid);
          attacker.seq = v.seq;
          const reply = await attacker.send(forgedFailure(copy));
          assert.equal(newUid(reply)?.length, 16, `handed a new instance uid (${copy ?? "bare"})`);
          assert.equal(reply.remoteConfig, null, "never the victim's config");
          assert.ok(
            attacker.received.every((m) => m.remoteConfig === null),
            "nothing pushed to the attacker",
          );
        }
        // The victim keeps its session, its state and its certificate's ownership.
        assert.equal((await v.send({ capabilities: CAPS })).errorResponse, null);
        const now = await t.server.store.load(uid);
        assert.equal(now?.connected, true);
        assert.equal(now?.transport, victimTransport);
        assert.equal(now?.remoteConfigStatus, null, "no forged report stored");
        assert.equal(now?.credential, stored?.credential);
        assert.deepEqual(disconnected, []);
        if (victimTransport === "websocket")
          assert.equal((v.socket as WebSocket).readyState, 1, "victim socket still open");
      });
    }
  }

  test("the same certificate reconnecting with the same description takes its uid over", async () => {
    const v = await agent("websocket", victimTls);
    await v.send({ capabilities: CAPS, agentDescription: description("reconnects") });
    const closed = once(v.socket as WebSocket, "close");
    const again = await agent("websocket", victimTls, v.uid);
    again.seq = v.seq;
    const reply = await again.send({
      capabilities: CAPS,
      agentDescription: description("reconnects"),
    });
    assert.equal(newUid(reply), undefined, "no new uid for the agent itself");
    await closed; // the old socket is replaced
    assert.equal((await t.server.store.load(uidToString(v.uid)))?.connected, true);
  });
});
