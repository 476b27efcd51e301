/**
 * What the Collector checks share: a way from a path of the configuration to a file and a
 * position, and the list findings are added to. The configuration may be one file, a part of
 * one (an OpenTelemetryCollector resource's spec.config), or several files merged.
 */
import type { Position } from "./findings.js";
import type { Finding, Severity } from "./model.js";
import type { PathSegment } from "./source-map.js";
import type { LoadedYaml } from "./yaml.js";

/** Where the node at `path` of the configuration was written (`key`: its mapping key). */
export type Where = (path: readonly PathSegment[], key: boolean) => Position & { file: string };

/** Paths of the configuration at `prefix` of `doc`. */
export function whereIn(
  doc: Pick<LoadedYaml, "file" | "locate">,
  prefix: readonly PathSegment[] = [],
): Where {
  return (path, key) => ({ file: doc.file, ...doc.locate([...prefix, ...path], { key }) });
}

function has(value: unknown, path: readonly PathSegment[]): boolean {
  let node = value;
  for (const seg of path) {
    if (node === null || typeof node !== "object") return false;
    if (!Object.hasOwn(node as object, seg)) return false;
    node = (node as Record<string | number, unknown>)[seg];
  }
  return true;
}

/**
 * Paths of several files merged in order (later files win): a path is located in the last
 * file that holds it, or the longest prefix of it.
 */
export function whereInMerged(docs: readonly LoadedYaml[]): Where {
  return (path, key) => {
    for (let n = path.length; n >= 0; n--) {
      const prefix = path.slice(0, n);
      for (let i = docs.length - 1; i >= 0; i--) {
        const doc = docs[i] as LoadedYaml;
        if (has(doc.value, prefix)) return { file: doc.file, ...doc.locate(path, { key }) };
      }
    }
    const first = docs[0] as LoadedYaml;
    return { file: first.file, line: 1, column: 1 };
  };
}

/** What a group says about its files that changes the checks. */
export interface CollectorCheckOptions {
  /**
   * `config.partial: true` (DESIGN §1): the agent merges the group's files with configuration
   * of its own, so what they leave undefined is a warning, not an error. Default false.
   */
  partial?: boolean;
}

export class CheckContext {
  readonly findings: Finding[] = [];
  /** See CollectorCheckOptions.partial. */
  readonly partial: boolean;

  constructor(
    readonly where: Where,
    options: CollectorCheckOptions = {},
  ) {
    this.partial = options.partial ?? false;
  }

  /** "error", or "warning" in a partial group: for what another layer may still supply. */
  get unlessPartial(): Severity {
    return this.partial ? "warning" : "error";
  }

  /** Adds a finding at `path` (the mapping key it names, with `key`). */
  add(
    path: readonly PathSegment[],
    severity: Severity,
    code: string,
    message: string,
    data?: Record<string, unknown>,
    key = false,
  ): void {
    const { file, line, column } = this.where(path, key);
    this.findings.push({ file, line, column, severity, code, message, ...(data ? { data } : {}) });
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** The string items of a list value (a null or missing list is empty). */
export function idList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/**
 * Collector-style merge of configuration files: mappings merge key by key, anything else
 * (lists included) is replaced by the later file.
 */
export function mergeConfigs(values: readonly unknown[]): unknown {
  let out: unknown;
  for (const v of values) out = mergeTwo(out, v);
  return out;
}

function mergeTwo(a: unknown, b: unknown): unknown {
  if (!isObject(a) || !isObject(b)) return b === undefined ? a : b;
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = k in out ? mergeTwo(out[k], v) : v;
  return out;
}
