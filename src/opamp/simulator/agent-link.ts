/**
 * The simulator's side of a transport: sends AgentToServer bytes, delivers ServerToAgent
 * bytes. WebSocket keeps one socket open; HTTP makes one POST per message (a poll is a
 * message with only the instance uid).
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import WebSocket from "ws";
import { frameWebSocketMessage, unframeWebSocketMessage } from "../framing.js";

/** The server shed the request (HTTP 503 with Retry-After): try again after `retryAfterMs`. */
export class RetryLaterError extends Error {
  readonly code = "RETRY_LATER";
  constructor(
    readonly status: number,
    readonly retryAfterMs: number,
  ) {
    super(`HTTP ${status}; retry after ${retryAfterMs} ms`);
    this.name = "RetryLaterError";
  }
}

/** A RetryLaterError for a 503/429 that says when to come back, else undefined. */
function retryLater(status: number | undefined, header: string | string[] | undefined) {
  const seconds = Number(Array.isArray(header) ? header[0] : header);
  if ((status === 503 || status === 429) && header !== undefined && Number.isFinite(seconds))
    return new RetryLaterError(status, Math.max(0, seconds) * 1000);
  return undefined;
}

export interface AgentLink {
  /** Sends one encoded AgentToServer; HTTP resolves after the reply was delivered. */
  send(bytes: Uint8Array): Promise<void>;
  close(): void;
}

export interface LinkOptions {
  url: string;
  token?: string;
  /** PEM CA bundle to trust for https/wss. */
  ca?: string | Buffer;
  onMessage(bytes: Uint8Array): void;
  /** WebSocket only: the socket closed (the agent reconnects with backoff). */
  onClose(reason: string): void;
}

/** Opens a WebSocket link; rejects when the handshake fails (e.g. 401, 503). */
export function openWebSocketLink(o: LinkOptions): Promise<AgentLink> {
  const url = o.url.replace(/^http/, "ws");
  const headers = o.token ? { Authorization: `Bearer ${o.token}` } : undefined;
  const ws = new WebSocket(url, {
    headers,
    perMessageDeflate: false,
    ...(o.ca ? { ca: o.ca } : {}),
  });
  return new Promise((resolve, reject) => {
    ws.once("unexpected-response", (_req, res) => {
      ws.terminate();
      reject(
        retryLater(res.statusCode, res.headers["retry-after"]) ??
          new Error(`handshake refused: HTTP ${res.statusCode}`),
      );
    });
    ws.once("error", reject);
    ws.once("open", () => {
      ws.off("error", reject);
      ws.on("error", () => {}); // reported through close
      ws.on("message", (data: Buffer) => o.onMessage(unframeWebSocketMessage(data)));
      ws.on("close", (code) => o.onClose(`websocket closed (${code})`));
      resolve({
        send: async (bytes) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(frameWebSocketMessage(bytes));
        },
        close: () => ws.close(),
      });
    });
  });
}

/** An HTTP link: each send is a POST whose reply body is delivered to onMessage. */
export function httpLink(o: LinkOptions): AgentLink {
  const url = o.url.replace(/^ws/, "http"); // one URL serves both transports
  const request = url.startsWith("https:") ? httpsRequest : httpRequest;
  return {
    send: (bytes) =>
      new Promise((resolve, reject) => {
        const headers: Record<string, string> = { "Content-Type": "application/x-protobuf" };
        if (o.token) headers.Authorization = `Bearer ${o.token}`;
        const req = request(
          url,
          { method: "POST", headers, ...(o.ca ? { ca: o.ca } : {}) },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => {
              if (res.statusCode !== 200)
                return reject(
                  retryLater(res.statusCode, res.headers["retry-after"]) ??
                    new Error(`HTTP ${res.statusCode}`),
                );
              o.onMessage(Buffer.concat(chunks));
              resolve();
            });
          },
        );
        req.on("error", reject);
        req.end(bytes);
      }),
    close: () => {},
  };
}
