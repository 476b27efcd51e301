/**
 * What the status writer does with the effective configs agents report and every string they
 * send, before anything is written (on top of whatever the agent redacted itself). The
 * detection is src/redact's (three layers: keys, values, structure; docs/redaction.md); this
 * file parses bodies and applies the operator's choice (`--status-effective-config`):
 *
 * - "redacted" (default): a YAML or JSON body is parsed through src/validate's loader
 *   (limits, unique keys, aliases resolved, so an alias carries no secret past the detector)
 *   and written with every secret replaced by a keyed marker `<redacted:3fa2c1>`;
 * - "hash": no content, only the body's keyed hash (HMAC-SHA256, never a plain hash);
 * - "none": no files at all (the agent file's `effectiveConfig.files` is empty);
 * - "full": the parsed body as reported, no redaction (for a status repository no more widely
 *   readable than the agents' hosts).
 *
 * A body that is not YAML or JSON by its content type or name, that does not parse, or that
 * is larger than `maxBytes`, is not written at all: the file gets a note instead of content.
 */
import { createHash } from "node:crypto";
import { Marker, Redactor } from "../redact/index.js";
import { loadYaml } from "../validate/yaml.js";
import type { ConfigFileStatus } from "./model.js";

export { isSecretKey, setOwn } from "../redact/index.js";

/** How effective config bodies reach the status branch (`--status-effective-config`). */
export type EffectiveConfigMode = "full" | "redacted" | "hash" | "none";
export const EFFECTIVE_CONFIG_MODES: readonly EffectiveConfigMode[] = [
  "full",
  "redacted",
  "hash",
  "none",
];

/** Bodies above this are not written (the note says so). */
export const DEFAULT_MAX_CONFIG_BYTES = 256 * 1024;

/**
 * Longest agent text written to an agent file (errors, health, attribute values), in
 * characters, after redaction; longer text ends in "…". Group files and commit messages cut
 * shorter (group-status.ts, message.ts).
 */
export const MAX_AGENT_TEXT = 4096;

/**
 * The redactor used when none is given (unit tests of pure renderers): a random key per
 * process. The service always passes the one whose key it keeps in Redis.
 */
export const PROCESS_REDACTOR = new Redactor(Marker.random());

/** Secrets a free text carries (errors, health messages), replaced; cut at `max` characters. */
export function redactText(
  value: string,
  redactor: Redactor = PROCESS_REDACTOR,
  max = MAX_AGENT_TEXT,
): string {
  return redactor.text(value, max);
}

/** Redacts a parsed config value; returns the copy and how many values were replaced. */
export function redactValue(
  value: unknown,
  redactor: Redactor = PROCESS_REDACTOR,
): { value: unknown; redacted: number } {
  const r = redactor.value(value);
  return { value: r.value, redacted: r.redacted };
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

export interface RedactOptions {
  maxBytes?: number;
  mode?: EffectiveConfigMode;
  redactor?: Redactor;
}

/** The status entry of one reported config file: redacted content, a hash, or a note. */
export function redactConfigFile(
  name: string,
  contentType: string,
  body: Uint8Array,
  maxBytes = DEFAULT_MAX_CONFIG_BYTES,
  options: Omit<RedactOptions, "maxBytes"> = {},
): ConfigFileStatus {
  const redactor = options.redactor ?? PROCESS_REDACTOR;
  const mode = options.mode ?? "redacted";
  // The content type is agent text too.
  const type = redactor.text(contentType, 200);
  const base = { contentType: type, bytes: body.length };
  if (body.length === 0) return { ...base, content: null };
  if (mode === "hash") return { ...base, hash: redactor.marker.digest(body) };
  if (!isStructured(name, contentType))
    return {
      ...base,
      note: `not written: content type "${type.slice(0, 80)}" is not YAML or JSON, so secrets in it cannot be redacted`,
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
  if (mode === "full") return { ...base, content: value };
  const { value: content, redacted } = redactValue(value, redactor);
  return { ...base, redacted, content };
}

const CACHE_SIZE = 512;
const CACHE_MAX_BODY = 32 * 1024;
const cache = new Map<string, ConfigFileStatus>();
const redactorIds = new WeakMap<Redactor, number>();
let nextRedactorId = 0;

/**
 * `redactConfigFile` with a small LRU cache by content (and mode and redactor): agents of a
 * group mostly report the same effective config, which is then parsed and redacted once.
 * Entries are shared, never mutated.
 */
export function redactConfigFileCached(
  name: string,
  contentType: string,
  body: Uint8Array,
  maxBytes = DEFAULT_MAX_CONFIG_BYTES,
  options: Omit<RedactOptions, "maxBytes"> = {},
): ConfigFileStatus {
  const redactor = options.redactor ?? PROCESS_REDACTOR;
  let id = redactorIds.get(redactor);
  if (id === undefined) {
    id = nextRedactorId++;
    redactorIds.set(redactor, id);
  }
  const key = createHash("sha1")
    .update(`${name}\0${contentType}\0${maxBytes}\0${options.mode ?? "redacted"}\0${id}\0`)
    .update(body)
    .digest("hex");
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const entry = redactConfigFile(name, contentType, body, maxBytes, options);
  // Large bodies are not kept: 512 distinct 256 KiB configs would hold ~128 MB.
  if (body.length > CACHE_MAX_BODY) return entry;
  cache.set(key, entry);
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  return entry;
}
