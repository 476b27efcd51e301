/**
 * The component types a Collector configuration needs its build to have: every id defined
 * under `receivers`, `processors`, `exporters`, `connectors` and `extensions` of any of the
 * group's files, reduced to its type (`otlp/2` → `otlp`). A Collector refuses a configuration
 * that defines a component of a type its build lacks, even one no pipeline uses, so defined
 * ids (not only used ones) are what an agent's AvailableComponents must cover.
 *
 * Pure, synchronous; files that do not parse, or are not maps, contribute nothing (validation
 * reports them). Files of other schemas (a bridge's OpenTelemetryCollector resources) have no
 * such top-level sections and so need nothing.
 */
import { COMPONENT_KINDS, type ComponentKind } from "./otelcol-catalog.js";
import { parseComponentId } from "./otelcol-ids.js";
import { loadYaml } from "./yaml.js";

/** One needed component type, with where it is first defined (for findings). */
export interface RequiredComponent {
  kind: ComponentKind;
  type: string;
  /** The first id of this type, as written (`otlp/2`). */
  id: string;
  file: string;
  line: number;
  column: number;
}

/**
 * The needed types of `files`, in file order, one entry per (kind, type). `root` prefixes the
 * file names in the positions (e.g. `groups/edge/`), as findings name repository paths.
 */
export function requiredComponents(
  files: readonly { name: string; body: Uint8Array }[],
  root = "",
): RequiredComponent[] {
  const out: RequiredComponent[] = [];
  const seen = new Set<string>();
  for (const f of files) {
    if (!/\.(ya?ml|json)$/i.test(f.name)) continue;
    const path = `${root}${f.name}`;
    const loaded = loadYaml(f.body, path).yaml;
    const value = loaded?.value;
    if (!isMap(value)) continue;
    for (const kind of COMPONENT_KINDS) {
      const section = value[kind];
      if (!isMap(section)) continue;
      for (const id of Object.keys(section)) {
        const parsed = parseComponentId(id);
        if ("error" in parsed) continue;
        const key = `${kind}/${parsed.type}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const at = loaded?.locate([kind, id], { key: true }) ?? { line: 1, column: 1 };
        out.push({ kind, type: parsed.type, id, file: path, line: at.line, column: at.column });
      }
    }
  }
  return out;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
