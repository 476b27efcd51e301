/**
 * Reconnect storms: past `maxPendingAgents` (sockets upgraded but not yet answered), new
 * WebSocket upgrades and HTTP requests get 503 with a Retry-After; while the event loop is
 * late, the first message of a new WebSocket gets UNAVAILABLE with RetryInfo. Simulated
 * agents shed either way come back after the interval and are configured.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { afterEach, test } from "node:test";
import WebSocket from "ws";
import { ServerErrorResponseType } from "../../src/opamp/capabilities.js";
import { decodeServerToAgent, encodeAgentToServer } from "../../src/opamp/codec.js";
import { frameWebSocketMessage, unframeWebSocketMessage } from "../../src/opamp/framing.js";
import { newInstanceUid, uidToString } from "../../src/opamp/instance-uid.js";
import { SimulatedFleet } from "../../src/opamp/simulator/fleet.js";
import { startTestServer, type TestServer, yamlConfig } from "../helpers/opamp-server.js";

let t: TestServer | undefined;
const fleets: SimulatedFleet[] = [];
afterEach(async () => {
  for (const f of fleets.splice(0)) await f.stop();
  await t?.close();
  t = undefined;
});

const config = yamlConfig({ "collector.yaml": "receivers: {otlp: {}}\n" }) as NonNullable<
  ReturnType<typeof yamlConfig>
>;

/** A WebSocket that is upgraded and then says nothing: it stays pending. */
async function silentSocket(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url.replace(/^http/, "ws"), { perMessageDeflate: false });
  await once(ws, "open");
  return ws;
}

test("past maxPendingAgents: 503 + Retry-After for upgrades and HTTP; shed agents are configured later", async () => {
  t = await startTestServer({ shedding: { maxPendingAgents: 1 } });
  t.desired.all = { config };
  const holder = await silentSocket(t.url);

  const refused = new WebSocket(t.url.replace(/^http/, "ws"));
  refused.on("error", () => {}); // terminated before it opened, on purpose
  const [, res] = (await once(refused, "unexpected-response")) as [
    unknown,
    import("node:http").IncomingMessage,
  ];
  refused.terminate();
  assert.equal(res.statusCode, 503);
  const retryAfter = Number(res.headers["retry-after"]);
  assert.ok(retryAfter >= 1 && retryAfter <= 5, `Retry-After ${res.headers["retry-after"]}`);

  const http = await fetch(t.url, {
    method: "POST",
    headers: { "content-type": "application/x-protobuf" },
    body: encodeAgentToServer({ instanceUid: newInstanceUid(), sequenceNum: 0n }),
  });
  assert.equal(http.status, 503);
  assert.match(http.headers.get("retry-after") ?? "", /^[1-5]$/);
  assert.equal(t.server.shedder.stats.shedConnections, 2);

  // Agents arriving now are shed, then come back after Retry-After once the holder is gone.
  const fleet = new SimulatedFleet({ agents: 2, url: t.url, transport: "mixed", applyMs: 0 });
  fleets.push(fleet);
  const started = fleet.start();
  await fleet.until((s) => s.shed >= 2, 15_000);
  holder.close();
  await started;
  const s = await fleet.until((x) => x.byHash[config.hash.slice(0, 12)] === 2, 30_000);
  assert.ok(s.shed >= 2, JSON.stringify(s));
});

test("event loop late: a new WebSocket's first message gets UNAVAILABLE with RetryInfo, and the agent is configured later", async () => {
  let lagMs = 500;
  t = await startTestServer({ shedding: { maxLoopDelayMs: 100, loopDelay: () => lagMs } });
  t.desired.all = { config };

  // While late, new connections are refused outright; let one in to see the message path.
  lagMs = 0;
  const ws = await silentSocket(t.url);
  lagMs = 500;
  const uid = newInstanceUid();
  ws.send(frameWebSocketMessage(encodeAgentToServer({ instanceUid: uid, sequenceNum: 0n })));
  const [data] = (await once(ws, "message")) as [Buffer];
  ws.close();
  const reply = decodeServerToAgent(unframeWebSocketMessage(data)) as {
    instanceUid: Uint8Array;
    errorResponse?: { type?: number; retryInfo?: { retryAfterNanoseconds?: bigint } } | null;
  };
  assert.equal(reply.errorResponse?.type, ServerErrorResponseType.Unavailable);
  const nanos = BigInt(reply.errorResponse?.retryInfo?.retryAfterNanoseconds ?? 0);
  assert.ok(nanos >= 1_000_000_000n && nanos <= 5_000_000_000n, `retry after ${nanos} ns`);
  assert.deepEqual(Buffer.from(reply.instanceUid), Buffer.from(uid));
  assert.equal(
    await t.redis.redis.exists(`${t.redis.prefix}:agent:${uidToString(uid)}`),
    0,
    "nothing stored",
  );

  // A simulated agent: its upgrade is refused while late, it honours Retry-After, and is
  // configured once the loop is on time again.
  const fleet = new SimulatedFleet({ agents: 1, url: t.url, applyMs: 0 });
  fleets.push(fleet);
  const started = fleet.start();
  await fleet.until((s) => s.shed >= 1, 15_000);
  lagMs = 0;
  await started;
  await fleet.until((s) => s.byHash[config.hash.slice(0, 12)] === 1, 30_000);
});
