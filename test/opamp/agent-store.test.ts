/**
 * The agent store on the auto-pipelining connection serve gives it (src/redis.ts): one tick's
 * commands leave as one write, and one agent's save and disconnect keep their call order.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
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

function connectedAgent(uid: string) {
  const state = emptyAgentState(uid, "websocket", 1000);
  state.connected = true;
  state.lastConnectedAt = 1000;
  state.lastSeenAt = 1000;
  return state;
}

test("the saves of many agents issued in one tick reach Redis in one write, indexed by one SADD", async () => {
  const { store, redis } = await pipelinedStore();
  const stream = redis.stream as unknown as { write: (...a: unknown[]) => boolean };
  const write = stream.write.bind(stream);
  let writes = 0;
  stream.write = (...a: unknown[]) => {
    writes++;
    return write(...a);
  };
  const sadd = redis.sadd.bind(redis);
  let indexCalls = 0;
  redis.sadd = ((...a: Parameters<typeof sadd>) => {
    indexCalls++;
    return sadd(...a);
  }) as typeof redis.sadd;
  const uids = Array.from({ length: 100 }, (_, i) => `agent-${i}`);
  await Promise.all(uids.map((uid) => store.save(connectedAgent(uid), [], "r1/c1", true)));
  stream.write = write;
  redis.sadd = sadd;
  assert.equal(writes, 1);
  assert.equal(indexCalls, 1, "the new agents of one tick are one SADD");
  assert.equal((await store.list()).length, 100);
  assert.equal((await store.load("agent-7"))?.connected, true);
});

test("a new agent's index commands leave in its HSET's write even when the tick's pipeline was opened before", async () => {
  const { store, redis } = await pipelinedStore();
  const stream = redis.stream as unknown as { write: (...a: unknown[]) => boolean };
  const write = stream.write.bind(stream);
  const written: string[] = [];
  stream.write = (...a: unknown[]) => {
    written.push(String(a[0]));
    return write(...a);
  };
  // Another module's command opens this tick's auto-pipeline before the save.
  const other = redis.get("unrelated-key");
  const saved = store.save(connectedAgent("late-indexed"), [], "r1/c1", true);
  await Promise.all([other, saved]);
  stream.write = write;
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
