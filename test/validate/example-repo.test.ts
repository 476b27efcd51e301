/** examples/repo, the example fleet of the README, validates cleanly (no error, no warning). */
import assert from "node:assert/strict";
import { dirname, resolve } from "node:path";
import { PassThrough } from "node:stream";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { runValidate } from "../../src/commands/validate.js";
import { readWorkingTree, validateSnapshot } from "../../src/validate/index.js";

const example = resolve(dirname(fileURLToPath(import.meta.url)), "../../../examples/repo");

describe("examples/repo", () => {
  test("validates without errors or warnings, and every group has a spec", async () => {
    const read = await readWorkingTree(example);
    const report = await validateSnapshot(read.snapshot, { findings: read.findings });
    assert.deepEqual(report.findings, []);
    assert.deepEqual(
      [...(report.fleet?.groups.keys() ?? [])],
      [...read.snapshot.groups.keys()].sort(),
    );
    assert.ok((report.fleet?.groups.size ?? 0) >= 3);
    for (const group of report.fleet?.groups.values() ?? [])
      assert.match(group.configHash, /^[0-9a-f]{64}$/);
  });

  test("passes `validate --strict`", async () => {
    const sink = new PassThrough();
    const chunks: string[] = [];
    sink.on("data", (d) => {
      chunks.push(String(d));
    });
    assert.equal(
      await runValidate(example, { format: "text", strict: true }, sink),
      0,
      chunks.join(""),
    );
  });
});
