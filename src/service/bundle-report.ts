/**
 * What an agent reports on the bundle it is served, as one status the rollout gates on
 * (DESIGN §3 with the bundle of §1): each part the agent can take is judged on its own,
 * then combined.
 *
 * - config: its RemoteConfigStatus for the bundle's config hash (APPLIED/APPLYING/FAILED);
 *   not applicable to an agent that does not accept remote config.
 * - own telemetry: for agents that report ConnectionSettingsStatus, its status for the hash of
 *   the settings due to it; for others, applied once those settings were offered (nothing
 *   else can be known). Not applicable when no signal of the bundle is one the agent reports.
 * - packages: its PackageStatuses for the bundle's all_packages_hash: any install_failed (or
 *   a top-level error) is FAILED, every package installed at the offered version is APPLIED,
 *   anything else (downloading, installing, pending) APPLYING. Not applicable to an agent
 *   that does not accept packages or report their statuses.
 *
 * Combined: any part FAILED → FAILED (its error); every applicable part APPLIED → APPLIED;
 * some part acknowledged → APPLYING; nothing acknowledged yet → undefined (no report).
 */
import {
  AgentCapabilities,
  type AgentState,
  type ConnectionSettingsStatusMessage,
  hasFlag,
  type PackageOffer,
  type PackageStatusesMessage,
  RemoteConfigStatus,
} from "../opamp/index.js";

export type PartStatus = "APPLIED" | "APPLYING" | "FAILED" | "PENDING" | "N/A";

export interface BundleReport {
  status?: "APPLIED" | "APPLYING" | "FAILED";
  error?: string;
  parts: { config: PartStatus; telemetry: PartStatus; packages: PartStatus };
}

export interface BundleExpectation {
  configHash: string;
  /** Hash of the connection settings due (own telemetry included); undefined: none due. */
  settingsHash?: string;
  /** True when the bundle names own telemetry this agent reports. */
  telemetryDue: boolean;
  packages: readonly PackageOffer[];
  allPackagesHash?: string;
}

const STATUS = ["PENDING", "APPLIED", "APPLYING", "FAILED"] as const;
const hex = (b: Uint8Array | undefined) =>
  b && b.length > 0 ? Buffer.from(b).toString("hex") : "";

export function bundleReport(agent: Readonly<AgentState>, want: BundleExpectation): BundleReport {
  const errors: string[] = [];
  let config: PartStatus = "N/A";
  if (hasFlag(agent.capabilities, AgentCapabilities.AcceptsRemoteConfig)) {
    const rcs = agent.remoteConfigStatus;
    config =
      rcs && hex(rcs.lastRemoteConfigHash) === want.configHash
        ? (STATUS[rcs.status ?? 0] ?? "PENDING")
        : "PENDING";
    if (config === "FAILED") errors.push(`config: ${rcs?.errorMessage || "failed"}`);
    if (rcs?.status === RemoteConfigStatus.UNSET) config = "PENDING";
  }
  let telemetry: PartStatus = "N/A";
  if (want.telemetryDue && want.settingsHash) {
    if (hasFlag(agent.capabilities, AgentCapabilities.ReportsConnectionSettingsStatus)) {
      const css = agent.connectionSettingsStatus as ConnectionSettingsStatusMessage | null;
      telemetry =
        css && hex(css.lastConnectionSettingsHash) === want.settingsHash
          ? (STATUS[css.status ?? 0] ?? "PENDING")
          : "PENDING";
      if (telemetry === "FAILED")
        errors.push(`connection settings: ${css?.errorMessage || "failed"}`);
    } else {
      telemetry = agent.offeredSettingsHash === want.settingsHash ? "APPLIED" : "PENDING";
    }
  }
  let packages: PartStatus = "N/A";
  const takesPackages =
    hasFlag(agent.capabilities, AgentCapabilities.AcceptsPackages) &&
    hasFlag(agent.capabilities, AgentCapabilities.ReportsPackageStatuses);
  if (want.packages.length > 0 && want.allPackagesHash && takesPackages) {
    packages = packagesStatus(agent.packageStatuses as PackageStatusesMessage | null, want, errors);
  }
  const parts = { config, telemetry, packages };
  const all = Object.values(parts).filter((p) => p !== "N/A");
  const report: BundleReport = { parts };
  if (all.includes("FAILED")) {
    report.status = "FAILED";
    report.error = errors.join("; ");
  } else if (all.length > 0 && all.every((p) => p === "APPLIED")) report.status = "APPLIED";
  else if (all.some((p) => p !== "PENDING")) report.status = "APPLYING";
  return report;
}

function packagesStatus(
  ps: PackageStatusesMessage | null,
  want: BundleExpectation,
  errors: string[],
): PartStatus {
  if (!ps || hex(ps.serverProvidedAllPackagesHash) !== want.allPackagesHash) return "PENDING";
  let failed = false;
  let installed = 0;
  for (const p of want.packages) {
    const s = ps.packages?.[p.name];
    if (s?.status === 3) {
      failed = true;
      errors.push(`package ${p.name || '""'} ${p.version}: ${s.errorMessage || "install failed"}`);
    } else if ((s?.status ?? 0) === 0 && s && s.agentHasVersion === p.version) installed++;
  }
  if (!failed && ps.errorMessage) {
    failed = true;
    errors.push(`packages: ${ps.errorMessage}`);
  }
  if (failed) return "FAILED";
  return installed === want.packages.length ? "APPLIED" : "APPLYING";
}
