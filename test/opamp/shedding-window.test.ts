/**
 * How long shed agents are told to wait (LoadShedder.retryAfterSeconds): the window of the
 * jitter starts at the minimum and widens with the number shed in this second and the last,
 * one second per maxPendingAgents / (seconds in the range) sheds, never past the maximum.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { LoadShedder, type SheddingOptions } from "../../src/opamp/shedding.js";

/** A shedder at its pending limit (every new agent is shed), on a clock the test moves. */
function atLimit(options: SheddingOptions = {}) {
  const clock = { now: 1_000_000 };
  const s = new LoadShedder({ ...options, now: () => clock.now });
  s.pendingSockets = options.maxPendingAgents ?? 1000;
  /** Sheds one agent, as the server does: counted, then told when to return. */
  const shed = (): number => {
    assert.equal(s.shedConnection(0), true);
    return s.retryAfterSeconds();
  };
  return { clock, s, shed };
}

const distinct = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);

test("a few agents shed at the edge of the limit come back after the minimum, 1 s", () => {
  const { shed } = atLimit();
  const first = Array.from({ length: 200 }, shed);
  assert.deepEqual(distinct(first), [1], "200 = 1000 pending / 5 seconds: one second's worth");
});

test("a storm's sheds spread over the whole range, never past its maximum", () => {
  const { shed } = atLimit();
  const all = Array.from({ length: 3000 }, shed);
  assert.ok(all.every((r) => r >= 1 && r <= 5));
  const late = all.slice(1000);
  assert.deepEqual(distinct(late), [1, 2, 3, 4, 5], "past 800 recent sheds: 1–5 s");
  // Each second gets about a fifth: none takes more than twice its share.
  for (const r of [1, 2, 3, 4, 5])
    assert.ok(late.filter((x) => x === r).length < (2 * late.length) / 5, `second ${r}`);
});

test("the window widens step by step: 201–400 recent sheds draw from 1–2 s", () => {
  const { shed } = atLimit();
  for (let i = 0; i < 200; i++) shed();
  const next = Array.from({ length: 200 }, shed);
  assert.deepEqual(distinct(next), [1, 2]);
});

test("sheds of more than a second ago no longer widen it", () => {
  const { clock, shed } = atLimit();
  for (let i = 0; i < 1000; i++) shed();
  clock.now += 1000; // the storm's second is now the previous one: still counted
  assert.ok(Array.from({ length: 50 }, shed).some((r) => r > 1));
  clock.now += 2000; // two seconds without a shed
  assert.deepEqual(distinct(Array.from({ length: 100 }, shed)), [1]);
});

test("a range of its own: 2–4 s with a limit of 30 widens every 10 sheds", () => {
  const { shed } = atLimit({ maxPendingAgents: 30, minRetrySeconds: 2, maxRetrySeconds: 4 });
  assert.deepEqual(distinct(Array.from({ length: 10 }, shed)), [2]);
  assert.ok(
    Array.from({ length: 10 }, shed).every((r) => r === 2 || r === 3),
    "11–20: 2–3 s",
  );
  const rest = Array.from({ length: 300 }, shed);
  assert.deepEqual(distinct(rest), [2, 3, 4]);
});

test("first messages answered UNAVAILABLE while the loop is late count as sheds too", () => {
  const clock = { now: 1_000_000 };
  const s = new LoadShedder({ maxLoopDelayMs: 10, loopDelay: () => 50, now: () => clock.now });
  const got: number[] = [];
  for (let i = 0; i < 1000; i++) {
    assert.equal(s.shedFirstMessage(), true);
    got.push(s.retryAfterSeconds());
  }
  assert.deepEqual(distinct(got.slice(0, 200)), [1]);
  assert.deepEqual(distinct(got.slice(800)), [1, 2, 3, 4, 5]);
});
