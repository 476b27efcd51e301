/** The admin routes against the in-memory backend (the same suite runs against the service). */
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
