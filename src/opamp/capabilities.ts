/**
 * Bit flags and enum values of the OpAMP protocol (opamp.proto.v1), as bigint so that the
 * uint64 capability and flag words of the wire are handled without precision loss.
 */

/** AgentCapabilities: what the agent can do (AgentToServer.capabilities). */
export const AgentCapabilities = {
  ReportsStatus: 0x1n,
  AcceptsRemoteConfig: 0x2n,
  ReportsEffectiveConfig: 0x4n,
  AcceptsPackages: 0x8n,
  ReportsPackageStatuses: 0x10n,
  ReportsOwnTraces: 0x20n,
  ReportsOwnMetrics: 0x40n,
  ReportsOwnLogs: 0x80n,
  AcceptsOpAMPConnectionSettings: 0x100n,
  AcceptsOtherConnectionSettings: 0x200n,
  AcceptsRestartCommand: 0x400n,
  ReportsHealth: 0x800n,
  ReportsRemoteConfig: 0x1000n,
  ReportsHeartbeat: 0x2000n,
  ReportsAvailableComponents: 0x4000n,
  ReportsConnectionSettingsStatus: 0x8000n,
} as const;

/** ServerCapabilities: what this server offers (ServerToAgent.capabilities). */
export const ServerCapabilities = {
  AcceptsStatus: 0x1n,
  OffersRemoteConfig: 0x2n,
  AcceptsEffectiveConfig: 0x4n,
  OffersPackages: 0x8n,
  AcceptsPackagesStatus: 0x10n,
  OffersConnectionSettings: 0x20n,
  AcceptsConnectionSettingsRequest: 0x40n,
} as const;

/**
 * The capabilities this server implements and announces in every ServerToAgent.
 * Connection-settings requests (CSR) are not implemented here, so not announced.
 */
export const SERVER_CAPABILITIES: bigint =
  ServerCapabilities.AcceptsStatus |
  ServerCapabilities.OffersRemoteConfig |
  ServerCapabilities.AcceptsEffectiveConfig |
  ServerCapabilities.OffersPackages |
  ServerCapabilities.AcceptsPackagesStatus |
  ServerCapabilities.OffersConnectionSettings;

/** AgentToServerFlags. */
export const AgentToServerFlags = {
  RequestInstanceUid: 0x1n,
} as const;

/** ServerToAgentFlags. */
export const ServerToAgentFlags = {
  ReportFullState: 0x1n,
  ReportAvailableComponents: 0x2n,
} as const;

/** RemoteConfigStatuses: the agent's progress with the last remote config it was offered. */
export const RemoteConfigStatus = {
  UNSET: 0,
  APPLIED: 1,
  APPLYING: 2,
  FAILED: 3,
} as const;
export type RemoteConfigStatusValue = (typeof RemoteConfigStatus)[keyof typeof RemoteConfigStatus];

/** ConnectionSettingsStatuses. */
export const ConnectionSettingsStatus = { UNSET: 0, APPLIED: 1, APPLYING: 2, FAILED: 3 } as const;

/** PackageStatusEnum. */
export const PackageStatusEnum = {
  Installed: 0,
  InstallPending: 1,
  Installing: 2,
  InstallFailed: 3,
  Downloading: 4,
} as const;

/** PackageType. */
export const PackageType = { TopLevel: 0, Addon: 1 } as const;

/** CommandType. */
export const CommandType = { Restart: 0 } as const;

/** ServerErrorResponseType. */
export const ServerErrorResponseType = {
  Unknown: 0,
  BadRequest: 1,
  Unavailable: 2,
} as const;

/** True when every bit of `flag` is set in `word`. */
export function hasFlag(word: bigint, flag: bigint): boolean {
  return (word & flag) === flag;
}
