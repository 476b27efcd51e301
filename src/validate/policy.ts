/**
 * Rollout policy, heartbeat and telemetry destinations: semantic checks of what a
 * group.yaml or fleet.yaml says (after its schema passed), and resolution of a group's
 * effective values: the group's own, then fleet.yaml's, then built-ins (DESIGN §1).
 *
 * Codes: ROLLOUT_STAGES_ORDER, ROLLOUT_LAST_STAGE, ROLLOUT_APPLY_TIMEOUT,
 * ROLLOUT_MAX_FAILURES, HEARTBEAT_INTERVAL (errors).
 */
import { parseDuration } from "./duration.js";
import { finding } from "./findings.js";
import type { Finding, RolloutPolicy, RolloutStage, TelemetryDestination } from "./model.js";
import type { LoadedYaml } from "./yaml.js";

/** What group.yaml and fleet.yaml share, as the schema admits it. */
export interface RawPolicy {
  config?: { schema?: string; files?: string[]; partial?: boolean; distribution?: string };
  rollout?: {
    stages?: Array<{ percent: number; pause?: string }>;
    applyTimeout?: string;
    maxFailures?: number | string;
    onFailure?: "rollback" | "pause";
    paused?: boolean;
  };
  heartbeatInterval?: string;
  telemetry?: Partial<Record<"metrics" | "logs" | "traces", TelemetryDestination>>;
}

export const BUILTIN_DEFAULTS = Object.freeze({
  stages: [{ percent: 100, pauseMs: 0 }] as RolloutStage[],
  applyTimeoutMs: 5 * 60_000,
  maxFailures: { count: 0 },
  onFailure: "rollback" as const,
  paused: false,
  heartbeatIntervalSeconds: 30,
  schema: "otelcol",
});

/** Semantic checks of the values present in `raw`, located in `doc`. */
export function checkPolicy(raw: RawPolicy, doc: LoadedYaml): Finding[] {
  const out: Finding[] = [];
  const stages = raw.rollout?.stages;
  if (stages && stages.length > 0) {
    for (let i = 1; i < stages.length; i++) {
      const prev = (stages[i - 1] as { percent: number }).percent;
      const cur = (stages[i] as { percent: number }).percent;
      if (cur <= prev)
        out.push(
          finding(
            doc.file,
            doc.locate(["rollout", "stages", i, "percent"]),
            "error",
            "ROLLOUT_STAGES_ORDER",
            `rollout.stages[${i}].percent is ${cur}, not more than the stage before (${prev}): each stage must reach more agents than the one before`,
            { index: i, percent: cur, previous: prev },
          ),
        );
    }
    const last = stages[stages.length - 1] as { percent: number };
    if (last.percent !== 100)
      out.push(
        finding(
          doc.file,
          doc.locate(["rollout", "stages", stages.length - 1, "percent"]),
          "error",
          "ROLLOUT_LAST_STAGE",
          `the last rollout stage is ${last.percent}%; it must be 100 so that the rollout reaches every agent (add {percent: 100})`,
          { percent: last.percent },
        ),
      );
  }
  const timeout = raw.rollout?.applyTimeout;
  if (timeout !== undefined && parseDuration(timeout) === 0)
    out.push(
      finding(
        doc.file,
        doc.locate(["rollout", "applyTimeout"]),
        "error",
        "ROLLOUT_APPLY_TIMEOUT",
        'rollout.applyTimeout is 0; agents need time to apply a config: give a duration such as "5m"',
      ),
    );
  const maxFailures = raw.rollout?.maxFailures;
  if (typeof maxFailures === "string" && Number.parseFloat(maxFailures) > 100)
    out.push(
      finding(
        doc.file,
        doc.locate(["rollout", "maxFailures"]),
        "error",
        "ROLLOUT_MAX_FAILURES",
        `rollout.maxFailures is ${maxFailures}; a percentage cannot exceed 100%`,
      ),
    );
  const heartbeat = raw.heartbeatInterval;
  if (heartbeat !== undefined) {
    const ms = parseDuration(heartbeat) ?? 0;
    if (ms < 1000 || ms % 1000 !== 0)
      out.push(
        finding(
          doc.file,
          doc.locate(["heartbeatInterval"]),
          "error",
          "HEARTBEAT_INTERVAL",
          `heartbeatInterval is "${heartbeat}"; it must be a whole number of seconds, at least 1s (OpAMP offers it in seconds, and 0 turns heartbeats off)`,
        ),
      );
  }
  return out;
}

function maxFailuresOf(v: number | string): RolloutPolicy["maxFailures"] {
  return typeof v === "number" ? { count: v } : { percent: Number.parseFloat(v) };
}

/** The effective policy of a group: its own values, then the fleet's, then built-ins. */
export function resolvePolicy(
  group: RawPolicy,
  fleet: RawPolicy,
): {
  rollout: RolloutPolicy;
  heartbeatIntervalSeconds: number;
  telemetry: RawPolicy["telemetry"] & object;
  schema: string;
} {
  const g = group.rollout ?? {};
  const f = fleet.rollout ?? {};
  const stages = g.stages ?? f.stages;
  const timeout = g.applyTimeout ?? f.applyTimeout;
  const maxFailures = g.maxFailures ?? f.maxFailures;
  const heartbeat = group.heartbeatInterval ?? fleet.heartbeatInterval;
  const telemetry: Partial<Record<"metrics" | "logs" | "traces", TelemetryDestination>> = {};
  for (const signal of ["metrics", "logs", "traces"] as const) {
    const dest = group.telemetry?.[signal] ?? fleet.telemetry?.[signal];
    if (dest)
      telemetry[signal] = {
        endpoint: dest.endpoint,
        ...(dest.headers ? { headers: { ...dest.headers } } : {}),
        ...(dest.tls ? { tls: { ...dest.tls } } : {}),
      };
  }
  return {
    rollout: {
      stages: stages
        ? stages.map((s) => ({
            percent: s.percent,
            pauseMs: s.pause === undefined ? 0 : (parseDuration(s.pause) ?? 0),
          }))
        : BUILTIN_DEFAULTS.stages.map((s) => ({ ...s })),
      applyTimeoutMs:
        timeout === undefined ? BUILTIN_DEFAULTS.applyTimeoutMs : (parseDuration(timeout) ?? 0),
      maxFailures:
        maxFailures === undefined
          ? { ...BUILTIN_DEFAULTS.maxFailures }
          : maxFailuresOf(maxFailures),
      onFailure: g.onFailure ?? f.onFailure ?? BUILTIN_DEFAULTS.onFailure,
      paused: g.paused ?? f.paused ?? BUILTIN_DEFAULTS.paused,
    },
    heartbeatIntervalSeconds:
      heartbeat === undefined
        ? BUILTIN_DEFAULTS.heartbeatIntervalSeconds
        : Math.round((parseDuration(heartbeat) ?? 0) / 1000),
    telemetry,
    schema: group.config?.schema ?? fleet.config?.schema ?? BUILTIN_DEFAULTS.schema,
  };
}
