/**
 * The benchmarks' /healthz poller survives the service closing under it (bench:hostile crashed
 * with an unhandled fetch rejection when a status flush failed and the service closed).
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { pollHealthz } from "../../bench/healthz-poller.js";
import { waitFor } from "../helpers/wait.js";

test("a server that goes away counts as failed polls, not a crash", async (t) => {
  const server = createServer((_req, res) => res.end("ok"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const rejections: unknown[] = [];
  const onRejection = (err: unknown) => rejections.push(err);
  process.on("unhandledRejection", onRejection);
  t.after(() => process.off("unhandledRejection", onRejection));
  const poller = pollHealthz(`http://127.0.0.1:${port}/healthz`, 5);
  await waitFor("a first poll", () => poller.polls > 0);
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await waitFor("a failed poll", () => poller.failures > 0);
  await poller.stop();
  assert.ok(poller.polls > 0);
  assert.match(poller.firstError ?? "", /fetch failed/);
  assert.deepEqual(rejections, []);
});
