/**
 * What reaches an agent's status file under each `--status-effective-config` mode, every
 * agent string going through the keyed redactor, the fleet's redaction key in Redis, and the
 * setting as a user sees it (flag, environment, a wrong value).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Marker, Redactor } from "../../src/redact/index.js";
import { loadSettings } from "../../src/settings.js";
import { agentStatus } from "../../src/status/agent-status.js";
import { loadRedactionKey, redactionKeyName } from "../../src/status/redaction-key.js";
import { validateStatusFile } from "../../src/validate/status-schemas.js";
import { type TestRedis, testRedis } from "../helpers/redis.js";
import { fakeAgent, uidOf } from "./helpers.js";

const R = new Redactor(new Marker(Buffer.alloc(32, 5)));
const PLACE = { group: "edge", desiredHash: null, desiredCommit: null };
const CONFIG =
  "exporters:\n  otlp:\n    endpoint: otlp:4317\n    headers:\n      api-key: k3y5ecret\n";

function render(mode: "full" | "redacted" | "hash" | "none") {
  const agent = fakeAgent(uidOf(1), {
    config: CONFIG,
    healthy: false,
    lastError: "export failed: Authorization: Bearer t0kenValue1",
    attributes: { "service.name": "edge", "deployment.api_key": "attrS3cret", "host.name": "h" },
  });
  const { file } = agentStatus(agent, PLACE, { effectiveConfig: mode, redactor: R });
  assert.deepEqual(validateStatusFile("agent", file), [], `${mode}: schema`);
  return file;
}

describe("--status-effective-config", () => {
  test("redacted (default): content with keyed markers", () => {
    const file = render("redacted");
    const entry = file.effectiveConfig?.files["collector.yaml"];
    assert.deepEqual(entry?.content, {
      exporters: {
        otlp: { endpoint: "otlp:4317", headers: { "api-key": R.marker.mark("k3y5ecret") } },
      },
    });
  });

  test("hash: no content, the body's HMAC under the service's key", () => {
    const entry = render("hash").effectiveConfig?.files["collector.yaml"];
    assert.equal(entry?.content, undefined);
    assert.equal(entry?.hash, R.marker.digest(Buffer.from(CONFIG)));
    assert.notEqual(entry?.hash, new Marker(Buffer.alloc(32, 6)).digest(Buffer.from(CONFIG)));
  });

  test("none: no files at all", () => {
    assert.deepEqual(render("none").effectiveConfig?.files, {});
  });

  test("full: the body as reported (the operator's choice); agent text is still redacted", () => {
    const file = render("full");
    assert.match(JSON.stringify(file.effectiveConfig), /k3y5ecret/);
    assert.doesNotMatch(JSON.stringify(file.health), /t0kenValue1/);
  });

  test("every mode redacts description attributes and health text", () => {
    for (const mode of ["full", "redacted", "hash", "none"] as const) {
      const file = render(mode);
      const text = JSON.stringify({ d: file.description, h: file.health });
      assert.doesNotMatch(text, /attrS3cret|t0kenValue1/, mode);
      assert.equal(
        file.description.nonIdentifying["deployment.api_key"],
        R.marker.mark("attrS3cret"),
      );
    }
  });

  test("the setting: default, flag, environment, and the error a wrong value gets", () => {
    const base = { repo: "/tmp/x" };
    assert.equal(loadSettings(base, {}).statusEffectiveConfig, "redacted");
    assert.equal(
      loadSettings({ ...base, statusEffectiveConfig: "none" }, {}).statusEffectiveConfig,
      "none",
    );
    assert.equal(
      loadSettings(base, { OPAMP_GITOPS_STATUS_EFFECTIVE_CONFIG: "hash" }).statusEffectiveConfig,
      "hash",
    );
    assert.throws(
      () => loadSettings({ ...base, statusEffectiveConfig: "partial" }, {}),
      /invalid setting --status-effective-config: .*"partial".*(full|redacted)/,
    );
  });
});

describe("the redaction key", () => {
  let redis: TestRedis;
  before(async () => {
    redis = await testRedis();
  });
  after(async () => {
    await redis?.close();
  });

  test("created once, then the same for every caller; a damaged one is replaced", async () => {
    const a = await loadRedactionKey(redis.redis, redis.prefix);
    const b = await loadRedactionKey(redis.redis, redis.prefix);
    assert.equal(a.length, 32);
    assert.deepEqual(a, b);
    await redis.redis.set(redactionKeyName(redis.prefix), "short");
    const c = await loadRedactionKey(redis.redis, redis.prefix);
    assert.equal(c.length, 32);
    assert.notDeepEqual(c, a);
    assert.deepEqual(await loadRedactionKey(redis.redis, redis.prefix), c);
  });
});
