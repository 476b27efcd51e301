/**
 * The secret reference policy (--secret-env-prefix, --secret-dir): a repository writer chooses
 * both the reference and the endpoint its value goes to, so no other variable or file of the
 * service's host may be resolved. The PR gate refuses what it can judge from the text (an
 * unprefixed name, a path outside the folder, `..` leaving it, any file without a folder) as
 * an error on the line that holds it; the service also resolves symlinks before reading, and
 * its rollout check keeps the last good bundle when a reference is refused there.
 */
import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { checkBundles } from "../../src/service/bundle-check.js";
import { readSecretFile } from "../../src/service/secret-file.js";
import { SecretRefError } from "../../src/service/secret-ref-error.js";
import { resolveRefs } from "../../src/service/secret-refs.js";
import { resolveSettings } from "../../src/settings.js";
import { type SecretRefPolicy, validateSnapshot } from "../../src/validate/index.js";
import type { RepositorySnapshot } from "../../src/validate/model.js";
import { tempDir } from "../sync/helpers/git-repo.js";

const PREFIX = "OPAMP_GITOPS_SECRET_";

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

/** A secret folder holding `token`, beside a host secret outside it. */
function host() {
  const root = tempDir("opamp-gitops-secrets-");
  const dir = join(root, "secrets");
  mkdirSync(dir);
  writeFileSync(join(dir, "token"), "allowed\n");
  writeFileSync(join(root, "host-secret"), "must-not-leave\n");
  symlinkSync(join(root, "host-secret"), join(dir, "link-out"));
  symlinkSync(join(dir, "token"), join(dir, "link-in"));
  return { root, dir, policy: { envPrefix: PREFIX, dir } as SecretRefPolicy };
}

const refused = (e: unknown) =>
  e instanceof SecretRefError &&
  e.code === "SECRET_REF_REFUSED" &&
  !/must-not-leave/.test(e.message);

describe("secret reference policy", () => {
  test("the service resolves only prefixed variables and real paths under --secret-dir", () => {
    const { root, dir, policy } = host();
    const env = { [`${PREFIX}TOKEN`]: "t", HOME: "/root", AWS_SECRET_ACCESS_KEY: "k" };
    const resolve = (value: string, p: SecretRefPolicy = policy) =>
      resolveRefs(value, { env, policy: p });
    assert.equal(resolve(`\${env:${PREFIX}TOKEN}`), "t");
    assert.equal(resolve(`\${file:${dir}/token}`), "allowed");
    assert.equal(resolve(`\${file:${dir}/link-in}`), "allowed", "a symlink inside stays inside");
    for (const ref of [
      `\${env:AWS_SECRET_ACCESS_KEY}`, // no prefix
      `\${env:HOME}`,
      `\${file:${dir}/../host-secret}`, // ../ out of the folder
      `\${file:${dir}/link-out}`, // a symlink out of it
      `\${file:${root}/host-secret}`, // an absolute path outside
      `\${file:/etc/passwd}`,
    ])
      assert.throws(() => resolve(ref), refused, ref);
    // Without --secret-dir no file is read at all.
    assert.throws(
      () => resolve(`\${file:${dir}/token}`, { envPrefix: PREFIX }),
      (e) => refused(e) && /--secret-dir/.test((e as Error).message),
    );
    // The prefix is a setting.
    assert.equal(resolve(`\${env:HOME}`, { envPrefix: "HO" }), "/root");
  });

  test("the PR gate reports each refused reference as an error on its line", async () => {
    const { root, dir, policy } = host();
    const yaml = `selector: {match: {a: b}}
telemetry:
  metrics: {endpoint: "https://m", headers: {Authorization: "Bearer \${env:HOME}"}}
  logs: {endpoint: "https://l", headers: {X-Token: "\${file:${dir}/../host-secret}"}}
  traces: {endpoint: "https://t", tls: {ca: "\${file:${root}/host-secret}"}}
`;
    const report = await validateSnapshot(snapshot(yaml), { secretRefs: policy });
    const found = report.findings
      .filter((f) => f.code === "SECRET_REF_REFUSED")
      .map((f) => `${f.file}:${f.line}:${f.severity}`);
    assert.deepEqual(found.sort(), [
      "groups/edge/group.yaml:3:error",
      "groups/edge/group.yaml:4:error",
      "groups/edge/group.yaml:5:error",
    ]);
    assert.equal(report.fleet, undefined, "nothing of this commit is served");
    // Allowed references pass; with the default policy (no folder) any file reference is refused.
    const fine = `selector: {match: {a: b}}
telemetry:
  metrics: {endpoint: "https://m", headers: {Authorization: "Bearer \${env:${PREFIX}T}"}, tls: {ca: "\${file:${dir}/token}"}}
`;
    assert.equal((await validateSnapshot(snapshot(fine), { secretRefs: policy })).errors, 0);
    const byDefault = await validateSnapshot(snapshot(fine));
    assert.deepEqual(
      byDefault.findings.filter((f) => f.severity === "error").map((f) => `${f.code}:${f.line}`),
      ["SECRET_REF_REFUSED:3"],
    );
    const message = byDefault.findings.find((f) => f.code === "SECRET_REF_REFUSED")?.message;
    assert.match(message ?? "", /--secret-dir/);
  });

  test("a symlink out of the folder passes the gate but is refused at rollout, on its line", async () => {
    const { dir, policy } = host();
    const snap = snapshot(`selector: {match: {a: b}}
telemetry:
  metrics: {endpoint: "https://m", headers: {X-Token: "\${file:${dir}/link-out}"}}
`);
    const report = await validateSnapshot(snap, { secretRefs: policy });
    assert.equal(report.errors, 0, "the gate cannot see the host's symlinks");
    const checked = checkBundles(report, snap, { env: {}, policy }, undefined);
    assert.equal(checked.fleet, undefined, "the commit is not served: the last good one stays");
    const f = checked.findings.find((x) => x.code === "SECRET_REF_REFUSED");
    assert.equal(f?.file, "groups/edge/group.yaml");
    assert.equal(f?.line, 3);
    assert.equal(f?.severity, "error");
    assert.match(f?.message ?? "", /outside the secret folder/);
  });

  test("settings: the default prefix and no folder; the folder is kept as its real path", () => {
    const { root, dir } = host();
    assert.deepEqual(resolveSettings({}, {}).secretRefs, {
      envPrefix: PREFIX,
      reserved: ["OPAMP_GITOPS_SECRET_DIR", "OPAMP_GITOPS_SECRET_ENV_PREFIX"],
    });
    symlinkSync(dir, join(root, "via-link"));
    const s = resolveSettings(
      { secretDir: join(root, "via-link") },
      { OPAMP_GITOPS_SECRET_ENV_PREFIX: "OTEL_HDR_" },
    );
    assert.deepEqual(s.secretRefs, { envPrefix: "OTEL_HDR_", dir });
    assert.throws(
      () => resolveSettings({ secretDir: join(root, "absent") }),
      /invalid setting --secret-dir/,
    );
    assert.throws(
      () => resolveSettings({ secretDir: join(dir, "token") }),
      /--secret-dir.*not a folder/,
    );
    assert.throws(
      () => resolveSettings({ secretEnvPrefix: "BAD-PREFIX" }),
      /secretEnvPrefix|--secret-env-prefix/,
    );
  });

  test("the service's own variables under the prefix are never resolved", async () => {
    // An operator naming the Git token variable under the prefix must not hand it out.
    const gitToken = `${PREFIX}GIT_TOKEN`;
    const env = {
      [gitToken]: "ghp_must-not-leave",
      OPAMP_GITOPS_SECRET_DIR: host().dir,
      OPAMP_GITOPS_GIT_TOKEN_ENV: gitToken,
      [`${PREFIX}T`]: "fine",
    };
    const { secretRefs: policy } = resolveSettings({}, env);
    for (const name of [gitToken, "OPAMP_GITOPS_SECRET_DIR", "OPAMP_GITOPS_SECRET_ENV_PREFIX"])
      assert.throws(
        () => resolveRefs(`\${env:${name}}`, { env, policy }),
        (e) => refused(e) && /reads .* itself/.test((e as Error).message),
        name,
      );
    assert.equal(resolveRefs(`\${env:${PREFIX}T}`, { env, policy }), "fine");
    // The PR gate refuses the service's own settings as well.
    const yaml = `selector: {match: {a: b}}
telemetry:
  metrics: {endpoint: "https://m", headers: {X-Dir: "\${env:OPAMP_GITOPS_SECRET_DIR}"}}
`;
    const report = await validateSnapshot(snapshot(yaml), { secretRefs: policy });
    assert.deepEqual(
      report.findings.filter((f) => f.code === "SECRET_REF_REFUSED").map((f) => f.line),
      [3],
    );
  });

  test("a folder swapped for a symlink after realpath does not lead out; messages reveal nothing", () => {
    const { root, dir, policy } = host();
    // As if `sub` was a folder when realpath ran, and a symlink out when the file was opened.
    symlinkSync(root, join(dir, "sub"));
    assert.throws(
      () => readSecretFile(join(dir, "sub", "host-secret"), dir),
      (e) => e instanceof SecretRefError && e.code === "SECRET_REF_REFUSED",
    );
    assert.equal(readSecretFile(join(dir, "token"), dir), "allowed\n");
    // Where a symlink leads and whether a file exists there stay on the service.
    const messageOf = (path: string): string => {
      try {
        resolveRefs(`\${file:${path}}`, { env: {}, policy });
      } catch (e) {
        return (e as Error).message.replaceAll(path, "<ref>");
      }
      return assert.fail(`${path} resolved`);
    };
    const messages = [`${dir}/link-out`, `${dir}/sub/host-secret`, `${dir}/sub/absent`].map(
      messageOf,
    );
    for (const m of messages) {
      assert.ok(!m.includes(`${root}/host-secret`) && !m.includes(`${root}host-secret`), m);
      assert.doesNotMatch(m, /ENOENT|EACCES|ELOOP/);
    }
    assert.equal(messages[1], messages[2], "an absent file out there reads like a present one");
  });
});
