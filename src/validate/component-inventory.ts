/**
 * Which Collector component types an agent's build has, and which of a configuration's needed
 * types it lacks. Pure, and free of OpAMP types, so that `serve` (src/service/agent-components.ts,
 * from AvailableComponents), the status writer (the agent's status file records its types) and
 * an offline `plan` (reading those files) match agents against configs with the same code.
 *
 * Kinds are the Collector config's plural sections (`receivers`, `processors`, `exporters`,
 * `connectors`, `extensions`); singular names are accepted. Other kinds (Fluent Bit's
 * `input`/`output`) are ignored: an inventory without any Collector kind tells nothing, and
 * such an agent is never judged incompatible.
 */
import { COMPONENT_KINDS } from "./otelcol-catalog.js";
import type { RequiredComponent } from "./otelcol-components.js";

/** kind (plural, as in a Collector config) → the types the build has. */
export type ComponentInventory = ReadonlyMap<string, ReadonlySet<string>>;

const KINDS = new Set<string>(COMPONENT_KINDS);

/** The inventory of kind → types lists; undefined when no Collector kind is listed. */
export function inventoryOf(
  kinds: Readonly<Record<string, readonly string[]>>,
): ComponentInventory | undefined {
  const out = new Map<string, Set<string>>();
  for (const [key, list] of Object.entries(kinds)) {
    const kind = key.endsWith("s") ? key : `${key}s`;
    if (!KINDS.has(kind)) continue;
    const types = out.get(kind) ?? new Set<string>();
    for (const type of list) types.add(type);
    out.set(kind, types);
  }
  return out.size > 0 ? out : undefined;
}

/**
 * The needed components the inventory lacks, as `kind/type` (`exporters/otlphttp`), in the
 * order of `required`; [] when it has them all or tells nothing (undefined inventory). A kind
 * absent from an inventory that lists other kinds counts as having no type of that kind.
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
