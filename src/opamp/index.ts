/** The OpAMP module: the only place that imports ws and protobufjs (DESIGN §7). */

export { AgentOrder, agentOrderKey } from "./agent-order.js";
export type { AgentState, ReportField, Transport } from "./agent-state.js";
export {
  agentAttributes,
  descriptionIdentity,
  emptyAgentState,
  hasComponentMap,
  healthSummary,
  internHash,
  internReported,
  REPORT_FIELD_NAMES,
  REPORT_FIELDS,
  setReportField,
} from "./agent-state.js";
export { AgentStore } from "./agent-store.js";
export { bearerAuthenticator, tokenDigest } from "./auth.js";
export * from "./capabilities.js";
export { agentCapabilityNames } from "./capability-names.js";
export { encodeSubMessage } from "./codec.js";
export type { CredentialGate, CredentialIssuer, OfferedCredential } from "./credential-hooks.js";
export {
  AgentCredentials,
  type AgentToken,
  type CertificateScope,
  parseAgentTokens,
} from "./credentials.js";
export type {
  DesiredConfig,
  DesiredState,
  DesiredStateProvider,
  PackageOffer,
  TelemetryOffer,
} from "./desired.js";
export { NO_DESIRED_STATE } from "./desired.js";
export { type DownloadSource, downloadGrant } from "./downloads.js";
export * from "./errors.js";
export type { AgentEventMap, AgentEventName } from "./events.js";
export { AgentEvents } from "./events.js";
export { isCanonicalUid, newInstanceUid, uidToBytes, uidToString } from "./instance-uid.js";
export type {
  AnyValue,
  AvailableComponents,
  ComponentDetails,
  ComponentHealth,
  ConnectionSettingsStatusMessage,
  EffectiveConfig,
  KeyValue,
  PackageStatusesMessage,
} from "./messages.js";
export type { AdvertisedEndpoint } from "./offers.js";
export { connectionSettingsFor } from "./offers.js";
export { allPackagesHash, reportedPackagesHash } from "./packages-offer.js";
export { newReplicaId, ReplicaLiveness, replicasLostKey } from "./replica-liveness.js";
export type { OpampServerOptions, OpampTlsOptions } from "./server.js";
export { OpampServer } from "./server.js";
export { type FleetOptions, type FleetSummary, SimulatedFleet } from "./simulator/fleet.js";
export { SimulatedAgent, type SimulatedAgentOptions } from "./simulator/simulated-agent.js";
