/**
 * Plain-HTTP adapter: each POST carries one AgentToServer and its response one ServerToAgent.
 * Request bodies may be gzip; responses are gzipped when Accept-Encoding allows. Bodies that
 * are not protobuf get HTTP 400, bodies over the limit (before or after inflating) HTTP 413.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import type { Logger } from "pino";
import { readMessageBody } from "./body.js";
import { type Connection, nextConnectionId } from "./connection.js";
import { boundUidOf, scopesOf } from "./credentials.js";
import { MessageTooLargeError } from "./errors.js";
import type { MessageHandler } from "./message-handler.js";
import type { ServerToAgent } from "./messages.js";
import { badRequest, encodeReply } from "./send.js";

const gzipAsync = promisify(gzip);

export interface HttpTransportOptions {
  handler: MessageHandler;
  logger: Logger;
  maxMessageBytes: number;
}

export class HttpTransport {
  readonly #options: HttpTransportOptions;

  constructor(options: HttpTransportOptions) {
    this.#options = options;
  }

  /** Serves one authenticated, admitted POST to the OpAMP path. */
  async serve(req: IncomingMessage, res: ServerResponse, credential: string): Promise<void> {
    const { handler, logger, maxMessageBytes } = this.#options;
    const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
    if (type !== "application/x-protobuf") {
      return plain(res, 415, "Content-Type must be application/x-protobuf");
    }
    let body: Buffer;
    try {
      body = await readMessageBody(req, maxMessageBytes);
    } catch (err) {
      if (err instanceof MessageTooLargeError) return plain(res, 413, err.message, true);
      return this.#reply(req, res, 400, badRequest((err as Error).message));
    }
    const conn: Connection = {
      id: nextConnectionId(),
      transport: "http",
      remoteAddress: req.socket.remoteAddress ?? "",
      scopes: scopesOf(req),
      credential,
      ...boundUidOf(req),
    };
    const result = await handler.handle(conn, body);
    if (result.outcome === "malformed")
      logger.debug({ err: result.reply.errorResponse }, "bad body");
    await this.#reply(req, res, result.outcome === "malformed" ? 400 : 200, result.reply);
  }

  async #reply(req: IncomingMessage, res: ServerResponse, status: number, message: ServerToAgent) {
    const bytes = encodeReply(message, this.#options.maxMessageBytes, this.#options.logger);
    if (!bytes) return plain(res, 500, "reply exceeds the message size limit");
    const headers: Record<string, string | number> = { "Content-Type": "application/x-protobuf" };
    let body: Uint8Array = bytes;
    if (/\bgzip\b/i.test(req.headers["accept-encoding"] ?? "")) {
      body = await gzipAsync(bytes);
      headers["Content-Encoding"] = "gzip";
    }
    headers["Content-Length"] = body.length;
    res.writeHead(status, headers).end(body);
  }
}

/** A short text response; `close` ends the connection after it (used after a refused body). */
export function plain(res: ServerResponse, status: number, text: string, close = false): void {
  const headers: Record<string, string> = { "Content-Type": "text/plain; charset=utf-8" };
  if (close) headers.Connection = "close";
  res.writeHead(status, headers).end(`${text}\n`);
}
