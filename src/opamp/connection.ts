/**
 * The one interface both transports implement, as opamp-go's server does: the message
 * handler never knows whether it talks over WebSocket or plain HTTP.
 */
import type { Transport } from "./agent-state.js";
import type { ServerToAgent } from "./messages.js";

export interface Connection {
  /** Unique within this process. */
  readonly id: number;
  readonly transport: Transport;
  readonly remoteAddress: string;
  /** Opaque scopes of the credentials the agent presented (see credentials.ts); [] for none. */
  readonly scopes?: readonly string[];
  /** Digest of the credential the connection presented (identity.ts); "" when none. */
  readonly credential: string;
  /**
   * The instance uid the connection's client certificate is bound to (an issued agent
   * certificate names it); messages for any other uid are refused. Undefined: not bound.
   */
  readonly boundUid?: string;
  /**
   * Sends an unsolicited ServerToAgent (a config push). WebSocket only: HTTP agents receive
   * changes in the response to their next poll, so HTTP connections leave this undefined.
   */
  push?(message: ServerToAgent): void;
  /** Closes the connection (WebSocket only), e.g. when a newer connection takes the uid over. */
  close?(code: number, reason: string): void;
}

let nextId = 1;
/** Allocates a connection id. */
export function nextConnectionId(): number {
  return nextId++;
}
