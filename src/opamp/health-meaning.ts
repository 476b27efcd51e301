/**
 * What a ComponentHealth means, without its clock: a Collector's components report StatusOK
 * every second with nothing new but `status_time_unix_nano` / `start_time_unix_nano`, and such
 * a report must not count as a health change (no Redis write, no event, no status commit).
 *
 * The meaning is `healthy`, `status`, `last_error`, `attributes` and the component tree (its
 * keys and, recursively, the same fields of every component). Map keys are sorted, so the
 * random map order of Go's protobuf encoder does not read as a change either.
 */
import type { ComponentHealth, KeyValue } from "./messages.js";

/** Components nested deeper than this are compared as "present" only (bounds the recursion). */
export const MAX_HEALTH_DEPTH = 32;

/**
 * A canonical string of the report's meaning: two reports mean the same exactly when their
 * strings are equal. Linear in the size of the (already bounded, decoded) report.
 */
export function healthMeaning(health: Readonly<ComponentHealth>): string {
  return JSON.stringify(meaning(health, 0));
}

type Meaning = [boolean, string, string, unknown[], Array<[string, Meaning | null]>];

function meaning(h: Readonly<ComponentHealth>, depth: number): Meaning {
  const children: Array<[string, Meaning | null]> = [];
  const map = h.componentHealthMap ?? {};
  for (const key of Object.keys(map).sort()) {
    const child = map[key];
    children.push([key, child && depth < MAX_HEALTH_DEPTH ? meaning(child, depth + 1) : null]);
  }
  return [
    h.healthy === true,
    h.status ?? "",
    h.lastError ?? "",
    (h.attributes ?? []).map(attribute),
    children,
  ];
}

function attribute(kv: Readonly<KeyValue>): unknown {
  // AnyValue holds no timestamps; its JSON (Longs and bytes as strings) is compared as is.
  return [
    kv.key,
    JSON.stringify(kv.value ?? null, (_k, v) => (typeof v === "bigint" ? String(v) : v)),
  ];
}
