/**
 * The service's AdminBackend passes the admin routes' contract (test/api/backend-contract.ts):
 * a real repository, Redis and four simulated agents; the group's rollout waits an hour after
 * its first stage, so it stays in flight.
 */

import { SimulatedFleet } from "../../src/opamp/index.js";
import { backendContract } from "../api/backend-contract.js";
import { startTestService } from "../helpers/service.js";
import { waitFor } from "../helpers/wait.js";
import { collectorYaml } from "../sync/helpers/fleet.js";
import { TestRepo } from "../sync/helpers/git-repo.js";

const GROUP = `selector:
  match: {host.role: edge}
rollout:
  stages: [{percent: 50, pause: 1h}, {percent: 100}]
  applyTimeout: 10s
heartbeatInterval: 1s
`;

/** What every simulated agent reports as its build's components (sorted, as the API shows). */
const COMPONENTS = {
  exporters: ["debug", "otlp"],
  processors: ["batch"],
  receivers: ["hostmetrics", "otlp"],
};

backendContract("the service's backend", async () => {
  const repo = new TestRepo();
  repo.writeAll({
    "groups/edge/group.yaml": GROUP,
    "groups/edge/collector.yaml": collectorYaml("v1"),
  });
  repo.commit("edge v1");
  const svc = await startTestService({ repo: repo.dir });
  const service = svc.service;
  const fleet = new SimulatedFleet({
    agents: 4,
    url: svc.wsUrl,
    attributes: { "host.role": "edge" },
    applyMs: 10,
    heartbeatSeconds: 1,
    components: COMPONENTS,
  });
  await fleet.start();
  // The first stage passed: half the agents applied, the next stage waits for its pause.
  await waitFor(
    "the first stage passed",
    () => {
      const r = service.rollouts.status("edge")?.rollout;
      return r?.stagePassedAt !== undefined && r.status === "in-progress";
    },
    { timeoutMs: 20_000, intervalMs: 50 },
  );
  // Every agent stored and connected (the store writes in batches).
  const uids = fleet.agents.map((a) => a.uid).sort();
  await waitFor(
    "every agent stored and connected",
    async () => {
      const { agents } = await service.backend.agents({ group: "edge", state: "connected" });
      return uids.every((u) => agents.some((a) => a.state.instanceUid === u));
    },
    { timeoutMs: 20_000, intervalMs: 50 },
  );
  // Every agent's component map received (it is asked for after the hash).
  await waitFor(
    "every agent's components",
    () =>
      fleet.agents.every(
        (a) => service.opamp.handler.live.get(a.uid)?.state.availableComponents?.components,
      ),
    { timeoutMs: 20_000, intervalMs: 50 },
  );
  // And recorded in the component sets (a script after the save that brought the map).
  await waitFor(
    "the agents' component set recorded",
    async () => Object.keys(await service.backend.componentSets()).length === 1,
    { timeoutMs: 20_000, intervalMs: 50 },
  );
  return {
    backend: service.backend,
    group: "edge",
    agents: uids,
    components: COMPONENTS,
    close: async () => {
      await fleet.stop();
      await svc.close();
    },
  };
});
