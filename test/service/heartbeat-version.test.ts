/**
 * The heartbeat fast path skips the provider while its version is unchanged
 * (DesiredStateProvider.version): every input of FleetProvider must move that version, or a
 * heartbeating agent would miss the change. Pushes are switched off here (refresh answers 0),
 * so only heartbeats can deliver: a new commit and a rollout change must each be offered at
 * the agent's very next heartbeat, and the store changes and forgotten secrets must each move
 * the version.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AgentCapabilities as Caps } from "../../src/opamp/capabilities.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import type { Service } from "../../src/service/service.js";
import { helloAs, type Received, TestAgent } from "../helpers/agent.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { waitFor } from "../helpers/wait.js";
import { collectorYaml, groupsRepo, roleGroupYaml } from "../sync/helpers/fleet.js";
import type { TestRepo } from "../sync/helpers/git-repo.js";

const CAPS =
  Caps.ReportsStatus |
  Caps.AcceptsRemoteConfig |
  Caps.ReportsRemoteConfig |
  Caps.AcceptsOpAMPConnectionSettings;

const offeredHash = (reply: Received): string | undefined => {
  const remote = reply.remoteConfig as { configHash?: Uint8Array } | null | undefined;
  return remote?.configHash ? Buffer.from(remote.configHash).toString("hex") : undefined;
};

const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined) =>
  waitFor(what, probe, { timeoutMs: 60_000, intervalMs: 20 });

describe("the provider version and heartbeating agents", () => {
  let repo: TestRepo;
  let svc: TestService;
  let service: Service;
  let agent: TestAgent;

  before(async () => {
    repo = groupsRepo({ edge: roleGroupYaml("edge") }, "edge");
    svc = await startTestService({ repo: repo.dir, pollInterval: "100ms" });
    service = svc.service;
  });

  after(async () => {
    agent?.close();
    await svc?.close();
  });

  /** The hash the provider answers for the agent now. */
  const desiredHash = () => {
    const live = service.opamp.handler.live.get(uidToString(agent.uid));
    return live ? service.provider?.desired(live.state)?.config?.hash : undefined;
  };
  /** Reports `hash` APPLIED (1) or APPLYING (2). */
  const report = (hash: string, status: 1 | 2) =>
    agent.send({
      capabilities: CAPS,
      remoteConfigStatus: { lastRemoteConfigHash: Buffer.from(hash, "hex"), status },
    });
  const beat = async () => offeredHash(await agent.send({ capabilities: CAPS }));
  /**
   * Heartbeats (offered nothing) until one skips the provider: the agent's own report moves
   * its rollout's state for a few ms (batched writes), and a skip must come before a change
   * for the change to test anything.
   */
  const quietAgain = () =>
    until("a quiet heartbeat", async () => {
      const quiet = stats().quietHeartbeats;
      assert.equal(await beat(), undefined);
      return stats().quietHeartbeats > quiet || undefined;
    });
  const stats = () => service.opamp.handler.stats;

  test("a commit and a rollout abort each reach the agent at its next heartbeat", async () => {
    agent = new TestAgent({ transport: "websocket", url: svc.url });
    await agent.connect();
    const v1 = offeredHash(await agent.send(helloAs("edge", CAPS)));
    assert.ok(v1, "edge-v1 offered at connect");
    await report(v1, 1);
    await until("v1 stable", () => service.rollouts.stable("edge")?.hash || undefined);

    // From here on only heartbeats deliver.
    service.opamp.handler.refresh = async () => 0;
    await quietAgain();
    const quiet = stats().quietHeartbeats;
    for (let i = 0; i < 3; i++) assert.equal(await beat(), undefined);
    assert.equal(stats().quietHeartbeats - quiet, 3, "heartbeats skipped the provider");

    repo.writeAll({ "groups/edge/collector.yaml": collectorYaml("edge-v2") });
    const commit = repo.commit("edge v2");
    await until("v2 desired", () => {
      const h = desiredHash();
      return service.sync?.current?.commit === commit && h && h !== v1 ? h : undefined;
    });
    const v2 = desiredHash();
    assert.equal(await beat(), v2, "v2 at the next heartbeat");
    assert.ok(v2);
    // Still applying (the rollout stays in flight); then heartbeats are quiet again.
    await report(v2, 2);
    await quietAgain();

    // A rollout change alone: aborting serves the stable hash again.
    await service.rollouts.abort("edge", "test");
    await until("v1 desired again", () => (desiredHash() === v1 ? v1 : undefined));
    assert.equal(await beat(), v1, "v1 at the next heartbeat");
    await report(v1, 1);
    await quietAgain();

    // The Git desired state alone (a heartbeat interval: no config, no rollout step).
    const interval = () => {
      const live = service.opamp.handler.live.get(uidToString(agent.uid));
      return live ? service.provider?.desired(live.state)?.heartbeatIntervalSeconds : undefined;
    };
    assert.equal(interval(), 1);
    repo.writeAll({ "groups/edge/group.yaml": roleGroupYaml("edge").replace("1s", "2s") });
    repo.commit("edge heartbeats every 2 s");
    await until("2 s desired", () => (interval() === 2 ? 2 : undefined));
    const settings = (await agent.send({ capabilities: CAPS })).connectionSettings as {
      opamp?: { heartbeatIntervalSeconds?: number | { low: number } };
    } | null;
    assert.equal(Number(settings?.opamp?.heartbeatIntervalSeconds), 2, "2 s at the next heartbeat");
  });

  test("store changes and forgotten secrets each move the version", async () => {
    const provider = service.provider;
    assert.ok(provider);
    const moves = async (what: string, change: () => unknown) => {
      const before = provider.version;
      await change();
      assert.ok(provider.version > before, `${what} moves the version`);
    };
    const files = [{ name: "x.yaml", contentType: "text/yaml", body: Buffer.from("x: 1\n") }];
    await moves("a config stored", () => service.configs.put("ab".repeat(32), files));
    await moves("a bundle stored", () =>
      service.bundles.put("cd".repeat(32), {
        configHash: "ab".repeat(32),
        telemetry: {},
        packages: [],
      }),
    );
    await moves("configs pruned", () => service.configs.prune(new Set()));
    await moves("bundles pruned", () => service.bundles.prune(new Set()));
    await moves("resolved secrets forgotten", () => provider.forgetResolved());
    const same = provider.version;
    assert.equal(provider.version, same, "reading it changes nothing");
  });
});
