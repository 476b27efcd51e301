/**
 * WebSocket-only behaviour: pushes, takeover and duplicate uids, bad frames, the size limit.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import {
  AgentCapabilities as Caps,
  ServerErrorResponseType,
} from "../../src/opamp/capabilities.js";
import { decodeServerToAgent, encodeAgentToServer } from "../../src/opamp/codec.js";
import { unframeWebSocketMessage } from "../../src/opamp/framing.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import { TestAgent } from "../helpers/agent.js";
import { startTestServer, type TestServer, yamlConfig } from "../helpers/opamp-server.js";

const CAPS = Caps.ReportsStatus | Caps.AcceptsRemoteConfig;
const describeHost = (host: string) => ({
  identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
  nonIdentifyingAttributes: [{ key: "host.name", value: { stringValue: host } }],
});

describe("OpAMP over WebSocket", () => {
  let t: TestServer;
  const open: TestAgent[] = [];
  const agent = async (uid?: Uint8Array) => {
    const a = new TestAgent({ transport: "websocket", url: t.url, ...(uid ? { uid } : {}) });
    await a.connect();
    open.push(a);
    return a;
  };
  const known = async (host = "edge-1", uid?: Uint8Array) => {
    const a = await agent(uid);
    await a.send({ capabilities: CAPS, agentDescription: describeHost(host) });
    await a.send({ capabilities: CAPS, agentDescription: describeHost(host) });
    return a;
  };

  before(async () => {
    t = await startTestServer({ maxMessageBytes: 64 * 1024 });
  });
  after(async () => {
    for (const a of open) a.close();
    await t.close();
  });

  test("a new desired config is pushed at once to connected agents", async () => {
    const a = await known();
    const b = await known("edge-2");
    const config = yamlConfig({ "collector.yaml": "pushed: true\n" });
    t.desired.byUid.set(uidToString(a.uid), { config });
    const pushedA = a.next();
    assert.equal(await t.server.refresh(), 1, "only the agent whose desired state changed");
    const push = await pushedA;
    assert.equal(
      Buffer.from((push.remoteConfig as { configHash: Uint8Array }).configHash).toString("hex"),
      config?.hash,
    );
    assert.equal(await t.server.refresh(), 0, "not pushed twice");
    assert.equal(b.received.length, 2);
  });

  test("a reconnect of the same agent takes its uid over and closes the old socket", async () => {
    const first = await known("edge-3");
    const closed = once(first.socket as WebSocket, "close");
    const second = await agent(first.uid);
    second.seq = first.seq;
    const reply = await second.send({
      capabilities: CAPS,
      agentDescription: describeHost("edge-3"),
    });
    assert.equal(reply.agentIdentification, null);
    const [code] = await closed;
    assert.equal(code, 1000);
    const stored = await t.server.store.load(uidToString(first.uid));
    assert.equal(stored?.connected, true, "still connected through the new socket");
  });

  test("another agent claiming a connected uid gets a new instance uid", async () => {
    const first = await known("vm-original");
    const clone = await agent(first.uid);
    const reply = await clone.send({
      capabilities: CAPS,
      agentDescription: describeHost("vm-clone"),
    });
    const newUid = (reply.agentIdentification as { newInstanceUid: Uint8Array }).newInstanceUid;
    assert.equal(newUid.length, 16);
    assert.notDeepEqual(Buffer.from(newUid), Buffer.from(first.uid));
    const stored = await t.server.store.load(uidToString(first.uid));
    assert.equal(
      stored?.description?.nonIdentifyingAttributes?.[0]?.value?.stringValue,
      "vm-original",
    );
    // The original keeps being served on its own socket.
    assert.equal((await first.send({ capabilities: CAPS })).errorResponse, null);
  });

  test("closing the socket disconnects the agent", async () => {
    const a = await known("edge-4");
    const uid = uidToString(a.uid);
    const gone = new Promise((resolve) =>
      t.server.events.on("disconnected", (e) => e.instanceUid === uid && resolve(e.reason)),
    );
    a.close();
    assert.equal(await gone, "websocket closed");
    assert.equal((await t.server.store.load(uid))?.connected, false);
  });

  test("text frames, a wrong header byte and undecodable frames get BAD_REQUEST; the socket stays usable", async () => {
    const a = await known("edge-5");
    const socket = a.socket as WebSocket;
    const cases: Array<[string | Buffer, RegExp]> = [
      ["hello", /text frames/],
      [Buffer.from([0x02, 0x0a, 0x10]), /header 0x2/],
      [Buffer.from([0x00, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), /not valid protobuf/],
    ];
    for (const [frame, message] of cases) {
      const reply = a.next();
      socket.send(frame);
      const error = (await reply).errorResponse as { type: number; errorMessage: string };
      assert.equal(error.type, ServerErrorResponseType.BadRequest);
      assert.match(error.errorMessage, message);
    }
    assert.equal((await a.send({ capabilities: CAPS })).errorResponse, null);
  });

  test("a message over the limit closes the socket with 1009; other agents are still served", async () => {
    const other = await known("edge-6");
    const big = await agent();
    const closed = once(big.socket as WebSocket, "close");
    (big.socket as WebSocket).send(
      Buffer.concat([
        Buffer.from([0]),
        encodeAgentToServer({
          instanceUid: big.uid,
          customMessage: { data: Buffer.alloc(70 * 1024) },
        }),
      ]),
    );
    const [code] = await closed;
    assert.equal(code, 1009);
    assert.equal((await other.send({ capabilities: CAPS })).errorResponse, null);
  });

  test("a header-less legacy frame is served", async () => {
    const ws = new WebSocket(t.url.replace(/^http/, "ws"));
    await once(ws, "open");
    const uid = new Uint8Array(16).fill(9);
    ws.send(encodeAgentToServer({ instanceUid: uid, capabilities: CAPS }));
    const [data] = (await once(ws, "message")) as [Buffer];
    const reply = decodeServerToAgent(unframeWebSocketMessage(data));
    assert.deepEqual(Buffer.from(reply.instanceUid as Uint8Array), Buffer.from(uid));
    assert.equal(reply.errorResponse, null);
    ws.close();
  });
});
