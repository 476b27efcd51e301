/**
 * The component sets behind GET /api/v1/components against a real Redis: each set agents
 * report is listed once by its hash, with its kinds as views show them; a set no stored agent
 * names any more goes; the same report recorded by two replicas counts its agent once; a hash
 * reported without its map leaves the old set; moves applied in the opposite order of their
 * saves leave the record's set agreeing with its stored map; a connect repairs a record whose
 * set disagrees with its components (an older replica's write); agents stored before the sets
 * were kept are counted by one walk per Redis, by one process at a time, never over a live
 * report, skipping undecodable records and retrying failed moves; and listing reads the sets'
 * key only, bounded.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import type { AgentState, AvailableComponents } from "../../src/opamp/index.js";
import {
  AgentEvents,
  AgentStore,
  encodeSubMessage,
  setReportField,
} from "../../src/opamp/index.js";
import { ComponentSets, MAX_LISTED } from "../../src/service/component-sets.js";
import { fakeAgent } from "../api/fake-backend.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";

const defer = deferred();
const uid = (n: number) => `0190a000-0000-7000-8000-${String(n).padStart(12, "0")}`;

/** An AvailableComponents report: kind → types, under a one-byte hash. */
function report(hash: number, kinds: Record<string, string[]> | null): AvailableComponents {
  const components: Record<string, { subComponentMap: Record<string, object> }> = {};
  for (const [kind, types] of Object.entries(kinds ?? {}))
    components[kind] = { subComponentMap: Object.fromEntries(types.map((t) => [t, {}])) };
  return { hash: Uint8Array.of(hash), ...(kinds ? { components } : {}) } as AvailableComponents;
}

/** An agent's state holding `components` as a save stores them (encoded and decoded). */
function agent(n: number, components: AvailableComponents): AgentState {
  const state = fakeAgent(uid(n));
  setReportField(state, "availableComponents", encodeSubMessage("AvailableComponents", components));
  return state;
}

const A = { receivers: ["otlp", "hostmetrics"], exporters: ["debug"] };
const B = { receivers: ["filelog"] };

async function setup() {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const store = new AgentStore(redis, { prefix });
  const sets = (r = redis) =>
    new ComponentSets({ redis: r, prefix, logger: pino({ level: "silent" }) });
  /** Stores agents' records as a save does (`connected` and the encoded report). */
  const stored = async (...agents: AgentState[]) => {
    for (const a of agents) {
      const bytes = a.encoded.availableComponents ?? "";
      await redis.hset(`${prefix}:agent:${a.instanceUid}`, "connected", "1");
      if (bytes) await redis.hset(`${prefix}:agent:${a.instanceUid}`, "availableComponents", bytes);
      await redis.sadd(`${prefix}:agents`, a.instanceUid);
    }
  };
  /** A replica's save of `a`'s report, then its move (the event after the save). */
  const saved = async (index: ComponentSets, a: AgentState) => {
    await stored(a);
    return index.record(a);
  };
  return { redis, prefix, store, sets, stored, saved };
}

test("each reported set is listed once by its hash; a set no agent names goes", async () => {
  const { redis, sets, stored, saved } = await setup();
  const index = sets();
  const agents = [agent(1, report(0xa1, A)), agent(2, report(0xa1, A)), agent(3, report(0xb2, B))];
  await stored(...agents);
  for (const a of agents) await index.record(a);
  // A second replica recording the same reports (a reconnect elsewhere) counts nobody twice.
  const other = sets();
  for (const a of agents) assert.equal(await other.record(a), false);
  const sorted = { exporters: ["debug"], receivers: ["hostmetrics", "otlp"] };
  assert.deepEqual((await index.sets()).sets, { a1: sorted, b2: { receivers: ["filelog"] } });
  assert.deepEqual(await redis.hgetall(index.countsKey), { a1: "2", b2: "1" });

  // Agent 3 moves to A: B has no agent left and goes.
  await saved(index, agent(3, report(0xa1, A)));
  assert.deepEqual(Object.keys((await index.sets()).sets), ["a1"]);
  assert.deepEqual(await redis.hgetall(index.countsKey), { a1: "3" });

  // Agents 1..3 report a new hash without its map (the server asks for it): none names A now.
  for (const n of [1, 2, 3]) await saved(index, agent(n, report(0xc3, null)));
  assert.deepEqual((await index.sets()).sets, {});
  // The map comes: listed again.
  await saved(index, agent(1, report(0xc3, B)));
  assert.deepEqual((await index.sets()).sets, { c3: { receivers: ["filelog"] } });

  // An agent not stored (a report whose save failed) is not counted.
  assert.equal(await index.record(agent(9, report(0xd4, A))), false);
  assert.equal(await redis.hexists(index.key, "d4"), 0);
});

test("agents stored before the sets were kept are counted once, never over a live report", async () => {
  const { redis, sets, stored, saved } = await setup();
  const old = Array.from({ length: 1200 }, (_, i) =>
    agent(i + 1, i % 3 === 0 ? report(0xb2, B) : report(0xa1, A)),
  );
  await stored(...old, fakeAgent(uid(5000)));
  const index = sets();
  // A live report lands first: agent 2 moved to B; the walk must not count its stored A too.
  await saved(index, agent(2, report(0xb2, B)));
  assert.equal(await index.build(), 1199);
  assert.deepEqual(Object.keys((await index.sets()).sets).sort(), ["a1", "b2"]);
  assert.deepEqual(await redis.hgetall(index.countsKey), { a1: "799", b2: "401" });
  // Done once per Redis: another replica's start reads the mark only.
  assert.equal(await sets().build(), 0);
  assert.deepEqual(await redis.hgetall(index.countsKey), { a1: "799", b2: "401" });
});

test("listing reads the sets' key only, whatever the number of agents", async () => {
  const { redis, sets, stored } = await setup();
  const agents = Array.from({ length: 300 }, (_, i) => agent(i + 1, report(0xa1, A)));
  await stored(...agents);
  const index = sets();
  for (const a of agents) await index.record(a);
  const sent: string[] = [];
  const counting = Object.create(redis) as typeof redis;
  counting.sendCommand = (command, ...rest) => {
    sent.push(command.name);
    return redis.sendCommand(command, ...rest);
  };
  const listed = await sets(counting).sets();
  assert.deepEqual(listed, {
    sets: { a1: { receivers: ["hostmetrics", "otlp"], exporters: ["debug"] } },
    truncated: false,
  });
  assert.deepEqual(sent, ["hscan"]);
});

test("a set listing past its bound is cut and says so", async () => {
  const { redis, sets } = await setup();
  const index = sets();
  const fields = (n: number) => Array.from({ length: n }, (_, i) => [i.toString(16), "{}"]).flat();
  await redis.hset(index.key, ...fields(MAX_LISTED));
  const all = await index.sets();
  assert.equal(Object.keys(all.sets).length, MAX_LISTED);
  assert.equal(all.truncated, false);
  await redis.hset(index.key, "ffffffff", "{}");
  const cut = await index.sets();
  assert.equal(Object.keys(cut.sets).length, MAX_LISTED);
  assert.equal(cut.truncated, true);
});

test("moves applied in the opposite order of their saves leave the record's set agreeing with its map", async () => {
  const { redis, prefix, sets, stored } = await setup();
  const x = sets();
  const y = sets();
  // Replica X saves the new hash alone, then replica Y saves the map the server asked for; Y's
  // move runs first, X's (about the hash alone, no longer stored) after it.
  const hashOnly = agent(1, report(0xb2, null));
  const withMap = agent(1, report(0xb2, B));
  await stored(hashOnly);
  await stored(withMap);
  assert.equal(await y.record(withMap), true);
  assert.equal(await x.record(hashOnly), false);
  assert.equal(await redis.hget(`${prefix}:agent:${uid(1)}`, "componentSet"), "b2");
  assert.deepEqual((await x.sets()).sets, { b2: { receivers: ["filelog"] } });
  assert.deepEqual(await redis.hgetall(x.countsKey), { b2: "1" });
});

test("a connect repairs a record whose set differs from its stored components", async () => {
  const { redis, prefix, store, sets, stored } = await setup();
  const index = sets();
  const events = new AgentEvents();
  defer(index.watch(events));
  // The walk is done; then a replica of an older version stores agent 1 with A (no set
  // named), and agent 2's record names B while it stores A (a move lost to a crash).
  await redis.set(index.builtKey, "1");
  await stored(agent(1, report(0xa1, A)), agent(2, report(0xa1, A)));
  await redis.hset(`${prefix}:agent:${uid(2)}`, "componentSet", "b2");
  await redis.hset(index.countsKey, "b2", "1");
  await redis.hset(index.key, "b2", JSON.stringify(B));
  assert.equal(await index.build(), 0);
  for (const n of [1, 2]) {
    const loaded = await store.load(uid(n));
    assert.ok(loaded);
    // Reconnecting with the same hash: no availableComponentsChanged, only the connect.
    events.emit("connected", { instanceUid: uid(n), transport: "websocket", agent: loaded });
  }
  await index.close();
  const sorted = { exporters: ["debug"], receivers: ["hostmetrics", "otlp"] };
  assert.deepEqual((await index.sets()).sets, { a1: sorted });
  assert.deepEqual(await redis.hgetall(index.countsKey), { a1: "2" });
  // Agreeing records send nothing on connect.
  const sent: string[] = [];
  const counting = Object.create(redis) as typeof redis;
  counting.sendCommand = (command, ...rest) => {
    sent.push(command.name);
    return redis.sendCommand(command, ...rest);
  };
  const quiet = sets(counting);
  const quietEvents = new AgentEvents();
  defer(quiet.watch(quietEvents));
  const loaded = await store.load(uid(1));
  assert.equal(loaded?.componentSet, "a1");
  if (loaded)
    quietEvents.emit("connected", { instanceUid: uid(1), transport: "websocket", agent: loaded });
  await quiet.close();
  assert.deepEqual(sent, []);
});

test("one process walks at a time; a walk restarted skips what is counted without a move", async () => {
  const { redis, sets, stored } = await setup();
  await stored(...Array.from({ length: 40 }, (_, i) => agent(i + 1, report(0xa1, A))));
  const index = sets();
  // Another process holds the walk lock: this one counts nothing and waits.
  await redis.set(index.lockKey, "other", "PX", 30_000);
  assert.equal(await index.build(), undefined);
  assert.equal(await redis.exists(index.countsKey), 0);
  await redis.del(index.lockKey);
  assert.equal(await index.build(), 40);
  assert.equal(await redis.exists(index.lockKey), 0, "released");
  // A walk that never got marked (its process died) runs again: reads, no moves.
  await redis.del(index.builtKey);
  const sent: string[] = [];
  const counting = Object.create(redis) as typeof redis;
  counting.sendCommand = (command, ...rest) => {
    sent.push(command.name);
    return redis.sendCommand(command, ...rest);
  };
  assert.equal(await sets(counting).build(), 0);
  assert.equal(await redis.exists(index.builtKey), 1);
  // One script run: the lock's release (the same script ran before: cached), no move.
  assert.deepEqual(
    sent.filter((c) => c === "evalsha" || c === "eval"),
    ["evalsha"],
  );
  assert.deepEqual(await redis.hgetall(index.countsKey), { a1: "40" });
});

test("a walk skips undecodable records and runs again until failed moves are done", {
  timeout: 20_000,
}, async () => {
  const { redis, prefix, sets, stored } = await setup();
  await stored(...Array.from({ length: 10 }, (_, i) => agent(i + 1, report(0xa1, A))));
  // An undecodable record (a varint that never ends) is skipped, not the walk's end.
  const bad = `${prefix}:agent:${uid(99)}`;
  await redis.hset(bad, "connected", "1", "availableComponents", Buffer.from([0x0a, 0xff]));
  await redis.sadd(`${prefix}:agents`, uid(99));
  const failing = Object.create(redis) as typeof redis;
  const index = sets(failing);
  assert.equal(await index.build(), 10);
  assert.equal(await redis.exists(index.builtKey), 1);

  // Two more agents, and a walk to do again; the first move of agent 11 fails (Redis answered
  // an error): that walk is not marked, and runs again after its backoff.
  await stored(agent(11, report(0xa1, A)), agent(12, report(0xa1, A)));
  await redis.del(index.builtKey);
  type Move = (...a: unknown[]) => Promise<number>;
  const scripts = failing as unknown as Record<string, Move>;
  const move = scripts.componentSetMove as Move;
  let tries = 0;
  scripts.componentSetMove = (...args: unknown[]) => {
    if (String(args[0]).endsWith(uid(11)) && tries++ === 0)
      return Promise.reject(new Error("BUSY"));
    return move.apply(failing, args);
  };
  const started = Date.now();
  await index.run();
  assert.equal(tries, 2, "moved on the second walk");
  assert.ok(Date.now() - started >= 900, "after the backoff");
  assert.equal(await redis.exists(index.builtKey), 1);
  assert.deepEqual(await redis.hgetall(index.countsKey), { a1: "12" });
});

test("close() ends a walk, or the wait for another process' walk, at once", {
  timeout: 20_000,
}, async () => {
  const { redis, sets, stored } = await setup();
  await stored(...Array.from({ length: 1200 }, (_, i) => agent(i + 1, report(0xa1, A))));
  const walking = sets();
  let started = Date.now();
  const walk = walking.run();
  await walking.close();
  await walk;
  assert.ok(Date.now() - started < 5000, "a walk stops after its step");
  assert.equal(await redis.exists(walking.builtKey), 0, "unmarked: the next start walks");
  assert.equal(await redis.exists(walking.lockKey), 0, "its lock released");
  await redis.set(walking.lockKey, "other", "PX", 30_000);
  const waiting = sets();
  const wait = waiting.run();
  await new Promise((resolve) => setTimeout(resolve, 100));
  started = Date.now();
  await waiting.close();
  await wait;
  assert.ok(Date.now() - started < 5000, "the wait ends");
});
