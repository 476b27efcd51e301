/**
 * serve's malloc trimming (src/malloc-trim.ts): a process whose freed C heap lies between
 * chunks still in use (what a burst of connects leaves: Buffers freed around ones that
 * live on) gets those pages back to the OS only through malloc_trim, which startMallocTrim
 * calls on the thread pool; it runs on its interval once the event loop is idle, waits while
 * the loop is busy (a burst would fault the pages in again), never runs where it is turned
 * off, and stops on close(); `--malloc-trim-interval` is 0 or at least 1 s.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { promisify } from "node:util";
import { mallocTrimStats, startMallocTrim } from "../src/malloc-trim.js";
import { resolveSettings, SettingsError } from "../src/settings.js";

const run = promisify(execFile);
const MODULE = new URL("../src/malloc-trim.js", import.meta.url).href;
const available = startMallocTrim({ intervalMs: 3_600_000 });
available?.close();
const skip = available ? false : "malloc_trim is not available here (not Linux with glibc)";

/**
 * RSS (MiB) of a child node before and after one trimNow(), once it allocated ~200 MB of
 * 4 KB Buffers (malloc'd, below glibc's mmap threshold) and freed all but every 16th.
 */
async function trimmedMb(): Promise<{ before: number; after: number; released: boolean }> {
  const script = `
    import { startMallocTrim } from ${JSON.stringify(MODULE)};
    const trim = startMallocTrim({ intervalMs: 3_600_000 });
    let chunks = [];
    for (let i = 0; i < 50_000; i++) chunks.push(Buffer.allocUnsafeSlow(4096).fill(i & 0xff));
    const kept = chunks.filter((_, i) => i % 16 === 0);
    chunks = undefined;
    // Backing stores are freed once their ArrayBuffers are collected and swept.
    for (let i = 0; i < 4; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); }
    const mb = () => process.memoryUsage.rss() / 2 ** 20;
    const before = mb();
    const released = await trim.trimNow();
    const after = mb();
    trim.close();
    console.log(JSON.stringify({ before, after, released, kept: kept.length }));
  `;
  const { stdout } = await run(process.execPath, [
    "--expose-gc",
    "--input-type=module",
    "-e",
    script,
  ]);
  return JSON.parse(stdout);
}

test("freed C heap between live chunks goes back to the OS", { skip }, async () => {
  const { before, after, released } = await trimmedMb();
  assert.ok(released, "malloc_trim reports pages given back");
  // ~190 MB were freed between live chunks; glibc keeps them until trimmed.
  assert.ok(
    before - after > 100,
    `RSS ${before.toFixed(0)} MB → ${after.toFixed(0)} MB after the trim`,
  );
});

test("runs on its interval, counted, and not after close()", { skip }, async () => {
  const runsBefore = mallocTrimStats().runs;
  const trim = startMallocTrim({ intervalMs: 20 });
  assert.ok(trim);
  const deadline = Date.now() + 10_000;
  while (mallocTrimStats().runs < runsBefore + 2 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  trim.close();
  trim.close(); // idempotent
  await trim.trimNow(); // a call in flight, or this one, settles
  const runs = mallocTrimStats().runs;
  assert.ok(runs >= runsBefore + 2, `${runs - runsBefore} runs`);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(mallocTrimStats().runs, runs, "no run after close()");
  assert.ok(mallocTrimStats().seconds >= 0);
});

test("waits while the event loop is busy, trims once it is idle", { skip }, async () => {
  const before = { ...mallocTrimStats() };
  const trim = startMallocTrim({ intervalMs: 20, busyAbove: 0.5, maxSkipMs: 3_600_000 });
  assert.ok(trim);
  // A burst: the loop runs ~95 % of the time for ~1 s (busy 50 ms, then one turn's yield).
  const burstEnd = Date.now() + 1000;
  while (Date.now() < burstEnd) {
    const spin = Date.now() + 50;
    while (Date.now() < spin) {}
    await new Promise((r) => setImmediate(r));
  }
  const during = { ...mallocTrimStats() };
  assert.ok(during.skipped > before.skipped, "checks during the burst were skipped");
  assert.equal(during.runs, before.runs, "no trim during the burst");
  const deadline = Date.now() + 10_000;
  while (mallocTrimStats().runs === before.runs && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  trim.close();
  assert.ok(mallocTrimStats().runs > before.runs, "trimmed once the loop idled");
});

test("an interval of 0 starts nothing", () => {
  assert.equal(startMallocTrim({ intervalMs: 0 }), undefined);
});

test("--malloc-trim-interval: 2 s by default, 0 turns it off, under 1 s refused", () => {
  assert.equal(resolveSettings({}, {}).mallocTrimIntervalMs, 2000);
  assert.equal(resolveSettings({ mallocTrimInterval: "0" }, {}).mallocTrimIntervalMs, 0);
  assert.equal(
    resolveSettings({}, { OPAMP_GITOPS_MALLOC_TRIM_INTERVAL: "1m" }).mallocTrimIntervalMs,
    60_000,
  );
  assert.throws(
    () => resolveSettings({ mallocTrimInterval: "500ms" }, {}),
    (err: unknown) =>
      err instanceof SettingsError &&
      err.setting === "--malloc-trim-interval" &&
      /0 \(never\) or at least 1s/.test(err.message),
  );
  assert.throws(
    () => resolveSettings({ mallocTrimInterval: "often" }, {}),
    (err: unknown) => err instanceof SettingsError && err.setting === "--malloc-trim-interval",
  );
});
