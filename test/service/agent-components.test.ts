/**
 * The component-matching logic of the agent-aware checks: needed types from a config's
 * defined ids (`otlp/2` → `otlp`, every kind), an agent's inventory from AvailableComponents,
 * and what it lacks.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AvailableComponents } from "../../src/opamp/index.js";
import { componentInventory, missingComponents } from "../../src/service/agent-components.js";
import { requiredComponents } from "../../src/validate/index.js";

const file = (name: string, text: string) => ({ name, body: Buffer.from(text) });

const CONFIG = `receivers:
  otlp: {}
  otlp/2: {}
  hostmetrics/disk: {}
processors:
  batch/fast: {}
exporters:
  otlphttp/backend: {endpoint: "https://x"}
  debug: {}
connectors:
  forward/a: {}
  forward/b: {}
extensions:
  health_check: {}
service:
  extensions: [health_check]
  pipelines:
    traces: {receivers: [otlp, otlp/2], processors: [batch/fast], exporters: [forward/a]}
`;

/** An AvailableComponents as the Collector reports it: kind → sub_component_map of types. */
const report = (kinds: Record<string, string[]>): AvailableComponents => ({
  hash: new Uint8Array([1]),
  components: Object.fromEntries(
    Object.entries(kinds).map(([k, types]) => [
      k,
      { subComponentMap: Object.fromEntries(types.map((t) => [t, {}])) },
    ]),
  ),
});

describe("needed component types", () => {
  test("ids reduce to their type, once per kind, with where they are defined", () => {
    const r = requiredComponents([file("collector.yaml", CONFIG)], "groups/edge/");
    assert.deepEqual(
      r.map((c) => `${c.kind}/${c.type}`),
      [
        "receivers/otlp",
        "receivers/hostmetrics",
        "processors/batch",
        "exporters/otlphttp",
        "exporters/debug",
        "connectors/forward",
        "extensions/health_check",
      ],
    );
    const otlphttp = r.find((c) => c.type === "otlphttp");
    assert.deepEqual(
      { id: otlphttp?.id, file: otlphttp?.file, line: otlphttp?.line },
      { id: "otlphttp/backend", file: "groups/edge/collector.yaml", line: 8 },
    );
  });

  test("several files add up; unparsable, non-map and non-config files add nothing", () => {
    const r = requiredComponents([
      file("a.yaml", "receivers: {otlp: {}}\n"),
      file("b.yaml", "exporters: {kafka/x: {}}\nreceivers: {otlp/9: {}}\n"),
      file("broken.yaml", "receivers: [\n"),
      file("list.yaml", "- a\n"),
      file("notes.txt", "receivers: {jaeger: {}}\n"),
      file("bad-id.yaml", "receivers: {'/x': {}}\n"),
    ]);
    assert.deepEqual(
      r.map((c) => `${c.kind}/${c.type}`),
      ["receivers/otlp", "exporters/kafka"],
    );
  });

  test("a bridge resource (no Collector sections at the top) needs nothing", () => {
    const cr =
      "apiVersion: opentelemetry.io/v1beta1\nkind: OpenTelemetryCollector\nspec:\n  config:\n    receivers: {otlp: {}}\n";
    assert.deepEqual(requiredComponents([file("cr.yaml", cr)]), []);
  });
});

describe("an agent's inventory and what it lacks", () => {
  const needed = requiredComponents([file("collector.yaml", CONFIG)]);

  test("a build with every type lacks nothing", () => {
    const inv = componentInventory(
      report({
        receivers: ["otlp", "hostmetrics", "filelog"],
        processors: ["batch"],
        exporters: ["otlphttp", "debug"],
        connectors: ["forward"],
        extensions: ["health_check"],
      }),
    );
    assert.deepEqual(missingComponents(needed, inv), []);
  });

  test("each missing type is named once as kind/type, in config order", () => {
    const inv = componentInventory(
      report({
        receivers: ["otlp"],
        processors: ["batch"],
        exporters: ["debug", "otlp"],
        extensions: ["health_check"],
      }),
    );
    assert.deepEqual(missingComponents(needed, inv), [
      "receivers/hostmetrics",
      "exporters/otlphttp",
      "connectors/forward", // a kind absent from a report that lists others: none of it
    ]);
  });

  test("the type must be of the same kind", () => {
    const inv = componentInventory(report({ receivers: ["forward"], exporters: ["forward"] }));
    assert.ok(missingComponents(needed, inv).includes("connectors/forward"));
  });

  test("singular kind names are accepted", () => {
    const inv = componentInventory(report({ receiver: ["otlp"], exporter: ["kafka"] }));
    assert.deepEqual(
      missingComponents(
        requiredComponents([file("c.yaml", "receivers: {otlp/1: {}}\nexporters: {kafka: {}}\n")]),
        inv,
      ),
      [],
    );
  });

  test("a report that tells nothing about Collector components judges nothing", () => {
    assert.equal(componentInventory(null), undefined);
    assert.equal(componentInventory({ hash: new Uint8Array([1]) }), undefined, "hash only");
    assert.equal(componentInventory(report({ input: ["tail"], output: ["null"] })), undefined);
    assert.deepEqual(missingComponents(needed, undefined), []);
  });
});
