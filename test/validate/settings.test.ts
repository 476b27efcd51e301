/** Service settings are validated with the same ajv setup, and a bad one is named. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { validateSettings } from "../../src/validate/index.js";

describe("service settings", () => {
  test("valid settings pass", () => {
    assert.deepEqual(
      validateSettings({
        opampListen: "0.0.0.0:4320",
        apiListen: "[::1]:4321",
        redis: "redis://127.0.0.1:6379",
        redisPrefix: "opamp-gitops",
        repo: "https://git.example.com/fleet.git",
        branch: "main",
        path: "deploy/fleet",
        stateDir: ".opamp-gitops",
        pollInterval: "15s",
        statusInterval: "10s",
        statusBranch: "opamp-status",
        maxMessageBytes: "16777216",
        maxConnections: 50000,
        logLevel: "info",
        tlsCert: "cert.pem",
        tlsKey: "key.pem",
      }),
      [],
    );
  });

  test("each bad setting is named, with what is expected", () => {
    assert.deepEqual(
      validateSettings({
        opampListen: "4320",
        apiListen: "127.0.0.1:99999",
        redis: "http://x",
        pollInterval: "soon",
        maxConnections: 0,
        logLevel: "verbose",
        path: "../elsewhere",
        tlsCert: "c.pem",
        pollIntervall: "15s",
      }),
      [
        {
          setting: "pollIntervall",
          message: 'unknown setting "pollIntervall"; did you mean "pollInterval"?',
        },
        {
          setting: "opampListen",
          message:
            'setting opampListen is "4320"; expected host:port, such as 0.0.0.0:4320 or [::1]:4321',
        },
        {
          setting: "redis",
          message: 'setting redis is "http://x"; expected a redis:// or rediss:// URL',
        },
        {
          setting: "path",
          message:
            'setting path is "../elsewhere"; expected a relative folder of the repository, such as fleet or deploy/fleet',
        },
        {
          setting: "pollInterval",
          message: 'setting pollInterval is "soon"; expected a duration such as "15s" or "1m"',
        },
        {
          setting: "maxConnections",
          message: "setting maxConnections is 0; expected a positive integer",
        },
        {
          setting: "logLevel",
          message:
            'setting logLevel is "verbose"; expected trace, debug, info, warn, error, fatal or silent',
        },
        { setting: "tlsCert", message: "setting tlsCert needs tlsKey as well" },
        {
          setting: "apiListen",
          message: 'setting apiListen is "127.0.0.1:99999"; the port must be at most 65535',
        },
      ],
    );
  });
});

test("the settings schema names exactly the serve flags (camelCase), each with a variable", async () => {
  const { readFileSync } = await import("node:fs");
  const { SETTING_ENV } = await import("../../src/settings.js");
  const schema = JSON.parse(
    readFileSync(new URL("../../../schemas/settings.schema.json", import.meta.url), "utf8"),
  ) as { properties: Record<string, unknown> };
  assert.deepEqual(Object.keys(schema.properties).sort(), Object.keys(SETTING_ENV).sort());
  for (const [key, env] of Object.entries(SETTING_ENV))
    assert.equal(env, `OPAMP_GITOPS_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`);
});

test("agent-port limits and timeouts: defaults, flags and variables, bad values named", async () => {
  const { loadSettings, SettingsError } = await import("../../src/settings.js");
  const defaults = loadSettings({}, {});
  assert.deepEqual(defaults.agentLimits, {
    maxAttributes: 256,
    maxAttributeBytes: 4096,
    maxConfigFiles: 64,
    maxConfigBytes: 1048576,
    maxHealthComponents: 1024,
    maxAvailableComponents: 4096,
    maxErrorMessageBytes: 4096,
    maxAgentBytes: 4194304,
  });
  assert.deepEqual(defaults.opampGuards, {
    maxSendBufferBytes: 4194304,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 60_000,
    firstMessageTimeoutMs: 30_000,
    idleTimeoutMs: 3_600_000,
  });
  const set = loadSettings(
    { maxConfigFiles: "3", idleTimeout: "5m" },
    { OPAMP_GITOPS_MAX_CONNECTIONS_PER_ADDRESS: "20" },
  );
  assert.equal(set.agentLimits.maxConfigFiles, 3);
  assert.equal(set.opampGuards.idleTimeoutMs, 300_000);
  assert.equal(set.opampGuards.maxConnectionsPerAddress, 20);
  assert.throws(
    () => loadSettings({ maxAgentAttributes: "0" }, {}),
    (err: unknown) =>
      err instanceof SettingsError &&
      /--max-agent-attributes: "0" is not a positive/.test(err.message),
  );
  assert.throws(
    () => loadSettings({ headersTimeout: "0" }, {}),
    (err: unknown) =>
      err instanceof SettingsError && /--headers-timeout: must be longer than 0/.test(err.message),
  );
});
