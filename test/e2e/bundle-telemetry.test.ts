/**
 * Own telemetry through the whole loop with an agent that reports ConnectionSettingsStatus:
 * it is offered own_metrics with the header resolved on the service; a commit that changes only
 * the endpoint starts a rollout, and the agent's FAILED status for the new settings is a rollout
 * failure (rolled back with the agent's error), although it runs the config files.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { AgentCapabilities } from "../../src/opamp/capabilities.js";
import type { Service } from "../../src/service/service.js";
import { type Received, TestAgent } from "../helpers/agent.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { waitFor, waitForValue } from "../helpers/wait.js";
import { collectorYaml } from "../sync/helpers/fleet.js";
import { TestRepo } from "../sync/helpers/git-repo.js";

const TOKEN_ENV = "OPAMP_GITOPS_SECRET_TEST_CS_TOKEN";

describe("own telemetry: ConnectionSettingsStatus FAILED fails the rollout", () => {
  let repo: TestRepo;
  let svc: TestService;
  let service: Service | undefined;
  let url = "";

  before(async () => {
    process.env[TOKEN_ENV] = "cs-secret";
    repo = new TestRepo();
    repo.writeAll({
      "groups/edge/group.yaml": `selector:
  match: {host.role: cs}
rollout:
  applyTimeout: 60s
  onFailure: rollback
telemetry:
  metrics:
    endpoint: https://metrics.example.com/v1/metrics
    headers: {X-Token: "\${env:${TOKEN_ENV}}"}
`,
      "groups/edge/collector.yaml": collectorYaml("v1"),
    });
    repo.commit("edge with own metrics");
    svc = await startTestService({ repo: repo.dir });
    service = svc.service;
    url = svc.url;
  });

  after(async () => {
    await svc?.close();
    delete process.env[TOKEN_ENV];
  });

  test("offered own_metrics; FAILED for them rolls the rollout back with the agent's error", async () => {
    const agent = new TestAgent({ transport: "http", url });
    const capabilities =
      AgentCapabilities.ReportsStatus |
      AgentCapabilities.AcceptsRemoteConfig |
      AgentCapabilities.ReportsRemoteConfig |
      AgentCapabilities.ReportsOwnMetrics |
      AgentCapabilities.ReportsConnectionSettingsStatus;
    const agentDescription = {
      identifyingAttributes: [{ key: "service.name", value: { stringValue: "cs" } }],
      nonIdentifyingAttributes: [{ key: "host.role", value: { stringValue: "cs" } }],
    };
    let config: Received["remoteConfig"];
    let settings: Received["connectionSettings"];
    // Each poll is a message: config and settings may come in different replies.
    await waitFor(
      "a remote config and connection settings",
      async () => {
        const reply = await agent.send({ capabilities, agentDescription });
        config ??= reply.remoteConfig;
        settings ??= reply.connectionSettings;
        return Boolean(config && settings);
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    const cs = settings as {
      hash: Uint8Array;
      ownMetrics?: { destinationEndpoint: string; headers?: { headers: unknown[] } };
      opamp?: unknown;
    };
    assert.equal(cs.ownMetrics?.destinationEndpoint, "https://metrics.example.com/v1/metrics");
    assert.deepEqual(
      ((cs.ownMetrics?.headers?.headers ?? []) as Array<{ key: string; value: string }>).map(
        (h) => ({
          key: h.key,
          value: h.value,
        }),
      ),
      [{ key: "X-Token", value: "cs-secret" }],
    );
    assert.equal(cs.opamp ?? null, null, "the agent does not accept OpAMP connection settings");
    const rc = config as { configHash: Uint8Array };
    const report = (hash: Uint8Array, status: number, errorMessage = "") =>
      agent.send({
        capabilities,
        remoteConfigStatus: { lastRemoteConfigHash: rc.configHash, status: 1 },
        connectionSettingsStatus: { lastConnectionSettingsHash: hash, status, errorMessage },
      });
    await report(cs.hash, 1);
    // A rollout gates agents that are there: commit a new endpoint now.
    repo.write(
      "groups/edge/group.yaml",
      readFileSync(`${repo.dir}/groups/edge/group.yaml`, "utf8").replace(
        "metrics.example.com",
        "metrics-2.example.com",
      ),
    );
    repo.commit("edge: new own-metrics endpoint");
    const next = await waitFor(
      "the new connection settings",
      async () =>
        ((await agent.send({ capabilities })).connectionSettings ?? undefined) as
          | typeof cs
          | undefined,
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    assert.equal(next?.ownMetrics?.destinationEndpoint, "https://metrics-2.example.com/v1/metrics");
    await report(next?.hash ?? new Uint8Array(), 3, "cannot reach metrics.example.com");
    const rollout = await waitFor(
      "the rollout rolled back",
      () => {
        const r = service?.rollouts.status("edge")?.rollout;
        return r?.status === "rolled-back" && r;
      },
      { detail: () => JSON.stringify(service?.rollouts.status("edge")?.rollout) },
    );
    assert.match(
      rollout?.failures[0]?.error ?? "",
      /connection settings: cannot reach metrics\.example\.com/,
    );
  });

  test("a reference to a variable without the secret prefix stalls the commit; the last good one is served", async () => {
    const served = service?.sync?.status.serving;
    assert.ok(served);
    repo.write(
      "groups/edge/group.yaml",
      readFileSync(`${repo.dir}/groups/edge/group.yaml`, "utf8").replace(
        `\${env:${TOKEN_ENV}}`,
        `\${env:HOME}`,
      ),
    );
    const commit = repo.commit("edge: send the service's HOME to my endpoint");
    const stalled = await waitForValue(
      "the commit stalls",
      async () => service?.sync?.status.stalled,
      (s) => s?.commit === commit,
    );
    const f = stalled?.findings.find((x) => x.code === "SECRET_REF_REFUSED");
    assert.ok(f, JSON.stringify(stalled?.findings));
    assert.equal(f.file, "groups/edge/group.yaml");
    assert.equal(f.line, 9);
    assert.equal(f.severity, "error");
    assert.match(f.message, /OPAMP_GITOPS_SECRET_/);
    assert.equal(service?.sync?.status.serving, served, "the last good commit stays served");
  });
});
