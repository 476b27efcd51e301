/**
 * Fuzzing the AgentToServer surface: encoded messages mutated structurally (bit flips,
 * truncation, inserted bytes, repeated and unknown fields, length prefixes past the end) and
 * random bytes. Most inputs go straight to the message handler (real codec, real Redis);
 * a share goes over real sockets, half WebSocket, half HTTP. Every input gets an answer as
 * the README's "Errors agents see" table says, nothing is logged as a failure, the server
 * keeps answering and the process does not grow without bound.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import { ServerErrorResponseType } from "../../src/opamp/capabilities.js";
import {
  decodeAgentToServer,
  decodeServerToAgent,
  encodeServerToAgent,
} from "../../src/opamp/codec.js";
import { type Connection, nextConnectionId } from "../../src/opamp/connection.js";
import { frameWebSocketMessage, unframeWebSocketMessage } from "../../src/opamp/framing.js";
import type { MessageHandler } from "../../src/opamp/message-handler.js";
import { postOpamp } from "../helpers/agent.js";
import { capturedLogger } from "../helpers/logger.js";
import {
  startTestServer,
  TestDesired,
  type TestServer,
  yamlConfig,
} from "../helpers/opamp-server.js";
import { type TestRedis, testRedis } from "../helpers/redis.js";
import { deferred } from "../helpers/teardown.js";
import {
  type AgentInput,
  agentInput,
  forEachConcurrent,
  inProcessHandler,
  inputs,
  MAX_GROWTH_MIB,
  RUNS,
  rssMiB,
  SEED,
} from "./helpers.js";

const defer = deferred();

/**
 * What the specification and the README's table require of the answer to `input`, decoded
 * as the server receives it: a Buffer from a socket (`asBuffer`), or the bytes as given.
 * (protobufjs reads a Buffer and a plain Uint8Array with different readers, which disagree
 * on some malformed inputs; each answer must follow from the reader the server used.)
 */
function expected(
  input: AgentInput,
  asBuffer = false,
): "malformed" | "bad-request" | "ok" | "either" {
  let uidLength: number;
  try {
    const bytes = asBuffer ? Buffer.from(input.bytes) : input.bytes;
    uidLength = decodeAgentToServer(bytes).instanceUid.length;
  } catch {
    return "malformed";
  }
  if (uidLength !== 16) return "bad-request";
  return input.wellFormed ? "ok" : "either";
}

/** A test WebSocket that sends one message at a time and waits for its reply or a close. */
class WsClient {
  readonly closed: Promise<number>;
  #code = 0;
  #waiter:
    | ((a: { kind: "reply"; data: Buffer } | { kind: "closed"; code: number }) => void)
    | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on("error", () => {});
    ws.on("message", (data: Buffer) => this.#waiter?.({ kind: "reply", data }));
    this.closed = new Promise((resolve) =>
      ws.on("close", (code) => {
        this.#code = code;
        this.#waiter?.({ kind: "closed", code });
        resolve(code);
      }),
    );
  }

  static async open(url: string): Promise<WsClient> {
    const ws = new WebSocket(url.replace(/^http/, "ws"), { perMessageDeflate: false });
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    return new WsClient(ws);
  }

  exchange(data: Uint8Array) {
    if (this.ws.readyState !== WebSocket.OPEN)
      return Promise.resolve({ kind: "closed" as const, code: this.#code });
    return new Promise<{ kind: "reply"; data: Buffer } | { kind: "closed"; code: number }>(
      (resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error("neither a reply nor a close in 10 s")),
          10_000,
        );
        this.#waiter = (a) => {
          clearTimeout(timer);
          this.#waiter = undefined;
          resolve(a);
        };
        this.ws.send(data);
      },
    );
  }

  close(): void {
    this.ws.close();
  }
}

/** Real-socket share of the inputs: 1 in 20. */
const SOCKET_SHARE = 20;

describe(`fuzz: AgentToServer (${RUNS} inputs, FUZZ_SEED=${SEED})`, () => {
  let redis: TestRedis;
  let handler: MessageHandler;
  const log = capturedLogger("warn");
  const all = inputs(agentInput, RUNS);
  const inProcess = all.filter((_, i) => i % SOCKET_SHARE !== 0);
  const overSockets = all.filter((_, i) => i % SOCKET_SHARE === 0);
  const counts = { inProcess: 0, websocket: 0, http: 0 };

  before(async () => {
    redis = await testRedis();
    const desired = new TestDesired();
    desired.all = {
      config: yamlConfig({ "collector.yaml": "receivers: {otlp: {}}\n" }),
      heartbeatIntervalSeconds: 30,
    };
    handler = inProcessHandler({
      redis: redis.redis,
      prefix: redis.prefix,
      desired,
      logger: log.logger,
      replicaId: "fuzz",
    });
  });

  after(async () => {
    await redis?.close();
    console.log(`fuzz AgentToServer: ${JSON.stringify(counts)}`);
  });

  test("in process: every input is answered as specified; nothing fails inside", async () => {
    const start = rssMiB();
    // One connection per instance uid, as one agent would hold (HTTP-style: no push).
    const conns = new Map<string, Connection>();
    const connFor = (bytes: Uint8Array) => {
      const key = Buffer.from(bytes).subarray(0, 32).toString("hex");
      let conn = conns.get(key);
      if (!conn) {
        // No credential (an open endpoint); `as` keeps this literal valid whichever optional
        // identity fields Connection carries.
        conn = {
          id: nextConnectionId(),
          transport: "http",
          remoteAddress: "127.0.0.1",
          endpoint: "http://x/v1/opamp",
          credential: "",
          scopes: [],
        } as Connection;
        if (conns.size < 1000) conns.set(key, conn);
      }
      return conn;
    };
    await forEachConcurrent(inProcess, 16, async (input) => {
      const want = expected(input);
      let uid: Uint8Array = new Uint8Array(0);
      try {
        uid = decodeAgentToServer(input.bytes).instanceUid;
      } catch {}
      const result = await handler.handle(connFor(uid), input.bytes);
      counts.inProcess++;
      encodeServerToAgent(result.reply); // every reply can be sent
      assert.notEqual(result.outcome, "unavailable", "processing threw");
      if (want === "malformed" || want === "bad-request") {
        assert.equal(result.outcome, want);
        assert.equal(result.reply.errorResponse?.type, ServerErrorResponseType.BadRequest);
        assert.ok(result.reply.errorResponse?.errorMessage);
      } else if (want === "ok") {
        assert.equal(result.outcome, "ok");
        assert.equal(result.reply.errorResponse, undefined);
        assert.deepEqual(Buffer.from(result.reply.instanceUid), Buffer.from(uid));
      }
    });
    assert.deepEqual(
      log.lines.filter((l) => (l.level as number) >= 50),
      [],
      "no error was logged",
    );
    const growth = rssMiB() - start;
    assert.ok(growth < MAX_GROWTH_MIB, `grew by ${growth.toFixed(0)} MiB`);
  });

  test("over real sockets (WebSocket and HTTP): answered, and the server keeps serving", async () => {
    // Two servers, so that an HTTP poll never takes over a uid a test WebSocket holds.
    const wsServer: TestServer = await startTestServer({ logger: log.logger });
    const httpServer: TestServer = await startTestServer({ logger: log.logger });
    // One WebSocket per instance uid, as agents hold them (undecodable inputs share one).
    const sockets = new Map<string, Promise<WsClient>>();
    const socketFor = (key: string) => {
      let ws = sockets.get(key);
      if (!ws) {
        ws = WsClient.open(wsServer.url);
        sockets.set(key, ws);
        void ws.then((c) => c.closed.then(() => sockets.delete(key)));
      }
      return ws;
    };
    defer(async () => {
      await wsServer.close();
      await httpServer.close();
    });
    for (const [i, input] of overSockets.entries()) {
      const want = expected(input, true);
      if (i % 2 === 0) {
        let key = "misc";
        try {
          const uid = decodeAgentToServer(Buffer.from(input.bytes)).instanceUid;
          if (uid.length === 16) key = Buffer.from(uid).toString("hex");
        } catch {}
        const client = await socketFor(key);
        const answer = await client.exchange(frameWebSocketMessage(input.bytes));
        counts.websocket++;
        const hex = Buffer.from(input.bytes).toString("hex").slice(0, 200);
        if (answer.kind === "closed") {
          // A protocol-level refusal is allowed for bad input, never for a well-formed one.
          assert.notEqual(want, "ok", `closed ${answer.code} on a well-formed message ${hex}`);
          assert.notEqual(answer.code, 1006, `abnormal close on ${hex}`);
          continue;
        }
        const reply = decodeServerToAgent(unframeWebSocketMessage(answer.data));
        const error = reply.errorResponse as { type: number } | null;
        if (want === "malformed" || want === "bad-request")
          assert.equal(error?.type ?? 0, ServerErrorResponseType.BadRequest, hex);
        if (want === "ok") assert.equal(error, null, hex);
      } else {
        const res = await postOpamp(httpServer.url, input.bytes);
        counts.http++;
        const status = want === "malformed" ? 400 : 200;
        if (want !== "either") assert.equal(res.status, status);
        else assert.ok(res.status === 200 || res.status === 400, `HTTP ${res.status}`);
        const reply = decodeServerToAgent(res.body);
        if (want === "ok") assert.equal(reply.errorResponse, null);
      }
    }
    for (const ws of sockets.values()) (await ws).close();
    // Still serving: a plain well-formed message is answered on both.
    const hello = new Uint8Array([0x0a, 16, ...new Uint8Array(16).fill(0xab)]);
    assert.equal((await postOpamp(httpServer.url, hello)).status, 200);
    assert.equal((await postOpamp(wsServer.url, hello)).status, 200);
    assert.deepEqual(
      log.lines.filter((l) => (l.level as number) >= 50),
      [],
    );
  });
});
