/**
 * The agents this process serves right now: for each instance uid, its state and the
 * connection it last spoke on. A WebSocket agent stays until its socket closes; an HTTP agent
 * until it says goodbye or misses its liveness window.
 */
import type { AgentState, ReportField } from "./agent-state.js";
import type { Connection } from "./connection.js";
import type { OfferedCredential } from "./credential-hooks.js";

export interface LiveAgent {
  state: AgentState;
  conn: Connection;
  /** Hash (hex) of the remote config offered on this session; reset by a new connection. */
  offeredConfigHash: string | null;
  /** When that remote config was last sent, ms since the epoch (0: never). */
  offeredAt: number;
  /** all_packages_hash (hex) of the packages offered on this session. */
  offeredPackagesHash?: string | null;
  /** The credential last offered or due with the connection settings (issuer's answer). */
  credential?: OfferedCredential | undefined;
  /** A command for an HTTP agent, sent with the reply to its next poll (type 0: restart). */
  pendingCommand?: { type: number };
  /** The agent is in Redis' index of agents (false until its first successful save). */
  stored: boolean;
  /** Changes not yet in Redis because writing them failed; retried with the next message. */
  unsaved?: { fields: ReportField[]; capabilities: boolean; connected: boolean };
  /**
   * Fields newer in memory than in Redis though they mean the same (health whose timestamps
   * alone moved): written along with the agent's next save, never on their own.
   */
  unwritten?: Set<ReportField>;
  /**
   * The provider version (DesiredStateProvider.version) at which the heartbeat fast path last
   * found nothing to offer this agent; cleared by any other message of the agent and by any
   * push to it, so it stands only while the agent's state and offers are unchanged.
   */
  quietAt?: number | undefined;
}

export class LiveAgents {
  readonly #byUid = new Map<string, LiveAgent>();
  readonly #uidByConn = new Map<number, string>();

  get size(): number {
    return this.#byUid.size;
  }

  get(uid: string): LiveAgent | undefined {
    return this.#byUid.get(uid);
  }

  values(): IterableIterator<LiveAgent> {
    return this.#byUid.values();
  }

  /** Starts a session for `uid` on `conn`, replacing any earlier one. */
  bind(uid: string, state: AgentState, conn: Connection, stored: boolean): LiveAgent {
    const previous = this.#byUid.get(uid);
    if (previous) this.#uidByConn.delete(previous.conn.id);
    const live: LiveAgent = { state, conn, offeredConfigHash: null, offeredAt: 0, stored };
    this.#byUid.set(uid, live);
    if (conn.push) this.#uidByConn.set(conn.id, uid);
    return live;
  }

  /** Ends the session of `uid` if `conn` is still the one it runs on. */
  unbind(uid: string, conn: Connection): void {
    this.#uidByConn.delete(conn.id);
    if (this.#byUid.get(uid)?.conn === conn) this.#byUid.delete(uid);
  }

  /** The session a WebSocket connection carries, if it still carries one. */
  byConnection(conn: Connection): LiveAgent | undefined {
    const uid = this.#uidByConn.get(conn.id);
    const live = uid === undefined ? undefined : this.#byUid.get(uid);
    return live && live.conn === conn ? live : undefined;
  }
}
