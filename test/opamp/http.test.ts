/**
 * Plain-HTTP-only behaviour: compression both ways, status codes for bad bodies, size limits
 * before and after inflating (gzip bomb), and liveness by polling.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import {
  AgentCapabilities as Caps,
  ServerErrorResponseType,
} from "../../src/opamp/capabilities.js";
import { decodeServerToAgent, encodeAgentToServer } from "../../src/opamp/codec.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import { postOpamp, TestAgent } from "../helpers/agent.js";
import { startTestServer, type TestServer } from "../helpers/opamp-server.js";
import { deferred } from "../helpers/teardown.js";

const defer = deferred();

const LIMIT = 256 * 1024;
// Made before any server runs: compressing them blocks this process for seconds, which would
// otherwise count against the server's header timeout on the agents' keep-alive sockets.
const BOMB = gzipSync(Buffer.alloc(512 * 1024 * 1024), { level: 9 }); // 512 MiB of zeros, ~500 KB
const SMALL_BOMB = gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 }); // fits on the wire
const uid = () => new Uint8Array(Array.from({ length: 16 }, () => Math.floor(Math.random() * 256)));

describe("OpAMP over plain HTTP", () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ maxMessageBytes: LIMIT, livenessFactor: 0.2 });
  });
  after(() => t.close());

  const stillServing = async () => {
    const reply = await new TestAgent({ transport: "http", url: t.url }).send({
      capabilities: Caps.ReportsStatus,
    });
    assert.equal(reply.errorResponse, null);
  };

  test("a gzip request body is honoured and the response is gzipped when accepted", async () => {
    const id = uid();
    const body = gzipSync(
      encodeAgentToServer({ instanceUid: id, capabilities: Caps.ReportsStatus }),
    );
    const res = await postOpamp(t.url, body, {
      headers: { "Content-Encoding": "gzip", "Accept-Encoding": "gzip" },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-encoding"], "gzip");
    const reply = decodeServerToAgent(gunzipSync(res.body));
    assert.deepEqual(Buffer.from(reply.instanceUid as Uint8Array), Buffer.from(id));

    const plainRes = await postOpamp(
      t.url,
      encodeAgentToServer({ instanceUid: id, capabilities: 1n, sequenceNum: 1n }),
    );
    assert.equal(plainRes.headers["content-encoding"], undefined);
  });

  test("an undecodable body is HTTP 400 with a BAD_REQUEST message", async () => {
    const res = await postOpamp(t.url, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]));
    assert.equal(res.status, 400);
    const error = decodeServerToAgent(res.body).errorResponse as {
      type: number;
      errorMessage: string;
    };
    assert.equal(error.type, ServerErrorResponseType.BadRequest);
    assert.match(error.errorMessage, /not valid protobuf/);
    await stillServing();
  });

  test("a body that is not gzip but says so is HTTP 400", async () => {
    const res = await postOpamp(t.url, Buffer.from("not gzip"), {
      headers: { "Content-Encoding": "gzip" },
    });
    assert.equal(res.status, 400);
    await stillServing();
  });

  test("a wrong Content-Type is HTTP 415", async () => {
    const res = await postOpamp(t.url, Buffer.from("{}"), {
      headers: { "Content-Type": "application/json" },
    });
    assert.equal(res.status, 415);
  });

  test("a body over the limit is HTTP 413", async () => {
    const res = await postOpamp(
      t.url,
      encodeAgentToServer({
        instanceUid: uid(),
        customMessage: { data: Buffer.alloc(LIMIT + 10) },
      }),
    );
    assert.equal(res.status, 413);
    await stillServing();
  });

  test("a gzip bomb is refused with 413 without inflating past the limit", async () => {
    const bomb = BOMB;
    assert.ok(bomb.length < LIMIT * 4);
    const small = SMALL_BOMB; // fits on the wire, not inflated
    assert.ok(small.length < LIMIT);
    const before = process.memoryUsage().rss;
    const res = await postOpamp(t.url, small, { headers: { "Content-Encoding": "gzip" } });
    assert.equal(res.status, 413);
    assert.ok(
      process.memoryUsage().rss - before < 32 * 1024 * 1024,
      "the 64 MiB body was never materialised",
    );
    assert.equal(
      (await postOpamp(t.url, bomb, { headers: { "Content-Encoding": "gzip" } })).status,
      413,
    );
    await stillServing();
  });

  test("GET is refused with 405", async () => {
    const res = await fetch(t.url);
    assert.equal(res.status, 405);
  });

  test("an agent that stops polling is disconnected after the window of the interval it was given", async () => {
    t.desired.all = { heartbeatIntervalSeconds: 1 }; // window = 0.2 × 1 s for agents offered it
    defer(() => (t.desired.all = undefined));
    const caps = Caps.ReportsStatus | Caps.AcceptsOpAMPConnectionSettings | Caps.ReportsHeartbeat;
    const a = new TestAgent({ transport: "http", url: t.url });
    // This agent cannot accept connection settings, so it keeps the default 30 s × 0.2 window.
    const b = new TestAgent({ transport: "http", url: t.url });
    const id = uidToString(a.uid);
    const gone: string[] = [];
    t.server.events.on("disconnected", (e) => gone.push(e.instanceUid));
    const offer = await a.send({ capabilities: caps });
    assert.ok(offer.connectionSettings, "interval offered");
    await b.send({ capabilities: Caps.ReportsStatus });
    await t.server.handler.sweep();
    assert.deepEqual(gone, []);
    await new Promise((r) => setTimeout(r, 300));
    await t.server.handler.sweep();
    assert.deepEqual(gone, [id], "only the agent that was given the 1 s interval");
    assert.equal((await t.server.store.load(id))?.connected, false);
    assert.equal((await t.server.store.load(uidToString(b.uid)))?.connected, true);
  });

  test("heartbeats that change nothing are batched: no Redis write until the flush", async () => {
    const a = new TestAgent({ transport: "http", url: t.url });
    await a.send({ capabilities: Caps.ReportsStatus });
    await a.send({ capabilities: Caps.ReportsStatus });
    const key = `${t.redis.prefix}:agent:${uidToString(a.uid)}`;
    const seqBefore = await t.redis.redis.hget(key, "seq");
    for (let i = 0; i < 20; i++) await a.send({ capabilities: Caps.ReportsStatus });
    assert.equal(await t.redis.redis.hget(key, "seq"), seqBefore, "no write per heartbeat");
    await t.server.store.flushTouches();
    assert.equal(await t.redis.redis.hget(key, "seq"), String(a.seq - 1n), "one batched write");
  });
});

test("close() finishes while a keep-alive agent keeps polling; later polls get 503 or a closed socket", async () => {
  const { Agent, request } = await import("node:http");
  const t = await startTestServer();
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
  const id = new Uint8Array(16).fill(5);
  let seq = 0n;
  const statuses: number[] = [];
  const poll = () =>
    new Promise<void>((resolve) => {
      const req = request(
        t.url,
        { method: "POST", agent: keepAlive, headers: { "Content-Type": "application/x-protobuf" } },
        (res) => {
          statuses.push(res.statusCode ?? 0);
          res.resume();
          res.on("end", resolve);
        },
      );
      req.on("error", () => resolve());
      req.end(
        encodeAgentToServer({
          instanceUid: id,
          sequenceNum: seq++,
          capabilities: Caps.ReportsStatus,
        }),
      );
    });
  let polling = true;
  const loop = (async () => {
    while (polling) await poll();
  })();
  // Close while one of the agent's polls is being handled, so its connection is busy.
  let atClose = -1;
  const closed = new Promise<void>((resolve) =>
    t.server.events.on("capabilitiesChanged", () => {
      atClose = statuses.length + 1; // the poll in flight is still answered normally
      void t.server.close({ graceMs: 60_000 }).then(resolve);
    }),
  );
  await closed; // would hang while the agent keeps its keep-alive connection busy
  await poll();
  polling = false;
  await loop;
  keepAlive.destroy();
  assert.ok(
    statuses.slice(atClose).every((s) => s === 503),
    `after close: ${statuses.slice(atClose)}`,
  );
  await t.redis.close();
});
