/**
 * Loading what users write: every bad input yields the error a user sees, with file, line,
 * column, a stable code and an actionable message.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { loadYaml } from "../../src/validate/index.js";
import { assertFinding, COLLECTOR_YAML, GROUP_YAML, only, validateFiles } from "./helpers.js";

const enc = (s: string) => new TextEncoder().encode(s);

describe("YAML loading", () => {
  test("an alias bomb is refused quickly, without being expanded", async () => {
    const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 10; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      lines.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(",")}]`);
    }
    const bomb = `${lines.join("\n")}\n`;
    // 9^9 nodes if expanded: an expanding loader would not finish within the test's timeout.
    const report = await validateFiles({
      "groups/edge/group.yaml": GROUP_YAML,
      "groups/edge/collector.yaml": bomb,
    });
    assertFinding(only(report, "YAML_ALIAS_EXPANSION"), {
      file: "groups/edge/collector.yaml",
      line: 6,
      column: 8,
      severity: "error",
      code: "YAML_ALIAS_EXPANSION",
      message: /expand this file by more than 100000 nodes .*alias bomb/,
    });
    assert.equal(report.fleet, undefined);
  });

  test("too many aliases are refused with the position of the first one over the limit", () => {
    const src = `x: &x 1\nlist: [${Array(1001).fill("*x").join(", ")}]\n`;
    const r = loadYaml(enc(src), "f.yaml");
    assert.equal(r.yaml, undefined);
    assertFinding(r.findings[0], {
      file: "f.yaml",
      line: 2,
      column: 8 + 4 * 1000,
      code: "YAML_TOO_MANY_ALIASES",
      message: "more than 1000 aliases",
    });
  });

  test("a 10 MB file is refused with its size, before parsing", async () => {
    const big = new Uint8Array(10 * 1024 * 1024).fill(0x61);
    const report = await validateFiles({
      "groups/edge/group.yaml": GROUP_YAML,
      "groups/edge/collector.yaml": big,
    });
    assertFinding(only(report, "YAML_FILE_TOO_LARGE"), {
      file: "groups/edge/collector.yaml",
      line: 1,
      column: 1,
      severity: "error",
      code: "YAML_FILE_TOO_LARGE",
      message: "the file is 10.0 MiB (10485760 bytes); the limit is 1.0 MiB",
    });
    assert.deepEqual(only(report, "YAML_FILE_TOO_LARGE").data, { size: 10485760, limit: 1048576 });
  });

  test("a duplicate key is reported where the second one is, naming the first", async () => {
    const src = COLLECTOR_YAML.replace(
      "processors:\n  batch:\n",
      "processors:\n  batch:\n  memory_limiter:\n  batch:\n",
    );
    const report = await validateFiles({
      "groups/edge/group.yaml": GROUP_YAML,
      "groups/edge/collector.yaml": src,
    });
    assertFinding(only(report, "YAML_DUPLICATE_KEY"), {
      file: "groups/edge/collector.yaml",
      line: 9,
      column: 3,
      severity: "error",
      code: "YAML_DUPLICATE_KEY",
      message: 'key "batch" appears twice in the same mapping (first at line 7)',
    });
  });

  test("duplicate keys of a large flat mapping are each found (linear check); merge keys may repeat", async () => {
    const { loadYamlText } = await import("../../src/validate/yaml.js");
    const lines = Array.from({ length: 20_000 }, (_, i) => `key${i}: v`); // ~230 KiB
    lines.push("key17: again", "key19999: again", "nested:", "  <<: {a: 1}", "  <<: {b: 2}");
    lines.push("  x: 1", "  x: 2", "'1': string", "1: number");
    const loaded = loadYamlText(`${lines.join("\n")}\n`, "big.yaml");
    const dups = loaded.findings.filter((f) => f.code === "YAML_DUPLICATE_KEY");
    assert.deepEqual(
      dups.map((f) => [f.line, f.data?.key, f.data?.firstLine]),
      [
        [20_001, "key17", 18],
        [20_002, "key19999", 20_000],
        [20_007, "x", 20_006],
      ],
    );
    assert.equal(loaded.yaml, undefined, "a file with duplicates is not loaded");
  });

  test("invalid UTF-8 is reported at the line and column of the bad byte", async () => {
    const bytes = new Uint8Array([...enc("receivers:\n  otlp:\n    x: caf"), 0xe9, ...enc("\n")]);
    const report = await validateFiles({
      "groups/edge/group.yaml": GROUP_YAML,
      "groups/edge/collector.yaml": bytes,
    });
    const f = only(report, "YAML_INVALID_UTF8");
    assertFinding(f, {
      file: "groups/edge/collector.yaml",
      line: 3,
      column: 11,
      severity: "error",
      code: "YAML_INVALID_UTF8",
      message: "byte 0xE9 at offset 29",
    });
  });

  test("several documents in one file are refused", () => {
    const r = loadYaml(enc("a: 1\n---\nb: 2\n"), "f.yaml");
    assertFinding(r.findings[0], {
      file: "f.yaml",
      line: 2,
      column: 1,
      code: "YAML_MULTIPLE_DOCUMENTS",
      message: "split it",
    });
  });

  test("a leading document marker alone is fine", () => {
    const r = loadYaml(enc("---\na: 1\n"), "f.yaml");
    assert.deepEqual(r.yaml?.value, { a: 1 });
  });

  test("a tab used for indentation is reported with its position", () => {
    const r = loadYaml(enc("receivers:\n  receiver:\n\t  field: val\n"), "f.yaml");
    assertFinding(r.findings[0], {
      file: "f.yaml",
      line: 3,
      column: 1,
      code: "YAML_TAB_INDENT",
      message: "replace the tab with spaces",
    });
  });

  test("a syntax error carries the parser's explanation and position", () => {
    const r = loadYaml(enc("a:\n  - x\n   b: 1\n"), "f.yaml");
    assert.equal(r.yaml, undefined);
    assertFinding(r.findings[0], {
      file: "f.yaml",
      line: 2,
      column: 5,
      code: "YAML_SYNTAX",
      message: "YAML syntax error: Implicit keys need to be on a single line",
    });
  });

  test("a recursive alias is refused", () => {
    const r = loadYaml(enc("a: &a\n  b: *a\n"), "f.yaml");
    assert.equal(r.yaml, undefined);
    assert.ok(
      r.findings.some((f) => f.code === "YAML_RECURSIVE_ALIAS" || f.code === "YAML_SYNTAX"),
      JSON.stringify(r.findings),
    );
  });

  test("anchors, aliases and merge keys within limits load", () => {
    const r = loadYaml(enc("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n"), "f.yaml");
    assert.deepEqual(r.yaml?.value, { base: { x: 1, y: 2 }, other: { x: 1, y: 3 } });
    assert.deepEqual(r.yaml?.locate(["other", "x"]), { line: 1, column: 14 });
  });

  test("JSON (tabs included) loads as YAML", () => {
    const r = loadYaml(enc('{\n\t"a": [1,\n\t\t2]\n}\n'), "f.json");
    assert.deepEqual(r.yaml?.value, { a: [1, 2] });
  });

  test("a path maps to the line and column of its node, or of its key", () => {
    const r = loadYaml(enc(COLLECTOR_YAML), "c.yaml");
    const doc = r.yaml;
    assert.ok(doc);
    assert.deepEqual(doc.locate(["service", "pipelines", "traces", "exporters", 0]), {
      line: 18,
      column: 19,
    });
    assert.deepEqual(doc.locate(["exporters", "otlp/tempo"], { key: true }), {
      line: 9,
      column: 3,
    });
    assert.deepEqual(doc.locate(["exporters", "otlp/tempo", "endpoint"]), { line: 10, column: 15 });
    // A path leaving the document stops at the deepest node on it.
    assert.deepEqual(doc.locate(["exporters", "otlp/tempo", "nope", "deeper"]), {
      line: 10,
      column: 5,
    });
    assert.deepEqual(doc.locate([]), { line: 1, column: 1 });
  });

  test("an empty file loads as null", () => {
    assert.equal(loadYaml(enc(""), "f.yaml").yaml?.value, null);
    assert.equal(loadYaml(enc("# only a comment\n"), "f.yaml").yaml?.value, null);
  });
});
