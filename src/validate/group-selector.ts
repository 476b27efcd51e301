/**
 * The selector and priority of a group, read from its group.yaml alone: what agent matching
 * needs, without validating the group's config files. Used by `opamp-gitops plan` for the
 * groups a change does not touch (their files are the base's, already validated) and to tell
 * where agents would go even when another part of the head is invalid.
 */
import type { Selector } from "./model.js";
import { validateBuiltin } from "./schemas.js";
import { loadYaml } from "./yaml.js";

export interface GroupSelector {
  selector: Selector;
  priority: number;
}

/** Undefined when group.yaml is missing, does not parse, or does not follow its schema. */
export function readGroupSelector(
  name: string,
  groupYaml: Uint8Array | undefined,
): GroupSelector | undefined {
  if (!groupYaml) return undefined;
  const { yaml } = loadYaml(groupYaml, `groups/${name}/group.yaml`);
  if (!yaml || validateBuiltin("group", yaml).length > 0) return undefined;
  const raw = yaml.value as {
    selector: { match?: Record<string, string>; expressions?: Selector["expressions"] };
    priority?: number;
  };
  return {
    selector: {
      match: { ...(raw.selector.match ?? {}) },
      expressions: (raw.selector.expressions ?? []).map((e) => ({
        key: e.key,
        operator: e.operator,
        values: [...(e.values ?? [])],
      })),
    },
    priority: raw.priority ?? 0,
  };
}
