/**
 * Turns agent state into pending status changes in Redis, on any replica.
 *
 * `record(agent)` queues the agent (the latest state of a uid wins while queued); the queue
 * drains on the next turn of the event loop in slices of 50 agents (render in a worker
 * thread, see agent-render.ts, then one Redis round trip per slice), so a burst of thousands of events never blocks the OpAMP server for
 * long. An agent's file is rendered only when its inputs (reported sub-messages, connection
 * state, placement) changed since this process last recorded it; Redis drops what equals the
 * recorded content. A slice Redis refused is queued again and retried with backoff.
 *
 * Placement: `placement(agent)` says where an agent belongs; `undefined` means "not known yet"
 * (no desired state before the first sync): the agent is parked until `retryParked()`.
 */
import { createHash } from "node:crypto";
import { Backoff } from "../backoff.js";
import type { AgentState } from "../opamp/index.js";
import { AgentRenderer, type RenderJob, snapshot } from "./agent-render.js";
import type { AgentPlacement, AgentStatusOptions } from "./agent-status.js";
import type { StatusLogger } from "./logger.js";
import { agentFilePath, isGroupName } from "./paths.js";
import type { AgentRecord, PendingStore, RedisMicros } from "./pending-store.js";

export type Placement = (agent: Readonly<AgentState>) => AgentPlacement | undefined;

const SLICE = 50;
const FINGERPRINT_LIMIT = 200_000;

export const UNASSIGNED_PLACEMENT: AgentPlacement = {
  group: null,
  desiredHash: null,
  desiredCommit: null,
};

function fingerprint(agent: Readonly<AgentState>, p: AgentPlacement): string {
  const h = createHash("sha1");
  h.update(
    JSON.stringify([
      agent.connected,
      agent.transport,
      agent.lastConnectedAt,
      agent.lastDisconnectedAt,
      agent.capabilities.toString(),
      agent.reportedHash,
      p.group,
      p.desiredHash,
      p.desiredCommit,
      p.bundle ?? null,
      p.lastCommand ?? null,
      p.unauthorizedGroup ?? null,
      p.revoked ?? null,
    ]),
  );
  const fields = [
    "description",
    "health",
    "effectiveConfig",
    "remoteConfigStatus",
    "packageStatuses",
    "connectionSettingsStatus",
    "availableComponents",
  ] as const;
  for (const field of fields) {
    const bytes = agent.encoded[field];
    h.update(field).update(bytes ? String(bytes.length) : "-");
    if (bytes) h.update(bytes);
  }
  return h.digest("hex");
}

export class AgentRecorder {
  readonly #store: PendingStore;
  readonly #placement: Placement;
  readonly #log: StatusLogger;
  readonly #renderer: AgentRenderer;
  readonly #queue = new Map<string, Readonly<AgentState>>();
  readonly #parked = new Map<string, Readonly<AgentState>>();
  readonly #fingerprints = new Map<string, string>();
  readonly #backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
  #draining?: Promise<void>;
  #retry?: NodeJS.Timeout;
  #closed = false;
  /** Files recorded (changed in Redis) since start. */
  recorded = 0;

  constructor(
    store: PendingStore,
    placement: Placement,
    log: StatusLogger,
    options: AgentStatusOptions = {},
  ) {
    this.#store = store;
    this.#placement = placement;
    this.#log = log;
    this.#renderer = new AgentRenderer(options);
  }

  /** Queues an agent; the returned promise settles when the queue has drained. */
  record(agent: Readonly<AgentState>): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#queue.set(agent.instanceUid, agent);
    return this.#drain();
  }

  /** Waits until every queued agent is in Redis (or parked). */
  async settled(): Promise<void> {
    while (this.#draining || (this.#queue.size > 0 && !this.#retry)) await this.#drain();
  }

  /** Queues the parked agents again (the desired state became known). */
  retryParked(): void {
    for (const [uid, agent] of this.#parked) this.#queue.set(uid, agent);
    this.#parked.clear();
    void this.#drain();
  }

  /** Forgets what was recorded (after losing the writer role or a Redis reset). */
  forget(uid?: string): void {
    if (uid === undefined) this.#fingerprints.clear();
    else this.#fingerprints.delete(uid);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    void this.#renderer.close();
  }

  /**
   * Renders agents and records them now, dropping records of agents an event recorded after
   * `notBefore` (a reconcile from state read at that time). Resolves how many files changed.
   */
  async recordNow(
    agents: ReadonlyArray<Readonly<AgentState>>,
    notBefore?: RedisMicros,
  ): Promise<number> {
    const jobs: RenderJob[] = [];
    const jobPrints: string[] = [];
    for (const agent of agents) {
      const job = this.#prepare(agent);
      if (job) {
        jobs.push(job.job);
        jobPrints.push(job.print);
      }
    }
    // Parsing and redacting effective configs is the heavy part: off the event loop.
    const results = await this.#renderer.render(jobs);
    const records: AgentRecord[] = [];
    const prints: Array<[string, string]> = [];
    results.forEach((result, i) => {
      const job = jobs[i] as RenderJob;
      if ("error" in result) {
        this.#log.error(
          { err: new Error(result.error), uid: job.uid },
          "status: the agent's status file cannot be written",
        );
        return;
      }
      records.push({ uid: job.uid, path: job.path, content: result.content, facts: result.facts });
      prints.push([job.uid, jobPrints[i] as string]);
    });
    const changed = await this.#store.record(records, notBefore);
    if (this.#fingerprints.size > FINGERPRINT_LIMIT) this.#fingerprints.clear();
    for (const [uid, print] of prints) this.#fingerprints.set(uid, print);
    this.recorded += changed;
    return changed;
  }

  /** Places the agent and decides whether its file must be rendered again. */
  #prepare(agent: Readonly<AgentState>): { job: RenderJob; print: string } | undefined {
    const uid = agent.instanceUid;
    let placement: AgentPlacement | undefined;
    try {
      placement = this.#placement(agent);
    } catch (err) {
      this.#log.warn({ err, uid }, "status: placing the agent failed; listed as unassigned");
      placement = UNASSIGNED_PLACEMENT;
    }
    if (!placement) {
      this.#parked.set(uid, agent);
      return undefined;
    }
    if (placement.group !== null && !isGroupName(placement.group)) placement = UNASSIGNED_PLACEMENT;
    const print = fingerprint(agent, placement);
    if (this.#fingerprints.get(uid) === print) return undefined;
    let path: string;
    try {
      path = agentFilePath(placement.group, uid);
    } catch (err) {
      this.#log.error({ err, uid }, "status: the agent's status file cannot be written");
      return undefined;
    }
    return { job: { uid, path, placement, agent: snapshot(agent) }, print };
  }

  #drain(): Promise<void> {
    this.#draining ??= (async () => {
      await new Promise<void>((r) => setImmediate(r));
      try {
        while (this.#queue.size > 0 && !this.#closed) {
          const slice: Array<Readonly<AgentState>> = [];
          for (const [uid, agent] of this.#queue) {
            slice.push(agent);
            this.#queue.delete(uid);
            if (slice.length >= SLICE) break;
          }
          try {
            await this.recordNow(slice);
            this.#backoff.reset();
          } catch (err) {
            for (const a of slice)
              if (!this.#queue.has(a.instanceUid)) this.#queue.set(a.instanceUid, a);
            const delay = this.#backoff.next();
            this.#log.warn({ err, retryInMs: delay }, "status: recording agents failed; retrying");
            clearTimeout(this.#retry);
            this.#retry = setTimeout(() => {
              this.#retry = undefined;
              void this.#drain();
            }, delay);
            this.#retry.unref();
            return;
          }
          await new Promise<void>((r) => setImmediate(r));
        }
      } finally {
        this.#draining = undefined;
      }
    })();
    return this.#draining;
  }
}
