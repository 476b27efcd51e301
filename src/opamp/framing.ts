/**
 * OpAMP WebSocket message framing: a varint header (always 0 today) before the protobuf.
 * Written once here; both the server and the test/simulator clients use it.
 */
import { MalformedMessageError } from "./errors.js";

const HEADER = new Uint8Array([0x00]);

/** Prepends the `0x00` header to an encoded message. */
export function frameWebSocketMessage(payload: Uint8Array): Buffer {
  return Buffer.concat([HEADER, payload]);
}

/**
 * Returns the protobuf payload of a WebSocket binary message.
 *
 * A leading 0x00 is the header and is stripped. Header-less frames from clients that predate
 * the header are accepted, as opamp-go does: their first byte is a protobuf tag, whose field
 * number is at least 1, so it is ≥ 0x08. A first byte of 0x01–0x07 can be neither a header
 * this server knows nor a protobuf tag, and is rejected.
 */
export function unframeWebSocketMessage(data: Uint8Array): Uint8Array {
  if (data.length === 0) return data;
  const first = data[0] as number;
  if (first === 0x00) return data.subarray(1);
  if (first < 0x08) {
    throw new MalformedMessageError(
      `unsupported WebSocket message header 0x${first.toString(16)}`,
      {
        header: first,
      },
    );
  }
  return data;
}
