/**
 * Agent → group matching (DESIGN §1). A group's selector matches an agent when every `match`
 * pair equals an attribute (string compare) and every expression holds, with Kubernetes
 * label-selector semantics:
 *
 *   In            the attribute exists and its value is one of `values`
 *   NotIn         the attribute is absent, or its value is none of `values`
 *   Exists        the attribute exists
 *   DoesNotExist  the attribute is absent
 *
 * An empty selector (no pair, no expression) matches every agent, as in Kubernetes (useful
 * for a catch-all group at a low priority). Among matching groups the highest priority wins;
 * several at that priority are a conflict, reported with every tied name, and the lowest name
 * (code-unit order) wins.
 *
 * `GroupMatcher` is built once per desired state: groups are ordered (priority descending,
 * name ascending) and indexed by their most selective equality requirement, so matching one
 * agent looks only at the few groups that can match it. It is synchronous and does no I/O,
 * for the OpAMP message path.
 */
import type { Selector } from "../validate/model.js";

export interface MatchableGroup {
  name: string;
  selector: Selector;
  priority: number;
}

export interface MatchResult {
  /** The group the agent joins; undefined when no group matches (unassigned). */
  group?: string;
  /** Set when several groups tie at the top priority: every tied name, sorted. */
  conflict?: string[];
}

type Test = (attributes: ReadonlyMap<string, string>) => boolean;

interface Compiled {
  name: string;
  priority: number;
  test: Test;
}

/** Whether `selector` matches an agent with these attributes. */
export function selectorMatches(
  selector: Selector,
  attributes: ReadonlyMap<string, string>,
): boolean {
  return compile(selector).test(attributes);
}

interface CompiledSelector {
  test: Test;
  /** Equality requirements the group can be indexed by: key → the values that can match. */
  anchors: Array<{ key: string; values: string[] }>;
}

/** Compiled selectors by object: a desired state that keeps a group's objects reuses them. */
const compiled = new WeakMap<Selector, CompiledSelector>();

function compile(selector: Selector): CompiledSelector {
  let c = compiled.get(selector);
  if (!c) {
    c = { test: compileTest(selector), anchors: anchorsOf(selector) };
    compiled.set(selector, c);
  }
  return c;
}

function compileTest(selector: Selector): Test {
  const pairs = Object.entries(selector.match);
  const exprs = selector.expressions.map((e) => ({ ...e, set: new Set(e.values) }));
  return (attributes) => {
    for (const [key, value] of pairs) if (attributes.get(key) !== value) return false;
    for (const e of exprs) {
      const v = attributes.get(e.key);
      switch (e.operator) {
        case "In":
          if (v === undefined || !e.set.has(v)) return false;
          break;
        case "NotIn":
          if (v !== undefined && e.set.has(v)) return false;
          break;
        case "Exists":
          if (v === undefined) return false;
          break;
        case "DoesNotExist":
          if (v !== undefined) return false;
          break;
      }
    }
    return true;
  };
}

function anchorsOf(selector: Selector): Array<{ key: string; values: string[] }> {
  const out = Object.entries(selector.match).map(([key, value]) => ({ key, values: [value] }));
  for (const e of selector.expressions)
    if (e.operator === "In") out.push({ key: e.key, values: [...new Set(e.values)] });
  return out;
}

const byPriorityThenName = (a: MatchableGroup, b: MatchableGroup) =>
  b.priority - a.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export class GroupMatcher {
  /** Groups in decision order: priority descending, then name ascending. */
  readonly #groups: Compiled[];
  /** key → value → indexes into #groups (ascending). */
  readonly #index = new Map<string, Map<string, number[]>>();
  /** Groups with no equality requirement: always candidates. */
  readonly #always: number[] = [];

  constructor(groups: Iterable<MatchableGroup>) {
    const sorted = [...groups].sort(byPriorityThenName);
    const selectors = sorted.map((g) => compile(g.selector));
    this.#groups = sorted.map((g, i) => ({
      name: g.name,
      priority: g.priority,
      test: (selectors[i] as CompiledSelector).test,
    }));
    // How many groups share each key=value: index each group by its rarest requirement.
    const freq = new Map<string, Map<string, number>>();
    for (const c of selectors)
      for (const a of c.anchors) {
        const byValue = freq.get(a.key) ?? new Map<string, number>();
        freq.set(a.key, byValue);
        for (const v of a.values) byValue.set(v, (byValue.get(v) ?? 0) + 1);
      }
    selectors.forEach((c, i) => {
      let best: { key: string; values: string[] } | undefined;
      let bestCost = Number.POSITIVE_INFINITY;
      for (const a of c.anchors) {
        const byValue = freq.get(a.key);
        let cost = 0;
        for (const v of a.values) cost += byValue?.get(v) ?? 0;
        if (cost < bestCost) {
          best = a;
          bestCost = cost;
        }
      }
      if (!best) {
        this.#always.push(i);
        return;
      }
      const byValue = this.#index.get(best.key) ?? new Map<string, number[]>();
      this.#index.set(best.key, byValue);
      for (const v of best.values) {
        const list = byValue.get(v);
        if (list) list.push(i);
        else byValue.set(v, [i]);
      }
    });
  }

  get size(): number {
    return this.#groups.length;
  }

  match(attributes: ReadonlyMap<string, string>): MatchResult {
    let candidates: number[] = this.#always;
    let copied = false;
    for (const [key, byValue] of this.#index) {
      const value = attributes.get(key);
      if (value === undefined) continue;
      const list = byValue.get(value);
      if (!list) continue;
      if (candidates.length === 0) {
        candidates = list;
        continue;
      }
      candidates = copied ? candidates : [...candidates];
      copied = true;
      candidates.push(...list);
    }
    if (copied) candidates.sort((a, b) => a - b);
    let winner: Compiled | undefined;
    let tied: string[] | undefined;
    for (const i of candidates) {
      const g = this.#groups[i] as Compiled;
      if (winner && g.priority < winner.priority) break;
      if (!g.test(attributes)) continue;
      if (!winner) winner = g;
      else {
        tied ??= [winner.name];
        tied.push(g.name);
      }
    }
    if (!winner) return {};
    return tied ? { group: winner.name, conflict: tied } : { group: winner.name };
  }
}

/** Builds the matcher for a set of groups (do it once per desired state). */
export function compileMatcher(groups: Iterable<MatchableGroup>): GroupMatcher {
  return new GroupMatcher(groups);
}

/**
 * The group an agent joins. `groups` is a matcher built by `compileMatcher` (cheap per call)
 * or a list of groups (compiled on every call: for one-off use only).
 */
export function matchGroup(
  attributes: ReadonlyMap<string, string>,
  groups: GroupMatcher | Iterable<MatchableGroup>,
): MatchResult {
  const matcher = groups instanceof GroupMatcher ? groups : new GroupMatcher(groups);
  return matcher.match(attributes);
}
