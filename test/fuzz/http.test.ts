/**
 * Fuzzing the OpAMP HTTP surface: requests with
 * mutated methods, paths, headers (Content-Type, Content-Encoding, duplicates, long values),
 * encodings (gzip, corrupted gzip, gzip bombs, unknown ones), lengths (exact, short, long,
 * invalid, chunked) and AgentToServer bodies (mutated, random). One in SOCKET_SHARE requests
 * is written byte by byte to a real server socket (Node's parser, routing, every framing
 * mutation); the others go in process to the HTTP transport (real IncomingMessage and
 * ServerResponse over an in-memory stream, the real message handler and Redis), which is
 * much cheaper on a busy machine. Each well-formed request gets
 * the status and body the README's "Errors agents see" table gives; no request ever gets a
 * 5xx or an unanswered connection; no error is logged; the server keeps serving and the
 * process does not grow without bound.
 */
import assert from "node:assert/strict";
import { IncomingMessage, ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { after, before, describe, test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import fc from "fast-check";
import { ServerErrorResponseType } from "../../src/opamp/capabilities.js";
import { decodeAgentToServer, decodeServerToAgent } from "../../src/opamp/codec.js";
import { HttpTransport } from "../../src/opamp/http-transport.js";
import { postOpamp } from "../helpers/agent.js";
import { capturedLogger } from "../helpers/logger.js";
import { startTestServer, type TestServer } from "../helpers/opamp-server.js";
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

const LIMIT = 64 * 1024; // the server's message limit in this test, so 413 is reachable
/** A small gzip body that inflates far past the limit. */
const BOMB = gzipSync(Buffer.alloc(LIMIT * 16));
/** One in SOCKET_SHARE inputs goes over a real socket. */
const SOCKET_SHARE = 10;

interface HttpInput {
  method: string;
  path: string;
  contentType: string | undefined;
  encoding: "none" | "gzip" | "bad-gzip" | "bomb" | "deflate" | "gzip, identity" | "GZIP";
  framing: "length" | "chunked" | "short" | "long" | "invalid" | "double" | "none";
  body: AgentInput;
  extra: [string, string][];
}

const httpInput: fc.Arbitrary<HttpInput> = fc.record({
  method: fc.oneof(
    { weight: 12, arbitrary: fc.constant("POST") },
    fc.constantFrom("GET", "PUT", "OPTIONS", "HEAD", "P0ST"),
  ),
  path: fc.oneof(
    { weight: 12, arbitrary: fc.constant("/v1/opamp") },
    fc.constantFrom("/v1/opamp?x=1", "/", "/v1/opamp/", "//v1/opamp", "/v1/%6fpamp", "*"),
  ),
  contentType: fc.oneof(
    { weight: 10, arbitrary: fc.constant("application/x-protobuf") },
    fc.constantFrom(
      "Application/X-Protobuf; charset=binary",
      "text/plain",
      "application/json",
      undefined,
      "",
    ),
  ),
  encoding: fc.oneof(
    { weight: 8, arbitrary: fc.constant("none" as const) },
    { weight: 3, arbitrary: fc.constant("gzip" as const) },
    fc.constantFrom(
      "bad-gzip" as const,
      "bomb" as const,
      "deflate" as const,
      "gzip, identity" as const,
      "GZIP" as const,
    ),
  ),
  framing: fc.oneof(
    { weight: 10, arbitrary: fc.constant("length" as const) },
    { weight: 3, arbitrary: fc.constant("chunked" as const) },
    fc.constantFrom(
      "short" as const,
      "long" as const,
      "invalid" as const,
      "double" as const,
      "none" as const,
    ),
  ),
  body: agentInput,
  extra: fc.array(
    fc.tuple(
      fc.constantFrom("X-Fuzz", "Accept-Encoding", "Authorization", "Expect", "Cookie", "X-Long"),
      fc.oneof(fc.string({ maxLength: 40 }), fc.constant("gzip"), fc.constant("x".repeat(4000))),
    ),
    { maxLength: 4 },
  ),
});

const ENCODING_HEADER: Record<HttpInput["encoding"], string | undefined> = {
  none: undefined,
  gzip: "gzip",
  GZIP: "GZIP",
  "bad-gzip": "gzip",
  bomb: "gzip",
  deflate: "deflate",
  "gzip, identity": "gzip, identity",
};

/** Header values must be printable on the wire: anything else is replaced. */
const clean = (v: string) => v.replace(/[^\x20-\x7e]/g, "?");

function bodyBytes(input: HttpInput, index: number): Buffer {
  let raw = Buffer.from(input.body.bytes);
  if (index % 97 === 0) raw = Buffer.concat([raw, Buffer.alloc(LIMIT + 1)]); // over the limit
  switch (input.encoding) {
    case "gzip":
    case "GZIP":
      return gzipSync(raw);
    case "bad-gzip": {
      const z = gzipSync(raw);
      const at = Math.min(z.length - 1, 12 + (index % 8));
      z[at] = (z[at] as number) ^ 0x5a;
      return z.subarray(0, z.length - (index % 5));
    }
    case "bomb":
      return BOMB;
    default:
      return raw;
  }
}

/** The request as bytes, and what a well-formed one must be answered with (undefined: any non-5xx). */
function build(
  input: HttpInput,
  index: number,
): { wire: Buffer; expect: Expectation | undefined; endEarly: boolean } {
  const body = bodyBytes(input, index);
  const lines = [`${input.method} ${input.path} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close"];
  if (input.contentType !== undefined) lines.push(`Content-Type: ${input.contentType}`);
  const enc = {
    none: undefined,
    gzip: "gzip",
    GZIP: "GZIP",
    "bad-gzip": "gzip",
    bomb: "gzip",
    deflate: "deflate",
    "gzip, identity": "gzip, identity",
  }[input.encoding];
  if (enc) lines.push(`Content-Encoding: ${enc}`);
  for (const [k, v] of input.extra) lines.push(`${k}: ${clean(v)}`);
  let payload: Buffer = body;
  switch (input.framing) {
    case "length":
      lines.push(`Content-Length: ${body.length}`);
      break;
    case "chunked": {
      lines.push("Transfer-Encoding: chunked");
      const parts: Buffer[] = [];
      for (let at = 0; at < body.length; at += 1 + (index % 50))
        parts.push(
          Buffer.from(`${Math.min(1 + (index % 50), body.length - at).toString(16)}\r\n`),
          body.subarray(at, at + 1 + (index % 50)),
          Buffer.from("\r\n"),
        );
      parts.push(Buffer.from("0\r\n\r\n"));
      payload = Buffer.concat(parts);
      break;
    }
    case "short":
      lines.push(`Content-Length: ${Math.max(0, body.length - 1 - (index % 7))}`);
      break;
    case "long":
      lines.push(`Content-Length: ${body.length + 1 + (index % 100)}`);
      break;
    case "invalid":
      lines.push(`Content-Length: ${["abc", "-1", "1e3", " 12 ", "0x10"][index % 5]}`);
      break;
    case "double":
      lines.push(`Content-Length: ${body.length}`, `Content-Length: ${body.length + 1}`);
      break;
    case "none":
      break;
  }
  const wire = Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`), payload]);
  return { wire, expect: expectation(input, body, index), endEarly: input.framing === "long" };
}

type Expectation = { status: number; error?: "bad-request" | "none" };

/** The README's table, for requests whose framing and headers are well-formed. */
function expectation(input: HttpInput, body: Buffer, index: number): Expectation | undefined {
  const framed = input.framing === "length" || input.framing === "chunked";
  const plainHeaders = input.extra.every(([k]) => k !== "Expect");
  if (
    !framed ||
    !plainHeaders ||
    input.method === "HEAD" ||
    input.method === "P0ST" ||
    input.path === "*"
  )
    return undefined;
  const path = input.path.split("?")[0];
  if (path !== "/v1/opamp") return { status: 404 };
  if (input.method !== "POST") return { status: 405 };
  const type = (input.contentType ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/x-protobuf") return { status: 415 };
  if (body.length > LIMIT || input.encoding === "bomb") return { status: 413 };
  if (
    input.encoding === "deflate" ||
    input.encoding === "gzip, identity" ||
    input.encoding === "bad-gzip"
  )
    return input.encoding === "bad-gzip" ? undefined : { status: 400, error: "bad-request" };
  if (index % 97 === 0) return { status: 413 };
  let uid: number;
  try {
    uid = decodeAgentToServer(Buffer.from(input.body.bytes)).instanceUid.length;
  } catch {
    return { status: 400, error: "bad-request" };
  }
  if (uid !== 16) return { status: 200, error: "bad-request" };
  return input.body.wellFormed ? { status: 200, error: "none" } : { status: 200 };
}

/** Sends `wire` on a fresh connection and reads until the server closes it. */
function exchange(port: number, wire: Buffer, endEarly: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("no answer and no close within 10 s"));
    }, 10_000);
    socket.on("data", (d) => chunks.push(d));
    socket.on("error", () => {}); // a reset after the answer is the server's right
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.write(wire);
    if (endEarly) socket.end();
  });
}

/**
 * Serves `input` in process: the same headers and body, handed to the HTTP transport as Node
 * would after parsing (Content-Length as written, the body as sent). Resolves with the bytes
 * the response wrote.
 */
function serveInProcess(
  transport: HttpTransport,
  input: HttpInput,
  index: number,
): Promise<Buffer> {
  const body = bodyBytes(input, index);
  const out: Buffer[] = [];
  const socket = new Duplex({
    read() {},
    write(chunk, _enc, done) {
      out.push(Buffer.from(chunk));
      done();
    },
  });
  Object.assign(socket, { remoteAddress: "127.0.0.1" });
  const req = new IncomingMessage(socket as unknown as Socket);
  req.method = "POST";
  req.url = "/v1/opamp";
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  const headers: Record<string, string> = { host: "127.0.0.1" };
  if (input.contentType !== undefined) headers["content-type"] = input.contentType;
  const enc = ENCODING_HEADER[input.encoding];
  if (enc) headers["content-encoding"] = enc;
  for (const [k, v] of input.extra) headers[k.toLowerCase()] = clean(v);
  headers["content-length"] = String(body.length);
  req.headers = headers;
  req.push(body);
  req.push(null);
  req.complete = true; // as Node's parser marks a request whose body all arrived
  const res = new ServerResponse(req);
  res.assignSocket(socket as unknown as Socket);
  return new Promise((resolve, reject) => {
    res.on("finish", () => resolve(Buffer.concat(out)));
    const timer = setTimeout(() => reject(new Error("no response within 10 s")), 10_000);
    res.on("finish", () => clearTimeout(timer));
    transport.serve(req, res, "").catch(reject);
  });
}

function parse(raw: Buffer): { status: number; body: Buffer } | undefined {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const head = raw.subarray(0, end).toString("latin1");
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? "NaN");
  const rest = raw.subarray(end + 4);
  const body = Number.isNaN(length) ? rest : rest.subarray(0, length);
  // Replies are gzipped when the request's Accept-Encoding allowed it.
  return { status, body: /\r\ncontent-encoding: *gzip/i.test(head) ? gunzipSync(body) : body };
}

describe(`fuzz: OpAMP HTTP requests (${RUNS} inputs, FUZZ_SEED=${SEED})`, () => {
  let t: TestServer;
  const log = capturedLogger("warn");
  const counts = { overSockets: 0, inProcess: 0, wellFormed: 0, closedWithoutAnswer: 0 };
  let transport: HttpTransport;

  before(async () => {
    t = await startTestServer({ logger: log.logger, maxMessageBytes: LIMIT });
    const handler = inProcessHandler({
      redis: t.redis.redis,
      prefix: `${t.redis.prefix}:inproc`,
      desired: t.desired,
      logger: log.logger,
      replicaId: "fuzz-http",
    });
    transport = new HttpTransport({ handler, logger: log.logger, maxMessageBytes: LIMIT });
  });
  after(async () => {
    await t?.close();
    console.log(`fuzz HTTP: ${JSON.stringify(counts)}`);
  });

  test("every request is answered per the specification, never with a 5xx", async () => {
    const port = Number(new URL(t.url).port);
    const start = rssMiB();
    const check = (raw: Buffer, expect: Expectation | undefined, what: string) => {
      const answer = parse(raw);
      if (!answer) {
        assert.equal(expect, undefined, `a well-formed request got no answer: ${what}`);
        counts.closedWithoutAnswer++;
        return;
      }
      assert.ok(answer.status < 500, `HTTP ${answer.status} for ${what}`);
      if (!expect) return;
      counts.wellFormed++;
      assert.equal(answer.status, expect.status, what);
      if (expect.error) {
        const reply = decodeServerToAgent(answer.body);
        const type = (reply.errorResponse as { type: number } | null)?.type;
        if (expect.error === "bad-request")
          assert.equal(type, ServerErrorResponseType.BadRequest, what);
        else assert.equal(reply.errorResponse, null, what);
      }
    };
    await forEachConcurrent(inputs(httpInput, RUNS, SEED + 1), 32, async (input, i) => {
      if (i % SOCKET_SHARE === 0) {
        const { wire, expect, endEarly } = build(input, i);
        const raw = await exchange(port, wire, endEarly);
        counts.overSockets++;
        check(raw, expect, wire.subarray(0, 300).toString("latin1"));
      } else {
        const asSent = { ...input, method: "POST", path: "/v1/opamp", framing: "length" as const };
        const raw = await serveInProcess(transport, input, i);
        counts.inProcess++;
        const body = bodyBytes(input, i);
        check(raw, expectation(asSent, body, i), JSON.stringify({ ...input, body: undefined }));
      }
    });
    assert.deepEqual(
      log.lines.filter((l) => (l.level as number) >= 50),
      [],
      "no error was logged",
    );
    const growth = rssMiB() - start;
    assert.ok(growth < MAX_GROWTH_MIB, `grew by ${growth.toFixed(0)} MiB`);
    // Still serving.
    const ok = await postOpamp(t.url, new Uint8Array([0x0a, 16, ...new Uint8Array(16).fill(0xcd)]));
    assert.equal(ok.status, 200);
  });
});
