/**
 * The bytes of each report field as the agent sent them, found by walking the top level of an
 * AgentToServer (no decode): a field's encoding is the content of its length-delimited entry,
 * so storing that view costs nothing, where encoding the decoded sub-message again cost ~4 %
 * of the event loop while a fleet connects (every first report carries its description,
 * health and effective config).
 *
 * Called only on bytes protobufjs decoded without error, so the walk meets well-formed
 * entries; whatever it does not expect (a group, a truncated entry, a known field with another
 * wire type than declared, a report field sent twice, whose decoded value is not one span, a
 * tag or length past 32 bits, which protobufjs reads otherwise: wire-reader.ts) answers
 * undefined, and the caller encodes the decoded fields as before.
 */
import protobuf from "protobufjs";
import { REPORT_FIELD_NAMES, REPORT_SOURCE, type ReportField } from "./agent-state.js";
import { messageType } from "./codec.js";
import { WireError, WireReader, WireType } from "./wire-reader.js";

const agentToServer = messageType("AgentToServer");

/** Report field by its AgentToServer field number (read from the .proto, not repeated here). */
const BY_NUMBER = new Map<number, ReportField>();
for (const field of REPORT_FIELD_NAMES) {
  const id = agentToServer.fields[REPORT_SOURCE[field]]?.id;
  if (id === undefined) throw new Error(`AgentToServer has no field ${REPORT_SOURCE[field]}`);
  BY_NUMBER.set(id, field);
}

const FIXED64 = new Set(["fixed64", "sfixed64", "double"]);
const FIXED32 = new Set(["fixed32", "sfixed32", "float"]);

/**
 * The wire type each AgentToServer field is encoded with. protobufjs reads a known field by
 * its declared type whatever wire type the tag says, so an entry with another wire type is
 * one the two readings could split differently: the walk gives up on it.
 */
const WIRE_TYPE = new Map<number, number>();
for (const f of agentToServer.fieldsArray) {
  const delimited =
    f.resolvedType instanceof protobuf.Type || f.type === "string" || f.type === "bytes";
  WIRE_TYPE.set(f.id, delimited ? 2 : FIXED64.has(f.type) ? 1 : FIXED32.has(f.type) ? 5 : 0);
}

/**
 * Views into `bytes` (no copy) of the report fields it carries, by field, or undefined where
 * a span is not certain (see the file comment). Linear in the number of top-level entries.
 */
export function reportFieldSpans(
  bytes: Uint8Array,
): Partial<Record<ReportField, Uint8Array>> | undefined {
  const spans: Partial<Record<ReportField, Uint8Array>> = {};
  const r = new WireReader(bytes);
  try {
    while (!r.done) {
      const tag = r.tag();
      const wireType = tag % 8;
      const expected = WIRE_TYPE.get(Math.floor(tag / 8));
      if (expected !== undefined && expected !== wireType) return undefined;
      if (wireType === WireType.StartGroup || wireType === WireType.EndGroup) return undefined;
      if (wireType !== WireType.Delimited) {
        r.skip(tag);
        continue;
      }
      const start = r.delimited();
      const field = BY_NUMBER.get(Math.floor(tag / 8));
      if (field !== undefined) {
        if (spans[field] !== undefined) return undefined;
        spans[field] = bytes.subarray(start, r.pos);
      }
    }
  } catch (err) {
    if (err instanceof WireError) return undefined;
    throw err;
  }
  return spans;
}
