/**
 * `opamp-gitops plan` offline counts incompatible agents: the status writer records each
 * agent's component types in its status file (schemas/status-agent.schema.json `components`),
 * and plan matches them against the head's configs with serve's own matching.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import { componentsStatus, MAX_COMPONENT_TYPES } from "../../src/status/agent-components.js";
import { agentStatus } from "../../src/status/agent-status.js";
import { renderStatusFile } from "../../src/status/render.js";
import { parseAgentStatus } from "../../src/sync/known-agents.js";
import { PlanSource } from "../../src/sync/plan-source.js";
import { validateStatusFile } from "../../src/validate/status-schemas.js";
import { writeStatusBranch } from "../helpers/status-branch.js";
import { fakeAgent, uidOf } from "../status/helpers.js";
import { collectorYaml } from "../sync/helpers/fleet.js";
import { baseRepo, fleetAgents, group, plan } from "./helpers.js";

/** What the base config needs: every edge agent built with these can run it. */
const BUILD = {
  receivers: ["otlp"],
  processors: ["batch", "memory_limiter", "resource"],
  exporters: ["debug", "otlphttp"],
};
const WITH_KAFKA = { ...BUILD, exporters: [...BUILD.exporters, "kafka"] };

/** The edge config with a kafka exporter added (in a pipeline, so it validates). */
const edgeWithKafka = () =>
  collectorYaml("edge-v2")
    .replace(
      "exporters:\n  otlphttp:",
      "exporters:\n  kafka:\n    brokers: [kafka:9092]\n  otlphttp:",
    )
    .replace("exporters: [otlphttp, debug]", "exporters: [otlphttp, debug, kafka]");

describe("an agent status file's components", () => {
  test("Collector kinds only, types sorted and valid, bounded, schema-valid", () => {
    const many = Object.fromEntries(
      Array.from({ length: MAX_COMPONENT_TYPES + 5 }, (_, i) => [`t${i}`, {}]),
    );
    const agent = fakeAgent(uidOf(1));
    agent.availableComponents = {
      hash: Buffer.from([0xab, 0xcd]),
      components: {
        exporter: { subComponentMap: { otlphttp: {}, debug: {}, "bad type!": {} } },
        receivers: { subComponentMap: many },
        input: { subComponentMap: { tail: {} } },
      },
    };
    const { file } = agentStatus(agent, { group: "edge", desiredHash: null, desiredCommit: null });
    assert.deepEqual(validateStatusFile("agent", file), []);
    assert.equal(file.components?.hash, "abcd");
    assert.deepEqual(Object.keys(file.components?.kinds ?? {}), ["receivers", "exporters"]);
    // The bound is on all kinds together: the receivers filled it, the exporters were cut.
    assert.equal(file.components?.kinds.receivers?.length, MAX_COMPONENT_TYPES);
    assert.deepEqual(file.components?.kinds.exporters, []);
    assert.equal(file.components?.truncated, 7);
    // A cut list cannot tell what the build lacks: plan reads it as no components known.
    const path = `status/agents/edge/${uidOf(1)}.yaml`;
    const read = parseAgentStatus(Buffer.from(renderStatusFile("agent", file, path)), path);
    assert.equal(read?.instanceUid, uidOf(1));
    assert.equal(read?.components, undefined);
    agent.availableComponents = {
      components: { exporters: { subComponentMap: { otlphttp: {}, debug: {}, "bad type!": {} } } },
    };
    const small = agentStatus(agent, { group: "edge", desiredHash: null, desiredCommit: null });
    assert.deepEqual(validateStatusFile("agent", small.file), []);
    assert.deepEqual(small.file.components, {
      hash: "",
      kinds: { exporters: ["debug", "otlphttp"] },
    });
    const again = parseAgentStatus(Buffer.from(renderStatusFile("agent", small.file, path)), path);
    assert.deepEqual(again?.components, { exporters: ["debug", "otlphttp"] });
    // Hash only, or no Collector kind: nothing recorded, the file stays as before.
    assert.equal(componentsStatus({ hash: Buffer.from([1]) }), undefined);
    assert.equal(componentsStatus({ components: { input: { subComponentMap: {} } } }), undefined);
  });
});

describe("plan offline: incompatible agents from the status branch", () => {
  test("the writer records component types, and an agent lacking one is listed", async () => {
    const r = baseRepo();
    // Edge agents 1–4 lack kafka, 5–8 have it, the others never reported components.
    const agents = fleetAgents().map((a, i) =>
      i < 4 ? { ...a, components: BUILD } : i < 8 ? { ...a, components: WITH_KAFKA } : a,
    );
    writeStatusBranch(r.dir, agents);
    const file = execFileSync("git", ["show", `opamp-status:status/agents/edge/${uidOf(1)}.yaml`], {
      cwd: r.dir,
      encoding: "utf8",
    });
    assert.match(
      file,
      /components:\n {2}hash: [0-9a-f]+\n {2}kinds:\n {4}receivers:\n {6}- otlp\n/,
    );
    assert.ok(file.indexOf("components:") < file.indexOf("\ncapabilities:"), "before capabilities");
    r.write("groups/edge/collector.yaml", edgeWithKafka());
    r.commit("edge exports to kafka");

    const { code, plan: p, err } = await plan({ repo: r.dir });
    assert.equal(code, 0, err);
    const edge = group(p, "edge");
    assert.equal(edge.incompatible.known, 8);
    assert.equal(edge.incompatible.count, 4);
    assert.deepEqual(edge.incompatible.missing, { "exporters/kafka": 4 });
    assert.deepEqual(
      edge.incompatible.examples.map((e) => e.uid),
      [1, 2, 3, 4].map(uidOf),
    );
    assert.equal(edge.incompatible.all, false);
  });

  test("a change every agent of the group lacks a component for: exit 1", async () => {
    const r = baseRepo();
    writeStatusBranch(
      r.dir,
      fleetAgents().map((a) => (a.group === "edge" ? { ...a, components: BUILD } : a)),
    );
    r.write("groups/edge/collector.yaml", edgeWithKafka());
    r.commit("edge exports to kafka");

    const { code, plan: p } = await plan({ repo: r.dir });
    assert.equal(code, 1);
    assert.equal(p?.valid, false);
    const edge = group(p, "edge");
    assert.equal(edge.incompatible.count, 20);
    assert.equal(edge.incompatible.all, true);
  });

  test("agents that move (a selector change) are matched in their new group", async () => {
    const r = baseRepo();
    writeStatusBranch(
      r.dir,
      fleetAgents().map((a) => (a.group === "edge" ? { ...a, components: BUILD } : a)),
    );
    // canary (3 edge agents) takes priority over edge and needs kafka.
    r.write("groups/canary/group.yaml", 'selector:\n  match: {canary: "true"}\npriority: 5\n');
    r.write("groups/canary/collector.yaml", edgeWithKafka());
    r.commit("canary first, with kafka");

    const { plan: p } = await plan({ repo: r.dir });
    const canary = group(p, "canary");
    assert.equal(canary.incompatible.count, 3);
    assert.deepEqual(canary.incompatible.missing, { "exporters/kafka": 3 });
    assert.equal(group(p, "edge").incompatible.count, 0);
  });

  test("the agent files read for components are only the listed groups', and bounded", async () => {
    const r = baseRepo();
    writeStatusBranch(r.dir, fleetAgents());
    const source = await PlanSource.open(r.dir);
    const edge = await source.knownAgents("opamp-status", new Set(["edge"]));
    assert.equal(edge?.agents.length, 20);
    assert.ok(edge?.agents.every((a) => a.group === "edge"));
    assert.equal(edge?.truncated, false);
    const some = await source.knownAgents("opamp-status", new Set(["edge"]), 5);
    assert.equal(some?.agents.length, 5);
    assert.equal(some?.truncated, true);
    const all = await source.knownAgents("opamp-status");
    assert.equal(all?.agents.length, 27);
  });
});
