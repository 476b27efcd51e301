/**
 * Layer 3 of the secret detector, and the walk that applies all three layers to a parsed
 * YAML or JSON value (a Collector config an agent reports, or one in the repository):
 *
 * - keys (keys.ts): a value under a secret key is hidden whole, and every string and number
 *   of a map or list under it;
 * - header containers of any name (`headers`, `http_headers`, gRPC `metadata`,
 *   `required_header`, ... isHeaderContainer): every value but plainly harmless headers, in
 *   every shape: a map, a `{name|key: …, value: …}` list, a list of `"Name: value"` strings,
 *   a single `"A=1,B=2"` string;
 * - key/value pair lists anywhere: `{key: http.request.header.authorization, value: …}`
 *   (attributes-processor actions), `{name: DB_PASSWORD, value: …}` (environment lists),
 *   `[name, value]` tuples, `["--password", "…"]` argument lists;
 * - aliases: YAML aliases are resolved by the parser, so a value anchored under a harmless key
 *   and used under a secret one appears in both places; a second pass hides every other
 *   occurrence of a value the first pass hid (whole, or inside a longer string);
 * - the value layer (detect.ts) on every other string, map keys included.
 *
 * The walk never mutates its input; keys from outside are set as own properties.
 */
import { findSecretSpans, onlyPlaceholders } from "./detect.js";
import {
  holdsComponentIds,
  isHeaderContainer,
  isLocationKey,
  isPlainHeader,
  isSecretKey,
  isSecretKeyIn,
  normalizeKey,
} from "./keys.js";

export type PathSegment = string | number;

/** Why a value is secret: the layer that decided. */
export type SecretReason = "key" | "header" | "pair" | "alias" | "value";

export interface SecretFinding {
  /** Where the value is (keys and list indexes from the top). */
  path: PathSegment[];
  reason: SecretReason;
}

/** Replaces a secret (the whole value, or a part of a string). */
export type Replace = (secret: string) => string;

/** Values nested deeper than this are replaced whole. */
export const MAX_DEPTH = 64;
/**
 * Whether other occurrences of a hidden value are hidden too: values long or random enough
 * that an equal one elsewhere is the same secret, not a common word ("otlp", "3600s").
 */
function aliasWorthy(s: string): boolean {
  return s.length >= 8 || (s.length >= 6 && /[0-9]/.test(s) && /[A-Za-z]/.test(s));
}
/** Shortest value hidden inside longer strings. */
const MIN_ALIAS_INSIDE = 8;

/** Sets a key that came from outside as an own property ("__proto__" included). */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

const HEADER_LINE = /^\s*([^:=\s][^:=]*?)\s*[:=]\s*(.*)$/s;
const FLAG = /^-{1,2}([A-Za-z][A-Za-z0-9_.-]*)$/;
/** A header or setting name (no spaces, no separators). */
const NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const LABELS = ["name", "key", "header", "label"];

function isScalar(v: unknown): v is string | number | bigint {
  return typeof v === "string" || typeof v === "number" || typeof v === "bigint";
}

class Walk {
  count = 0;
  readonly findings: SecretFinding[] = [];
  /** Values hidden whole by key or structure (pass 1 fills it; pass 2 uses it). */
  readonly hidden = new Set<string>();
  #inside: string[] = [];

  /**
   * `scan`: false for the first pass, which only learns what key and structure hide (the
   * value layer, the costly part, runs once, in the second pass).
   */
  constructor(
    readonly replace: Replace,
    readonly aliases: ReadonlySet<string> | undefined,
    readonly scan = true,
  ) {
    if (aliases)
      this.#inside = [...aliases].filter((s) => s.length >= MIN_ALIAS_INSIDE && aliasWorthy(s));
  }

  #found(path: PathSegment[], reason: SecretReason): void {
    this.count++;
    if (this.findings.length < 10_000) this.findings.push({ path, reason });
  }

  /** A value that is secret whole: every string and number below is replaced. */
  secret(value: unknown, path: PathSegment[], reason: SecretReason, depth: number): unknown {
    if (isScalar(value)) {
      const s = String(value);
      if (s === "" || onlyPlaceholders(s)) return value;
      this.hidden.add(s);
      this.#found(path, reason);
      return this.replace(s);
    }
    if (depth > MAX_DEPTH) return this.replace("");
    if (Array.isArray(value))
      return value.map((v, i) => this.secret(v, [...path, i], reason, depth + 1));
    if (value !== null && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const p = [...path, k];
        // `authorization: {type: Bearer, credentials_file: …}`: kinds and locations stay.
        const kept = isLocationKey(k) && (typeof v !== "object" || v === null);
        setOwn(
          out,
          this.key(k),
          kept ? this.walk(v, p, k, false, depth + 1) : this.secret(v, p, reason, depth + 1),
        );
      }
      return out;
    }
    return value;
  }

  /** A string outside any secret context: aliases of hidden values, then the value layer. */
  text(s: string, path: PathSegment[]): string {
    if (!this.scan) return s;
    if (this.aliases?.has(s) && aliasWorthy(s) && !onlyPlaceholders(s)) {
      this.#found(path, "alias");
      return this.replace(s);
    }
    let out = s;
    for (const a of this.#inside)
      if (out.includes(a)) {
        this.#found(path, "alias");
        out = out.split(a).join(this.replace(a));
      }
    const spans = findSecretSpans(out);
    if (spans.length === 0) return out;
    this.#found(path, "value");
    let result = "";
    let last = 0;
    for (const [st, en] of spans) {
      result += out.slice(last, st) + this.replace(out.slice(st, en));
      last = en;
    }
    return result + out.slice(last);
  }

  /** A map key: the value layer only (a key is never hidden whole). */
  key(k: string): string {
    if (!this.scan) return k;
    const spans = findSecretSpans(k);
    if (spans.length === 0) return k;
    let result = "";
    let last = 0;
    for (const [st, en] of spans) {
      result += k.slice(last, st) + this.replace(k.slice(st, en));
      last = en;
    }
    return result + k.slice(last);
  }

  /** A string inside a header container: "Name: value" lines or "A=1,B=2" lists. */
  headerText(s: string, path: PathSegment[]): string {
    const parts = s.split(/(,|\n)/);
    let changed = false;
    const out = parts.map((p) => {
      if (p === "," || p === "\n" || p.trim() === "") return p;
      const m = HEADER_LINE.exec(p);
      // A bare name (k8sattributes `metadata: [k8s.pod.name]`): nothing to hide but what the
      // value layer finds.
      if (!m) return p;
      const name = m[1] as string;
      const v = m[2] as string;
      if (isPlainHeader(name) || v.trim() === "" || onlyPlaceholders(v)) return p;
      changed = true;
      return `${p.slice(0, p.length - v.length)}${this.secret(v, path, "header", 0) as string}`;
    });
    return changed ? out.join("") : this.text(s, path);
  }

  walk(
    value: unknown,
    path: PathSegment[],
    parent: string,
    headers: boolean,
    depth: number,
  ): unknown {
    if (typeof value === "string")
      return headers ? this.headerText(value, path) : this.text(value, path);
    if (depth > MAX_DEPTH) return this.replace("");
    if (Array.isArray(value)) return this.list(value, path, parent, headers, depth);
    if (value !== null && typeof value === "object")
      return this.map(value as Record<string, unknown>, path, parent, headers, depth);
    return value;
  }

  list(
    value: unknown[],
    path: PathSegment[],
    parent: string,
    headers: boolean,
    depth: number,
  ): unknown[] {
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i++) {
      const prev = value[i - 1];
      const flag = typeof prev === "string" ? FLAG.exec(prev) : null;
      // ["--password", "…"]: an argument list names the next value.
      const item = value[i];
      if (flag && isSecretKey(flag[1] as string) && isScalar(item))
        out.push(this.secret(item, [...path, i], "pair", depth + 1));
      else if (
        // [[name, value], ...] tuples: the name decides for the value.
        Array.isArray(item) &&
        item.length === 2 &&
        typeof item[0] === "string" &&
        NAME.test(item[0]) &&
        isScalar(item[1]) &&
        (isSecretKey(item[0]) || (headers && !isPlainHeader(item[0])))
      )
        out.push([
          item[0],
          this.secret(item[1], [...path, i, 1], headers ? "header" : "pair", depth + 2),
        ]);
      else out.push(this.walk(value[i], [...path, i], parent, headers, depth + 1));
    }
    return out;
  }

  map(
    obj: Record<string, unknown>,
    path: PathSegment[],
    parent: string,
    headers: boolean,
    depth: number,
  ): Record<string, unknown> {
    // A pair: {name|key|header: <label>, value: …}.
    const labelKey = LABELS.find((l) => typeof obj[l] === "string");
    const label = labelKey ? (obj[labelKey] as string) : undefined;
    const pairSecret =
      label !== undefined &&
      "value" in obj &&
      (isSecretKey(label) ||
        /authorization|cookie|apikey|token/.test(normalizeKey(label)) ||
        (headers && !isPlainHeader(label)));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) {
      const p = [...path, k];
      const nk = normalizeKey(k);
      let result: unknown;
      if (pairSecret && nk === "value")
        result = this.secret(v, p, headers ? "header" : "pair", depth + 1);
      else if (!holdsComponentIds(parent) && isSecretKeyIn(k, parent))
        result = this.secret(v, p, "key", depth + 1);
      else if (headers && label === undefined && !isPlainHeader(k) && isScalar(v))
        // A header map ({X-Honeycomb-Team: …}): every value but plainly harmless ones.
        result = this.secret(v, p, "header", depth + 1);
      else result = this.walk(v, p, k, isHeaderContainer(k), depth + 1);
      setOwn(out, this.key(k), result);
    }
    return out;
  }
}

export interface WalkResult {
  /** The copy with every secret replaced. */
  value: unknown;
  /** How many values (or parts of strings) were replaced. */
  redacted: number;
  findings: SecretFinding[];
}

/**
 * Applies the three layers to a parsed value: the copy with secrets replaced by `replace`, and
 * where each was found.
 */
export function redactStructure(value: unknown, replace: Replace): WalkResult {
  // Pass 1 learns which values are hidden by key or structure; pass 2 hides their aliases.
  const first = new Walk(replace, undefined, false);
  first.walk(value, [], "", false, 0);
  const second = new Walk(replace, first.hidden.size > 0 ? first.hidden : undefined);
  const out = second.walk(value, [], "", false, 0);
  return { value: out, redacted: second.count, findings: second.findings };
}
