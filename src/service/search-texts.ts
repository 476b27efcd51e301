/**
 * The search index's texts (search-text.ts), computed off the event loop. Redacting an
 * attribute value the secret rules have not seen costs ~20–35 µs, and a new agent's values are
 * mostly such (host names, instance ids): computed on the main thread at each description
 * change, they were ~8 % of its CPU while agents connected (bench:serve profile, issue #15).
 * So the index hands each write window's agents to one worker thread (search-text-worker.ts),
 * started on first use and stopped after `idleMs` without work; it holds the redaction
 * modules (~20 MB) only while a fleet's descriptions change.
 *
 * Nothing is lost to the worker: where it cannot start, dies, or was closed, a request is
 * answered here, with the same key (so with the same markers); after a failure no worker is
 * started again for `idleMs`. Concurrency: any number of requests may be in flight; each
 * resolves with one text per subject, in order.
 */
import { Worker } from "node:worker_threads";
import { attributeView } from "../api/view-attribute.js";
import { workerScript } from "../package-files.js";
import { Marker, Redactor } from "../redact/index.js";
import { type SearchSubject, searchTextOf } from "./search-text.js";

interface Pending {
  resolve(texts: string[]): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  idle?: NodeJS.Timeout;
  /** Stopped on purpose (idle, close): its exit is no failure. */
  stopping?: boolean;
}

export interface SearchTextsOptions {
  /** A worker with no request for this long stops, ms; also the pause after a failure. */
  idleMs?: number;
  /** The worker's entry module (tests point it elsewhere). */
  workerUrl?: URL;
}

export class SearchTexts {
  readonly #key: Uint8Array;
  readonly #redactor: Redactor;
  readonly #idleMs: number;
  readonly #workerUrl: URL;
  #slot: Slot | undefined;
  #nextId = 1;
  #closed = false;
  /** No worker is started before this time (ms since the epoch): one failed. */
  #pauseUntil = 0;
  /** Texts computed by the worker and on this thread, since start. */
  readonly stats = { inWorker: 0, here: 0 };

  /** `key`: the fleet's redaction key (the markers the API and the status branch show). */
  constructor(
    key: Uint8Array,
    {
      idleMs = 60_000,
      workerUrl = workerScript("service/search-text-worker.js"),
    }: SearchTextsOptions = {},
  ) {
    this.#key = key;
    this.#redactor = new Redactor(new Marker(key));
    this.#idleMs = idleMs;
    this.#workerUrl = workerUrl;
  }

  /** Worker threads running now (0 or 1). */
  get workers(): number {
    return this.#slot ? 1 : 0;
  }

  /** The text of each subject, in order. Never rejects (see the file comment). */
  async texts(subjects: readonly SearchSubject[]): Promise<string[]> {
    if (subjects.length === 0) return [];
    const slot = this.#closed || Date.now() < this.#pauseUntil ? undefined : this.#use();
    if (slot) {
      try {
        const texts = await this.#ask(slot, subjects);
        this.stats.inWorker += texts.length;
        return texts;
      } catch {
        // The worker died or was closed with this request: answered here instead.
      }
    }
    this.stats.here += subjects.length;
    return subjects.map((s) => searchTextOf(s, (k, v) => attributeView(this.#redactor, k, v)));
  }

  #ask(slot: Slot, subjects: readonly SearchSubject[]): Promise<string[]> {
    const id = this.#nextId++;
    return new Promise<string[]>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      clearTimeout(slot.idle);
      if (slot.pending.size === 1) slot.worker.ref();
      slot.worker.postMessage({ id, key: this.#key, subjects });
    });
  }

  #use(): Slot | undefined {
    if (this.#slot) return this.#slot;
    let worker: Worker;
    try {
      worker = new Worker(this.#workerUrl);
    } catch {
      this.#pauseUntil = Date.now() + this.#idleMs;
      return undefined;
    }
    const slot: Slot = { worker, pending: new Map() };
    worker.unref(); // only held while requests are in flight
    worker.on("message", (m: { id: number; texts: string[] }) => {
      const p = slot.pending.get(m.id);
      slot.pending.delete(m.id);
      if (slot.pending.size === 0) {
        worker.unref();
        this.#stopWhenIdle(slot);
      }
      p?.resolve(m.texts);
    });
    const fail = (err: Error) => {
      clearTimeout(slot.idle);
      if (this.#slot === slot) this.#slot = undefined;
      if (!slot.stopping) this.#pauseUntil = Date.now() + this.#idleMs;
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`search text worker exited (${code})`)));
    this.#slot = slot;
    return slot;
  }

  #stopWhenIdle(slot: Slot): void {
    clearTimeout(slot.idle);
    slot.idle = setTimeout(() => {
      if (slot.pending.size > 0) return;
      // Out of use first: a request from now on starts another worker.
      if (this.#slot === slot) this.#slot = undefined;
      slot.stopping = true;
      void slot.worker.terminate();
    }, this.#idleMs);
    slot.idle.unref();
  }

  /** Stops the worker; later requests, and those in flight, are answered here. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const slot = this.#slot;
    this.#slot = undefined;
    if (!slot) return;
    clearTimeout(slot.idle);
    slot.stopping = true;
    await slot.worker.terminate();
  }
}
