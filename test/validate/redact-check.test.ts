/**
 * The `redact` check of `validate`: plaintext secrets in the repository's own config files
 * are warnings (never errors: users may prefer ${env:…}), found by the same detector as the
 * status writer's redaction (src/redact), in every section and every shape.
 */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${env:VAR}` placeholders are test data
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { redactStructure } from "../../src/redact/index.js";
import { loadYaml } from "../../src/validate/yaml.js";
import { COLLECTOR_YAML, GROUP_YAML, validateFiles } from "./helpers.js";

const CONFIG = `${COLLECTOR_YAML}processors:
  attributes/auth:
    actions:
      - key: http.request.header.authorization
        action: insert
        value: "Basic dXNlcjpwYXNz"
  batch:
extensions:
  webhook:
    url: "https://hooks.example.com/in?sig=AbC123xyz"
  env:
    list:
      - name: DB_PASSWORD
        value: p4ss
  fine:
    password: \${env:DB_PASSWORD}
    token_url: https://auth.example.com/token
`.replace("processors:\n  batch:\n", "");

describe("validate: the redact check", () => {
  test("every plaintext secret is a warning at its line, placeholders are not", async () => {
    const report = await validateFiles({
      "groups/g/group.yaml": GROUP_YAML,
      "groups/g/collector.yaml": CONFIG,
    });
    const secrets = report.findings.filter((f) => f.code === "OTELCOL_PLAINTEXT_SECRET");
    assert.deepEqual(
      secrets.map((f) => [f.severity, f.line, f.message.split(" holds")[0]]),
      [
        ["warning", 22, "processors.attributes/auth.actions[0].value"],
        ["warning", 26, "extensions.webhook.url"],
        ["warning", 30, "extensions.env.list[0].value"],
      ],
    );
    assert.match(
      secrets[1]?.message ?? "",
      /extensions\.webhook\.url holds a secret in plain text \(it looks like a credential\); write \$\{env:WEBHOOK_URL\} instead/,
    );
    assert.equal(report.errors, 0, "secrets are warnings, never errors");
  });

  test("the validator warns exactly where the status writer would redact", () => {
    const loaded = loadYaml(Buffer.from(CONFIG), "c.yaml", {});
    const { findings } = redactStructure(loaded.yaml?.value, () => "");
    assert.deepEqual(
      findings.map((f) => f.path.join(".")),
      [
        "processors.attributes/auth.actions.0.value",
        "extensions.webhook.url",
        "extensions.env.list.0.value",
      ],
    );
  });
});
