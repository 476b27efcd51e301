/** The admin routes against the in-memory backend (the same suite runs against the service). */
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { AdminAccess } from "../../src/api/access.js";
import { adminApp } from "../../src/api/admin-app.js";
import type { AdminBackend } from "../../src/api/backend.js";
import { EventStreams } from "../../src/api/events-route.js";
import { backendContract } from "./backend-contract.js";
import { FakeBackend, fakeAgent } from "./fake-backend.js";

const uid = (n: number) => `0190a000-0000-7000-8000-${String(n).padStart(12, "0")}`;

backendContract("an in-memory fake backend", async () => {
  const agents = [3, 1, 2].map((n) => fakeAgent(uid(n), { "host.role": "edge" }));
  const backend = new FakeBackend(agents);
  return {
    backend,
    group: backend.group,
    agents: [uid(1), uid(2), uid(3)],
    close: async () => {},
  };
});

test("GET /components says when its bound left sets out (X-Truncated), the body still hash → kinds", async () => {
  const backend: AdminBackend = Object.assign(new FakeBackend([]), {
    componentSets: async () => ({ sets: { a1: { receivers: ["otlp"] } }, truncated: true }),
  });
  const app = adminApp({
    backend,
    access: new AdminAccess([]),
    events: new EventStreams(backend),
    logger: pino({ level: "silent" }),
  });
  const res = await app.request("http://127.0.0.1/api/v1/components");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("X-Truncated"), "true");
  const sets = (await res.json()) as Record<string, { receivers: string[] }>;
  assert.deepEqual(sets.a1?.receivers, ["otlp"]);
});
