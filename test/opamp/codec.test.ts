import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  decodeAgentToServer,
  decodeServerToAgent,
  encodeAgentToServer,
  encodeServerToAgent,
  encodeSubMessage,
  messageType,
} from "../../src/opamp/codec.js";
import { MalformedMessageError } from "../../src/opamp/errors.js";
import { frameWebSocketMessage, unframeWebSocketMessage } from "../../src/opamp/framing.js";

const uid = new Uint8Array(16).fill(7);

describe("codec", () => {
  test("uint64 words survive a round trip exactly, beyond 2^53", () => {
    const big = (1n << 63n) | 0x8000n | 1n;
    const seq = (1n << 60n) + 3n;
    const decoded = decodeAgentToServer(
      encodeAgentToServer({ instanceUid: uid, sequenceNum: seq, capabilities: big, flags: big }),
    );
    assert.equal(decoded.sequenceNum, seq);
    assert.equal(decoded.capabilities, big);
    assert.equal(decoded.flags, big);

    const reply = decodeServerToAgent(
      encodeServerToAgent({ instanceUid: uid, flags: big, capabilities: big }),
    );
    assert.equal(reply.flags, big);
    assert.equal(reply.capabilities, big);
  });

  test("absent sub-messages decode as null, present ones keep their content", () => {
    const decoded = decodeAgentToServer(
      encodeAgentToServer({ instanceUid: uid, health: { healthy: true, status: "StatusOK" } }),
    );
    assert.equal(decoded.agentDescription, null);
    assert.equal(decoded.effectiveConfig, null);
    assert.equal(decoded.health?.healthy, true);
    assert.equal(decoded.health?.status, "StatusOK");
  });

  test("a map entry without a value decodes as the empty message, which encodes again (found by fuzzing)", () => {
    // AgentToServer.health (5) { component_health_map (6) { key "a" } }: no value field.
    const entry = [0x0a, 0x01, 0x61];
    const health = [0x32, entry.length, ...entry];
    const bytes = Buffer.from([0x0a, 16, ...new Uint8Array(16), 0x2a, health.length, ...health]);
    const message = decodeAgentToServer(bytes);
    const map = message.health?.componentHealthMap ?? {};
    assert.ok(map.a && typeof map.a === "object", "an empty ComponentHealth, not null");
    assert.ok(encodeSubMessage("ComponentHealth", message.health as object).length > 0);
  });

  test("bytes that are not protobuf raise MalformedMessageError", () => {
    assert.throws(
      () => decodeAgentToServer(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f])),
      MalformedMessageError,
    );
  });

  test("every ServerToAgent carries the server capabilities by default", () => {
    const reply = decodeServerToAgent(encodeServerToAgent({ instanceUid: uid }));
    // AcceptsStatus, OffersRemoteConfig, AcceptsEffectiveConfig, OffersPackages,
    // AcceptsPackagesStatus, OffersConnectionSettings.
    assert.equal(reply.capabilities, 0x1n | 0x2n | 0x4n | 0x8n | 0x10n | 0x20n);
  });

  test("plain replies (copied from a cached encoding) carry each agent's uid and flags, byte for byte", () => {
    const type = messageType("ServerToAgent");
    const uids = [uid, new Uint8Array(16).fill(9), Uint8Array.from({ length: 16 }, (_, i) => i)];
    const sent: Uint8Array[] = [];
    for (const [i, instanceUid] of uids.entries()) {
      for (const flags of [undefined, 1n, 3n]) {
        const bytes = encodeServerToAgent({ instanceUid, ...(flags ? { flags } : {}) });
        const reference = type
          .encode({ instanceUid, ...(flags ? { flags: Number(flags) } : {}), capabilities: 0x3f })
          .finish();
        assert.deepEqual(Buffer.from(bytes), Buffer.from(reference), `uid ${i}, flags ${flags}`);
        sent.push(bytes);
      }
    }
    // Each reply owns its bytes: a later one does not overwrite an earlier one.
    const first = decodeServerToAgent(sent[0] as Uint8Array).instanceUid as Uint8Array;
    assert.deepEqual(Buffer.from(first), Buffer.from(uid));
    const custom = decodeServerToAgent(encodeServerToAgent({ instanceUid: uid, capabilities: 5n }));
    assert.equal(custom.capabilities, 5n);
  });
});

describe("WebSocket framing", () => {
  const payload = encodeAgentToServer({ instanceUid: uid, sequenceNum: 1n });

  test("the 0x00 header is written and stripped", () => {
    const framed = frameWebSocketMessage(payload);
    assert.equal(framed[0], 0x00);
    assert.deepEqual(unframeWebSocketMessage(framed), payload);
  });

  test("header-less legacy frames are accepted as they are", () => {
    assert.deepEqual(unframeWebSocketMessage(payload), payload);
  });

  test("a header byte that is neither 0 nor a protobuf tag is rejected", () => {
    assert.throws(
      () => unframeWebSocketMessage(Buffer.concat([Buffer.from([0x03]), payload])),
      (err: unknown) => err instanceof MalformedMessageError && /header 0x3/.test(err.message),
    );
  });
});
