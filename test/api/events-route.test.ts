/**
 * The event stream's pending-write bound over real sockets: a client that stops reading (its
 * TCP window fills, then the server's writes wait) is ended once more than `maxPendingWrites`
 * batches wait behind it, while a client that reads on the same server keeps its stream.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { connect, type Socket } from "node:net";
import { test } from "node:test";
import { getRequestListener } from "@hono/node-server";
import { Hono } from "hono";
import type { ChangeBatch } from "../../src/api/backend.js";
import { EventStreams } from "../../src/api/events-route.js";
import { deferred } from "../helpers/teardown.js";
import { waitFor } from "../helpers/wait.js";
import { FakeBackend } from "./fake-backend.js";

const defer = deferred();
const PENDING = 4;

/** Opens GET /events on a raw socket; resolves once the stream's first event arrived. */
async function openStream(port: number): Promise<{ socket: Socket; tail: () => string }> {
  const socket = connect(port, "127.0.0.1");
  defer(() => socket.destroy());
  // The last bytes received (enough to hold one small event).
  let tail = "";
  socket.on("data", (d: Buffer) => {
    tail = (tail + d.toString("latin1")).slice(-4096);
  });
  socket.write("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  await waitFor("the hello event", () => tail.includes("event: hello"));
  return { socket, tail: () => tail };
}

test("a client that stops reading is ended after the pending bound; a reading one is not", async () => {
  const backend = new FakeBackend([]);
  const events = new EventStreams(backend, { maxPendingWrites: PENDING });
  const app = new Hono().get("/events", events.handler());
  const server = createServer(getRequestListener(app.fetch));
  server.listen(0, "127.0.0.1");
  defer(() => {
    events.closeAll();
    server.closeAllConnections();
    return new Promise((done) => server.close(done));
  });
  await new Promise((done) => server.once("listening", done));
  const { port } = server.address() as { port: number };
  const publish = (batch: ChangeBatch) => {
    // The listeners are the streams' own (FakeBackend.subscribe).
    for (const listener of listeners) listener(batch);
  };
  const listeners = new Set<(b: ChangeBatch) => void>();
  const subscribe = backend.subscribe.bind(backend);
  backend.subscribe = (listener) => {
    listeners.add(listener);
    const off = subscribe(listener);
    return () => {
      listeners.delete(listener);
      return off();
    };
  };

  const reader = await openStream(port);
  const stalled = await openStream(port);
  stalled.socket.pause(); // reads nothing more: the kernel buffers fill, then the server's writes wait
  assert.equal(events.size, 2);

  // 64 KiB batches until the stalled stream is ended: its buffers (a few MiB on loopback) fill
  // first, then PENDING more batches wait, and the next one ends it.
  const batch: ChangeBatch = {
    groups: ["g".repeat(64 * 1024)],
    agents: [],
    agentsOverflow: false,
    sync: false,
  };
  let sent = 0;
  await waitFor(
    "the stalled stream ended",
    () => {
      publish(batch);
      sent++;
      return events.size === 1;
    },
    { timeoutMs: 20_000, detail: () => `${sent} batches sent, ${events.size} streams open` },
  );
  assert.ok(sent > PENDING, `ended only after more than ${PENDING} batches (${sent})`);
  assert.equal(listeners.size, 1, "the stalled stream's subscription is gone");

  // The reader still gets what is published (after the backlog it is reading).
  publish({ groups: ["after-the-end"], agents: [], agentsOverflow: false, sync: false });
  await waitFor("the reader's stream goes on", () => reader.tail().includes("after-the-end"));
  assert.equal(events.size, 1);
});
