/**
 * The OpAMP server logic, independent of transport: turns one AgentToServer into agent state,
 * events and the ServerToAgent reply.
 *
 * Concurrency contract: messages of one instance uid are processed one at a time, in the order
 * they were decoded (a per-uid chain), whatever connection they came on; decoding is
 * asynchronous for large messages (decode-pool.ts), so a transport that needs arrival order
 * (one WebSocket) awaits each message before handing over the next. Messages of different
 * agents run concurrently. A reply is produced for every message, duplicates and heartbeats
 * included.
 */
import type { Logger } from "pino";
import { LogLimiter } from "../log-limiter.js";
import { type AgentLimits, DEFAULT_AGENT_LIMITS, LIMIT_FLAGS } from "./agent-limits.js";
import {
  type AgentState,
  emptyAgentState,
  hasComponentMap,
  internHash,
  mergeReport,
} from "./agent-state.js";
import type { AgentStore } from "./agent-store.js";
import {
  AgentCapabilities,
  AgentToServerFlags,
  hasFlag,
  SERVER_CAPABILITIES,
  ServerCapabilities,
  ServerErrorResponseType,
  ServerToAgentFlags,
} from "./capabilities.js";
import { encodeHeartbeatAck, encodeSubMessage } from "./codec.js";
import type { Connection } from "./connection.js";
import { type CredentialIssuer, csrOf, type OfferedCredential } from "./credential-hooks.js";
import type { DesiredStateProvider } from "./desired.js";
import { AgentLimitError, MalformedMessageError } from "./errors.js";
import { type AgentEvents, emitAgentEvents } from "./events.js";
import { parseHeartbeat, uidBytesMatch } from "./heartbeat-bytes.js";
import { identifyingKey } from "./identity.js";
import { newInstanceUid, uidToBytes, uidToString } from "./instance-uid.js";
import { type LiveAgent, LiveAgents } from "./live-agents.js";
import type { AgentToServer, ServerToAgent } from "./messages.js";
import {
  type AdvertisedEndpoint,
  connectionSettingsHash,
  connectionSettingsOffer,
  remoteConfigOffer,
} from "./offers.js";
import { packagesOffer } from "./packages-offer.js";
import { type PreparedMessage, prepareMessage } from "./prepare.js";

/** Turns received bytes into a prepared message (prepare.ts), here or in a worker. */
export interface MessageDecoder {
  /** Rejects with MalformedMessageError for bytes that are not an AgentToServer. */
  prepare(bytes: Uint8Array): PreparedMessage | Promise<PreparedMessage>;
}

export type HandleOutcome = "ok" | "malformed" | "bad-request" | "unavailable";

export interface HandleResult {
  reply: ServerToAgent;
  outcome: HandleOutcome;
  /** The agent said goodbye (agent_disconnect). */
  disconnect: boolean;
}

export interface MessageHandlerOptions {
  store: AgentStore;
  desired: DesiredStateProvider;
  events: AgentEvents;
  logger: Logger;
  /** Names this process in the owner field of stored agents. */
  replicaId: string;
  /** Heartbeat interval assumed when none is offered to the agent, in seconds. Default 30. */
  defaultHeartbeatSeconds?: number;
  /** An HTTP agent is disconnected after this many heartbeat intervals without a poll. Default 3. */
  livenessFactor?: number;
  /** The endpoint connection-settings offers name; none: offers carry no endpoint. */
  advertise?: AdvertisedEndpoint | undefined;
  /** What an agent may report; see agent-limits.ts. Default DEFAULT_AGENT_LIMITS. */
  limits?: AgentLimits;
  /**
   * Issues agents' credentials (CSR certificates, rotation, per-agent tokens); none: CSRs are
   * ignored and AcceptsConnectionSettingsRequest is not announced.
   */
  issuer?: CredentialIssuer | undefined;
  /** A retried message (same sequence_num) gets an unchanged remote config again at most this often, in ms. Default 30 000. */
  resendIntervalMs?: number;
  /** Retry delay sent with UNAVAILABLE when Redis cannot be reached, in seconds. Default 30. */
  unavailableRetrySeconds?: number;
  /**
   * Messages refused because a certificate-bound connection spoke for another uid are logged
   * at most once per this, in ms, with counts per bound uid. Default 60 000.
   */
  refusalLogIntervalMs?: number;
  /**
   * Decodes and prepares messages (decode-pool.ts moves large ones off the event loop).
   * Default: prepareMessage on this thread, with `limits`.
   */
  decoder?: MessageDecoder;
  now?: () => number;
}

export class MessageHandler {
  readonly live: LiveAgents;
  /** Counters since start, read by the service's metrics. */
  readonly stats = {
    messages: 0,
    /** Of `messages`, heartbeats answered by heartbeat() without the general path. */
    quickHeartbeats: 0,
    /**
     * Of `quickHeartbeats`, those answered without asking the provider (its version and the
     * agent unchanged since it was last found with nothing due).
     */
    quietHeartbeats: 0,
    badRequests: 0,
    unavailable: 0,
    configOffers: 0,
    /** Claims refused: the uid is connected through another live replica by another agent. */
    duplicateUids: 0,
    /** Messages refused: a certificate-bound connection spoke for another uid. */
    boundElsewhere: 0,
  };
  readonly #options: Required<Omit<MessageHandlerOptions, "advertise" | "decoder" | "issuer">>;
  readonly #decoder: MessageDecoder;
  readonly #issuer: CredentialIssuer | undefined;
  readonly #advertise: AdvertisedEndpoint | undefined;
  readonly #chains = new Map<string, Promise<unknown>>();
  /** Per WebSocket connection id: the uid last handed to it with new_instance_uid. */
  readonly #assigned = new Map<number, string>();
  /** A certificate holder can send refused messages at will: logged per interval, counted. */
  readonly #boundElsewhereLog: LogLimiter<BoundElsewhere>;

  constructor(options: MessageHandlerOptions) {
    this.#options = {
      defaultHeartbeatSeconds: 30,
      livenessFactor: 3,
      unavailableRetrySeconds: 30,
      limits: DEFAULT_AGENT_LIMITS,
      resendIntervalMs: 30_000,
      refusalLogIntervalMs: 60_000,
      now: Date.now,
      ...options,
    };
    this.#advertise = options.advertise;
    const limits = this.#options.limits;
    this.#decoder = options.decoder ?? { prepare: (bytes) => prepareMessage(bytes, limits) };
    this.#issuer = options.issuer;
    this.live = new LiveAgents();
    const { logger } = this.#options;
    this.#boundElsewhereLog = new LogLimiter({
      intervalMs: this.#options.refusalLogIntervalMs,
      write: (entries, omitted) =>
        logger.warn(
          {
            refused: entries.map(({ key, count, detail }) => ({ boundUid: key, count, ...detail })),
            ...(omitted > 0 ? { omitted } : {}),
          },
          "refused messages for another uid than their client certificate's",
        ),
    });
  }

  /** Logs the refusals not logged yet; call once the transports are closed. Idempotent. */
  close(): void {
    this.#boundElsewhereLog.close();
  }

  /** Decodes and processes one message from `conn`. Never throws. */
  async handle(conn: Connection, bytes: Uint8Array): Promise<HandleResult> {
    const result = await this.#handle(conn, bytes);
    this.stats.messages++;
    if (result.outcome === "malformed" || result.outcome === "bad-request")
      this.stats.badRequests++;
    if (result.outcome === "unavailable") this.stats.unavailable++;
    if (result.reply.remoteConfig) this.stats.configOffers++;
    return result;
  }

  async #handle(conn: Connection, bytes: Uint8Array): Promise<HandleResult> {
    let prepared: PreparedMessage;
    try {
      // Small messages are prepared here and now: awaiting only what is a promise saves a hop.
      const pending = this.#decoder.prepare(bytes);
      prepared = pending instanceof Promise ? await pending : pending;
    } catch (err) {
      if (err instanceof MalformedMessageError)
        return errorResult(new Uint8Array(0), "malformed", err.message);
      // The decoder is saturated or its worker failed: nothing about the agent is known yet.
      this.#options.logger.warn({ err }, "cannot decode an agent message now");
      return this.#unavailable(new Uint8Array(0));
    }
    const message = prepared.message;
    if (message.instanceUid.length !== 16) {
      const err = new MalformedMessageError(
        `instance_uid must be 16 bytes, got ${message.instanceUid.length}`,
      );
      return errorResult(message.instanceUid, "bad-request", err.message);
    }
    const uid = uidToString(message.instanceUid);
    const previous = this.#chains.get(uid);
    const run = previous
      ? previous.then(() => this.#process(conn, uid, prepared))
      : this.#process(conn, uid, prepared);
    // The chain's tail settles once this message is done, and leaves the map if it is last.
    const done = () => {
      if (this.#chains.get(uid) === tail) this.#chains.delete(uid);
    };
    const tail: Promise<void> = run.then(done, done);
    this.#chains.set(uid, tail);
    try {
      return await run;
    } catch (err) {
      this.#options.logger.error({ err, instanceUid: uid }, "agent message failed");
      return this.#unavailable(message.instanceUid);
    }
  }

  /**
   * Answers at once a pure heartbeat (heartbeat-bytes.ts) of the agent the WebSocket `conn`
   * carries, when handle() would only record it: the next sequence number, the same
   * capabilities, nothing to offer, save, announce or ask for, no other message of the agent
   * in flight, no issuer (whose offers are asynchronous). Records it as handle() does (last
   * seen, sequence number, the batched touch) and returns the encoded reply; returns
   * undefined, having changed nothing, for any other message: then call handle().
   * `bytes` from `start` is the encoded AgentToServer. Never throws.
   */
  heartbeat(conn: Connection, bytes: Uint8Array, start: number): Uint8Array | undefined {
    if (this.#issuer || conn.push === undefined) return undefined;
    const live = this.live.byConnection(conn);
    if (!live) return undefined;
    const fields = parseHeartbeat(bytes, start);
    if (!fields) return undefined;
    const { state } = live;
    const uid = state.instanceUid;
    const uidOffset = fields.uidOffset;
    if (!uidBytesMatch(bytes, uidOffset, uid)) return undefined;
    const sequenceNum = BigInt(fields.sequenceNum);
    if (
      sequenceNum !== state.sequenceNum + 1n ||
      BigInt(fields.capabilities) !== state.capabilities ||
      this.#chains.has(uid) ||
      (conn.boundUid !== undefined && conn.boundUid !== uid) ||
      live.unsaved !== undefined ||
      live.pendingCommand !== undefined ||
      !state.connected ||
      state.credential !== conn.credential ||
      state.transport !== conn.transport ||
      !sameScopes(state.scopes, conn.scopes ?? []) ||
      wantsComponentMap(state)
    )
      return undefined;
    // Read before asking: a change while asking (none: all synchronous) would count as after.
    const version = this.#options.desired.version;
    const quiet = version !== undefined && live.quietAt === version;
    if (!quiet) {
      try {
        const desired = this.#options.desired.desired(state);
        if (
          remoteConfigOffer(state, desired, live.offeredConfigHash) ||
          connectionSettingsOffer(state, desired, this.#advertise, undefined) ||
          packagesOffer(state, desired?.packages, live.offeredPackagesHash ?? null)
        )
          return undefined;
      } catch {
        return undefined; // handle() meets the same failure and answers for it
      }
      live.quietAt = version;
    }
    const now = this.#options.now();
    state.sequenceNum = sequenceNum;
    state.lastSeenAt = now;
    this.#options.store.touch(uid, now, sequenceNum);
    this.stats.messages++;
    this.stats.quickHeartbeats++;
    if (quiet) this.stats.quietHeartbeats++;
    return encodeHeartbeatAck(bytes, uidOffset);
  }

  /** UNAVAILABLE with the configured retry delay. */
  #unavailable(instanceUid: Uint8Array): HandleResult {
    const result = errorResult(
      instanceUid,
      "unavailable",
      "server cannot process the message now; retry later",
    );
    result.reply.errorResponse = {
      ...(result.reply.errorResponse as NonNullable<ServerToAgent["errorResponse"]>),
      type: ServerErrorResponseType.Unavailable,
      retryInfo: {
        retryAfterNanoseconds: BigInt(this.#options.unavailableRetrySeconds) * 1_000_000_000n,
      },
    };
    return result;
  }

  async #process(conn: Connection, uid: string, prepared: PreparedMessage): Promise<HandleResult> {
    const { message } = prepared;
    const now = this.#options.now();
    if (conn.boundUid !== undefined && conn.boundUid !== uid) {
      this.stats.boundElsewhere++;
      this.#boundElsewhereLog.record(conn.boundUid, {
        instanceUid: uid,
        remoteAddress: conn.remoteAddress,
      });
      return boundElsewhere(conn.boundUid, message);
    }
    // Whether the connection's credential differs from `current`'s and was issued to this uid
    // (the agent switching to what it was given): asked at most once per message.
    let issued: Promise<boolean> | undefined;
    const switchedToIssued = (current: string | undefined): Promise<boolean> | false => {
      if (current === conn.credential) return false;
      issued ??= Promise.resolve(this.#issuer?.issuedTo?.(conn.credential, uid) ?? false);
      return issued;
    };
    if (hasFlag(message.flags, AgentToServerFlags.RequestInstanceUid)) {
      return this.#reassign(conn, message, "agent requested an instance uid");
    }
    const carried = conn.push ? this.live.byConnection(conn) : undefined;
    if (carried && carried.state.instanceUid !== uid) {
      // One WebSocket carries one agent; the only switch allowed is to a uid we handed out.
      if (this.#assigned.get(conn.id) !== uid) {
        return errorResult(
          message.instanceUid,
          "bad-request",
          `this WebSocket already carries instance uid ${carried.state.instanceUid}; one connection carries one agent: open another connection for ${uid}`,
        );
      }
      await this.#disconnect(carried, "agent took the new instance uid it was given");
    }
    if (prepared.limitError !== undefined)
      return errorResult(message.instanceUid, "bad-request", prepared.limitError);
    let live = this.live.get(uid);
    let known = true;
    if (live && live.conn !== conn) {
      // HTTP polls of one agent share a session; anything else is a second claimant.
      const sameSession = live.conn.transport === "http" && conn.transport === "http";
      // The certificate in this uid's record proves the agent (switching to what it was given);
      // an older one bound to the uid does not (a claimant may have had one signed meanwhile).
      const verdict =
        conn.boundUid === uid && (await switchedToIssued(live.state.credential))
          ? "same"
          : claimVerdict(live.state, conn, message, !sameSession);
      if (verdict === "other-agent") {
        return this.#reassign(conn, message, "instance uid is in use by another connected agent");
      }
      if (verdict === "prove") return proveIdentity(message);
    }
    // A new credential (an agent switching to the certificate issued to it) is a new session.
    const switched = live !== undefined && live.state.credential !== conn.credential;
    if (
      !live ||
      switched ||
      live.conn.transport !== conn.transport ||
      (conn.push && live.conn !== conn)
    ) {
      const claimed = live && live.conn !== conn ? live : undefined;
      const stored = live?.state ?? (await this.#options.store.load(uid));
      known = stored !== undefined;
      if (
        !claimed &&
        stored?.connected &&
        stored.credential &&
        stored.credential !== conn.credential &&
        !(await switchedToIssued(stored.credential))
      ) {
        // Connected through another replica (or until its liveness runs out) with another
        // credential: the uid is not this claimant's.
        return this.#reassign(conn, message, "instance uid is in use with another credential");
      }
      const owner = stored && "owner" in stored ? String(stored.owner) : "";
      const elsewhere = !live && stored?.connected ? this.#otherReplica(owner) : "";
      // A credential issued to the uid is the agent switching to it, wherever its old session is.
      if (
        elsewhere &&
        !(await switchedToIssued(stored?.credential)) &&
        (await this.#options.store.replicaAlive(elsewhere))
      ) {
        // Stored as connected through another live replica: the same agent moved (a load
        // balancer sent it here, its HTTP polls alternate) or a second agent uses its uid. A
        // description that differs from the stored one tells them apart; without one, the
        // agent is taken for the same (a poll carries none).
        if (claimVerdict(stored as AgentState, conn, message, true) === "other-agent") {
          this.stats.duplicateUids++;
          return this.#reassign(
            conn,
            message,
            `instance uid is in use by another agent connected through replica ${elsewhere}`,
          );
        }
      }
      if (claimed) claimed.conn.close?.(1000, "replaced by a newer connection of this agent");
      const state = stored ?? emptyAgentState(uid, conn.transport, now);
      state.credential = conn.credential;
      // A session new to this process is a connect whatever Redis says: a process that died
      // never wrote its agents' disconnect, and only a `connected` event places the agent.
      if (!live) state.connected = false;
      live = this.live.bind(uid, state, conn, known);
    }
    live.conn = conn;
    // Awaited, not returned: an async function adopting a returned promise costs two more hops.
    return await this.#apply(live, prepared, known, now);
  }

  async #apply(
    live: LiveAgent,
    prepared: PreparedMessage,
    known: boolean,
    now: number,
  ): Promise<HandleResult> {
    const { state, conn } = live;
    const { message } = prepared;
    // Whatever this message changes, the fast path asks the provider again next time.
    live.quietAt = undefined;
    const previousSeq = state.sequenceNum;
    const retry = known && message.sequenceNum === previousSeq;
    // An agent's first message carries its full state (opamp-go numbers it 0, Elastic's
    // client 1; both send the description in it): asking again would make every new agent
    // send it twice. An unknown agent past its first messages (one this service lost, whose
    // opamp-go client sends only its next message after a reconnect) is asked.
    const firstReport = message.agentDescription != null && message.sequenceNum <= 1n;
    const gap = known ? !retry && message.sequenceNum !== previousSeq + 1n : !firstReport;
    // The agent may have lost our reply: resend the offer, but at most once per interval, so
    // a client repeating one message cannot make us send a full config each time.
    if (retry && now - live.offeredAt >= this.#options.resendIntervalMs)
      live.offeredConfigHash = null;

    let merged: ReturnType<typeof mergeReport>;
    if (!carriesReport(prepared)) {
      // A heartbeat: nothing to merge but the capability word (which always wins).
      merged = { changed: [], refreshed: [], capabilitiesChanged: false };
      if (state.capabilities !== message.capabilities) {
        state.capabilities = message.capabilities;
        merged.capabilitiesChanged = true;
      }
    } else {
      try {
        const report = { ...prepared, capabilities: message.capabilities };
        merged = mergeReport(state, report, this.#options.limits.maxAgentBytes, (total) => {
          throw new AgentLimitError(
            "maxAgentBytes",
            LIMIT_FLAGS.maxAgentBytes,
            this.#options.limits.maxAgentBytes,
            "stored report bytes",
            total,
          );
        });
      } catch (err) {
        if (!(err instanceof AgentLimitError)) throw err;
        return errorResult(message.instanceUid, "bad-request", err.message);
      }
    }
    const { changed, refreshed, capabilitiesChanged } = merged;
    if (refreshed.length > 0) {
      live.unwritten ??= new Set();
      for (const f of refreshed) live.unwritten.add(f);
    }
    state.sequenceNum = message.sequenceNum;
    state.lastSeenAt = now;
    const transportChanged = state.transport !== conn.transport;
    state.transport = conn.transport;
    const scopes = conn.scopes ?? [];
    const scopesChanged = !sameScopes(state.scopes, scopes);
    if (scopesChanged) state.scopes = scopes;
    const connecting = !state.connected;
    if (connecting) {
      state.connected = true;
      state.lastConnectedAt = now;
    }
    const disconnect = message.agentDisconnect != null;
    if (disconnect) {
      state.connected = false;
      state.lastDisconnectedAt = now;
    }

    const reply: ServerToAgent = { instanceUid: message.instanceUid };
    const offeredBefore = live.offeredConfigHash;
    if (gap) reply.flags = ServerToAgentFlags.ReportFullState;
    if (!disconnect && wantsComponentMap(state)) {
      reply.flags = (reply.flags ?? 0n) | ServerToAgentFlags.ReportAvailableComponents;
    }
    let settingsOffered = false;
    let packagesOffered = false;
    if (!disconnect) {
      const desired = this.#options.desired.desired(state);
      const remote = remoteConfigOffer(state, desired, live.offeredConfigHash);
      if (remote) {
        reply.remoteConfig = remote;
        // One string per hash, not one per agent (80 B each).
        live.offeredConfigHash = internHash(Buffer.from(remote.configHash).toString("hex"));
        live.offeredAt = now;
      }
      // Without an issuer the offer is decided here and now (no promise, no microtask).
      const settings = this.#issuer
        ? await this.#settingsOffer(state, desired, csrOf(message), live)
        : connectionSettingsOffer(state, desired, this.#advertise, undefined);
      if (settings) {
        reply.connectionSettings = settings;
        state.offeredSettingsHash = Buffer.from(settings.hash).toString("hex");
        settingsOffered = true;
      }
      const packages = packagesOffer(state, desired?.packages, live.offeredPackagesHash ?? null);
      if (packages) {
        reply.packagesAvailable = packages;
        live.offeredPackagesHash = Buffer.from(packages.allPackagesHash).toString("hex");
        packagesOffered = true;
      }
      if (live.pendingCommand) {
        reply.command = live.pendingCommand;
        live.pendingCommand = undefined;
      }
    }

    // Changes whose write failed earlier (Redis unreachable) are written and announced now.
    const unsaved = live.unsaved;
    live.unsaved = undefined;
    const fields = unsaved ? [...new Set([...unsaved.fields, ...changed])] : changed;
    const announce = {
      capabilities: capabilitiesChanged || Boolean(unsaved?.capabilities),
      connected: connecting || Boolean(unsaved?.connected),
    };
    const mustSave =
      unsaved !== undefined ||
      fields.length > 0 ||
      announce.capabilities ||
      announce.connected ||
      disconnect ||
      !known ||
      transportChanged ||
      scopesChanged ||
      settingsOffered;
    if (mustSave) {
      // Timestamp-only refreshes ride along with a write that happens anyway.
      const ridealong = live.unwritten
        ? [...live.unwritten].filter((f) => !fields.includes(f))
        : [];
      try {
        await this.#options.store.save(
          state,
          [...fields, ...ridealong],
          this.#owner(conn),
          !live.stored,
        );
        live.stored = true;
        live.unwritten = undefined;
      } catch (err) {
        // The reply becomes UNAVAILABLE: nothing offered in it counts as offered.
        live.unsaved = { fields, ...announce };
        live.offeredConfigHash = offeredBefore;
        if (settingsOffered) state.offeredSettingsHash = null;
        throw err;
      }
    } else {
      this.#options.store.touch(state.instanceUid, now, state.sequenceNum);
    }
    if (disconnect) this.live.unbind(state.instanceUid, conn);
    if (this.#issuer) reply.capabilities = ISSUING_CAPABILITIES;
    const offered = settingsOffered || packagesOffered;
    // A heartbeat announces nothing: no event object is built for it.
    if (
      fields.length > 0 ||
      announce.capabilities ||
      announce.connected ||
      disconnect ||
      scopesChanged ||
      offered
    )
      emitAgentEvents(this.#options.events, state, {
        fields,
        ...announce,
        disconnect,
        scopes: scopesChanged,
        offered,
      });
    return { reply, outcome: "ok", disconnect };
  }

  /**
   * The connection-settings offer, with the issuer's credential when one is configured. A
   * credential whose payload cannot be re-sent is renewed when the offer must go out anyway.
   * An issuer failure (Redis) is logged and nothing is offered this time: an offer without the
   * agent's credential could make it drop the one it uses.
   */
  async #settingsOffer(
    state: AgentState,
    desired: ReturnType<MessageHandlerOptions["desired"]["desired"]>,
    csr: Uint8Array | undefined,
    live: LiveAgent,
  ) {
    const issuer = this.#issuer;
    let credential: OfferedCredential | undefined;
    try {
      credential = await issuer?.credentialFor(state, csr);
      live.credential = credential;
      const offer = connectionSettingsOffer(state, desired, this.#advertise, credential);
      if (!offer || !credential || credential.certificate || credential.headers) return offer;
      credential = await issuer?.renew(state);
      live.credential = credential;
    } catch (err) {
      this.#options.logger.warn(
        { err, instanceUid: state.instanceUid, code: (err as { code?: string }).code },
        "agent credential not issued",
      );
      return undefined;
    }
    return connectionSettingsOffer(state, desired, this.#advertise, credential);
  }

  /**
   * Answers with a fresh instance uid; nothing is stored under the uid the agent used. A
   * WebSocket may switch to the uid handed to it (remembered until the socket closes).
   */
  #reassign(conn: Connection, message: AgentToServer, reason: string): HandleResult {
    // A certificate bound to one uid could never use another: refuse instead.
    if (conn.boundUid !== undefined) {
      this.#options.logger.warn(
        { instanceUid: uidToString(message.instanceUid), reason },
        "refused a certificate-bound connection",
      );
      return errorResult(
        message.instanceUid,
        "bad-request",
        `${reason}; this client certificate is bound to instance uid ${conn.boundUid} and cannot take a new one`,
      );
    }
    const newUid = newInstanceUid(this.#options.now());
    if (conn.push) this.#assigned.set(conn.id, uidToString(newUid));
    this.#options.logger.info(
      {
        instanceUid: uidToString(message.instanceUid),
        newInstanceUid: uidToString(newUid),
        reason,
      },
      "assigned a new instance uid",
    );
    return {
      reply: { instanceUid: message.instanceUid, agentIdentification: { newInstanceUid: newUid } },
      outcome: "ok",
      disconnect: false,
    };
  }

  /** The replica id of a stored owner when it is not this process; "" otherwise. */
  #otherReplica(owner: string | undefined): string {
    if (!owner) return "";
    const replica = owner.slice(0, owner.lastIndexOf("/"));
    return replica === this.#options.replicaId ? "" : replica;
  }

  #owner(conn: Connection): string {
    return `${this.#options.replicaId}/${conn.id}`;
  }

  /**
   * Re-evaluates desired state for connected WebSocket agents (all, those `select` keeps, or
   * those it lists: a list costs its own length, not a scan over every agent) and pushes
   * remote configs that are now due. Resolves with the number of agents pushed to.
   * Works in slices of `sliceSize` agents, yielding to the event loop between slices, so that
   * replies (the APPLIED reports a push provokes) are processed while a large fleet is pushed.
   * HTTP agents get the same answer on their next poll.
   */
  async refresh(
    select: ((uid: string) => boolean) | Iterable<string> = () => true,
    sliceSize = 256,
  ): Promise<number> {
    let pushed = 0;
    let inSlice = 0;
    const chosen: (LiveAgent | undefined)[] =
      typeof select === "function"
        ? [...this.live.values()].filter((l) => select(l.state.instanceUid))
        : Array.from(select, (uid) => this.live.get(uid));
    for (const live of chosen) {
      if (!live) continue;
      const { state, conn } = live;
      if (!conn.push) continue;
      if (this.live.get(state.instanceUid) !== live) continue; // gone while we yielded
      const desired = this.#options.desired.desired(state);
      const remote = remoteConfigOffer(state, desired, live.offeredConfigHash);
      // With the agent's credential, if it has one: an offer without it could make it drop it.
      const settings = this.#issuer
        ? await this.#settingsOffer(state, desired, undefined, live)
        : connectionSettingsOffer(state, desired, this.#advertise, undefined);
      if (this.live.get(state.instanceUid) !== live) continue; // gone while the issuer answered
      const packages = packagesOffer(state, desired?.packages, live.offeredPackagesHash ?? null);
      if (!remote && !settings && !packages) continue;
      live.quietAt = undefined; // the offers below change what is due
      const message: ServerToAgent = { instanceUid: uidToBytes(state.instanceUid) };
      if (remote) {
        live.offeredConfigHash = internHash(Buffer.from(remote.configHash).toString("hex"));
        live.offeredAt = this.#options.now();
        message.remoteConfig = remote;
        this.stats.configOffers++;
      }
      if (settings) {
        // Remembered in memory; stored with the agent's next report (a lost write re-offers).
        state.offeredSettingsHash = Buffer.from(settings.hash).toString("hex");
        message.connectionSettings = settings;
      }
      if (packages) {
        live.offeredPackagesHash = Buffer.from(packages.allPackagesHash).toString("hex");
        message.packagesAvailable = packages;
      }
      conn.push(message);
      pushed++;
      if (settings || packages)
        this.#options.events.emit("offered", { instanceUid: state.instanceUid, agent: state });
      if (++inSlice >= sliceSize) {
        inSlice = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    return pushed;
  }

  /** Hash (hex) of the connection settings due to `state` now, offered or not; undefined: none. */
  dueSettingsHash(state: Readonly<AgentState>): string | undefined {
    // The credential this process last offered with it (the issuer answers asynchronously).
    const credential = this.live.get(state.instanceUid)?.credential;
    return connectionSettingsHash(
      state,
      this.#options.desired.desired(state),
      this.#advertise,
      credential,
    );
  }

  /**
   * Sends a command (ServerToAgentCommand, type 0 = restart) to an agent this process serves
   * that accepts it: pushed at once over WebSocket, with the next poll's reply over HTTP.
   * Returns "sent" | "queued" | "not-accepted" (no AcceptsRestartCommand) | "not-here".
   */
  command(uid: string, type: number): "sent" | "queued" | "not-accepted" | "not-here" {
    const live = this.live.get(uid);
    if (!live) return "not-here";
    if (!hasFlag(live.state.capabilities, AgentCapabilities.AcceptsRestartCommand)) {
      return "not-accepted";
    }
    if (live.conn.push) {
      live.conn.push({ instanceUid: uidToBytes(uid), command: { type } });
      return "sent";
    }
    live.pendingCommand = { type };
    return "queued";
  }

  /** A WebSocket closed: its agent is disconnected, unless a newer connection took it over. */
  async connectionClosed(conn: Connection, reason: string): Promise<void> {
    this.#assigned.delete(conn.id);
    const live = this.live.byConnection(conn);
    if (!live) return;
    await this.#disconnect(live, reason);
  }

  /**
   * Marks HTTP agents that have not polled within their liveness window as disconnected.
   * The window is `livenessFactor` × the agent's heartbeat interval.
   */
  async sweep(): Promise<number> {
    const now = this.#options.now();
    const stale: LiveAgent[] = [];
    for (const live of this.live.values()) {
      if (live.conn.push) continue;
      // An offered interval counts only if this agent was given it; others poll at their own
      // rate, which the protocol does not tell us, so they get the default.
      const offered =
        live.state.offeredSettingsHash &&
        hasFlag(live.state.capabilities, AgentCapabilities.AcceptsOpAMPConnectionSettings)
          ? this.#options.desired.desired(live.state)?.heartbeatIntervalSeconds
          : undefined;
      const interval = offered ?? this.#options.defaultHeartbeatSeconds;
      if (now - live.state.lastSeenAt > interval * this.#options.livenessFactor * 1000)
        stale.push(live);
    }
    for (const live of stale) await this.#disconnect(live, "no poll within the liveness window");
    return stale.length;
  }

  async #disconnect(live: LiveAgent, reason: string): Promise<void> {
    const { state, conn } = live;
    this.live.unbind(state.instanceUid, conn);
    state.connected = false;
    state.lastDisconnectedAt = this.#options.now();
    let elsewhere = false;
    try {
      // Not stored when another replica serves the agent now (its owner): that one's connect
      // stands, and rollouts and the status branch keep it connected.
      elsewhere = !(await this.#options.store.saveDisconnect(state, this.#owner(conn)));
    } catch (err) {
      this.#options.logger.error(
        { err, instanceUid: state.instanceUid },
        "cannot store disconnect",
      );
    }
    this.#options.events.emit("disconnected", {
      instanceUid: state.instanceUid,
      reason: elsewhere ? `${reason}; connected through another replica` : reason,
      agent: state,
      ...(elsewhere ? { elsewhere } : {}),
    });
  }
}

/**
 * Whether `conn` may speak for the connected agent `current`:
 * - "other-agent" when it presents another credential, or a description that differs (on a
 *   second connection: any difference; on the same HTTP session: the identifying attributes),
 *   which means another agent uses the uid (an attacker, a cloned VM, a bad uid generator);
 * - "prove" when it is a second connection that sent no description: it is asked for its full
 *   state (and served nothing) until it shows it is the same agent;
 * - "same" otherwise (the agent reconnecting, e.g. behind a half-open old socket).
 */
function claimVerdict(
  current: Readonly<AgentState>,
  conn: Connection,
  message: AgentToServer,
  secondConnection: boolean,
): "same" | "other-agent" | "prove" {
  if (current.credential !== conn.credential) return "other-agent";
  const description = message.agentDescription;
  if (!description) return secondConnection ? "prove" : "same";
  const stored = current.encoded.description;
  if (!stored) return "same";
  if (!secondConnection)
    return identifyingKey(description).equals(identifyingKey(current.description))
      ? "same"
      : "other-agent";
  return stored.equals(encodeSubMessage("AgentDescription", description)) ? "same" : "other-agent";
}

/** Announced when an issuer is configured: CSRs are accepted. */
const ISSUING_CAPABILITIES =
  SERVER_CAPABILITIES | ServerCapabilities.AcceptsConnectionSettingsRequest;

/** The last refused message of a bound uid in a log interval: what it spoke for, from where. */
interface BoundElsewhere {
  instanceUid: string;
  remoteAddress: string;
}

/**
 * Refuses a message for another uid than the one the connection's certificate was issued to
 * (`boundUid`): the certificate proves only that uid (a new uid would be refused as well).
 */
function boundElsewhere(boundUid: string, message: AgentToServer): HandleResult {
  return errorResult(
    message.instanceUid,
    "bad-request",
    `this client certificate was issued to instance uid ${boundUid}; it cannot speak for ${uidToString(message.instanceUid)}: connect with that uid, or with your bootstrap credential to ask for a certificate for this one`,
  );
}

/** Asks a claimant to report its full state; nothing is stored, offered or announced. */
function proveIdentity(message: AgentToServer): HandleResult {
  return {
    reply: { instanceUid: message.instanceUid, flags: ServerToAgentFlags.ReportFullState },
    outcome: "ok",
    disconnect: false,
  };
}

/**
 * Whether to ask for the full AvailableComponents (spec: the agent sends only the hash until
 * asked): it has the capability and reported a hash, but no map is stored for it. An agent
 * that honours the flag answers with the map in its next message, so this is asked once.
 */
function wantsComponentMap(state: Readonly<AgentState>): boolean {
  if (!hasFlag(state.capabilities, AgentCapabilities.ReportsAvailableComponents)) return false;
  const reported = state.availableComponents;
  return (reported?.hash?.length ?? 0) > 0 && !hasComponentMap(reported);
}

/** Whether the message reports any field (prepare.ts encoded it); a heartbeat reports none. */
function carriesReport(prepared: PreparedMessage): boolean {
  for (const _ in prepared.encoded) return true;
  return false;
}

function sameScopes(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

function errorResult(
  instanceUid: Uint8Array,
  outcome: HandleOutcome,
  errorMessage: string,
): HandleResult {
  return {
    reply: {
      instanceUid,
      errorResponse: { type: ServerErrorResponseType.BadRequest, errorMessage },
    },
    outcome,
    disconnect: false,
  };
}
