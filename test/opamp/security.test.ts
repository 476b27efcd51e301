/**
 * Authentication, the connection limit and TLS: each refusal is checked, and the server keeps
 * serving agents that are allowed in.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { request as httpsRequest } from "node:https";
import { describe, test } from "node:test";
import WebSocket from "ws";
import { AgentCapabilities as Caps } from "../../src/opamp/capabilities.js";
import { decodeServerToAgent, encodeAgentToServer } from "../../src/opamp/codec.js";
import { postOpamp, TestAgent } from "../helpers/agent.js";
import { makeTestCerts } from "../helpers/certs.js";
import { startTestServer } from "../helpers/opamp-server.js";
import { deferred } from "../helpers/teardown.js";

const defer = deferred();

const message = () =>
  encodeAgentToServer({
    instanceUid: new Uint8Array(16).fill(3),
    capabilities: Caps.ReportsStatus,
  });

/** The HTTP status a WebSocket upgrade was refused with, and its headers. */
async function upgradeRefusal(url: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(url.replace(/^http/, "ws"), { headers });
  ws.on("error", () => {}); // terminating a refused handshake reports an error we expect
  const [, res] = (await once(ws, "unexpected-response")) as [
    unknown,
    import("node:http").IncomingMessage,
  ];
  ws.terminate();
  return { status: res.statusCode, headers: res.headers };
}

describe("security", () => {
  test("bearer tokens: 401 without or with a wrong token, before any upgrade", async () => {
    const t = await startTestServer({ tokens: ["s3cret", "rotated"] });
    defer(() => t.close());
    assert.equal((await postOpamp(t.url, message())).status, 401);
    assert.equal((await postOpamp(t.url, message(), { token: "wrong" })).status, 401);
    assert.equal((await upgradeRefusal(t.url)).status, 401);
    assert.equal((await upgradeRefusal(t.url, { Authorization: "Bearer wrong" })).status, 401);
    for (const token of ["s3cret", "rotated"]) {
      for (const transport of ["http", "websocket"] as const) {
        const a = new TestAgent({ transport, url: t.url, token });
        await a.connect();
        assert.equal((await a.send({ capabilities: Caps.ReportsStatus })).errorResponse, null);
        a.close();
      }
    }
    assert.ok(!t.log.lines.some((l) => /no bearer tokens/.test(String(l.msg))));
  });

  test("without tokens the endpoint is open and a warning is logged", async () => {
    const t = await startTestServer();
    defer(() => t.close());
    assert.equal((await postOpamp(t.url, message())).status, 200);
    assert.ok(t.log.lines.some((l) => l.level === 40 && /no bearer tokens/.test(String(l.msg))));
  });

  test("over the connection limit: 503 with Retry-After, for polls and upgrades", async () => {
    const t = await startTestServer({ maxConnections: 2, retryAfterSeconds: 45 });
    defer(() => t.close());
    const held = [
      new TestAgent({ transport: "websocket", url: t.url }),
      new TestAgent({ transport: "websocket", url: t.url }),
    ];
    for (const a of held) await a.connect();
    const refused = await upgradeRefusal(t.url);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers["retry-after"], "45");
    const poll = await postOpamp(t.url, message());
    assert.equal(poll.status, 503);
    assert.equal(poll.headers["retry-after"], "45");
    // The agents already in are still served.
    assert.equal((await held[0]?.send({ capabilities: Caps.ReportsStatus }))?.errorResponse, null);
    held[1]?.close();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await postOpamp(t.url, message())).status, 200, "admitted again below the limit");
    held[0]?.close();
  });

  test("TLS serves both transports; with a client CA, only agents with a signed certificate get in", async () => {
    const certs = makeTestCerts();
    const t = await startTestServer({
      tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca },
    });
    const post = (opts: { cert?: Buffer; key?: Buffer }) =>
      new Promise<number>((resolve, reject) => {
        const req = httpsRequest(
          t.url,
          {
            method: "POST",
            ca: certs.ca,
            ...opts,
            headers: { "Content-Type": "application/x-protobuf" },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => {
              if (res.statusCode === 200) decodeServerToAgent(Buffer.concat(chunks));
              resolve(res.statusCode ?? 0);
            });
          },
        );
        req.on("error", reject);
        req.end(message());
      });
    defer(async () => {
      await t.close();
    });
    assert.equal(await post({ cert: certs.clientCert, key: certs.clientKey }), 200);
    await assert.rejects(post({}), /certificate|socket hang up|ECONNRESET|alert/i);
    const ws = new WebSocket(t.url.replace(/^https/, "wss"), {
      ca: certs.ca,
      cert: certs.clientCert,
      key: certs.clientKey,
    });
    await once(ws, "open");
    ws.send(Buffer.concat([Buffer.from([0]), message()]));
    const [data] = (await once(ws, "message")) as [Buffer];
    assert.equal(data[0], 0);
    ws.close();
  });
});
