/**
 * Agent → server WebSocket frames read without `ws`'s stream machinery when a socket read
 * holds exactly one small, whole binary message.
 *
 * A connected fleet mostly sends heartbeats: one masked binary frame of a few dozen bytes per
 * message, arriving as one socket read. `ws` feeds every read through its Receiver, a
 * Writable stream (write bookkeeping, a parse loop, a `process.nextTick` per write, two event
 * emissions), which costs more than answering the heartbeat. Here the Receiver's `write` is
 * wrapped: a read that is one complete frame with FIN set, RSV bits clear, opcode binary, the
 * mask bit set (RFC 6455 §5.1: a client always masks), a 7- or 16-bit length no larger than
 * the Receiver's `maxPayload`, arriving while the Receiver is idle (no bytes buffered, no
 * fragmented message, nothing queued in its stream) on an open socket, is unmasked in place
 * (with `bufferutil`, as `ws` unmasks) and handed to `deliver`. Anything else (control frames, fragments, several frames or part
 * of one in a read, a 64-bit length, a busy or closing socket) goes to the Receiver as
 * before, which applies every rule and limit itself. Delivery is synchronous and in read
 * order, as `ws` delivers with `allowSynchronousEvents` (its default): a socket's messages
 * reach `deliver` in the order they were sent whichever path each took, since the fast path
 * runs only when the Receiver holds nothing.
 *
 * This relies on `ws` internals (`_receiver` and its `_state`, `_bufferedBytes`,
 * `_fragmented`, `_maxPayload`, `_binaryType`, `_readyState`); `installFastReceive` checks
 * they look as expected and installs nothing otherwise (another `ws` version then simply runs
 * as `ws` does). The Receiver's `end` is wrapped too, so the second of the two calls `ws`
 * makes at a close does not build an error no one reads (`endOnce`).
 */
import { Writable } from "node:stream";
import bufferUtil from "bufferutil";
import type { WebSocket } from "ws";

/** What of `ws`'s Receiver this file reads, and what it adds to it. */
interface ReceiverInternals {
  write: typeof Writable.prototype.write;
  end: typeof Writable.prototype.end;
  writableLength: number;
  writableFinished: boolean;
  _state?: unknown;
  _bufferedBytes?: unknown;
  _fragmented?: unknown;
  _maxPayload?: unknown;
  _binaryType?: unknown;
  [SOCKET]?: WebSocket & WebSocketInternals;
  [DELIVER]?: Deliver;
}

interface WebSocketInternals {
  _receiver?: ReceiverInternals;
  _readyState?: unknown;
}

/** Receives a message's payload; one shared function, called with the socket it came on. */
export type Deliver = (ws: WebSocket, payload: Buffer) => void;

const SOCKET = Symbol("fastReceiveSocket");
const DELIVER = Symbol("fastReceiveDeliver");
/** The Receiver's idle state (ws receiver.js GET_INFO). */
const GET_INFO = 0;
/** First byte of a whole binary message in one frame: FIN, RSV1-3 clear, opcode 2. */
const FIN_BINARY = 0x82;
const OPEN = 1;
const streamWrite = Writable.prototype.write;
const streamEnd = Writable.prototype.end;

/**
 * Makes whole single-frame binary messages read in one chunk on `ws` reach
 * `deliver(ws, payload)` directly (see the file comment). Returns whether it was installed.
 * `deliver` runs synchronously, with the socket's messages in order; it must not throw. It
 * should be one function shared by every socket: nothing is allocated per socket but two
 * properties on its Receiver.
 */
export function installFastReceive(ws: WebSocket, deliver: Deliver): boolean {
  const internals = ws as WebSocket & WebSocketInternals;
  const receiver = internals._receiver;
  if (
    !receiver ||
    receiver.write !== streamWrite ||
    receiver.end !== streamEnd ||
    typeof receiver._maxPayload !== "number" ||
    receiver._binaryType !== "nodebuffer" ||
    !idle(internals, receiver)
  ) {
    return false;
  }
  receiver[SOCKET] = internals;
  receiver[DELIVER] = deliver;
  receiver.write = fastWrite as typeof streamWrite;
  receiver.end = endOnce as typeof streamEnd;
  return true;
}

/**
 * The Receiver's `end` once installed. `ws` ends the Receiver when the socket's read side
 * ends and again when the socket closes; a stream's second `end()` after it finished builds
 * an ERR_STREAM_ALREADY_FINISHED error (a stack trace captured, ~19 µs under the profiler)
 * that nobody receives when no callback is given. That call is skipped; any other goes to
 * the stream as given.
 */
function endOnce(this: ReceiverInternals): ReceiverInternals {
  // biome-ignore lint/complexity/noArguments: a chunk or callback goes to the stream as given
  if (arguments.length === 0 && this.writableFinished) return this;
  // biome-ignore lint/complexity/noArguments: passed on unchanged
  return (streamEnd as (...args: unknown[]) => ReceiverInternals).apply(this, arguments as never);
}

/** The Receiver's `write` once installed: one whole frame delivered, anything else as before. */
function fastWrite(this: ReceiverInternals, chunk: unknown): boolean {
  const ws = this[SOCKET];
  const deliver = this[DELIVER];
  if (
    // biome-ignore lint/complexity/noArguments: an encoding or callback goes to the stream as given
    arguments.length !== 1 ||
    !Buffer.isBuffer(chunk) ||
    ws === undefined ||
    deliver === undefined ||
    !idle(ws, this)
  ) {
    // biome-ignore lint/complexity/noArguments: passed on unchanged
    return (streamWrite as (...args: unknown[]) => boolean).apply(this, arguments as never);
  }
  const length = wholeFramePayloadLength(chunk, this._maxPayload as number);
  if (length < 0) return (streamWrite as (chunk: Buffer) => boolean).call(this, chunk);
  const start = chunk.length - length;
  const payload = chunk.subarray(start);
  bufferUtil.unmask(payload, chunk.subarray(start - 4, start));
  deliver(ws, payload);
  return true;
}

/**
 * Whether the socket is open and its Receiver holds nothing: no bytes of a frame, no
 * fragments of a message, no write queued in its stream.
 */
function idle(ws: WebSocketInternals, receiver: ReceiverInternals): boolean {
  return (
    ws._readyState === OPEN &&
    receiver._state === GET_INFO &&
    receiver._bufferedBytes === 0 &&
    receiver._fragmented === 0 &&
    receiver.writableLength === 0
  );
}

/**
 * The payload length of `chunk` when it is exactly one whole masked binary frame with FIN set
 * and a 7- or 16-bit length of 1..maxPayload bytes (0: no limit); -1 otherwise.
 */
export function wholeFramePayloadLength(chunk: Buffer, maxPayload: number): number {
  if (chunk.length < 7 || chunk[0] !== FIN_BINARY) return -1;
  const second = chunk[1] as number;
  if ((second & 0x80) === 0) return -1; // unmasked: the Receiver refuses it
  let length = second & 0x7f;
  let head = 6; // 2 header bytes + 4 mask bytes
  if (length === 127) return -1;
  if (length === 126) {
    length = chunk.readUInt16BE(2);
    head = 8;
  }
  if (length === 0 || head + length !== chunk.length) return -1;
  if (maxPayload > 0 && length > maxPayload) return -1;
  return length;
}
