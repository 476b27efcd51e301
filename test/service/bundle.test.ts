/**
 * The bundle's pure parts: its id, group.yaml parsing of telemetry and packages, secret
 * reference resolution, the rollout-time checks, the per-part verdict, package offers, and
 * byte ranges of served package files.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { describe, test } from "node:test";
import { bundleId, canonicalJson } from "../../src/bundle.js";
import { emptyAgentState } from "../../src/opamp/agent-state.js";
import { AgentCapabilities } from "../../src/opamp/capabilities.js";
import { parseRange, serveDownload } from "../../src/opamp/downloads.js";
import { connectionSettingsFor, connectionSettingsOffer } from "../../src/opamp/offers.js";
import { allPackagesHash, packagesOffer } from "../../src/opamp/packages-offer.js";
import { checkBundles } from "../../src/service/bundle-check.js";
import { bundleReport } from "../../src/service/bundle-report.js";
import { PackageStore } from "../../src/service/package-store.js";
import { MAX_SECRET_FILE_BYTES } from "../../src/service/secret-file.js";
import { SecretRefError } from "../../src/service/secret-ref-error.js";
import { resolveRefs, resolveTelemetry } from "../../src/service/secret-refs.js";
import { validateSnapshot } from "../../src/validate/index.js";
import type { RepositorySnapshot } from "../../src/validate/model.js";
import { tempDir } from "../sync/helpers/git-repo.js";

const CONFIG = "a".repeat(64);
const SHA = "b".repeat(64);
const pkg = { name: "plugin", type: "addon" as const, version: "1.0.0", sha256: SHA };

describe("bundle id", () => {
  test("a bundle of config files alone is identified by its config hash", () => {
    assert.equal(bundleId({ configHash: CONFIG, telemetry: {}, packages: [] }), CONFIG);
  });

  test("telemetry or packages give the bundle an id of its own, independent of key order", () => {
    const a = bundleId({
      configHash: CONFIG,
      telemetry: { metrics: { endpoint: "https://m", headers: { a: "1", b: "2" } } },
      packages: [],
    });
    const b = bundleId({
      configHash: CONFIG,
      telemetry: { metrics: { headers: { b: "2", a: "1" }, endpoint: "https://m" } },
      packages: [],
    });
    assert.equal(a, b);
    assert.notEqual(a, CONFIG);
    assert.match(a, /^[0-9a-f]{64}$/);
    const withPackage = bundleId({ configHash: CONFIG, telemetry: {}, packages: [pkg] });
    const newer = bundleId({
      configHash: CONFIG,
      telemetry: {},
      packages: [{ ...pkg, version: "1.0.1" }],
    });
    assert.notEqual(withPackage, newer);
    assert.notEqual(withPackage, a);
  });

  test("canonical JSON sorts keys and drops undefined members", () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: undefined, c: "x" }] }), '{"a":[{"c":"x"}],"b":1}');
  });
});

function snapshot(groupYaml: string): RepositorySnapshot {
  return {
    groups: new Map([
      [
        "edge",
        {
          groupYaml: Buffer.from(groupYaml),
          files: new Map([["c.yaml", Buffer.from("receivers: {}\n")]]),
        },
      ],
    ]),
    readFile: async () => undefined,
  };
}

describe("group.yaml: telemetry and packages", () => {
  test("references are checked for form; a clear-text credential header is a warning", async () => {
    const report = await validateSnapshot(
      snapshot(`selector: {match: {a: b}}
telemetry:
  metrics: {endpoint: "https://m", headers: {Authorization: "Bearer \${env:1BAD}"}}
  logs: {endpoint: "https://l", headers: {X-Api-Key: "plain"}}
  traces: {endpoint: "https://t", headers: {X: "\${vault:x}"}, tls: {ca: "\${file:relative}"}}
`),
    );
    const codes = report.findings.map((f) => `${f.code}:${f.line}`).sort();
    assert.ok(codes.includes("SECRET_REF_INVALID:3"), codes.join());
    assert.ok(codes.includes("TELEMETRY_HEADER_PLAINTEXT:4"), codes.join());
    assert.equal(codes.filter((c) => c.startsWith("SECRET_REF_INVALID")).length, 3, codes.join());
  });

  test("packages are parsed, sorted, typed; two top-level packages are an error", async () => {
    const ok = await validateSnapshot(
      snapshot(`selector: {match: {a: b}}
packages:
  zeta: {version: "2", sha256: ${SHA}, url: "https://x/z"}
  "": {version: "0.158.0", sha256: ${SHA}}
`),
    );
    const spec = ok.fleet?.groups.get("edge");
    assert.deepEqual(
      spec?.packages.map((p) => [p.name, p.type, p.url ?? null]),
      [
        ["", "top-level", null],
        ["zeta", "addon", "https://x/z"],
      ],
    );
    const bad = await validateSnapshot(
      snapshot(`selector: {match: {a: b}}
packages:
  a: {version: "1", sha256: ${SHA}, type: top-level}
  b: {version: "1", sha256: ${SHA}, type: top-level}
`),
    );
    assert.ok(bad.findings.some((f) => f.code === "PACKAGES_TOP_LEVEL" && f.line === 4));
    const schema = await validateSnapshot(
      snapshot(`selector: {match: {a: b}}\npackages: {a: {version: "1", sha256: "nothex"}}\n`),
    );
    assert.ok(schema.errors > 0);
  });

  test("rollout-time: an unset variable and a package missing from the store are errors", async () => {
    const snap = snapshot(`selector: {match: {a: b}}
telemetry:
  metrics: {endpoint: "https://m", headers: {Authorization: "Bearer \${env:OPAMP_GITOPS_SECRET_NOT_SET_HERE}"}}
packages:
  plugin: {version: "1", sha256: ${SHA}}
`);
    const report = await validateSnapshot(snap);
    assert.equal(report.errors, 0, JSON.stringify(report.findings));
    const store = new PackageStore(tempDir("opamp-gitops-pkgs-"));
    const checked = checkBundles(report, snap, { env: {} }, store);
    assert.equal(checked.fleet, undefined);
    const ref = checked.findings.find((f) => f.code === "SECRET_REF_UNRESOLVED");
    assert.equal(ref?.line, 3);
    assert.match(ref?.message ?? "", /OPAMP_GITOPS_SECRET_NOT_SET_HERE is not set/);
    const missing = checked.findings.find((f) => f.code === "PACKAGE_NOT_IN_STORE");
    assert.equal(missing?.line, 5);
    const fine = checkBundles(
      report,
      snap,
      { env: { OPAMP_GITOPS_SECRET_NOT_SET_HERE: "x" } },
      undefined,
    );
    assert.match(
      fine.findings.find((f) => f.code === "PACKAGE_NOT_IN_STORE")?.message ?? "",
      /needs --package-dir and --advertise-url/,
    );
  });
});

describe("secret references", () => {
  test("env and file references resolve; a missing one names itself", () => {
    const dir = tempDir("opamp-gitops-refs-");
    const X = "OPAMP_GITOPS_SECRET_X";
    const policy = { envPrefix: "OPAMP_GITOPS_SECRET_", dir };
    mkdirSync(join(dir, "sub"));
    writeFileSync(join(dir, "token"), "from-file\n");
    assert.equal(
      resolveRefs(`a \${env:${X}} b \${file:${join(dir, "token")}}`, { env: { [X]: "1" }, policy }),
      "a 1 b from-file",
    );
    assert.throws(
      () => resolveRefs(`\${env:OPAMP_GITOPS_SECRET_NOPE}`, { env: {} }),
      (e) => e instanceof SecretRefError && e.code === "SECRET_REF_UNRESOLVED",
    );
    assert.throws(
      () => resolveRefs(`\${file:${join(dir, "absent")}}`, { env: {}, policy }),
      (e) =>
        e instanceof SecretRefError &&
        e.code === "SECRET_REF_UNRESOLVED" &&
        /cannot read/.test(e.message) &&
        !/ENOENT/.test(e.message),
    );
    // The file is under the secret folder, yet no directory and nothing past 64 KiB is read.
    writeFileSync(join(dir, "huge"), Buffer.alloc(MAX_SECRET_FILE_BYTES + 1, 0x61));
    assert.throws(
      () => resolveRefs(`\${file:${join(dir, "sub")}}`, { env: {}, policy }),
      /not a regular file/,
    );
    assert.throws(
      () => resolveRefs(`\${file:${join(dir, "huge")}}`, { env: {}, policy }),
      (e) => e instanceof SecretRefError && /65537 bytes, more than 65536/.test(e.message),
    );
    const t = resolveTelemetry(
      {
        logs: {
          endpoint: "https://l",
          headers: { A: `\${env:${X}}` },
          tls: { ca: `\${env:${X}}` },
        },
      },
      { env: { [X]: "v" } },
    );
    assert.deepEqual(t.logs, { endpoint: "https://l", headers: { A: "v" }, tls: { ca: "v" } });
  });
});

describe("offers and verdicts", () => {
  const agent = (caps: bigint) => {
    const a = emptyAgentState("u", "websocket", 0);
    a.capabilities = caps;
    return a;
  };
  const PKG_CAPS = AgentCapabilities.AcceptsPackages | AgentCapabilities.ReportsPackageStatuses;
  const offer = { ...pkg, url: "https://x/p" };

  test("own telemetry goes only to agents that report that signal, under one hash", () => {
    const desired = {
      telemetry: { metrics: { endpoint: "https://m" }, logs: { endpoint: "https://l" } },
    };
    assert.equal(connectionSettingsFor(agent(0n), desired, undefined), undefined);
    const o = connectionSettingsFor(agent(AgentCapabilities.ReportsOwnMetrics), desired, undefined);
    assert.equal(o?.ownMetrics?.destinationEndpoint, "https://m");
    assert.equal(o?.ownLogs, undefined);
    assert.equal(o?.opamp, undefined);
    const rotated = connectionSettingsFor(
      agent(AgentCapabilities.ReportsOwnMetrics),
      { telemetry: { metrics: { endpoint: "https://m", headers: { A: "new" } } } },
      undefined,
    );
    assert.notDeepEqual(rotated?.hash, o?.hash);
  });

  test("a credential and own telemetry share one offer; its hash covers both", () => {
    const caps =
      AgentCapabilities.ReportsOwnMetrics | AgentCapabilities.AcceptsOpAMPConnectionSettings;
    const desired = {
      heartbeatIntervalSeconds: 30,
      telemetry: { metrics: { endpoint: "https://m" } },
    };
    const advertised = { url: "wss://opamp.example/v1/opamp", ca: "SERVER-CA" };
    const cert = { cert: Buffer.from("CERT"), caCert: Buffer.from("AGENT-CA") };
    const a = connectionSettingsFor(agent(caps), desired, advertised, {
      id: "40",
      certificate: cert,
    });
    assert.equal(a?.ownMetrics?.destinationEndpoint, "https://m");
    assert.deepEqual(a?.opamp?.certificate, cert);
    assert.equal(a?.opamp?.tls?.caPemContents, "SERVER-CA");
    const hex = (o: { hash: Uint8Array } | undefined) => Buffer.from(o?.hash ?? []).toString("hex");
    const rotated = connectionSettingsFor(agent(caps), desired, advertised, {
      id: "41",
      certificate: cert,
    });
    const plain = connectionSettingsFor(agent(caps), desired, advertised);
    const other = connectionSettingsFor(
      agent(caps),
      { ...desired, telemetry: { metrics: { endpoint: "https://m2" } } },
      advertised,
      { id: "40", certificate: cert },
    );
    assert.equal(new Set([hex(a), hex(rotated), hex(plain), hex(other)]).size, 4);
    // Already offered: nothing to send until either part changes.
    const offered = agent(caps);
    offered.offeredSettingsHash = hex(a);
    assert.equal(
      connectionSettingsOffer(offered, desired, advertised, { id: "40", certificate: cert }),
      undefined,
    );
    assert.ok(
      connectionSettingsOffer(offered, desired, advertised, { id: "41", certificate: cert }),
    );
  });

  test("packages are offered once per all-packages hash, only to agents that accept them", () => {
    assert.equal(packagesOffer(agent(0n), [offer], null), undefined);
    const a = agent(PKG_CAPS);
    const p = packagesOffer(a, [offer], null);
    const all = allPackagesHash([offer]);
    assert.equal(Buffer.from(p?.allPackagesHash ?? []).toString("hex"), all);
    assert.equal(Buffer.from(p?.packages.plugin?.file.contentHash ?? []).toString("hex"), SHA);
    assert.equal(packagesOffer(a, [offer], all), undefined);
    a.packageStatuses = { serverProvidedAllPackagesHash: Buffer.from(all, "hex") };
    assert.equal(packagesOffer(a, [offer], null), undefined);
    assert.equal(packagesOffer(agent(PKG_CAPS), [], null), undefined);
  });

  test("the verdict: any part FAILED fails; all applicable parts APPLIED applies", () => {
    const all = allPackagesHash([offer]);
    const a = agent(AgentCapabilities.AcceptsRemoteConfig | PKG_CAPS);
    a.remoteConfigStatus = { lastRemoteConfigHash: Buffer.from(CONFIG, "hex"), status: 1 };
    const want = {
      configHash: CONFIG,
      telemetryDue: false,
      packages: [offer],
      allPackagesHash: all,
    };
    assert.equal(bundleReport(a, want).status, "APPLYING");
    a.packageStatuses = {
      serverProvidedAllPackagesHash: Buffer.from(all, "hex"),
      packages: { plugin: { status: 3, errorMessage: "sha256 mismatch" } },
    };
    const failed = bundleReport(a, want);
    assert.equal(failed.status, "FAILED");
    assert.match(failed.error ?? "", /package plugin 1\.0\.0: sha256 mismatch/);
    a.packageStatuses = {
      serverProvidedAllPackagesHash: Buffer.from(all, "hex"),
      packages: { plugin: { status: 0, agentHasVersion: "1.0.0" } },
    };
    assert.deepEqual(bundleReport(a, want), {
      status: "APPLIED",
      parts: { config: "APPLIED", telemetry: "N/A", packages: "APPLIED" },
    });
    const cs = agent(
      AgentCapabilities.AcceptsRemoteConfig |
        AgentCapabilities.ReportsOwnMetrics |
        AgentCapabilities.ReportsConnectionSettingsStatus,
    );
    cs.remoteConfigStatus = a.remoteConfigStatus;
    cs.connectionSettingsStatus = {
      lastConnectionSettingsHash: Buffer.from("cc", "hex"),
      status: 3,
      errorMessage: "bad endpoint",
    };
    const r = bundleReport(cs, {
      configHash: CONFIG,
      settingsHash: "cc",
      telemetryDue: true,
      packages: [],
    });
    assert.equal(r.status, "FAILED");
    assert.match(r.error ?? "", /connection settings: bad endpoint/);
  });
});

describe("package files served with ranges", () => {
  test("parseRange", () => {
    assert.deepEqual(parseRange("bytes=0-9", 100), [0, 9]);
    assert.deepEqual(parseRange("bytes=90-", 100), [90, 99]);
    assert.deepEqual(parseRange("bytes=-10", 100), [90, 99]);
    assert.deepEqual(parseRange("bytes=95-200", 100), [95, 99]);
    assert.equal(parseRange("bytes=100-", 100), "unsatisfiable");
    assert.equal(parseRange("bytes=0-1,5-6", 100), undefined);
    assert.equal(parseRange(undefined, 100), undefined);
  });

  test("whole file, a range, an unsatisfiable range, an unknown file", async () => {
    const dir = tempDir("opamp-gitops-serve-");
    const body = Buffer.from("0123456789abcdef");
    const sha = createHash("sha256").update(body).digest("hex");
    writeFileSync(join(dir, "plugin.tar.gz"), body);
    const store = new PackageStore(dir);
    await store.index();
    const { createServer } = await import("node:http");
    const server = createServer((req, res) => serveDownload(req, res, store));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const get = (path: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>(
        (resolve, reject) => {
          request({ port, host: "127.0.0.1", path, headers }, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c) => chunks.push(c));
            res.on("end", () =>
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                body: Buffer.concat(chunks),
              }),
            );
          })
            .on("error", reject)
            .end();
        },
      );
    try {
      const whole = await get(`/packages/${sha}`);
      assert.equal(whole.status, 200);
      assert.equal(whole.headers["content-length"], "16");
      assert.deepEqual(whole.body, body);
      const part = await get(`/packages/${sha}`, { Range: "bytes=4-7" });
      assert.equal(part.status, 206);
      assert.equal(part.headers["content-range"], "bytes 4-7/16");
      assert.equal(part.headers["content-length"], "4");
      assert.equal(part.body.toString(), "4567");
      const tail = await get(`/packages/${sha}`, { Range: "bytes=-3" });
      assert.equal(tail.body.toString(), "def");
      assert.equal((await get(`/packages/${sha}`, { Range: "bytes=16-" })).status, 416);
      assert.equal((await get(`/packages/${"0".repeat(64)}`)).status, 404);
      assert.equal((await get("/packages/../etc/passwd")).status, 404);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
