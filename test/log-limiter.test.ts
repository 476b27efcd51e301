/**
 * The rate-limited log: a burst of events gives the first line at once and then at most one
 * line per interval, whose counts add up to the events; keys beyond `maxKeys` are counted as
 * omitted; close() writes what is pending, and events after it are written at once.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type LimitedEntry, LogLimiter } from "../src/log-limiter.js";

interface Line {
  at: number;
  entries: Array<LimitedEntry<number>>;
  omitted: number;
}

function limiter(intervalMs: number, maxKeys?: number) {
  const lines: Line[] = [];
  const log = new LogLimiter<number>({
    intervalMs,
    ...(maxKeys !== undefined ? { maxKeys } : {}),
    write: (entries, omitted) => void lines.push({ at: Date.now(), entries, omitted }),
  });
  return { log, lines };
}

test("a burst: the first event at once, then at most one line per interval with the counts", async () => {
  const { log, lines } = limiter(100);
  const started = Date.now();
  let events = 0;
  while (Date.now() - started < 450) {
    for (let i = 0; i < 50; i++) log.record(i % 2 ? "odd" : "even", events++);
    await sleep(5);
  }
  assert.deepEqual(lines[0]?.entries, [{ key: "even", count: 1, detail: 0 }]);
  await sleep(150); // the last interval's timer writes the rest
  const elapsed = Date.now() - started;
  assert.ok(lines.length <= Math.ceil(elapsed / 100) + 1, `${lines.length} lines in ${elapsed} ms`);
  assert.ok(lines.length >= 3, "later events are written by the timer");
  for (let i = 1; i < lines.length; i++)
    assert.ok((lines[i]?.at ?? 0) - (lines[i - 1]?.at ?? 0) >= 95, "lines an interval apart");
  const total = lines.flatMap((l) => l.entries).reduce((sum, e) => sum + e.count, 0);
  assert.equal(total, events, "every event counted once");
  // The detail is the key's last event's.
  const last = lines.at(-1)?.entries.find((e) => e.key === (events % 2 ? "even" : "odd"));
  assert.equal(last?.detail, events - 1);
  log.close();
});

test("keys beyond maxKeys are counted as omitted; close() writes them; later events go at once", () => {
  const { log, lines } = limiter(60_000, 2);
  log.record("a", 1); // written at once
  for (const key of ["a", "b", "c", "d", "c"]) log.record(key, 2);
  assert.equal(lines.length, 1);
  log.close();
  log.close();
  assert.equal(lines.length, 2);
  assert.deepEqual(lines[1]?.entries, [
    { key: "a", count: 1, detail: 2 },
    { key: "b", count: 1, detail: 2 },
  ]);
  assert.equal(lines[1]?.omitted, 3);
  log.record("e", 3);
  assert.deepEqual(lines[2]?.entries, [{ key: "e", count: 1, detail: 3 }]);
});
