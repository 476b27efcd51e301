/**
 * A minimal OpAMP agent for tests, over WebSocket or plain HTTP, built on the project's own
 * codec and framing. It numbers messages itself and keeps every ServerToAgent it receives.
 */
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { request as httpsRequest } from "node:https";
import WebSocket from "ws";
import { decodeServerToAgent, encodeAgentToServer } from "../../src/opamp/codec.js";
import { frameWebSocketMessage, unframeWebSocketMessage } from "../../src/opamp/framing.js";
import type { AgentToServer } from "../../src/opamp/messages.js";

export type Received = Record<string, unknown> & { flags: bigint; capabilities: bigint };

export interface TestAgentOptions {
  transport: "websocket" | "http";
  /** Base URL, e.g. http://127.0.0.1:4320/v1/opamp (ws:// is derived for WebSocket). */
  url: string;
  uid?: Uint8Array;
  token?: string;
  /** Extra request headers (e.g. a forged Host), on the upgrade or on every POST. */
  headers?: Record<string, string>;
  /** For https:// URLs: the CA to trust and the client certificate to present (mTLS). */
  tls?: AgentTls;
}

export interface AgentTls {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export class TestAgent {
  uid: Uint8Array;
  seq = 0n;
  readonly received: Received[] = [];
  readonly #o: TestAgentOptions;
  #ws: WebSocket | undefined;
  #waiters: Array<(m: Received) => void> = [];

  constructor(options: TestAgentOptions) {
    this.#o = options;
    this.uid = options.uid ?? new Uint8Array(randomBytes(16));
  }

  get uidHex(): string {
    return Buffer.from(this.uid).toString("hex");
  }

  async connect(): Promise<void> {
    if (this.#o.transport !== "websocket") return;
    const headers = {
      ...this.#o.headers,
      ...(this.#o.token ? { Authorization: `Bearer ${this.#o.token}` } : {}),
    };
    const ws = new WebSocket(this.#o.url.replace(/^http/, "ws"), {
      headers,
      perMessageDeflate: false,
      ...this.#o.tls,
    });
    ws.on("message", (data: Buffer) =>
      this.#deliver(decodeServerToAgent(unframeWebSocketMessage(data)) as Received),
    );
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    this.#ws = ws;
  }

  #deliver(message: Received): void {
    this.received.push(message);
    const waiter = this.#waiters.shift();
    waiter?.(message);
  }

  /** Waits for the next ServerToAgent (a reply or a push). */
  next(timeoutMs = 5000): Promise<Received> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("no ServerToAgent within timeout")),
        timeoutMs,
      );
      this.#waiters.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  }

  /** Sends a message (numbered automatically) and returns the server's reply. */
  async send(fields: Partial<AgentToServer> = {}): Promise<Received> {
    const message = { instanceUid: this.uid, sequenceNum: this.seq, capabilities: 0n, ...fields };
    this.seq = (message.sequenceNum ?? this.seq) + 1n;
    return this.sendRaw(encodeAgentToServer(message));
  }

  /** Sends bytes as they are (WebSocket: framed with the 0x00 header) and returns the reply. */
  async sendRaw(bytes: Uint8Array, { frame = true } = {}): Promise<Received> {
    if (this.#ws) {
      const reply = this.next();
      this.#ws.send(frame ? frameWebSocketMessage(bytes) : bytes);
      return reply;
    }
    const { status, body } = await postOpamp(this.#o.url, bytes, {
      ...(this.#o.token ? { token: this.#o.token } : {}),
      ...(this.#o.headers ? { headers: this.#o.headers } : {}),
      ...(this.#o.tls ? { tls: this.#o.tls } : {}),
    });
    if (status !== 200) throw new Error(`HTTP ${status}: ${body.toString()}`);
    const message = decodeServerToAgent(body) as Received;
    this.received.push(message);
    return message;
  }

  get socket(): WebSocket | undefined {
    return this.#ws;
  }

  close(): void {
    this.#ws?.close();
  }
}

export interface PostResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** POSTs a raw body to the OpAMP endpoint. */
export function postOpamp(
  url: string,
  body: Uint8Array,
  options: { token?: string; headers?: Record<string, string>; tls?: AgentTls } = {},
): Promise<PostResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      "Content-Type": "application/x-protobuf",
      ...options.headers,
    };
    if (options.token) headers.Authorization = `Bearer ${options.token}`;
    const send = url.startsWith("https:") ? httpsRequest : request;
    // A new TLS connection per request (agent: false): each carries its own certificate.
    const tls = options.tls ? { ...options.tls, agent: false as const } : {};
    const req = send(url, { method: "POST", headers, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * The fields of a first message that the tests' groups select on: `capabilities` and a
 * description with service.name "otelcol" and host.role `role`.
 */
export function helloAs(role: string, capabilities: bigint): Partial<AgentToServer> {
  return {
    capabilities,
    agentDescription: {
      identifyingAttributes: [{ key: "service.name", value: { stringValue: "otelcol" } }],
      nonIdentifyingAttributes: [{ key: "host.role", value: { stringValue: role } }],
    },
  };
}

type OfferedSettings = { opamp?: { headers?: { headers?: { key: string; value: string }[] } } };

/** The bearer token in a reply's `connectionSettings` (its OpAMP headers), if one is offered. */
export function offeredToken(connectionSettings: unknown): string | undefined {
  return (connectionSettings as OfferedSettings | null)?.opamp?.headers?.headers
    ?.find((h) => h.key === "Authorization")
    ?.value.replace(/^Bearer /, "");
}
