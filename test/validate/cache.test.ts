/**
 * ValidationCache: a group whose folder did not change is not validated again, so a commit
 * that changes one group of many costs about one group's work.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type GroupFolder,
  type RepositorySnapshot,
  ValidationCache,
  validateSnapshot,
} from "../../src/validate/index.js";
import { COLLECTOR_YAML, GROUP_YAML } from "./helpers.js";

const enc = (s: string) => new TextEncoder().encode(s);

function snapshot(
  n: number,
  changed: Record<string, string> = {},
  files: Record<string, string> = {},
): RepositorySnapshot {
  const groups = new Map<string, GroupFolder>();
  for (let i = 0; i < n; i++) {
    const name = `g${i}`;
    const body = changed[name] ?? COLLECTOR_YAML;
    groups.set(name, {
      groupYaml: enc(GROUP_YAML + (name in changed ? "config: {schema: schemas/s.json}\n" : "")),
      files: new Map([["collector.yaml", enc(body)]]),
      treeId: `${name}:${body.length}`,
    });
  }
  return {
    groups,
    readFile: async (p) => (files[p] === undefined ? undefined : enc(files[p] as string)),
  };
}

describe("validation cache", () => {
  test("unchanged groups are reused; a changed group and a changed fleet.yaml are revalidated", async () => {
    const cache = new ValidationCache();
    const first = await validateSnapshot(snapshot(50), { cache });
    assert.equal(first.fleet?.groups.size, 50);
    assert.equal(cache.misses, 50);

    const second = await validateSnapshot(snapshot(50), { cache });
    assert.equal(cache.hits, 50);
    assert.equal(
      second.fleet?.groups.get("g3")?.configHash,
      first.fleet?.groups.get("g3")?.configHash,
    );

    const changed = snapshot(50, { g7: "a: 1\n" }, { "schemas/s.json": '{"type": "object"}' });
    await validateSnapshot(changed, { cache });
    assert.equal(cache.hits, 99);
    assert.equal(cache.misses, 51);

    // The schema file the changed group depends on is checked before reuse.
    const stricter = snapshot(
      50,
      { g7: "a: 1\n" },
      { "schemas/s.json": '{"type": "object", "required": ["b"]}' },
    );
    const report = await validateSnapshot(stricter, { cache });
    assert.deepEqual(
      report.findings.map((f) => [f.file, f.code]),
      [["groups/g7/collector.yaml", "SCHEMA_MISSING_KEY"]],
    );

    const withFleet = { ...snapshot(50), fleet: enc("heartbeatInterval: 1m\n") };
    const fleetChanged = await validateSnapshot(withFleet, { cache });
    assert.equal(fleetChanged.fleet?.groups.get("g1")?.heartbeatIntervalSeconds, 60);
  });

  test("entries unused by the last two validations are dropped", async () => {
    const cache = new ValidationCache();
    await validateSnapshot(snapshot(10), { cache });
    await validateSnapshot(snapshot(10, { g1: "a: 1\n" }, { "schemas/s.json": "{}" }), { cache });
    await validateSnapshot(snapshot(10, { g2: "a: 1\n" }, { "schemas/s.json": "{}" }), { cache });
    await validateSnapshot(snapshot(10, { g2: "a: 1\n" }, { "schemas/s.json": "{}" }), { cache });
    assert.equal(cache.size, 10);
  });
});
