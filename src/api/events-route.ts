/**
 * `GET /api/v1/events`: server-sent events for the console. Each `changes` event is one
 * ChangeBatch (backend.ts: rollout groups, agents, served commit; batched by the backend, at
 * most one per 250 ms, from every replica). A comment line every 15 s keeps proxies from
 * closing an idle stream. The subscription ends when the client goes away or the server
 * closes (`closeAll`).
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { AdminEnv } from "./admin-env.js";
import type { AdminBackend, ChangeBatch } from "./backend.js";

const KEEPALIVE_MS = 15_000;

export class EventStreams {
  readonly #backend: AdminBackend;
  readonly #open = new Set<() => void>();

  constructor(backend: AdminBackend) {
    this.#backend = backend;
  }

  /** Number of open streams. */
  get size(): number {
    return this.#open.size;
  }

  handler() {
    return (c: Context<AdminEnv>) =>
      streamSSE(c, async (stream) => {
        let end: () => void = () => {};
        const ended = new Promise<void>((resolve) => {
          end = resolve;
        });
        this.#open.add(end);
        let writing: Promise<void> = stream.writeSSE({ event: "hello", data: "{}" });
        const send = (batch: ChangeBatch) => {
          writing = writing
            .then(() => stream.writeSSE({ event: "changes", data: JSON.stringify(batch) }))
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
  }

  /** Ends every open stream (at shutdown, so the server can close). */
  closeAll(): void {
    for (const end of [...this.#open]) end();
  }
}
