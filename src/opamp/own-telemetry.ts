/**
 * The agents' own telemetry (ConnectionSettingsOffers.own_metrics|own_traces|own_logs): each
 * signal the desired state names is offered to an agent that reports that signal
 * (ReportsOwnMetrics|Traces|Logs). The digest covers everything offered, header values
 * included, so a rotated secret is a new offer; it is hashed, never stored or logged itself.
 */
import { createHash } from "node:crypto";
import type { AgentState } from "./agent-state.js";
import { AgentCapabilities, hasFlag } from "./capabilities.js";
import type { DesiredState, TelemetryOffer } from "./desired.js";
import type { ConnectionSettingsOffers, TelemetryConnectionSettings } from "./messages.js";

const SIGNALS = [
  ["metrics", "ownMetrics", AgentCapabilities.ReportsOwnMetrics],
  ["traces", "ownTraces", AgentCapabilities.ReportsOwnTraces],
  ["logs", "ownLogs", AgentCapabilities.ReportsOwnLogs],
] as const;

export type OwnTelemetrySettings = Pick<
  ConnectionSettingsOffers,
  "ownMetrics" | "ownTraces" | "ownLogs"
>;

/** What to offer `agent` of its own telemetry, with a digest of it; undefined: nothing. */
export function ownTelemetryOffers(
  agent: Readonly<AgentState>,
  desired: DesiredState | undefined,
): { settings: OwnTelemetrySettings; digest: Buffer } | undefined {
  const telemetry = desired?.telemetry;
  if (!telemetry) return undefined;
  const settings: OwnTelemetrySettings = {};
  const h = createHash("sha256");
  let any = false;
  for (const [signal, field, capability] of SIGNALS) {
    const dest = telemetry[signal];
    if (!dest || !hasFlag(agent.capabilities, capability)) continue;
    const offer = telemetrySettings(dest);
    settings[field] = offer;
    h.update(`${signal}\n${JSON.stringify(offer)}\n`);
    any = true;
  }
  return any ? { settings, digest: h.digest() } : undefined;
}

function telemetrySettings(d: TelemetryOffer): TelemetryConnectionSettings {
  const headers = Object.entries(d.headers ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => ({ key, value }));
  const t = d.tls;
  return {
    destinationEndpoint: d.endpoint,
    ...(headers.length > 0 ? { headers: { headers } } : {}),
    ...(t
      ? {
          tls: {
            ...(t.ca !== undefined ? { caPemContents: t.ca } : {}),
            ...(t.includeSystemCaCerts !== undefined
              ? { includeSystemCaCertsPool: t.includeSystemCaCerts }
              : {}),
            ...(t.insecureSkipVerify !== undefined
              ? { insecureSkipVerify: t.insecureSkipVerify }
              : {}),
            ...(t.minVersion ? { minVersion: t.minVersion } : {}),
            ...(t.maxVersion ? { maxVersion: t.maxVersion } : {}),
          },
        }
      : {}),
  };
}
