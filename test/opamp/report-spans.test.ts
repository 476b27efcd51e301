/**
 * Report fields stored as the agent sent them (report-spans.ts, prepare.ts): the span of each
 * field is its encoding, found by walking the message; where protobuf would merge (a field
 * sent twice) or the limits cut text, the decoded field is encoded again, so what is stored
 * always decodes to what the message means.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { DEFAULT_AGENT_LIMITS, TRUNCATED_MARKER } from "../../src/opamp/agent-limits.js";
import {
  emptyAgentState,
  mergeReport,
  REPORT_FIELD_NAMES,
  REPORT_FIELDS,
  REPORT_SOURCE,
  type ReportField,
} from "../../src/opamp/agent-state.js";
import {
  decodeAgentToServer,
  decodeSubMessage,
  encodeAgentToServer,
  encodeSubMessage,
} from "../../src/opamp/codec.js";
import { MalformedMessageError } from "../../src/opamp/errors.js";
import type { RemoteConfigStatusMessage } from "../../src/opamp/messages.js";
import { prepareMessage } from "../../src/opamp/prepare.js";
import { reportFieldSpans } from "../../src/opamp/report-spans.js";
import { agentToServer, mutate, mutation } from "../fuzz/helpers.js";

const uid = new Uint8Array(16).fill(9);

/** The field as protobufjs decodes it from `bytes`, encoded again (what was stored before). */
function reencoded(bytes: Uint8Array, field: ReportField): Uint8Array | undefined {
  const value = decodeAgentToServer(bytes)[REPORT_SOURCE[field]];
  return value ? encodeSubMessage(REPORT_FIELDS[field], value as object) : undefined;
}

const same = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
  a !== undefined && b !== undefined && Buffer.from(a).equals(Buffer.from(b));

describe("report field spans", () => {
  test("each field's span is its encoding, byte for byte (protobufjs-encoded messages)", () => {
    fc.assert(
      fc.property(agentToServer(), (message) => {
        const bytes = encodeAgentToServer(message);
        const spans = reportFieldSpans(bytes);
        assert.ok(spans);
        for (const field of REPORT_FIELD_NAMES) {
          const expected = reencoded(bytes, field);
          if (expected === undefined) assert.equal(spans[field], undefined, field);
          else assert.ok(same(spans[field], expected), field);
        }
      }),
      { numRuns: 300, seed: 20_261_203 },
    );
  });

  test("whatever decodes, what is prepared decodes to what the message means", () => {
    fc.assert(
      fc.property(agentToServer(), mutation, (message, m) => {
        const bytes = Buffer.from(mutate(encodeAgentToServer(message), m));
        let prepared: ReturnType<typeof prepareMessage>;
        try {
          prepared = prepareMessage(bytes, DEFAULT_AGENT_LIMITS);
        } catch (err) {
          assert.ok(err instanceof MalformedMessageError);
          return;
        }
        if (prepared.limitError !== undefined) return;
        for (const field of REPORT_FIELD_NAMES) {
          const expected = reencoded(bytes, field);
          const got = prepared.encoded[field];
          assert.equal(got === undefined, expected === undefined, field);
          if (got === undefined || expected === undefined) continue;
          const type = REPORT_FIELDS[field];
          assert.deepEqual(decodeSubMessage(type, got), decodeSubMessage(type, expected), field);
        }
      }),
      { numRuns: 500, seed: 20_261_203 },
    );
  });

  test("fields between unknown entries of every wire type are found", () => {
    const description = { identifyingAttributes: [{ key: "k", value: { stringValue: "v" } }] };
    const known = encodeAgentToServer({
      instanceUid: uid,
      sequenceNum: 1n,
      capabilities: 1n,
      agentDescription: description,
    });
    const unknown = [
      [0xf8, 0x06, 0x96, 0x01], // field 111, varint
      [0xf9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8], // field 111, fixed64
      [0xfa, 0x06, 0x02, 0xaa, 0xbb], // field 111, length-delimited
      [0xfd, 0x06, 1, 2, 3, 4], // field 111, fixed32
    ].flat();
    const bytes = Uint8Array.from([...unknown, ...known, ...unknown]);
    const spans = reportFieldSpans(bytes);
    assert.ok(same(spans?.description, encodeSubMessage("AgentDescription", description)));
  });

  test("a field sent twice is stored as decoded, not taken from one span", () => {
    const first = encodeAgentToServer({
      instanceUid: uid,
      agentDescription: { identifyingAttributes: [{ key: "a", value: { stringValue: "1" } }] },
    });
    const second = encodeAgentToServer({
      agentDescription: { nonIdentifyingAttributes: [{ key: "b", value: { stringValue: "2" } }] },
    });
    const bytes = Buffer.from([...first, ...second]);
    assert.equal(reportFieldSpans(bytes), undefined);
    const prepared = prepareMessage(bytes, DEFAULT_AGENT_LIMITS);
    assert.ok(same(prepared.encoded.description, reencoded(bytes, "description")));
  });

  test("a known field with another wire type than declared is not taken as a span", () => {
    // Field 3 (agent_description) as a varint, then field 3 as it should be: protobufjs reads
    // the first as a length and a message, so the walk must not guess.
    const bytes = Uint8Array.from([
      0x18,
      0x02,
      0x0a,
      0x00,
      ...encodeAgentToServer({ agentDescription: { identifyingAttributes: [] } }),
    ]);
    assert.equal(reportFieldSpans(bytes), undefined);
  });

  test("a config file sent without its value reads back as an empty file", () => {
    // Map entry "a" of AgentConfigMap with a key and no value, inside EffectiveConfig field 1.
    const entry = [0x0a, 0x01, 0x61];
    const configMap = [0x0a, entry.length, ...entry];
    const effective = [0x0a, configMap.length, ...configMap];
    const bytes = Buffer.from([0x32, effective.length, ...effective]);
    const prepared = prepareMessage(bytes, DEFAULT_AGENT_LIMITS);
    const stored = decodeSubMessage<{ configMap: { configMap: Record<string, unknown> } }>(
      "EffectiveConfig",
      prepared.encoded.effectiveConfig as Uint8Array,
    );
    assert.ok(same(prepared.encoded.effectiveConfig, Uint8Array.from(effective)));
    assert.deepEqual(Object.keys(stored.configMap.configMap), ["a"]);
    assert.equal(stored.configMap.configMap.a !== null, true);
  });

  test("unknown fields inside a report field are stored and count toward the stored-bytes limit", () => {
    const known = encodeSubMessage("AgentDescription", {
      identifyingAttributes: [{ key: "k", value: { stringValue: "v" } }],
    });
    const padding = [0xfa, 0x06, 0xe8, 0x07, ...new Uint8Array(1000)]; // field 111, 1,000 bytes
    const description = [...known, ...padding];
    const n = description.length; // over 127 and under 16,384: a two-byte length
    const bytes = Buffer.from([0x1a, (n & 0x7f) | 0x80, n >> 7, ...description]); // field 3
    const prepared = prepareMessage(bytes, DEFAULT_AGENT_LIMITS);
    assert.equal(prepared.encoded.description?.length, description.length);
    const state = emptyAgentState("00000000-0000-0000-0000-000000000001", "websocket", 0);
    const report = { ...prepared, capabilities: 0n };
    assert.throws(() => mergeReport(state, report, 1000), new RegExp(`hold ${n} bytes`));
    assert.deepEqual(mergeReport(state, report, 2000).changed, ["description"]);
  });

  test("text the limits cut is stored cut", () => {
    const bytes = Buffer.from(
      encodeAgentToServer({
        instanceUid: uid,
        remoteConfigStatus: { status: 3, errorMessage: "e".repeat(100_000) },
        agentDescription: { identifyingAttributes: [{ key: "k", value: { stringValue: "v" } }] },
      }),
    );
    const prepared = prepareMessage(bytes, DEFAULT_AGENT_LIMITS);
    const status = decodeSubMessage<RemoteConfigStatusMessage>(
      "RemoteConfigStatus",
      prepared.encoded.remoteConfigStatus as Uint8Array,
    );
    assert.ok(status.errorMessage?.includes(TRUNCATED_MARKER));
    assert.ok((status.errorMessage?.length ?? 0) < 100_000);
  });

  test("a truncated entry or a group answers undefined", () => {
    const bytes = encodeAgentToServer({
      instanceUid: uid,
      agentDescription: { identifyingAttributes: [{ key: "k", value: { stringValue: "v" } }] },
    });
    assert.equal(reportFieldSpans(bytes.subarray(0, bytes.length - 1)), undefined);
    assert.equal(reportFieldSpans(Uint8Array.from([...bytes, 0xfb, 0x06])), undefined);
  });
});
