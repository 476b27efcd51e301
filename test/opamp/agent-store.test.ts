/**
 * The agent store on the per-agent connection serve gives it (src/redis-agent.ts): one turn's
 * commands leave as one write, and one agent's save and disconnect keep their call order.
 */
import assert from "node:assert/strict";
import { Socket } from "node:net";
import { test } from "node:test";
import { emptyAgentState } from "../../src/opamp/agent-state.js";
import { AgentStore } from "../../src/opamp/agent-store.js";
import { agentAttributes, encodeSubMessage } from "../../src/opamp/index.js";
import type { AgentRedis } from "../../src/redis-agent.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";

const defer = deferred();

/** The store on a connection whose commands are counted by name. */
async function agentStore() {
  const t = await testRedis();
  defer(() => t.close());
  await t.agent.call("PING"); // connected, so the writes counted below are commands only
  const counts = new Map<string, number>();
  const counted: AgentRedis = {
    ...t.agent,
    call: (...a) => {
      const name = String(a[0]);
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return t.agent.call(...a);
    },
  };
  return { store: new AgentStore(counted, { prefix: t.prefix }), counts, t, prefix: t.prefix };
}

/**
 * What `run` wrote to Redis, one string per write to the socket (a corked batch of writes is
 * one `_writev`, one syscall): every socket of this process to the Redis port is watched.
 */
async function writesOf(run: () => Promise<unknown>): Promise<string[]> {
  const port = Number(new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379").port || 6379);
  const proto = Socket.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const { _write: write, _writev: writev } = proto;
  const written: string[] = [];
  proto._write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    if (this.remotePort === port) written.push(String(chunk));
    return write?.call(this, chunk, ...rest);
  };
  proto._writev = function (this: Socket, chunks: unknown, ...rest: unknown[]) {
    const list = chunks as Array<{ chunk: unknown }>;
    if (this.remotePort === port) written.push(list.map((c) => String(c.chunk)).join(""));
    return writev?.call(this, chunks, ...rest);
  };
  try {
    await run();
  } finally {
    proto._write = write as (...a: unknown[]) => unknown;
    proto._writev = writev as (...a: unknown[]) => unknown;
  }
  return written;
}

function connectedAgent(uid: string) {
  const state = emptyAgentState(uid, "websocket", 1000);
  state.connected = true;
  state.lastConnectedAt = 1000;
  state.lastSeenAt = 1000;
  return state;
}

test("the saves of many agents issued in one turn reach Redis in one write, indexed by one SADD", async () => {
  const { store, counts } = await agentStore();
  const uids = Array.from({ length: 100 }, (_, i) => `agent-${i}`);
  const written = await writesOf(() =>
    Promise.all(uids.map((uid) => store.save(connectedAgent(uid), [], "r1/c1", true))),
  );
  assert.equal(written.length, 1);
  assert.equal(counts.get("SADD"), 1, "the new agents of one turn are one SADD");
  assert.equal(counts.get("HSET"), 100);
  assert.equal((await store.list()).length, 100);
  assert.equal((await store.load("agent-7"))?.connected, true);
});

test("a new agent's index commands leave in its HSET's write even when the turn's batch was opened before", async () => {
  const { store, t } = await agentStore();
  const written = await writesOf(() => {
    // Another module's command opens this turn's batch before the save.
    const other = t.agent.call("GET", "unrelated-key");
    return Promise.all([other, store.save(connectedAgent("late-indexed"), [], "r1/c1", true)]);
  });
  // A SIGKILL between two writes would leave the agent stored but in no index: one write only.
  assert.equal(written.length, 1);
  assert.match(written[0] ?? "", /SADD[\s\S]*late-indexed/i);
  assert.match(written[0] ?? "", /ZADD[\s\S]*late-indexed/i);
  assert.deepEqual(await store.list(), ["late-indexed"]);
});

test("a disconnect issued right after a save is stored after it; one owned elsewhere is not", async () => {
  const { store } = await agentStore();
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
  const { store, counts, t, prefix } = await agentStore();
  const answers = await Promise.all(Array.from({ length: 50 }, () => store.replicaAlive("gone")));
  assert.deepEqual(new Set(answers), new Set([false]));
  assert.equal(counts.get("EXISTS"), 1);
  assert.equal(await store.replicaAlive(""), false);
  assert.equal(counts.get("EXISTS"), 1);
  // Asked again once answered: a new lookup (a stalled replica may register again).
  await t.redis.set(`${prefix}:replica:gone`, "1", "PX", 60_000);
  assert.equal(await store.replicaAlive("gone"), true);
  assert.equal(counts.get("EXISTS"), 2);
});

test("a new agent joins the uid order; loadBrief reads only what lists filter on", async () => {
  const { store, t, prefix } = await agentStore();
  const redis = t.redis;
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
