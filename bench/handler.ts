/**
 * CPU per heartbeat of the OpAMP message path alone: `npm run bench:handler`. Not part of
 * `npm test`. In one process, without sockets: MessageHandler.handle (decode, merge, offers,
 * the batched last-seen touch) and the reply's encoding, for agents whose desired state has a
 * config, a heartbeat interval, own telemetry and a package, with an advertised CA: every
 * offer is computed on every message. Real Redis for the agent store (a heartbeat writes
 * nothing to it). Prints CPU µs per heartbeat and the load average next to it. The third pass
 * gives the provider a version (DesiredStateProvider.version) that does not move.
 *
 * Environment: BENCH_AGENTS=2000, BENCH_ROUNDS=20, REDIS_URL=redis://127.0.0.1:6379.
 */
import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { pino } from "pino";
import { configHash } from "../src/config-hash.js";
import { AgentStore } from "../src/opamp/agent-store.js";
import { AgentCapabilities as Caps } from "../src/opamp/capabilities.js";
import { encodeAgentToServer } from "../src/opamp/codec.js";
import type { Connection } from "../src/opamp/connection.js";
import type { DesiredState, DesiredStateProvider } from "../src/opamp/desired.js";
import { AgentEvents } from "../src/opamp/events.js";
import { frameWebSocketMessage } from "../src/opamp/framing.js";
import { newInstanceUid } from "../src/opamp/instance-uid.js";
import { MessageHandler } from "../src/opamp/message-handler.js";
import { encodeReply } from "../src/opamp/send.js";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const CAPS =
  Caps.ReportsStatus |
  Caps.AcceptsRemoteConfig |
  Caps.ReportsEffectiveConfig |
  Caps.AcceptsPackages |
  Caps.ReportsPackageStatuses |
  Caps.ReportsOwnMetrics |
  Caps.ReportsHealth |
  Caps.ReportsRemoteConfig |
  Caps.AcceptsOpAMPConnectionSettings;

const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

async function main(): Promise<void> {
  const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  const prefix = `bench-handler:${process.pid}`;
  const store = new AgentStore(redis, { prefix });
  const files = [
    { name: "c.yaml", contentType: "text/yaml", body: Buffer.from("receivers: {}\n") },
  ];
  const state: DesiredState = {
    config: { hash: configHash(files), files },
    heartbeatIntervalSeconds: 30,
    telemetry: { metrics: { endpoint: "https://m.example/v1/metrics", headers: { a: "b" } } },
    packages: [
      { name: "p", type: "top-level", version: "1", sha256: "ab".repeat(32), url: "https://x/p" },
    ],
  };
  // Unversioned for the first two passes (asked on every heartbeat), versioned for the third.
  const desired: DesiredStateProvider & { version?: number } = { desired: () => state };
  const logger = pino({ level: "silent" });
  const handler = new MessageHandler({
    store,
    desired,
    events: new AgentEvents(),
    logger,
    replicaId: "bench",
    advertise: { url: "wss://opamp.example/v1/opamp", ca: "-----BEGIN CERTIFICATE-----\n" },
  });
  const agents = Array.from({ length: AGENTS }, (_, i) => ({
    uid: newInstanceUid(),
    seq: 0n,
    conn: {
      id: 1_000_000 + i,
      transport: "websocket",
      remoteAddress: "",
      scopes: [],
      credential: "",
      push: () => {},
    } satisfies Connection,
  }));
  type Agent = (typeof agents)[number];
  const encode = (a: Agent, extra: object = {}) =>
    encodeAgentToServer({ instanceUid: a.uid, sequenceNum: a.seq++, capabilities: CAPS, ...extra });
  // Connected, configured and reporting the config applied: later messages change nothing.
  const description = {
    identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
  };
  for (const a of agents)
    await handler.handle(a.conn, encode(a, { agentDescription: description }));
  const applied = {
    lastRemoteConfigHash: Buffer.from(state.config?.hash ?? "", "hex"),
    status: 1,
  };
  for (const a of agents) await handler.handle(a.conn, encode(a, { remoteConfigStatus: applied }));
  await store.flushTouches();

  const n = AGENTS * ROUNDS;
  // The general path (handle + encode, as HTTP and any report go), then the WebSocket
  // transport's: the heartbeat recognised in the framed bytes, handle() only when declined.
  for (const pass of ["general", "quick", "versioned"] as const) {
    const quick = pass !== "general";
    if (pass === "versioned") desired.version = 1;
    const messages = agents.map((a) =>
      Array.from({ length: ROUNDS }, () => frameWebSocketMessage(encode(a))),
    );
    const before = loadavg();
    const cpu = process.cpuUsage();
    let declined = 0;
    for (let r = 0; r < ROUNDS; r++) {
      await Promise.all(
        agents.map(async (a, i) => {
          const framed = messages[i]?.[r] as Buffer;
          if (quick && handler.heartbeat(a.conn, framed, 1)) return;
          if (quick) declined++;
          const result = await handler.handle(a.conn, framed.subarray(1));
          encodeReply(result.reply, 1 << 20, logger);
        }),
      );
    }
    const used = process.cpuUsage(cpu);
    const label = {
      general: "general path (handle + encode)",
      quick: "WebSocket path (heartbeat())",
      versioned: "WebSocket path, provider versioned (heartbeat() skips desired() and offers)",
    }[pass];
    console.log(
      `bench:handler: ${n} heartbeats of ${AGENTS} agents, ${label}: ${((used.user + used.system) / n).toFixed(1)} µs CPU per heartbeat${quick ? ` (${declined} declined)` : ""}; load average ${before} before, ${loadavg()} after`,
    );
    await store.flushTouches();
  }
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
}

await main();
