/**
 * The agents of bench/hostile.ts, in their own process:
 *   `reports <url> <agents> <reports>`: WebSocket agents sending maximal reports (every
 *     default limit reached), each waiting for its reply;
 *   `flood <url> <MiB>`: one agent that never reads (a raw socket), sending retried messages
 *     until it has sent that much or the server dropped it; it then stays until the parent
 *     ends it.
 * Reports `{ messages, bytes }` to the parent over IPC.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { connect } from "node:net";
import WebSocket from "ws";
import { DEFAULT_AGENT_LIMITS as L } from "../src/opamp/agent-limits.js";
import { AgentCapabilities as Caps } from "../src/opamp/capabilities.js";
import { encodeAgentToServer } from "../src/opamp/codec.js";
import { frameWebSocketMessage } from "../src/opamp/framing.js";
import type { ComponentHealth, KeyValue } from "../src/opamp/messages.js";

const CAPS =
  Caps.ReportsStatus | Caps.AcceptsRemoteConfig | Caps.ReportsEffectiveConfig | Caps.ReportsHealth;

/** A YAML file of flat keys with secrets, `bytes` long: the parser's and redactor's worst. */
function yamlFile(bytes: number, salt: string): Buffer {
  const lines = ["receivers:"];
  let size = 11;
  for (let i = 0; size < bytes - 64; i++) {
    const line = `  r${i}_${salt}: {endpoint: "h${i}:4317", password: "p${i}"}`;
    lines.push(line);
    size += line.length + 1;
  }
  return Buffer.from(`${lines.join("\n")}\n`);
}

function maximalReport(uid: Uint8Array, seq: number, salt: string): Uint8Array {
  const attributes: KeyValue[] = Array.from({ length: L.maxAttributes }, (_, i) => ({
    key: `attr.${i}`,
    value: { stringValue: `${salt}-${"v".repeat(64)}` },
  }));
  attributes[0] = { key: "host.role", value: { stringValue: "edge" } };
  const components: Record<string, ComponentHealth> = {};
  for (let i = 0; i < L.maxHealthComponents - 2; i++)
    components[`receiver/r${i}`] = { healthy: true, status: `StatusOK ${salt}` };
  const perFile = Math.floor(L.maxConfigBytes / 4) - 64;
  const configMap: Record<string, { body: Buffer; contentType: string }> = {};
  for (let f = 0; f < 4; f++)
    configMap[`c${f}.yaml`] = { body: yamlFile(perFile, `${salt}${f}`), contentType: "text/yaml" };
  return encodeAgentToServer({
    instanceUid: uid,
    sequenceNum: BigInt(seq),
    capabilities: CAPS,
    agentDescription: {
      identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
      nonIdentifyingAttributes: attributes.slice(0, L.maxAttributes - 1),
    },
    health: { healthy: true, componentHealthMap: { pipeline: { componentHealthMap: components } } },
    effectiveConfig: { configMap: { configMap } },
  });
}

async function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  await once(ws, "open");
  return ws;
}

async function reports(url: string, agents: number, count: number) {
  let messages = 0;
  let bytes = 0;
  await Promise.all(
    Array.from({ length: agents }, async () => {
      const ws = await open(url);
      const uid = new Uint8Array(randomBytes(16));
      for (let seq = 0; seq < count; seq++) {
        const frame = frameWebSocketMessage(
          maximalReport(uid, seq, randomBytes(3).toString("hex")),
        );
        const reply = once(ws, "message");
        ws.send(frame);
        await reply;
        messages++;
        bytes += frame.length;
      }
      ws.close();
    }),
  );
  return { messages, bytes };
}

/**
 * A WebSocket client that never reads: a raw TCP socket that does the handshake, then stops
 * reading for good and writes masked binary frames (a `ws` client would read on its own to
 * answer pings and drain its receiver, so it is not used here).
 */
async function flood(url: string, mib: number) {
  const { hostname, port, pathname } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  await once(socket, "connect");
  socket.write(
    `GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\n` +
      "Sec-WebSocket-Version: 13\r\n\r\n",
  );
  let head = "";
  while (!head.includes("\r\n\r\n")) head += String((await once(socket, "data"))[0]);
  if (!head.startsWith("HTTP/1.1 101"))
    throw new Error(`upgrade refused: ${head.split("\r\n")[0]}`);
  socket.pause(); // never read again: replies and pings pile up on the server's side
  const payload = frameWebSocketMessage(
    encodeAgentToServer({
      instanceUid: new Uint8Array(randomBytes(16)),
      sequenceNum: 1n,
      capabilities: CAPS,
    }),
  );
  // One masked binary frame (RFC 6455 §5.2), payload under 126 bytes.
  const mask = randomBytes(4);
  const frame = Buffer.concat([
    Buffer.from([0x82, 0x80 | payload.length]),
    mask,
    Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] as number))),
  ]);
  let dropped = false;
  socket.on("error", () => {
    dropped = true;
  });
  socket.on("close", () => {
    dropped = true;
  });
  let messages = 0;
  let bytes = 0;
  const limit = mib * 1024 * 1024;
  while (bytes < limit && !dropped) {
    messages++;
    bytes += frame.length;
    if (!socket.write(frame))
      await Promise.race([once(socket, "drain"), once(socket, "close")]).catch(() => {});
  }
  return { messages, bytes, dropped };
}

const [mode, url, a, b] = process.argv.slice(2);
const result =
  mode === "reports"
    ? await reports(url as string, Number(a), Number(b))
    : await flood(url as string, Number(a));
process.send?.(result);
// The flooding socket stays open until the parent ends this process: a paused socket with
// nothing to write does not keep the event loop alive, so a timer does.
if (mode === "flood") setInterval(() => {}, 60_000);
else process.disconnect?.();
