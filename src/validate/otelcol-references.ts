/**
 * References between Collector components (DESIGN §2): what pipelines and service.extensions
 * name must be defined; pipeline ids are `traces|metrics|logs|profiles[/name]`; connectors
 * must be used as exporter in one pipeline and receiver in another, for signal pairs they
 * support, and must not form a cycle (otelcol-connectors.ts).
 *
 * Severity of an undefined reference (DESIGN §2): an ERROR, because the Collector refuses a
 * configuration that names a component it does not define, so it must never reach a canary.
 * Only in a group whose files are partial (`config.partial: true`: the agent merges them with
 * configuration of its own, such as the supervisor's config_files or a Helm chart's defaults)
 * is it a WARNING, since that other layer may define it. (A pipeline with no receivers or no
 * exporters at all stays a warning everywhere: bootstrap layers that leave whole lists to
 * OpAMP, such as HyperDX's, are accepted configurations in the corpus.) Either way the message says what is
 * likely meant: a near-miss of a defined id, a section missing altogether, a type that is no
 * component type of that kind, an id defined in a section that does not count.
 */
import { didYouMean } from "./did-you-mean.js";
import {
  type ComponentKind,
  isKnownType,
  SIGNALS,
  type Signal,
  singular,
} from "./otelcol-catalog.js";
import { checkConnectors, checkCycles } from "./otelcol-connectors.js";
import type { CheckContext } from "./otelcol-context.js";
import { idList, isObject } from "./otelcol-context.js";
import { parsePipelineId, typeOf } from "./otelcol-ids.js";
import type { PathSegment } from "./source-map.js";

const squash = (id: string) => id.replace(/_/g, "").toLowerCase();

export type Defined = Record<ComponentKind, Set<string>>;

type Role = "receivers" | "processors" | "exporters";

/** Sections whose components a pipeline list may name. */
const SOURCES: Record<Role, ComponentKind[]> = {
  receivers: ["receivers", "connectors"],
  processors: ["processors"],
  exporters: ["exporters", "connectors"],
};

export interface Use {
  pipeline: string;
  signal: Signal;
  path: PathSegment[];
}

/**
 * Upstream renamed many types to snake_case (spanmetrics → span_metrics) and keeps the old
 * spelling as a deprecated alias, so the other spelling of a defined id resolves to it, with a
 * warning. Returns the defined id and its section, or undefined.
 */
function aliasReference(
  ctx: CheckContext,
  path: PathSegment[],
  subject: string,
  kind: ComponentKind,
  id: string,
  sources: ComponentKind[],
  defined: Defined,
): { from: ComponentKind; id: string } | undefined {
  for (const from of sources) {
    const alias = [...defined[from]].find((c) => c !== id && squash(c) === squash(id));
    if (alias === undefined) continue;
    ctx.add(
      path,
      "warning",
      "OTELCOL_TYPE_ALIAS_REFERENCE",
      `${subject} uses ${singular(kind)} "${id}" for "${alias}", defined under another spelling of its type: Collectors that no longer know the old type name refuse it; write "${alias}"`,
      { id, kind, suggestion: alias },
    );
    return { from, id: alias };
  }
  return undefined;
}

/** Reports a name that no section it may come from defines. */
function undefinedReference(
  ctx: CheckContext,
  path: PathSegment[],
  subject: string,
  kind: ComponentKind,
  id: string,
  sources: ComponentKind[],
  defined: Defined,
): void {
  const role = singular(kind);
  const candidates = sources.flatMap((k) => [...defined[k]]);
  const type = typeOf(id);
  const sameType = candidates.filter((c) => typeOf(c) === type);
  const near = sameType.length === 1 ? sameType[0] : didYouMean(id, candidates);
  const known = sources.some((k) => isKnownType(k, type));
  const elsewhere = (
    ["receivers", "processors", "exporters", "connectors", "extensions"] as ComponentKind[]
  ).filter((k) => !sources.includes(k) && defined[k].has(id));
  const note = elsewhere.length
    ? ` (it is defined under ${elsewhere.join(" and ")}, which does not count here)`
    : "";
  const base = `${subject} uses ${role} "${id}", which is not defined${note}`;
  const data = { id, kind, ...(near ? { suggestion: near } : {}), partial: ctx.partial };
  const severity = ctx.unlessPartial;
  // A partial group's other layer may define it; say so, and what happens if it does not.
  const layer = ctx.partial
    ? ` (the group is partial: unless the agent's own configuration defines "${id}", the Collector refuses this configuration)`
    : "";
  if (near !== undefined) {
    ctx.add(
      path,
      severity,
      "OTELCOL_UNDEFINED_COMPONENT",
      `${base}; did you mean "${near}"?${layer}`,
      data,
    );
  } else if (defined[kind].size === 0) {
    ctx.add(
      path,
      severity,
      "OTELCOL_UNDEFINED_COMPONENT",
      `${base}: the group's config defines no ${kind} at all; add a ${kind} section defining "${id}"${layer}`,
      { ...data, sectionMissing: true },
    );
  } else if (!known && sameType.length === 0) {
    ctx.add(
      path,
      severity,
      "OTELCOL_UNDEFINED_COMPONENT",
      `${base}, and "${type}" is not a known ${role} type either: define "${id}" under ${kind} or remove it${layer}`,
      data,
    );
  } else {
    ctx.add(
      path,
      severity,
      "OTELCOL_UNDEFINED_COMPONENT",
      ctx.partial
        ? `${base} by the group's config files${layer}`
        : `${base}: the Collector refuses this configuration; define it under ${kind}, or set config.partial: true in group.yaml if the agent's own configuration defines it`,
      data,
    );
  }
}

/**
 * Checks service.extensions and service.pipelines of `config`. Returns what is used, by
 * kind, for the unused-component check.
 */
export function checkReferences(
  ctx: CheckContext,
  config: Record<string, unknown>,
  defined: Defined,
): Defined {
  const used: Defined = {
    receivers: new Set(),
    processors: new Set(),
    exporters: new Set(),
    connectors: new Set(),
    extensions: new Set(),
  };
  const service = isObject(config.service) ? config.service : {};

  const extensions = idList(service.extensions);
  const seenExt = new Set<string>();
  extensions.forEach((id, i) => {
    const path = ["service", "extensions", i];
    if (seenExt.has(id)) {
      ctx.add(
        path,
        "error",
        "OTELCOL_DUPLICATE_REFERENCE",
        `service.extensions lists "${id}" twice; list it once`,
        { id },
      );
      return;
    }
    seenExt.add(id);
    if (defined.extensions.has(id)) used.extensions.add(id);
    else
      undefinedReference(
        ctx,
        path,
        "service.extensions",
        "extensions",
        id,
        ["extensions"],
        defined,
      );
  });

  const pipelines = isObject(service.pipelines) ? service.pipelines : undefined;
  if (!pipelines || Object.keys(pipelines).length === 0) {
    ctx.add(
      service === config.service ? ["service"] : [],
      "warning",
      "OTELCOL_NO_PIPELINES",
      "service.pipelines defines no pipeline: on its own this configuration runs nothing (the Collector refuses it unless another configuration layer adds pipelines)",
    );
    return used;
  }

  const connectorUses = new Map<string, { exporter: Use[]; receiver: Use[] }>();
  const signals = new Map<string, Signal>();
  for (const [pid, raw] of Object.entries(pipelines)) {
    const parsed = parsePipelineId(pid);
    const ppath = ["service", "pipelines", pid];
    if ("error" in parsed) {
      const meant = didYouMean(parsed.type, SIGNALS);
      ctx.add(
        ppath,
        "error",
        "OTELCOL_BAD_PIPELINE_ID",
        `pipeline id "${pid}" is not valid: ${parsed.error}${meant ? ` (did you mean "${pid.replace(parsed.type, meant)}"?)` : ""}`,
        { pipeline: pid },
        true,
      );
    } else {
      signals.set(pid, parsed.signal);
    }
    const pipeline = isObject(raw) ? raw : {};
    for (const role of ["receivers", "processors", "exporters"] as Role[]) {
      const ids = idList(pipeline[role]);
      const seen = new Set<string>();
      ids.forEach((listed, i) => {
        let id = listed;
        const path = [...ppath, role, i];
        if (seen.has(id)) {
          ctx.add(
            path,
            "error",
            "OTELCOL_DUPLICATE_REFERENCE",
            `pipeline ${pid} lists ${singular(role)} "${id}" twice; list it once`,
            {
              pipeline: pid,
              id,
            },
          );
          return;
        }
        seen.add(id);
        const exact = SOURCES[role].find((k) => defined[k].has(id));
        const resolved = exact
          ? { from: exact, id }
          : aliasReference(ctx, path, `pipeline ${pid}`, role, id, SOURCES[role], defined);
        if (!resolved) {
          undefinedReference(ctx, path, `pipeline ${pid}`, role, id, SOURCES[role], defined);
          return;
        }
        const { from } = resolved;
        id = resolved.id;
        used[from].add(id);
        const signal = signals.get(pid);
        if (from === "connectors" && signal) {
          let u = connectorUses.get(id);
          if (!u) {
            u = { exporter: [], receiver: [] };
            connectorUses.set(id, u);
          }
          (role === "exporters" ? u.exporter : u.receiver).push({ pipeline: pid, signal, path });
        }
      });
    }
    if (idList(pipeline.receivers).length === 0)
      ctx.add(
        ppath,
        "warning",
        "OTELCOL_PIPELINE_NO_RECEIVERS",
        `pipeline ${pid} has no receivers: on its own the Collector refuses it ("must have at least one receiver"); fine only when another configuration layer supplies them`,
        { pipeline: pid },
        true,
      );
    if (idList(pipeline.exporters).length === 0)
      ctx.add(
        ppath,
        "warning",
        "OTELCOL_PIPELINE_NO_EXPORTERS",
        `pipeline ${pid} has no exporters: on its own the Collector refuses it ("must have at least one exporter"); fine only when another configuration layer supplies them`,
        { pipeline: pid },
        true,
      );
  }

  checkConnectors(ctx, connectorUses);
  checkCycles(ctx, connectorUses);
  return used;
}
