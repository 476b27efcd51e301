/**
 * Semantic checks of an OpenTelemetry Collector configuration (DESIGN §2), run after the
 * structure passed schemas/otelcol.schema.json. Structure and references are errors; what
 * depends on the distribution is a warning. A component a pipeline or service.extensions names
 * but no file defines (the Collector refuses it) is an error, and a warning only in a group
 * whose files are partial (`config.partial: true`: the agent merges them with
 * configuration of its own).
 *
 * Codes (E = error, W = warning, P = error, warning in a partial group):
 *   P OTELCOL_UNDEFINED_COMPONENT  a pipeline or service.extensions names an undefined id
 *   E OTELCOL_BAD_COMPONENT_ID     id is not type[/name]
 *   E OTELCOL_BAD_PIPELINE_ID      pipeline id is not traces|metrics|logs|profiles[/name]
 *   E OTELCOL_DUPLICATE_REFERENCE  a list names the same component twice
 *   E OTELCOL_AMBIGUOUS_ID         a connector id is also a receiver or exporter id
 *   E OTELCOL_CONNECTOR_ONE_SIDED  connector used only as exporter or only as receiver
 *   E OTELCOL_PIPELINE_CYCLE       connectors join pipelines in a loop
 *   E OTELCOL_MISSPELLED_SECTION   top-level key close to receivers, exporters, ...
 *   W OTELCOL_UNKNOWN_TOP_LEVEL_KEY  other top-level keys (distributions add some)
 *   W OTELCOL_UNKNOWN_COMPONENT_TYPE type not in the upstream catalog (did-you-mean)
 *   W OTELCOL_REMOVED_COMPONENT_TYPE type removed upstream (e.g. the logging exporter)
 *   W OTELCOL_UNUSED_COMPONENT     defined but in no pipeline / not in service.extensions
 *   W OTELCOL_PIPELINE_NO_RECEIVERS, OTELCOL_PIPELINE_NO_EXPORTERS, OTELCOL_NO_PIPELINES
 *   W OTELCOL_PLAINTEXT_SECRET, OTELCOL_BAD_PLACEHOLDER
 *   W OTELCOL_UNKNOWN_SETTING, OTELCOL_DEPRECATED_SETTING
 */
import { didYouMean } from "./did-you-mean.js";
import type { Finding } from "./model.js";
import {
  COMPONENT_KINDS,
  type ComponentKind,
  catalogTypes,
  isKnownType,
  REMOVED_TYPES,
  singular,
} from "./otelcol-catalog.js";
import {
  CheckContext,
  type CollectorCheckOptions,
  isObject,
  type Where,
} from "./otelcol-context.js";
import { parseComponentId, typeOf } from "./otelcol-ids.js";
import { checkReferences, type Defined } from "./otelcol-references.js";
import { checkPlaceholders, checkSecrets } from "./otelcol-secrets.js";
import { checkSettings } from "./otelcol-settings.js";

const SECTIONS = [...COMPONENT_KINDS, "service"];

/**
 * Checks the Collector configuration `config`; `where` locates its paths (see whereIn and
 * whereInMerged in otelcol-context.ts). `options.partial` lowers what another configuration
 * layer may supply to warnings.
 */
export function checkCollectorConfig(
  where: Where,
  config: unknown,
  options: CollectorCheckOptions = {},
): Finding[] {
  const ctx = new CheckContext(where, options);
  if (!isObject(config)) return ctx.findings;

  for (const key of Object.keys(config)) {
    if (SECTIONS.includes(key)) continue;
    const meant = didYouMean(key, SECTIONS);
    if (meant) {
      ctx.add(
        [key],
        "error",
        "OTELCOL_MISSPELLED_SECTION",
        `unknown top-level key "${key}"; did you mean "${meant}"?`,
        { key, suggestion: meant },
        true,
      );
    } else {
      ctx.add(
        [key],
        "warning",
        "OTELCOL_UNKNOWN_TOP_LEVEL_KEY",
        `unknown top-level key "${key}": the upstream Collector refuses it; fine only for a distribution that defines it (such as Splunk's config_sources)`,
        { key },
        true,
      );
    }
  }

  const defined = {} as Defined;
  for (const kind of COMPONENT_KINDS) {
    defined[kind] = new Set();
    const section = config[kind];
    if (!isObject(section)) continue;
    for (const id of Object.keys(section)) {
      defined[kind].add(id);
      checkDefinition(ctx, kind, id);
    }
  }
  for (const id of defined.connectors) {
    const other = (["receivers", "exporters"] as const).find((k) => defined[k].has(id));
    if (other)
      ctx.add(
        ["connectors", id],
        "error",
        "OTELCOL_AMBIGUOUS_ID",
        `"${id}" is defined both as a connector and as ${singular(other) === "exporter" ? "an exporter" : "a receiver"}: pipelines cannot tell them apart; rename one (e.g. "${typeOf(id)}/connector")`,
        { id },
        true,
      );
  }

  const used = checkReferences(ctx, config, defined);
  for (const kind of COMPONENT_KINDS) {
    for (const id of defined[kind]) {
      if (used[kind].has(id)) continue;
      const where = kind === "extensions" ? "service.extensions" : "a pipeline";
      ctx.add(
        [kind, id],
        "warning",
        "OTELCOL_UNUSED_COMPONENT",
        `${singular(kind)} "${id}" is defined but not used in ${kind === "extensions" ? where : "any pipeline"}: the Collector ignores it; remove it or add it to ${where}`,
        { id, kind },
        true,
      );
    }
  }
  checkSecrets(ctx, config);
  checkPlaceholders(ctx, config);
  checkSettings(ctx, config);
  return ctx.findings;
}

function checkDefinition(ctx: CheckContext, kind: ComponentKind, id: string): void {
  const parsed = parseComponentId(id);
  const path = [kind, id];
  if ("error" in parsed) {
    ctx.add(
      path,
      "error",
      "OTELCOL_BAD_COMPONENT_ID",
      `${singular(kind)} id "${id}" is not valid: ${parsed.error} (ids are type or type/name)`,
      { id, kind },
      true,
    );
    return;
  }
  const removed = REMOVED_TYPES[kind]?.[parsed.type];
  if (removed) {
    ctx.add(
      path,
      "warning",
      "OTELCOL_REMOVED_COMPONENT_TYPE",
      `${singular(kind)} type "${parsed.type}" was ${removed}`,
      { id, kind, type: parsed.type },
      true,
    );
    return;
  }
  if (isKnownType(kind, parsed.type)) return;
  const meant = didYouMean(parsed.type, catalogTypes(kind));
  const otherKinds = COMPONENT_KINDS.filter((k) => k !== kind && isKnownType(k, parsed.type));
  const other =
    otherKinds.length && !meant
      ? ` ("${parsed.type}" is a known ${otherKinds.map(singular).join(" and ")} type, not a ${singular(kind)} type)`
      : "";
  ctx.add(
    path,
    "warning",
    "OTELCOL_UNKNOWN_COMPONENT_TYPE",
    `${singular(kind)} type "${parsed.type}" is not an upstream Collector component${meant ? `; did you mean "${meant}"?` : other || ": fine if your distribution provides it"}`,
    { id, kind, type: parsed.type, ...(meant ? { suggestion: meant } : {}) },
    true,
  );
}
