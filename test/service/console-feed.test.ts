/**
 * The console's change feed across replicas (real Redis, two feeds as two replicas): an agent
 * change seen by one replica reaches the other's listeners through pub/sub; rollout changes
 * come from the controller's own cross-replica signal; changes are batched per interval; the
 * connection history is kept per agent. Also the SSE route end to end over a real socket.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { afterEach, beforeEach, describe, test } from "node:test";
import type { Redis } from "ioredis";
import pino from "pino";
import { AdminServer } from "../../src/api/admin-server.js";
import type { ChangeBatch } from "../../src/api/backend.js";
import { emptyAgentState } from "../../src/opamp/agent-state.js";
import { AgentEvents } from "../../src/opamp/index.js";
import { connectRedis } from "../../src/redis.js";
import { ConsoleFeed } from "../../src/service/console-feed.js";
import { FakeBackend } from "../api/fake-backend.js";
import { type TestRedis, testRedis } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait.js";

const logger = pino({ level: "silent" });
const UID = "0190a000-0000-7000-8000-000000000001";

/** Resolves with the first batch `listen` hears that satisfies `ok` (bounded). */
function nextBatch(feed: ConsoleFeed, ok: (b: ChangeBatch) => boolean): Promise<ChangeBatch> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no matching batch within 10 s")), 10_000);
    const off = feed.subscribe((b) => {
      if (!ok(b)) return;
      clearTimeout(timer);
      off();
      resolve(b);
    });
  });
}

describe("console feed", () => {
  let redis: TestRedis;
  let conns: Redis[] = [];
  let feeds: ConsoleFeed[] = [];
  const groupListeners: Array<(g: string) => void> = [];

  beforeEach(async () => {
    redis = await testRedis();
  });
  afterEach(async () => {
    for (const f of feeds) f.close();
    for (const c of conns) c.disconnect();
    feeds = [];
    conns = [];
    groupListeners.length = 0;
    await redis.close();
  });

  async function replica(id: string) {
    const conn = await connectRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    conns.push(conn);
    const events = new AgentEvents();
    const feed = new ConsoleFeed({
      redis: conn,
      prefix: redis.prefix,
      replicaId: id,
      events,
      rollouts: {
        onGroupChanged: (l) => {
          groupListeners.push(l);
          return () => {};
        },
      },
      logger,
      intervalMs: 50,
    });
    await feed.start();
    feeds.push(feed);
    return { feed, events };
  }

  test("an agent change on one replica reaches the other's listeners, batched", async () => {
    const a = await replica("a");
    const b = await replica("b");
    const heardOnB = nextBatch(b.feed, (x) => x.agents.includes(UID));
    const heardOnA = nextBatch(a.feed, (x) => x.agents.includes(UID));
    const agent = emptyAgentState(UID, "websocket", Date.now());
    // Three events of one agent within one interval: one batch naming it once.
    a.events.emit("connected", { instanceUid: UID, transport: "websocket", agent });
    a.events.emit("healthChanged", {
      instanceUid: UID,
      healthy: true,
      lastError: "",
      health: { healthy: true },
      agent,
    });
    a.events.emit("remoteConfigStatusChanged", { instanceUid: UID, status: {}, agent });
    const local = await heardOnA;
    assert.deepEqual(local.agents, [UID]);
    const remote = await heardOnB;
    assert.deepEqual(remote.agents, [UID]);
    assert.equal(remote.agentsOverflow, false);
    // The connection history is kept for the agent page.
    await waitFor(
      "the connection history",
      async () => (await a.feed.connections(UID)).length > 0,
      { timeoutMs: 2000, intervalMs: 20 },
    );
    const history = await b.feed.connections(UID);
    assert.equal(history[0]?.type, "connected");
    assert.equal(history[0]?.transport, "websocket");
  });

  test("a burst of connects and disconnects keeps the newest 20 per agent, with a TTL", async () => {
    const a = await replica("a");
    const OTHER = "0190a000-0000-7000-8000-000000000002";
    const agent = emptyAgentState(UID, "http", Date.now());
    for (let i = 0; i < 13; i++) {
      for (const instanceUid of [UID, OTHER]) {
        a.events.emit("connected", { instanceUid, transport: "http", agent });
        a.events.emit("disconnected", { instanceUid, reason: `r${i}`, agent });
      }
    }
    await waitFor(
      "both histories",
      async () =>
        (await a.feed.connections(UID)).length === 20 &&
        (await a.feed.connections(OTHER)).length === 20,
      { timeoutMs: 5000, intervalMs: 20 },
    );
    const history = await a.feed.connections(OTHER);
    assert.deepEqual(history[0], { ...history[0], type: "disconnected", reason: "r12" });
    assert.equal(history[19]?.type, "connected", "the 6 oldest of 26 are dropped");
    const ttl = await conns[0]?.ttl(a.feed.historyKey(UID));
    assert.ok(ttl !== undefined && ttl > 29 * 24 * 3600, `ttl ${ttl}`);
  });

  test("a connect storm is written as history scripts of at most 1000 events", async () => {
    const a = await replica("a");
    const conn = conns[0];
    assert.ok(conn);
    // The key count of every script the feed sends (EVAL or EVALSHA) through its pipelines.
    const sizes: number[] = [];
    const pipeline = conn.pipeline.bind(conn);
    conn.pipeline = ((...args: Parameters<Redis["pipeline"]>) => {
      const p = pipeline(...args) as ReturnType<Redis["pipeline"]> & {
        sendCommand(command: { name: string; args: unknown[] }): unknown;
      };
      const send = p.sendCommand.bind(p);
      p.sendCommand = (command) => {
        if (/^eval/i.test(command.name)) sizes.push(Number(command.args[1]));
        return send(command);
      };
      return p;
    }) as Redis["pipeline"];
    const uids = Array.from({ length: 2500 }, (_, i) => `storm-${String(i).padStart(4, "0")}`);
    for (const instanceUid of uids) {
      const agent = emptyAgentState(instanceUid, "http", Date.now());
      a.events.emit("connected", { instanceUid, transport: "http", agent });
    }
    for (const uid of [uids[0] ?? "", uids.at(-1) ?? ""])
      await waitFor("the history", async () => (await a.feed.connections(uid)).length === 1, {
        timeoutMs: 5000,
      });
    assert.deepEqual(sizes, [1000, 1000, 500]);
  });

  test("rollout changes and new commits are batched to listeners", async () => {
    const a = await replica("a");
    const heard = nextBatch(a.feed, (x) => x.groups.includes("edge") && x.sync);
    for (const l of groupListeners) l("edge");
    a.feed.syncChanged();
    const batch = await heard;
    assert.deepEqual(batch.groups, ["edge"]);
  });
});

describe("GET /api/v1/events", () => {
  let server: AdminServer | undefined;
  afterEach(async () => {
    await server?.close();
  });

  test("streams a change batch as a server-sent event, behind the tokens", async () => {
    const backend = new FakeBackend([]);
    server = new AdminServer({ backend, logger, port: 0, tokens: ["t"] });
    const { port } = await server.start();
    const open = (headers: Record<string, string>) =>
      new Promise<{ status: number; type: string; text: () => string }>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, path: "/api/v1/events", headers }, (res) => {
          let text = "";
          res.on("data", (d) => (text += d));
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers["content-type"]),
            text: () => text,
          });
        });
        req.on("error", reject);
        req.end();
      });
    assert.equal((await open({})).status, 401);
    const stream = await open({ Cookie: "opamp_gitops_session=t" });
    assert.equal(stream.status, 200);
    assert.match(stream.type, /^text\/event-stream/);
    await waitFor("the hello event", () => stream.text().includes("event: hello"), {
      timeoutMs: 2000,
      intervalMs: 20,
    });
    await backend.control("edge", "pause", "test");
    await waitFor("a changes event", () => stream.text().includes("event: changes"), {
      timeoutMs: 2000,
      intervalMs: 20,
    });
    assert.match(stream.text(), /event: changes\ndata: \{"groups":\["edge"\]/);
  });
});
