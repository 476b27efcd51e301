/**
 * `GET /api/v1/events`: server-sent events for the console. Each `changes` event is one
 * ChangeBatch (backend.ts: rollout groups, agents, served commit; batched by the backend, at
 * most one per 250 ms, from every replica). A comment line every 15 s keeps proxies from
 * closing an idle stream. The subscription ends when the client goes away, when the server
 * closes (`closeAll`), or when the credential it was opened with is no longer accepted
 * (`endRefused`, at a rotation of the admin tokens).
 *
 * Bounds: at most `maxStreams` (default 64) open streams; a further one is answered 503. A
 * stream whose client stops reading is ended once `maxPendingWrites` (default 16) events wait
 * behind it (the browser's EventSource reconnects and the console reloads the page's data).
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { AdminEnv } from "./admin-env.js";
import type { AdminBackend, ChangeBatch } from "./backend.js";
import { fail } from "./reply.js";

const KEEPALIVE_MS = 15_000;

export class EventStreams {
  readonly #backend: AdminBackend;
  /** Each open stream's end, with the request that opened it (its credential). */
  readonly #open = new Map<() => void, Context<AdminEnv>>();
  readonly #maxStreams: number;
  readonly #maxPendingWrites: number;

  constructor(backend: AdminBackend, { maxStreams = 64, maxPendingWrites = 16 } = {}) {
    this.#backend = backend;
    this.#maxStreams = maxStreams;
    this.#maxPendingWrites = maxPendingWrites;
  }

  /** Number of open streams. */
  get size(): number {
    return this.#open.size;
  }

  handler() {
    return (c: Context<AdminEnv>) => {
      if (this.#open.size >= this.#maxStreams)
        return fail(c, 503, "TOO_MANY_STREAMS", `${this.#maxStreams} event streams are open`);
      return streamSSE(c, async (stream) => {
        let end: () => void = () => {};
        const ended = new Promise<void>((resolve) => {
          end = resolve;
        });
        this.#open.set(end, c);
        let writing: Promise<void> = stream.writeSSE({ event: "hello", data: "{}" });
        let pending = 0;
        const send = (batch: ChangeBatch) => {
          if (++pending > this.#maxPendingWrites) return end(); // a client that does not read
          writing = writing
            .then(() => stream.writeSSE({ event: "changes", data: JSON.stringify(batch) }))
            .then(() => {
              pending--;
            })
            .catch(end);
        };
        const unsubscribe = this.#backend.subscribe(send);
        const keepalive = setInterval(() => {
          writing = writing.then(() => stream.write(": keepalive\n\n")).then(() => {}, end);
        }, KEEPALIVE_MS);
        stream.onAbort(end);
        try {
          await ended;
        } finally {
          clearInterval(keepalive);
          unsubscribe();
          this.#open.delete(end);
        }
      });
    };
  }

  /** Ends every open stream (at shutdown, so the server can close). */
  closeAll(): void {
    for (const end of [...this.#open.keys()]) end();
  }

  /**
   * Ends the streams whose opening request `allowed` refuses now (its bearer token or session
   * cookie was removed from the admin tokens) and returns how many.
   */
  endRefused(allowed: (c: Context<AdminEnv>) => boolean): number {
    let ended = 0;
    for (const [end, c] of [...this.#open]) {
      if (allowed(c)) continue;
      end();
      ended++;
    }
    return ended;
  }
}
