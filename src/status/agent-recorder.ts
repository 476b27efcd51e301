/**
 * Turns agent events into status changes: recording costs one Redis write per 20 ms window
 * (MARK_WINDOW_MS), rendering happens at flush time.
 *
 * `record(agent)` (any replica) only marks the agent dirty in Redis (dirty-agents.ts): the
 * uids marked in one window go out as one script call, each uid once, nothing is rendered,
 * so an agent's connect or report costs a few microseconds here. The status writer calls
 * `renderDirty()` at each flush: every dirty agent is rendered once from its state as the
 * agent source holds it then (the service: the live agent, else Redis), however many changes
 * it had since the last flush, and recorded in the pending store (pending-store.ts).
 * Rendering runs in worker threads (agent-render.ts) in slices of 50 agents, one Redis round
 * trip each, yielding to the event loop between slices; slices overlap, up to one per worker
 * plus one waiting for Redis.
 *
 * An agent is rendered again only when its inputs (reported sub-messages, connection state,
 * placement) changed since this process last rendered it (a fingerprint, forgotten when the
 * writer role is taken); Redis drops what equals the recorded content.
 *
 * Edge cases at render time:
 * - Placement `undefined` ("not known yet": no desired state before the first sync): the agent
 *   stays dirty and is rendered at a later flush.
 * - An agent whose state is gone from the source between its change and the flush (its Redis
 *   hash was deleted): its status file is removed from the branch, since the service no
 *   longer knows it (a file left behind would show it connected for good, and retention only
 *   removes disconnected agents).
 * - Without an agent source (single-process embeddings and tests), the recorder keeps the last
 *   recorded state of each dirty agent in memory and renders from it; a uid another process
 *   marked is unknown here and is skipped (its mark dropped).
 *
 * A mark Redis refused is queued again and retried with backoff; a render or record that
 * fails fails the flush, and the agents stay dirty.
 */
import { createHash } from "node:crypto";
import { Backoff } from "../backoff.js";
import type { AgentState } from "../opamp/index.js";
import { AgentRenderer, type RenderJob, snapshot } from "./agent-render.js";
import type { AgentPlacement, AgentStatusOptions } from "./agent-status.js";
import { DirtyAgents, type DirtyEntry } from "./dirty-agents.js";
import type { PackBlob } from "./git-store/index.js";
import type { StatusLogger } from "./logger.js";
import { agentFilePath, isGroupName } from "./paths.js";
import type { EncodedRecord, PendingStore } from "./pending-store.js";

export type Placement = (agent: Readonly<AgentState>) => AgentPlacement | undefined;

/** Where agent states come from at render time and for a reconcile (AgentStore fits). */
export interface AgentSource {
  list(): Promise<string[]>;
  /** The agent's current state; undefined when the service no longer knows it. */
  load(uid: string): Promise<Readonly<AgentState> | undefined>;
  /**
   * Called once per render slice (at most 50 uids) before its agents are loaded and placed:
   * the source may fetch what placement needs for them in one round trip. A throw fails the
   * flush (the agents stay dirty). Never concurrent: the slice's agents are loaded and placed
   * before the next slice's call (render slices overlap only after that).
   */
  beforeRender?(uids: readonly string[]): Promise<void>;
  /** The agents' status files were removed (gone from the source, or past retention). */
  forgotten?(uids: readonly string[]): Promise<void>;
}

const SLICE = 50;
/**
 * How long a first mark waits for others before they go to Redis together (ms). Rendering
 * happens at flush time (seconds apart), so the wait costs nothing a reader would see.
 */
const MARK_WINDOW_MS = 20;
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
  /** The dirty agents in Redis (read by the writer's retention sweep). */
  readonly dirty: DirtyAgents;
  readonly #store: PendingStore;
  readonly #placement: Placement;
  readonly #log: StatusLogger;
  readonly #renderer: AgentRenderer;
  readonly #source: AgentSource | undefined;
  /** Without a source: the last recorded state of each dirty agent. */
  readonly #memory = new Map<string, Readonly<AgentState>>();
  readonly #marks = new Set<string>();
  readonly #fingerprints = new Map<string, string>();
  readonly #backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
  #draining?: Promise<void>;
  /** The last slice's loading and placing (see #renderSlice). */
  #staging: Promise<unknown> = Promise.resolve();
  #retry?: NodeJS.Timeout;
  #closed = false;
  /** Files recorded (changed in Redis) since start. */
  recorded = 0;
  /** Agents rendered since start (a render that changed nothing counts too). */
  rendered = 0;

  /** `source`: see the file comment; without one, states are kept in memory until rendered. */
  constructor(
    store: PendingStore,
    placement: Placement,
    log: StatusLogger,
    options: AgentStatusOptions = {},
    source?: AgentSource,
  ) {
    this.#store = store;
    this.#placement = placement;
    this.#log = log;
    this.#source = source;
    this.#renderer = new AgentRenderer(options);
    this.dirty = new DirtyAgents(store.redis, store.keys.base);
  }

  /**
   * Marks an agent dirty; the returned promise settles when its mark is in Redis (within
   * MARK_WINDOW_MS and a round trip).
   */
  record(agent: Readonly<AgentState>): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (!this.#source) this.#memory.set(agent.instanceUid, agent);
    this.#marks.add(agent.instanceUid);
    return this.#drain();
  }

  /**
   * Marks agents dirty (a reconcile), with the marks of this window: many reconciles in one
   * window cost one script call, a uid queued twice is sent once.
   */
  mark(uids: readonly string[]): Promise<void> {
    if (this.#closed || uids.length === 0) return Promise.resolve();
    for (const uid of uids) this.#marks.add(uid);
    return this.#drain();
  }

  /** Waits until every recorded agent is marked in Redis (or its retry is scheduled). */
  async settled(): Promise<void> {
    while (this.#draining || (this.#marks.size > 0 && !this.#retry)) await this.#drain();
  }

  /** Forgets what was rendered (after taking the writer role, or a file removed). */
  forget(uid?: string): void {
    if (uid === undefined) this.#fingerprints.clear();
    else this.#fingerprints.delete(uid);
  }

  /** A big flush's blob pack, written on a render worker (AgentRenderer.packBlobs). */
  packBlobs(packDir: string, blobs: readonly PackBlob[], maxDepth: number): Promise<string> {
    return this.#renderer.packBlobs(packDir, blobs, maxDepth);
  }

  /** Starts the render worker ahead of the first flush (the status writer's start). */
  warm(): void {
    this.#renderer.warm();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    void this.#renderer.close();
  }

  /**
   * Renders every dirty agent once and records what changed (the status writer, at each
   * flush). Resolves how many files changed. Throws when Redis or the renderer failed; the
   * agents not rendered yet stay dirty. `between` runs after each slice (the writer renews its
   * lock there); what it throws stops the rendering and is thrown.
   */
  async renderDirty(between?: () => Promise<void>): Promise<number> {
    const entries = await this.dirty.read();
    let changed = 0;
    // Slices overlap (disjoint agents): while one waits for Redis, the next ones render, one
    // per worker thread. A failed slice stops new ones; those in flight finish first.
    const window = this.#renderer.parallelism + 1;
    const inFlight = new Set<Promise<void>>();
    let failure: { err: unknown } | undefined;
    for (let i = 0; i < entries.length && !failure; i += SLICE) {
      const slice = entries.slice(i, i + SLICE);
      const run: Promise<void> = this.#renderSlice(slice).then(
        async (n) => {
          changed += n;
          await between?.();
        },
        (err: unknown) => {
          failure ??= { err };
        },
      );
      const tracked = run.catch((err: unknown) => {
        failure ??= { err };
      });
      inFlight.add(tracked);
      void tracked.finally(() => inFlight.delete(tracked));
      if (inFlight.size >= window) await Promise.race(inFlight);
      // Between slices the OpAMP server and the admin API get the event loop.
      await new Promise<void>((r) => setImmediate(r));
    }
    await Promise.all(inFlight);
    this.recorded += changed;
    if (failure) throw failure.err;
    return changed;
  }

  async #load(uid: string): Promise<Readonly<AgentState> | undefined> {
    return this.#source ? this.#source.load(uid) : this.#memory.get(uid);
  }

  /** Loads and places a slice's agents: what to render, and what is done or gone. */
  async #stage(entries: readonly DirtyEntry[]) {
    await this.#source?.beforeRender?.(entries.map((e) => e.uid));
    const states = await Promise.all(entries.map((e) => this.#load(e.uid)));
    const jobs: RenderJob[] = [];
    const jobPrints: string[] = [];
    const done: DirtyEntry[] = [];
    const gone: string[] = [];
    entries.forEach((entry, i) => {
      const state = states[i];
      if (!state) {
        if (this.#source) gone.push(entry.uid);
        else this.#log.debug({ uid: entry.uid }, "status: agent unknown to this process");
        done.push(entry);
        return;
      }
      const prepared = this.#prepare(state);
      if (prepared === "parked") return;
      done.push(entry);
      if (prepared) {
        jobs.push(prepared.job);
        jobPrints.push(prepared.print);
      }
    });
    return { states, jobs, jobPrints, done, gone };
  }

  async #renderSlice(entries: readonly DirtyEntry[]): Promise<number> {
    // Loading and placing run one slice at a time, in order, though slices overlap: the
    // source's beforeRender may hold per-slice state (last commands) the next call replaces.
    const staged = this.#staging.then(() => this.#stage(entries));
    this.#staging = staged.catch(() => undefined);
    const { states, jobs, jobPrints, done, gone } = await staged;
    // Parsing and redacting effective configs is the heavy part: off the event loop.
    const results = await this.#renderer.render(jobs);
    this.rendered += jobs.length;
    const records: EncodedRecord[] = [];
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
      records.push({
        uid: job.uid,
        path: job.path,
        payload: result.payload,
        digest: result.digest,
      });
      prints.push([job.uid, jobPrints[i] as string]);
    });
    let changed = await this.#store.recordEncoded(records);
    if (gone.length > 0) {
      changed += await this.#store.removeAgents(gone);
      for (const uid of gone) this.#fingerprints.delete(uid);
      await this.#source?.forgotten?.(gone);
    }
    await this.dirty.clear(done);
    if (this.#fingerprints.size > FINGERPRINT_LIMIT) this.#fingerprints.clear();
    for (const [uid, print] of prints) this.#fingerprints.set(uid, print);
    if (!this.#source) {
      // A state recorded again meanwhile stays: its new mark is still dirty.
      const loaded = new Map(entries.map((e, i) => [e.uid, states[i]]));
      for (const { uid } of done)
        if (this.#memory.get(uid) === loaded.get(uid)) this.#memory.delete(uid);
    }
    return changed;
  }

  /** Places the agent and decides whether its file must be rendered again. */
  #prepare(agent: Readonly<AgentState>): { job: RenderJob; print: string } | "parked" | undefined {
    const uid = agent.instanceUid;
    let placement: AgentPlacement | undefined;
    try {
      placement = this.#placement(agent);
    } catch (err) {
      this.#log.warn({ err, uid }, "status: placing the agent failed; listed as unassigned");
      placement = UNASSIGNED_PLACEMENT;
    }
    if (!placement) return "parked";
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
      try {
        while (this.#marks.size > 0 && !this.#closed) {
          // Marks of one window go out together: an agent's connect, health and APPLIED
          // within it are one uid, and a connect burst is a script call per window.
          await new Promise<void>((r) => setTimeout(r, MARK_WINDOW_MS));
          if (this.#closed) return;
          const uids = [...this.#marks];
          this.#marks.clear();
          try {
            await this.dirty.mark(uids);
            this.#backoff.reset();
          } catch (err) {
            for (const uid of uids) this.#marks.add(uid);
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
        }
      } finally {
        this.#draining = undefined;
      }
    })();
    return this.#draining;
  }
}
