/**
 * WebSocket adapter: one Connection per socket. Binary frames carry the `0x00` header and an
 * AgentToServer; text frames and undecodable frames are answered with BAD_REQUEST. The size
 * limit is enforced by `ws` itself (maxPayload), which closes with 1009 before buffering more.
 *
 * Ordering: messages of one socket are handled strictly one after another.
 *
 * What one socket can cost is bounded whatever the peer does:
 * - replies: a peer that does not read is dropped (close 1008, then destroyed) once the bytes
 *   waiting to be written to it pass `maxSendBufferBytes` (ws `bufferedAmount`);
 * - received messages: at most `maxQueuedMessages` wait for the handler; while that many
 *   wait, reading from the socket is paused (TCP flow control then stops the peer);
 * - time: a socket that sends no message within `firstMessageTimeoutMs`, or none for
 *   `idleTimeoutMs` afterwards, is closed; pings find dead peers, and only a pong answering
 *   our ping counts (unsolicited pongs do not keep a socket alive).
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import { type WebSocket, WebSocketServer } from "ws";
import { type Connection, nextConnectionId } from "./connection.js";
import { boundUidOf, scopesOf } from "./credentials.js";
import { unframeWebSocketMessage } from "./framing.js";
import type { MessageHandler } from "./message-handler.js";
import type { ServerToAgent } from "./messages.js";
import { badRequest, encodeReply, unavailable } from "./send.js";
import { LoadShedder } from "./shedding.js";
import { sendOpampFrame } from "./ws-frame.js";

export interface WebSocketTransportOptions {
  handler: MessageHandler;
  /** Counts sockets not yet answered; sheds first messages while the event loop lags. */
  shedder?: LoadShedder;
  logger: Logger;
  maxMessageBytes: number;
  /** Interval of protocol pings that find dead sockets, in ms. Default 30 000. */
  pingIntervalMs?: number;
  /** Bytes waiting to be written beyond which a non-reading peer is dropped. Default 4 MiB. */
  maxSendBufferBytes?: number;
  /** Messages of one socket waiting for the handler before reading pauses. Default 8. */
  maxQueuedMessages?: number;
  /** A socket must send its first message within this, in ms. Default 30 000. */
  firstMessageTimeoutMs?: number;
  /** A socket that sends no message for this long is closed, in ms. Default 1 h. */
  idleTimeoutMs?: number;
}

/** Messages of one socket in flight (queued past the pause) beyond which it is dropped. */
const MAX_IN_FLIGHT = 4096;

/** After a close frame, a peer that does not answer it is destroyed this much later (ms). */
const CLOSE_GRACE_MS = 2000;

export class WebSocketTransport {
  readonly wss: WebSocketServer;
  readonly #options: Required<Omit<WebSocketTransportOptions, "shedder">>;
  readonly #shedder: LoadShedder;
  /** Sockets with a ping not yet answered, and the payload the answer must echo. */
  readonly #awaitingPong = new WeakMap<WebSocket, Buffer>();
  readonly #ping: NodeJS.Timeout;
  /** Per closed socket: its last messages and its disconnect, until handled. */
  readonly #finishing = new Set<Promise<void>>();
  /** Counters since start, for metrics and tests. */
  readonly stats = {
    /** Peers dropped for not reading their replies. */
    slowReaders: 0,
    /** Sockets closed for sending no (first) message in time. */
    idleClosed: 0,
    /** Sockets terminated for not answering a ping. */
    deadPeers: 0,
    /** Sockets closed for having more than MAX_IN_FLIGHT messages read but not handled. */
    flooders: 0,
    /** Times reading was paused because a socket's queue was full. */
    pausedReads: 0,
    /** Most messages of one socket waiting at once. */
    maxPending: 0,
  };

  constructor(options: WebSocketTransportOptions) {
    this.#options = {
      pingIntervalMs: 30_000,
      maxSendBufferBytes: 4 * 1024 * 1024,
      maxQueuedMessages: 8,
      firstMessageTimeoutMs: 30_000,
      idleTimeoutMs: 3_600_000,
      ...options,
    };
    this.#shedder = options.shedder ?? new LoadShedder();
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false, // ~230 KB per connection otherwise (DESIGN §5)
      maxPayload: options.maxMessageBytes,
      clientTracking: true,
    });
    this.#ping = setInterval(() => void this.#pingAll(), this.#options.pingIntervalMs);
    this.#ping.unref();
  }

  get connections(): number {
    return this.wss.clients.size;
  }

  /** Completes an upgrade that the server already authenticated and admitted. */
  upgrade(
    req: IncomingMessage,
    socket: import("node:stream").Duplex,
    head: Buffer,
    credential: string,
  ): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.#serve(ws, req, credential));
  }

  /** Closes `ws` with `code`, destroying it if the peer does not complete the close. */
  #drop(ws: WebSocket, code: number, reason: string): void {
    ws.close(code, reason);
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  #serve(ws: WebSocket, req: IncomingMessage, credential: string): void {
    const o = this.#options;
    const { handler, logger, maxMessageBytes } = o;
    const send = (message: ServerToAgent) => {
      const bytes = encodeReply(message, maxMessageBytes - 1, logger);
      if (!bytes || ws.readyState !== ws.OPEN) return;
      // One reply always fits; a backlog past the limit means the peer does not read.
      if (ws.bufferedAmount > 0 && ws.bufferedAmount + bytes.length > o.maxSendBufferBytes) {
        this.stats.slowReaders++;
        logger.warn(
          { connection: conn.id, bufferedBytes: ws.bufferedAmount, limit: o.maxSendBufferBytes },
          "agent does not read its replies; dropping the connection",
        );
        ws.terminate(); // a close frame would queue behind what it does not read
        return;
      }
      sendOpampFrame(ws, bytes);
    };
    const conn: Connection = {
      id: nextConnectionId(),
      transport: "websocket",
      remoteAddress: req.socket.remoteAddress ?? "",
      scopes: scopesOf(req),
      credential,
      ...boundUidOf(req),
      push: send,
      close: (code, reason) => this.#drop(ws, code, reason),
    };
    // One timer per socket: first the first-message deadline, then the idle deadline, which
    // re-arms itself for the rest of the span (messages only record their time).
    let spoken = false;
    let lastMessageAt = 0;
    const expire = () => {
      const idleFor = Date.now() - lastMessageAt;
      if (spoken && idleFor < o.idleTimeoutMs) {
        timer = setTimeout(expire, o.idleTimeoutMs - idleFor).unref();
        return;
      }
      this.stats.idleClosed++;
      this.#drop(
        ws,
        1008,
        spoken
          ? `no message for ${o.idleTimeoutMs} ms`
          : `no message within ${o.firstMessageTimeoutMs} ms`,
      );
    };
    let timer = setTimeout(expire, o.firstMessageTimeoutMs).unref();
    // A pong counts only when it echoes our ping's payload (RFC 6455 §5.5.3): a peer sending
    // pongs on its own, without reading, does not prove it is alive.
    ws.on("pong", (data: Buffer) => {
      if (this.#awaitingPong.get(ws)?.equals(data)) this.#awaitingPong.delete(ws);
    });
    let queue: Promise<void> = Promise.resolve();
    let pending = 0;
    let paused = false;
    // Pending (for shedding) until its first message is answered or it closes.
    const shedder = this.#shedder;
    let answered = false;
    shedder.pendingSockets++;
    const settle = () => {
      if (answered) return;
      answered = true;
      shedder.pendingSockets--;
    };
    ws.on("message", (data: Buffer, isBinary) => {
      lastMessageAt = Date.now();
      if (!spoken) {
        spoken = true;
        clearTimeout(timer);
        timer = setTimeout(expire, o.idleTimeoutMs).unref();
      }
      pending++;
      if (pending > this.stats.maxPending) this.stats.maxPending = pending;
      if (pending >= o.maxQueuedMessages && !paused) {
        paused = true;
        this.stats.pausedReads++;
        ws.pause();
      }
      // Frames of a chunk already read still arrive while paused (a 64 KiB chunk holds
      // thousands of tiny frames); past MAX_IN_FLIGHT the peer floods on purpose.
      if (pending > MAX_IN_FLIGHT) {
        if (pending === MAX_IN_FLIGHT + 1) this.stats.flooders++;
        this.#drop(ws, 1008, "too many messages in flight");
        return;
      }
      queue = queue.then(async () => {
        try {
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
          if (!answered && shedder.shedFirstMessage()) {
            // A storm: come back later (the agent resends after the interval), nothing stored.
            send(unavailable(payload, shedder.retryAfterSeconds()));
            return;
          }
          const result = await handler.handle(conn, payload);
          send(result.reply);
        } finally {
          settle();
          pending--;
          if (paused && pending <= o.maxQueuedMessages / 2) {
            paused = false;
            ws.resume();
          }
        }
      });
    });
    ws.on("close", () => {
      clearTimeout(timer);
      settle();
      queue = queue.then(() => handler.connectionClosed(conn, "websocket closed"));
      // close() waits for this: the disconnect is stored and its event emitted afterwards.
      const finished = queue.catch(() => {});
      this.#finishing.add(finished);
      void finished.then(() => this.#finishing.delete(finished));
    });
    ws.on("error", (err) => logger.debug({ err, connection: conn.id }, "websocket error"));
  }

  /** Terminates sockets that did not answer the last ping and pings the others; in slices,
   * so a large fleet does not block message handling. */
  async #pingAll(): Promise<void> {
    let n = 0;
    for (const ws of [...this.wss.clients]) {
      if (this.#awaitingPong.has(ws)) {
        this.stats.deadPeers++;
        ws.terminate();
      } else if (ws.readyState === ws.OPEN) {
        const nonce = randomBytes(8);
        this.#awaitingPong.set(ws, nonce);
        ws.ping(nonce);
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
