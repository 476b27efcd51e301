/**
 * What the API and the status branch show of an agent's bundle beyond its config: the bundle
 * it is served (id, per-part verdict), the connection settings offered and what it reported
 * of them, and its package statuses (per package: status, versions, error, download
 * progress). Plain data; agent error text goes through `redact` (the API shows it; the status
 * writer redacts and cuts every agent string again, names included). Undefined for an agent served a config-only bundle that reports no
 * packages, so such agents' files stay as they were.
 */
import {
  type AgentState,
  type ConnectionSettingsStatusMessage,
  type PackageStatusesMessage,
  reportedPackagesHash,
} from "../opamp/index.js";
import type { AgentBundleStatus } from "../status/index.js";
import type { AgentBridge } from "./agent-bridge.js";

const CS_STATUS = ["UNSET", "APPLIED", "APPLYING", "FAILED"] as const;
const PKG_STATUS = ["installed", "install-pending", "installing", "install-failed", "downloading"];
const hex = (b: Uint8Array | undefined) =>
  b && b.length > 0 ? Buffer.from(b).toString("hex") : null;

export function bundleView(
  agent: Readonly<AgentState>,
  bridge: AgentBridge | undefined,
  redact: (text: string) => string = (text) => text,
): AgentBundleStatus | undefined {
  const errorOf = (text: string | null | undefined) => (text ? redact(text) : null);
  const css = agent.connectionSettingsStatus as ConnectionSettingsStatusMessage | null;
  const ps = agent.packageStatuses as PackageStatusesMessage | null;
  // The common case, decided without judging the report: a config-only bundle reports both
  // parts "N/A" (it offers no telemetry and no packages).
  if (!ps && !css && (!bridge || bridge.servesConfigOnly(agent))) return undefined;
  const report = bridge?.bundleReportOf(agent);
  const configOnly =
    !report || (report.parts.telemetry === "N/A" && report.parts.packages === "N/A");
  if (configOnly && !ps && !css) return undefined;
  const out: AgentBundleStatus = {
    id: report?.bundleId ?? null,
    status: report?.status ?? null,
    error: errorOf(report?.error),
    parts: report?.parts ?? null,
  };
  if (css || agent.offeredSettingsHash)
    out.connectionSettings = {
      offeredHash: agent.offeredSettingsHash,
      reportedHash: hex(css?.lastConnectionSettingsHash),
      status: css ? (CS_STATUS[css.status ?? 0] ?? null) : null,
      error: errorOf(css?.errorMessage),
    };
  if (ps) {
    const packages: NonNullable<AgentBundleStatus["packages"]>["packages"] = {};
    for (const [name, p] of Object.entries(ps.packages ?? {}).sort(([a], [b]) =>
      a < b ? -1 : 1,
    )) {
      packages[name] = {
        status: PKG_STATUS[p.status ?? 0] ?? "unknown",
        version: p.agentHasVersion || null,
        offeredVersion: p.serverOfferedVersion || null,
        error: errorOf(p.errorMessage),
        ...(p.downloadDetails
          ? {
              downloadPercent: p.downloadDetails.downloadPercent ?? 0,
              downloadBytesPerSecond: p.downloadDetails.downloadBytesPerSecond ?? 0,
            }
          : {}),
      };
    }
    out.packages = {
      reportedHash: reportedPackagesHash(agent) || null,
      error: errorOf(ps.errorMessage),
      packages,
    };
  }
  return out;
}
