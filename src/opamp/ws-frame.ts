/**
 * Server → agent WebSocket frames written as one buffer, one `write` per reply.
 *
 * `ws` sends a frame as two buffers (frame header, payload) between cork/uncork, which costs
 * a `writev` and its bookkeeping per reply (~7 % of the service's CPU with thousands of agents
 * heartbeating). A server frame is unmasked (RFC 6455 §5.1), so the frame header, OpAMP's
 * 0x00 header and the protobuf are laid out here in one allocation and written straight to
 * the socket. This relies on `ws` internals (`_socket`, `_sender._state`): when they are not as
 * expected (a compressing or busy sender, another `ws` version), `ws.send` is used instead.
 */
import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import { frameWebSocketMessage } from "./framing.js";

interface WsInternals {
  _socket?: Duplex;
  _sender?: { _state?: number; _queue?: unknown[] };
}

/** Sends an OpAMP message (encoded ServerToAgent) on an open socket as one binary frame. */
export function sendOpampFrame(ws: WebSocket, message: Uint8Array): void {
  const { _socket: socket, _sender: sender } = ws as unknown as WsInternals;
  if (!socket || !sender || sender._state !== 0 || sender._queue?.length !== 0) {
    ws.send(frameWebSocketMessage(message));
    return;
  }
  const length = message.length + 1; // OpAMP header byte
  const lengthBytes = length < 126 ? 0 : length < 65_536 ? 2 : 8;
  const head = 2 + lengthBytes;
  const frame = Buffer.allocUnsafe(head + length);
  frame[0] = 0x82; // FIN, binary
  if (lengthBytes === 0) frame[1] = length;
  else if (lengthBytes === 2) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  frame[head] = 0x00;
  frame.set(message, head + 1);
  socket.write(frame);
}
