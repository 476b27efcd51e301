/**
 * GET /api/v1/agents is bounded (50 per page by default, at most 1000), and its readers that
 * need every agent (`plan --api-url`, `agents`) page through it with the `after` cursor: over a
 * real socket, against a backend of 2,345 agents.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";
import pino from "pino";
import { AdminServer } from "../../src/api/admin-server.js";
import { ApiUnreachableError } from "../../src/commands/api-client.js";
import { agentsFromApi } from "../../src/commands/plan-agents.js";
import { deferred } from "../helpers/teardown.js";
import { FakeBackend, fakeAgent } from "./fake-backend.js";

const defer = deferred();
const uid = (n: number) => `0190a000-0000-7000-8000-${String(n).padStart(12, "0")}`;
const COUNT = 2345;

async function serve(backend: FakeBackend): Promise<string> {
  const server = new AdminServer({ backend, logger: pino({ level: "silent" }), port: 0 });
  const { port } = await server.start();
  defer(() => server.close());
  return `http://127.0.0.1:${port}`;
}

/** The fake backend, counting the agent queries it answers. */
function countingBackend(n: number) {
  const backend = new FakeBackend(Array.from({ length: n }, (_, i) => fakeAgent(uid(i + 1))));
  const queries: Array<{ after?: string; limit?: number }> = [];
  const agents = backend.agents.bind(backend);
  backend.agents = async (q) => {
    queries.push({ ...(q.after ? { after: q.after } : {}), limit: q.limit });
    return agents(q);
  };
  return { backend, queries };
}

test("without limit a page is 50 agents; X-Total-Count counts them all", async () => {
  const { backend } = countingBackend(60);
  const url = await serve(backend);
  const res = await fetch(`${url}/api/v1/agents`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-total-count"), "60");
  const rows = (await res.json()) as Array<{ instanceUid: string }>;
  assert.equal(rows.length, 50);
  assert.equal(rows[49]?.instanceUid, uid(50));
});

test("plan reads every agent through the after= cursor, 1000 at a time", async () => {
  const { backend, queries } = countingBackend(COUNT);
  const url = await serve(backend);
  const read = await agentsFromApi({ apiUrl: url, actor: "test" });
  assert.equal(read.agents?.length, COUNT);
  assert.deepEqual(
    read.agents?.map((a) => a.instanceUid),
    Array.from({ length: COUNT }, (_, i) => uid(i + 1)),
  );
  assert.deepEqual(queries, [
    { limit: 1000 },
    { after: uid(1000), limit: 1000 },
    { after: uid(2000), limit: 1000 },
  ]);
});

test("a service that ignores after= is named, not read forever", async () => {
  const page = JSON.stringify(
    Array.from({ length: 1000 }, (_, i) => ({ instanceUid: uid(i + 1), attributes: {} })),
  );
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(page);
  });
  server.listen(0, "127.0.0.1");
  defer(() => new Promise((done) => server.close(done)));
  await new Promise((done) => server.once("listening", done));
  const { port } = server.address() as { port: number };
  await assert.rejects(
    agentsFromApi({ apiUrl: `http://127.0.0.1:${port}`, actor: "test" }),
    (err: unknown) =>
      err instanceof ApiUnreachableError && /does not page GET \/api\/v1\/agents/.test(err.message),
  );
});
