/**
 * Agent state in Redis, one hash per agent (`<prefix>:agent:<uid>`) plus an index set
 * (`<prefix>:agents`), so any replica can serve any agent.
 *
 * Writes happen only when something meaningful changed. Heartbeats that change nothing are
 * not written one by one: last-seen times and sequence numbers are batched by `touch()` and
 * written by `flushTouches()` in one pipeline, which the server calls on an interval.
 */
import type { Redis } from "ioredis";
import {
  type AgentState,
  emptyAgentState,
  REPORT_FIELDS,
  type ReportField,
  setReportField,
  type Transport,
} from "./agent-state.js";
import { decodeSubMessage } from "./codec.js";
import type { AvailableComponents } from "./messages.js";

/** Scalar fields written with every state save. */
type ScalarField =
  | "seq"
  | "caps"
  | "transport"
  | "connected"
  | "lastConnectedAt"
  | "lastDisconnectedAt"
  | "lastSeenAt"
  | "offeredSettings"
  | "scopes"
  | "credential"
  | "owner";

interface PendingSave {
  uid: string;
  values: (string | Buffer)[];
  isNew: boolean;
  resolve(): void;
  reject(err: unknown): void;
}

export interface AgentStoreOptions {
  /** Key prefix shared with the rest of the service, e.g. "opamp-gitops". */
  prefix: string;
}

export class AgentStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #touched = new Map<string, { lastSeenAt: number; seq: bigint }>();
  #saves: PendingSave[] = [];

  constructor(redis: Redis, { prefix }: AgentStoreOptions) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  #key(uid: string): string {
    return `${this.#prefix}:agent:${uid}`;
  }

  /** Loads an agent, or undefined when none is stored. One round trip. */
  async load(uid: string): Promise<(AgentState & { owner: string }) | undefined> {
    const raw = await this.#redis.hgetallBuffer(this.#key(uid));
    if (!raw || Object.keys(raw).length === 0) return undefined;
    const text = (f: ScalarField) => raw[f]?.toString() ?? "";
    const num = (f: ScalarField) => (text(f) === "" ? null : Number(text(f)));
    const state = emptyAgentState(uid, (text("transport") || "websocket") as Transport, 0);
    state.sequenceNum = BigInt(text("seq") || "0");
    state.capabilities = BigInt(text("caps") || "0");
    state.connected = text("connected") === "1";
    state.lastConnectedAt = num("lastConnectedAt");
    state.lastDisconnectedAt = num("lastDisconnectedAt");
    state.lastSeenAt = num("lastSeenAt") ?? 0;
    state.offeredSettingsHash = text("offeredSettings") || null;
    // Scopes are single lines (a tokens-file line's tail), so newline-joined.
    state.scopes = text("scopes") === "" ? [] : text("scopes").split("\n");
    state.credential = text("credential");
    for (const field of Object.keys(REPORT_FIELDS) as ReportField[]) {
      const bytes = raw[field];
      if (bytes) setReportField(state, field, bytes);
    }
    return Object.assign(state, { owner: text("owner") });
  }

  /**
   * Writes the scalar fields and the given report fields of `state`. `owner` names the
   * replica and connection serving the agent (used for duplicate-uid detection); `isNew`
   * adds the uid to the index set. Saves made in the same turn of the event loop go to Redis
   * as one pipeline; each promise settles with its own command's result.
   */
  save(
    state: AgentState,
    fields: readonly ReportField[],
    owner: string,
    isNew = false,
  ): Promise<void> {
    const values: (string | Buffer)[] = [
      "seq",
      state.sequenceNum.toString(),
      "caps",
      state.capabilities.toString(),
      "transport",
      state.transport,
      "connected",
      state.connected ? "1" : "0",
      "lastConnectedAt",
      String(state.lastConnectedAt ?? ""),
      "lastDisconnectedAt",
      String(state.lastDisconnectedAt ?? ""),
      "lastSeenAt",
      String(state.lastSeenAt),
      "offeredSettings",
      state.offeredSettingsHash ?? "",
      "scopes",
      state.scopes.join("\n"),
      "credential",
      state.credential,
      "owner",
      owner,
    ];
    for (const field of fields) {
      const bytes = state.encoded[field];
      if (bytes) values.push(field, bytes);
    }
    this.#touched.delete(state.instanceUid);
    return new Promise((resolve, reject) => {
      this.#saves.push({ uid: state.instanceUid, values, isNew, resolve, reject });
      if (this.#saves.length === 1) setImmediate(() => void this.#writeSaves());
    });
  }

  async #writeSaves(): Promise<void> {
    const batch = this.#saves;
    this.#saves = [];
    const pipeline = this.#redis.pipeline();
    for (const save of batch) {
      pipeline.hset(this.#key(save.uid), ...save.values);
      if (save.isNew) pipeline.sadd(`${this.#prefix}:agents`, save.uid);
    }
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
    } catch (err) {
      for (const save of batch) save.reject(err);
      return;
    }
    let i = 0;
    for (const save of batch) {
      const errors = [results?.[i]?.[0], save.isNew ? results?.[i + 1]?.[0] : null];
      i += save.isNew ? 2 : 1;
      const err = errors.find((e) => e);
      if (err) save.reject(err);
      else save.resolve();
    }
  }

  /** Records a heartbeat in memory; written by the next flushTouches(). */
  touch(uid: string, lastSeenAt: number, seq: bigint): void {
    this.#touched.set(uid, { lastSeenAt, seq });
  }

  /** Writes every batched heartbeat in one pipeline. Returns how many agents were written. */
  async flushTouches(): Promise<number> {
    if (this.#touched.size === 0) return 0;
    const batch = [...this.#touched];
    this.#touched.clear();
    const pipeline = this.#redis.pipeline();
    for (const [uid, t] of batch) {
      pipeline.hset(this.#key(uid), "lastSeenAt", String(t.lastSeenAt), "seq", t.seq.toString());
    }
    const results = await pipeline.exec();
    const failed = results?.find(([err]) => err);
    if (failed?.[0]) {
      // Put them back (newer touches win) so a Redis outage loses no last-seen time.
      for (const [uid, t] of batch) if (!this.#touched.has(uid)) this.#touched.set(uid, t);
      throw failed[0];
    }
    return batch.length;
  }

  /**
   * The stored AvailableComponents of each uid (null: none stored), read in pipelines of 1000
   * HGETs, for checks over a whole group without loading every agent.
   */
  async availableComponents(
    uids: readonly string[],
  ): Promise<Map<string, AvailableComponents | null>> {
    const out = new Map<string, AvailableComponents | null>();
    for (let i = 0; i < uids.length; i += 1000) {
      const chunk = uids.slice(i, i + 1000);
      const pipe = this.#redis.pipeline();
      for (const uid of chunk) pipe.hgetBuffer(this.#key(uid), "availableComponents");
      const results = (await pipe.exec()) ?? [];
      chunk.forEach((uid, j) => {
        const bytes = results[j]?.[1] as Buffer | null | undefined;
        out.set(
          uid,
          bytes ? decodeSubMessage<AvailableComponents>("AvailableComponents", bytes) : null,
        );
      });
    }
    return out;
  }

  /** Every stored instance uid. */
  async list(): Promise<string[]> {
    return this.#redis.smembers(`${this.#prefix}:agents`);
  }
}
