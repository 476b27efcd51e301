/**
 * Positions in a parsed YAML document: character offsets to line/column, and a path of keys
 * and indexes (["service", "pipelines", "traces", "exporters", 1]) to the node it names.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, type Node, type Pair } from "yaml";
import type { Position } from "./findings.js";

export type PathSegment = string | number;

/** Line starts of a text, computed on first use (the happy path never needs them). */
export class LineIndex {
  readonly #text: string;
  #starts: number[] | undefined;

  constructor(text: string) {
    this.#text = text;
  }

  /** 1-based line and column (in UTF-16 code units) of a character offset. */
  position(offset: number): Position {
    if (!this.#starts) {
      const starts = [0];
      const t = this.#text;
      for (let i = t.indexOf("\n"); i !== -1; i = t.indexOf("\n", i + 1)) starts.push(i + 1);
      this.#starts = starts;
    }
    const starts = this.#starts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - (starts[lo] as number) + 1 };
  }
}

/** Resolves alias nodes to the node they stand for (built while the document was walked). */
export type AliasTargets = ReadonlyMap<Node, Node>;

function keyText(key: unknown): string | undefined {
  if (!isScalar(key)) return undefined;
  // A merge key's value is a symbol; its source is "<<".
  return typeof key.value === "symbol" ? "<<" : String(key.value);
}

function findPair(map: Node, key: string, aliases: AliasTargets, seen = 0): Pair | undefined {
  if (!isMap(map) || seen > 8) return undefined;
  let merge: Pair | undefined;
  for (const pair of map.items) {
    const k = keyText(pair.key);
    if (k === key) return pair;
    if (k === "<<") merge = pair;
  }
  // YAML merge keys: `<<: *defaults` or `<<: [*a, *b]`.
  if (merge) {
    const sources = isSeq(merge.value) ? merge.value.items : [merge.value];
    for (const source of sources) {
      const target = isAlias(source) ? aliases.get(source as Node) : (source as Node);
      const found = target ? findPair(target, key, aliases, seen + 1) : undefined;
      if (found) return found;
    }
  }
  return undefined;
}

function start(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? range[0] : undefined;
}

/**
 * Offset of the node at `path` under `root`: the key of the last segment when `key` is set
 * and the segment names a mapping key, otherwise the value (or the key, for an empty value).
 * Stops at the deepest node found when the path leaves the document.
 */
export function offsetOf(
  root: Node | null,
  path: readonly PathSegment[],
  aliases: AliasTargets,
  key = false,
): number {
  let node: unknown = root;
  let offset = start(root) ?? 0;
  for (let i = 0; i < path.length; i++) {
    if (isAlias(node)) node = aliases.get(node as Node) ?? node;
    const seg = path[i] as PathSegment;
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = findPair(node as Node, String(seg), aliases);
      if (!pair) return offset;
      const keyAt = start(pair.key);
      const valueAt = start(pair.value);
      if (last && key) return keyAt ?? offset;
      node = pair.value;
      offset = valueAt ?? keyAt ?? offset;
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)];
      if (item === undefined) return offset;
      if (isPair(item)) {
        node = item.value;
        offset = start(item.key) ?? offset;
      } else {
        node = item;
        offset = start(item) ?? offset;
      }
    } else {
      return offset;
    }
  }
  return offset;
}
