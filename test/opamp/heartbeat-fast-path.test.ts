/**
 * The heartbeat fast path: pure heartbeats recognised in the bytes (heartbeat-bytes.ts) and
 * answered by MessageHandler.heartbeat() without the general path, with the same effects;
 * every other message, and every heartbeat that is due something, takes the general path.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  AgentCapabilities as Caps,
  SERVER_CAPABILITIES,
  ServerToAgentFlags,
} from "../../src/opamp/capabilities.js";
import {
  decodeAgentToServer,
  encodeAgentToServer,
  encodeHeartbeatAck,
  encodeServerToAgent,
} from "../../src/opamp/codec.js";
import { parseHeartbeat, uidBytesMatch } from "../../src/opamp/heartbeat-bytes.js";
import { uidToString } from "../../src/opamp/instance-uid.js";
import { TestAgent } from "../helpers/agent.js";
import {
  startTestServer,
  TestDesired,
  type TestServer,
  yamlConfig,
} from "../helpers/opamp-server.js";

const uid = new Uint8Array(randomBytes(16));
const beat = (seq: bigint, caps: bigint, extra: object = {}) =>
  encodeAgentToServer({ instanceUid: uid, sequenceNum: seq, capabilities: caps, ...extra });

describe("heartbeat bytes", () => {
  test("a pure heartbeat is recognised with its fields", () => {
    const bytes = Buffer.concat([Buffer.from([0x00]), beat(123_456_789n, 0x1fffn)]);
    const found = parseHeartbeat(bytes, 1);
    assert.ok(found);
    assert.deepEqual(bytes.subarray(found.uidOffset, found.uidOffset + 16), Buffer.from(uid));
    assert.equal(found.sequenceNum, 123_456_789);
    assert.equal(found.capabilities, 0x1fff);
    // Fields in another order, and an explicit zero flags word, are the same message.
    const reordered = Buffer.from([0x20, 0x05, 0x50, 0x00, 0x10, 0x07, 0x0a, 16, ...uid]);
    assert.deepEqual(
      { ...parseHeartbeat(reordered, 0) },
      {
        uidOffset: 8,
        sequenceNum: 7,
        capabilities: 5,
      },
    );
  });

  test("anything else is declined", () => {
    const declined: [string, Uint8Array][] = [
      ["empty", new Uint8Array(0)],
      ["no uid", encodeAgentToServer({ sequenceNum: 1n, capabilities: 1n })],
      ["a 15-byte uid", encodeAgentToServer({ instanceUid: uid.subarray(1), sequenceNum: 1n })],
      ["a description", beat(1n, 1n, { agentDescription: { identifyingAttributes: [] } })],
      ["a disconnect", beat(1n, 1n, { agentDisconnect: {} })],
      ["flags", beat(1n, 1n, { flags: 1n })],
      ["health", beat(1n, 1n, { health: { healthy: true } })],
      ["a sequence number of 2^49", beat(2n ** 49n, 1n)],
      ["capabilities past 2^49", beat(1n, 2n ** 63n)],
      ["a repeated field", Buffer.concat([beat(1n, 1n), Buffer.from([0x10, 0x02])])],
      ["a repeated uid", Buffer.concat([beat(1n, 1n), Buffer.from([0x0a, 16, ...uid])])],
      ["an unknown field", Buffer.concat([beat(1n, 1n), Buffer.from([0xa8, 0x01, 0x01])])],
    ];
    for (const [what, bytes] of declined) assert.equal(parseHeartbeat(bytes, 0), undefined, what);
    // uid (18 bytes), sequence number (3), capabilities (3): a cut between fields is a
    // shorter heartbeat, a cut inside one is declined.
    const whole = beat(300n, 0x2000n);
    assert.equal(whole.length, 24);
    for (let n = 1; n < whole.length; n++)
      assert.equal(
        parseHeartbeat(whole.subarray(0, n), 0) !== undefined,
        n === 18 || n === 21,
        `cut at ${n}`,
      );
  });

  test("what is recognised decodes to the same message (mutated heartbeats)", () => {
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const bytes = Buffer.from(beat(BigInt(i), BigInt(i % 70_000)));
      const flips = 1 + (i % 3);
      for (let f = 0; f < flips; f++)
        bytes[Math.floor(Math.random() * bytes.length)] = Math.floor(Math.random() * 256);
      const found = parseHeartbeat(bytes, 0);
      if (!found) continue;
      accepted++;
      const m = decodeAgentToServer(bytes);
      const at = found.uidOffset;
      assert.deepEqual(Buffer.from(m.instanceUid), bytes.subarray(at, at + 16));
      assert.equal(m.sequenceNum, BigInt(found.sequenceNum));
      assert.equal(m.capabilities, BigInt(found.capabilities));
      assert.equal(m.flags, 0n);
      for (const field of Object.keys(m) as (keyof typeof m)[])
        if (!["instanceUid", "sequenceNum", "capabilities", "flags"].includes(field))
          assert.equal(m[field], null, `${field} of an accepted message`);
    }
    assert.ok(accepted > 1000, `only ${accepted} mutations accepted: the property was not tried`);
  });

  test("uid bytes are compared with the canonical uid string", () => {
    for (let i = 0; i < 200; i++) {
      const bytes = new Uint8Array(randomBytes(20));
      const text = uidToString(bytes.subarray(2, 18));
      assert.ok(uidBytesMatch(bytes, 2, text));
      const other = Uint8Array.from(bytes);
      const k = 2 + (i % 16);
      other[k] = (other[k] as number) ^ (1 << (i % 8));
      assert.equal(uidBytesMatch(other, 2, text), false);
      assert.equal(uidBytesMatch(bytes, 6, text), false, "past the end");
    }
  });

  test("the heartbeat ack is the general encoder's reply", () => {
    assert.deepEqual(
      Buffer.from(encodeHeartbeatAck(uid)),
      Buffer.from(encodeServerToAgent({ instanceUid: uid })),
    );
  });
});

describe("heartbeats over WebSocket", () => {
  let t: TestServer;
  const open: TestAgent[] = [];
  const CAPS = Caps.ReportsStatus | Caps.AcceptsRemoteConfig;
  const connected = async () => {
    const a = new TestAgent({ transport: "websocket", url: t.url });
    await a.connect();
    open.push(a);
    const description = {
      identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
    };
    await a.send({ capabilities: CAPS, agentDescription: description });
    return a;
  };
  const quick = () => t.server.handler.stats.quickHeartbeats;

  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    for (const a of open) a.close();
    await t.close();
  });

  test("a heartbeat that changes nothing is answered and recorded on the fast path", async () => {
    const a = await connected();
    const before = quick();
    let reply = await a.send({ capabilities: CAPS });
    for (let i = 0; i < 4; i++) reply = await a.send({ capabilities: CAPS });
    assert.equal(quick() - before, 5);
    assert.deepEqual(Buffer.from(reply.instanceUid as Uint8Array), Buffer.from(a.uid));
    assert.equal(reply.capabilities, SERVER_CAPABILITIES);
    assert.equal(reply.flags, 0n);
    assert.equal(reply.remoteConfig, null);
    await t.server.store.flushTouches();
    const stored = await t.server.store.load(uidToString(a.uid));
    assert.equal(stored?.sequenceNum, 5n, "the last heartbeat's sequence number");
    const live = t.server.handler.live.get(uidToString(a.uid));
    assert.equal(live?.state.sequenceNum, 5n);
    assert.ok(Date.now() - (stored?.lastSeenAt ?? 0) < 5000);
  });

  test("a config made desired without a push is offered with the next heartbeat", async () => {
    const a = await connected();
    await a.send({ capabilities: CAPS });
    const config = yamlConfig({ "c.yaml": "heartbeat: offer\n" });
    t.desired.byUid.set(uidToString(a.uid), { config });
    const before = quick();
    const reply = await a.send({ capabilities: CAPS });
    assert.equal(quick(), before, "declined: an offer is due");
    const offered = reply.remoteConfig as { configHash: Uint8Array } | null;
    assert.equal(Buffer.from(offered?.configHash ?? []).toString("hex"), config?.hash);
    await a.send({ capabilities: CAPS });
    assert.equal(quick(), before + 1, "offered once: the next one is quick again");
  });

  test("a gap, new capabilities and a goodbye take the general path", async () => {
    const a = await connected();
    await a.send({ capabilities: CAPS });
    const before = quick();
    a.seq += 5n;
    const gap = await a.send({ capabilities: CAPS });
    assert.equal(
      gap.flags & ServerToAgentFlags.ReportFullState,
      ServerToAgentFlags.ReportFullState,
    );
    await a.send({ capabilities: CAPS | Caps.ReportsHealth });
    const uid = uidToString(a.uid);
    assert.equal((await t.server.store.load(uid))?.capabilities, CAPS | Caps.ReportsHealth);
    await a.send({ capabilities: CAPS | Caps.ReportsHealth, agentDisconnect: {} });
    assert.equal((await t.server.store.load(uid))?.connected, false);
    assert.equal(quick(), before, "none of them was quick");
  });
});

/** TestDesired with a version: bumped by `change`, as DesiredStateProvider.version requires. */
class VersionedDesired extends TestDesired {
  version = 0;
  asked = 0;
  override desired(agent: Parameters<TestDesired["desired"]>[0]) {
    this.asked++;
    return super.desired(agent);
  }
  change(update: () => void): void {
    update();
    this.version++;
  }
}

describe("heartbeats with a versioned provider", () => {
  let t: TestServer;
  const open: TestAgent[] = [];
  const desired = new VersionedDesired();
  const CAPS = Caps.ReportsStatus | Caps.AcceptsRemoteConfig;
  const stats = () => t.server.handler.stats;
  const connected = async () => {
    const a = new TestAgent({ transport: "websocket", url: t.url });
    await a.connect();
    open.push(a);
    await a.send({ capabilities: CAPS, agentDescription: { identifyingAttributes: [] } });
    return a;
  };

  before(async () => {
    t = await startTestServer({ desired });
  });
  after(async () => {
    for (const a of open) a.close();
    await t.close();
  });

  test("the provider is asked once per version, not per heartbeat", async () => {
    const a = await connected();
    const asked = desired.asked;
    const quiet = stats().quietHeartbeats;
    for (let i = 0; i < 5; i++) await a.send({ capabilities: CAPS });
    assert.equal(desired.asked - asked, 1, "asked at the first heartbeat only");
    assert.equal(stats().quietHeartbeats - quiet, 4);
    desired.change(() => {}); // a change that changes nothing for this agent
    await a.send({ capabilities: CAPS });
    assert.equal(desired.asked - asked, 2, "asked again after the version moved");
    assert.equal(stats().quietHeartbeats - quiet, 4);
  });

  test("a change with a new version is offered at the next heartbeat", async () => {
    const a = await connected();
    for (let i = 0; i < 3; i++) await a.send({ capabilities: CAPS });
    const config = yamlConfig({ "c.yaml": "versioned: offer\n" });
    desired.change(() => desired.byUid.set(uidToString(a.uid), { config }));
    const reply = await a.send({ capabilities: CAPS });
    const offered = reply.remoteConfig as { configHash: Uint8Array } | null;
    assert.equal(Buffer.from(offered?.configHash ?? []).toString("hex"), config?.hash);
  });

  test("a change without a new version is not seen: the version is what is relied on", async () => {
    const a = await connected();
    for (let i = 0; i < 3; i++) await a.send({ capabilities: CAPS });
    desired.byUid.set(uidToString(a.uid), { config: yamlConfig({ "c.yaml": "unversioned\n" }) });
    const reply = await a.send({ capabilities: CAPS });
    assert.equal(reply.remoteConfig, null, "skipped: the provider said nothing changed");
  });

  test("any other message of the agent makes the next heartbeat ask again", async () => {
    const a = await connected();
    for (let i = 0; i < 3; i++) await a.send({ capabilities: CAPS });
    const asked = desired.asked;
    await a.send({ capabilities: CAPS, health: { healthy: true } });
    assert.equal(desired.asked - asked, 1, "the general path asks");
    await a.send({ capabilities: CAPS });
    assert.equal(desired.asked - asked, 2, "and so does the next heartbeat");
    await a.send({ capabilities: CAPS });
    assert.equal(desired.asked - asked, 2, "then it is quiet again");
  });
});
