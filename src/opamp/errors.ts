/**
 * Errors of the OpAMP module. Each has a stable `code` and structured `data`; the transports
 * turn them into OpAMP error responses, HTTP statuses or WebSocket close codes.
 */
import { CodedError } from "../errors.js";

export class OpampError extends CodedError {}

/** The bytes received are not a valid AgentToServer (answered with BAD_REQUEST / HTTP 400). */
export class MalformedMessageError extends OpampError {
  constructor(message: string, data: Record<string, unknown> = {}, cause?: unknown) {
    super("OPAMP_MALFORMED_MESSAGE", message, data, { cause });
  }
}

/** A message is larger than the configured limit, after decompression (1009 / HTTP 413). */
export class MessageTooLargeError extends OpampError {
  constructor(limitBytes: number) {
    super("OPAMP_MESSAGE_TOO_LARGE", `message exceeds the ${limitBytes}-byte limit`, {
      limitBytes,
    });
  }
}

/** The request carries no valid bearer token (HTTP 401, before any WebSocket upgrade). */
export class UnauthorizedError extends OpampError {
  constructor() {
    super("OPAMP_UNAUTHORIZED", "missing or invalid bearer token");
  }
}

/** The server is at its connection limit (HTTP 503 with Retry-After). */
export class OverloadedError extends OpampError {
  constructor(limit: number, retryAfterSeconds: number) {
    super("OPAMP_OVERLOADED", `connection limit of ${limit} reached`, {
      limit,
      retryAfterSeconds,
    });
  }
}

/** A report is over one of the agent limits (answered with BAD_REQUEST naming the limit). */
export class AgentLimitError extends OpampError {
  /** `flag`: the serve flag setting the limit; "" for a fixed limit (no setting). */
  constructor(limit: string, flag: string, max: number, what: string, actual: number) {
    super(
      "OPAMP_AGENT_LIMIT",
      `report refused: ${what} (${actual}) exceed the limit ${limit} = ${max}; ${flag ? `the server's ${flag} setting` : "a fixed limit"}`,
      { limit, flag, max, actual },
    );
  }
}
