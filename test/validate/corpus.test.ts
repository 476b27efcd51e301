/**
 * Real-world Collector configurations (../shared/corpus, next to the repository; see its
 * MANIFEST.md), each validated as the only config file of a group:
 *
 * - otelcol/: accepted on its own by some Collector version or distribution: no error
 *   (warnings allowed; outdated configs are among them).
 * - otelcol-partial/: layers the agent merges with configuration of its own (Helm chart
 *   defaults, a second --config file): no error in a group with `config.partial: true`; without
 *   it, an error naming the component only the other layer defines (the Collector refuses it).
 * - otelcol-invalid/: rejected by the Collector: an error naming the problem it named.
 * - otelcol-unknown-components/: a misspelled component type or setting key: at least a
 *   warning naming it.

 * The corpus is read in place, never copied into the project. Skipped when absent (a clone of
 * the project alone has no ../shared).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type Finding, type ValidationReport, validateSnapshot } from "../../src/validate/index.js";
import { GROUP_YAML } from "./helpers.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const corpus = resolve(repoRoot, "../shared/corpus");
const present = existsSync(join(corpus, "otelcol"));

async function validateAlone(
  dir: string,
  name: string,
  groupYaml = GROUP_YAML,
): Promise<ValidationReport> {
  const body = new Uint8Array(readFileSync(join(corpus, dir, name)));
  const groups = new Map([
    ["corpus", { groupYaml: new TextEncoder().encode(groupYaml), files: new Map([[name, body]]) }],
  ]);
  return validateSnapshot({ groups, readFile: async () => undefined });
}

const files = (dir: string) => (present ? readdirSync(join(corpus, dir)).sort() : []);
const show = (fs: Finding[]) =>
  fs.map((f) => `  ${f.line}:${f.column} ${f.severity} ${f.code} ${f.message}`).join("\n");

interface Expected {
  severity: "error" | "warning";
  code: string;
  /** Fragments the message must hold, each in some finding of that code. */
  messages: string[];
}

/** otelcol-invalid/: what the Collector said (MANIFEST.md) → the finding that names it. */
const INVALID: Record<string, Expected[]> = {
  // references processor "filter/ottl" which is not configured (also "resource", "transform")
  "issue-GoogleCloudPlatform__opentelemetry-demo__18.yml": [
    {
      severity: "error",
      code: "OTELCOL_UNDEFINED_COMPONENT",
      messages: [
        'processor "filter/ottl", which is not defined',
        'processor "transform", which is not defined',
      ],
    },
  ],
  // not valid YAML: static_configs mis-indented under job_name (line 7)
  "issue-aws-observability__aws-otel-collector__340.yaml": [
    {
      severity: "error",
      code: "YAML_SYNTAX",
      messages: ["All mapping items must start at the same column"],
    },
  ],
  // yaml: line 3: found character that cannot start any token (a TAB)
  "issue-open-telemetry__opentelemetry-collector__11292.yaml": [
    {
      severity: "error",
      code: "YAML_TAB_INDENT",
      messages: ["a tab character is used for indentation"],
    },
  ],
  // connector "forward" used as exporter in [logs/in2 logs/in] pipeline but not used in any supported receiver pipeline
  "issue-open-telemetry__opentelemetry-collector__12488.yaml": [
    {
      severity: "error",
      code: "OTELCOL_CONNECTOR_ONE_SIDED",
      messages: [
        'connector "forward" is used as exporter in logs pipelines logs/in, logs/in2',
        "not used in any supported receiver pipeline",
      ],
    },
  ],
  // connector "count" used as receiver in metrics pipeline but not used in any supported exporter pipeline
  "issue-open-telemetry__opentelemetry-collector__8721.yaml": [
    {
      severity: "error",
      code: "OTELCOL_CONNECTOR_ONE_SIDED",
      messages: [
        'connector "count" is used as receiver in metrics pipeline metrics/out',
        "not used in any supported exporter pipeline",
      ],
    },
  ],
  // cycle detected: connector "nop/forward" (traces to traces) -> connector "nop/forward" (traces to traces)
  "open-telemetry__opentelemetry-collector__otelcol__testdata__otelcol-cyclic-connector.yaml": [
    {
      severity: "error",
      code: "OTELCOL_PIPELINE_CYCLE",
      messages: ['cycle detected: pipeline traces/in → connector "nop/forward"'],
    },
  ],
  // unknown type: "nosuchprocessor". Component types are not a closed list, so that is a
  // warning here; the error is the pipeline's processor "nop", which is not defined either.
  "open-telemetry__opentelemetry-collector__otelcol__testdata__otelcol-invalid-components.yaml": [
    {
      severity: "error",
      code: "OTELCOL_UNDEFINED_COMPONENT",
      messages: ['pipeline traces uses processor "nop", which is not defined'],
    },
    {
      severity: "warning",
      code: "OTELCOL_UNKNOWN_COMPONENT_TYPE",
      messages: ['processor type "nosuchprocessor"'],
    },
  ],
  // connector "nop/connector1" used as receiver in [logs/in2] pipeline but not used in any supported exporter pipeline
  "open-telemetry__opentelemetry-collector__otelcol__testdata__otelcol-invalid-connector-unused-exp.yaml":
    [
      {
        severity: "error",
        code: "OTELCOL_CONNECTOR_ONE_SIDED",
        messages: [
          'connector "nop/connector1" is used as receiver in logs pipeline logs/in2',
          "not used in any supported exporter pipeline",
        ],
      },
    ],
  // 'service.telemetry' has invalid keys: unknown
  "open-telemetry__opentelemetry-collector__otelcol__testdata__otelcol-invalid-telemetry.yaml": [
    {
      severity: "error",
      code: "SCHEMA_UNKNOWN_KEY",
      messages: ['unknown key "unknown" in service.telemetry'],
    },
  ],
  // 'connectors' unknown type: "count" (core distribution); otlp, prometheus and
  // otlphttp/jaeger referenced but not configured. Types are never errors here (a
  // distribution's component list is not known); the fragment defines no receivers and no
  // exporters at all while its pipelines name some, which is an error.
  "issue-open-telemetry__opentelemetry-collector__15540.yaml": [
    {
      severity: "error",
      code: "OTELCOL_UNDEFINED_COMPONENT",
      messages: [
        'receiver "otlp", which is not defined',
        'exporter "prometheus", which is not defined',
        'exporter "otlphttp/jaeger", which is not defined',
        "defines no exporters at all",
      ],
    },
  ],
  // service::pipelines::traces: references processor "invalid" which is not configured
  "open-telemetry__opentelemetry-collector__otelcol__testdata__otelcol-invalid.yaml": [
    {
      severity: "error",
      code: "OTELCOL_UNDEFINED_COMPONENT",
      messages: ['pipeline traces uses processor "invalid", which is not defined'],
    },
  ],
};

/** otelcol-unknown-components/: the misspelled type or key, named in a warning. */
const UNKNOWN: Record<string, Expected[]> = {
  "issue-open-telemetry__opentelemetry-collector__15907.yaml": [
    {
      severity: "warning",
      code: "OTELCOL_UNKNOWN_SETTING",
      messages: [
        'has no setting "tls_settings" at receivers.otlp.protocols.http.tls_settings; did you mean "tls"?',
        'has no setting "compresion" at exporters.otlp_http.compresion; did you mean "compression"?',
        'has no setting "retry" at exporters.otlp_http.retry; did you mean "retry_on_failure"?',
      ],
    },
  ],
  "issue-open-telemetry__opentelemetry-collector__9633.yaml": [
    {
      severity: "warning",
      code: "OTELCOL_UNKNOWN_COMPONENT_TYPE",
      messages: [
        'receiver type "jaegar" is not an upstream Collector component; did you mean "jaeger"?',
      ],
    },
  ],
};

function assertExpected(report: ValidationReport, expected: Expected[], name: string): void {
  for (const e of expected) {
    const candidates = report.findings.filter(
      (f) => f.code === e.code && f.severity === e.severity,
    );
    assert.ok(
      candidates.length > 0,
      `${name}: expected ${e.severity} ${e.code}, got:\n${show(report.findings)}`,
    );
    for (const fragment of e.messages)
      assert.ok(
        candidates.some((f) => f.message.includes(fragment)),
        `${name}: no ${e.code} says ${JSON.stringify(fragment)}; got:\n${show(report.findings)}`,
      );
    for (const f of candidates) {
      assert.equal(f.file, `groups/corpus/${name}`);
      assert.ok(f.line >= 1 && f.column >= 1);
    }
  }
}

describe("real-world corpus", {
  skip: present ? false : `no corpus at ${corpus} (it lives next to the project, in ../shared)`,
}, () => {
  test("every otelcol/ file passes as a group's only config file (warnings allowed)", async () => {
    const tally = { files: 0, clean: 0, warned: 0 };
    for (const name of files("otelcol")) {
      tally.files++;
      const report = await validateAlone("otelcol", name);
      assert.equal(
        report.errors,
        0,
        `${name} has errors:\n${show(report.findings.filter((f) => f.severity === "error"))}`,
      );
      assert.ok(report.fleet?.groups.get("corpus"));
      if (report.warnings > 0) tally.warned++;
      else tally.clean++;
    }
    assert.ok(tally.files >= 77, `only ${tally.files} files`);
    console.log(
      `otelcol/: ${tally.files} files, ${tally.clean} clean, ${tally.warned} with warnings only`,
    );
  });

  test("every otelcol-partial/ file passes in a partial group, and fails naming what it lacks otherwise", async () => {
    const names = files("otelcol-partial");
    assert.equal(names.length, 3, names.join(", "));
    for (const name of names) {
      const partial = await validateAlone(
        "otelcol-partial",
        name,
        `${GROUP_YAML}config:\n  partial: true\n`,
      );
      assert.equal(
        partial.errors,
        0,
        `${name} (partial) has errors:\n${show(partial.findings.filter((f) => f.severity === "error"))}`,
      );
      assert.ok(partial.fleet?.groups.get("corpus"));
      const layered = partial.findings.filter((f) => f.code === "OTELCOL_UNDEFINED_COMPONENT");
      assert.ok(layered.length > 0, `${name}: no warning says what the other layer must supply`);
      assert.ok(layered.every((f) => f.severity === "warning" && f.message.includes("partial")));

      const whole = await validateAlone("otelcol-partial", name);
      assert.equal(whole.fleet, undefined, `${name} passed without config.partial`);
      const errors = whole.findings.filter((f) => f.severity === "error");
      const undefinedOnes = errors.filter((f) => f.code === "OTELCOL_UNDEFINED_COMPONENT");
      assert.ok(
        undefinedOnes.length > 0,
        `${name}: no error names an undefined component:\n${show(whole.findings)}`,
      );
      for (const f of undefinedOnes) {
        assert.equal(f.file, `groups/corpus/${name}`);
        assert.match(f.message, /uses \w+ "[^"]+", which is not defined/);
        // The component named in the message is the one the finding's data names.
        assert.ok(f.message.includes(`"${f.data?.id}"`), f.message);
      }
    }
  });

  test("every otelcol-invalid/ file fails with an error naming the Collector's problem", async () => {
    const names = files("otelcol-invalid");
    assert.ok(names.length >= 11);
    for (const name of names) {
      const report = await validateAlone("otelcol-invalid", name);
      const expected = INVALID[name];
      assert.ok(expected, `${name} has no expectation: read MANIFEST.md and add one`);
      assert.ok(report.errors > 0, `${name} passed:\n${show(report.findings)}`);
      assert.equal(report.fleet, undefined);
      assertExpected(report, expected, name);
    }
  });

  test("every otelcol-unknown-components/ file is reported, naming the misspelled type or key", async () => {
    const names = files("otelcol-unknown-components");
    assert.ok(names.length >= 2);
    for (const name of names) {
      const report = await validateAlone("otelcol-unknown-components", name);
      const expected = UNKNOWN[name];
      assert.ok(expected, `${name} has no expectation: read MANIFEST.md and add one`);
      assertExpected(report, expected, name);
    }
  });
});
