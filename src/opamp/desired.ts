/**
 * What the server should serve each agent: the seam between the OpAMP module and whatever
 * decides desired state (Git + rollouts in the service; a fixed map in tests).
 */
import type { ConfigFile } from "../config-hash.js";
import type { AgentState } from "./agent-state.js";

export interface DesiredConfig {
  /** Lowercase hex SHA-256 of the files (see configHash). */
  hash: string;
  files: readonly ConfigFile[];
}

/** Where an agent sends one signal of its own telemetry; secret references already resolved. */
export interface TelemetryOffer {
  endpoint: string;
  /** Header values are secrets: offered, never logged or stored. */
  headers?: Readonly<Record<string, string>>;
  tls?: {
    ca?: string;
    insecureSkipVerify?: boolean;
    includeSystemCaCerts?: boolean;
    minVersion?: string;
    maxVersion?: string;
  };
}

/** One package to offer (PackageAvailable), its download URL final. */
export interface PackageOffer {
  name: string;
  type: "top-level" | "addon";
  version: string;
  /** Lowercase hex SHA-256 of the file. */
  sha256: string;
  url: string;
  /** Base64. */
  signature?: string;
}

export interface DesiredState {
  /** The remote config to serve; undefined sends none (an unassigned agent keeps its own). */
  config?: DesiredConfig;
  /** Heartbeat interval to offer agents that accept OpAMP connection settings; ≥ 1 s. */
  heartbeatIntervalSeconds?: number;
  /**
   * Own telemetry destinations, offered as ConnectionSettingsOffers.own_metrics|own_traces|
   * own_logs to agents that report ReportsOwnMetrics|Traces|Logs.
   */
  telemetry?: Partial<Record<"metrics" | "traces" | "logs", TelemetryOffer>>;
  /** Packages, offered as PackagesAvailable to agents that accept packages; none: no offer. */
  packages?: readonly PackageOffer[];
}

/**
 * Called on every AgentToServer, in the message's processing path: it must be synchronous and
 * cheap (no I/O). What it answers is read, never changed: offers are memoised per object
 * (the `telemetry` object, the `packages` list; offers.ts), so a changed part must come as a
 * new object, and an unchanged one should stay the same object (that costs no hashing). When the answer changes for connected agents, call `OpampServer.refresh()`
 * so WebSocket agents get it at once; HTTP agents get it on their next poll.
 */
export interface DesiredStateProvider {
  desired(agent: Readonly<AgentState>): DesiredState | undefined;
  /**
   * Optional: a number that increases (never decreases) whenever anything `desired` reads
   * besides the agent's own state may have changed, read synchronously (O(1)) on every
   * heartbeat. While it stays equal and the agent's state does not change, `desired` must
   * answer the same for that agent: the heartbeat fast path then skips asking it. Absent: it
   * is asked on every heartbeat.
   */
  readonly version?: number;
}

/** A provider that serves nothing: every agent is unassigned. */
export const NO_DESIRED_STATE: DesiredStateProvider = { desired: () => undefined };
