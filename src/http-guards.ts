/**
 * What an HTTP listener (the OpAMP port and the admin port) allows each TCP connection before
 * a request reaches its routes: time for headers and for the whole request (Node's
 * headersTimeout and requestTimeout, so a trickled request cannot hold a slot for Node's
 * default 300 s), and an optional cap on open connections per source address. Written once
 * for both ports.
 */
import type { Server } from "node:http";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import { LogLimiter } from "./log-limiter.js";

/** Options of http(s).createServer for the two request timeouts (ms; defaults 10 s / 60 s). */
export function httpTimeouts(options: { headersTimeoutMs?: number; requestTimeoutMs?: number }): {
  headersTimeout: number;
  requestTimeout: number;
  connectionsCheckingInterval: number;
  /** TLS handshakes get the header time too (Node's default is 120 s). */
  handshakeTimeout: number;
} {
  const requestTimeout = options.requestTimeoutMs ?? 60_000;
  // Node requires headersTimeout ≤ requestTimeout.
  const headersTimeout = Math.min(options.headersTimeoutMs ?? 10_000, requestTimeout);
  // Node checks both only every connectionsCheckingInterval (default 30 s); check often enough
  // that a timeout is enforced within a quarter of its length (at most every second).
  const connectionsCheckingInterval = Math.max(25, Math.min(1000, headersTimeout / 4));
  return {
    headersTimeout,
    requestTimeout,
    connectionsCheckingInterval,
    handshakeTimeout: headersTimeout,
  };
}

/**
 * Destroys connections beyond `maxPerAddress` open ones from one source address at once
 * (before a byte is read; no cap when undefined) and connections that stay silent for
 * `silentMs` before their first request (Node's headersTimeout only starts with the first
 * byte; a TLS handshake gets the same time), and makes sure no socket's error can go
 * unhandled between the TCP accept and the HTTP parser taking over. Returns a live count of
 * the connections refused by the cap. Refusals are logged at most once a minute (with counts
 * per address): a client that floods the port cannot flood the log.
 */
export function guardSockets(
  server: Server,
  logger: Logger,
  {
    maxPerAddress,
    silentMs,
    tls,
    label = "agent",
    addressKey = (address) => address,
  }: {
    maxPerAddress?: number;
    silentMs: number;
    tls: boolean;
    /** Who connects, in log messages ("agent", "admin client"). */
    label?: string;
    /** What the cap counts under, from the peer address. Default: the address itself. */
    addressKey?: (address: string) => string;
  },
): { refused: number } {
  const stats = { refused: 0 };
  const refusals = new LogLimiter<undefined>({
    intervalMs: 60_000,
    write: (entries, omitted) =>
      logger.warn(
        {
          refused: entries.map(({ key, count }) => ({ address: key, count })),
          ...(omitted > 0 ? { omitted } : {}),
          limit: maxPerAddress,
        },
        `${label} connections refused: per-address cap`,
      ),
  });
  const open = new Map<string, number>();
  // Sockets that have not started a request, with their deadline (ms since the epoch), in
  // deadline order (one silentMs for all). One sweep checks them rather than a timer per
  // socket: socket.setTimeout leaves a Timeout and a bound function on every socket for
  // good (~180 B per connected agent), even once cleared.
  const silent = new Map<Socket, number>();
  const untilRequest = (socket: Socket) => silent.set(socket, Date.now() + silentMs);
  // A request in progress is bounded by requestTimeout instead, and a kept-alive connection
  // by keepAliveTimeout.
  const requestStarted = (req: { socket: Socket }) => silent.delete(req.socket);
  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const [socket, deadline] of silent) {
        if (deadline > now && !socket.destroyed) break;
        silent.delete(socket);
        socket.destroy();
      }
    },
    // Late by at most a quarter of the silence allowed (at most 1 s).
    Math.max(25, Math.min(1000, silentMs / 4)),
  );
  sweep.unref();
  server.on("close", () => {
    clearInterval(sweep);
    refusals.close();
  });
  server.on("request", requestStarted);
  server.on("upgrade", requestStarted);
  if (tls) {
    (server as unknown as import("node:tls").Server).on("secureConnection", untilRequest);
  }
  server.on("connection", (socket: Socket) => {
    socket.on("error", (err) => logger.debug({ err }, `${label} socket error`));
    if (!tls) untilRequest(socket);
    if (maxPerAddress === undefined) return;
    const address = addressKey(socket.remoteAddress ?? "");
    const count = (open.get(address) ?? 0) + 1;
    if (count > maxPerAddress) {
      stats.refused++;
      refusals.record(address, undefined);
      socket.destroy();
      return;
    }
    open.set(address, count);
    socket.once("close", () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
  return stats;
}
