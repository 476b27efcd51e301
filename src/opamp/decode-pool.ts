/**
 * Prepares large AgentToServer messages (prepare.ts: decode, limits, per-field encoding,
 * health meaning) in worker threads, so that an agent sending maximal reports does not hold
 * the event loop, and with it every other agent and the admin API, for the tens of
 * milliseconds one such message costs. Messages under `thresholdBytes` are prepared on the
 * calling thread: a worker round trip costs more than they do.
 *
 * Bounds: `size` workers; at most `maxQueuedBytes` of messages wait for them (beyond that,
 * `prepare` rejects with DecoderBusyError and the agent is answered UNAVAILABLE, to retry).
 * Order: results of one worker come back in the order its jobs were sent; callers that need
 * order between messages (one WebSocket's) await each before sending the next.
 *
 * Failure: a worker that dies (out of its `maxWorkerHeapMb` on a hostile message, say) fails
 * the jobs it held (UNAVAILABLE for their agents) and is replaced on next use. Where no worker
 * can start, everything is prepared here.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { workerScript } from "../package-files.js";
import type { AgentLimits } from "./agent-limits.js";
import { REPORT_FIELDS, type ReportField } from "./agent-state.js";
import { decodeSubMessage } from "./codec.js";
import { MalformedMessageError, OpampError } from "./errors.js";
import type { MessageDecoder } from "./message-handler.js";
import type { AgentDescription } from "./messages.js";
import { type PreparedMessage, prepareMessage } from "./prepare.js";

export interface DecodePoolOptions {
  limits: AgentLimits;
  /** Messages of at least this many bytes go to a worker. Default 64 KiB. */
  thresholdBytes?: number;
  /** Worker threads. Default: available cores - 1, at least 1, at most 4. */
  size?: number;
  /** Bytes of messages waiting for (or in) workers beyond which prepare() refuses. Default 64 MiB. */
  maxQueuedBytes?: number;
  /**
   * Heap of one worker, in MiB (V8 old generation). A message whose decoded form would not fit
   * ends the worker instead of the process; it is answered UNAVAILABLE. Default 512.
   */
  maxWorkerHeapMb?: number;
}

/** The decode workers are saturated: the agent is asked to retry. */
export class DecoderBusyError extends OpampError {
  constructor(queuedBytes: number, limit: number) {
    super("OPAMP_DECODER_BUSY", `decode queue holds ${queuedBytes} bytes (limit ${limit})`, {
      queuedBytes,
      limit,
    });
  }
}

/** What a worker answers for one job. */
export type DecodeReply =
  | { id: number; prepared: PreparedMessage }
  | { id: number; malformed: string }
  | { id: number; failed: string };

interface Job {
  bytes: number;
  resolve(p: PreparedMessage): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Job>;
}

export class DecodePool implements MessageDecoder {
  readonly #limits: AgentLimits;
  readonly #threshold: number;
  readonly #size: number;
  readonly #maxQueued: number;
  readonly #heapMb: number;
  readonly #slots: (Slot | undefined)[];
  #queued = 0;
  #nextId = 1;
  #noWorkers = false;
  #closed = false;
  /** Counters since start. */
  readonly stats = { offloaded: 0, inline: 0, busy: 0, workerFailures: 0 };

  constructor(options: DecodePoolOptions) {
    this.#limits = options.limits;
    this.#threshold = options.thresholdBytes ?? 64 * 1024;
    this.#size = Math.max(1, options.size ?? Math.min(4, availableParallelism() - 1));
    this.#maxQueued = options.maxQueuedBytes ?? 64 * 1024 * 1024;
    this.#heapMb = options.maxWorkerHeapMb ?? 512;
    this.#slots = new Array(this.#size).fill(undefined);
  }

  prepare(bytes: Uint8Array): PreparedMessage | Promise<PreparedMessage> {
    if (bytes.length < this.#threshold || this.#noWorkers || this.#closed) {
      this.stats.inline++;
      return prepareMessage(bytes, this.#limits);
    }
    if (this.#queued + bytes.length > this.#maxQueued) {
      this.stats.busy++;
      return Promise.reject(new DecoderBusyError(this.#queued, this.#maxQueued));
    }
    const slot = this.#leastBusy();
    if (!slot) {
      this.stats.inline++;
      return prepareMessage(bytes, this.#limits);
    }
    this.stats.offloaded++;
    const id = this.#nextId++;
    // An exact copy whose buffer is handed over: the received bytes may be a view of a larger
    // buffer, and the copy (a memcpy) is far cheaper than the decode it saves.
    const copy = new Uint8Array(bytes);
    this.#queued += bytes.length;
    return new Promise<PreparedMessage>((resolve, reject) => {
      slot.jobs.set(id, { bytes: bytes.length, resolve, reject });
      if (slot.jobs.size === 1) slot.worker.ref();
      slot.worker.postMessage({ id, bytes: copy }, [copy.buffer]);
    });
  }

  /** Stops the workers; jobs in flight fail. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const workers = this.#slots.filter((s): s is Slot => s !== undefined).map((s) => s.worker);
    this.#slots.fill(undefined);
    await Promise.all(workers.map((w) => w.terminate()));
  }

  #leastBusy(): Slot | undefined {
    let best: Slot | undefined;
    for (let i = 0; i < this.#size; i++) {
      const slot = this.#slots[i] ?? this.#start(i);
      if (!slot) return undefined;
      if (!best || slot.jobs.size < best.jobs.size) best = slot;
    }
    return best;
  }

  #start(index: number): Slot | undefined {
    let worker: Worker;
    try {
      worker = new Worker(workerScript("opamp/decode-worker.js"), {
        workerData: { limits: this.#limits },
        resourceLimits: { maxOldGenerationSizeMb: this.#heapMb },
      });
    } catch {
      this.#noWorkers = true;
      return undefined;
    }
    worker.unref(); // held only while jobs are in flight
    const slot: Slot = { worker, jobs: new Map() };
    worker.on("message", (m: DecodeReply) => {
      const job = slot.jobs.get(m.id);
      if (!job) return;
      slot.jobs.delete(m.id);
      this.#queued -= job.bytes;
      if (slot.jobs.size === 0) worker.unref();
      if ("prepared" in m) job.resolve(adopt(m.prepared));
      else if ("malformed" in m) job.reject(new MalformedMessageError(m.malformed));
      else job.reject(new Error(`decode worker failed: ${m.failed}`));
    });
    const fail = (err: Error) => {
      if (this.#slots[index] === slot) {
        this.#slots[index] = undefined;
        this.stats.workerFailures++;
      }
      for (const job of slot.jobs.values()) {
        this.#queued -= job.bytes;
        job.reject(err);
      }
      slot.jobs.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`decode worker exited (${code})`)));
    this.#slots[index] = slot;
    return slot;
  }
}

/**
 * A prepared message as it arrives from a worker: bytes as Buffers over the transferred
 * memory, and the description decoded here (the identity check compares it; it is small
 * next to the effective config and health, which stay encoded until merged).
 */
function adopt(prepared: PreparedMessage): PreparedMessage {
  const encoded: PreparedMessage["encoded"] = {};
  for (const field of Object.keys(prepared.encoded) as ReportField[]) {
    const bytes = prepared.encoded[field];
    if (bytes) encoded[field] = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  const message = { ...prepared.message };
  message.instanceUid = Buffer.from(message.instanceUid);
  if (encoded.description)
    message.agentDescription = decodeSubMessage<AgentDescription>(
      REPORT_FIELDS.description,
      encoded.description,
    );
  return { ...prepared, message, encoded };
}
