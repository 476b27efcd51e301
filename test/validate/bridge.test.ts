/**
 * Groups served to the Operator OpAMP Bridge (`config.schema: otelcol-bridge`): one entry per
 * OpenTelemetryCollector keyed <namespace>/<name>, and the errors a user sees for resources
 * the bridge would refuse.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { configHash } from "../../src/config-hash.js";
import { collectorResource } from "../helpers/bridge-resource.js";
import { assertFinding, codes, GROUP_YAML, only, validateFiles } from "./helpers.js";

const GROUP = `${GROUP_YAML}config:\n  schema: otelcol-bridge\n`;

describe("otelcol-bridge groups", () => {
  test("each resource is served under <namespace>/<name>, its file's bytes as the body", async () => {
    const gateway = collectorResource("gateway", "observability");
    const agent = collectorResource(
      "agent",
      "monitoring",
      "opentelemetry.io/opamp-managed: my-bridge",
    );
    const report = await validateFiles({
      "groups/k8s/group.yaml": GROUP,
      "groups/k8s/gateway.yaml": gateway,
      "groups/k8s/agent.yaml": agent,
    });
    assert.deepEqual(codes(report), []);
    const spec = report.fleet?.groups.get("k8s");
    assert.ok(spec);
    assert.deepEqual(
      spec.files.map((f) => [f.name, f.contentType, Buffer.from(f.body).toString()]),
      [
        ["monitoring/agent", "text/yaml", agent],
        ["observability/gateway", "text/yaml", gateway],
      ],
    );
    // The hash is over the served (key, content type, body) entries, whatever the file names.
    assert.equal(spec.configHash, configHash(spec.files));
    const renamed = await validateFiles({
      "groups/k8s/group.yaml": GROUP,
      "groups/k8s/a.yaml": gateway,
      "groups/k8s/b.yaml": agent,
    });
    assert.equal(renamed.fleet?.groups.get("k8s")?.configHash, spec.configHash);
  });

  test("two files defining the same resource: an error naming both", async () => {
    const report = await validateFiles({
      "groups/k8s/group.yaml": GROUP,
      "groups/k8s/gateway.yaml": collectorResource("gateway", "observability"),
      "groups/k8s/gateway-copy.yaml": collectorResource("gateway", "observability"),
    });
    assertFinding(only(report, "BRIDGE_DUPLICATE_RESOURCE"), {
      file: "groups/k8s/gateway.yaml",
      line: 4,
      column: 9,
      code: "BRIDGE_DUPLICATE_RESOURCE",
      message:
        "groups/k8s/gateway.yaml and groups/k8s/gateway-copy.yaml both define the OpenTelemetryCollector observability/gateway: the bridge is served one entry per resource, keyed <namespace>/<name>, so each must be unique in the group",
    });
    assert.equal(report.fleet, undefined, "not served");
  });

  test("a resource the bridge would not manage: its label is missing, false, or reporting-only", async () => {
    const missing = await validateFiles({
      "groups/k8s/group.yaml": GROUP,
      "groups/k8s/gateway.yaml": collectorResource("gateway", "observability", ""),
    });
    assertFinding(only(missing, "BRIDGE_NOT_MANAGED"), {
      file: "groups/k8s/gateway.yaml",
      line: 3,
      column: 1,
      code: "BRIDGE_NOT_MANAGED",
      message:
        'observability/gateway lacks the label opentelemetry.io/opamp-managed: "true" (or the bridge\'s name), without which the bridge refuses to create or update it',
    });
    const off = await validateFiles({
      "groups/k8s/group.yaml": GROUP,
      "groups/k8s/gateway.yaml": collectorResource(
        "gateway",
        "observability",
        'opentelemetry.io/opamp-managed: "false"',
      ),
    });
    assert.deepEqual(codes(off), ["BRIDGE_NOT_MANAGED"]);
    const reporting = await validateFiles({
      "groups/k8s/group.yaml": GROUP,
      "groups/k8s/gateway.yaml": collectorResource(
        "gateway",
        "observability",
        'opentelemetry.io/opamp-managed: "true"\n    opentelemetry.io/opamp-reporting: "TRUE"',
      ),
    });
    assertFinding(only(reporting, "BRIDGE_REPORTING_ONLY"), {
      file: "groups/k8s/gateway.yaml",
      line: 8,
      column: 39,
      code: "BRIDGE_REPORTING_ONLY",
      message:
        'observability/gateway is labelled opentelemetry.io/opamp-reporting: "true", so the bridge only reports it and refuses to change it: remove that label',
    });
  });

  test("no namespace, a v1alpha1 resource, or several resources in one file are refused", async () => {
    const noNamespace = await validateFiles({
      "groups/k8s/group.yaml": GROUP,
      "groups/k8s/gateway.yaml": collectorResource("gateway", "observability").replace(
        "  namespace: observability\n",
        "",
      ),
    });
    assert.match(only(noNamespace, "SCHEMA_MISSING_KEY").message, /namespace/);
    const alpha = await validateFiles({
      "groups/k8s/group.yaml": GROUP,
      "groups/k8s/gateway.yaml": collectorResource(
        "gateway",
        "observability",
        undefined,
        "opentelemetry.io/v1alpha1",
      ),
    });
    assert.match(only(alpha, "SCHEMA_INVALID_VALUE").message, /reads only v1beta1/);
    const two = await validateFiles({
      "groups/k8s/group.yaml": GROUP,
      "groups/k8s/both.yaml": `${collectorResource("a", "ns")}---\n${collectorResource("b", "ns")}`,
    });
    assert.deepEqual(codes(two), ["YAML_MULTIPLE_DOCUMENTS"]);
  });
});
