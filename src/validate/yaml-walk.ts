/**
 * Walks over a parsed YAML document that loading needs (see yaml.ts): bounding aliases
 * before anything is expanded, and finding repeated keys in linear time.
 */
import { type Document, isAlias, isCollection, isPair, isScalar, type Node } from "yaml";
import type { AliasTargets } from "./source-map.js";
import type { YamlLimits } from "./yaml.js";

/**
 * Every key repeated within one mapping, in source order: one Map per mapping, so the cost
 * is linear in the document (the parser's own check, `uniqueKeys`, compares each key with
 * all before it: quadratic, seconds for a few hundred KiB of flat keys). Keys are equal as
 * the parser's check has them: scalars with the same value. Merge keys (`<<`) may repeat.
 */
export function findDuplicates(
  doc: Document.Parsed,
): { key: string; first: number; second: number }[] {
  const found: { key: string; first: number; second: number }[] = [];
  const visit = (node: unknown, depth: number): void => {
    if (!isCollection(node) || depth > 256) return;
    const seen = new Map<unknown, number>();
    for (const item of node.items as unknown[]) {
      if (isPair(item) && isScalar(item.key) && typeof item.key.value !== "symbol") {
        const start = item.key.range?.[0] ?? 0;
        const first = seen.get(item.key.value);
        if (first === undefined) seen.set(item.key.value, start);
        else found.push({ key: String(item.key.value), first, second: start });
      }
      visit(isPair(item) ? item.value : item, depth + 1);
    }
  };
  visit(doc.contents, 0);
  return found.sort((a, b) => a.second - b.second);
}

interface WalkProblem {
  offset: number;
  code: string;
  message: string;
  data?: Record<string, unknown>;
}

/**
 * One pass over the document in source order: resolves every alias to its anchor, counts
 * aliases, sizes what each anchor expands to (memoized, so an alias bomb costs its source
 * size, never its expansion) and measures nesting.
 */
export function walkAliases(
  root: Node | null,
  lim: YamlLimits,
): { targets: AliasTargets; problem?: WalkProblem } {
  const targets = new Map<Node, Node>();
  const anchors = new Map<string, Node>();
  const size = new Map<Node, number>();
  const open = new Set<Node>();
  let aliases = 0;
  let expansion = 0;
  let problem: WalkProblem | undefined;
  const offset = (n: unknown) => (n as { range?: number[] } | null)?.range?.[0] ?? 0;

  const visit = (node: unknown, depth: number): number => {
    if (problem || node === null || node === undefined || typeof node !== "object") return 0;
    if (isPair(node)) return visit(node.key, depth) + visit(node.value, depth);
    const n = node as Node;
    if (isAlias(n)) {
      aliases++;
      const target = anchors.get(n.source);
      if (aliases > lim.maxAliases) {
        problem = {
          offset: offset(n),
          code: "YAML_TOO_MANY_ALIASES",
          message: `the file uses more than ${lim.maxAliases} aliases (*name); write the values out or use fewer anchors`,
          data: { limit: lim.maxAliases },
        };
        return 0;
      }
      if (!target) return 1; // reported by the parser
      targets.set(n, target);
      if (open.has(target)) {
        problem = {
          offset: offset(n),
          code: "YAML_RECURSIVE_ALIAS",
          message: `alias *${n.source} refers to a node that contains it; a recursive structure cannot be a configuration`,
          data: { anchor: n.source },
        };
        return 0;
      }
      const s = size.get(target) ?? 1;
      expansion += s;
      if (expansion > lim.maxAliasExpansion) {
        problem = {
          offset: offset(n),
          code: "YAML_ALIAS_EXPANSION",
          message: `aliases expand this file by more than ${lim.maxAliasExpansion} nodes (here *${n.source} alone stands for ${s > 1e15 ? "astronomically many" : s} nodes): an alias bomb is refused without being expanded`,
          data: { limit: lim.maxAliasExpansion, anchor: n.source },
        };
        return 0;
      }
      return s;
    }
    if (depth > lim.maxDepth) {
      problem = {
        offset: offset(n),
        code: "YAML_TOO_DEEP",
        message: `the file nests mappings and sequences more than ${lim.maxDepth} levels deep`,
        data: { limit: lim.maxDepth },
      };
      return 0;
    }
    if (n.anchor) anchors.set(n.anchor, n);
    let s = 1;
    if (isCollection(n)) {
      open.add(n);
      for (const item of n.items as unknown[]) s += visit(item, depth + 1);
      open.delete(n);
    }
    size.set(n, s);
    return s;
  };
  visit(root, 0);
  return problem ? { targets, problem } : { targets };
}
