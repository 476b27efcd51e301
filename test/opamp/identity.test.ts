/**
 * Who owns an instance uid: the session that first claimed it. A second claimant with another
 * credential, or without proof it is the same agent, never gets the first one's config, never
 * ends its session and never changes its stored state; over either transport. One WebSocket
 * carries one agent.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import type WebSocket from "ws";
import {
  AgentToServerFlags,
  AgentCapabilities as Caps,
  RemoteConfigStatus,
  ServerErrorResponseType,
  ServerToAgentFlags,
} from "../../src/opamp/capabilities.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import type { AgentToServer } from "../../src/opamp/messages.js";
import { TestAgent } from "../helpers/agent.js";
import { startTestServer, type TestServer, yamlConfig } from "../helpers/opamp-server.js";

const CAPS = Caps.ReportsStatus | Caps.AcceptsRemoteConfig | Caps.ReportsRemoteConfig;
const describeHost = (host: string) => ({
  identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
  nonIdentifyingAttributes: [{ key: "host.name", value: { stringValue: host } }],
});
const full = (host: string): Partial<AgentToServer> => ({
  capabilities: CAPS,
  agentDescription: describeHost(host),
});
const newUid = (m: Record<string, unknown>) =>
  (m.agentIdentification as { newInstanceUid: Uint8Array } | null)?.newInstanceUid;

describe("instance uid ownership", () => {
  let t: TestServer;
  const open: TestAgent[] = [];
  const agent = async (transport: "websocket" | "http", token: string, uid?: Uint8Array) => {
    const a = new TestAgent({ transport, url: t.url, token, ...(uid ? { uid } : {}) });
    await a.connect();
    open.push(a);
    return a;
  };
  /** A victim the server knows, served a config. */
  const victim = async (transport: "websocket" | "http", host: string) => {
    const v = await agent(transport, "token-victim");
    await v.send(full(host));
    await v.send(full(host));
    return v;
  };
  const forgedFailure = (hash: Uint8Array): Partial<AgentToServer> => ({
    capabilities: CAPS,
    remoteConfigStatus: {
      lastRemoteConfigHash: hash,
      status: RemoteConfigStatus.FAILED,
      errorMessage: "forged",
    },
  });

  before(async () => {
    t = await startTestServer({ tokens: ["token-victim", "token-attacker"] });
    t.desired.all = { config: yamlConfig({ "secret.yaml": "password: hunter2\n" }) };
  });
  after(async () => {
    for (const a of open) a.close();
    await t.close();
  });

  for (const victimTransport of ["websocket", "http"] as const) {
    for (const attackerTransport of ["websocket", "http"] as const) {
      test(`another credential over ${attackerTransport} claiming a ${victimTransport} agent's uid, without a description, gets a new uid and nothing else`, async () => {
        const v = await victim(victimTransport, `victim-${victimTransport}-${attackerTransport}`);
        const uid = uidToString(v.uid);
        const before = await t.server.store.load(uid);
        const disconnected: string[] = [];
        t.server.events.on("disconnected", (e) => {
          if (e.instanceUid === uid) disconnected.push(e.instanceUid);
        });
        const attacker = await agent(attackerTransport, "token-attacker", v.uid);
        attacker.seq = v.seq;
        const reply = await attacker.send(forgedFailure(new Uint8Array(32)));
        assert.equal(newUid(reply)?.length, 16, "handed a new instance uid");
        assert.equal(reply.remoteConfig, null, "never the victim's config");
        // The victim keeps its session and its stored state.
        assert.equal((await v.send({ capabilities: CAPS })).errorResponse, null);
        const after = await t.server.store.load(uid);
        assert.equal(after?.connected, true);
        assert.equal(after?.transport, victimTransport);
        assert.equal(after?.remoteConfigStatus, before?.remoteConfigStatus ?? null);
        assert.equal(after?.credential, before?.credential);
        assert.deepEqual(disconnected, []);
        if (victimTransport === "websocket")
          assert.equal((v.socket as WebSocket).readyState, 1, "victim socket still open");
      });
    }
  }

  test("the same credential on a second connection without a description is asked for full state and served nothing", async () => {
    const v = await victim("websocket", "same-token");
    for (const transport of ["http", "websocket"] as const) {
      const claimant = await agent(transport, "token-victim", v.uid);
      claimant.seq = v.seq;
      const reply = await claimant.send(forgedFailure(new Uint8Array(32)));
      assert.equal(
        reply.flags & ServerToAgentFlags.ReportFullState,
        ServerToAgentFlags.ReportFullState,
      );
      assert.equal(reply.remoteConfig, null);
      assert.equal(newUid(reply), undefined);
      // With a different description it is another agent.
      const other = await claimant.send(full("someone-else"));
      assert.equal(newUid(other)?.length, 16);
      assert.equal(other.remoteConfig, null);
    }
    assert.equal((v.socket as WebSocket).readyState, 1);
    const stored = await t.server.store.load(uidToString(v.uid));
    assert.equal(stored?.remoteConfigStatus, null, "no forged report stored");
    assert.equal(stored?.transport, "websocket");
  });

  test("the agent itself reconnecting (same credential, same description) takes its uid over", async () => {
    const v = await victim("websocket", "reconnects");
    const closed = once(v.socket as WebSocket, "close");
    const again = await agent("websocket", "token-victim", v.uid);
    again.seq = v.seq;
    const reply = await again.send(full("reconnects"));
    assert.equal(newUid(reply), undefined);
    await closed;
  });

  test("the credential is stored as a digest, never the token", async () => {
    const v = await victim("http", "digest");
    const raw = await t.redis.redis.hget(
      `${t.redis.prefix}:agent:${uidToString(v.uid)}`,
      "credential",
    );
    assert.match(raw ?? "", /^sha256:[0-9a-f]{64}$/);
    assert.ok(!raw?.includes("token-victim"));
  });

  test("a WebSocket carries one uid: a second is refused with BAD_REQUEST; closing disconnects the one it carried", async () => {
    const a = await agent("websocket", "token-victim");
    await a.send(full("one-socket"));
    const second = new Uint8Array(16).fill(0x42);
    const ownUid = a.uid;
    a.uid = second;
    const reply = await a.send(full("one-socket"));
    const error = reply.errorResponse as { type: number; errorMessage: string };
    assert.equal(error.type, ServerErrorResponseType.BadRequest);
    assert.match(error.errorMessage, /already carries instance uid/);
    assert.equal(await t.server.store.load(uidToString(second)), undefined, "nothing stored");
    a.uid = ownUid;
    const gone = new Promise((resolve) =>
      t.server.events.on(
        "disconnected",
        (e) => e.instanceUid === uidToString(ownUid) && resolve(e),
      ),
    );
    a.close();
    await gone;
    assert.equal(t.server.handler.live.get(uidToString(second)), undefined);
  });

  test("a WebSocket may switch to the uid it was handed; its old uid is disconnected", async () => {
    const a = await agent("websocket", "token-victim");
    await a.send(full("switcher"));
    const oldUid = uidToString(a.uid);
    const reply = await a.send({
      ...full("switcher"),
      flags: AgentToServerFlags.RequestInstanceUid,
    });
    const assigned = newUid(reply) as Uint8Array;
    assert.equal(assigned.length, 16);
    a.uid = assigned;
    a.seq = 0n;
    assert.equal((await a.send(full("switcher"))).errorResponse, null);
    assert.equal((await t.server.store.load(oldUid))?.connected, false);
    assert.equal((await t.server.store.load(uidToString(assigned)))?.connected, true);
  });
});
