/**
 * `opamp-gitops plan` against a running service: a real repository served by the Service,
 * simulated agents connected over OpAMP, a pull-request branch planned with `--api-url`
 * (agents counted from GET /api/v1/agents) and offline from the status branch the service
 * wrote; both give the same moves.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SimulatedFleet } from "../../src/opamp/index.js";
import { capturedLogger } from "../helpers/logger.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { waitFor } from "../helpers/wait.js";
import { baseRepo, CANARY, group, plan } from "../plan/helpers.js";
import { collectorYaml } from "../sync/helpers/fleet.js";
import type { TestRepo } from "../sync/helpers/git-repo.js";

describe("plan against a running service with simulated agents", () => {
  let repo: TestRepo;
  let svc: TestService;
  const fleets: SimulatedFleet[] = [];
  let api = "";
  const log = capturedLogger("info");

  before(async () => {
    repo = baseRepo();
    svc = await startTestService({ repo: repo.dir }, { logger: log.logger });
    api = svc.api;
    const url = svc.wsUrl;
    for (const [agents, attributes] of [
      [10, { "host.role": "edge" }],
      [4, { "host.role": "edge", canary: "true" }],
      [3, { "host.role": "gateway" }],
    ] as const) {
      const f = new SimulatedFleet({ agents, url, attributes, applyMs: 20, heartbeatSeconds: 1 });
      fleets.push(f);
      await f.start();
    }
    await Promise.all(fleets.map((f) => f.until((s) => s.connected === s.agents, 30_000)));

    // The pull request: a branch the service does not watch.
    repo.git("checkout", "-q", "-b", "feature");
    repo.write("groups/canary/group.yaml", CANARY(5));
    repo.write("groups/edge/collector.yaml", collectorYaml("edge-v2"));
    repo.commit("canary wins; edge v2");
  });

  after(async () => {
    for (const f of fleets) await f.stop();
    await svc?.close();
  });

  function assertMoves(p: Awaited<ReturnType<typeof plan>>["plan"]) {
    const edge = group(p, "edge");
    assert.equal(edge.agents.before, 14);
    assert.equal(edge.agents.after, 10);
    assert.deepEqual(edge.agents.left.by, { canary: 4 });
    assert.deepEqual(
      edge.rollout?.stages.map((s) => s.cohort),
      [1, 5, 10],
    );
    const canary = group(p, "canary");
    assert.deepEqual(canary.agents.joined.by, { edge: 4 });
    assert.equal(canary.rollout, undefined);
    assert.equal(p?.newlyUnassigned.count, 0);
  }

  test("--api-url: agents counted from the service", async () => {
    const {
      code,
      plan: p,
      err,
    } = await plan({
      repo: repo.dir,
      base: "main",
      head: "feature",
      apiUrl: api,
    });
    assert.equal(code, 0, err);
    assert.equal(p?.agents.kind, "api");
    assert.equal(p?.agents.from, api);
    assert.equal(p?.agents.known, 17);
    assertMoves(p);
  });

  test("offline: the same moves from the status branch the service wrote", async () => {
    const gitdir = join(repo.dir, ".git");
    // ls-tree fails until the branch is written.
    await waitFor(
      "17 agent files on the status branch",
      () =>
        execFileSync(
          "git",
          [
            "--git-dir",
            gitdir,
            "ls-tree",
            "-r",
            "--name-only",
            "opamp-status",
            "--",
            "status/agents",
          ],
          { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
        )
          .split("\n")
          .filter(Boolean).length === 17,
      { timeoutMs: 30_000, intervalMs: 100, ignoreErrors: true },
    );
    const { code, plan: p } = await plan({ repo: repo.dir, base: "main", head: "feature" });
    assert.equal(code, 0);
    assert.equal(p?.agents.kind, "status-branch");
    assert.equal(p?.agents.known, 17);
    assertMoves(p);
  });
});
