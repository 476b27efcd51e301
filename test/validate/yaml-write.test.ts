/** Generated YAML (status files) reads back to what was written, whatever agents put in keys. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadYaml } from "../../src/validate/index.js";
import { stringifyYaml } from "../../src/validate/yaml-write.js";

test("status YAML round-trips, a merge-looking key included", () => {
  const value = {
    "<<": "agent attribute",
    nested: { "<<": [1, 2], "*alias": "&anchor", "": "empty key" },
    long: "word ".repeat(60),
    multi: "line one\nline two\n",
    numbers: ["010", "1e3", "true", "null", "~"],
  };
  const text = stringifyYaml(value);
  assert.match(text, /^"<<": agent attribute$/m);
  const loaded = loadYaml(Buffer.from(text), "status/agents/x.yaml");
  assert.deepEqual(loaded.findings, []);
  assert.deepEqual(loaded.yaml?.value, value);
  assert.equal(stringifyYaml(value), text, "deterministic");
});
