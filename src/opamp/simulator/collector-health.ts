/**
 * A health report shaped like a real Collector's (opamp extension with component status):
 * the process, its pipelines and each pipeline's components, every one StatusOK with fresh
 * `status_time_unix_nano` each time it reports. Used by the benchmark's health stream and by
 * tests of health change detection.
 */
import Long from "long";
import type { ComponentHealth } from "../messages.js";

/** Pipelines → components of the Collector the benchmark plays. */
export const COLLECTOR_PIPELINES: Readonly<Record<string, readonly string[]>> = {
  "pipeline:traces": [
    "receiver:otlp",
    "processor:memory_limiter",
    "processor:batch",
    "exporter:otlp",
  ],
  "pipeline:metrics": [
    "receiver:otlp",
    "processor:memory_limiter",
    "processor:batch",
    "exporter:otlphttp",
  ],
  "pipeline:logs": ["receiver:otlp", "processor:memory_limiter", "exporter:debug"],
  extensions: ["extension:health_check", "extension:opamp"],
};

export interface CollectorHealthOptions {
  /** When the Collector started, ns since the epoch. */
  startNanos: bigint;
  /** The time stamped on every status, ns since the epoch. */
  nowNanos: bigint;
  /** `component path → [status, last error]` to report instead of StatusOK, e.g. "pipeline:traces/exporter:otlp". */
  override?: Readonly<Record<string, readonly [string, string]>>;
}

const long = (n: bigint) => Long.fromString(n.toString(), true);

/** The report; maps are built in the given key order (a Go encoder's order is random). */
export function collectorHealth(o: CollectorHealthOptions): ComponentHealth {
  const node = (path: string, children?: Record<string, ComponentHealth>): ComponentHealth => {
    const [status, lastError] = o.override?.[path] ?? ["StatusOK", ""];
    const healthy = status === "StatusOK" || status === "StatusStarting";
    return {
      healthy,
      status,
      ...(lastError ? { lastError } : {}),
      startTimeUnixNano: long(o.startNanos),
      statusTimeUnixNano: long(o.nowNanos),
      ...(children ? { componentHealthMap: children } : {}),
    };
  };
  const pipelines: Record<string, ComponentHealth> = {};
  let healthy = true;
  for (const [pipeline, components] of Object.entries(COLLECTOR_PIPELINES)) {
    const children: Record<string, ComponentHealth> = {};
    for (const c of components) children[c] = node(`${pipeline}/${c}`);
    pipelines[pipeline] = node(pipeline, children);
    const bad = Object.values(children).find((c) => !c.healthy);
    if (bad) {
      pipelines[pipeline] = { ...pipelines[pipeline], healthy: false, status: bad.status ?? "" };
      healthy = false;
    }
  }
  return {
    ...node("", pipelines),
    healthy,
    status: healthy ? "StatusOK" : "StatusRecoverableError",
  };
}
