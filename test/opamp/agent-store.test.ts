/**
 * The agent store on the connection serve gives it (src/redis.ts pipelinedConnection): one
 * turn's commands leave as one socket write, and one agent's save and disconnect keep their
 * call order.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Redis } from "ioredis";
import pino from "pino";
import { emptyAgentState } from "../../src/opamp/agent-state.js";
import { AgentStore } from "../../src/opamp/agent-store.js";
import { agentAttributes, encodeSubMessage } from "../../src/opamp/index.js";
import { pipelinedConnection } from "../../src/redis.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";

const defer = deferred();

async function pipelinedStore() {
  const t = await testRedis();
  const redis = pipelinedConnection(t.redis, pino({ level: "silent" }));
  defer(async () => {
    redis.disconnect();
    await t.close();
  });
  await redis.ping(); // connected, so the writes counted below are commands only
  return { store: new AgentStore(redis, { prefix: t.prefix }), redis, prefix: t.prefix };
}

/**
 * Records what reaches the socket's handle, one entry per write operation (a `writev` of all
 * chunks a cork held is one), until the returned function is called.
 */
function socketWrites(redis: Redis): { written: string[]; stop: () => void } {
  type Chunk = { chunk: Buffer | string };
  const socket = redis.stream as unknown as {
    _write: (chunk: Buffer | string, ...rest: unknown[]) => void;
    _writev: (chunks: Chunk[], ...rest: unknown[]) => void;
  };
  const { _write, _writev } = socket;
  const written: string[] = [];
  socket._write = (chunk, ...rest) => {
    written.push(String(chunk));
    _write.call(socket, chunk, ...rest);
  };
  socket._writev = (chunks, ...rest) => {
    written.push(chunks.map((c) => String(c.chunk)).join(""));
    _writev.call(socket, chunks, ...rest);
  };
  return {
    written,
    stop: () => {
      socket._write = _write;
      socket._writev = _writev;
    },
  };
}

function connectedAgent(uid: string) {
  const state = emptyAgentState(uid, "websocket", 1000);
  state.connected = true;
  state.lastConnectedAt = 1000;
  state.lastSeenAt = 1000;
  return state;
}

test("the saves of many agents issued in one tick reach Redis in one write, indexed by one SADD", async () => {
  const { store, redis } = await pipelinedStore();
  const writes = socketWrites(redis);
  const sadd = redis.sadd.bind(redis);
  let indexCalls = 0;
  redis.sadd = ((...a: Parameters<typeof sadd>) => {
    indexCalls++;
    return sadd(...a);
  }) as typeof redis.sadd;
  const uids = Array.from({ length: 100 }, (_, i) => `agent-${i}`);
  await Promise.all(uids.map((uid) => store.save(connectedAgent(uid), [], "r1/c1", true)));
  writes.stop();
  redis.sadd = sadd;
  assert.equal(writes.written.length, 1);
  assert.equal(writes.written[0]?.match(/HSET/gi)?.length, 100);
  assert.equal(indexCalls, 1, "the new agents of one tick are one SADD");
  assert.equal((await store.list()).length, 100);
  assert.equal((await store.load("agent-7"))?.connected, true);
});

test("a new agent's index commands leave in its HSET's write even when the turn's write was opened before", async () => {
  const { store, redis } = await pipelinedStore();
  const writes = socketWrites(redis);
  // Another module's command opens this turn's write before the save.
  const other = redis.get("unrelated-key");
  const saved = store.save(connectedAgent("late-indexed"), [], "r1/c1", true);
  await Promise.all([other, saved]);
  writes.stop();
  const written = writes.written;
  // A SIGKILL between two writes would leave the agent stored but in no index: one write only.
  assert.equal(written.length, 1);
  assert.match(written[0] ?? "", /SADD[\s\S]*late-indexed/i);
  assert.match(written[0] ?? "", /ZADD[\s\S]*late-indexed/i);
  assert.deepEqual(await store.list(), ["late-indexed"]);
});

test("a disconnect issued right after a save is stored after it; one owned elsewhere is not", async () => {
  const { store } = await pipelinedStore();
  const here = connectedAgent("here");
  const saved = store.save(here, [], "r1/c1", true);
  const gone = { ...here, connected: false, lastDisconnectedAt: 2000 };
  assert.equal(await store.saveDisconnect(gone, "r1/c1"), true);
  await saved;
  assert.equal((await store.load("here"))?.connected, false);

  // Connected through replica r2 now, heard from there: r1's late disconnect must not stand.
  const moved = connectedAgent("moved");
  const stored = store.save(moved, [], "r2/c9", true);
  const late = { ...moved, connected: false, lastDisconnectedAt: 2000 };
  assert.equal(await store.saveDisconnect(late, "r1/c1"), false);
  await stored;
  const after = await store.load("moved");
  assert.equal(after?.connected, true);
  assert.equal(after?.owner, "r2/c9");
});

test("replicaAlive: concurrent questions about one replica share one EXISTS; none is kept", async () => {
  const { store, redis, prefix } = await pipelinedStore();
  const exists = redis.exists.bind(redis);
  let asked = 0;
  redis.exists = ((...a: Parameters<typeof exists>) => {
    asked++;
    return exists(...a);
  }) as typeof redis.exists;
  const answers = await Promise.all(Array.from({ length: 50 }, () => store.replicaAlive("gone")));
  assert.deepEqual(new Set(answers), new Set([false]));
  assert.equal(asked, 1);
  assert.equal(await store.replicaAlive(""), false);
  assert.equal(asked, 1);
  // Asked again once answered: a new lookup (a stalled replica may register again).
  await redis.set(`${prefix}:replica:gone`, "1", "PX", 60_000);
  assert.equal(await store.replicaAlive("gone"), true);
  assert.equal(asked, 2);
});

test("a new agent joins the uid order; loadBrief reads only what lists filter on", async () => {
  const { store, redis, prefix } = await pipelinedStore();
  const uid = "0190a000-0000-7000-8000-000000000002";
  const agent = connectedAgent(uid);
  agent.scopes = ["group:edge", "group:core"];
  agent.description = {
    identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
    nonIdentifyingAttributes: [],
  } as unknown as typeof agent.description;
  agent.encoded.description = Buffer.from(
    encodeSubMessage("AgentDescription", agent.description as object),
  );
  agent.health = { healthy: true, status: "ok" } as unknown as typeof agent.health;
  agent.encoded.health = Buffer.from(encodeSubMessage("ComponentHealth", agent.health as object));
  await store.save(agent, ["description", "health"], "replica/1", true);
  assert.deepEqual(await redis.zrange(`${prefix}:agent-order`, 0, -1), [uid]);
  const [brief, missing] = await store.loadBrief([uid, "0190a000-0000-7000-8000-000000000003"]);
  assert.equal(missing, undefined);
  assert.equal(brief?.connected, true);
  assert.deepEqual(brief?.scopes, ["group:edge", "group:core"]);
  assert.equal(agentAttributes(brief ?? agent).get("service.name"), "otelcol");
  assert.equal(brief?.encoded.health, undefined, "health is not read");
});
