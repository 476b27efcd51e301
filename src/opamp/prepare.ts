/**
 * The pure, CPU-bound part of handling one AgentToServer: decode, the agent limits, and the
 * encoding of every report field present (what is stored, and what change is judged on by
 * byte comparison: the bytes as the agent sent them, report-spans.ts, or encoded again from
 * the decoded field where the limits cut text out of it), plus the health report's meaning.
 * It touches no state, so it runs on the event loop for small messages and in a decode
 * worker for large ones (decode-pool.ts), with the same result.
 */
import { type AgentLimits, enforceAgentLimits } from "./agent-limits.js";
import {
  hasComponentMap,
  REPORT_FIELD_NAMES,
  REPORT_FIELDS,
  REPORT_SOURCE,
  type ReportField,
} from "./agent-state.js";
import { decodeAgentToServer, encodeSubMessage } from "./codec.js";
import { AgentLimitError } from "./errors.js";
import { healthMeaning } from "./health-meaning.js";
import type { AgentToServer, ComponentHealth } from "./messages.js";
import { reportFieldSpans } from "./report-spans.js";

export interface PreparedMessage {
  /**
   * The decoded message. Its report fields (REPORT_SOURCE) are null except `agentDescription`
   * (the identity check reads it; prepared off the event loop, it is decoded again from
   * `encoded`): `encoded` carries them. Unless `limitError` is set: then they are as decoded
   * (cut to the limits).
   */
  message: AgentToServer;
  /**
   * The encoding of each report field present, exactly sized: views into the received bytes
   * (copy what you keep), or buffers of their own where encoded again.
   */
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
  let cut: boolean;
  try {
    cut = enforceAgentLimits(message, limits); // cuts over-long error text before it is encoded
  } catch (err) {
    if (!(err instanceof AgentLimitError)) throw err;
    return { message, encoded: {}, limitError: err.message };
  }
  const encoded: PreparedMessage["encoded"] = {};
  const prepared: PreparedMessage = { message, encoded };
  if (message.health) prepared.healthMeaning = healthMeaning(message.health as ComponentHealth);
  const components = message.availableComponents;
  if (components && !hasComponentMap(components) && (components.hash?.length ?? 0) > 0) {
    prepared.componentsHashOnly = Uint8Array.from(components.hash ?? []);
  }
  // The fields as sent, unless the limits cut text out of them (then what is stored is the cut
  // message, encoded again).
  const sent = cut ? undefined : reportFieldSpans(bytes);
  for (const field of REPORT_FIELD_NAMES) {
    const source = REPORT_SOURCE[field];
    const value = message[source];
    if (value === null || value === undefined) continue;
    encoded[field] = sent?.[field] ?? encodeSubMessage(REPORT_FIELDS[field], value as object);
    // The decoded report trees (health and the component map above all: thousands of
    // objects for a large Collector) are not read past this point, but the handler holds the
    // message across its Redis round trips, long enough for a scavenge to promote them to
    // the old generation, where only a major GC frees them. Dropped here, they die young.
    if (field !== "description") message[source] = null as never;
  }
  return prepared;
}
