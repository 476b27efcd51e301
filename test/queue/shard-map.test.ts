import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { ShardMap } from "../../src/queue/shard-map.js";
import { uids } from "./helpers/machine.js";

test("ShardMap: copy-on-write leaves the original untouched", () => {
  const a = ShardMap.from(uids(500).map((u, i) => [u, i] as const));
  const draft = a.edit();
  draft.set("agent-00001", -1);
  draft.set("new", 7);
  draft.delete("agent-00002");
  const b = draft.finish();
  assert.equal(a.get("agent-00001"), 1);
  assert.equal(a.has("new"), false);
  assert.equal(a.get("agent-00002"), 2);
  assert.equal(a.size, 500);
  assert.equal(b.get("agent-00001"), -1);
  assert.equal(b.get("new"), 7);
  assert.equal(b.has("agent-00002"), false);
  assert.equal(b.size, 500);
  draft.set("after-finish", 1);
  assert.equal(b.has("after-finish"), false, "a finished map is not changed by later writes");
  assert.equal([...b.keys()].length, 500);
});

type Op =
  | { op: "set"; key: string; value: number }
  | { op: "delete"; key: string }
  | { op: "clear" }
  | { op: "finish" };

test("ShardMap: any sequence of drafts reads like a Map, and every finished map stays as it was", () => {
  // Few distinct keys, so sets, deletes and re-sets meet in the same leaves.
  const key = fc.oneof(
    fc.integer({ min: 0, max: 300 }).map((i) => `agent-${i}`),
    fc.string({ maxLength: 6 }),
  );
  const op: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({ op: fc.constant("set" as const), key, value: fc.integer() }),
    },
    { weight: 4, arbitrary: fc.record({ op: fc.constant("delete" as const), key }) },
    { weight: 1, arbitrary: fc.constant({ op: "clear" as const }) },
    { weight: 2, arbitrary: fc.constant({ op: "finish" as const }) },
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer(), key), { maxLength: 200 }),
      fc.array(op, { maxLength: 400 }),
      (initial, ops) => {
        const model = new Map(initial.map(([v, k]) => [k, v]));
        const draft = ShardMap.from(initial.map(([v, k]) => [k, v] as const)).edit();
        const snapshots: Array<[ShardMap<number>, Map<string, number>]> = [];
        for (const o of ops) {
          if (o.op === "set") {
            draft.set(o.key, o.value);
            model.set(o.key, o.value);
          } else if (o.op === "delete") {
            assert.equal(draft.delete(o.key), model.delete(o.key));
          } else if (o.op === "clear") {
            draft.clear();
            model.clear();
          } else snapshots.push([draft.finish(), new Map(model)]);
          assert.equal(draft.size, model.size);
        }
        snapshots.push([draft.finish(), new Map(model)]);
        for (const [map, expected] of snapshots) {
          assert.equal(map.size, expected.size);
          assert.deepEqual(new Map(map.entries()), expected);
          assert.deepEqual(new Set(map.keys()), new Set(expected.keys()));
          for (const [k, v] of expected) assert.equal(map.get(k), v);
          assert.equal(map.has("never-set"), expected.has("never-set"));
        }
      },
    ),
    { numRuns: 300 },
  );
});
