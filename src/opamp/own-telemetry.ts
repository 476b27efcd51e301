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

export interface OwnTelemetryOffer {
  settings: OwnTelemetrySettings;
  digest: Buffer;
}

/**
 * Per telemetry object (a desired state hands out the same one for as long as it holds, and
 * never changes one in place: see DesiredState), the offer for each combination of the three
 * ReportsOwn* capabilities (null: nothing to offer), so that a message costs no hashing.
 */
const memo = new WeakMap<
  NonNullable<DesiredState["telemetry"]>,
  Map<number, OwnTelemetryOffer | null>
>();

/**
 * What to offer `agent` of its own telemetry, with a digest of it; undefined: nothing. The
 * result is shared by every agent offered the same: callers never change it.
 */
export function ownTelemetryOffers(
  agent: Readonly<AgentState>,
  desired: DesiredState | undefined,
): OwnTelemetryOffer | undefined {
  const telemetry = desired?.telemetry;
  if (!telemetry) return undefined;
  let mask = 0;
  SIGNALS.forEach(([, , capability], i) => {
    if (hasFlag(agent.capabilities, capability)) mask |= 1 << i;
  });
  let byMask = memo.get(telemetry);
  if (byMask === undefined) {
    byMask = new Map();
    memo.set(telemetry, byMask);
  }
  let offer = byMask.get(mask);
  if (offer === undefined) {
    offer = offerFor(telemetry, mask);
    byMask.set(mask, offer);
  }
  return offer ?? undefined;
}

function offerFor(
  telemetry: NonNullable<DesiredState["telemetry"]>,
  mask: number,
): OwnTelemetryOffer | null {
  const settings: OwnTelemetrySettings = {};
  const h = createHash("sha256");
  let any = false;
  SIGNALS.forEach(([signal, field], i) => {
    const dest = telemetry[signal];
    if (!dest || (mask & (1 << i)) === 0) return;
    const offer = telemetrySettings(dest);
    settings[field] = offer;
    h.update(`${signal}\n${JSON.stringify(offer)}\n`);
    any = true;
  });
  return any ? { settings, digest: h.digest() } : null;
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
