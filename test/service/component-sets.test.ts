/**
 * The component sets behind GET /api/v1/components against a real Redis: each set agents
 * report is listed once by its hash, with its kinds as views show them; a set no stored agent
 * names any more goes; the same report recorded by two replicas counts its agent once; a hash
 * reported without its map leaves the old set; agents stored before the sets were kept are
 * counted by one walk per Redis, never over a live report; and listing reads one key, not the
 * agents.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import type { AgentState, AvailableComponents } from "../../src/opamp/index.js";
import { AgentStore, encodeSubMessage } from "../../src/opamp/index.js";
import { ComponentSets } from "../../src/service/component-sets.js";
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

function agent(n: number, components: AvailableComponents): AgentState {
  const state = fakeAgent(uid(n));
  state.availableComponents = components;
  return state;
}

const A = { receivers: ["otlp", "hostmetrics"], exporters: ["debug"] };
const B = { receivers: ["filelog"] };

async function setup() {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const store = new AgentStore(redis, { prefix });
  const sets = (r = redis) =>
    new ComponentSets({
      redis: r,
      prefix,
      logger: pino({ level: "silent" }),
      components: (uids) => store.availableComponents(uids),
    });
  /** Stores agents' records as a save does (`connected` and the encoded report). */
  const stored = async (...agents: AgentState[]) => {
    for (const a of agents) {
      const bytes = a.availableComponents
        ? Buffer.from(encodeSubMessage("AvailableComponents", a.availableComponents))
        : "";
      await redis.hset(`${prefix}:agent:${a.instanceUid}`, "connected", "1");
      if (bytes) await redis.hset(`${prefix}:agent:${a.instanceUid}`, "availableComponents", bytes);
      await redis.sadd(`${prefix}:agents`, a.instanceUid);
    }
  };
  return { redis, prefix, sets, stored };
}

test("each reported set is listed once by its hash; a set no agent names goes", async () => {
  const { redis, sets, stored } = await setup();
  const index = sets();
  const agents = [agent(1, report(0xa1, A)), agent(2, report(0xa1, A)), agent(3, report(0xb2, B))];
  await stored(...agents);
  for (const a of agents) await index.record(a);
  // A second replica recording the same reports (a reconnect elsewhere) counts nobody twice.
  const other = sets();
  for (const a of agents) assert.equal(await other.record(a), false);
  const sorted = { exporters: ["debug"], receivers: ["hostmetrics", "otlp"] };
  assert.deepEqual(await index.sets(), { a1: sorted, b2: { receivers: ["filelog"] } });
  assert.deepEqual(await redis.hgetall(index.countsKey), { a1: "2", b2: "1" });

  // Agent 3 moves to A: B has no agent left and goes.
  await index.record(agent(3, report(0xa1, A)));
  assert.deepEqual(Object.keys(await index.sets()), ["a1"]);
  assert.deepEqual(await redis.hgetall(index.countsKey), { a1: "3" });

  // Agents 1..3 report a new hash without its map (the server asks for it): none names A now.
  for (const n of [1, 2, 3]) await index.record(agent(n, report(0xc3, null)));
  assert.deepEqual(await index.sets(), {});
  // The map comes: listed again.
  await index.record(agent(1, report(0xc3, B)));
  assert.deepEqual(await index.sets(), { c3: { receivers: ["filelog"] } });

  // An agent not stored (a report whose save failed) is not counted.
  assert.equal(await index.record(agent(9, report(0xd4, A))), false);
  assert.equal(await redis.hexists(index.key, "d4"), 0);
});

test("agents stored before the sets were kept are counted once, never over a live report", async () => {
  const { redis, sets, stored } = await setup();
  const old = Array.from({ length: 1200 }, (_, i) =>
    agent(i + 1, i % 3 === 0 ? report(0xb2, B) : report(0xa1, A)),
  );
  await stored(...old, fakeAgent(uid(5000)));
  const index = sets();
  // A live report lands first: agent 2 moved to B; the walk must not count its stored A too.
  const moved = agent(2, report(0xb2, B));
  await index.record(moved);
  assert.equal(await index.build(), 1199);
  assert.deepEqual(Object.keys(await index.sets()).sort(), ["a1", "b2"]);
  assert.deepEqual(await redis.hgetall(index.countsKey), { a1: "799", b2: "401" });
  // Done once per Redis: another replica's start reads the mark only.
  assert.equal(await sets().build(), 0);
  assert.deepEqual(await redis.hgetall(index.countsKey), { a1: "799", b2: "401" });
});

test("listing reads one key, whatever the number of agents", async () => {
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
  assert.deepEqual(Object.keys(listed), ["a1"]);
  assert.deepEqual(sent, ["hgetall"]);
});
