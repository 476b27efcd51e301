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
import { boundUidOf, type ConfiguredToken, configuredTokenOf, scopesOf } from "./credentials.js";
import { unframeWebSocketMessage } from "./framing.js";
import type { MessageHandler } from "./message-handler.js";
import type { ServerToAgent } from "./messages.js";
import { badRequest, encodeReply, unavailable } from "./send.js";
import { LoadShedder } from "./shedding.js";
import { sendOpampFrame } from "./ws-frame.js";
import { installFastReceive } from "./ws-receive.js";

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

/** Sockets pinged (or swept) per event-loop turn, so a large fleet does not block messages. */
const PING_SLICE = 1000;

/** Bytes of a ping's payload, which the pong must echo: random, so it cannot be guessed. */
const PING_NONCE_BYTES = 8;

/** After a close frame, a peer that does not answer it is destroyed this much later (ms). */
const CLOSE_GRACE_MS = 2000;

/** The session of a socket, kept on the socket itself (no map, no per-socket closures). */
const SESSION = Symbol("opamp.ws.session");
type SessionSocket = WebSocket & { [SESSION]?: WsSession };

/**
 * One socket's connection and queue. Its event listeners are shared by every socket (they find
 * the session through `this`), and its deadlines are checked by the transport's one sweep, so a
 * connected agent costs no closures and no timer of its own.
 */
class WsSession implements Connection {
  readonly id = nextConnectionId();
  readonly transport = "websocket";
  /** ms since the epoch of the last message; 0 until the first. */
  lastMessageAt = 0;
  /** ms since the epoch the socket opened (the first-message deadline runs from it). */
  readonly openedAt = Date.now();
  queue: Promise<void> = Promise.resolve();
  pending = 0;
  paused = false;
  /** Its first message was answered (or it closed): no longer pending for shedding. */
  answered = false;
  /** The payload the answer to our last ping must echo, while one is awaited. */
  awaitingPong: Buffer | undefined;
  /** The instance uid the client certificate is bound to (see Connection.boundUid). */
  readonly boundUid?: string;
  /** The configured token that admitted it, checked again when the tokens are rotated. */
  readonly token?: ConfiguredToken;

  constructor(
    readonly ws: SessionSocket,
    readonly owner: WebSocketTransport,
    /**
     * Asked for its address only when one is logged (it then caches it, ~90 B); for a
     * certificate-bound session, the address read at accept (see #serve).
     */
    readonly socket: { readonly remoteAddress?: string | undefined },
    readonly scopes: readonly string[],
    readonly credential: string,
    boundUid: string | undefined,
    token: ConfiguredToken | undefined,
  ) {
    if (boundUid !== undefined) this.boundUid = boundUid;
    if (token !== undefined) this.token = token;
  }

  /** The peer's address while the socket is open ("" once closed, unless bound: see #serve). */
  get remoteAddress(): string {
    return this.socket.remoteAddress ?? "";
  }

  push(message: ServerToAgent): void {
    this.owner.send(this, message);
  }

  close(code: number, reason: string): void {
    this.owner.drop(this.ws, code, reason);
  }
}

function onMessage(this: SessionSocket, data: Buffer, isBinary: boolean): void {
  const session = this[SESSION];
  if (session) session.owner.received(session, data, isBinary);
}

/** A whole binary message read by the fast path (ws-receive.ts). */
function onBinaryPayload(ws: WebSocket, payload: Buffer): void {
  onMessage.call(ws as SessionSocket, payload, true);
}

function onPong(this: SessionSocket, data: Buffer): void {
  // A pong counts only when it echoes our ping's payload (RFC 6455 §5.5.3): a peer sending
  // pongs on its own, without reading, does not prove it is alive.
  const session = this[SESSION];
  if (session?.awaitingPong?.equals(data)) session.awaitingPong = undefined;
}

function onClose(this: SessionSocket): void {
  const session = this[SESSION];
  if (session) session.owner.closed(session);
}

function onError(this: SessionSocket, err: Error): void {
  const session = this[SESSION];
  session?.owner.logger.debug({ err, connection: session.id }, "websocket error");
}

export class WebSocketTransport {
  readonly wss: WebSocketServer;
  readonly logger: Logger;
  readonly #options: Required<Omit<WebSocketTransportOptions, "shedder">>;
  readonly #shedder: LoadShedder;
  readonly #ping: NodeJS.Timeout;
  /** Checks the first-message and idle deadlines of every socket (see #sweep). */
  readonly #deadlines: NodeJS.Timeout;
  /**
   * Open sockets (ws's own tracking is off: it adds a closure per socket to remove it; the
   * shared close listener does that here).
   */
  readonly #sockets = new Set<SessionSocket>();
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
    this.logger = options.logger;
    this.#shedder = options.shedder ?? new LoadShedder();
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false, // ~230 KB per connection otherwise (DESIGN §5)
      maxPayload: options.maxMessageBytes,
      // Text frames are refused unread (BAD_REQUEST), so their UTF-8 is never looked at.
      skipUTF8Validation: true,
      clientTracking: false,
    });
    this.#ping = setInterval(() => void this.#pingAll(), this.#options.pingIntervalMs);
    this.#ping.unref();
    // A deadline is met late by at most a quarter of the shorter timeout.
    const sweepMs = Math.max(
      10,
      Math.min(this.#options.firstMessageTimeoutMs, this.#options.idleTimeoutMs) / 4,
    );
    this.#deadlines = setInterval(() => void this.#sweep(), sweepMs);
    this.#deadlines.unref();
  }

  get connections(): number {
    return this.#sockets.size;
  }

  /**
   * Closes (`drop`, code 1008) every open session whose admitting token `admits` refuses now,
   * and returns how many: after a rotation of the tokens file, sessions of a token removed or
   * given another scope end, and reconnect under the new rules (HTTP agents meet them at
   * their next poll). Sessions admitted otherwise (open endpoint, minted token) are kept.
   */
  closeRefusedTokens(admits: (token: ConfiguredToken) => boolean, reason: string): number {
    let closed = 0;
    for (const ws of [...this.#sockets]) {
      const token = ws[SESSION]?.token;
      if (token === undefined || ws.readyState !== ws.OPEN || admits(token)) continue;
      this.drop(ws, 1008, reason);
      closed++;
    }
    return closed;
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
  drop(ws: WebSocket, code: number, reason: string): void {
    ws.close(code, reason);
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  #serve(ws: SessionSocket, req: IncomingMessage, credential: string): void {
    // Only what the session needs is kept of the upgrade request.
    const { boundUid } = boundUidOf(req);
    // A certificate-bound session's refusals (another uid) are logged with its address, often
    // after a hostile peer sent a burst and hung up, when a closed socket no longer knows it:
    // read it now, for those sessions only (the others never log it after close).
    const socket =
      boundUid === undefined ? req.socket : { remoteAddress: req.socket.remoteAddress };
    const token = configuredTokenOf(req);
    const session = new WsSession(ws, this, socket, scopesOf(req), credential, boundUid, token);
    ws[SESSION] = session;
    this.#sockets.add(ws);
    // Pending (for shedding) until its first message is answered or it closes.
    this.#shedder.pendingSockets++;
    ws.on("message", onMessage);
    installFastReceive(ws, onBinaryPayload);
    ws.on("pong", onPong);
    ws.on("close", onClose);
    ws.on("error", onError);
  }

  /** Sends a reply or push on the session's socket (see the bounds in the file comment). */
  send(session: WsSession, message: ServerToAgent): void {
    const bytes = encodeReply(message, this.#options.maxMessageBytes - 1, this.logger);
    if (bytes) this.#sendEncoded(session, bytes);
  }

  /** Sends an encoded ServerToAgent (within the size limit) on the session's socket. */
  #sendEncoded(session: WsSession, bytes: Uint8Array): void {
    const o = this.#options;
    const ws = session.ws;
    if (ws.readyState !== ws.OPEN) return;
    // One reply always fits; a backlog past the limit means the peer does not read.
    if (ws.bufferedAmount > 0 && ws.bufferedAmount + bytes.length > o.maxSendBufferBytes) {
      this.stats.slowReaders++;
      this.logger.warn(
        { connection: session.id, bufferedBytes: ws.bufferedAmount, limit: o.maxSendBufferBytes },
        "agent does not read its replies; dropping the connection",
      );
      ws.terminate(); // a close frame would queue behind what it does not read
      return;
    }
    sendOpampFrame(ws, bytes);
  }

  #settle(session: WsSession): void {
    if (session.answered) return;
    session.answered = true;
    this.#shedder.pendingSockets--;
  }

  /** A message arrived on the session's socket: queued behind the ones before it. */
  received(session: WsSession, data: Buffer, isBinary: boolean): void {
    const o = this.#options;
    const ws = session.ws;
    session.lastMessageAt = Date.now();
    // A heartbeat that changes nothing, on a socket with nothing in flight, is answered here
    // and now: no queue, no promise. Anything else, or when the handler declines, is queued.
    if (session.pending === 0 && isBinary && session.answered && data[0] === 0x00) {
      const reply = o.handler.heartbeat(session, data, 1);
      if (reply !== undefined) {
        if (this.stats.maxPending === 0) this.stats.maxPending = 1;
        if (reply.length < o.maxMessageBytes) this.#sendEncoded(session, reply);
        // A limit below the ack's ~21 bytes: send() logs it and sends nothing, as for any reply.
        else this.send(session, { instanceUid: reply.subarray(2, 18) });
        return;
      }
    }
    session.pending++;
    if (session.pending > this.stats.maxPending) this.stats.maxPending = session.pending;
    if (session.pending >= o.maxQueuedMessages && !session.paused) {
      session.paused = true;
      this.stats.pausedReads++;
      ws.pause();
    }
    // Frames of a chunk already read still arrive while paused (a 64 KiB chunk holds
    // thousands of tiny frames); past MAX_IN_FLIGHT the peer floods on purpose.
    if (session.pending > MAX_IN_FLIGHT) {
      if (session.pending === MAX_IN_FLIGHT + 1) this.stats.flooders++;
      this.drop(ws, 1008, "too many messages in flight");
      return;
    }
    session.queue = session.queue.then(() => this.#handle(session, data, isBinary));
  }

  async #handle(session: WsSession, data: Buffer, isBinary: boolean): Promise<void> {
    const o = this.#options;
    const shedder = this.#shedder;
    try {
      if (!isBinary) {
        this.send(session, badRequest("text frames are not OpAMP messages; send binary frames"));
        return;
      }
      let payload: Uint8Array;
      try {
        payload = unframeWebSocketMessage(data);
      } catch (err) {
        this.send(session, badRequest((err as Error).message));
        return;
      }
      if (!session.answered && shedder.shedFirstMessage()) {
        // A storm: come back later (the agent resends after the interval), nothing stored.
        this.send(session, unavailable(payload, shedder.retryAfterSeconds()));
        return;
      }
      const result = await o.handler.handle(session, payload);
      this.send(session, result.reply);
    } finally {
      this.#settle(session);
      session.pending--;
      if (session.paused && session.pending <= o.maxQueuedMessages / 2) {
        session.paused = false;
        session.ws.resume();
      }
    }
  }

  /** The session's socket closed: its disconnect is handled after its last messages. */
  closed(session: WsSession): void {
    this.#sockets.delete(session.ws);
    this.#settle(session);
    const handler = this.#options.handler;
    session.queue = session.queue.then(() => handler.connectionClosed(session, "websocket closed"));
    // close() waits for this: the disconnect is stored and its event emitted afterwards.
    const finished = session.queue.catch(() => {});
    this.#finishing.add(finished);
    void finished.then(() => this.#finishing.delete(finished));
  }

  /**
   * Closes (1008) the sockets that sent no first message within `firstMessageTimeoutMs` of
   * opening, or none for `idleTimeoutMs` since their last; in slices, like the pings.
   */
  async #sweep(): Promise<void> {
    const o = this.#options;
    const now = Date.now();
    let n = 0;
    for (const ws of [...this.#sockets]) {
      const session = ws[SESSION];
      if (session && ws.readyState === ws.OPEN) {
        const spoken = session.lastMessageAt > 0;
        if (!spoken && now - session.openedAt >= o.firstMessageTimeoutMs) {
          this.stats.idleClosed++;
          this.drop(ws, 1008, `no message within ${o.firstMessageTimeoutMs} ms`);
        } else if (spoken && now - session.lastMessageAt >= o.idleTimeoutMs) {
          this.stats.idleClosed++;
          this.drop(ws, 1008, `no message for ${o.idleTimeoutMs} ms`);
        }
      }
      if (++n % PING_SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Terminates sockets that did not answer the last ping and pings the others; in slices,
   * so a large fleet does not block message handling. */
  async #pingAll(): Promise<void> {
    const sockets = [...this.#sockets];
    // One draw of random bytes per slice, each ping's nonce a view of it: randomBytes(8) per
    // socket cost 7.5–14.5 µs each here (a native call and a backing store apiece).
    let nonces = Buffer.alloc(0);
    for (let n = 0; n < sockets.length; n++) {
      if (n % PING_SLICE === 0) {
        if (n > 0) await new Promise((resolve) => setImmediate(resolve));
        nonces = randomBytes(PING_NONCE_BYTES * Math.min(PING_SLICE, sockets.length - n));
      }
      const ws = sockets[n] as SessionSocket;
      const session = ws[SESSION];
      if (session?.awaitingPong) {
        this.stats.deadPeers++;
        ws.terminate();
      } else if (session && ws.readyState === ws.OPEN) {
        const at = (n % PING_SLICE) * PING_NONCE_BYTES;
        const nonce = nonces.subarray(at, at + PING_NONCE_BYTES);
        session.awaitingPong = nonce;
        ws.ping(nonce);
      }
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
    clearInterval(this.#deadlines);
    const sockets = [...this.#sockets];
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
