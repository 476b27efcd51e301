/**
 * Rendering of agents' status files off the event loop (and a big flush's blob pack:
 * packBlobs). Parsing and redacting an agent's effective config and writing it as YAML
 * costs up to seconds for the largest reports an
 * agent may send (--max-config-bytes); done on the main thread it would freeze the OpAMP
 * port and the admin API meanwhile. So renders run in worker threads (render-worker.ts; as
 * many as requests in flight need, up to MAX_RENDER_WORKERS), a slice of agents per message,
 * at flush time (agent-recorder.ts); the main thread only copies each agent's stored bytes
 * over, and gets back each file's pending entry ready for Redis. Where no worker can run,
 * rendering falls back to this thread.
 *
 * Concurrency: any number of requests may be in flight, each answered by one worker. A worker that
 * dies fails the requests it held (the flush fails, its agents stay dirty and are rendered
 * by the next one) and is replaced on next use. A worker that held no request for `idleMs`
 * is stopped (sooner after a big flush: RENDER_WORKER_RECYCLE_AFTER); a request never goes
 * to a stopping worker (it leaves the pool first).
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import {
  type AgentState,
  encodeSubMessage,
  REPORT_FIELD_NAMES,
  REPORT_FIELDS,
  type ReportField,
} from "../opamp/index.js";
import { workerScript } from "../package-files.js";
import type { AgentPlacement, AgentStatusOptions } from "./agent-status.js";
import { PackFailedError } from "./errors.js";
// Not through git-store/index.ts, which loads isomorphic-git (the worker imports this too).
import { type PackBlob, writeBlobPack } from "./git-store/blob-pack.js";

/** One agent to render: what the worker needs to rebuild its state and place it. */
export interface RenderJob {
  uid: string;
  path: string;
  placement: AgentPlacement;
  agent: AgentSnapshot;
}

/**
 * The result of one job: the file's pending entry for Redis (text and facts as JSON, and the
 * text's digest: encoded in the worker, so the event loop never copies or hashes the text),
 * or why it could not be rendered.
 */
export type RenderResult = { payload: Uint8Array; digest: string } | { error: string };

/** An AgentState without decoded values: scalars and the stored bytes of each report field. */
export type AgentSnapshot = Omit<AgentState, ReportField | "encoded"> & {
  encoded: Partial<Record<ReportField, Uint8Array>>;
};

/** The snapshot of `agent` sent to the worker (decoded values are rebuilt from the bytes). */
export function snapshot(agent: Readonly<AgentState>): AgentSnapshot {
  return {
    instanceUid: agent.instanceUid,
    sequenceNum: agent.sequenceNum,
    capabilities: agent.capabilities,
    transport: agent.transport,
    connected: agent.connected,
    lastConnectedAt: agent.lastConnectedAt,
    lastDisconnectedAt: agent.lastDisconnectedAt,
    lastSeenAt: agent.lastSeenAt,
    reportedHash: agent.reportedHash,
    offeredSettingsHash: agent.offeredSettingsHash,
    credential: agent.credential,
    scopes: agent.scopes,
    encoded: encodedFields(agent),
  };
}

/** The stored bytes of each report field; a field set without them is encoded here. */
function encodedFields(agent: Readonly<AgentState>): AgentSnapshot["encoded"] {
  const out: AgentSnapshot["encoded"] = {};
  for (const field of REPORT_FIELD_NAMES) {
    const stored = agent.encoded[field];
    if (stored) {
      out[field] = stored;
      continue;
    }
    // Read only when no bytes are stored: the decoded fields are getters that decode the
    // bytes on first read (agent-state.ts), work the worker does again.
    const value = agent[field];
    if (value) out[field] = encodeSubMessage(REPORT_FIELDS[field], value as object);
  }
  return out;
}

/** A render request to a worker. */
export interface RenderRequest {
  id: number;
  jobs: RenderJob[];
  options: AgentStatusOptions;
}

/** A blob pack request to a worker (packBlobs). */
export interface BlobPackRequest {
  id: number;
  pack: { packDir: string; blobs: readonly PackBlob[]; maxDepth: number };
}

/** What a worker answers: a render's results, a pack's name, or why the pack failed. */
type WorkerReply =
  | { id: number; results: RenderResult[] }
  | { id: number; name: string }
  | { id: number; error: string };

interface Pending {
  resolve(reply: WorkerReply): void;
  reject(err: Error): void;
}

/** One worker thread and the requests it holds. */
interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Stops the worker once it has held no request for `idleMs` (or `recycleIdleMs`). */
  idle?: NodeJS.Timeout;
  /** Agents it rendered since it started. */
  rendered: number;
}

/**
 * Worker threads at most: one per core but the event loop's, at least 1, up to 4 (rendering
 * is CPU-bound; a first flush of 10,000 agents keeps them all busy, a 100-agent flush uses
 * one). Each worker is a V8 isolate of its own that compiles the render path and grows a heap
 * of its own: on 2 cores a second worker cost more than it gave (docs/performance.md,
 * "Where a new agent's CPU goes").
 */
export const MAX_RENDER_WORKERS = Math.max(1, Math.min(4, availableParallelism() - 1));

/**
 * A worker that rendered nothing for this long is stopped, ms. Each holds ~35 MB (its heap,
 * the YAML, schema and secret-detection modules): a replica that is not the status writer,
 * or a fleet whose status files stay unchanged, keeps none; the next render starts one
 * again (~0.5 s of its CPU off the event loop). Six status intervals by default.
 */
export const RENDER_WORKER_IDLE_MS = 60_000;

/**
 * A worker that rendered this many agents since it started is stopped once idle for
 * `RENDER_WORKER_RECYCLE_IDLE_MS` instead. A big flush leaves its isolate holding the
 * garbage of the work: measured after a first flush of 3,000 agents, its heap 16.9 → 49.5
 * MB and its external memory (the jobs' and results' buffers) 3.9 → 28.9 MB, ~19 KB per
 * agent, which an idle isolate never collects; stopping it gives all of it back (serve's RSS
 * 191 against 252 MB with 3,000 agents, docs/performance.md). Starting the next costs
 * ~0.2 s of its CPU, small next to rendering this many (~0.5–1.5 ms each).
 */
export const RENDER_WORKER_RECYCLE_AFTER = 500;
/** See RENDER_WORKER_RECYCLE_AFTER, ms. */
export const RENDER_WORKER_RECYCLE_IDLE_MS = 2_000;

/** When render workers stop (defaults: the constants above). */
export interface RenderWorkerLifetime {
  /** A worker idle this long stops, ms. */
  idleMs?: number;
  /** Agents rendered by one worker after which it stops sooner once idle. */
  recycleAfter?: number;
  /** How soon, ms. */
  recycleIdleMs?: number;
}

/**
 * A renderer backed by up to `MAX_RENDER_WORKERS` worker threads, started on demand: a
 * request goes to an idle worker, else a new one is started while below the bound, else to
 * the worker holding the fewest requests. See the file comment.
 */
export class AgentRenderer {
  readonly #options: AgentStatusOptions;
  readonly #max: number;
  readonly #lifetime: Required<RenderWorkerLifetime>;
  #slots: Slot[] = [];
  #nextId = 1;

  /** `maxWorkers`: at most this many threads; `lifetime`: when an idle thread stops. */
  constructor(
    options: AgentStatusOptions = {},
    maxWorkers = MAX_RENDER_WORKERS,
    {
      idleMs = RENDER_WORKER_IDLE_MS,
      recycleAfter = RENDER_WORKER_RECYCLE_AFTER,
      recycleIdleMs = RENDER_WORKER_RECYCLE_IDLE_MS,
    }: RenderWorkerLifetime = {},
  ) {
    this.#options = options;
    this.#max = Math.max(1, maxWorkers);
    this.#lifetime = { idleMs, recycleAfter, recycleIdleMs: Math.min(recycleIdleMs, idleMs) };
  }

  /** Worker threads running now (started on demand, stopped when idle). */
  get workers(): number {
    return this.#slots.length;
  }

  /** Worker threads that can run at once: how many requests are worth keeping in flight. */
  get parallelism(): number {
    return this.#max;
  }

  /** Renders `jobs`; resolves with one result per job, in order. */
  async render(jobs: readonly RenderJob[]): Promise<RenderResult[]> {
    if (jobs.length === 0) return [];
    const slot = this.#pick();
    if (!slot) {
      const { renderJobs } = await import("./render-jobs.js");
      return renderJobs(jobs, this.#options);
    }
    // The Redactor instance stays here; the worker rebuilds it from the key.
    const { redactor: _, ...options } = this.#options;
    slot.rendered += jobs.length;
    const reply = await this.#ask(slot, (id) => ({ id, jobs: [...jobs], options }));
    if (!("results" in reply))
      throw new Error("the render worker answered a render without results");
    return reply.results;
  }

  /**
   * Writes a big flush's new blobs into one verified pack on a worker (git-store blob-pack.ts:
   * deltas, deflate and the read-back, ~200 ms of CPU per 1,000 agent files, off the event
   * loop, on a thread the flush started anyway); resolves with the pack's name. A pack that
   * fails rejects with PackFailedError; where no worker can run, it is written here.
   */
  async packBlobs(packDir: string, blobs: readonly PackBlob[], maxDepth: number): Promise<string> {
    const slot = this.#pick();
    if (!slot) return writeBlobPack(packDir, blobs, maxDepth);
    const reply = await this.#ask(slot, (id) => ({ id, pack: { packDir, blobs, maxDepth } }));
    if ("name" in reply) return reply.name;
    throw new PackFailedError("error" in reply ? reply.error : "the render worker wrote no pack");
  }

  #ask(slot: Slot, request: (id: number) => RenderRequest | BlobPackRequest): Promise<WorkerReply> {
    const id = this.#nextId++;
    return new Promise<WorkerReply>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      clearTimeout(slot.idle);
      if (slot.pending.size === 1) slot.worker.ref();
      slot.worker.postMessage(request(id));
    });
  }

  /**
   * Starts one worker now (idempotent), so its start-up (module loading, schema compiling)
   * is not paid by the first flush.
   */
  warm(): void {
    if (this.#slots.length === 0) this.#start();
  }

  #pick(): Slot | undefined {
    const idle = this.#slots.find((s) => s.pending.size === 0);
    if (idle) return idle;
    if (this.#slots.length < this.#max) {
      const started = this.#start();
      if (started) return started;
    }
    let best: Slot | undefined;
    for (const s of this.#slots) if (!best || s.pending.size < best.pending.size) best = s;
    return best;
  }

  #start(): Slot | undefined {
    let worker: Worker;
    try {
      worker = new Worker(workerScript("status/render-worker.js"));
    } catch {
      return undefined;
    }
    const slot: Slot = { worker, pending: new Map(), rendered: 0 };
    worker.unref(); // only held while requests are in flight
    worker.on("message", (m: WorkerReply) => {
      const p = slot.pending.get(m.id);
      slot.pending.delete(m.id);
      if (slot.pending.size === 0) {
        worker.unref();
        this.#stopWhenIdle(slot);
      }
      p?.resolve(m);
    });
    const fail = (err: Error) => {
      clearTimeout(slot.idle);
      this.#slots = this.#slots.filter((s) => s !== slot);
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`status render worker exited (${code})`)));
    this.#slots.push(slot);
    this.#stopWhenIdle(slot); // a warmed worker no request reaches stops too
    return slot;
  }

  #idleDelay(slot: Slot): number {
    const { idleMs, recycleAfter, recycleIdleMs } = this.#lifetime;
    return slot.rendered >= recycleAfter ? recycleIdleMs : idleMs;
  }

  #stopWhenIdle(slot: Slot): void {
    clearTimeout(slot.idle);
    slot.idle = setTimeout(() => {
      if (slot.pending.size > 0) return;
      // Out of the pool first: a request from now on starts another worker.
      this.#slots = this.#slots.filter((s) => s !== slot);
      void slot.worker.terminate();
    }, this.#idleDelay(slot));
    slot.idle.unref();
  }

  /** Stops the workers (pending renders fail). Idempotent. */
  async close(): Promise<void> {
    const slots = this.#slots;
    this.#slots = [];
    for (const s of slots) clearTimeout(s.idle);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
