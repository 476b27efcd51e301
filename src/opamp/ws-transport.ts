/**
 * WebSocket adapter: one Connection per socket. Binary frames carry the `0x00` header and an
 * AgentToServer; text frames and undecodable frames are answered with BAD_REQUEST. The size
 * limit is enforced by `ws` itself (maxPayload), which closes with 1009 before buffering more.
 *
 * Ordering: messages of one socket are handled strictly one after another.
 */
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import { type WebSocket, WebSocketServer } from "ws";
import { type Connection, nextConnectionId } from "./connection.js";
import { scopesOf } from "./credentials.js";
import { frameWebSocketMessage, unframeWebSocketMessage } from "./framing.js";
import type { MessageHandler } from "./message-handler.js";
import type { ServerToAgent } from "./messages.js";
import { badRequest, encodeReply } from "./send.js";

export interface WebSocketTransportOptions {
  handler: MessageHandler;
  logger: Logger;
  maxMessageBytes: number;
  /** Interval of protocol pings that find dead sockets, in ms. Default 30 000. */
  pingIntervalMs?: number;
}

export class WebSocketTransport {
  readonly wss: WebSocketServer;
  readonly #o: Required<WebSocketTransportOptions>;
  readonly #alive = new WeakSet<WebSocket>();
  readonly #ping: NodeJS.Timeout;
  /** Per closed socket: its last messages and its disconnect, until handled. */
  readonly #finishing = new Set<Promise<void>>();

  constructor(options: WebSocketTransportOptions) {
    this.#o = { pingIntervalMs: 30_000, ...options };
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false, // ~230 KB per connection otherwise (DESIGN §5)
      maxPayload: options.maxMessageBytes,
      clientTracking: true,
    });
    this.#ping = setInterval(() => void this.#pingAll(), this.#o.pingIntervalMs);
    this.#ping.unref();
  }

  get connections(): number {
    return this.wss.clients.size;
  }

  /** Completes an upgrade that the server already authenticated and admitted. */
  upgrade(req: IncomingMessage, socket: import("node:stream").Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.#serve(ws, req));
  }

  #serve(ws: WebSocket, req: IncomingMessage): void {
    const { handler, logger, maxMessageBytes } = this.#o;
    const send = (message: ServerToAgent) => {
      const bytes = encodeReply(message, maxMessageBytes - 1, logger);
      if (bytes && ws.readyState === ws.OPEN) ws.send(frameWebSocketMessage(bytes));
    };
    const conn: Connection = {
      id: nextConnectionId(),
      transport: "websocket",
      remoteAddress: req.socket.remoteAddress ?? "",
      scopes: scopesOf(req),
      push: send,
      close: (code, reason) => ws.close(code, reason),
    };
    this.#alive.add(ws);
    ws.on("pong", () => this.#alive.add(ws));
    let queue: Promise<void> = Promise.resolve();
    ws.on("message", (data: Buffer, isBinary) => {
      queue = queue.then(async () => {
        if (!isBinary) {
          send(badRequest("text frames are not OpAMP messages; send binary frames"));
          return;
        }
        let payload: Uint8Array;
        try {
          payload = unframeWebSocketMessage(data);
        } catch (err) {
          send(badRequest((err as Error).message));
          return;
        }
        const result = await handler.handle(conn, payload);
        send(result.reply);
      });
    });
    ws.on("close", () => {
      queue = queue.then(() => handler.connectionClosed(conn, "websocket closed"));
      // close() waits for this: the disconnect is stored and its event emitted afterwards.
      const finished = queue.catch(() => {});
      this.#finishing.add(finished);
      void finished.then(() => this.#finishing.delete(finished));
    });
    ws.on("error", (err) => logger.debug({ err, connection: conn.id }, "websocket error"));
  }

  /** Pings every socket, terminating those that missed the last ping; in slices, so a large
   * fleet does not block message handling. */
  async #pingAll(): Promise<void> {
    let n = 0;
    for (const ws of [...this.wss.clients]) {
      if (!this.#alive.has(ws)) {
        ws.terminate();
      } else {
        this.#alive.delete(ws);
        ws.ping();
      }
      if (++n % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Closes every socket with 1001 (going away) and stops the pings. Resolves once every socket
   * is closed and its disconnect handled (stored, event emitted). A socket whose agent has not
   * answered the close frame within `graceMs` (default 2000) is terminated, so its disconnect
   * is recorded while the service still runs (`ws` itself would wait 30 s). Idempotent.
   */
  close(graceMs = 2000): Promise<void> {
    clearInterval(this.#ping);
    const sockets = [...this.wss.clients];
    const closed = sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === ws.CLOSED) return resolve();
          ws.once("close", () => resolve());
        }),
    );
    for (const ws of sockets) ws.close(1001, "server shutting down");
    this.wss.close();
    const force = setTimeout(() => {
      for (const ws of sockets) if (ws.readyState !== ws.CLOSED) ws.terminate();
    }, graceMs);
    return Promise.all(closed).then(async () => {
      clearTimeout(force);
      // Each socket's disconnect is stored (Redis) before its event: wait for all of them, so
      // no `disconnected` event reaches the rollouts after the server said it closed.
      await Promise.allSettled([...this.#finishing]);
    });
  }
}
