/**
 * The pure, CPU-bound part of handling one AgentToServer: decode, the agent limits, and the
 * normalised encoding of every report field present (what is stored, and what change is
 * judged on by byte comparison), plus the health report's meaning. It touches no state, so
 * it runs on the event loop for small messages and in a decode worker for large ones
 * (decode-pool.ts), with the same result.
 */
import { type AgentLimits, enforceAgentLimits } from "./agent-limits.js";
import { hasComponentMap, REPORT_FIELDS, REPORT_SOURCE, type ReportField } from "./agent-state.js";
import { decodeAgentToServer, encodeSubMessage } from "./codec.js";
import { AgentLimitError } from "./errors.js";
import { healthMeaning } from "./health-meaning.js";
import type { AgentToServer, ComponentHealth } from "./messages.js";

export interface PreparedMessage {
  /**
   * The decoded message. Prepared off the event loop, its report fields are null except
   * `agentDescription` (decoded again here from `encoded`, as the identity check reads it):
   * `encoded` carries them.
   */
  message: AgentToServer;
  /** The normalised encoding of each report field present, exactly sized. */
  encoded: Partial<Record<ReportField, Uint8Array>>;
  /** healthMeaning() of the reported health, when present. */
  healthMeaning?: string;
  /** The AvailableComponents hash, when the message reports the hash without the map. */
  componentsHashOnly?: Uint8Array;
  /** Why the report is refused (an AgentLimitError's message); nothing is encoded then. */
  limitError?: string;
}

/**
 * Decodes `bytes` and prepares it. Throws MalformedMessageError when the bytes are not an
 * AgentToServer; a limit broken is returned as `limitError`, since the handler decides when
 * it applies (a request for a new instance uid, for one, is answered whatever it reports).
 */
export function prepareMessage(bytes: Uint8Array, limits: AgentLimits): PreparedMessage {
  const message = decodeAgentToServer(bytes);
  try {
    enforceAgentLimits(message, limits); // cuts over-long error text before it is encoded
  } catch (err) {
    if (!(err instanceof AgentLimitError)) throw err;
    return { message, encoded: {}, limitError: err.message };
  }
  const encoded: PreparedMessage["encoded"] = {};
  for (const field of Object.keys(REPORT_FIELDS) as ReportField[]) {
    const value = message[REPORT_SOURCE[field]];
    if (value === null || value === undefined) continue;
    encoded[field] = encodeSubMessage(REPORT_FIELDS[field], value as object);
  }
  const prepared: PreparedMessage = { message, encoded };
  if (message.health) prepared.healthMeaning = healthMeaning(message.health as ComponentHealth);
  const components = message.availableComponents;
  if (components && !hasComponentMap(components) && (components.hash?.length ?? 0) > 0) {
    prepared.componentsHashOnly = Uint8Array.from(components.hash ?? []);
  }
  return prepared;
}
