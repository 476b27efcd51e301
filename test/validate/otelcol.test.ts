/**
 * Collector semantic checks (DESIGN §2), each bad input with the finding a user sees.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ValidationReport } from "../../src/validate/index.js";
import {
  assertFinding,
  COLLECTOR_YAML,
  codes,
  GROUP_YAML,
  only,
  validateFiles,
} from "./helpers.js";

const FILE = "groups/edge/collector.yaml";

function collector(yaml: string): Promise<ValidationReport> {
  return validateFiles({
    "groups/edge/group.yaml": GROUP_YAML,
    "groups/edge/collector.yaml": yaml,
  });
}

describe("Collector configuration checks", () => {
  test("the sample configuration is clean", async () => {
    const report = await collector(COLLECTOR_YAML);
    assert.deepEqual(report.findings, []);
  });

  test("an exporter a pipeline names but nobody defines is an error, with the likely intended one", async () => {
    const report = await collector(
      COLLECTOR_YAML.replace("exporters: [otlp/tempo]", "exporters: [otlp/tmepo]"),
    );
    assertFinding(
      report.findings.find((f) => f.severity === "error"),
      {
        file: FILE,
        line: 18,
        column: 19,
        severity: "error",
        code: "OTELCOL_UNDEFINED_COMPONENT",
        message:
          'pipeline traces uses exporter "otlp/tmepo", which is not defined; did you mean "otlp/tempo"?',
      },
    );
    assert.equal(report.fleet, undefined);
  });

  test("a pipeline naming receivers when no receivers are defined at all is an error", async () => {
    const yaml = [
      "exporters:",
      "  debug: {}",
      "service:",
      "  pipelines:",
      "    traces:",
      "      receivers: [otlp]",
      "      exporters: [debug]",
      "",
    ].join("\n");
    const report = await collector(yaml);
    const error = report.findings.find((f) => f.code === "OTELCOL_UNDEFINED_COMPONENT");
    assert.equal(error?.severity, "error");
    assert.equal(error?.line, 6);
    assert.match(
      error?.message ?? "",
      /uses receiver "otlp", which is not defined: the group's config defines no receivers at all/,
    );
    assert.equal(report.fleet, undefined);
  });

  test("the old spelling of a renamed type resolves to the defined id, with a warning", async () => {
    const yaml = [
      "receivers:",
      "  otlp: {}",
      "connectors:",
      "  span_metrics: {}",
      "exporters:",
      "  debug: {}",
      "service:",
      "  pipelines:",
      "    traces:",
      "      receivers: [otlp]",
      "      exporters: [spanmetrics]",
      "    metrics:",
      "      receivers: [span_metrics]",
      "      exporters: [debug]",
      "",
    ].join("\n");
    const report = await collector(yaml);
    assert.equal(report.errors, 0, JSON.stringify(report.findings));
    const warning = report.findings.find((f) => f.code === "OTELCOL_TYPE_ALIAS_REFERENCE");
    assert.equal(warning?.severity, "warning");
    assert.equal(warning?.line, 11);
    assert.match(warning?.message ?? "", /uses exporter "spanmetrics" for "span_metrics"/);
  });

  test("an undefined name is an error, whatever its type; config.partial makes it a warning", async () => {
    const yaml = COLLECTOR_YAML.replace(
      "processors: [batch]",
      "processors: [batch, invalid]",
    ).replace("exporters: [otlp/tempo]", "exporters: [otlp/tempo, debug]");
    const report = await collector(yaml);
    assertFinding(report.findings[0], {
      file: FILE,
      line: 17,
      column: 27,
      severity: "error",
      code: "OTELCOL_UNDEFINED_COMPONENT",
      message:
        'pipeline traces uses processor "invalid", which is not defined, and "invalid" is not a known processor type either',
    });
    // A known type, not defined: the Collector refuses it all the same (issue 14).
    assertFinding(report.findings[1], {
      file: FILE,
      line: 18,
      column: 31,
      severity: "error",
      code: "OTELCOL_UNDEFINED_COMPONENT",
      message:
        'pipeline traces uses exporter "debug", which is not defined: the Collector refuses this configuration; define it under exporters, or set config.partial: true in group.yaml if the agent\'s own configuration defines it',
    });
    assert.equal(report.fleet, undefined);

    const partial = await validateFiles({
      "groups/edge/group.yaml": `${GROUP_YAML}config:\n  partial: true\n`,
      "groups/edge/collector.yaml": yaml,
    });
    assert.equal(partial.errors, 0, JSON.stringify(partial.findings));
    assert.ok(partial.fleet?.groups.get("edge"));
    assertFinding(partial.findings[1], {
      file: FILE,
      line: 18,
      column: 31,
      severity: "warning",
      code: "OTELCOL_UNDEFINED_COMPONENT",
      message:
        'pipeline traces uses exporter "debug", which is not defined by the group\'s config files (the group is partial: unless the agent\'s own configuration defines "debug", the Collector refuses this configuration)',
    });
  });

  test("config.partial must be a boolean", async () => {
    const report = await validateFiles({
      "groups/edge/group.yaml": `${GROUP_YAML}config:\n  partial: "yes"\n`,
      "groups/edge/collector.yaml": COLLECTOR_YAML,
    });
    assert.equal(report.errors, 1, JSON.stringify(report.findings));
    assert.equal(report.findings[0]?.file, "groups/edge/group.yaml");
    assert.match(report.findings[0]?.message ?? "", /config\.partial/);
  });

  test("service.extensions must name defined extensions", async () => {
    const report = await collector(
      `${COLLECTOR_YAML}  extensions: [helth_check]\nextensions:\n  health_check:\n`,
    );
    assertFinding(
      report.findings.find((f) => f.code === "OTELCOL_UNDEFINED_COMPONENT"),
      {
        file: FILE,
        line: 19,
        column: 16,
        severity: "error",
        code: "OTELCOL_UNDEFINED_COMPONENT",
        message:
          'service.extensions uses extension "helth_check", which is not defined; did you mean "health_check"?',
      },
    );
  });

  test("a bad pipeline id is an error with the intended signal", async () => {
    const report = await collector(COLLECTOR_YAML.replace("    traces:\n", "    trace/edge:\n"));
    assertFinding(only(report, "OTELCOL_BAD_PIPELINE_ID"), {
      file: FILE,
      line: 15,
      column: 5,
      severity: "error",
      code: "OTELCOL_BAD_PIPELINE_ID",
      message:
        'pipeline id "trace/edge" is not valid: the signal "trace" must be traces, metrics, logs or profiles (did you mean "traces/edge"?)',
    });
  });

  test("a bad component id is an error", async () => {
    const report = await collector(
      COLLECTOR_YAML.replace("  batch:\n", "  batch/:\n").replace("[batch]", "[batch/]"),
    );
    assertFinding(only(report, "OTELCOL_BAD_COMPONENT_ID"), {
      file: FILE,
      line: 7,
      column: 3,
      severity: "error",
      code: "OTELCOL_BAD_COMPONENT_ID",
      message: 'processor id "batch/" is not valid: the name after the / is empty',
    });
  });

  test("a connector used on one side only is an error", async () => {
    const report = await collector(
      `${COLLECTOR_YAML.replace("exporters: [otlp/tempo]", "exporters: [otlp/tempo, spanmetrics]")}connectors:\n  spanmetrics:\n`,
    );
    assertFinding(only(report, "OTELCOL_CONNECTOR_ONE_SIDED"), {
      file: FILE,
      line: 18,
      column: 31,
      severity: "error",
      code: "OTELCOL_CONNECTOR_ONE_SIDED",
      message:
        'connector "spanmetrics" is used as exporter in traces pipeline traces but not used in any supported receiver pipeline (spanmetrics connects traces→metrics)',
    });
  });

  test("a connector joining pipelines of signals it does not connect is an error", async () => {
    const report =
      await collector(`${COLLECTOR_YAML.replace("exporters: [otlp/tempo]", "exporters: [otlp/tempo, forward]")}    logs:
      receivers: [forward]
      exporters: [otlp/tempo]
connectors:
  forward:
`);
    assert.deepEqual(
      report.findings
        .filter((f) => f.code === "OTELCOL_CONNECTOR_ONE_SIDED")
        .map((f) => f.data?.side),
      ["exporter", "receiver"],
    );
  });

  test("connected pipelines are fine", async () => {
    const report =
      await collector(`${COLLECTOR_YAML.replace("exporters: [otlp/tempo]", "exporters: [otlp/tempo, spanmetrics]")}    metrics:
      receivers: [spanmetrics]
      exporters: [otlp/tempo]
connectors:
  spanmetrics:
`);
    assert.deepEqual(report.findings, []);
  });

  test("a cycle of connectors is an error", async () => {
    const report = await collector(
      `${COLLECTOR_YAML.replace("receivers: [otlp]", "receivers: [otlp, forward]").replace("exporters: [otlp/tempo]", "exporters: [otlp/tempo, forward]")}connectors:\n  forward:\n`,
    );
    assertFinding(only(report, "OTELCOL_PIPELINE_CYCLE"), {
      file: FILE,
      line: 18,
      column: 31,
      severity: "error",
      code: "OTELCOL_PIPELINE_CYCLE",
      message: 'cycle detected: pipeline traces → connector "forward" → pipeline traces',
    });
  });

  test("an unused component is a warning", async () => {
    const report = await collector(
      COLLECTOR_YAML.replace("exporters:\n", "exporters:\n  debug:\n    verbosity: detailed\n"),
    );
    assertFinding(only(report, "OTELCOL_UNUSED_COMPONENT"), {
      file: FILE,
      line: 9,
      column: 3,
      severity: "warning",
      code: "OTELCOL_UNUSED_COMPONENT",
      message: 'exporter "debug" is defined but not used in any pipeline',
    });
    assert.equal(report.errors, 0);
    assert.ok(report.fleet, "warnings do not withhold the fleet");
  });

  test(`a plaintext secret is a warning suggesting \${env:VAR}; placeholders are fine`, async () => {
    const report = await collector(
      COLLECTOR_YAML.replace(
        `authorization: \${env:TEMPO_TOKEN}`,
        "authorization: Bearer 0123456789abcdef",
      ).replace(
        "endpoint: tempo:4317",
        `endpoint: \${env:TEMPO_HOST:-tempo}:4317\n    compression: $\${literal}`,
      ),
    );
    assertFinding(only(report, "OTELCOL_PLAINTEXT_SECRET"), {
      file: FILE,
      line: 13,
      column: 22,
      severity: "warning",
      code: "OTELCOL_PLAINTEXT_SECRET",
      message: `exporters.otlp/tempo.headers.authorization holds a secret in plain text; write \${env:OTLP_TEMPO_AUTHORIZATION} instead and set OTLP_TEMPO_AUTHORIZATION in the agent's environment`,
    });
    assert.equal(report.findings.length, 1);
  });

  test("a malformed placeholder is a warning", async () => {
    const report = await collector(
      COLLECTOR_YAML.replace(`\${env:TEMPO_TOKEN}`, `\${env:TEMPO TOKEN}`),
    );
    assertFinding(only(report, "OTELCOL_BAD_PLACEHOLDER"), {
      file: FILE,
      line: 12,
      column: 22,
      severity: "warning",
      code: "OTELCOL_BAD_PLACEHOLDER",
      message: '"TEMPO TOKEN" is not a valid environment variable name',
    });
  });

  test("an unknown component type is a warning with a did-you-mean, never an error", async () => {
    const report = await collector(
      COLLECTOR_YAML.replace("receivers:\n  otlp:", "receivers:\n  jaegar:\n  otlp:")
        .replace("[otlp]", "[otlp, jaegar]")
        .replace("  batch:\n", "  batch:\n  acme_enricher:\n")
        .replace("[batch]", "[batch, acme_enricher]"),
    );
    assert.deepEqual(codes(report), [
      "OTELCOL_UNKNOWN_COMPONENT_TYPE",
      "OTELCOL_UNKNOWN_COMPONENT_TYPE",
    ]);
    assertFinding(report.findings[0], {
      file: FILE,
      line: 2,
      column: 3,
      severity: "warning",
      code: "OTELCOL_UNKNOWN_COMPONENT_TYPE",
      message:
        'receiver type "jaegar" is not an upstream Collector component; did you mean "jaeger"?',
    });
    assert.match(
      report.findings[1]?.message ?? "",
      /processor type "acme_enricher" .*fine if your distribution provides it/,
    );
    assert.ok(report.fleet);
  });

  test("classic and snake_case type names are both known", async () => {
    const report = await collector(`receivers:
  host_metrics: {scrapers: {cpu: }}
  hostmetrics/2: {scrapers: {cpu: }}
  file_log: {include: [/var/log/*.log]}
processors:
  resource_detection: {detectors: [system]}
  k8s_attributes:
exporters:
  otlp_grpc: {endpoint: "x:4317"}
  otlp_http: {endpoint: "http://x:4318"}
  otlphttp: {endpoint: "http://x:4318"}
service:
  pipelines:
    metrics:
      receivers: [host_metrics, hostmetrics/2]
      processors: [resource_detection, k8s_attributes]
      exporters: [otlp_grpc, otlp_http, otlphttp]
    logs:
      receivers: [file_log]
      exporters: [otlp_grpc]
`);
    assert.deepEqual(report.findings, []);
  });

  test("a misspelled setting key of a common component is a warning naming the key", async () => {
    const report = await collector(
      COLLECTOR_YAML.replace(
        "    endpoint: tempo:4317\n",
        "    endpoint: tempo:4317\n    compresion: gzip\n",
      ),
    );
    assertFinding(only(report, "OTELCOL_UNKNOWN_SETTING"), {
      file: FILE,
      line: 11,
      column: 5,
      severity: "warning",
      code: "OTELCOL_UNKNOWN_SETTING",
      message:
        'exporter "otlp/tempo" has no setting "compresion" at exporters.otlp/tempo.compresion; did you mean "compression"?',
    });
  });

  test("a misspelled top-level section is an error; other top-level keys are warnings", async () => {
    const report = await collector(
      `${COLLECTOR_YAML}exporter:\n  debug:\nconfig_sources:\n  env:\n`,
    );
    assert.deepEqual(
      report.findings.map((f) => [f.line, f.column, f.severity, f.code]),
      [
        [19, 1, "error", "OTELCOL_MISSPELLED_SECTION"],
        [21, 1, "warning", "OTELCOL_UNKNOWN_TOP_LEVEL_KEY"],
      ],
    );
    assert.match(
      report.findings[0]?.message ?? "",
      /unknown top-level key "exporter"; did you mean "exporters"\?/,
    );
  });

  test("a pipeline without receivers is a warning (a configuration layer may supply them)", async () => {
    const report = await collector(COLLECTOR_YAML.replace("      receivers: [otlp]\n", ""));
    assert.deepEqual(codes(report), ["OTELCOL_UNUSED_COMPONENT", "OTELCOL_PIPELINE_NO_RECEIVERS"]);
    assert.equal(report.errors, 0);
  });

  test("a structure error is reported by the schema", async () => {
    const report = await collector(
      COLLECTOR_YAML.replace("      receivers: [otlp]\n", "      receivers: otlp\n"),
    );
    assertFinding(only(report, "SCHEMA_INVALID_VALUE"), {
      file: FILE,
      line: 16,
      column: 18,
      severity: "error",
      code: "SCHEMA_INVALID_VALUE",
      message: 'service.pipelines.traces.receivers is "otlp"; expected a list of component ids',
    });
  });

  test("a name used twice in a list, and an id both connector and exporter, are errors", async () => {
    const report = await collector(
      `${COLLECTOR_YAML.replace("processors: [batch]", "processors: [batch, batch]")}connectors:\n  otlp/tempo:\n`,
    );
    assert.deepEqual(
      codes(report).filter(
        (c) => c !== "OTELCOL_UNUSED_COMPONENT" && c !== "OTELCOL_UNKNOWN_COMPONENT_TYPE",
      ),
      ["OTELCOL_DUPLICATE_REFERENCE", "OTELCOL_AMBIGUOUS_ID"],
    );
  });

  test("several config files are merged in order before the checks", async () => {
    const report = await validateFiles({
      "groups/edge/group.yaml": GROUP_YAML,
      "groups/edge/1-components.yaml": COLLECTOR_YAML.slice(0, COLLECTOR_YAML.indexOf("service:")),
      "groups/edge/2-service.yaml": `${COLLECTOR_YAML.slice(COLLECTOR_YAML.indexOf("service:"))}    logs:\n      receivers: [otlp]\n      exporters: [otlp/loki]\n`,
    });
    assertFinding(only(report, "OTELCOL_UNDEFINED_COMPONENT"), {
      file: "groups/edge/2-service.yaml",
      line: 9,
      column: 19,
      severity: "error",
      code: "OTELCOL_UNDEFINED_COMPONENT",
      message:
        'pipeline logs uses exporter "otlp/loki", which is not defined; did you mean "otlp/tempo"?',
    });
  });
});
