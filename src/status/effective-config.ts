/**
 * The `effectiveConfig` of an agent's status file: each entry of the EffectiveConfig's
 * config map, interpreted the way real agents report it, then redacted (redact.ts).
 *
 * Conventions of real agents, first-class here:
 * - The opampsupervisor reports the Collector's whole merged configuration under the key
 *   `""` with an empty content type. The Operator OpAMP Bridge reports one entry per
 *   OpenTelemetryCollector resource, keyed `<namespace>/<name>`, content type `yaml`.
 * - A content type that is empty or the bare word `yaml` (or `json`) means: YAML when the
 *   body parses as a YAML map or list (JSON is YAML), else UTF-8 text stored with secrets
 *   redacted line by line and a note saying so. A body that is not UTF-8 is not written.
 * - Any other content type keeps redact.ts's rule (YAML/JSON types written, others noted).
 * - An absent body (protobufjs decodes a missing `bytes` field as an empty Array, not a
 *   Uint8Array) and an empty one are both written as `content: null`, never thrown on.
 *
 * Entry names come from the agent: they are only ever map keys in the status file (cut at
 * 4 KiB by the caller), never parts of a path. One entry that cannot be rendered gets a
 * note; it never stops the agent's status file.
 */
import { createHash } from "node:crypto";
import type { EffectiveConfig } from "../opamp/index.js";
import type { ConfigFileStatus } from "./model.js";
import {
  DEFAULT_MAX_CONFIG_BYTES,
  PROCESS_REDACTOR,
  type RedactOptions,
  redactConfigFileCached,
  setOwn,
} from "./redact.js";

/** Content types that mean "YAML if it parses, else text" (lowercased, parameters dropped). */
const LOOSE_TYPES = new Set(["", "yaml", "yml", "json"]);

/** At most this many entries of one config map are written (the Bridge reports one per CR). */
export const MAX_CONFIG_ENTRIES = 256;

/** A decoded `bytes` field as bytes: Uint8Array kept, anything else (absent: `[]`) empty. */
export function bodyBytes(body: unknown): Uint8Array {
  return body instanceof Uint8Array ? body : new Uint8Array(0);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A body that is not YAML: UTF-8 text, redacted line by line, with a note. */
function asText(
  contentType: string,
  body: Uint8Array,
  options: Omit<RedactOptions, "maxBytes">,
): ConfigFileStatus {
  const redactor = options.redactor ?? PROCESS_REDACTOR;
  const base = { contentType: redactor.text(contentType, 200), bytes: body.length };
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return { ...base, note: "not written: not YAML, JSON or UTF-8 text" };
  }
  const lines = text.split("\n");
  let redacted = 0;
  if (options.mode === "full")
    return { ...base, content: text, note: "not YAML or JSON: stored as text, unredacted" };
  const out = lines.map((line) => {
    const r = redactor.text(line, Number.MAX_SAFE_INTEGER);
    if (r !== line) redacted++;
    return r;
  });
  return {
    ...base,
    redacted,
    content: out.join("\n"),
    note: "not YAML or JSON: stored as text, secrets redacted line by line",
  };
}

/** One entry's status: redacted content, text with a note, or only a note. */
export function configEntry(
  name: string,
  contentType: string,
  rawBody: unknown,
  maxBytes = DEFAULT_MAX_CONFIG_BYTES,
  options: Omit<RedactOptions, "maxBytes"> = {},
): ConfigFileStatus {
  const body = bodyBytes(rawBody);
  const type = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  if (!LOOSE_TYPES.has(type))
    return redactConfigFileCached(name, contentType, body, maxBytes, options);
  // Parsed as YAML whatever the name says; the agent's own content type is what is recorded.
  const parsed = redactConfigFileCached(name, "text/yaml", body, maxBytes, options);
  const agentType = (options.redactor ?? PROCESS_REDACTOR).text(contentType, 200);
  // Written, hashed, empty or too large: done. Only a body that is not a YAML map or list
  // becomes text.
  if (parsed.note === undefined || body.length > maxBytes)
    return { ...parsed, contentType: agentType };
  return asText(contentType, body, options);
}

/** The status file's `effectiveConfig`: entries by name, and a hash over what is written. */
export function effectiveConfigStatus(
  config: EffectiveConfig | null | undefined,
  maxBytes: number | undefined,
  name: (s: string) => string,
  options: Omit<RedactOptions, "maxBytes"> = {},
): { hash: string; files: Record<string, ConfigFileStatus> } | null {
  if (!config) return null;
  // "none": the operator wants no config bodies in Git at all.
  const map = options.mode === "none" ? {} : (config.configMap?.configMap ?? {});
  const files: Record<string, ConfigFileStatus> = {};
  const hash = createHash("sha256");
  const names = Object.keys(map).sort();
  for (const key of names.slice(0, MAX_CONFIG_ENTRIES)) {
    const f = map[key];
    let entry: ConfigFileStatus;
    try {
      entry = configEntry(key, f?.contentType ?? "", f?.body, maxBytes, options);
    } catch (err) {
      // A body this code did not foresee must not cost the agent its status file.
      entry = { contentType: "", note: `not written: ${(err as Error).message.slice(0, 200)}` };
    }
    setOwn(files, name(key), entry);
    hash.update(JSON.stringify([key, entry])).update("\0");
  }
  return { hash: hash.digest("hex"), files };
}
