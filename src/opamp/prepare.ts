/**
 * The pure, CPU-bound part of handling one AgentToServer: decode, the agent limits, and the
 * encoding of every report field present (what is stored, and what change is judged on by
 * byte comparison: the bytes as the agent sent them, report-spans.ts, or encoded again from
 * the decoded field where the limits cut text out of it). Health is checked on the wire
 * (health-wire.ts) and decoded only when the limits must look into it.
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
import {
  decodeAgentToServer,
  decodeAgentToServerHealthAsBytes,
  decodeSubMessage,
  encodeSubMessage,
} from "./codec.js";
import { AgentLimitError, MalformedMessageError } from "./errors.js";
import { type HealthScan, scanHealth } from "./health-wire.js";
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
  let { message, health } = decodeAgentToServerHealthAsBytes(bytes);
  const spans = reportFieldSpans(bytes);
  const scan = health && spans ? scanned(health, limits) : undefined;
  /** Health decoded in full (below): stored encoded again, not as sent. */
  let decoded = false;
  if (health && (!scan || scan.components > limits.maxHealthComponents)) {
    // An irregular top level (health sent twice, or with another wire type: the decoder kept
    // one and never looked at the other), an encoding the wire scan does not read (it refuses
    // more than protobufjs, e.g. varints past 32 bits), or a tree over the limit (where the
    // scan stopped): decoded in full, as it always was, so protobufjs decides what is
    // malformed; what it accepts is stored as it decodes.
    message = decodeAgentToServer(bytes);
    health = undefined;
    decoded = true;
  }
  let cut: boolean;
  try {
    if (health && scan?.needsDecode) {
      // The rare report the limits must look into (component attributes, over-long text):
      // decoded, checked and cut below as every other field.
      message.health = decodedHealth(health);
    }
    cut = enforceAgentLimits(message, limits); // cuts over-long error text before it is encoded
  } catch (err) {
    if (!(err instanceof AgentLimitError)) throw err;
    return { message, encoded: {}, limitError: err.message };
  }
  const encoded: PreparedMessage["encoded"] = {};
  const prepared: PreparedMessage = { message, encoded };
  const components = message.availableComponents;
  if (components && !hasComponentMap(components) && (components.hash?.length ?? 0) > 0) {
    prepared.componentsHashOnly = Uint8Array.from(components.hash ?? []);
  }
  // Health checked on the wire is stored as sent.
  if (health && !message.health) encoded.health = health;
  // The fields as sent, unless the limits cut text out of them (then what is stored is the cut
  // message, encoded again).
  const sent = cut ? undefined : spans;
  if (decoded && sent) delete sent.health;
  for (const field of REPORT_FIELD_NAMES) {
    const source = REPORT_SOURCE[field];
    const value = message[source];
    if (value === null || value === undefined) continue;
    encoded[field] = sent?.[field] ?? encodeSubMessage(REPORT_FIELDS[field], value as object);
    // The decoded report trees (the component map above all: thousands of objects for a
    // large Collector) are not read past this point, but the handler holds the message across
    // its Redis round trips, long enough for a scavenge to promote them to the old
    // generation, where only a major GC frees them. Dropped here, they die young.
    if (field !== "description") message[source] = null as never;
  }
  return prepared;
}

/** scanHealth, or undefined where it refuses the encoding (the full decode then decides). */
function scanned(health: Uint8Array, limits: AgentLimits): HealthScan | undefined {
  try {
    return scanHealth(health, limits.maxHealthComponents, limits.maxErrorMessageBytes);
  } catch (err) {
    if (err instanceof MalformedMessageError) return undefined;
    throw err;
  }
}

function decodedHealth(bytes: Uint8Array): ComponentHealth {
  try {
    return decodeSubMessage<ComponentHealth>("ComponentHealth", bytes);
  } catch (err) {
    throw new MalformedMessageError(
      `AgentToServer is not valid protobuf: health: ${(err as Error).message}`,
      {},
      err,
    );
  }
}
