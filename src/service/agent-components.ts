/**
 * Which Collector component types an agent's build has (from its OpAMP AvailableComponents)
 * and which of a configuration's needed types it lacks. Pure.
 *
 * The Collector (opamp extension, supervisor) reports one entry per kind (`receivers`,
 * `processors`, `exporters`, `connectors`, `extensions`) whose sub-component map is keyed by
 * type. Singular kind names are accepted too. A report holding none of these kinds (no map
 * yet, only a hash; or another agent's kinds such as Fluent Bit's `input`/`output`) says
 * nothing about Collector components: such an agent is never judged incompatible.
 */
import type { AvailableComponents } from "../opamp/index.js";
import { COMPONENT_KINDS, type RequiredComponent } from "../validate/index.js";

/** kind (plural, as in a Collector config) → the types the build has. */
export type ComponentInventory = ReadonlyMap<string, ReadonlySet<string>>;

const KINDS = new Set<string>(COMPONENT_KINDS);

const cache = new WeakMap<object, ComponentInventory | null>();

/** The agent's Collector components by kind; undefined when its report tells none. */
export function componentInventory(
  reported: AvailableComponents | null | undefined,
): ComponentInventory | undefined {
  if (!reported) return undefined;
  const cached = cache.get(reported);
  if (cached !== undefined) return cached ?? undefined;
  const kinds: Record<string, string[]> = {};
  for (const [key, details] of Object.entries(reported.components ?? {}))
    kinds[key] = Object.keys(details?.subComponentMap ?? {});
  const inventory = inventoryOf(kinds);
  cache.set(reported, inventory ?? null);
  return inventory;
}

/** The same from kind → types lists (the admin API's GET /api/v1/components shape). */
export function inventoryOf(kinds: Readonly<Record<string, readonly string[]>>) {
  const out = new Map<string, Set<string>>();
  for (const [key, list] of Object.entries(kinds)) {
    const kind = key.endsWith("s") ? key : `${key}s`;
    if (!KINDS.has(kind)) continue;
    const types = out.get(kind) ?? new Set<string>();
    for (const type of list) types.add(type);
    out.set(kind, types);
  }
  return out.size > 0 ? (out as ComponentInventory) : undefined;
}

/**
 * The needed components the inventory lacks, as `kind/type` (`exporters/otlphttp`), in the
 * order of `required`; [] when it has them all or tells nothing (undefined inventory). A kind
 * absent from a report that lists other kinds counts as having no type of that kind.
 */
export function missingComponents(
  required: readonly Pick<RequiredComponent, "kind" | "type">[],
  inventory: ComponentInventory | undefined,
): string[] {
  if (!inventory) return [];
  const missing: string[] = [];
  for (const r of required) {
    if (!inventory.get(r.kind)?.has(r.type)) missing.push(`${r.kind}/${r.type}`);
  }
  return missing;
}
