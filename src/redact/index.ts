/**
 * The secret detector shared by the status writer (src/status: nothing an agent sends
 * reaches Git unredacted) and the validator (src/validate: plaintext secrets in the
 * repository's own config files are warnings). Pure and synchronous; no I/O, no Redis.
 *
 * Three layers (docs/redaction.md): keys (keys.ts), values (secretlint's recommended rules in
 * secretlint.ts plus text-rules.ts), structure (structure.ts). Redacted values become keyed
 * markers (marker.ts).
 */
import { findSecretSpans } from "./detect.js";
import type { Marker } from "./marker.js";
import { redactStructure, setOwn as setOwnKey, type WalkResult } from "./structure.js";

export { findSecretSpans, hasSecret, onlyPlaceholders, type Span } from "./detect.js";
export {
  COMPONENT_FIELDS,
  isHeaderContainer,
  isPlainHeader,
  isSecretKey,
  isSecretKeyIn,
  normalizeKey,
} from "./keys.js";
export { MARKER_PATTERN, Marker } from "./marker.js";
export { SECRETLINT_RULE_IDS } from "./secretlint.js";
export {
  type PathSegment,
  redactStructure,
  type SecretFinding,
  type SecretReason,
  setOwn,
  type WalkResult,
} from "./structure.js";

/**
 * The version of what the three layers redact: bump it with any change to keys.ts,
 * text-rules.ts or structure.ts that makes them hide something they did not (stores of
 * redacted text, such as the agent search index, are keyed by it and rebuilt).
 */
export const REDACTION_RULES_VERSION = 1;

/** Longest agent text looked at: anything beyond is cut before detection. */
export const MAX_SCAN_CHARS = 64 * 1024;

/** Replaces every span the value layer finds in `text` with `replace(span)`. */
export function replaceSpans(text: string, replace: (secret: string) => string): string {
  const spans = findSecretSpans(text);
  if (spans.length === 0) return text;
  let out = "";
  let last = 0;
  for (const [s, e] of spans) {
    out += text.slice(last, s) + replace(text.slice(s, e));
    last = e;
  }
  return out + text.slice(last);
}

/** Redaction with one key: free text, parsed values. */
export class Redactor {
  readonly marker: Marker;

  constructor(marker: Marker) {
    this.marker = marker;
  }

  /**
   * `text` with its secrets replaced by markers, cut to `maxChars` (then ending in "…").
   * Detection runs on the first MAX_SCAN_CHARS before the cut, so a secret is never split by
   * the cut before it was seen.
   */
  text(text: string, maxChars: number): string {
    const bounded = text.length > MAX_SCAN_CHARS ? text.slice(0, MAX_SCAN_CHARS) : text;
    const out = replaceSpans(bounded, (s) => this.marker.mark(s));
    if (out.length <= maxChars) return out;
    // Never cut inside a marker: a half marker would look like a value.
    let cut = maxChars;
    const open = out.lastIndexOf("<redacted", cut);
    if (open !== -1 && out.indexOf(">", open) >= cut) cut = open;
    return `${out.slice(0, cut)}…`;
  }

  /** A copy of a parsed value with every secret replaced by its marker. */
  value(value: unknown): WalkResult {
    return redactStructure(value, (s) => this.marker.mark(s));
  }

  /**
   * One attribute (`key: value`) through all three layers: a value under a secret-looking key
   * (`api.key`, `db.password`) is hidden whole, secrets in any other value replaced; key and
   * a string value are cut at `maxChars` as text() does. Other values come back as given,
   * or redacted by structure when nested.
   */
  attribute(key: string, value: unknown, maxChars: number): [string, unknown] {
    const one: Record<string, unknown> = {};
    setOwnKey(one, key, value);
    const [entry] = Object.entries(this.value(one).value as Record<string, unknown>);
    const redacted = entry?.[1];
    return [
      this.text(key, maxChars),
      typeof redacted === "string" ? this.text(redacted, maxChars) : redacted,
    ];
  }
}
