/**
 * Secrets out of the effective configs agents report, before anything is written (on top of
 * whatever the agent redacted itself).
 *
 * A YAML or JSON body is parsed through src/validate's loader (limits, unique keys) and
 * walked:
 * - a value under a secret-looking key (password, passwd, secret, token, api_key, apikey,
 *   access_key, private_key, authorization, bearer, credentials, passphrase, ... in any case,
 *   with `_`, `-` or `.` anywhere) is replaced by "<redacted>"; under such a key every string
 *   and number of a nested map or list is replaced. Keys naming where a secret is, not the
 *   secret (…_file, …_path, …_url, …_endpoint, …_env, …_name, …_type), are kept.
 * - whatever the key: "Bearer …"/"Basic …" credentials, PEM private keys, a URL's user info
 *   anywhere in a string (the password, or a lone user part such as a Sentry DSN key),
 *   `password=…`-style pairs and secret-named query parameters of a URL are replaced.
 * - every value of a `headers` map or list except plainly harmless headers (Content-Type,
 *   Accept, User-Agent, X-Scope-OrgID, ...); a bare `key` under api/auth/license.
 * - `${env:VAR}`-style placeholders stay (they name a variable, they are not secrets), also
 *   after a scheme ("Bearer ${env:TOKEN}").
 * - header lists ({name: Authorization, value: …}) redact the value.
 *
 * A body that is not YAML or JSON by its content type or name, that does not parse, or that
 * is larger than `maxBytes`, is not written at all: the file gets a note instead of content.
 */
import { createHash } from "node:crypto";
import { loadYaml } from "../../validate/yaml.js";
import type { ConfigFileStatus } from "./model.js";

export const REDACTED = "<redacted>";

/** Bodies above this are not written (the note says so). */
export const DEFAULT_MAX_CONFIG_BYTES = 256 * 1024;

const SECRET_WORD =
  /(password|passwd|passphrase|secret|token|apikey|accesskey|privatekey|authorization|bearer|credential|signingkey|sessionkey|licensekey|sharedkey|masterkey|connectionstring|instrumentationkey|pwd$)/;
const LOCATION_SUFFIX =
  /(file|files|path|dir|directory|url|uri|endpoint|env|name|type|kind|ttl|timeout|interval|expiry|enabled|header)$/;
/** Parents under which a bare `key` is a secret (e.g. Datadog's `api: {key: …}`). */
const KEY_PARENTS = new Set(["api", "auth", "license", "ingest", "access"]);
/** Header names whose values are not secrets; every other header value is redacted. */
const PLAIN_HEADERS = new Set([
  "accept",
  "acceptencoding",
  "contentencoding",
  "contenttype",
  "useragent",
  "xscopeorgid",
  "xtenant",
  "xtenantid",
]);

const normalize = (key: string) => key.toLowerCase().replace(/[^a-z0-9]/g, "");

/** True when a map key names a secret value. */
export function isSecretKey(key: string): boolean {
  const k = normalize(key);
  return k === "pass" || (SECRET_WORD.test(k) && !LOCATION_SUFFIX.test(k));
}

const PLACEHOLDER = /\$\{[^}]*\}/g;
const CREDENTIAL = /^\s*(bearer|basic|token|apikey|splunk)\s+\S+/i;
const PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;
/** A URL's user info, anywhere in a string: up to the last "@" before the host. */
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^\s/?#]*)@/gi;
/** `password=…` style pairs inside strings (connection strings, DSNs). */
const INLINE_PAIR =
  /\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|sharedaccesskey|accountkey)(\s*[=:]\s*)([^\s;&,'"]+)/gi;
const URL_QUERY_SECRET = /([?&])([^=&#\s]+)=([^&#\s]*)/g;

/** A value that only holds placeholders (after an optional auth scheme): not a secret. */
function onlyPlaceholders(value: string): boolean {
  if (!value.includes("${")) return false;
  const rest = value.replace(PLACEHOLDER, "").trim();
  return rest === "" || /^(bearer|basic|token)$/i.test(rest);
}

class Redactor {
  count = 0;

  /** Redacts a value found under a secret key: every string and number below. */
  secret(value: unknown, depth: number): unknown {
    if (typeof value === "string") {
      if (onlyPlaceholders(value)) return value;
      this.count++;
      return REDACTED;
    }
    if (typeof value === "number" || typeof value === "bigint") {
      this.count++;
      return REDACTED;
    }
    if (depth > 64) return REDACTED;
    if (Array.isArray(value)) return value.map((v) => this.secret(v, depth + 1));
    if (value !== null && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) setOwn(out, k, this.secret(v, depth + 1));
      return out;
    }
    return value;
  }

  /** Redacts secrets a string carries whatever its key. */
  text(value: string): string {
    if (onlyPlaceholders(value)) return value;
    if (CREDENTIAL.test(value) || PRIVATE_KEY.test(value)) {
      this.count++;
      return REDACTED;
    }
    let out = value.replace(URL_USERINFO, (m, scheme: string, info: string) => {
      if (onlyPlaceholders(info)) return m;
      this.count++;
      const colon = info.indexOf(":");
      // user:password keeps the user; a lone user part (Sentry DSN, GitHub token) is the secret.
      return colon > 0 ? `${scheme}${info.slice(0, colon)}:${REDACTED}@` : `${scheme}${REDACTED}@`;
    });
    out = out.replace(INLINE_PAIR, (m, name: string, sep: string, v: string) => {
      if (v === REDACTED || onlyPlaceholders(v)) return m;
      this.count++;
      return `${name}${sep}${REDACTED}`;
    });
    if (/^[a-z][a-z0-9+.-]*:\/\/\S*\?/i.test(out)) {
      out = out.replace(URL_QUERY_SECRET, (m, sep: string, name: string, v: string) => {
        if (!isSecretKey(decodeURIComponentSafe(name)) || v === "" || v === REDACTED) return m;
        if (onlyPlaceholders(v)) return m;
        this.count++;
        return `${sep}${name}=${REDACTED}`;
      });
    }
    return out;
  }

  /** `parent`: the normalized key this value sits under ("" at the top). */
  walk(value: unknown, depth: number, parent = ""): unknown {
    if (typeof value === "string") return this.text(value);
    if (depth > 64) return REDACTED;
    if (Array.isArray(value)) return value.map((v) => this.walk(v, depth + 1, parent));
    if (value !== null && typeof value === "object") {
      const obj = value as Record<string, unknown>;
      // Header lists: {name|key: Authorization, value: "..."}.
      const label = typeof obj.name === "string" ? obj.name : obj.key;
      const headerSecret =
        typeof label === "string" &&
        "value" in obj &&
        (isSecretKey(label) || (parent === "headers" && !PLAIN_HEADERS.has(normalize(label))));
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(obj)) {
        const nk = normalize(k);
        const secret =
          isSecretKey(k) ||
          (headerSecret && k === "value") ||
          (nk === "key" && KEY_PARENTS.has(parent)) ||
          // A header map ({X-Honeycomb-Team: …}): every value but plainly harmless ones.
          (parent === "headers" &&
            !Array.isArray(obj) &&
            !PLAIN_HEADERS.has(nk) &&
            nk !== "name" &&
            nk !== "key" &&
            nk !== "value");
        setOwn(out, k, secret ? this.secret(v, depth + 1) : this.walk(v, depth + 1, nk));
      }
      return out;
    }
    return value;
  }
}

/** Sets a key that came from outside as an own property ("__proto__" included). */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Secrets a free text carries (errors, health messages): credentials, URL user info, pairs. */
export function redactText(value: string): string {
  return new Redactor().text(value);
}

/** Redacts a parsed config value; returns the copy and how many values were replaced. */
export function redactValue(value: unknown): { value: unknown; redacted: number } {
  const r = new Redactor();
  const out = r.walk(value, 0);
  return { value: out, redacted: r.count };
}

const STRUCTURED_TYPES = new Set([
  "text/yaml",
  "text/x-yaml",
  "application/yaml",
  "application/x-yaml",
  "application/json",
  "text/json",
]);

/** Whether a body is YAML or JSON, by its content type or (when that is empty) its name. */
export function isStructured(name: string, contentType: string): boolean {
  const type = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  if (type !== "") return STRUCTURED_TYPES.has(type) || type.endsWith("+json");
  return /\.(ya?ml|json)$/i.test(name);
}

/** The status entry of one reported config file: redacted content, or a note. */
export function redactConfigFile(
  name: string,
  contentType: string,
  body: Uint8Array,
  maxBytes = DEFAULT_MAX_CONFIG_BYTES,
): ConfigFileStatus {
  const base = { contentType, bytes: body.length };
  if (body.length === 0) return { ...base, content: null };
  if (!isStructured(name, contentType))
    return {
      ...base,
      note: `not written: content type "${contentType.slice(0, 80)}" is not YAML or JSON, so secrets in it cannot be redacted`,
    };
  if (body.length > maxBytes)
    return { ...base, note: `not written: ${body.length} bytes, over the ${maxBytes}-byte limit` };
  const loaded = loadYaml(body, name, { maxBytes });
  if (!loaded.yaml) {
    const first = loaded.findings.find((f) => f.severity === "error");
    const where = first ? ` (${first.code} at line ${first.line})` : "";
    return { ...base, note: `not written: not valid YAML or JSON${where}` };
  }
  const value = loaded.yaml.value;
  if (value !== null && typeof value !== "object")
    return { ...base, note: "not written: not a YAML or JSON map or list" };
  const { value: content, redacted } = redactValue(value);
  return { ...base, redacted, content };
}

const CACHE_SIZE = 512;
const CACHE_MAX_BODY = 32 * 1024;
const cache = new Map<string, ConfigFileStatus>();

/**
 * `redactConfigFile` with a small LRU cache by content: agents of a group mostly report the
 * same effective config, which is then parsed and redacted once. Entries are shared, never
 * mutated.
 */
export function redactConfigFileCached(
  name: string,
  contentType: string,
  body: Uint8Array,
  maxBytes = DEFAULT_MAX_CONFIG_BYTES,
): ConfigFileStatus {
  const key = createHash("sha1")
    .update(`${name}\0${contentType}\0${maxBytes}\0`)
    .update(body)
    .digest("hex");
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const entry = redactConfigFile(name, contentType, body, maxBytes);
  // Large bodies are not kept: 512 distinct 256 KiB configs would hold ~128 MB.
  if (body.length > CACHE_MAX_BODY) return entry;
  cache.set(key, entry);
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  return entry;
}
