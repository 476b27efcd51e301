/**
 * The decode pool (decode-pool.ts): a message prepared in a worker equals the one prepared on
 * the event loop; malformed bytes and broken limits come back as such; a full queue refuses
 * (DecoderBusyError, answered UNAVAILABLE); a worker that dies fails its jobs and is replaced.
 */
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { DEFAULT_AGENT_LIMITS } from "../../src/opamp/agent-limits.js";
import { REPORT_SOURCE } from "../../src/opamp/agent-state.js";
import { encodeAgentToServer } from "../../src/opamp/codec.js";
import { DecodePool, DecoderBusyError } from "../../src/opamp/decode-pool.js";
import { MalformedMessageError } from "../../src/opamp/errors.js";
import type { ComponentHealth } from "../../src/opamp/messages.js";
import { prepareMessage } from "../../src/opamp/prepare.js";

const uid = new Uint8Array(16).fill(7);
function report(components: number, configBytes: number, lastError = "broken"): Uint8Array {
  const children: Record<string, ComponentHealth> = {};
  for (let i = 0; i < components; i++) children[`receiver/r${i}`] = { healthy: i % 2 === 0 };
  return encodeAgentToServer({
    instanceUid: uid,
    sequenceNum: 3n,
    capabilities: 0x7fn,
    agentDescription: {
      identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
      nonIdentifyingAttributes: [{ key: "host.role", value: { stringValue: "edge" } }],
    },
    health: {
      healthy: false,
      lastError,
      componentHealthMap: { pipeline: { componentHealthMap: children } },
    },
    effectiveConfig: {
      configMap: { configMap: { "": { body: Buffer.alloc(configBytes, 0x61), contentType: "" } } },
    },
    remoteConfigStatus: {
      lastRemoteConfigHash: new Uint8Array(32).fill(1),
      status: 3,
      errorMessage: "x",
    },
  });
}

describe("decode pool", () => {
  let pool: DecodePool | undefined;
  afterEach(() => pool?.close());

  test("a message prepared in a worker equals the one prepared here", async () => {
    pool = new DecodePool({ limits: DEFAULT_AGENT_LIMITS, thresholdBytes: 1024, size: 2 });
    const bytes = report(500, 200_000, "e".repeat(10_000)); // last_error is cut by the limits
    const here = prepareMessage(Buffer.from(bytes), DEFAULT_AGENT_LIMITS);
    const there = await pool.prepare(Buffer.from(bytes));
    assert.equal(pool.stats.offloaded, 1);
    assert.deepEqual(Object.keys(there.encoded).sort(), Object.keys(here.encoded).sort());
    for (const [field, b] of Object.entries(here.encoded))
      assert.ok(
        Buffer.from(b).equals(Buffer.from(there.encoded[field as "health"] as Uint8Array)),
        field,
      );
    assert.equal(there.limitError, undefined);
    assert.deepEqual(there.message.agentDescription, here.message.agentDescription);
    // Both leave the decoded report trees behind (encoded carries them), so none outlives
    // the decode in the handler's awaits; the description stays for the identity check.
    for (const [field, source] of Object.entries(REPORT_SOURCE)) {
      if (field === "description") continue;
      assert.equal(here.message[source], null, source);
      assert.equal(there.message[source], null, source);
    }
    assert.equal(there.message.sequenceNum, 3n);
    assert.equal(there.message.capabilities, 0x7fn);
    assert.ok(Buffer.from(there.message.instanceUid).equals(Buffer.from(uid)));
    // Small messages stay on this thread.
    await pool.prepare(Buffer.from(report(1, 10)));
    assert.equal(pool.stats.inline, 1);
  });

  test("malformed bytes and broken limits come back as such", async () => {
    pool = new DecodePool({
      limits: { ...DEFAULT_AGENT_LIMITS, maxHealthComponents: 10 },
      thresholdBytes: 0,
    });
    await assert.rejects(
      Promise.resolve(pool.prepare(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f]))),
      MalformedMessageError,
    );
    const over = await pool.prepare(Buffer.from(report(20, 10)));
    assert.match(over.limitError ?? "", /maxHealthComponents.*--max-health-components/);
    assert.deepEqual(over.encoded, {});
    assert.equal(pool.stats.offloaded, 2);
  });

  test("a full queue refuses instead of growing", async () => {
    const bytes = Buffer.from(report(100, 100_000));
    pool = new DecodePool({
      limits: DEFAULT_AGENT_LIMITS,
      thresholdBytes: 0,
      size: 1,
      maxQueuedBytes: bytes.length * 2,
    });
    const first = pool.prepare(bytes);
    const second = pool.prepare(bytes);
    await assert.rejects(Promise.resolve(pool.prepare(bytes)), DecoderBusyError);
    assert.equal(pool.stats.busy, 1);
    await Promise.all([first, second]);
    await pool.prepare(bytes); // room again once answered
  });

  test("a worker out of memory fails its job, not the process, and is replaced", async () => {
    pool = new DecodePool({
      limits: DEFAULT_AGENT_LIMITS,
      thresholdBytes: 0,
      size: 1,
      maxWorkerHeapMb: 16,
    });
    await pool.prepare(Buffer.from(report(1, 10)));
    // 400,000 tiny attributes: a 4 MB message whose decoded objects need far more than 16 MiB.
    const many = encodeAgentToServer({
      instanceUid: uid,
      agentDescription: {
        nonIdentifyingAttributes: Array.from({ length: 400_000 }, (_, i) => ({ key: `k${i}` })),
      },
    });
    await assert.rejects(Promise.resolve(pool.prepare(Buffer.from(many))));
    assert.equal(pool.stats.workerFailures, 1);
    const again = await pool.prepare(Buffer.from(report(2, 10)));
    assert.equal(again.limitError, undefined);
    assert.equal(pool.stats.offloaded, 3);
  });
});
