/**
 * What `opamp-gitops validate` prints and returns: text, json and GitHub annotations; exit
 * codes 0 (valid), 1 (errors, or warnings with --strict), 2 (usage).
 */
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { PassThrough } from "node:stream";
import { describe, test } from "node:test";
import { runValidate } from "../../src/commands/validate.js";
import { formatReport } from "../../src/validate/index.js";
import { COLLECTOR_YAML, fixtureRepo, GROUP_YAML } from "./helpers.js";

/** Runs the command from `cwd` (default: the folder itself, as a CI job at the repository root does). */
async function run(dir: string, format: "text" | "json" | "github", strict = false, cwd = dir) {
  const out = new PassThrough();
  let text = "";
  out.on("data", (d) => (text += d));
  const before = process.cwd();
  let code: number;
  // try/finally, not defer: the working directory is restored before the caller goes on.
  try {
    process.chdir(existsSync(cwd) && statSync(cwd).isDirectory() ? cwd : before);
    code = await runValidate(cwd === dir ? "." : relative(cwd, dir), { format, strict }, out);
  } finally {
    process.chdir(before);
  }
  return { code, text };
}

const BROKEN = {
  "groups/edge/group.yaml": GROUP_YAML,
  "groups/edge/collector.yaml": COLLECTOR_YAML.replace(
    "exporters: [otlp/tempo]",
    "exporters: [otlp/tmepo]",
  ).replace("exporters:\n", "exporters:\n  debug:\n"),
};

describe("validate command", () => {
  test("text: errors, then warnings, then a summary; exit 1", async () => {
    const { code, text } = await run(await fixtureRepo(BROKEN), "text");
    assert.equal(code, 1);
    const lines = text.trimEnd().split("\n");
    assert.deepEqual(lines.slice(0, 1), [
      'groups/edge/collector.yaml:19:19 OTELCOL_UNDEFINED_COMPONENT pipeline traces uses exporter "otlp/tmepo", which is not defined; did you mean "otlp/tempo"?',
    ]);
    assert.match(
      lines[1] ?? "",
      /^groups\/edge\/collector\.yaml:9:3 warning OTELCOL_UNUSED_COMPONENT exporter "debug"/,
    );
    assert.equal(lines.at(-1), "1 group, 1 error, 2 warnings: invalid");
  });

  test("json: a stable shape for scripts", async () => {
    const { code, text } = await run(await fixtureRepo(BROKEN), "json");
    assert.equal(code, 1);
    const report = JSON.parse(text);
    assert.deepEqual(Object.keys(report), [
      "version",
      "valid",
      "errors",
      "warnings",
      "groups",
      "findings",
    ]);
    assert.equal(report.version, 1);
    assert.equal(report.valid, false);
    assert.deepEqual(report.groups, ["edge"]);
    assert.deepEqual(Object.keys(report.findings[0]), [
      "file",
      "line",
      "column",
      "severity",
      "code",
      "message",
      "data",
    ]);
    assert.equal(report.findings[0].code, "OTELCOL_UNDEFINED_COMPONENT");
  });

  test("github: workflow commands annotate the files, with escaped properties", async () => {
    const { text } = await run(await fixtureRepo(BROKEN), "github");
    const lines = text.trimEnd().split("\n");
    assert.equal(
      lines[0],
      '::error file=groups/edge/collector.yaml,line=19,col=19,title=OTELCOL_UNDEFINED_COMPONENT::pipeline traces uses exporter "otlp/tmepo", which is not defined; did you mean "otlp/tempo"?',
    );
    assert.match(
      lines[1] ?? "",
      /^::warning file=groups\/edge\/collector\.yaml,line=9,col=3,title=OTELCOL_UNUSED_COMPONENT::/,
    );
  });

  test("a valid repository exits 0; warnings fail only with --strict", async () => {
    const clean = await fixtureRepo({
      "groups/edge/group.yaml": GROUP_YAML,
      "groups/edge/collector.yaml": COLLECTOR_YAML,
    });
    assert.deepEqual(await run(clean, "text"), {
      code: 0,
      text: "1 group, 0 errors, 0 warnings: valid\n",
    });
    const warned = await fixtureRepo({
      "groups/edge/group.yaml": GROUP_YAML,
      "groups/edge/collector.yaml": COLLECTOR_YAML.replace(
        "exporters:\n",
        "exporters:\n  debug:\n",
      ),
    });
    assert.equal((await run(warned, "text")).code, 0);
    const strict = await run(warned, "text", true);
    assert.equal(strict.code, 1);
    assert.match(strict.text, /1 warning: invalid \(--strict: warnings fail\)\n$/);
  });

  test("run on a sub-folder, paths are given from the current folder", async () => {
    const dir = await fixtureRepo(
      Object.fromEntries(Object.entries(BROKEN).map(([k, v]) => [`fleet/${k}`, v])),
    );
    const { code, text } = await run(join(dir, "fleet"), "github", false, dir);
    assert.equal(code, 1);
    assert.match(text, /^::error file=fleet\/groups\/edge\/collector\.yaml,line=19,col=19,/);
  });

  test("a folder that does not exist, or a file, is a usage error (exit 2)", async () => {
    const dir = await fixtureRepo({});
    const missing = await run(join(dir, "nope"), "text", false, dir);
    assert.equal(missing.code, 2);
    assert.match(missing.text, /nope does not exist/);
    await writeFile(join(dir, "file"), "x");
    const file = await run(join(dir, "file"), "text", false, dirname(join(dir, "file")));
    assert.equal(file.code, 2);
    assert.match(file.text, /is not a directory/);
  });

  test("github: commas, colons, percent signs and newlines are escaped", () => {
    const text = formatReport(
      {
        errors: 1,
        warnings: 0,
        findings: [
          {
            file: "groups/a,b:c/x.yaml",
            line: 2,
            column: 3,
            severity: "error",
            code: "X",
            message: "100% sure\nnext line",
          },
        ],
      },
      "github",
    );
    assert.equal(
      text.split("\n")[0],
      "::error file=groups/a%2Cb%3Ac/x.yaml,line=2,col=3,title=X::100%25 sure%0Anext line",
    );
  });

  test("group.yaml that is not a mapping says what is expected", async () => {
    const dir = await fixtureRepo({
      "groups/edge/group.yaml": "- selector\n",
      "groups/edge/c.yaml": COLLECTOR_YAML,
    });
    const { text } = await run(dir, "text");
    assert.match(
      text,
      /^groups\/edge\/group\.yaml:1:1 SCHEMA_INVALID_VALUE the file is a list; expected a mapping with selector and, optionally, priority/,
    );
  });
});
