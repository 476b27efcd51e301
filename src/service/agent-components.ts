/**
 * Which Collector component types an agent's build has, from its OpAMP AvailableComponents.
 * Pure.
 *
 * The Collector (opamp extension, supervisor) reports one entry per kind (`receivers`,
 * `processors`, `exporters`, `connectors`, `extensions`) whose sub-component map is keyed by
 * type. Singular kind names are accepted too. A report holding none of these kinds (no map
 * yet, only a hash; or another agent's kinds such as Fluent Bit's `input`/`output`) says
 * nothing about Collector components: such an agent is never judged incompatible.
 */
import type { AvailableComponents } from "../opamp/index.js";
import { type ComponentInventory, inventoryOf } from "../validate/index.js";

// The matching itself is in src/validate (component-inventory.ts), shared with the status
// writer and an offline `plan`.
export { type ComponentInventory, inventoryOf, missingComponents } from "../validate/index.js";

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
