/**
 * The service backend's agent pages against a real Redis and a real admin socket: a page is
 * filled past uids whose stored agent is gone (and the CLI reads on past them), and a
 * filtered page loads about a page of agents, not the whole fleet, once its count is cached
 * (an estimate: the fleet is larger than the count budget).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { AdminServer } from "../../src/api/admin-server.js";
import { ApiClient } from "../../src/commands/api-client.js";
import { AgentStore, emptyAgentState, type OpampServer } from "../../src/opamp/index.js";
import { ServiceBackend, type ServiceBackendParts } from "../../src/service/admin-backend.js";
import { testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";

const defer = deferred();
const uid = (n: number) => `0190a000-0000-7000-8000-${String(n).padStart(12, "0")}`;

/** A backend over `n` stored agents (none live here), counting the agents it loads. */
async function storedFleet(n: number) {
  const { redis, prefix, close } = await testRedis();
  defer(close);
  const store = new AgentStore(redis, { prefix });
  for (let i = 1; i <= n; i++)
    await store.save(emptyAgentState(uid(i), "websocket", 0), [], "replica/1", true);
  const loads = { count: 0 };
  const load = store.load.bind(store);
  store.load = (u) => {
    loads.count++;
    return load(u);
  };
  // Only the store and the (empty) live map are read by agents().
  const opamp = { store, handler: { live: new Map() } } as unknown as OpampServer;
  const backend = new ServiceBackend({ redis, prefix, opamp } as unknown as ServiceBackendParts);
  return { redis, prefix, backend, loads };
}

test("a page is filled past agents gone from Redis; the CLI reads every stored agent", async () => {
  const { redis, prefix, backend } = await storedFleet(30);
  // Listed in <p>:agents, but their hashes are gone (eviction, a failed write, a manual DEL).
  for (let i = 5; i <= 14; i++) await redis.del(`${prefix}:agent:${uid(i)}`);
  const server = new AdminServer({ backend, logger: pino({ level: "silent" }), port: 0 });
  const { port } = await server.start();
  defer(() => server.close());
  const client = new ApiClient({ apiUrl: `http://127.0.0.1:${port}`, actor: "test" } as never);
  const rows = await client.agents(new URLSearchParams(), () => true, { limit: 10 });
  const want = Array.from({ length: 30 }, (_, i) => uid(i + 1)).filter(
    (_, i) => i + 1 < 5 || i + 1 > 14,
  );
  assert.deepEqual(
    rows.map((r) => (r as { instanceUid: string }).instanceUid),
    want,
  );
  const first = await backend.agents({ limit: 10 });
  assert.equal(first.agents.length, 10, "the first page is full despite the gap");
  assert.equal(first.next, uid(20));
});

test("a filtered page loads about a page, not the fleet (count cached)", async () => {
  const n = 3000;
  const { backend, loads } = await storedFleet(n);
  const first = await backend.agents({ state: "disconnected", limit: 10 });
  // Beyond the count budget (LOAD_BUDGET agents loaded): an estimate from the sample.
  assert.equal(first.total, undefined);
  assert.equal(first.estimate, n);
  assert.deepEqual(
    first.agents.map((a) => a.state.instanceUid),
    Array.from({ length: 10 }, (_, i) => uid(i + 1)),
  );
  loads.count = 0;
  const second = await backend.agents({ state: "disconnected", after: first.next, limit: 10 });
  assert.deepEqual(
    second.agents.map((a) => a.state.instanceUid),
    Array.from({ length: 10 }, (_, i) => uid(i + 11)),
  );
  assert.equal(second.estimate, n);
  assert.ok(loads.count <= 500, `the second page loaded ${loads.count} agents`);
  // A filter nothing matches: a bounded scan, then a cursor to go on from.
  await backend.agents({ state: "connected", limit: 10 });
  loads.count = 0;
  const none = await backend.agents({ state: "connected", after: uid(1), limit: 10 });
  assert.deepEqual(none.agents, []);
  assert.equal(none.estimate, 0);
  assert.ok(loads.count <= 2000, `an empty page loaded ${loads.count} agents`);
  assert.equal(none.next, uid(2001));
});
