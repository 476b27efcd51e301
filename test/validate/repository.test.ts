/**
 * Repository format (DESIGN §1): group folders, group.yaml, fleet.yaml defaults, config
 * files, schemas named by path, and what the working-tree reader refuses. Each bad input
 * shows the finding a user sees.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { configHash } from "../../src/config-hash.js";
import {
  assertFinding,
  COLLECTOR_YAML,
  codes,
  fixtureRepo,
  GROUP_YAML,
  only,
  validateDir,
  validateFiles,
} from "./helpers.js";

describe("repository validation", () => {
  test("a valid group yields its spec, with built-in defaults", async () => {
    const report = await validateFiles({
      "groups/edge/group.yaml": GROUP_YAML,
      "groups/edge/collector.yaml": COLLECTOR_YAML,
      "groups/edge/.gitkeep": "",
    });
    assert.deepEqual(report.findings, []);
    assert.equal(report.errors, 0);
    const edge = report.fleet?.groups.get("edge");
    assert.ok(edge);
    assert.deepEqual(edge.selector, {
      match: { "service.name": "otelcol-contrib" },
      expressions: [],
    });
    assert.equal(edge.priority, 0);
    assert.equal(edge.schema, "otelcol");
    assert.deepEqual(edge.rollout, {
      stages: [{ percent: 100, pauseMs: 0 }],
      applyTimeoutMs: 300_000,
      maxFailures: { count: 0 },
      onFailure: "rollback",
      paused: false,
    });
    assert.equal(edge.heartbeatIntervalSeconds, 30);
    assert.deepEqual(edge.telemetry, {});
    assert.deepEqual(
      edge.files.map((f) => [f.name, f.contentType]),
      [["collector.yaml", "text/yaml"]],
    );
    assert.equal(edge.configHash, configHash(edge.files));
  });

  test("fleet.yaml supplies defaults; group.yaml overrides them key by key", async () => {
    const report = await validateFiles({
      "fleet.yaml": `rollout:
  stages: [{percent: 10, pause: 2m}, {percent: 100}]
  applyTimeout: 10m
  maxFailures: "5%"
heartbeatInterval: 1m
telemetry:
  metrics: {endpoint: "https://otlp.example.com/v1/metrics", headers: {x-team: edge}}
`,
      "groups/edge/group.yaml": `${GROUP_YAML}priority: 5
rollout:
  onFailure: pause
  applyTimeout: 1h30m
selector:
  match: {a: b}
`.replace(GROUP_YAML, ""),
      "groups/edge/collector.yaml": COLLECTOR_YAML,
      "groups/edge/extra.json":
        '{"extensions": {"health_check": {}}, "service": {"extensions": ["health_check"]}}',
    });
    assert.deepEqual(codes(report), []);
    const edge = report.fleet?.groups.get("edge");
    assert.ok(edge);
    assert.equal(edge.priority, 5);
    assert.deepEqual(edge.rollout, {
      stages: [
        { percent: 10, pauseMs: 120_000 },
        { percent: 100, pauseMs: 0 },
      ],
      applyTimeoutMs: 5_400_000,
      maxFailures: { percent: 5 },
      onFailure: "pause",
      paused: false,
    });
    assert.equal(edge.heartbeatIntervalSeconds, 60);
    assert.deepEqual(edge.telemetry, {
      metrics: { endpoint: "https://otlp.example.com/v1/metrics", headers: { "x-team": "edge" } },
    });
    assert.deepEqual(
      edge.files.map((f) => [f.name, f.contentType]),
      [
        ["collector.yaml", "text/yaml"],
        ["extra.json", "application/json"],
      ],
    );
  });

  test("unknown keys in group.yaml are errors naming the key and the likely intended one", async () => {
    const report = await validateFiles({
      "groups/edge/group.yaml": `${GROUP_YAML}rollout:\n  stagse:\n    - {percent: 100}\nheartbeat: 30s\n`,
      "groups/edge/collector.yaml": COLLECTOR_YAML,
    });
    const [stagse, heartbeat] = report.findings;
    assertFinding(heartbeat, {
      file: "groups/edge/group.yaml",
      line: 7,
      column: 1,
      severity: "error",
      code: "SCHEMA_UNKNOWN_KEY",
      message: 'unknown key "heartbeat"',
    });
    assertFinding(stagse, {
      file: "groups/edge/group.yaml",
      line: 5,
      column: 3,
      severity: "error",
      code: "SCHEMA_UNKNOWN_KEY",
      message: 'unknown key "stagse" in rollout; did you mean "stages"?',
    });
    assert.equal(report.fleet, undefined);
  });

  test("bad values in group.yaml say what is expected", async () => {
    const report = await validateFiles({
      "groups/edge/group.yaml": `selector:
  match: {version: 1.10}
  expressions:
    - {key: host.name, operator: Within, values: [a]}
rollout:
  stages: [{percent: 50}, {percent: 20}]
  applyTimeout: 5 minutes
  maxFailures: lots
heartbeatInterval: 500ms
`,
      "groups/edge/collector.yaml": COLLECTOR_YAML,
    });
    const messages = report.findings.map((f) => `${f.line}:${f.column} ${f.code} ${f.message}`);
    assert.deepEqual(messages, [
      '2:20 SCHEMA_INVALID_VALUE selector.match.version is 1.1; expected a string (quote numbers and booleans: "1.10", "true")',
      '4:34 SCHEMA_INVALID_VALUE selector.expressions[0].operator is "Within"; expected one of In, NotIn, Exists, DoesNotExist',
      '7:17 SCHEMA_INVALID_VALUE rollout.applyTimeout is "5 minutes"; expected a duration such as "30s", "2m" or "1h30m"',
      `8:16 SCHEMA_INVALID_VALUE rollout.maxFailures is "lots"; expected a count (0 or more) or a percentage of the group's agents such as "5%"`,
    ]);
  });

  test("rollout stages must grow to 100, and the heartbeat must be whole seconds", async () => {
    const report = await validateFiles({
      "groups/edge/group.yaml": `${GROUP_YAML}rollout:\n  stages: [{percent: 50}, {percent: 20}]\nheartbeatInterval: 1500ms\n`,
      "groups/edge/collector.yaml": COLLECTOR_YAML,
    });
    // Both stage findings point at the last stage's percent; same position, ordered by code.
    assert.deepEqual(codes(report), [
      "ROLLOUT_LAST_STAGE",
      "ROLLOUT_STAGES_ORDER",
      "HEARTBEAT_INTERVAL",
    ]);
    assertFinding(only(report, "ROLLOUT_STAGES_ORDER"), {
      file: "groups/edge/group.yaml",
      line: 5,
      column: 37,
      code: "ROLLOUT_STAGES_ORDER",
      message: "rollout.stages[1].percent is 20, not more than the stage before (50)",
    });
  });

  test("a config file listed in group.yaml but missing is an error naming it", async () => {
    const report = await validateFiles({
      "groups/edge/group.yaml": `${GROUP_YAML}config:\n  files: [collector.yaml, processors.yaml]\n`,
      "groups/edge/collector.yaml": COLLECTOR_YAML,
    });
    assertFinding(only(report, "CONFIG_FILE_MISSING"), {
      file: "groups/edge/group.yaml",
      line: 5,
      column: 27,
      severity: "error",
      code: "CONFIG_FILE_MISSING",
      message:
        'config.files lists "processors.yaml", which is not in groups/edge/ (it holds collector.yaml)',
    });
  });

  test("by default every other file is served, sorted; other file types are skipped with a warning", async () => {
    const report = await validateFiles({
      "groups/edge/group.yaml": GROUP_YAML,
      "groups/edge/b.yml": "extensions: {pprof: {}}\nservice: {extensions: [pprof]}\n",
      "groups/edge/a.yaml": COLLECTOR_YAML,
      "groups/edge/README.md": "# edge\n",
    });
    assertFinding(only(report, "CONFIG_FILE_IGNORED"), {
      file: "groups/edge/README.md",
      line: 1,
      column: 1,
      severity: "warning",
      code: "CONFIG_FILE_IGNORED",
      message: "README.md is not served: only .yaml, .yml and .json files are config files",
    });
    assert.equal(report.errors, 0);
    assert.deepEqual(
      report.fleet?.groups.get("edge")?.files.map((f) => f.name),
      ["a.yaml", "b.yml"],
    );
  });

  test("a .json config file must be JSON", async () => {
    const report = await validateFiles({
      "groups/edge/group.yaml": GROUP_YAML,
      "groups/edge/collector.json": '{"receivers": {"otlp": {}},\n "service": {pipelines: {}}}',
    });
    assertFinding(only(report, "CONFIG_FILE_NOT_JSON"), {
      file: "groups/edge/collector.json",
      line: 2,
      column: 14,
      severity: "error",
      code: "CONFIG_FILE_NOT_JSON",
      message: "collector.json is served as application/json but is not JSON",
    });
  });

  test("a listed file of another type is an error", async () => {
    const report = await validateFiles({
      "groups/edge/group.yaml": `${GROUP_YAML}config:\n  files: [collector.toml]\n`,
      "groups/edge/collector.toml": "x = 1\n",
    });
    assert.equal(only(report, "CONFIG_FILE_TYPE").severity, "error");
  });

  test("an empty repository is valid, with zero groups and a warning", async () => {
    const report = await validateDir(await fixtureRepo({ "README.md": "fleet\n" }));
    assertFinding(only(report, "REPO_NO_GROUPS"), {
      file: "groups",
      line: 1,
      column: 1,
      severity: "warning",
      code: "REPO_NO_GROUPS",
      message: "no agent is served a configuration",
    });
    assert.equal(report.errors, 0);
    assert.equal(report.fleet?.groups.size, 0);
  });

  test("group names must be DNS labels; group.yaml is required", async () => {
    const report = await validateFiles({
      "groups/Edge_1/group.yaml": GROUP_YAML,
      "groups/Edge_1/collector.yaml": COLLECTOR_YAML,
      "groups/empty/collector.yaml": COLLECTOR_YAML,
    });
    assertFinding(report.findings[0], {
      file: "groups/Edge_1",
      line: 1,
      column: 1,
      code: "GROUP_INVALID_NAME",
      message: 'group folder "Edge_1" is not a valid group name',
    });
    assertFinding(report.findings[1], {
      file: "groups/empty",
      line: 1,
      column: 1,
      code: "GROUP_YAML_MISSING",
      message: "groups/empty/ has no group.yaml",
    });
  });

  test("a group without config files is an error", async () => {
    const report = await validateFiles({ "groups/edge/group.yaml": GROUP_YAML });
    assert.equal(only(report, "GROUP_NO_CONFIG_FILES").severity, "error");
  });

  test("a symbolic link is never followed: the finding names the path", async () => {
    const outside = await fixtureRepo({ "secret.yaml": "receivers: {}\n" });
    const report = await validateFiles({
      "groups/edge/group.yaml": GROUP_YAML,
      "groups/edge/collector.yaml": COLLECTOR_YAML,
      "groups/edge/linked.yaml": { symlink: `${outside}/secret.yaml` },
      "groups/linked": { symlink: outside },
    });
    const links = report.findings.filter((f) => f.code === "WORKTREE_SYMLINK_NOT_FOLLOWED");
    assert.deepEqual(
      links.map((f) => [f.file, f.line, f.column, f.severity]),
      [
        ["groups/edge/linked.yaml", 1, 1, "error"],
        ["groups/linked", 1, 1, "error"],
      ],
    );
    assert.match(
      links[0]?.message ?? "",
      /is a symbolic link; links are not followed \(one could point outside the repository\)/,
    );
    assert.equal(report.fleet, undefined);
  });

  test("a schema path with .. (or absolute) is refused at config.schema", async () => {
    const report = await validateFiles({
      "groups/edge/group.yaml": `${GROUP_YAML}config:\n  schema: ../../etc/schema.json\n`,
      "groups/edge/collector.yaml": COLLECTOR_YAML,
      "groups/abs/group.yaml": `${GROUP_YAML}config:\n  schema: /etc/schema.json\n`,
      "groups/abs/collector.yaml": COLLECTOR_YAML,
    });
    const found = report.findings.filter((f) => f.code === "CONFIG_SCHEMA_PATH");
    assertFinding(found[0], {
      file: "groups/abs/group.yaml",
      line: 5,
      column: 11,
      severity: "error",
      code: "CONFIG_SCHEMA_PATH",
      message: "it is absolute",
    });
    assertFinding(found[1], {
      file: "groups/edge/group.yaml",
      line: 5,
      column: 11,
      severity: "error",
      code: "CONFIG_SCHEMA_PATH",
      message:
        'config.schema "../../etc/schema.json" is neither a built-in schema (otelcol, otelcol-bridge) nor a path inside the repository: it contains ".." and could leave the repository',
    });
  });

  test("a schema reached through a symbolic link is refused", async () => {
    const outside = await fixtureRepo({ "s.json": '{"type": "object"}' });
    const report = await validateFiles({
      "groups/edge/group.yaml": `${GROUP_YAML}config:\n  schema: schemas/agent.json\n`,
      "groups/edge/agent.yaml": "a: 1\n",
      schemas: { symlink: outside },
    });
    assertFinding(only(report, "CONFIG_SCHEMA_UNREADABLE"), {
      file: "groups/edge/group.yaml",
      line: 5,
      column: 11,
      code: "CONFIG_SCHEMA_UNREADABLE",
      message: "schemas is a symbolic link; links are not followed",
    });
  });

  test("a group may validate its files with a JSON Schema from the repository", async () => {
    const schema = JSON.stringify({
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      required: ["endpoint"],
      properties: { endpoint: { type: "string" }, level: { enum: ["info", "debug"] } },
      additionalProperties: false,
    });
    const files = {
      "fleet.yaml": "config:\n  schema: schemas/agent.schema.json\n",
      "schemas/agent.schema.json": schema,
      "groups/ok/group.yaml": GROUP_YAML,
      "groups/ok/agent.yaml": "endpoint: x\nlevel: info\n",
      "groups/bad/group.yaml": GROUP_YAML,
      "groups/bad/agent.yaml": "endpoint: x\nlevle: info\n",
    };
    const report = await validateFiles(files);
    assertFinding(only(report, "SCHEMA_UNKNOWN_KEY"), {
      file: "groups/bad/agent.yaml",
      line: 2,
      column: 1,
      code: "SCHEMA_UNKNOWN_KEY",
      message: 'unknown key "levle"; did you mean "level"?',
    });
    const { "schemas/agent.schema.json": _, ...withoutSchema } = files;
    const missing = await validateFiles(withoutSchema);
    // Both groups take the schema from fleet.yaml: the problem is reported once, there.
    assertFinding(only(missing, "CONFIG_SCHEMA_NOT_FOUND"), {
      file: "fleet.yaml",
      line: 2,
      column: 11,
      code: "CONFIG_SCHEMA_NOT_FOUND",
      message: 'config.schema names "schemas/agent.schema.json", which is not in the repository',
    });
  });

  test("a missing or broken repository schema is reported", async () => {
    const report = await validateFiles({
      "groups/a/group.yaml": `${GROUP_YAML}config:\n  schema: schemas/none.json\n`,
      "groups/a/agent.yaml": "a: 1\n",
      "groups/b/group.yaml": `${GROUP_YAML}config:\n  schema: schemas/broken.json\n`,
      "groups/b/agent.yaml": "a: 1\n",
      "schemas/broken.json": '{"type": "no-such-type"}',
    });
    assert.deepEqual(codes(report), [
      "CONFIG_SCHEMA_NOT_FOUND",
      "CONFIG_SCHEMA_INVALID",
      "CONFIG_SCHEMA_INVALID",
    ]);
    assert.deepEqual(
      report.findings.map((f) => f.file),
      ["groups/a/group.yaml", "groups/b/group.yaml", "schemas/broken.json"],
    );
  });

  test("fleet.yaml is validated too, and its errors withhold the fleet", async () => {
    const report = await validateFiles({
      "fleet.yaml": "rollout:\n  onFailure: retry\n",
      "groups/edge/group.yaml": GROUP_YAML,
      "groups/edge/collector.yaml": COLLECTOR_YAML,
    });
    assertFinding(only(report, "SCHEMA_INVALID_VALUE"), {
      file: "fleet.yaml",
      line: 2,
      column: 14,
      code: "SCHEMA_INVALID_VALUE",
      message: 'rollout.onFailure is "retry"; expected rollback or pause',
    });
    assert.equal(report.fleet, undefined);
  });

  test("a schema error in a config file is located in that file", async () => {
    const report = await validateFiles({
      "groups/edge/group.yaml": GROUP_YAML,
      "groups/edge/collector.yaml": `${COLLECTOR_YAML}  telemetry:\n    logs: {level: debug}\n    metrcs: {level: none}\n`,
    });
    assertFinding(only(report, "SCHEMA_UNKNOWN_KEY"), {
      file: "groups/edge/collector.yaml",
      line: 21,
      column: 5,
      severity: "error",
      code: "SCHEMA_UNKNOWN_KEY",
      message: 'unknown key "metrcs" in service.telemetry; did you mean "metrics"?',
    });
  });

  test("the otelcol-bridge schema checks OpenTelemetryCollector resources and their config", async () => {
    const resource = (config: string) => `apiVersion: opentelemetry.io/v1beta1
kind: OpenTelemetryCollector
metadata:
  name: gateway
  namespace: observability
  labels:
    opentelemetry.io/opamp-managed: "true"
spec:
  mode: deployment
  config:
${config
  .split("\n")
  .map((l) => (l ? `    ${l}` : l))
  .join("\n")}`;
    const ok = await validateFiles({
      "groups/k8s/group.yaml": `${GROUP_YAML}config:\n  schema: otelcol-bridge\n`,
      "groups/k8s/gateway.yaml": resource(COLLECTOR_YAML),
    });
    assert.deepEqual(codes(ok), []);
    const bad = await validateFiles({
      "groups/k8s/group.yaml": `${GROUP_YAML}config:\n  schema: otelcol-bridge\n`,
      "groups/k8s/gateway.yaml": resource(
        COLLECTOR_YAML.replace("exporters: [otlp/tempo]", "exporters: [otlp/loki]"),
      ).replace("mode: deployment", "mode: replicaset"),
    });
    assert.deepEqual(codes(bad), ["SCHEMA_INVALID_VALUE"]);
    const bad2 = await validateFiles({
      "groups/k8s/group.yaml": `${GROUP_YAML}config:\n  schema: otelcol-bridge\n`,
      "groups/k8s/gateway.yaml": resource(
        COLLECTOR_YAML.replace("exporters: [otlp/tempo]", "exporters: [otlp/loki]"),
      ),
    });
    assertFinding(only(bad2, "OTELCOL_UNDEFINED_COMPONENT"), {
      file: "groups/k8s/gateway.yaml",
      line: 28,
      column: 23,
      code: "OTELCOL_UNDEFINED_COMPONENT",
      message:
        'pipeline traces uses exporter "otlp/loki", which is not defined; did you mean "otlp/tempo"?',
    });
  });
});
