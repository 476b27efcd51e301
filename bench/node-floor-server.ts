/**
 * bench:serve's Node floor (BENCH_FLOOR=1): the opamp-go peer's logic (bench/opamp-go-server)
 * written as a plain Node server: a `ws` WebSocketServer configured like serve's transport
 * (no compression, the same payload limit), the project's codec, per-agent state in a Map,
 * agents placed in a group by their service.name, asked for their full state when it is
 * unknown and sent the group's config until they report it APPLIED. No Redis, no Git, no
 * rollouts, no limits, one thread: what connecting and answering agents costs Node itself,
 * so serve's figures split into what the runtime costs (this ÷ the Go peer) and what the
 * service adds on top (serve ÷ this).
 *
 * Usage: node dist/bench/node-floor-server.js <collector.yaml> [service.name]. Prints one JSON
 * line on stdout once listening: {"port":N,"pid":N}. Stops on SIGTERM/SIGINT.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { WebSocketServer } from "ws";
import { SERVER_CAPABILITIES, ServerToAgentFlags } from "../src/opamp/capabilities.js";
import { decodeAgentToServer, encodeServerToAgent } from "../src/opamp/codec.js";
import { frameWebSocketMessage, unframeWebSocketMessage } from "../src/opamp/framing.js";
import type { AgentRemoteConfig, ServerToAgent } from "../src/opamp/messages.js";

interface Group {
  hash: Uint8Array;
  remoteConfig: AgentRemoteConfig;
}

interface Agent {
  group?: Group;
  offered?: Uint8Array;
}

const [configPath, serviceName = "otelcol-bench"] = process.argv.slice(2);
if (!configPath) {
  process.stderr.write("usage: node-floor-server <collector.yaml> [service.name]\n");
  process.exit(2);
}
const body = readFileSync(configPath);
const hash = createHash("sha256").update(body).digest();
const groups = new Map<string, Group>([
  [
    serviceName,
    {
      hash,
      remoteConfig: {
        configHash: hash,
        config: { configMap: { "collector.yaml": { body, contentType: "text/yaml" } } },
      },
    },
  ],
]);
const agents = new Map<string, Agent>();

function answer(bytes: Uint8Array): Uint8Array {
  const message = decodeAgentToServer(bytes);
  const uid = Buffer.from(message.instanceUid).toString("hex");
  const reply: ServerToAgent = {
    instanceUid: message.instanceUid,
    capabilities: SERVER_CAPABILITIES,
  };
  let agent = agents.get(uid);
  if (!agent) {
    agent = {};
    agents.set(uid, agent);
  }
  if (message.agentDisconnect) {
    agents.delete(uid);
    return encodeServerToAgent(reply);
  }
  const description = message.agentDescription;
  if (description) {
    agent.group = undefined;
    for (const kv of description.identifyingAttributes ?? [])
      if (kv.key === "service.name") agent.group = groups.get(String(kv.value?.stringValue));
  } else if (!agent.group) {
    reply.flags = ServerToAgentFlags.ReportFullState;
    return encodeServerToAgent(reply);
  }
  const group = agent.group;
  if (group) {
    const last = message.remoteConfigStatus?.lastRemoteConfigHash;
    const applied = last !== undefined && Buffer.from(last).equals(group.hash);
    if (!applied && agent.offered !== group.hash) {
      agent.offered = group.hash;
      reply.remoteConfig = group.remoteConfig;
    }
  }
  return encodeServerToAgent(reply);
}

const wss = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  path: "/v1/opamp",
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
});
wss.on("connection", (ws) => {
  ws.on("message", (data: Buffer) => {
    try {
      ws.send(frameWebSocketMessage(answer(unframeWebSocketMessage(data))));
    } catch {
      ws.close(1002);
    }
  });
  ws.on("error", () => {});
});
wss.on("listening", () => {
  const address = wss.address();
  const port = address !== null && typeof address === "object" ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ port, pid: process.pid })}\n`);
});
for (const signal of ["SIGTERM", "SIGINT"] as const)
  process.on(signal, () => {
    wss.close();
    process.exit(0);
  });
