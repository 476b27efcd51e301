/**
 * `plan` and `validate` judge secret references with the policy serve resolves them with: the
 * same `--secret-env-prefix` / `--secret-dir` flags, their OPAMP_GITOPS_* variables and the
 * `--settings` file, with serve's precedence. A custom prefix accepts `${env:MYPREFIX_X}` and
 * refuses the default-prefix reference, as serve would; the policy computed for plan is the
 * one serve's settings hold.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { Plan } from "../../src/commands/plan-model.js";
import { runValidate } from "../../src/commands/validate.js";
import { resolveSettings, secretRefSettings } from "../../src/settings.js";
import { run } from "../helpers/cli.js";
import { tempDir } from "../sync/helpers/git-repo.js";
import { baseRepo, EDGE, plan } from "./helpers.js";

/** edge's group.yaml sending its metrics with a header taken from `ref`. */
const edgeWith = (ref: string) => `${EDGE}telemetry:
  metrics:
    endpoint: https://otlp.example.com/v1/metrics
    headers: {x-api-key: "${ref}"}
`;

const refused = (p: Plan | undefined) =>
  (p?.groups ?? [])
    .flatMap((g) => g.findings)
    .filter((f) => f.code === "SECRET_REF_REFUSED")
    .map((f) => f.file);

describe("plan and validate use serve's secret-reference policy", () => {
  test("a custom prefix, by flag, variable or settings file: its reference passes, the default one is refused", async () => {
    const r = baseRepo();
    r.write("groups/edge/group.yaml", edgeWith(`\${env:MYPREFIX_X}`));
    r.commit("edge sends metrics with a MYPREFIX_ key");
    const settingsFile = join(tempDir(), "settings.yaml");
    writeFileSync(settingsFile, "secretEnvPrefix: MYPREFIX_\n");

    // No policy given: serve's default prefix (OPAMP_GITOPS_SECRET_) refuses it.
    const byDefault = await plan({ repo: r.dir });
    assert.equal(byDefault.code, 1, byDefault.err);
    assert.deepEqual(refused(byDefault.plan), ["groups/edge/group.yaml"]);

    for (const [how, opts, env] of [
      ["flag", { secretEnvPrefix: "MYPREFIX_" }, {}],
      ["variable", {}, { OPAMP_GITOPS_SECRET_ENV_PREFIX: "MYPREFIX_" }],
      ["settings flag", { settings: settingsFile }, {}],
      ["settings variable", {}, { OPAMP_GITOPS_SETTINGS: settingsFile }],
    ] as const) {
      const run = await plan({ repo: r.dir, ...opts }, { ...env });
      assert.equal(run.code, 0, `${how}: ${run.err}${JSON.stringify(refused(run.plan))}`);
      assert.deepEqual(refused(run.plan), [], how);
    }
    // The flag wins over the variable, as with serve.
    const flagWins = await plan(
      { repo: r.dir, secretEnvPrefix: "OTHER_" },
      { OPAMP_GITOPS_SECRET_ENV_PREFIX: "MYPREFIX_" },
    );
    assert.equal(flagWins.code, 1);

    // The default-prefix reference is refused under the custom prefix.
    r.write("groups/edge/group.yaml", edgeWith(`\${env:OPAMP_GITOPS_SECRET_X}`));
    r.commit("back to the default prefix");
    assert.equal((await plan({ repo: r.dir })).code, 0);
    const custom = await plan({ repo: r.dir, secretEnvPrefix: "MYPREFIX_" });
    assert.equal(custom.code, 1);
    assert.deepEqual(refused(custom.plan), ["groups/edge/group.yaml"]);

    // The command line passes the flags through.
    const args = ["plan", "--repo", r.dir, "--base", "HEAD~1", "--head", "HEAD"];
    const cli = await run([...args, "--secret-env-prefix", "MYPREFIX_"]).exited;
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stdout, /SECRET_REF_REFUSED/);
    assert.equal((await run(args).exited).code, 0);

    // A prefix serve would refuse to start with is a usage error, not a silent default.
    const bad = await plan({ repo: r.dir, secretEnvPrefix: "MY-PREFIX" });
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--secret-env-prefix/);
  });

  test("validate reads the same variables and settings file", async () => {
    const r = baseRepo();
    r.write("groups/edge/group.yaml", edgeWith(`\${env:MYPREFIX_X}`));
    const sink = () => {
      let text = "";
      const write = (s: string) => {
        text += s;
        return true;
      };
      const out = { write } as NodeJS.WritableStream;
      return { out, text: () => text };
    };
    const a = sink();
    assert.equal(await runValidate(r.dir, { format: "json", strict: false }, a.out, {}), 1);
    assert.match(a.text(), /SECRET_REF_REFUSED/);
    const b = sink();
    const env = { OPAMP_GITOPS_SECRET_ENV_PREFIX: "MYPREFIX_" };
    assert.equal(await runValidate(r.dir, { format: "json", strict: false }, b.out, env), 0);
    const c = sink();
    const opts = { format: "json", strict: false, secretEnvPrefix: "MY-PREFIX" } as const;
    assert.equal(await runValidate(r.dir, opts, c.out, {}), 2);
  });

  test("the policy plan computes is the one serve's settings hold", () => {
    const dir = tempDir();
    mkdirSync(join(dir, "secrets"));
    const file = join(dir, "settings.yaml");
    // A relative folder in a settings file is relative to the file, for both.
    writeFileSync(
      file,
      "secretDir: secrets\nsecretEnvPrefix: MYPREFIX_\ngitTokenEnv: MYPREFIX_GIT\n",
    );
    const cases: Array<[Record<string, string>, NodeJS.ProcessEnv]> = [
      [{}, {}],
      [{ secretEnvPrefix: "MYPREFIX_" }, {}],
      [{}, { OPAMP_GITOPS_SECRET_ENV_PREFIX: "OPAMP_GITOPS_" }],
      [{ settings: file }, {}],
      [{ settings: file, secretEnvPrefix: "ELSE_" }, { OPAMP_GITOPS_SECRET_DIR: dir }],
    ];
    for (const [flags, env] of cases) {
      const served = resolveSettings({ ...flags, stateDir: join(dir, "state") }, env).secretRefs;
      assert.deepEqual(secretRefSettings(flags, env), served, JSON.stringify([flags, env]));
    }
    const fromFile = secretRefSettings({ settings: file }, {});
    assert.equal(fromFile.dir, join(dir, "secrets"));
    assert.deepEqual(fromFile.reserved, ["MYPREFIX_GIT"]);
  });
});
