/**
 * Rendering of agents' status files off the event loop. Parsing and redacting an agent's
 * effective config and writing it as YAML costs up to seconds for the largest reports an
 * agent may send (--max-config-bytes); done on the main thread it would freeze the OpAMP
 * port and the admin API meanwhile. So renders run in worker threads (render-worker.ts; as
 * many as requests in flight need, bounded by the cores), a slice of agents per message, at flush time (agent-recorder.ts); the
 * main thread only copies each agent's stored bytes over, and gets back each file's pending
 * entry ready for Redis. Where no worker can run, rendering falls back to this thread.
 *
 * Concurrency: any number of requests may be in flight, each answered by one worker. A worker that
 * dies fails the requests it held (the flush fails, its agents stay dirty and are rendered
 * by the next one) and is replaced on next use.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import {
  type AgentState,
  encodeSubMessage,
  REPORT_FIELDS,
  type ReportField,
} from "../opamp/index.js";
import type { AgentPlacement, AgentStatusOptions } from "./agent-status.js";

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
  for (const field of Object.keys(REPORT_FIELDS) as ReportField[]) {
    const value = agent[field];
    const bytes =
      agent.encoded[field] ??
      (value ? encodeSubMessage(REPORT_FIELDS[field], value as object) : undefined);
    if (bytes) out[field] = bytes;
  }
  return out;
}

interface Pending {
  resolve(results: RenderResult[]): void;
  reject(err: Error): void;
}

/** One worker thread and the requests it holds. */
interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

/**
 * Worker threads at most: one per core, up to 4 (rendering is CPU-bound; a first flush of
 * 10,000 agents keeps them all busy, a 100-agent flush uses one).
 */
export const MAX_RENDER_WORKERS = Math.max(1, Math.min(4, availableParallelism()));

/**
 * A renderer backed by up to `MAX_RENDER_WORKERS` worker threads, started on demand: a
 * request goes to an idle worker, else a new one is started while below the bound, else to
 * the worker holding the fewest requests. See the file comment.
 */
export class AgentRenderer {
  readonly #options: AgentStatusOptions;
  readonly #max: number;
  #slots: Slot[] = [];
  #nextId = 1;

  /** `maxWorkers`: defaults to MAX_RENDER_WORKERS. */
  constructor(options: AgentStatusOptions = {}, maxWorkers = MAX_RENDER_WORKERS) {
    this.#options = options;
    this.#max = Math.max(1, maxWorkers);
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
    const id = this.#nextId++;
    return new Promise<RenderResult[]>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      if (slot.pending.size === 1) slot.worker.ref();
      // The Redactor instance stays here; the worker rebuilds it from the key.
      const { redactor: _, ...options } = this.#options;
      slot.worker.postMessage({ id, jobs, options });
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
      worker = new Worker(new URL("./render-worker.js", import.meta.url));
    } catch {
      return undefined;
    }
    const slot: Slot = { worker, pending: new Map() };
    worker.unref(); // only held while requests are in flight
    worker.on("message", (m: { id: number; results: RenderResult[] }) => {
      const p = slot.pending.get(m.id);
      slot.pending.delete(m.id);
      if (slot.pending.size === 0) worker.unref();
      p?.resolve(m.results);
    });
    const fail = (err: Error) => {
      this.#slots = this.#slots.filter((s) => s !== slot);
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`status render worker exited (${code})`)));
    this.#slots.push(slot);
    return slot;
  }

  /** Stops the workers (pending renders fail). Idempotent. */
  async close(): Promise<void> {
    const slots = this.#slots;
    this.#slots = [];
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
