/**
 * Fuzzing the OpAMP WebSocket surface: upgrade requests with bad headers, then frame
 * sequences a client writes byte by byte: binary OpAMP messages (valid, mutated, header-less,
 * bad header byte), text frames (valid and invalid UTF-8), fragments with continuations,
 * pings between fragments, and abuse: a continuation with nothing to continue, a new message
 * inside a fragmented one, fragmented or oversized control frames, RSV bits, unknown opcodes,
 * unmasked frames, lengths past the limit, truncated and bit-flipped streams.
 *
 * Most inputs run in process: the real WebSocket transport (ws's parser, our framing, the
 * message handler, Redis) over an in-memory socket; 1 in SOCKET_SHARE over a real TCP
 * connection to the server. A well-formed sequence gets exactly one reply per message, as
 * the README's table says (text and bad headers: BAD_REQUEST); a malformed one may be closed,
 * never answered with a crash; the process lives and stays bounded.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { ServerErrorResponseType } from "../../src/opamp/capabilities.js";
import { decodeServerToAgent, encodeAgentToServer } from "../../src/opamp/codec.js";
import { unframeWebSocketMessage } from "../../src/opamp/framing.js";
import { WebSocketTransport } from "../../src/opamp/ws-transport.js";
import { postOpamp } from "../helpers/agent.js";
import { capturedLogger } from "../helpers/logger.js";
import { startTestServer, type TestServer } from "../helpers/opamp-server.js";
import { clientFrame as frame, serverFrames } from "../helpers/ws-frames.js";
import {
  agentToServer,
  forEachConcurrent,
  inProcessHandler,
  inputs,
  MAX_GROWTH_MIB,
  type Mutation,
  mutate,
  mutation,
  poolUid,
  RUNS,
  rssMiB,
  SEED,
} from "./helpers.js";

const LIMIT = 64 * 1024;
const SOCKET_SHARE = Number(process.env.WS_SHARE ?? 20);

type Payload =
  | { kind: "opamp"; bytes: Uint8Array; header: "zero" | "none" | "bad"; mutated: boolean }
  | { kind: "text"; bytes: Uint8Array; validUtf8: boolean };

type Step =
  | { kind: "message"; payload: Payload; fragments: number; pingInside: boolean }
  | { kind: "ping"; size: number }
  | { kind: "abuse"; what: Abuse };

type Abuse =
  | "orphan-continuation"
  | "message-inside-fragment"
  | "fragmented-ping"
  | "big-ping"
  | "rsv"
  | "opcode"
  | "unmasked"
  | "too-long"
  | "huge-length"
  | "close-bad-code";

interface WsInput {
  handshake: "ok" | "no-key" | "version-8" | "no-upgrade" | "post";
  steps: Step[];
  stream: Mutation; // applied to the whole byte stream after the handshake
  /**
   * How the client writes an unmutated stream: at once, or a frame per write (a frame per
   * socket read, as heartbeating agents send, which the receive fast path reads itself).
   */
  chunking: "whole" | "frames";
}

const payload = (uidIndex: number): fc.Arbitrary<Payload> =>
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .tuple(agentToServer(), mutation, fc.constantFrom("zero", "zero", "zero", "none", "bad"))
        .map(([m, mut, header]) => {
          const encoded = encodeAgentToServer({ ...m, instanceUid: poolUid(uidIndex) });
          return {
            kind: "opamp" as const,
            bytes: mutate(encoded, mut),
            header: header as "zero" | "none" | "bad",
            mutated: mut.kind !== "none",
          };
        }),
    },
    fc.oneof(
      fc
        .string({ maxLength: 40 })
        .map((s) => ({ kind: "text" as const, bytes: Buffer.from(s), validUtf8: true })),
      fc.constant({
        kind: "text" as const,
        bytes: Uint8Array.from([0xc3, 0x28, 0xff]),
        validUtf8: false,
      }),
    ),
  );

const wsInput = (uidIndex: number): fc.Arbitrary<WsInput> =>
  fc.record({
    handshake: fc.oneof(
      { weight: 12, arbitrary: fc.constant("ok" as const) },
      fc.constantFrom(
        "no-key" as const,
        "version-8" as const,
        "no-upgrade" as const,
        "post" as const,
      ),
    ),
    steps: fc.array(
      fc.oneof(
        {
          weight: 8,
          arbitrary: fc.record({
            kind: fc.constant("message" as const),
            payload: payload(uidIndex),
            fragments: fc.integer({ min: 1, max: 4 }),
            pingInside: fc.boolean(),
          }),
        },
        {
          weight: 1,
          arbitrary: fc.record({
            kind: fc.constant("ping" as const),
            size: fc.integer({ min: 0, max: 125 }),
          }),
        },
        {
          weight: 2,
          arbitrary: fc.record({
            kind: fc.constant("abuse" as const),
            what: fc.constantFrom<Abuse>(
              "orphan-continuation",
              "message-inside-fragment",
              "fragmented-ping",
              "big-ping",
              "rsv",
              "opcode",
              "unmasked",
              "too-long",
              "huge-length",
              "close-bad-code",
            ),
          }),
        },
      ),
      { minLength: 1, maxLength: 4 },
    ),
    stream: fc.oneof({ weight: 6, arbitrary: fc.constant({ kind: "none" as const }) }, mutation),
    chunking: fc.constantFrom("whole" as const, "frames" as const),
  });

/** The bytes of a sequence, and the replies a well-formed one must get (undefined: malformed). */
function encode(input: WsInput): { chunks: Buffer[]; replies: Expected[] | undefined } {
  const parts: Buffer[] = [];
  let replies: Expected[] | undefined = [];
  let tainted = false;
  for (const step of input.steps) {
    if (step.kind === "ping") parts.push(frame(0x9, Buffer.alloc(step.size, 1)));
    else if (step.kind === "message") {
      const p = step.payload;
      let data: Uint8Array = p.bytes;
      if (p.kind === "opamp" && p.header === "zero")
        data = Buffer.concat([Buffer.from([0]), p.bytes]);
      if (p.kind === "opamp" && p.header === "bad")
        data = Buffer.concat([Buffer.from([3]), p.bytes]);
      const opcode = p.kind === "text" ? 0x1 : 0x2;
      const n = Math.min(step.fragments, Math.max(1, data.length));
      const size = Math.ceil(data.length / n);
      for (let i = 0; i < n; i++) {
        const chunk = data.subarray(i * size, (i + 1) * size);
        parts.push(frame(i === 0 ? opcode : 0x0, chunk, { fin: i === n - 1 }));
        if (step.pingInside && i < n - 1) parts.push(frame(0x9, Buffer.from("p")));
      }
      if (p.kind === "text" && !p.validUtf8)
        replies = undefined; // ws closes with 1007
      else if (p.kind === "text") replies?.push("bad-request");
      else if (p.header === "bad") replies?.push("bad-request");
      else if (p.header === "none" && data.length > 0 && (data[0] as number) < 0x08)
        replies?.push("bad-request");
      // After a mutated message (which may have claimed another uid on this socket), the
      // server may refuse the socket's later messages: only their count is checked then.
      else replies?.push(p.mutated || tainted ? "any" : "answer");
      if (p.kind === "opamp" && p.mutated) tainted = true;
    } else {
      replies = undefined;
      const w = step.what;
      const msg = Buffer.from([0, 0x0a, 0x00]);
      if (w === "orphan-continuation") parts.push(frame(0x0, msg));
      if (w === "message-inside-fragment")
        parts.push(frame(0x2, msg, { fin: false }), frame(0x2, msg));
      if (w === "fragmented-ping") parts.push(frame(0x9, msg, { fin: false }));
      if (w === "big-ping") parts.push(frame(0x9, Buffer.alloc(126)));
      if (w === "rsv") parts.push(frame(0x2, msg, { rsv: 4 }));
      if (w === "opcode") parts.push(frame(0x3, msg));
      if (w === "unmasked") parts.push(frame(0x2, msg, { unmasked: true }));
      if (w === "too-long") parts.push(frame(0x2, Buffer.alloc(LIMIT + 10)));
      if (w === "huge-length") parts.push(frame(0x2, msg, { declared: 1n << 62n }));
      if (w === "close-bad-code") parts.push(frame(0x8, Buffer.from([0x03, 0xe7])));
    }
  }
  const bytes = Buffer.concat(parts);
  if (input.stream.kind !== "none")
    return { chunks: [Buffer.from(mutate(bytes, input.stream))], replies: undefined };
  const chunks = input.chunking === "frames" ? parts : [bytes];
  return { chunks, replies: input.handshake === "ok" ? replies : undefined };
}

type Expected = "answer" | "bad-request" | "any";

const takeovers = { count: 0 };

function upgradeHeaders(input: WsInput): Record<string, string> {
  const h: Record<string, string> = {
    host: "127.0.0.1",
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": randomBytes(16).toString("base64"),
    "sec-websocket-version": "13",
  };
  if (input.handshake === "no-key") delete h["sec-websocket-key"];
  if (input.handshake === "version-8") h["sec-websocket-version"] = "8";
  if (input.handshake === "no-upgrade") h.upgrade = "h2c";
  return h;
}

/** An in-memory socket: what the server writes is collected; the client side pushes bytes. */
class MemorySocket extends Duplex {
  readonly written: Buffer[] = [];
  readonly remoteAddress = "127.0.0.1";
  override _read(): void {}
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.written.push(Buffer.from(chunk));
    done();
    this.emit("written");
  }
  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
}

/** Waits until `ok()` holds (checked on every server write and on close), bounded. */
function settle(socket: MemorySocket, ok: () => boolean, ms = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!ok() && !socket.destroyed) return;
      clearTimeout(timer);
      socket.off("written", check);
      socket.off("close", check);
      resolve();
    };
    const timer = setTimeout(() => {
      socket.off("written", check);
      socket.off("close", check);
      reject(new Error(`no answer and no close within ${ms} ms`));
    }, ms);
    socket.on("written", check);
    socket.on("close", check);
    check();
  });
}

function checkReplies(out: Buffer, replies: Expected[] | undefined, what: string): void {
  const start = out.indexOf("\r\n\r\n");
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(out.toString("latin1"))?.[1]);
  assert.ok(
    status === 101 || (status >= 400 && status < 500),
    `handshake answered ${status}: ${what}`,
  );
  if (status !== 101) {
    assert.equal(replies, undefined, `a good handshake was refused: ${what}`);
    return;
  }
  const frames = serverFrames(out.subarray(start + 4));
  const data = frames.filter((f) => f.opcode === 0x2);
  const close = frames.find((f) => f.opcode === 0x8);
  if (close && close.data.length >= 2)
    assert.notEqual(close.data.readUInt16BE(0), 1011, `server error close: ${what}`);
  if (!replies) return;
  const closeText = close ? `${close.data.readUInt16BE(0)} ${close.data.subarray(2)}` : "none";
  // A later input with the same uid may take it over while this one is slow (a loaded
  // machine): the documented takeover close ends the conversation early.
  if (/^1000 replaced by a newer connection/.test(closeText) && data.length < replies.length) {
    takeovers.count++;
    return;
  }
  assert.equal(data.length, replies.length, `one reply per message (close: ${closeText}): ${what}`);
  for (const [i, want] of replies.entries()) {
    const reply = decodeServerToAgent(unframeWebSocketMessage(data[i]?.data as Buffer));
    const type = (reply.errorResponse as { type: number } | null)?.type;
    if (want === "bad-request") assert.equal(type, ServerErrorResponseType.BadRequest, what);
    if (want === "answer") assert.equal(reply.errorResponse, null, what);
  }
}

describe(`fuzz: OpAMP WebSocket frames (${RUNS} inputs, FUZZ_SEED=${SEED})`, () => {
  let t: TestServer;
  let transport: WebSocketTransport;
  const log = capturedLogger("warn");
  const counts = { inProcess: 0, overSockets: 0, wellFormed: 0, slowClose: 0 };

  before(async () => {
    t = await startTestServer({ logger: log.logger, maxMessageBytes: LIMIT });
    const handler = inProcessHandler({
      redis: t.redis.redis,
      prefix: `${t.redis.prefix}:inproc`,
      desired: t.desired,
      logger: log.logger,
      replicaId: "fuzz-ws",
    });
    transport = new WebSocketTransport({ handler, logger: log.logger, maxMessageBytes: LIMIT });
  });
  after(async () => {
    transport?.close();
    await t?.close();
    console.log(`fuzz WebSocket: ${JSON.stringify({ ...counts, takeovers: takeovers.count })}`);
  });

  test("every sequence is answered or refused per the specification; the server lives", async () => {
    const port = Number(new URL(t.url).port);
    const start = rssMiB();
    // Input i uses pool uid i % 48: inputs in flight together never share an instance uid
    // (a second connection with the same uid takes it over and closes the first).
    const per = Math.ceil(RUNS / 48);
    const byUid = Array.from({ length: 48 }, (_, k) => inputs(wsInput(k), per, SEED + 2 + k));
    const all = Array.from(
      { length: RUNS },
      (_, i) => byUid[i % 48]?.[Math.floor(i / 48)] as WsInput,
    );
    const only = process.env.WS_ONLY === undefined ? undefined : Number(process.env.WS_ONLY);
    const chosen = only === undefined ? all : all.slice(only, only + 1);
    await forEachConcurrent(chosen, 16, async (input, i) => {
      const { chunks, replies } = encode(input);
      const what = JSON.stringify(input, (_k, v) =>
        v && typeof v === "object" && v.type === "Buffer"
          ? "<bytes>"
          : v instanceof Uint8Array
            ? Buffer.from(v).toString("hex").slice(0, 80)
            : v,
      ).slice(0, 600);
      if (replies) counts.wellFormed++;
      if (i % SOCKET_SHARE === 0) {
        counts.overSockets++;
        const out = await overSocket(port, input, chunks, replies);
        checkReplies(out, replies, what);
        return;
      }
      counts.inProcess++;
      const socket = new MemorySocket();
      const req = new IncomingMessage(socket as unknown as Socket);
      req.method = input.handshake === "post" ? "POST" : "GET";
      req.url = "/v1/opamp";
      req.headers = upgradeHeaders(input);
      transport.upgrade(req, socket, Buffer.alloc(0), "");
      for (const chunk of chunks) socket.push(chunk);
      const frames = () => {
        const out = Buffer.concat(socket.written);
        return serverFrames(out.subarray(out.indexOf("\r\n\r\n") + 4));
      };
      const got = () => frames().filter((f) => f.opcode === 0x2).length;
      // Replies, or the server closing (a close frame), end the wait.
      const done = (n: number) => got() >= n || frames().some((f) => f.opcode === 0x8);
      if (replies)
        await settle(socket, () => done(replies.length)).catch((err) => {
          throw new Error(`${(err as Error).message}: got ${got()} of ${replies.length}: ${what}`);
        });
      socket.push(null); // the client goes away
      socket.resume(); // bytes ws stopped reading (after an error) are dropped, as TCP would
      await settle(socket, () => socket.destroyed, 3000).catch(() => {
        counts.slowClose++;
        socket.destroy();
      });
      checkReplies(Buffer.concat(socket.written), replies, what);
    });
    assert.deepEqual(
      log.lines.filter((l) => (l.level as number) >= 50),
      [],
      "no error was logged",
    );
    const growth = rssMiB() - start;
    assert.ok(growth < MAX_GROWTH_MIB, `grew by ${growth.toFixed(0)} MiB`);
    const ok = await postOpamp(t.url, new Uint8Array([0x0a, 16, ...new Uint8Array(16).fill(0xef)]));
    assert.equal(ok.status, 200);
  });
});

/** The same input over a real connection: a raw handshake, the frames, then a half-close. */
function overSocket(
  port: number,
  input: WsInput,
  writes: Buffer[],
  replies: Expected[] | undefined,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("no close within 10 s"));
    }, 10_000);
    const headers = upgradeHeaders(input);
    const head = `${input.handshake === "post" ? "POST" : "GET"} /v1/opamp HTTP/1.1\r\n${Object.entries(
      headers,
    )
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("")}\r\n`;
    let sent = false;
    const finish = () => {
      if (!sent) return;
      const out = Buffer.concat(chunks);
      const frames = serverFrames(out.subarray(out.indexOf("\r\n\r\n") + 4)).filter(
        (f) => f.opcode === 0x2,
      );
      if (!replies || frames.length >= replies.length) socket.end();
    };
    socket.on("data", (d) => {
      chunks.push(d);
      if (!sent && Buffer.concat(chunks).includes("\r\n\r\n")) {
        sent = true;
        for (const chunk of writes) socket.write(chunk);
      }
      finish();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.write(head);
  });
}
