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
    const hit = cache.get(text);
    if (hit) return hit.map(([s, e]) => [s, e]);
  }
  const spans = scan(text);
  if (cacheable) {
    cache.set(
      text,
      spans.map(([s, e]) => [s, e]),
    );
    if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  }
  return spans;
}

/** Strings up to this long have their spans cached (LRU by insertion, CACHE_SIZE entries). */
const CACHE_MAX_TEXT = 512;
const CACHE_SIZE = 20_000;
const cache = new Map<string, Span[]>();
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
