/**
 * Status files are written one top-level section at a time, equal sections from memory
 * (src/status/section-yaml.ts): the text must be the whole-document YAML, byte for byte, or
 * every agent's file would change on the branch, and no two sections may be mixed up.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { agentStatus } from "../../src/status/agent-status.js";
import { renderStatusFile } from "../../src/status/render.js";
import { sectionYaml, sectionYamlStats } from "../../src/status/section-yaml.js";
import { stringifyYaml } from "../../src/validate/yaml-write.js";
import { fakeAgent, uidOf } from "./helpers.js";

const PLACEMENT = { group: "edge", desiredHash: "ab".repeat(32), desiredCommit: "cd".repeat(20) };

test("agents' status files written by section equal the whole-document YAML, from memory too", () => {
  const files = [0, 1, 2, 0].map(
    (n) => agentStatus(fakeAgent(uidOf(n), { reportedHash: "ab".repeat(32) }), PLACEMENT).file,
  );
  const hits = sectionYamlStats.hits;
  for (const file of files) {
    const value = file as unknown as Record<string, unknown>;
    assert.equal(sectionYaml(value), stringifyYaml(value));
    assert.equal(
      renderStatusFile("agent", file, "status/agents/edge/x.yaml").split("\n").slice(1).join("\n"),
      stringifyYaml(value),
    );
  }
  assert.ok(sectionYamlStats.hits > hits, "equal sections of other agents come from memory");
});

test("awkward values are written as the whole document writes them", () => {
  const values: Record<string, unknown>[] = [
    {},
    { a: {}, b: [], c: null, d: undefined, e: "x" },
    { "<<": 1, nested: { "<<": { "<<": [1, 2] } }, "": "empty key", "*alias": "&anchor" },
    { multi: "line one\nline two\n", trailing: "x\n\n", lead: "  x", colon: "a: b", hash: "x #y" },
    { look: ["true", "null", "~", "010", "1e3", "- dash", "#", "", "ünï – \u2028 \t"] },
    { long: "word ".repeat(200), deep: [[1, 2], [], {}, [{ z: [{ y: "" }] }]] },
  ];
  for (let round = 0; round < 2; round++)
    for (const value of values) assert.equal(sectionYaml(value), stringifyYaml(value));
});

test("sections JSON cannot tell apart are not taken for one another", () => {
  // JSON writes -0 as 0; YAML writes "-0".
  assert.equal(sectionYaml({ a: -0 }), "a: -0\n");
  assert.equal(sectionYaml({ a: 0 }), "a: 0\n");
  assert.equal(sectionYaml({ a: -0 }), "a: -0\n");
  // The same value under another key is another section.
  assert.equal(sectionYaml({ b: 0 }), "b: 0\n");
  // A Date is written by YAML as a timestamp, by JSON as its ISO string.
  const at = new Date(0);
  assert.equal(sectionYaml({ t: at.toISOString() }), stringifyYaml({ t: at.toISOString() }));
  assert.equal(sectionYaml({ t: at }), stringifyYaml({ t: at }));
});

test("the memo stays within its bound while sections unique to one agent pass through", () => {
  for (let i = 0; i < 3000; i++)
    sectionYaml({ description: { host: `host-${i}-${"x".repeat(1000)}`, n: i } });
  assert.ok(sectionYamlStats.chars > 0);
  assert.ok(sectionYamlStats.chars <= 1024 * 1024, `${sectionYamlStats.chars} characters held`);
});

test("any JSON-like section is written as the whole document writes it, first and from memory", () => {
  // Values JSON writes alike but YAML does not (-0, dates, toJSON) are mixed in on purpose.
  const odd = fc.constantFrom<unknown>(-0, new Date(0), { toJSON: () => "x" }, [undefined], "-0");
  const leaf = fc.oneof(fc.jsonValue({ maxDepth: 3 }), odd);
  const section = fc.oneof(
    leaf,
    fc.array(leaf, { maxLength: 3 }),
    fc.dictionary(fc.string(), leaf),
  );
  fc.assert(
    fc.property(fc.dictionary(fc.constantFrom("a", "b", "health"), section), (value) => {
      const whole = stringifyYaml(value);
      assert.equal(sectionYaml(value), whole);
      assert.equal(sectionYaml(value), whole);
    }),
    { numRuns: 300 },
  );
});

test("a deep section is written without the memo, as the whole document would be", () => {
  let deep: unknown = "bottom";
  for (let i = 0; i < 300; i++) deep = { n: deep };
  const value = { deep };
  const misses = sectionYamlStats.misses;
  assert.equal(sectionYaml(value), stringifyYaml(value));
  assert.equal(sectionYamlStats.misses, misses, "not looked up: too deep to be sure of its JSON");
});
