/**
 * Agent → group matching: `match` pairs, Kubernetes expression semantics, priorities, ties
 * (reported, lowest name wins), the index agreeing with a brute-force reference, and the
 * static selector-conflict check.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  compileMatcher,
  type MatchableGroup,
  matchGroup,
  selectorMatches,
} from "../../src/sync/match.js";
import { selectorConflicts } from "../../src/sync/selector-conflicts.js";
import type { Selector, SelectorOperator } from "../../src/validate/model.js";

const attrs = (o: Record<string, string>) => new Map(Object.entries(o));
const sel = (
  match: Record<string, string> = {},
  expressions: Selector["expressions"] = [],
): Selector => ({
  match,
  expressions,
});
const group = (name: string, selector: Selector, priority = 0): MatchableGroup => ({
  name,
  selector,
  priority,
});
const expr = (key: string, operator: SelectorOperator, values: string[] = []) => ({
  key,
  operator,
  values,
});

describe("selector semantics", () => {
  test("match: every pair must equal an attribute, by string compare", () => {
    const s = sel({ "service.name": "otelcol", "deployment.environment": "prod" });
    assert.equal(
      selectorMatches(
        s,
        attrs({ "service.name": "otelcol", "deployment.environment": "prod", x: "1" }),
      ),
      true,
    );
    assert.equal(selectorMatches(s, attrs({ "service.name": "otelcol" })), false);
    assert.equal(
      selectorMatches(s, attrs({ "service.name": "otelcol", "deployment.environment": "Prod" })),
      false,
    );
    assert.equal(selectorMatches(sel({ replicas: "1" }), attrs({ replicas: "1.0" })), false);
  });

  test("expressions follow Kubernetes: In, NotIn (absent matches), Exists, DoesNotExist", () => {
    const inSel = sel({}, [expr("host.name", "In", ["edge-1", "edge-2"])]);
    assert.equal(selectorMatches(inSel, attrs({ "host.name": "edge-2" })), true);
    assert.equal(selectorMatches(inSel, attrs({ "host.name": "edge-3" })), false);
    assert.equal(selectorMatches(inSel, attrs({})), false);
    const notIn = sel({}, [expr("env", "NotIn", ["dev", "test"])]);
    assert.equal(selectorMatches(notIn, attrs({ env: "prod" })), true);
    assert.equal(selectorMatches(notIn, attrs({})), true, "NotIn matches an absent key");
    assert.equal(selectorMatches(notIn, attrs({ env: "dev" })), false);
    const exists = sel({}, [expr("k8s.pod.name", "Exists")]);
    assert.equal(selectorMatches(exists, attrs({ "k8s.pod.name": "" })), true);
    assert.equal(selectorMatches(exists, attrs({})), false);
    const absent = sel({}, [expr("k8s.pod.name", "DoesNotExist")]);
    assert.equal(selectorMatches(absent, attrs({})), true);
    assert.equal(selectorMatches(absent, attrs({ "k8s.pod.name": "p" })), false);
    assert.equal(
      selectorMatches(sel(), attrs({ anything: "x" })),
      true,
      "an empty selector matches all",
    );
  });
});

describe("matchGroup", () => {
  const groups = [
    group("all-otelcol", sel({ "service.name": "otelcol" }), 0),
    group(
      "edge",
      sel({ "service.name": "otelcol" }, [expr("host.name", "In", ["edge-1", "edge-2"])]),
      10,
    ),
    group(
      "edge-canary",
      sel({ "service.name": "otelcol" }, [expr("host.name", "In", ["edge-2"])]),
      10,
    ),
    group("k8s", sel({}, [expr("k8s.pod.name", "Exists")]), 5),
    group("catch-all", sel(), -100),
  ];
  const matcher = compileMatcher(groups);

  test("the highest priority wins", () => {
    assert.deepEqual(matcher.match(attrs({ "service.name": "otelcol", "host.name": "edge-1" })), {
      group: "edge",
    });
    assert.deepEqual(matcher.match(attrs({ "service.name": "otelcol", "host.name": "vm-9" })), {
      group: "all-otelcol",
    });
    assert.deepEqual(matcher.match(attrs({ "service.name": "otelcol", "k8s.pod.name": "p" })), {
      group: "k8s",
    });
    assert.deepEqual(matcher.match(attrs({ "service.name": "other" })), { group: "catch-all" });
  });

  test("a tie at the top priority is a conflict naming every tied group; the lowest name wins", () => {
    assert.deepEqual(matcher.match(attrs({ "service.name": "otelcol", "host.name": "edge-2" })), {
      group: "edge",
      conflict: ["edge", "edge-canary"],
    });
    // A tie below the winner's priority is no conflict.
    assert.deepEqual(
      matchGroup(attrs({ a: "1", b: "1" }), [
        group("x", sel({ a: "1" }), 1),
        group("y", sel({ b: "1" }), 0),
        group("z", sel({ b: "1" }), 0),
      ]),
      { group: "x" },
    );
  });

  test("no group matches: unassigned", () => {
    const m = compileMatcher([group("a", sel({ k: "v" }))]);
    assert.deepEqual(m.match(attrs({})), {});
    assert.deepEqual(compileMatcher([]).match(attrs({ k: "v" })), {});
  });

  test("the index agrees with a brute-force reference on random fleets and agents", () => {
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const keys = ["service.name", "env", "region", "host.name"];
    const values = ["a", "b", "c"];
    const ops: SelectorOperator[] = ["In", "NotIn", "Exists", "DoesNotExist"];
    for (let round = 0; round < 20; round++) {
      const fleet: MatchableGroup[] = [];
      for (let i = 0; i < 40; i++) {
        const match: Record<string, string> = {};
        for (const k of keys) if (rnd(3) === 0) match[k] = values[rnd(3)] as string;
        const expressions = [];
        if (rnd(2) === 0) {
          const op = ops[rnd(4)] as SelectorOperator;
          expressions.push(
            expr(
              keys[rnd(4)] as string,
              op,
              op === "In" || op === "NotIn"
                ? [values[rnd(3)] as string, values[rnd(3)] as string]
                : [],
            ),
          );
        }
        fleet.push(group(`g${i}`, sel(match, expressions), rnd(3)));
      }
      const m = compileMatcher(fleet);
      for (let a = 0; a < 200; a++) {
        const agent = new Map<string, string>();
        for (const k of keys) if (rnd(4) !== 0) agent.set(k, values[rnd(3)] as string);
        const matching = fleet.filter((g) => selectorMatches(g.selector, agent));
        const top = Math.max(...matching.map((g) => g.priority));
        const tied = matching
          .filter((g) => g.priority === top)
          .map((g) => g.name)
          .sort();
        const expected =
          tied.length === 0
            ? {}
            : tied.length === 1
              ? { group: tied[0] }
              : { group: tied[0], conflict: tied };
        assert.deepEqual(m.match(agent), expected);
      }
    }
  });

  test("one agent is matched among 1,000 groups (speed is measured by bench:sync)", () => {
    const fleet = Array.from({ length: 1000 }, (_, i) =>
      group(
        `g${i}`,
        sel({ "service.name": "otelcol", "host.group": `hg-${i}` }, [
          expr("env", "In", ["prod", "staging"]),
        ]),
        i % 3,
      ),
    );
    const m = compileMatcher(fleet);
    const agent = attrs({ "service.name": "otelcol", "host.group": "hg-500", env: "prod" });
    assert.deepEqual(m.match(agent), { group: "g500" });
    assert.deepEqual(m.match(attrs({ ...Object.fromEntries(agent), env: "dev" })), {});
  });
});

describe("static selector conflicts", () => {
  test("identical selectors at equal priority: one warning per losing group, naming both", () => {
    const findings = selectorConflicts([
      group("blue", sel({ app: "x" }, [expr("env", "In", ["b", "a"])])),
      group("green", sel({}, [expr("app", "In", ["x"]), expr("env", "In", ["a", "b", "a"])])),
      group("other", sel({ app: "x" }), 1),
    ]);
    const identical = findings.filter((f) => f.data?.kind === "identical");
    assert.equal(identical.length, 1);
    assert.equal(identical[0]?.file, "groups/green/group.yaml");
    assert.equal(identical[0]?.severity, "warning");
    assert.equal(identical[0]?.code, "SELECTOR_CONFLICT");
    assert.deepEqual(identical[0]?.data?.groups, ["blue", "green"]);
  });

  test("a selector covering another at the same priority is certain overlap; different priorities are not", () => {
    const findings = selectorConflicts(
      [
        group("prod", sel({ env: "prod" })),
        group("prod-eu", sel({ env: "prod", region: "eu" })),
        group("prod-us", sel({ env: "prod", region: "us" })),
        group("prod-eu-hi", sel({ env: "prod", region: "eu" }), 10),
        group("dev", sel({ env: "dev" })),
      ],
      (g) => (g === "prod" ? { line: 3, column: 1 } : undefined),
    );
    assert.equal(findings.length, 1);
    assert.equal(findings[0]?.file, "groups/prod/group.yaml");
    assert.equal(findings[0]?.line, 3);
    assert.deepEqual(findings[0]?.data, {
      kind: "covers",
      groups: ["prod", "prod-eu", "prod-us"],
      priority: 0,
    });
    assert.match(
      findings[0]?.message ?? "",
      /group "prod" selects every agent of "prod-eu", "prod-us" at the same priority 0/,
    );
  });

  test("disjoint selectors and a low-priority catch-all give no warning", () => {
    assert.deepEqual(
      selectorConflicts([
        group("a", sel({ env: "a" })),
        group("b", sel({ env: "b" })),
        group("rest", sel(), -1),
      ]),
      [],
    );
    const catchAll = selectorConflicts([group("a", sel({ env: "a" })), group("rest", sel())]);
    assert.equal(catchAll[0]?.data?.kind, "covers");
  });
});
