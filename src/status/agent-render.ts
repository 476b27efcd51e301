/**
 * Rendering of agents' status files off the event loop. Parsing and redacting an agent's
 * effective config and writing it as YAML costs up to seconds for the largest reports an
 * agent may send (--max-config-bytes); done on the main thread it would freeze the OpAMP
 * port and the admin API meanwhile. So renders run in one worker thread
 * (render-worker.ts), a slice of agents per message, at flush time (agent-recorder.ts); the
 * main thread only copies each agent's stored bytes over, and gets back each file's pending
 * entry ready for Redis. Where no worker can run, rendering falls back to this thread.
 *
 * Concurrency: requests are answered in order; any number may be in flight. A worker that
 * dies fails the requests it held (the flush fails, its agents stay dirty and are rendered
 * by the next one) and is replaced on next use.
 */
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

/** A renderer backed by one worker thread; see the file comment. */
export class AgentRenderer {
  readonly #options: AgentStatusOptions;
  #worker: Worker | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();

  constructor(options: AgentStatusOptions = {}) {
    this.#options = options;
  }

  /** Renders `jobs`; resolves with one result per job, in order. */
  async render(jobs: readonly RenderJob[]): Promise<RenderResult[]> {
    if (jobs.length === 0) return [];
    const worker = this.#start();
    if (!worker) {
      const { renderJobs } = await import("./render-jobs.js");
      return renderJobs(jobs, this.#options);
    }
    const id = this.#nextId++;
    return new Promise<RenderResult[]>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (this.#pending.size === 1) worker.ref();
      // The Redactor instance stays here; the worker rebuilds it from the key.
      const { redactor: _, ...options } = this.#options;
      worker.postMessage({ id, jobs, options });
    });
  }

  /**
   * Starts the worker now (idempotent), so its start-up (module loading, schema compiling)
   * is not paid by the first flush.
   */
  warm(): void {
    this.#start();
  }

  #start(): Worker | undefined {
    if (this.#worker) return this.#worker;
    let worker: Worker;
    try {
      worker = new Worker(new URL("./render-worker.js", import.meta.url));
    } catch {
      return undefined;
    }
    worker.unref(); // only held while requests are in flight
    worker.on("message", (m: { id: number; results: RenderResult[] }) => {
      const p = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      if (this.#pending.size === 0) worker.unref();
      p?.resolve(m.results);
    });
    const fail = (err: Error) => {
      if (this.#worker === worker) this.#worker = undefined;
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`status render worker exited (${code})`)));
    this.#worker = worker;
    return worker;
  }

  /** Stops the worker (pending renders fail). Idempotent. */
  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) await worker.terminate();
  }
}
