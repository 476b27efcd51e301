/**
 * The WebSocket receive fast path (ws-receive.ts) over real sockets: whatever frames a client
 * sends and however TCP cuts them, a server with the fast path receives the same messages in
 * the same order as `ws` alone would, refuses what `ws` refuses, and takes the fast path for
 * a whole binary frame read on its own.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { connect, type Socket } from "node:net";
import { describe, test } from "node:test";
import fc from "fast-check";
import { type WebSocket, WebSocketServer } from "ws";
import { installFastReceive, wholeFramePayloadLength } from "../../src/opamp/ws-receive.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { clientFrame as frame, serverFrames } from "../helpers/ws-frames.js";

const MAX_PAYLOAD = 70_000;

interface Received {
  messages: { data: Buffer; binary: boolean }[];
  fast: number;
  closeCode?: number;
  /** 'close' events seen. */
  closes: number;
}

/** A ws server (fast path on or off) recording what its one client's socket receives. */
async function server(defer: ReturnType<typeof deferred>, fast: boolean, maxPayload = MAX_PAYLOAD) {
  const wss = new WebSocketServer({ port: 0, maxPayload, skipUTF8Validation: true });
  defer(() => {
    for (const ws of wss.clients) ws.terminate();
    return new Promise((resolve) => wss.close(resolve));
  });
  await once(wss, "listening");
  const received: Received = { messages: [], fast: 0, closes: 0 };
  const closed = new Promise<void>((resolve) => {
    wss.on("connection", (ws: WebSocket) => {
      ws.on("message", (data: Buffer, binary: boolean) =>
        received.messages.push({ data: Buffer.from(data), binary }),
      );
      ws.on("error", () => {});
      ws.on("close", (code) => {
        received.closeCode = code;
        received.closes++;
        resolve();
      });
      if (fast) {
        const installed = installFastReceive(ws, (_ws, payload) => {
          received.fast++;
          received.messages.push({ data: Buffer.from(payload), binary: true });
        });
        assert.ok(installed, "the fast path installs on this ws version");
      }
    });
  });
  return { port: (wss.address() as AddressInfo).port, received, closed };
}

/** A raw client after its upgrade; `output()` is what the server sent after the 101. */
async function openRaw(port: number): Promise<{ socket: Socket; output: () => Buffer }> {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => {});
  const chunks: Buffer[] = [];
  socket.on("data", (d: Buffer) => chunks.push(d));
  await once(socket, "connect");
  socket.write(
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  );
  const all = () => Buffer.concat(chunks);
  await waitFor("the 101", () => all().includes("\r\n\r\n"));
  assert.match(all().toString("latin1"), /^HTTP\/1\.1 101/);
  return { socket, output: () => all().subarray(all().indexOf("\r\n\r\n") + 4) };
}

/** Writes `chunks` one by one, each once the one before was handed to the kernel. */
async function writeEach(socket: Socket, chunks: Buffer[]): Promise<void> {
  for (const chunk of chunks) {
    await new Promise<void>((resolve) => socket.write(chunk, () => resolve()));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The status code of the close frame in what a server sent. */
function closeCodeSent(bytes: Buffer): number | undefined {
  return serverFrames(bytes)
    .find((f) => f.opcode === 0x8)
    ?.data.readUInt16BE(0);
}

type Step =
  | { kind: "binary"; data: Uint8Array; fragments: number; pingInside: boolean }
  | { kind: "text"; text: string }
  | { kind: "ping" };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("binary" as const),
      data: fc.oneof(
        { weight: 5, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 200 }) },
        { weight: 1, arbitrary: fc.uint8Array({ minLength: 126, maxLength: 66_000 }) },
      ),
      fragments: fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, fc.integer({ min: 2, max: 4 })),
      pingInside: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("text" as const), text: fc.string() }) },
  { weight: 1, arbitrary: fc.constant({ kind: "ping" as const }) },
);

/** The frames of `steps`, and the messages they carry. */
function framesOf(steps: Step[]): { frames: Buffer[]; messages: Received["messages"] } {
  const frames: Buffer[] = [];
  const messages: Received["messages"] = [];
  for (const s of steps) {
    if (s.kind === "ping") frames.push(frame(0x9, Buffer.from("hi")));
    else if (s.kind === "text") {
      frames.push(frame(0x1, Buffer.from(s.text)));
      messages.push({ data: Buffer.from(s.text), binary: false });
    } else {
      const n = Math.min(s.fragments, s.data.length);
      const size = Math.ceil(s.data.length / n);
      for (let i = 0; i < n; i++) {
        const part = s.data.subarray(i * size, (i + 1) * size);
        frames.push(frame(i === 0 ? 0x2 : 0x0, part, { fin: i === n - 1 }));
        if (s.pingInside && i < n - 1) frames.push(frame(0x9, Buffer.from("p")));
      }
      messages.push({ data: Buffer.from(s.data), binary: true });
    }
  }
  return { frames, messages };
}

/** `bytes` cut at `cuts` (fractions of its length). */
function cut(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const to of [...at, bytes.length]) {
    if (to > from) out.push(bytes.subarray(from, to));
    from = to;
  }
  return out;
}

describe("WebSocket receive fast path", () => {
  const defer = deferred();

  test("any frames, cut anywhere: the same messages in the same order as ws alone", async () => {
    let fastTaken = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 8 }),
        fc.oneof(
          fc.constant("frames" as const),
          fc.constant("whole" as const),
          fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 6 }),
        ),
        async (steps, chunking) => {
          const { frames, messages } = framesOf(steps);
          const chunks =
            chunking === "frames"
              ? frames
              : chunking === "whole"
                ? [Buffer.concat(frames)]
                : cut(Buffer.concat(frames), chunking);
          const results: Received[] = [];
          for (const fast of [true, false]) {
            const s = await server(defer, fast);
            // A fresh copy per server: the fast path unmasks the read buffer in place.
            const { socket } = await openRaw(s.port);
            await writeEach(
              socket,
              chunks.map((c) => Buffer.from(c)),
            );
            socket.end(frame(0x8, Buffer.from([0x03, 0xe8])));
            await s.closed;
            socket.destroy();
            results.push(s.received);
          }
          const [withFast, plain] = results as [Received, Received];
          assert.deepEqual(withFast.messages, messages);
          assert.deepEqual(plain.messages, messages);
          assert.equal(withFast.closeCode, plain.closeCode);
          fastTaken += withFast.fast;
        },
      ),
      { numRuns: 40, seed: 15 },
    );
    assert.ok(fastTaken > 0, "some messages took the fast path");
  });

  test("a whole small binary frame read alone takes the fast path", async () => {
    const s = await server(defer, true);
    const payloads = [Buffer.from([0x00, 0x0a, 0x01]), Buffer.alloc(300, 7)];
    const { socket } = await openRaw(s.port);
    for (const [i, payload] of payloads.entries()) {
      socket.write(frame(0x2, payload));
      // The next write waits for this message: TCP would otherwise join them in one read.
      await waitFor(`message ${i}`, () => s.received.messages.length === i + 1);
    }
    socket.end(frame(0x8, Buffer.from([0x03, 0xe8])));
    await s.closed;
    assert.deepEqual(
      s.received.messages.map((m) => m.data),
      payloads,
    );
    assert.equal(s.received.fast, 2);
  });

  test("a client's FIN, with or without a close frame first, still closes the socket once", async () => {
    for (const [what, last, code] of [
      ["FIN alone", undefined, 1006],
      ["close frame, then FIN", frame(0x8, Buffer.from([0x03, 0xe8])), 1000],
    ] as const) {
      const s = await server(defer, true);
      const { socket } = await openRaw(s.port);
      socket.write(frame(0x2, Buffer.from([1, 2, 3])));
      await waitFor(`${what}: the message`, () => s.received.messages.length === 1);
      if (last) socket.end(last);
      else socket.end();
      await s.closed;
      assert.equal(s.received.closeCode, code, what);
      // ws ends the Receiver at the socket's end and again at its close (the second call
      // skipped): one close reported, not two.
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(s.received.closes, 1, what);
    }
  });

  test("what ws refuses is refused: too long (1009), unmasked (1002), RSV set (1002)", async () => {
    const cases: [string, Buffer, number][] = [
      ["past maxPayload", frame(0x2, Buffer.alloc(1001)), 1009],
      ["unmasked", frame(0x2, Buffer.from([0, 1, 2]), { unmasked: true }), 1002],
      ["RSV1", frame(0x2, Buffer.from([1]), { rsv: 4 }), 1002],
    ];
    for (const [what, bytes, code] of cases) {
      const s = await server(defer, true, 1000);
      const { socket, output } = await openRaw(s.port);
      socket.write(bytes);
      await waitFor(`${what}: a close frame`, () => closeCodeSent(output()) !== undefined);
      socket.destroy();
      await s.closed;
      assert.equal(closeCodeSent(output()), code, what);
      assert.deepEqual(s.received.messages, [], `${what}: nothing delivered`);
      assert.equal(s.received.fast, 0, what);
    }
  });

  test("the frame check accepts exactly one whole masked binary frame", () => {
    const one = frame(0x2, Buffer.alloc(10));
    assert.equal(wholeFramePayloadLength(one, 0), 10);
    assert.equal(wholeFramePayloadLength(frame(0x2, Buffer.alloc(300)), 0), 300);
    assert.equal(wholeFramePayloadLength(frame(0x2, Buffer.alloc(300)), 299), -1);
    assert.equal(wholeFramePayloadLength(frame(0x2, Buffer.alloc(70_000)), 0), -1, "64-bit");
    assert.equal(wholeFramePayloadLength(one.subarray(0, one.length - 1), 0), -1, "part");
    assert.equal(wholeFramePayloadLength(Buffer.concat([one, one]), 0), -1, "two frames");
    assert.equal(
      wholeFramePayloadLength(frame(0x2, Buffer.alloc(10), { fin: false }), 0),
      -1,
      "no FIN",
    );
    assert.equal(wholeFramePayloadLength(frame(0x1, Buffer.alloc(10)), 0), -1, "text");
    assert.equal(wholeFramePayloadLength(frame(0x9, Buffer.alloc(10)), 0), -1, "ping");
    assert.equal(wholeFramePayloadLength(frame(0x2, Buffer.alloc(0)), 0), -1, "empty");
  });

  test("nothing is installed on a socket that is not a ws WebSocket as expected", () => {
    assert.equal(
      installFastReceive({} as WebSocket, () => {}),
      false,
    );
    const odd = { _readyState: 1, _receiver: { write: () => true, _state: 0 } };
    assert.equal(
      installFastReceive(odd as unknown as WebSocket, () => {}),
      false,
    );
  });
});
