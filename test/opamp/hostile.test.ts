/**
 * Hostile and broken clients on the agent port: refused upgrades reset at once, clients that
 * do not read, flood, trickle, stay silent or answer pings they were never sent. Each test
 * shows the process lives and the connection is eventually closed; no timing is asserted.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect, type Socket } from "node:net";
import { describe, test } from "node:test";
import WebSocket from "ws";
import { AgentCapabilities as Caps } from "../../src/opamp/capabilities.js";
import { encodeAgentToServer } from "../../src/opamp/codec.js";
import { frameWebSocketMessage } from "../../src/opamp/framing.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import { TestAgent } from "../helpers/agent.js";
import { startTestServer, yamlConfig } from "../helpers/opamp-server.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";

const CAPS = Caps.ReportsStatus | Caps.AcceptsRemoteConfig;
const port = (url: string) => Number(new URL(url).port);

/** Resolves when `socket` closes (by either side). */
const closed = (socket: Socket) =>
  new Promise<void>((resolve) => {
    if (socket.destroyed) resolve();
    socket.once("close", () => resolve());
  });

/** An upgrade request, sent over a raw socket. */
function upgradeRequest(path: string, token?: string): string {
  return [
    `GET ${path} HTTP/1.1`,
    "Host: 127.0.0.1",
    "Connection: Upgrade",
    "Upgrade: websocket",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ...(token ? [`Authorization: Bearer ${token}`] : []),
    "",
    "",
  ].join("\r\n");
}

describe("hostile clients", () => {
  const defer = deferred();

  test("1,000 refused upgrades (404, 401, 503), each reset at once, do not end the process", async () => {
    const t = await startTestServer({ tokens: ["good"], maxConnections: 1 });
    defer(() => t.close());
    // The one connection the limit allows, so that an authenticated upgrade gets 503.
    const holder = new TestAgent({ transport: "websocket", url: t.url, token: "good" });
    await holder.connect();
    await holder.send({ capabilities: CAPS });
    const kinds = [
      upgradeRequest("/elsewhere"), // 404
      upgradeRequest("/v1/opamp", "bad"), // 401
      upgradeRequest("/v1/opamp", "good"), // 503: over the connection limit
    ];
    let refused = 0;
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const socket = connect(port(t.url), "127.0.0.1");
          socket.on("error", () => {});
          await once(socket, "connect");
          socket.write(kinds[(batch * 50 + i) % 3] as string);
          // Half reset as soon as the request is out, half as the refusal starts to arrive:
          // the server writes to a socket that is gone either way.
          if (i % 2 === 0) await once(socket, "data");
          socket.resetAndDestroy();
          refused++;
          await closed(socket);
        }),
      );
    }
    assert.equal(refused, 1000);
    // Still answering: the holder is served, and HTTP agents too.
    assert.equal((await holder.send({ capabilities: CAPS })).errorResponse, null);
    holder.close();
    await once(holder.socket as WebSocket, "close");
    const http = new TestAgent({ transport: "http", url: t.url, token: "good" });
    assert.equal((await http.send({ capabilities: CAPS })).errorResponse, null);
  });

  test("a WebSocket agent that does not read its replies is dropped once they pass the limit", async () => {
    const t = await startTestServer({ maxSendBufferBytes: 64 * 1024 });
    defer(() => t.close());
    const a = new TestAgent({ transport: "websocket", url: t.url });
    await a.connect();
    await a.send({ capabilities: CAPS });
    const uid = uidToString(a.uid);
    const gone = new Promise((resolve) =>
      t.server.events.on("disconnected", (e) => e.instanceUid === uid && resolve(e.reason)),
    );
    // Stop reading: the kernel buffers fill first, then the server's backlog.
    const raw = (a.socket as unknown as { _socket: Socket })._socket;
    raw.pause();
    let pushes = 0;
    const big = "x".repeat(256 * 1024);
    while (t.server.wsStats.slowReaders === 0 && pushes < 400) {
      t.desired.all = { config: yamlConfig({ "c.yaml": `v: ${pushes}\n# ${big}\n` }) };
      pushes += await t.server.refresh();
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(t.server.wsStats.slowReaders, 1, `dropped after ${pushes} pushes`);
    assert.equal(await gone, "websocket closed");
    assert.equal(t.server.connectedAgents, 0);
  });

  test("a flood of messages is read with pauses, answered in order, the queue bounded", async () => {
    const t = await startTestServer({ maxQueuedMessages: 4 });
    defer(() => t.close());
    const ws = new WebSocket(t.url.replace(/^http/, "ws"), { perMessageDeflate: false });
    await once(ws, "open");
    const uid = new Uint8Array(16).fill(9);
    const replies: bigint[] = [];
    const all = new Promise<void>((resolve) =>
      ws.on("message", () => {
        replies.push(BigInt(replies.length));
        if (replies.length === 500) resolve();
      }),
    );
    // All 500 frames in one write: they arrive faster than they are handled.
    const frames = Array.from({ length: 500 }, (_, i) =>
      frameWebSocketMessage(
        encodeAgentToServer({ instanceUid: uid, sequenceNum: BigInt(i), capabilities: CAPS }),
      ),
    );
    for (const f of frames) ws.send(f);
    await all;
    assert.equal(replies.length, 500, "every message answered");
    assert.ok(t.server.wsStats.pausedReads > 0, "reading was paused while the queue was full");
    await t.server.store.flushTouches();
    const stored = await t.server.store.load(uidToString(uid));
    assert.equal(stored?.sequenceNum, 499n, "handled in order: the last one last");
    ws.close();
  });

  test("unsolicited pongs do not keep a socket that does not answer pings alive", async () => {
    const t = await startTestServer({ pingIntervalMs: 100 });
    defer(() => t.close());
    const ws = new WebSocket(t.url.replace(/^http/, "ws"), {
      perMessageDeflate: false,
      autoPong: false,
    });
    await once(ws, "open");
    ws.send(
      frameWebSocketMessage(
        encodeAgentToServer({ instanceUid: new Uint8Array(16).fill(7), capabilities: CAPS }),
      ),
    );
    const pongs = setInterval(() => ws.readyState === ws.OPEN && ws.pong(), 20);
    // try/finally, not defer: the pongs must stop before the assertions that follow.
    try {
      await once(ws, "close");
    } finally {
      clearInterval(pongs);
    }
    assert.ok(t.server.wsStats.deadPeers >= 1);
  });

  test("agents that answer pings stay connected; no two pings carry the same nonce", async () => {
    const t = await startTestServer({ pingIntervalMs: 50 });
    defer(() => t.close());
    const nonces: string[] = [];
    const sockets = await Promise.all(
      [1, 2, 3].map(async (n) => {
        const ws = new WebSocket(t.url.replace(/^http/, "ws"), { perMessageDeflate: false });
        defer(() => ws.terminate());
        ws.on("ping", (data: Buffer) => nonces.push(data.toString("hex")));
        await once(ws, "open");
        ws.send(
          frameWebSocketMessage(
            encodeAgentToServer({ instanceUid: new Uint8Array(16).fill(n), capabilities: CAPS }),
          ),
        );
        return ws;
      }),
    );
    await waitFor("four rounds of pings", () => nonces.length >= 12);
    assert.deepEqual(
      sockets.map((ws) => ws.readyState),
      [WebSocket.OPEN, WebSocket.OPEN, WebSocket.OPEN],
    );
    assert.equal(t.server.wsStats.deadPeers, 0);
    assert.ok(
      nonces.every((n) => n.length === 16),
      "8 random bytes each",
    );
    // Nonces are views of one draw per round: each socket must get its own bytes.
    assert.equal(new Set(nonces).size, nonces.length, "every nonce distinct");
  });

  test("a WebSocket that sends no first message, or none for the idle timeout, is closed (1008)", async () => {
    const t = await startTestServer({ firstMessageTimeoutMs: 200, idleTimeoutMs: 300 });
    defer(() => t.close());
    const silent = new WebSocket(t.url.replace(/^http/, "ws"), { perMessageDeflate: false });
    await once(silent, "open");
    const [code, reason] = (await once(silent, "close")) as [number, Buffer];
    assert.equal(code, 1008);
    assert.match(reason.toString(), /no message within 200 ms/);

    const idle = new TestAgent({ transport: "websocket", url: t.url });
    await idle.connect();
    await idle.send({ capabilities: CAPS }); // it answers pings, but says nothing more
    const [idleCode, idleReason] = (await once(idle.socket as WebSocket, "close")) as [
      number,
      Buffer,
    ];
    assert.equal(idleCode, 1008);
    assert.match(idleReason.toString(), /no message for 300 ms/);
  });

  test("slow HTTP: no headers, trickled headers and a trickled body are eventually cut off", async () => {
    const t = await startTestServer({ headersTimeoutMs: 300, requestTimeoutMs: 600 });
    defer(() => t.close());
    const open = () => {
      const s = connect(port(t.url), "127.0.0.1");
      s.on("error", () => {});
      s.resume(); // read what the server answers (a 408), so its close is seen
      return s;
    };
    const nothing = open();
    const headers = open();
    headers.write("POST /v1/opamp HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    const trickle = setInterval(() => headers.writable && headers.write("X-A: b\r\n"), 50);
    const body = open();
    body.write(
      "POST /v1/opamp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n",
    );
    const drip = setInterval(() => body.writable && body.write("x"), 50);
    // try/finally, not defer: the trickles must stop before an agent is served below.
    try {
      await Promise.all([closed(nothing), closed(headers), closed(body)]);
    } finally {
      clearInterval(trickle);
      clearInterval(drip);
    }
    const a = new TestAgent({ transport: "http", url: t.url });
    assert.equal((await a.send({ capabilities: CAPS })).errorResponse, null);
  });

  test("the per-address connection cap refuses connections beyond it", async () => {
    const t = await startTestServer({ maxConnectionsPerAddress: 2 });
    defer(() => t.close());
    const a = new TestAgent({ transport: "websocket", url: t.url });
    const b = new TestAgent({ transport: "websocket", url: t.url });
    await a.connect();
    await b.connect();
    const c = new TestAgent({ transport: "websocket", url: t.url });
    await assert.rejects(c.connect(), /socket hang up|ECONNRESET|closed/);
    assert.equal((await a.send({ capabilities: CAPS })).errorResponse, null);
    a.close();
    await once(a.socket as WebSocket, "close");
    // A slot is free again (the server sees the close a moment later).
    const d = await waitFor(
      "a connection admitted once one closed",
      async () => {
        const next = new TestAgent({ transport: "websocket", url: t.url });
        await next.connect(); // refused while the server still counts the closed one
        return next;
      },
      { ignoreErrors: true, intervalMs: 20, timeoutMs: 5000 },
    );
    assert.equal((await d.send({ capabilities: CAPS })).errorResponse, null);
    d.close();
    b.close();
  });
});
