/**
 * Connectors (DESIGN §2): a connector must be used as exporter in one pipeline and as
 * receiver in another, for a signal pair it supports (OTELCOL_CONNECTOR_ONE_SIDED), and
 * pipelines joined through connectors must not loop (OTELCOL_PIPELINE_CYCLE).
 */
import { connectorPairs, connectorSupports, type Signal } from "./otelcol-catalog.js";
import type { CheckContext } from "./otelcol-context.js";
import { typeOf } from "./otelcol-ids.js";
import type { Use } from "./otelcol-references.js";

export type ConnectorUses = Map<string, { exporter: Use[]; receiver: Use[] }>;

function describe(uses: Use[]): string {
  const bySignal = new Map<Signal, string[]>();
  for (const u of uses) bySignal.set(u.signal, [...(bySignal.get(u.signal) ?? []), u.pipeline]);
  return [...bySignal]
    .map(([s, ps]) => `${s} pipeline${ps.length > 1 ? "s" : ""} ${ps.sort().join(", ")}`)
    .join(" and ");
}

/** A connector must connect: exporter side and receiver side, for pairs it supports. */
export function checkConnectors(
  ctx: CheckContext,
  uses: Map<string, { exporter: Use[]; receiver: Use[] }>,
): void {
  for (const [id, u] of uses) {
    const type = typeOf(id);
    const pairs = connectorPairs(type);
    const supports = pairs ? ` (${type} connects ${pairs})` : "";
    const lonelyExporters = u.exporter.filter(
      (e) => !u.receiver.some((r) => connectorSupports(type, e.signal, r.signal)),
    );
    const lonelyReceivers = u.receiver.filter(
      (r) => !u.exporter.some((e) => connectorSupports(type, e.signal, r.signal)),
    );
    if (lonelyExporters.length > 0) {
      ctx.add(
        (lonelyExporters[0] as Use).path,
        "error",
        "OTELCOL_CONNECTOR_ONE_SIDED",
        `connector "${id}" is used as exporter in ${describe(lonelyExporters)} but not used in any supported receiver pipeline${supports}: add it to the receivers of a pipeline that takes its output`,
        { id, side: "exporter", pipelines: lonelyExporters.map((e) => e.pipeline) },
      );
    }
    if (lonelyReceivers.length > 0) {
      ctx.add(
        (lonelyReceivers[0] as Use).path,
        "error",
        "OTELCOL_CONNECTOR_ONE_SIDED",
        `connector "${id}" is used as receiver in ${describe(lonelyReceivers)} but not used in any supported exporter pipeline${supports}: add it to the exporters of a pipeline that feeds it`,
        { id, side: "receiver", pipelines: lonelyReceivers.map((r) => r.pipeline) },
      );
    }
  }
}

/**
 * Pipelines joined through connectors must not loop (the Collector refuses a cycle). One
 * finding per strongly connected set of pipelines, showing one concrete loop.
 */
export function checkCycles(
  ctx: CheckContext,
  uses: Map<string, { exporter: Use[]; receiver: Use[] }>,
): void {
  interface Edge {
    to: string;
    connector: string;
    use: Use;
  }
  const edges = new Map<string, Edge[]>();
  for (const [id, u] of uses)
    for (const e of u.exporter)
      for (const r of u.receiver)
        if (connectorSupports(typeOf(id), e.signal, r.signal)) {
          const list = edges.get(e.pipeline) ?? [];
          list.push({ to: r.pipeline, connector: id, use: e });
          edges.set(e.pipeline, list);
        }
  for (const component of stronglyConnected(edges)) {
    const members = new Set(component);
    const start = [...component].sort()[0] as string;
    const loop = findLoop(edges, members, start);
    if (!loop) continue;
    const text = loop.map((e) => `connector "${e.connector}" → pipeline ${e.to}`).join(" → ");
    ctx.add(
      (loop[0] as Edge).use.path,
      "error",
      "OTELCOL_PIPELINE_CYCLE",
      `cycle detected: pipeline ${start} → ${text}; data would loop forever: break the cycle`,
      { pipelines: [...component].sort(), connectors: [...new Set(loop.map((e) => e.connector))] },
    );
  }

  /** Tarjan's algorithm; yields sets that loop (several nodes, or one with a self edge). */
  function stronglyConnected(graph: Map<string, Edge[]>): string[][] {
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const onStack = new Set<string>();
    const stack: string[] = [];
    const out: string[][] = [];
    let next = 0;
    const strong = (v: string): void => {
      index.set(v, next);
      low.set(v, next++);
      stack.push(v);
      onStack.add(v);
      for (const { to } of graph.get(v) ?? []) {
        if (!index.has(to)) {
          strong(to);
          low.set(v, Math.min(low.get(v) as number, low.get(to) as number));
        } else if (onStack.has(to)) {
          low.set(v, Math.min(low.get(v) as number, index.get(to) as number));
        }
      }
      if (low.get(v) === index.get(v)) {
        const comp: string[] = [];
        let w: string;
        do {
          w = stack.pop() as string;
          onStack.delete(w);
          comp.push(w);
        } while (w !== v);
        if (comp.length > 1 || (graph.get(v) ?? []).some((e) => e.to === v)) out.push(comp);
      }
    };
    for (const v of [...graph.keys()].sort()) if (!index.has(v)) strong(v);
    return out;
  }
}

/** A shortest path of edges from `start` back to itself, inside `members`. */
function findLoop<E extends { to: string }>(
  edges: Map<string, E[]>,
  members: Set<string>,
  start: string,
): E[] | undefined {
  const prev = new Map<string, { from: string; edge: E }>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift() as string;
    for (const edge of edges.get(v) ?? []) {
      if (!members.has(edge.to)) continue;
      if (edge.to === start) {
        const path = [edge];
        for (let at = v; at !== start; ) {
          const p = prev.get(at) as { from: string; edge: E };
          path.unshift(p.edge);
          at = p.from;
        }
        return path;
      }
      if (!prev.has(edge.to)) {
        prev.set(edge.to, { from: v, edge });
        queue.push(edge.to);
      }
    }
  }
  return undefined;
}
