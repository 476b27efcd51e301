/**
 * The static side of "two groups claiming the same agents at equal priority": conflicts that
 * are certain from the selectors alone, reported as warnings (DESIGN §1 defines the outcome,
 * so they are not errors: the lowest name wins).
 *
 * Group A covers group B when A's requirements are a subset of B's (every `match` pair counts
 * as `In` with one value; expressions are compared with their values as sets): then every
 * agent B selects is also selected by A. At equal priority that makes each of them a conflict.
 * Identical selectors cover each other. An empty selector covers every group.
 *
 *   SELECTOR_CONFLICT  groups/<group>/group.yaml  (data: { kind, groups, priority })
 *     kind "identical": the groups select exactly the same agents
 *     kind "covers":    the group selects every agent of the listed groups
 *
 * Cost: one pass per group over the subsets of its requirements (up to 2^8 per group;
 * selectors with more requirements are only checked for identity and for the empty
 * selector), so 1,000 groups take a few milliseconds.
 */
import type { Finding } from "../validate/model.js";
import type { MatchableGroup } from "./match.js";

export const SELECTOR_CONFLICT = "SELECTOR_CONFLICT";

const MAX_SUBSET_BITS = 8;

const memo = new WeakMap<object, string[]>();

/** Canonical requirement strings of a selector (sorted, deduplicated). */
export function requirements(group: MatchableGroup): string[] {
  let reqs = memo.get(group.selector);
  if (!reqs) {
    reqs = canonical(group);
    memo.set(group.selector, reqs);
  }
  return reqs;
}

function canonical(group: MatchableGroup): string[] {
  const out = new Set<string>();
  for (const [k, v] of Object.entries(group.selector.match)) out.add(`In\u0000${k}\u0000${v}`);
  for (const e of group.selector.expressions) {
    const values = [...new Set(e.values)].sort();
    out.add(
      [e.operator, e.key, ...(e.operator === "In" || e.operator === "NotIn" ? values : [])].join(
        "\u0000",
      ),
    );
  }
  return [...out].sort();
}

export interface ConflictLocation {
  line: number;
  column: number;
}

function listNames(names: string[]): string {
  const shown = names.slice(0, 20).map((n) => `"${n}"`);
  return shown.join(", ") + (names.length > 20 ? ` and ${names.length - 20} more` : "");
}

/**
 * Warnings for groups that certainly claim the same agents at equal priority.
 * `locate` gives the position of a group's `selector` key (default line 1, column 1).
 */
export function selectorConflicts(
  groups: Iterable<MatchableGroup>,
  locate: (group: string) => ConflictLocation | undefined = () => undefined,
): Finding[] {
  const byPriority = new Map<number, Array<{ name: string; reqs: string[]; key: string }>>();
  for (const g of groups) {
    const reqs = requirements(g);
    const list = byPriority.get(g.priority) ?? [];
    list.push({ name: g.name, reqs, key: reqs.join("\u0001") });
    byPriority.set(g.priority, list);
  }
  const findings: Finding[] = [];
  const at = (group: string, priority: number, kind: string, names: string[], message: string) => {
    const pos = locate(group) ?? { line: 1, column: 1 };
    findings.push({
      file: `groups/${group}/group.yaml`,
      ...pos,
      severity: "warning",
      code: SELECTOR_CONFLICT,
      message,
      data: { kind, groups: names, priority },
    });
  };
  for (const [priority, list] of [...byPriority].sort((a, b) => b[0] - a[0])) {
    if (list.length < 2) continue;
    const byKey = new Map<string, string[]>();
    for (const g of list) byKey.set(g.key, [...(byKey.get(g.key) ?? []), g.name]);
    for (const names of byKey.values()) {
      if (names.length < 2) continue;
      names.sort();
      const [winner, ...losers] = names as [string, ...string[]];
      for (const loser of losers)
        at(
          loser,
          priority,
          "identical",
          names,
          `groups ${listNames(names)} have the same selector at priority ${priority}: every agent they ` +
            `select is a conflict and joins "${winner}" (the lowest name); give one group a higher ` +
            `priority or a narrower selector`,
        );
    }
    // covers: A's requirement set is a strict subset of B's.
    const covered = new Map<string, string[]>();
    for (const b of list) {
      const n = b.reqs.length;
      const subsets: string[] = [""];
      if (n <= MAX_SUBSET_BITS) {
        for (let mask = 1; mask < (1 << n) - 1; mask++)
          subsets.push(b.reqs.filter((_, i) => mask & (1 << i)).join("\u0001"));
      }
      if (n === 0) continue;
      for (const key of subsets)
        for (const a of byKey.get(key) ?? []) covered.set(a, [...(covered.get(a) ?? []), b.name]);
    }
    for (const [a, bs] of [...covered].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
      bs.sort();
      at(
        a,
        priority,
        "covers",
        [a, ...bs],
        `group "${a}" selects every agent of ${listNames(bs)} at the same priority ${priority}: ` +
          `those agents are conflicts and each joins the lowest name; give the more specific ` +
          `group${bs.length > 1 ? "s" : ""} a higher priority`,
      );
    }
  }
  return findings;
}
