/**
 * What an agent state keeps per agent: the description is kept encoded only (decoded when
 * read), and what is derived from it is re-derived once it changed (descriptionIdentity).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  descriptionIdentity,
  emptyAgentState,
  setReportField,
} from "../../src/opamp/agent-state.js";
import { encodeSubMessage } from "../../src/opamp/codec.js";
import type { AgentDescription } from "../../src/opamp/messages.js";

function description(host: string): AgentDescription {
  return {
    identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
    nonIdentifyingAttributes: [{ key: "host.name", value: { stringValue: host } }],
  } as AgentDescription;
}

/** The own property values of `state` that are objects with attributes (a decoded description). */
function keptDescriptions(state: object): unknown[] {
  return Object.values(state).filter(
    (v) => typeof v === "object" && v !== null && "identifyingAttributes" in v,
  );
}

test("a stored description is kept encoded and decoded when read", () => {
  const state = emptyAgentState("u1", "websocket", 0);
  setReportField(state, "description", encodeSubMessage("AgentDescription", description("a")));
  assert.deepEqual(keptDescriptions(state), []);
  const read = state.description;
  assert.equal(read?.nonIdentifyingAttributes?.[0]?.value?.stringValue, "a");
  assert.equal(state.description, read, "read twice in a row: decoded once");
  assert.deepEqual(keptDescriptions(state), [], "reading keeps nothing on the state");
});

test("descriptionIdentity stays while the description is unchanged and moves when it changes", () => {
  const state = emptyAgentState("u1", "websocket", 0);
  assert.equal(descriptionIdentity(state), null);
  setReportField(state, "description", encodeSubMessage("AgentDescription", description("a")));
  const first = descriptionIdentity(state);
  void state.description;
  assert.equal(descriptionIdentity(state), first);
  setReportField(state, "description", encodeSubMessage("AgentDescription", description("b")));
  assert.notEqual(descriptionIdentity(state), first);
  assert.equal(state.description?.nonIdentifyingAttributes?.[0]?.value?.stringValue, "b");
  // An assigned description (tests, fakes) wins until new bytes are stored.
  const assigned = description("c");
  state.description = assigned;
  assert.equal(state.description, assigned);
  assert.equal(descriptionIdentity(state), assigned);
  setReportField(state, "description", encodeSubMessage("AgentDescription", description("d")));
  assert.equal(state.description?.nonIdentifyingAttributes?.[0]?.value?.stringValue, "d");
});

test("stored report bytes are a copy kept as a string: reads give equal bytes, the input is not kept", () => {
  const state = emptyAgentState("u1", "websocket", 0);
  const frame = Buffer.alloc(64, 7);
  const bytes = encodeSubMessage("AgentDescription", description("a"));
  frame.set(bytes, 10);
  const view = frame.subarray(10, 10 + bytes.length);
  setReportField(state, "description", view);
  frame.fill(0); // the received frame is reused: the stored bytes must not change
  assert.ok(Buffer.from(bytes).equals(state.encoded.description as Buffer));
  assert.equal(state.description?.nonIdentifyingAttributes?.[0]?.value?.stringValue, "a");
  assert.deepEqual(
    Object.values(state).filter((v) => v instanceof Uint8Array),
    [],
    "no buffer is kept on the state",
  );
});
