/**
 * Layer 2b of the secret detector: credentials in running text that no token format names,
 * found anywhere in a string (an agent's error message, a config value, a command line):
 *
 * - private-key blocks (PEM, OpenSSH, PGP), also when base64-encoded; JWTs;
 * - `Authorization`-style headers and auth schemes (`Bearer …`, `Basic …`, `Api-Token …`,
 *   `GenieKey …`, `SSWS …`, `Splunk …`, ...) in the middle of a sentence;
 * - `name=value`, `name: value`, `"name": "value"` and `--name value` pairs whose name is a
 *   secret key (keys.ts), so connection strings and command lines are covered;
 * - "api key ABC123"-style phrases where a credential-looking word follows the name;
 * - URLs: user info (`https://user:pass@`, a lone `https://token@`), query parameters with a
 *   secret name or a token-like value (`?sig=`, `&X-Amz-Signature=`, `?access_token=`), and
 *   token-like path segments (Slack, Telegram, Discord webhooks);
 * - DSNs without a scheme: `user:pass@tcp(db:3306)/app`;
 * - long random-looking words (upper, lower case and digits, ≥ 32 characters).
 *
 * Each rule returns the spans of the secret part only, so names and hosts stay readable.
 * Inputs are bounded by the caller (redactText cuts first); every pattern is linear.
 */
import { isSecretKey, normalizeKey } from "./keys.js";
import type { Span } from "./secretlint.js";

/** True for a word that looks like a credential rather than prose ("expired", "Failed"). */
export function looksLikeCredential(word: string): boolean {
  // "expired:", "failed.": prose punctuation is not part of the word.
  const v = word.replace(/[.:,;!?)]+$/, "");
  if (v.length < 6) return false;
  if (/^[a-z]+$/.test(v) || /^[A-Z][a-z]+$/.test(v) || /^[A-Z]+$/.test(v)) return false;
  if (/^\d{1,5}$/.test(v)) return false;
  return /[0-9]/.test(v) || /[A-Z]/.test(v) || /[^A-Za-z]/.test(v) || v.length >= 20;
}

/** A random-looking word: upper and lower case letters and digits, long. */
function looksRandom(v: string, min: number): boolean {
  return v.length >= min && /[0-9]/.test(v) && /[a-z]/.test(v) && /[A-Z]/.test(v);
}

const PEM_BLOCK =
  /-----BEGIN ([A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----[\s\S]*?(?:-----END \1-----|$)/g;
const BASE64_RUN = /[A-Za-z0-9+/]{40,}={0,2}/g;
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
/** Auth schemes: the word that follows is the credential. */
const SCHEME =
  /\b(bearer|basic|digest|token|api-?token|api-?key|geniekey|ssws|splunk|negotiate|ntlm|oauth|dsn|sharedaccesssignature|klaviyo-api-key|key)\s+("[^"]*"|'[^']*'|[^\s"',;&)\]}>]+)/gi;
/** Header names whose value is always a credential. */
const STRONG_HEADER =
  /\b(proxy-authorization|authorization|x-api-key|api-key|apikey|x-auth-token|x-access-token|x-amz-security-token|cookie|set-cookie|x-honeycomb-team|dd-api-key|x-sf-token|x-insert-key|x-license-key|x-goog-api-key|ocp-apim-subscription-key|private-token|x-gitlab-token|x-vault-token)\b["']?\s*[:=]\s*((?:[A-Za-z][A-Za-z0-9-]*\s+)?("[^"]*"|'[^']*'|[^\s"',;&)\]}>]+))/gi;
/** `name=value`, `name: value`, `"name": "value"`; the name is checked with isSecretKey. */
const PAIR_NAME = /(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_.-]{0,63})["']?(?=\s*[=:]|\s+\S)/g;
/** What follows a pair's name: separator, then the value (quoted, or up to a delimiter). */
const PAIR_REST = /^(\s*=\s*|\s*:\s*|\s+)("[^"]*"|'[^']*'|[^\s"',;&)\]}>]+)/;
/** "api key ABC", "access token ABC": a two-word name. */
const PHRASE =
  /\b(api|access|secret|private|auth|license|ingest|app|write|routing|account|integration|encryption|bearer|session|refresh|personal access)[ _.-](key|token|secret)\b["']?\s*[:=]?\s*("[^"]*"|'[^']*'|[^\s"',;&)\]}>]+)/gi;
/** Where a URL ends: whitespace, a quote, or a bracket of running text. */
const URL_END = /[\s"'<>`]/;
const SCHEME_CHAR = /[A-Za-z0-9+.-]/;

/**
 * The URLs of `text` as [start, url]: found from each "://" (a scheme of up to 32 characters
 * before it), so the search stays linear on hostile text (a regex with an unbounded scheme
 * is quadratic on "a.a.a.…").
 */
function findUrls(text: string): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  let from = 0;
  for (;;) {
    const i = text.indexOf("://", from);
    if (i === -1) return out;
    let j = i;
    while (j > 0 && i - j < 32 && SCHEME_CHAR.test(text[j - 1] as string)) j--;
    while (j < i && !/[A-Za-z]/.test(text[j] as string)) j++;
    let end = i + 3;
    while (end < text.length && !URL_END.test(text[end] as string)) end++;
    if (j < i && end > i + 3) out.push([j, text.slice(j, end)]);
    from = Math.max(end, i + 3);
  }
}
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i;
const QUERY = /[?&;]([^=&#\s"'<>;]{1,64})=([^&#\s"'<>;]*)/g;
/** Query parameter names that carry credentials though isSecretKey does not know them. */
const QUERY_SECRET = new Set([
  "key",
  "sig",
  "code",
  "auth",
  "sign",
  "xamzsignature",
  "xamzcredential",
  "xamzsecuritytoken",
  "xgoogsignature",
  "xgoogcredential",
  "signature",
  "accesstoken",
  "privatetoken",
  "session",
  "sessionid",
  "sid",
  "ticket",
  "hash",
  "k",
  "p",
  "pw",
]);
/** Scheme-less DSN: `user:pass@host` (the password is the span). */
const BARE_DSN =
  /(?<![A-Za-z0-9_.%+/-])([A-Za-z0-9_.%+-]{1,64}):([^\s@/:"'<>]{1,256})@(?=[A-Za-z0-9_.([-])/g;
const RANDOM_WORD = /[A-Za-z0-9+/_-]{32,}={0,2}/g;
const TELEGRAM = /\/bot(\d{5,}:[A-Za-z0-9_-]{20,})/g;

function add(out: Span[], start: number, text: string): void {
  if (text.length > 0) out.push([start, start + text.length]);
}

/** The span of the value group `v`, found after `prefixLen` characters of match `m`. */
function valueSpan(out: Span[], m: RegExpExecArray, v: string): void {
  const at = m.index + m[0].length - v.length;
  // A quoted value: hide what is inside the quotes.
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v[v.length - 1] === v[0])
    add(out, at + 1, v.slice(1, -1));
  else add(out, at, v);
}

function urlSpans(out: Span[], text: string): void {
  for (const [at, url] of findUrls(text)) {
    const ui = USERINFO.exec(url);
    if (ui) {
      const scheme = ui[1] as string;
      const info = ui[2] as string;
      const colon = info.indexOf(":");
      // user:password keeps the user; a lone user part (Sentry DSN key, GitHub token) is hidden.
      if (colon >= 0) add(out, at + scheme.length + colon + 1, info.slice(colon + 1));
      else add(out, at + scheme.length, info);
    }
    // Path segments that look like tokens (webhook URLs carry them in the path).
    const pathStart = url.indexOf("/", url.indexOf("://") + 3);
    if (pathStart > 0) {
      const end = url.search(/[?#]/);
      const path = url.slice(pathStart, end === -1 ? undefined : end);
      let offset = at + pathStart;
      for (const seg of path.split("/")) {
        if (
          looksRandom(seg, 20) ||
          /^[0-9a-f]{32,}$/i.test(seg) ||
          /^[A-Za-z0-9_-]{40,}$/.test(seg)
        )
          add(out, offset, seg);
        offset += seg.length + 1;
      }
    }
  }
}

function querySpans(out: Span[], text: string): void {
  for (const m of text.matchAll(QUERY)) {
    const name = normalizeKey(decodeSafe(m[1] as string));
    const v = m[2] as string;
    if (v === "") continue;
    if (isSecretKey(name) || QUERY_SECRET.has(name) || looksRandom(v, 16))
      add(out, m.index + m[0].length - v.length, v);
  }
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Spans of `text` that this file's rules find (unsorted, may overlap). */
export function patternSpans(text: string): Span[] {
  const out: Span[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) add(out, m.index, m[0]);
  for (const m of text.matchAll(BASE64_RUN)) {
    const decoded = Buffer.from(m[0], "base64").toString("latin1");
    if (/PRIVATE KEY|-----BEGIN/.test(decoded)) add(out, m.index, m[0]);
  }
  for (const m of text.matchAll(JWT)) add(out, m.index, m[0]);
  for (const m of text.matchAll(SCHEME)) {
    const v = m[2] as string;
    const scheme = (m[1] as string).toLowerCase();
    // "token expired", "basic authentication": prose, not a credential.
    if (
      scheme === "bearer" || scheme === "basic"
        ? v.length >= 4 && !/^[a-z]+$/.test(v)
        : looksLikeCredential(v)
    )
      valueSpan(out, m as RegExpExecArray, v);
  }
  for (const m of text.matchAll(STRONG_HEADER))
    valueSpan(out, m as RegExpExecArray, m[2] as string);
  for (const m of text.matchAll(PAIR_NAME)) {
    const name = m[1] as string;
    if (!isSecretKey(name)) continue;
    const from = m.index + m[0].length;
    const rest = PAIR_REST.exec(text.slice(from, from + 4200));
    if (!rest) continue;
    const sep = rest[1] as string;
    const v = rest[2] as string;
    const flag = text[m.index - 1] === "-";
    // `name=value` and `name:value` always; `name: value` and `name value` in prose only when
    // the value looks like a credential ("token: expired" stays), or after a --flag.
    const tight = sep.trim() === "=" || sep === ":";
    const bare = v.replace(/^["']|["']$/g, "");
    if (tight || flag || looksLikeCredential(bare) || (sep.trim() === ":" && v[0] === '"')) {
      const at = from + sep.length;
      if (v.length >= 2 && (v[0] === '"' || v[0] === "'")) add(out, at + 1, v.slice(1, -1));
      else add(out, at, v);
    }
  }
  for (const m of text.matchAll(PHRASE)) {
    const v = m[3] as string;
    if (looksLikeCredential(v.replace(/^["']|["']$/g, ""))) valueSpan(out, m as RegExpExecArray, v);
  }
  urlSpans(out, text);
  querySpans(out, text);
  for (const m of text.matchAll(BARE_DSN)) {
    const pass = m[2] as string;
    add(out, m.index + (m[1] as string).length + 1, pass);
  }
  for (const m of text.matchAll(TELEGRAM)) add(out, m.index + 4, m[1] as string);
  for (const m of text.matchAll(RANDOM_WORD)) if (looksRandom(m[0], 32)) add(out, m.index, m[0]);
  return out;
}
