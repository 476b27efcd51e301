/**
 * TypeScript shapes of the OpAMP messages this server reads and writes, as protobufjs
 * decodes them (camelCase field names). Top-level uint64 words (sequence number,
 * capabilities, flags) are converted to bigint by the codec; 64-bit fields nested in
 * sub-messages (timestamps, AnyValue ints) keep protobufjs' Long so that re-encoding them
 * for storage is exact.
 */
import type Long from "long";

/** A 64-bit value inside a sub-message, as protobufjs decodes it. */
export type Int64 = Long | number;

export interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: Int64;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: { values?: KeyValue[] };
  bytesValue?: Uint8Array;
}

export interface KeyValue {
  key: string;
  value?: AnyValue | null;
}

export interface AgentDescription {
  identifyingAttributes?: KeyValue[];
  nonIdentifyingAttributes?: KeyValue[];
}

export interface ComponentHealth {
  healthy?: boolean;
  startTimeUnixNano?: Int64;
  lastError?: string;
  status?: string;
  statusTimeUnixNano?: Int64;
  componentHealthMap?: Record<string, ComponentHealth>;
  attributes?: KeyValue[];
}

export interface AgentConfigFile {
  body?: Uint8Array;
  contentType?: string;
}

export interface AgentConfigMap {
  configMap?: Record<string, AgentConfigFile>;
}

export interface EffectiveConfig {
  configMap?: AgentConfigMap | null;
}

export interface RemoteConfigStatusMessage {
  lastRemoteConfigHash?: Uint8Array;
  status?: number;
  errorMessage?: string;
}

export interface CustomCapabilities {
  capabilities?: string[];
}

/** One entry of AvailableComponents (possibly nested: a Collector's kinds hold its types). */
export interface ComponentDetails {
  metadata?: KeyValue[];
  subComponentMap?: Record<string, ComponentDetails>;
}

/**
 * The components an agent's build has (OpAMP AvailableComponents, [Development]). `hash` is
 * always sent; `components` only when the server asked with ReportAvailableComponents.
 */
export interface AvailableComponents {
  components?: Record<string, ComponentDetails>;
  hash?: Uint8Array;
}

/** Sub-messages kept opaque: stored and re-encoded, not interpreted here. */
export type OpaqueMessage = Record<string, unknown>;

/** A decoded AgentToServer. Absent sub-messages are null or undefined. */
export interface AgentToServer {
  instanceUid: Uint8Array;
  sequenceNum: bigint;
  agentDescription?: AgentDescription | null;
  capabilities: bigint;
  health?: ComponentHealth | null;
  effectiveConfig?: EffectiveConfig | null;
  remoteConfigStatus?: RemoteConfigStatusMessage | null;
  packageStatuses?: OpaqueMessage | null;
  agentDisconnect?: OpaqueMessage | null;
  flags: bigint;
  connectionSettingsRequest?: OpaqueMessage | null;
  customCapabilities?: CustomCapabilities | null;
  customMessage?: OpaqueMessage | null;
  availableComponents?: AvailableComponents | null;
  connectionSettingsStatus?: OpaqueMessage | null;
}

export interface ServerErrorResponse {
  type: number;
  errorMessage: string;
  retryInfo?: { retryAfterNanoseconds: bigint };
}

export interface OpAMPConnectionSettings {
  /** Absent when no endpoint is advertised: the agent keeps the one it uses. */
  destinationEndpoint?: string;
  heartbeatIntervalSeconds: bigint;
  /**
   * The CA bundle (`ca_cert`) that verifies a TLS destination endpoint; with an issued client
   * certificate (`cert`, the agent keeps its private key), the CA that signed it.
   */
  certificate?: { cert?: Uint8Array; caCert: Uint8Array };
  /** TLS options of the connection: the CA (PEM) that verifies the server. */
  tls?: { caPemContents: string };
  headers?: { headers: { key: string; value: string }[] };
}

export interface TLSConnectionSettings {
  caPemContents?: string;
  includeSystemCaCertsPool?: boolean;
  insecureSkipVerify?: boolean;
  minVersion?: string;
  maxVersion?: string;
}

export interface TelemetryConnectionSettings {
  destinationEndpoint: string;
  headers?: { headers: { key: string; value: string }[] };
  tls?: TLSConnectionSettings;
}

export interface ConnectionSettingsOffers {
  hash: Uint8Array;
  opamp?: OpAMPConnectionSettings;
  ownMetrics?: TelemetryConnectionSettings;
  ownTraces?: TelemetryConnectionSettings;
  ownLogs?: TelemetryConnectionSettings;
}

export interface PackagesAvailable {
  packages: Record<
    string,
    {
      type: number;
      version: string;
      file: {
        downloadUrl: string;
        contentHash: Uint8Array;
        signature?: Uint8Array;
        headers?: { headers: { key: string; value: string }[] };
      };
      hash: Uint8Array;
    }
  >;
  allPackagesHash: Uint8Array;
}

/** PackageStatuses as agents report them (decoded). */
export interface PackageStatusesMessage {
  packages?: Record<
    string,
    {
      name?: string;
      agentHasVersion?: string;
      agentHasHash?: Uint8Array;
      serverOfferedVersion?: string;
      serverOfferedHash?: Uint8Array;
      status?: number;
      errorMessage?: string;
      downloadDetails?: { downloadPercent?: number; downloadBytesPerSecond?: number } | null;
    }
  >;
  serverProvidedAllPackagesHash?: Uint8Array;
  errorMessage?: string;
}

/** ConnectionSettingsStatus as agents report it (decoded). */
export interface ConnectionSettingsStatusMessage {
  lastConnectionSettingsHash?: Uint8Array;
  status?: number;
  errorMessage?: string;
}

export interface AgentRemoteConfig {
  config: { configMap: Record<string, { body: Uint8Array; contentType: string }> };
  configHash: Uint8Array;
}

/** A ServerToAgent to encode. `capabilities` is filled in by the codec when absent. */
export interface ServerToAgent {
  instanceUid: Uint8Array;
  errorResponse?: ServerErrorResponse;
  remoteConfig?: AgentRemoteConfig;
  connectionSettings?: ConnectionSettingsOffers;
  packagesAvailable?: PackagesAvailable;
  flags?: bigint;
  capabilities?: bigint;
  agentIdentification?: { newInstanceUid: Uint8Array };
  customCapabilities?: CustomCapabilities;
  /** ServerToAgentCommand; type 0 is RESTART. */
  command?: { type: number };
}
