/**
 * The baseline for bench/opamp.ts: a bare `ws` WebSocketServer, configured like the OpAMP
 * server's transport (no compression, same payload limit, client tracking), that decodes each
 * AgentToServer with the project's codec and answers a ServerToAgent carrying instance_uid
 * and capabilities. No state, no Redis, no events: the floor of what a message costs.
 */
import { WebSocketServer } from "ws";
import { SERVER_CAPABILITIES } from "../src/opamp/capabilities.js";
import { decodeAgentToServer, encodeServerToAgent } from "../src/opamp/codec.js";
import { frameWebSocketMessage, unframeWebSocketMessage } from "../src/opamp/framing.js";
import { type FromBaseline, measureMemory, sampleWindow, type ToBaseline } from "./ipc.js";
import { WindowProfiler } from "./profile.js";

let messages = 0;

const wss = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
  clientTracking: true,
});

wss.on("connection", (ws) => {
  ws.on("message", (data: Buffer) => {
    messages++;
    const message = decodeAgentToServer(unframeWebSocketMessage(data));
    const reply = encodeServerToAgent({
      instanceUid: message.instanceUid,
      capabilities: SERVER_CAPABILITIES,
    });
    ws.send(frameWebSocketMessage(reply));
  });
  ws.on("error", () => {});
});

function send(message: FromBaseline): void {
  process.send?.(message);
}

wss.on("listening", () => {
  const address = wss.address();
  send({ type: "listening", port: typeof address === "object" && address ? address.port : 0 });
});

process.on("message", (msg: ToBaseline) => {
  void (async () => {
    switch (msg.type) {
      case "memory":
        send({ type: "memory", memory: await measureMemory(), connections: wss.clients.size });
        break;
      case "window": {
        const profiler = new WindowProfiler();
        let profiled: Promise<void> = Promise.resolve();
        const sample = await sampleWindow(
          msg.startAt,
          msg.endAt,
          () => messages,
          () => {
            if (msg.profile) profiled = profiler.start();
          },
        );
        await profiled;
        const profile = msg.profile ? await profiler.stop() : undefined;
        send({ type: "window", sample, ...(profile ? { profile } : {}) });
        break;
      }
      case "exit":
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        process.exit(0);
    }
  })();
});
process.on("disconnect", () => process.exit(0));
