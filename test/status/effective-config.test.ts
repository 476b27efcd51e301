/**
 * The effective config as real agents report it (src/status/effective-config.ts): the
 * opampsupervisor's `""` entry with no content type, the Operator OpAMP Bridge's
 * `<namespace>/<name>` entries with content type `yaml`, absent and empty bodies decoded by
 * the real codec, and text that is not YAML.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RemoteConfigStatus } from "../../src/opamp/capabilities.js";
import { decodeAgentToServer, encodeAgentToServer } from "../../src/opamp/codec.js";
import { agentStatus } from "../../src/status/agent-status.js";
import { configEntry } from "../../src/status/effective-config.js";
import { validateStatusFile } from "../../src/validate/status-schemas.js";
import { fakeAgent, get, uidOf } from "./helpers.js";

const placement = { group: "edge", desiredHash: null, desiredCommit: null };

describe("effective config entries as real agents report them", () => {
  test("an absent body (decoded by the real codec as an empty Array) is written as empty", () => {
    const bytes = encodeAgentToServer({
      instanceUid: new Uint8Array(16).fill(1),
      sequenceNum: 0n,
      capabilities: 0n,
      effectiveConfig: { configMap: { configMap: { "": {} } } },
    });
    const decoded = decodeAgentToServer(bytes).effectiveConfig;
    assert.ok(Array.isArray(decoded?.configMap?.configMap?.[""]?.body), "the codec's quirk");
    const agent = fakeAgent(uidOf(1));
    agent.effectiveConfig = decoded;
    const { file } = agentStatus(agent, placement);
    assert.deepEqual(file.effectiveConfig?.files[""], { contentType: "", bytes: 0, content: null });
    assert.deepEqual(validateStatusFile("agent", file), []);
  });

  test('"" with no content type is YAML when it parses; secrets redacted', () => {
    const e = configEntry(
      "",
      "",
      Buffer.from("exporters:\n  otlp:\n    headers: {authorization: abc}\n"),
    );
    assert.equal(e.contentType, "");
    const auth = (e.content as { exporters: { otlp: { headers: { authorization: string } } } })
      .exporters.otlp.headers.authorization;
    assert.match(auth, /^<redacted:[0-9a-f]{6}>$/);
    assert.equal(e.note, undefined);
    assert.deepEqual(configEntry("", "", Buffer.from('{"a": 1}')).content, { a: 1 });
  });

  test("the Bridge's <namespace>/<name> entries with content type yaml are written whole", () => {
    const agent = fakeAgent(uidOf(2));
    agent.effectiveConfig = {
      configMap: {
        configMap: {
          "observability/gateway": {
            contentType: "yaml",
            body: Buffer.from("kind: OpenTelemetryCollector\nmetadata: {name: gateway}\n"),
          },
          "../../etc/passwd": { contentType: "yaml", body: Buffer.from("a: 1\n") },
        },
      },
    };
    const { file } = agentStatus(agent, placement);
    assert.deepEqual(file.effectiveConfig?.files["observability/gateway"]?.content, {
      kind: "OpenTelemetryCollector",
      metadata: { name: "gateway" },
    });
    // A name is only ever a key inside the agent's file, never a path.
    assert.deepEqual(file.effectiveConfig?.files["../../etc/passwd"]?.content, { a: 1 });
    assert.deepEqual(validateStatusFile("agent", file), []);
  });

  test("text that is not YAML is stored redacted line by line, with a note; binary is not", () => {
    const e = configEntry("", "", Buffer.from("[service]\nurl = https://u:hunter2@db\n: x: [\n"));
    assert.equal(typeof e.content, "string");
    assert.doesNotMatch(String(e.content), /hunter2/);
    assert.match(String(e.content), /^\[service\]\n/);
    assert.match(e.note ?? "", /stored as text/);
    const agent = fakeAgent(uidOf(4));
    agent.effectiveConfig = {
      configMap: { configMap: { "": { body: Buffer.from("[service]\nlevel = debug\n") } } },
    };
    assert.deepEqual(validateStatusFile("agent", agentStatus(agent, placement).file), []);
    const binary = configEntry("", "yaml", Buffer.from([0xff, 0xfe, 0x00, 0x01]));
    assert.equal(binary.content, undefined);
    assert.match(binary.note ?? "", /not YAML, JSON or UTF-8 text/);
    // Another content type keeps the strict rule: not YAML by type, not written.
    assert.match(configEntry("", "text/plain", Buffer.from("a: 1")).note ?? "", /not written/);
  });
});

describe("drift with a supervisor's merged effective config", () => {
  const served = "ab".repeat(32);
  const merged = Buffer.from(
    "receivers: {otlp: {protocols: {grpc: {}}}}\nexporters: {debug: {}}\n" +
      "extensions: {opamp: {server: {ws: {endpoint: 'ws://127.0.0.1:1/v1/opamp'}}}}\n" +
      "service:\n  extensions: [opamp]\n  telemetry: {metrics: {level: none}}\n" +
      "  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}\n",
  );
  const supervised = (hash: string, status: number = RemoteConfigStatus.APPLIED) => {
    const agent = fakeAgent(uidOf(3), { reportedHash: hash, status });
    agent.effectiveConfig = { configMap: { configMap: { "": { body: merged } } } };
    return agentStatus(agent, {
      group: "edge",
      desiredHash: served,
      desiredCommit: "c".repeat(40),
    });
  };

  test("the served hash APPLIED is no drift, though the effective config has the supervisor's layers", () => {
    const { file, facts } = supervised(served);
    assert.equal(file.drift, false);
    assert.equal(facts.drift, false);
    assert.ok(get(file.effectiveConfig?.files[""], "content", "extensions", "opamp"));
  });

  test("another hash, or the served one FAILED, is drift", () => {
    assert.equal(supervised("cd".repeat(32)).file.drift, true);
    assert.equal(supervised(served, RemoteConfigStatus.FAILED).file.drift, true);
  });
});
