/**
 * The service backend's agent pages against a real Redis and a real admin socket: a page is
 * filled past uids whose stored agent is gone (and the CLI reads on past them).
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
  const backend = new ServiceBackend({ redis, opamp } as unknown as ServiceBackendParts);
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
