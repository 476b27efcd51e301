/**
 * The value layer put together: every span of a string that holds a secret, from secretlint's
 * recommended rules (secretlint.ts) and this module's own text rules (text-rules.ts), merged.
 *
 * Spans that hold nothing but `${env:VAR}`-style placeholders or markers this module wrote
 * (`<redacted:3fa2c1>`) are dropped: a placeholder names a variable, and redacting a marker
 * again would change it on every pass.
 */
import { type Span, secretlintSpans } from "./secretlint.js";
import { patternSpans } from "./text-rules.js";

export type { Span } from "./secretlint.js";

/** `${…}` placeholders and `<redacted…>` markers, with an optional auth scheme before them. */
const HARMLESS_ONLY =
  /^\s*(?:(?:bearer|basic|token|splunk|api-?token|api-?key)\s+)?(?:\$\{[^}]*\}|<redacted(?::[0-9a-f]{6})?>|\s)+\s*$/i;

/** True when `value` holds only placeholders and markers (after an optional auth scheme). */
export function onlyPlaceholders(value: string): boolean {
  return (value.includes("${") || value.includes("<redacted")) && HARMLESS_ONLY.test(value);
}

/** Sorted, non-overlapping spans (touching spans joined). */
export function mergeSpans(spans: Span[]): Span[] {
  const sorted = [...spans].sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const out: Span[] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

const SCHEME_WORD =
  /^(bearer|basic|token|splunk|api-?token|api-?key|digest|negotiate|ssws|geniekey)$/i;
const MASKED = /\$\{[^}]*\}|<redacted(?::[0-9a-f]{6})?>/g;

/**
 * The spans of `text` that hold secrets, sorted and merged. Placeholders and markers are
 * blanked out (same length) before the rules run, so no rule reads one as a token; spans are
 * trimmed of the blanks.
 */
export function findSecretSpans(text: string): Span[] {
  if (text.length < 4) return [];
  // Configs repeat the same short strings (endpoints, names) across files and agents.
  const cacheable = text.length <= CACHE_MAX_TEXT;
  if (cacheable) {
    const hit = cached(text);
    if (hit) return hit.map(([s, e]) => [s, e]);
  }
  const spans = scan(text);
  if (cacheable)
    remember(
      text,
      spans.map(([s, e]) => [s, e]),
    );
  return spans;
}

/**
 * Strings up to this long have their spans cached: at most CACHE_SIZE strings, in two
 * generations of CACHE_SIZE / 2. New strings go to the young one; when it is full the old one
 * is dropped whole and the young one becomes old; a hit in the old one is carried over, so
 * strings still in use (a fleet's common attribute values) survive each turnover.
 *
 * (Not one Map evicting its oldest key per insert: once full, with a stream of unique strings
 * going by (a fleet's instance ids and host names), each insert got slower, 7 -> 24 µs for a
 * short string in a saw-tooth, as V8's iterator steps over the deleted entries until the
 * table is compacted; issue #15.)
 */
const CACHE_MAX_TEXT = 512;
const CACHE_SIZE = 20_000;
let young = new Map<string, Span[]>();
let old = new Map<string, Span[]>();

function cached(text: string): Span[] | undefined {
  const hit = young.get(text);
  if (hit) return hit;
  const oldHit = old.get(text);
  if (oldHit) remember(text, oldHit);
  return oldHit;
}

function remember(text: string, spans: Span[]): void {
  if (young.size >= CACHE_SIZE / 2) {
    old = young;
    young = new Map();
  }
  young.set(text, spans);
}

/**
 * secretlint's formats are all tokens of 16 characters or more (AWS key ids: 20), or PEM
 * blocks; text without such a run skips its rules (they cost ~35 µs a string, 5× the rest).
 */
const SECRETLINT_WORTHY = /[A-Za-z0-9_+/=.:-]{16,}|PRIVATE KEY/;

function scan(text: string): Span[] {
  const masked = text.replace(MASKED, (m) => " ".repeat(m.length));
  const raw: Span[] = [];
  const found = SECRETLINT_WORTHY.test(masked) ? secretlintSpans(masked) : [];
  for (const [s0, e0] of [...found, ...patternSpans(masked)]) {
    let s = s0;
    let e = e0;
    while (s < e && masked[s] === " " && text[s] !== " ") s++;
    while (e > s && masked[e - 1] === " " && text[e - 1] !== " ") e--;
    // "Authorization: Bearer ${env:T}": the rule saw the scheme alone once the placeholder
    // was blanked; a scheme word is no secret.
    const kept = masked.slice(s, e).trim();
    if (e > s && kept !== "" && !SCHEME_WORD.test(kept)) raw.push([s, e]);
  }
  return mergeSpans(raw);
}

/** True when the value layer finds anything in `text`. */
export function hasSecret(text: string): boolean {
  return findSecretSpans(text).length > 0;
}
