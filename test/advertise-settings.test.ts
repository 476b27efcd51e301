/**
 * `--advertise-url` / `--advertise-ca` as settings: which CA an offer carries, and the errors a
 * user sees for a URL or CA that cannot work.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { resolveSettings } from "../src/settings.js";
import { makeTestCerts } from "./helpers/certs.js";

describe("advertised endpoint settings", () => {
  const dir = mkdtempSync(join(tmpdir(), "advertise-"));
  const certs = makeTestCerts();
  const file = (name: string, data: Buffer | string) => {
    const path = join(dir, name);
    writeFileSync(path, data);
    return path;
  };
  const ca = file("ca.pem", certs.ca);
  const cert = file("server.pem", certs.serverCert);
  const key = file("server.key", certs.serverKey);

  test("none by default: offers carry no endpoint", () => {
    assert.equal(resolveSettings({}, {}).advertise, undefined);
  });

  test("ws:// needs no CA; wss:// carries --advertise-ca, else the serving chain", () => {
    assert.deepEqual(
      resolveSettings({ advertiseUrl: "ws://10.0.0.5:4320/v1/opamp" }, {}).advertise,
      {
        url: "ws://10.0.0.5:4320/v1/opamp",
      },
    );
    const explicit = resolveSettings(
      {},
      {
        OPAMP_GITOPS_ADVERTISE_URL: "wss://opamp.example.com/v1/opamp",
        OPAMP_GITOPS_ADVERTISE_CA: ca,
      },
    ).advertise;
    assert.equal(explicit?.url, "wss://opamp.example.com/v1/opamp");
    assert.deepEqual(explicit?.ca, certs.ca);
    const serving = resolveSettings(
      { advertiseUrl: "https://opamp.example.com/v1/opamp", tlsCert: cert, tlsKey: key },
      {},
    ).advertise;
    assert.deepEqual(serving?.ca, certs.serverCert);
  });

  test("a settings file's relative --advertise-ca is relative to the file", () => {
    const settings = file(
      "settings.yaml",
      "advertiseUrl: wss://opamp.example.com/v1/opamp\nadvertiseCa: ca.pem\n",
    );
    assert.deepEqual(resolveSettings({ settings }, {}).advertise?.ca, certs.ca);
  });

  test("errors name the setting", () => {
    const cases: Array<[Parameters<typeof resolveSettings>[0], RegExp]> = [
      [{ advertiseUrl: "opamp.example.com" }, /--advertise-url: setting advertiseUrl is/],
      [{ advertiseUrl: "wss://" }, /--advertise-url/],
      [{ advertiseUrl: "wss://x.example.com" }, /--advertise-url: .*give --advertise-ca/],
      [{ advertiseUrl: "ws://x.example.com", advertiseCa: ca }, /--advertise-ca: only applies to/],
      [{ advertiseCa: ca }, /advertiseCa/],
      [
        { advertiseUrl: "wss://x.example.com", advertiseCa: file("junk.pem", "not a cert") },
        /--advertise-ca: holds no PEM certificate/,
      ],
      [
        { advertiseUrl: "wss://x.example.com", advertiseCa: join(dir, "missing.pem") },
        /--advertise-ca: cannot read/,
      ],
      [{ advertiseUrl: "https://user:pw@x.example.com/v1/opamp" }, /must not carry credentials/],
    ];
    for (const [flags, message] of cases) {
      assert.throws(() => resolveSettings(flags, {}), message, JSON.stringify(flags));
    }
  });
});
