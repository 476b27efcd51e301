/**
 * Encoding of outgoing messages with the size limit applied once for both transports: the
 * specification forbids sending a ServerToAgent larger than the limit, so it is dropped and
 * recorded instead.
 */
import type { Logger } from "pino";
import { ServerErrorResponseType } from "./capabilities.js";
import { encodeServerToAgent } from "./codec.js";
import type { ServerToAgent } from "./messages.js";

/**
 * Encodes `message`. When it exceeds `limitBytes` it is not sent: the error is logged and the
 * reply goes out without its remote config (every message still gets a reply), or not at all
 * (undefined) when even that is too large.
 */
export function encodeReply(
  message: ServerToAgent,
  limitBytes: number,
  logger: Logger,
): Uint8Array | undefined {
  const bytes = encodeServerToAgent(message);
  if (bytes.length <= limitBytes) return bytes;
  logger.error(
    { size: bytes.length, limitBytes, hasRemoteConfig: message.remoteConfig !== undefined },
    "ServerToAgent exceeds the message size limit and was not sent",
  );
  if (!message.remoteConfig) return undefined;
  const { remoteConfig: _dropped, ...rest } = message;
  return encodeReply(rest, limitBytes, logger);
}

/** A BAD_REQUEST reply to bytes that carried no usable instance uid. */
export function badRequest(errorMessage: string): ServerToAgent {
  return {
    instanceUid: new Uint8Array(0),
    errorResponse: { type: ServerErrorResponseType.BadRequest, errorMessage },
  };
}

/**
 * UNAVAILABLE with RetryInfo: the server cannot take `payload` (an encoded AgentToServer) now;
 * the agent sends again after `retryAfterSeconds`. The message is not decoded: its instance
 * uid is echoed when it comes first, as encoders write it (field 1, 16 bytes).
 */
export function unavailable(payload: Uint8Array, retryAfterSeconds: number): ServerToAgent {
  const uidFirst = payload[0] === 0x0a && payload[1] === 16 && payload.length >= 18;
  return {
    instanceUid: uidFirst ? payload.subarray(2, 18) : new Uint8Array(0),
    errorResponse: {
      type: ServerErrorResponseType.Unavailable,
      errorMessage: "server is busy (many agents connecting); retry after the interval given",
      retryInfo: { retryAfterNanoseconds: BigInt(retryAfterSeconds) * 1_000_000_000n },
    },
  };
}
