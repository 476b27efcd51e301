/**
 * The agent credential settings (README "Agent credentials"): defaults, the CA read from its
 * files (both or neither), the rotation fraction and the errors a user sees.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { resolveSettings, SettingsError } from "../src/settings.js";
import { makeTestCerts } from "./helpers/certs.js";

describe("agent credential settings", () => {
  const dir = mkdtempSync(join(tmpdir(), "agent-ca-"));
  const certs = makeTestCerts();
  const file = (name: string, data: Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, data);
    return path;
  };
  const caCert = file("ca.pem", certs.ca);
  const caKey = file("ca.key", certs.caKey);

  test("defaults: no CA, no minted tokens, 30-day lifetimes, rotation at 0.66", () => {
    assert.deepEqual(resolveSettings({}, {}).agentCredentials, {
      certificateValidityMs: 720 * 3_600_000,
      tokenValidityMs: 720 * 3_600_000,
      rotateAt: 0.66,
      mintTokens: false,
      maxCsrBytes: 8192,
      csrIntervalMs: 60_000,
    });
    assert.equal(
      resolveSettings({}, { OPAMP_GITOPS_AGENT_CSR_INTERVAL: "0s" }).agentCredentials.csrIntervalMs,
      0,
      "0s turns the CSR rate limit off",
    );
  });

  test("the CA comes from its files, by flag, environment or settings file", () => {
    const s = resolveSettings(
      { agentCertValidity: "1h", agentCredentialRotateAt: "0.5", mintAgentTokens: true },
      { OPAMP_GITOPS_AGENT_CA_CERT: caCert, OPAMP_GITOPS_AGENT_CA_KEY: caKey },
    ).agentCredentials;
    assert.deepEqual(s.ca, { cert: certs.ca, key: certs.caKey });
    assert.equal(s.certificateValidityMs, 3_600_000);
    assert.equal(s.rotateAt, 0.5);
    assert.equal(s.mintTokens, true);
    const settingsFile = join(dir, "settings.yaml");
    writeFileSync(
      settingsFile,
      "agentCaCert: ca.pem\nagentCaKey: ca.key\nagentCredentialRotateAt: 0.8\n",
    );
    const fromFile = resolveSettings({ settings: settingsFile }, {}).agentCredentials;
    assert.deepEqual(fromFile.ca, { cert: certs.ca, key: certs.caKey });
    assert.equal(fromFile.rotateAt, 0.8);
  });

  test("refused: a CA without its key, a fraction outside (0, 1), a missing file", () => {
    assert.throws(() => resolveSettings({ agentCaCert: caCert }, {}), SettingsError);
    for (const bad of ["1", "0", "1.5", "abc", "-0.2"])
      assert.throws(
        () => resolveSettings({ agentCredentialRotateAt: bad }, {}),
        /agent-credential-rotate-at|agentCredentialRotateAt/,
        bad,
      );
    assert.throws(
      () => resolveSettings({ agentCaCert: join(dir, "nope.pem"), agentCaKey: caKey }, {}),
      /cannot read/,
    );
  });
});
