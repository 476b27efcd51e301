/**
 * The OpAMP server: one listener (HTTP or HTTPS), one endpoint path, two transports behind
 * the same message handler. Authentication, the connection limit and routing happen here,
 * before a request reaches a transport; WebSocket upgrades are refused before they complete.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import type { Duplex } from "node:stream";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { guardSockets, httpTimeouts } from "../http-guards.js";
import { type AgentLimits, DEFAULT_AGENT_LIMITS } from "./agent-limits.js";
import { AgentStore } from "./agent-store.js";
import { CaBundle } from "./client-ca.js";
import type { CredentialGate, CredentialIssuer } from "./credential-hooks.js";
import { AgentCredentials, type AgentToken, type CertificateScope } from "./credentials.js";
import { DecodePool, type DecodePoolOptions } from "./decode-pool.js";
import { type DesiredStateProvider, NO_DESIRED_STATE } from "./desired.js";
import { type DownloadSource, downloadName, hasGrant, serveDownload } from "./downloads.js";
import { AgentEvents } from "./events.js";
import { HttpTransport, plain } from "./http-transport.js";
import { credentialDigest } from "./identity.js";
import { MessageHandler } from "./message-handler.js";
import type { AdvertisedEndpoint } from "./offers.js";
import { pick } from "./pick.js";
import { LoadShedder, type SheddingOptions } from "./shedding.js";
import { WebSocketTransport } from "./ws-transport.js";

export interface OpampTlsOptions {
  /** PEM certificate chain and private key of the server. */
  cert: string | Buffer;
  key: string | Buffer;
  /** PEM CA bundle; when set, agents must present a client certificate it signed (mTLS). */
  clientCa?: string | Buffer;
  /**
   * With clientCa: a client certificate is asked for but not required; one that is presented
   * must still verify (a request with an unverified certificate gets 401).
   */
  clientCertOptional?: boolean;
}

export interface OpampServerOptions {
  redis: Redis;
  logger: Logger;
  /** Listen address. Default 0.0.0.0, port 4320 (0 picks a free port). */
  host?: string;
  port?: number;
  /** Endpoint path for both transports. Default "/v1/opamp". */
  path?: string;
  /** Redis key prefix. Default "opamp-gitops". */
  prefix?: string;
  desired?: DesiredStateProvider;
  /**
   * Accepted bearer tokens, each with an optional opaque scope carried with its sessions;
   * none means no authentication (a warning is logged). Replaceable with setTokens().
   */
  tokens?: readonly (string | AgentToken)[];
  /** The scope a verified client certificate carries, from its names (mTLS only). */
  certificateScope?: CertificateScope;
  /** Issues agents' credentials over connection settings (credential-hooks.ts). */
  issuer?: CredentialIssuer;
  /**
   * Refuses revoked certificates (right after the TLS handshake and on every request) and
   * accepts per-agent tokens beside the configured ones (credential-hooks.ts).
   */
  gate?: CredentialGate;
  tls?: OpampTlsOptions;
  /** Largest AgentToServer or ServerToAgent, after decompression, in bytes. Default 16 MiB. */
  maxMessageBytes?: number;
  /** WebSocket connections plus in-flight HTTP requests beyond which 503 is answered. Default 50 000. */
  maxConnections?: number;
  /** Retry-After sent with 503, in seconds. Default 30 (the specification's minimum advice). */
  retryAfterSeconds?: number;
  /** Reconnect storms: pending agents and event-loop delay before shedding; see shedding.ts. */
  shedding?: SheddingOptions;
  /**
   * The OpAMP URL (and, for TLS, its CA) that connection-settings offers name. Default: none,
   * and offers carry no endpoint; it is never taken from a request's Host header.
   */
  advertise?: AdvertisedEndpoint;
  /** How often batched last-seen times are written and HTTP liveness is checked, in ms. Default 5000. */
  flushIntervalMs?: number;
  /** Heartbeat interval assumed for liveness when none is offered, in seconds. Default 30. */
  defaultHeartbeatSeconds?: number;
  /** An HTTP agent is disconnected after this many heartbeat intervals without a poll. Default 3. */
  livenessFactor?: number;
  /** Interval of WebSocket pings that find dead sockets, in ms. Default 30 000. */
  pingIntervalMs?: number;
  /** What one agent may report (counts, sizes, stored bytes); see agent-limits.ts. */
  limits?: Partial<AgentLimits>;
  /** A retried message gets an unchanged remote config again at most this often, ms. Default 30 000. */
  resendIntervalMs?: number;
  /** Time allowed for an HTTP request's headers, in ms (Node headersTimeout). Default 10 000. */
  headersTimeoutMs?: number;
  /** Time allowed for a whole HTTP request, body included, in ms (Node requestTimeout). Default 60 000. */
  requestTimeoutMs?: number;
  /** A WebSocket must send its first message within this, in ms. Default 30 000. */
  firstMessageTimeoutMs?: number;
  /** A WebSocket that sends no message for this long is closed, in ms. Default 3 600 000. */
  idleTimeoutMs?: number;
  /** Bytes queued for a WebSocket peer beyond which it is dropped as not reading. Default 4 MiB. */
  maxSendBufferBytes?: number;
  /** Messages of one WebSocket waiting to be handled before reading pauses. Default 8. */
  maxQueuedMessages?: number;
  /** Open TCP connections allowed from one source address; undefined: no cap. */
  maxConnectionsPerAddress?: number;
  /**
   * Decode workers for large messages (decode-pool.ts): size threshold, workers, queue bound.
   * Default: messages from 64 KiB on, cores - 1 workers (1 to 4), 64 MiB queued.
   */
  decode?: Omit<DecodePoolOptions, "limits">;
  replicaId?: string;
  /**
   * Package files served at `/packages/<sha256>` (downloads.ts); none: that path is 404.
   * `grantKey` signs the download grants of offered URLs.
   */
  downloads?: DownloadSource & { grantKey?: Buffer };
}

export class OpampServer {
  readonly events: AgentEvents;
  readonly store: AgentStore;
  readonly handler: MessageHandler;
  readonly decoder: DecodePool;
  readonly #options: OpampServerOptions & {
    path: string;
    maxConnections: number;
    retryAfterSeconds: number;
  };
  readonly #server: Server;
  readonly #ws: WebSocketTransport;
  readonly #http: HttpTransport;
  readonly #credentials: AgentCredentials;
  /** Reconnect storms: what is taken at a time (see shedding.ts). */
  readonly shedder: LoadShedder;
  #inflight = 0;
  #timer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: OpampServerOptions) {
    const maxMessageBytes = options.maxMessageBytes ?? 16 * 1024 * 1024;
    this.#options = {
      path: "/v1/opamp",
      maxConnections: 50_000,
      retryAfterSeconds: 30,
      ...options,
    };
    const { logger } = options;
    this.events = new AgentEvents((err, name) =>
      logger.error({ err, event: name }, "agent event listener failed"),
    );
    this.store = new AgentStore(options.redis, { prefix: options.prefix ?? "opamp-gitops" });
    const limits = { ...DEFAULT_AGENT_LIMITS, ...options.limits };
    this.decoder = new DecodePool({ ...options.decode, limits });
    this.handler = new MessageHandler({
      store: this.store,
      desired: options.desired ?? NO_DESIRED_STATE,
      events: this.events,
      logger,
      replicaId: options.replicaId ?? `${hostname()}:${process.pid}`,
      defaultHeartbeatSeconds: options.defaultHeartbeatSeconds ?? 30,
      livenessFactor: options.livenessFactor ?? 3,
      advertise: options.advertise,
      limits,
      decoder: this.decoder,
      resendIntervalMs: options.resendIntervalMs ?? 30_000,
      issuer: options.issuer,
    });
    this.shedder = new LoadShedder(options.shedding);
    this.#ws = new WebSocketTransport({
      handler: this.handler,
      shedder: this.shedder,
      logger,
      maxMessageBytes,
      pingIntervalMs: options.pingIntervalMs ?? 30_000,
      ...pick(options, [
        "maxSendBufferBytes",
        "maxQueuedMessages",
        "firstMessageTimeoutMs",
        "idleTimeoutMs",
      ]),
    });
    this.#http = new HttpTransport({ handler: this.handler, logger, maxMessageBytes });
    this.#credentials = new AgentCredentials(
      options.tokens ?? [],
      options.certificateScope,
      options.gate,
    );
    const tls = options.tls;
    const timeouts = httpTimeouts(options);
    this.#server = tls
      ? createHttpsServer({
          ...timeouts,
          cert: tls.cert,
          key: tls.key,
          ...(tls.clientCa
            ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: !tls.clientCertOptional }
            : {}),
        })
      : createHttpServer(timeouts); // handshakeTimeout is only read by TLS servers
    guardSockets(this.#server, logger, {
      ...(options.maxConnectionsPerAddress === undefined
        ? {}
        : { maxPerAddress: options.maxConnectionsPerAddress }),
      silentMs: timeouts.headersTimeout,
      tls: Boolean(tls),
    });
    if (tls && (options.gate || tls.clientCa)) this.#trackClientCertificates(options.gate, logger);
    this.#server.on("request", (req, res) => {
      void this.#onRequest(req, res).catch((err) => {
        logger.error({ err }, "OpAMP HTTP request failed");
        if (!res.headersSent) plain(res, 500, "internal error");
      });
    });
    this.#server.on("upgrade", (req, socket, head) => this.#onUpgrade(req, socket, head));
  }

  /** Agents served by this process right now, over either transport. */
  get connectedAgents(): number {
    return this.handler.live.size;
  }

  /** Counters of the WebSocket guards (slow readers, idle and dead sockets, paused reads). */
  get wsStats(): Readonly<WebSocketTransport["stats"]> {
    return this.#ws.stats;
  }

  /** Starts listening; resolves with the bound port. */
  async start(): Promise<{ port: number }> {
    const { logger } = this.#options;
    if (this.#credentials.open) {
      logger.warn("OpAMP endpoint has no bearer tokens configured: any agent may connect");
    }
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      // A deep accept queue (the kernel caps it at net.core.somaxconn): in a reconnect storm
      // connections wait there for their turn instead of being refused (node's default is 511).
      const listen = {
        port: this.#options.port ?? 4320,
        host: this.#options.host ?? "0.0.0.0",
        backlog: 4096,
      };
      this.#server.listen(listen, () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    this.#timer = setInterval(
      () => void this.#housekeeping(),
      this.#options.flushIntervalMs ?? 5000,
    );
    this.#timer.unref();
    const { port } = this.#server.address() as AddressInfo;
    logger.info(
      { port, path: this.#options.path, tls: Boolean(this.#options.tls) },
      "OpAMP server listening",
    );
    return { port };
  }

  /**
   * Replaces the accepted tokens (rotation): new requests are checked against these, and the
   * WebSocket sessions of a token removed or given another scope are closed (they reconnect
   * and are admitted, scoped or refused by the new set). Returns how many were closed.
   */
  setTokens(tokens: readonly (string | AgentToken)[]): number {
    const credentials = this.#credentials;
    credentials.setTokens(tokens);
    const closed = this.#ws.closeRefusedTokens(
      (token) => credentials.stillAdmits(token),
      "token removed or rescoped",
    );
    if (closed > 0)
      this.#options.logger.info(
        { closed },
        "agent tokens rotated: sessions of tokens removed or rescoped closed",
      );
    return closed;
  }

  /**
   * Replaces the CA that client certificates must chain to (rotation): new TLS connections
   * are checked against it at once, and open ones whose verified certificate does not chain
   * to it are ended (their agents reconnect and meet the new CA), 256 at a time between
   * turns of the event loop. Resolves with how many were ended.
   */
  setClientCa(clientCa: string | Buffer): Promise<number> {
    const tls = this.#options.tls;
    if (!tls?.clientCa) throw new Error("setClientCa needs a server started with tls.clientCa");
    (this.#server as import("node:https").Server).setSecureContext({
      cert: tls.cert,
      key: tls.key,
      ca: clientCa,
    });
    return this.#endUnchained(new CaBundle(clientCa)).catch((err: unknown) => {
      this.#options.logger.error({ err }, "client CA rotated: open connections not checked");
      return 0;
    });
  }

  async #endUnchained(bundle: CaBundle): Promise<number> {
    let closed = 0;
    let n = 0;
    for (const socket of [...this.#tlsSockets]) {
      // ~200 µs per connection whose issuer is new to the bundle: let the loop breathe.
      if (++n % 256 === 0) await new Promise((resolve) => setImmediate(resolve));
      if (socket.destroyed || !socket.authorized) continue;
      const peer = socket.getPeerCertificate(true);
      if (!peer?.raw || bundle.chains(peer)) continue;
      socket.destroy();
      closed++;
    }
    if (closed > 0)
      this.#options.logger.info(
        { closed },
        "client CA rotated: connections of certificates it no longer signs closed",
      );
    return closed;
  }

  /**
   * Closes what a revocation made useless, at once: every TLS connection whose client
   * certificate the gate now refuses, and the live sessions of `uids` (their next request or
   * reconnection meets the gate). Resolves with the number of connections closed.
   */
  revoked(uids: readonly string[]): number {
    let closed = 0;
    const gate = this.#options.gate;
    for (const socket of this.#tlsSockets) {
      const cert = socket.authorized ? socket.getPeerCertificate() : undefined;
      if (gate && cert?.raw && gate.refuseCertificate(cert)) {
        socket.destroy();
        closed++;
      }
    }
    for (const uid of uids) {
      const live = this.handler.live.get(uid);
      if (live?.conn.close) {
        live.conn.close(1008, "credential revoked");
        closed++;
      }
    }
    return closed;
  }

  readonly #tlsSockets = new Set<import("node:tls").TLSSocket>();

  /**
   * Keeps the open TLS connections (for revocations and client CA rotation); one whose
   * verified client certificate the gate refuses ends right after its handshake.
   */
  #trackClientCertificates(gate: CredentialGate | undefined, logger: Logger): void {
    (this.#server as unknown as import("node:tls").Server).on("secureConnection", (socket) => {
      const cert = gate && socket.authorized ? socket.getPeerCertificate() : undefined;
      if (gate && cert?.raw && gate.refuseCertificate(cert)) {
        logger.info(
          { serial: cert.serialNumber, remoteAddress: socket.remoteAddress },
          "revoked client certificate refused",
        );
        socket.destroy();
        return;
      }
      this.#tlsSockets.add(socket);
      socket.once("close", () => this.#tlsSockets.delete(socket));
    });
  }

  /** Pushes what is now due to connected WebSocket agents; see MessageHandler.refresh. */
  refresh(select?: ((uid: string) => boolean) | Iterable<string>): Promise<number> {
    return this.handler.refresh(select);
  }

  async #housekeeping(): Promise<void> {
    try {
      await this.store.flushTouches();
      await this.handler.sweep();
    } catch (err) {
      this.#options.logger.warn({ err }, "OpAMP housekeeping failed; will retry");
    }
  }

  /** Rejects a request that is not for us, not authenticated or over the limit. */
  #refusal(
    req: IncomingMessage,
  ): { status: number; text: string; headers?: Record<string, string> } | undefined {
    if (this.#closing) {
      return {
        status: 503,
        text: "server is shutting down",
        headers: { "Retry-After": String(this.#options.retryAfterSeconds), Connection: "close" },
      };
    }
    const path = (req.url ?? "").split("?")[0];
    const download = this.#options.downloads ? downloadName(req.url) : undefined;
    if (path !== this.#options.path && download === undefined)
      return { status: 404, text: `not found; the OpAMP endpoint is ${this.#options.path}` };
    const granted =
      download !== undefined && hasGrant(req, this.#options.downloads?.grantKey, download);
    if (!granted && !this.#credentials.admit(req)) {
      return {
        status: 401,
        text: "unauthorized",
        headers: { "WWW-Authenticate": 'Bearer realm="opamp"' },
      };
    }
    if (this.#ws.connections + this.#inflight >= this.#options.maxConnections) {
      return {
        status: 503,
        text: "server is at its connection limit",
        headers: { "Retry-After": String(this.#options.retryAfterSeconds) },
      };
    }
    if (this.shedder.shedConnection(this.#inflight)) {
      return {
        status: 503,
        text: "server is busy (many agents connecting); retry after the interval given",
        headers: { "Retry-After": String(this.shedder.retryAfterSeconds()) },
      };
    }
    return undefined;
  }

  async #onRequest(req: IncomingMessage, res: import("node:http").ServerResponse): Promise<void> {
    const refusal = this.#refusal(req);
    if (refusal) {
      res.writeHead(refusal.status, { "Content-Type": "text/plain", ...refusal.headers });
      res.end(`${refusal.text}\n`);
      return;
    }
    if (this.#options.downloads && downloadName(req.url) !== undefined) {
      serveDownload(req, res, this.#options.downloads);
      return;
    }
    if (req.method !== "POST") {
      res
        .writeHead(405, { Allow: "POST", "Content-Type": "text/plain" })
        .end("use POST or a WebSocket upgrade\n");
      return;
    }
    this.#inflight++;
    try {
      await this.#http.serve(req, res, credentialDigest(req));
    } finally {
      this.#inflight--;
      // A keep-alive agent would otherwise hold a closing server open with its next poll.
      if (this.#closing) this.#server.closeIdleConnections();
    }
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // The HTTP server stops listening for errors on an upgraded socket; a reset must not
    // become an unhandled 'error' event (which would end the process).
    socket.on("error", (err) => this.#options.logger.debug({ err }, "upgrade socket error"));
    const refusal =
      downloadName(req.url) !== undefined
        ? { status: 404, text: "not a WebSocket endpoint" }
        : this.#refusal(req);
    if (refusal) {
      const headers = Object.entries({
        "Content-Type": "text/plain",
        Connection: "close",
        ...refusal.headers,
      })
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("");
      const reason = { 401: "Unauthorized", 404: "Not Found", 503: "Service Unavailable" }[
        refusal.status
      ];
      socket.end(`HTTP/1.1 ${refusal.status} ${reason}\r\n${headers}\r\n${refusal.text}\n`);
      // A peer that never reads the refusal would hold the socket open.
      setTimeout(() => socket.destroy(), 2000).unref();
      return;
    }
    this.#ws.upgrade(req, socket, head, credentialDigest(req));
  }

  /**
   * Stops accepting agents (new requests get 503 + Retry-After + Connection: close), closes
   * every WebSocket (1001; terminated when its agent does not answer within 2 s, or
   * `graceMs` when shorter), lets in-flight polls finish for up to `graceMs` (default 5000),
   * then writes batched last-seen times. Idempotent; the Redis connection belongs to the
   * caller and stays open.
   */
  close({ graceMs = 5000 } = {}): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      this.shedder.close();
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      const sockets = this.#ws.close(Math.min(2000, graceMs));
      this.#server.closeIdleConnections();
      const force = setTimeout(() => this.#server.closeAllConnections(), graceMs);
      await Promise.all([closed, sockets]);
      clearTimeout(force);
      await this.decoder.close();
      this.handler.close();
      try {
        await this.store.flushTouches();
      } catch (err) {
        this.#options.logger.warn({ err }, "could not write last-seen times at shutdown");
      }
    })();
    return this.#closing;
  }
}
