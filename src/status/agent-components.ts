/**
 * The `components` of an agent's status file: the Collector component types its build has
 * (OpAMP AvailableComponents), so that an offline `plan` can tell which agents lack a
 * component a change needs, with the same matching as `serve` (src/validate
 * component-inventory.ts).
 *
 * Compact and bounded: only the Collector kinds (plural), only types the Collector accepts as a
 * type (`^[a-zA-Z][0-9a-zA-Z_]{0,62}$`; anything else can never be named by a config, and so
 * needs no redaction), each kind's types sorted and deduplicated, at most MAX_COMPONENT_TYPES
 * in all (the report itself is bounded by `--max-available-components`). Pure.
 */
import type { AvailableComponents } from "../opamp/index.js";
import { COMPONENT_KINDS } from "../validate/otelcol-catalog.js";
import type { AgentComponentsStatus } from "./model.js";

export const MAX_COMPONENT_TYPES = 4096;
const TYPE = /^[a-zA-Z][0-9a-zA-Z_]{0,62}$/;
const KINDS = new Set<string>(COMPONENT_KINDS);

/** The status of `reported`; undefined when it lists no Collector kind (e.g. hash only). */
export function componentsStatus(
  reported: AvailableComponents | null | undefined,
): AgentComponentsStatus | undefined {
  if (!reported?.components) return undefined;
  const byKind = new Map<string, Set<string>>();
  for (const [key, details] of Object.entries(reported.components)) {
    const kind = key.endsWith("s") ? key : `${key}s`;
    if (!KINDS.has(kind)) continue;
    const types = byKind.get(kind) ?? new Set<string>();
    for (const type of Object.keys(details?.subComponentMap ?? {}))
      if (TYPE.test(type)) types.add(type);
    byKind.set(kind, types);
  }
  if (byKind.size === 0) return undefined;
  const kinds: Record<string, string[]> = {};
  let left = MAX_COMPONENT_TYPES;
  let truncated = 0;
  for (const kind of COMPONENT_KINDS) {
    const types = byKind.get(kind);
    if (!types) continue;
    const sorted = [...types].sort();
    const kept = sorted.slice(0, Math.max(0, left));
    truncated += sorted.length - kept.length;
    left -= kept.length;
    kinds[kind] = kept;
  }
  const hash = reported.hash ? Buffer.from(reported.hash).toString("hex").slice(0, 128) : "";
  return truncated > 0 ? { hash, kinds, truncated } : { hash, kinds };
}
