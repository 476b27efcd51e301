/**
 * serve's idle-time collection (src/idle-gc.ts): when it collects (idle long enough after
 * enough growth, never while busy, once per burst), that in a real node process without
 * --expose-gc it frees a burst's promoted garbage and Buffers, and the `--idle-gc-bytes`
 * setting.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { promisify } from "node:util";
import { IdleGc } from "../src/idle-gc.js";
import { resolveSettings, SettingsError } from "../src/settings.js";

const MiB = 2 ** 20;

/** An IdleGc over readings the test moves: CPU µs, retained bytes, and the collections. */
function scripted(growthBytes = 10 * MiB) {
  const readings = { cpu: 0, retained: 100 * MiB, collections: 0 };
  const gc = new IdleGc({
    growthBytes,
    intervalMs: 1000,
    idleCpu: 0.1,
    idleIntervals: 2,
    cpuMicros: () => readings.cpu,
    retainedBytes: () => readings.retained,
    collect: () => {
      readings.collections++;
      readings.retained -= 30 * MiB; // what the burst left
      readings.cpu += 400_000; // the collection's own CPU time
    },
  });
  /** One interval with `cpuMs` of CPU, then the sample. */
  const interval = (cpuMs: number) => {
    readings.cpu += cpuMs * 1000;
    return gc.check();
  };
  return { gc, readings, interval };
}

test("collects once the process has been idle for two intervals after a burst grew it", () => {
  const { gc, readings, interval } = scripted();
  // The burst: busy intervals while memory grows; never a collection then.
  for (let i = 0; i < 5; i++) {
    readings.retained += 10 * MiB;
    assert.equal(interval(900), false, "busy: no collection");
  }
  assert.equal(interval(20), false, "one idle interval is not enough");
  assert.equal(interval(20), true, "the second idle interval collects");
  assert.equal(readings.collections, 1);
  assert.equal(gc.stats.collections, 1);
  assert.equal(gc.stats.freedBytes, 30 * MiB);
  // Still idle, nothing grew since: no second collection, and its own CPU was not "busy".
  for (let i = 0; i < 5; i++) assert.equal(interval(20), false);
  assert.equal(readings.collections, 1);
});

test("growth below the threshold, or a busy interval in the idle run, collects nothing", () => {
  const { readings, interval } = scripted(64 * MiB);
  readings.retained += 40 * MiB;
  for (let i = 0; i < 5; i++) assert.equal(interval(0), false, "40 MiB < 64 MiB");
  readings.retained += 30 * MiB;
  assert.equal(interval(0), true, "70 MiB grown, idle long enough: collects");

  const other = scripted();
  other.readings.retained += 50 * MiB;
  assert.equal(other.interval(0), false);
  assert.equal(other.interval(150), false, "150 ms of CPU in 1 s: busy, the run restarts");
  assert.equal(other.interval(0), false);
  assert.equal(other.interval(0), true);
});

test("a large process collects after a tenth of what it holds, not after the byte floor", () => {
  // Base 100 MiB: the threshold is max(4 MiB, 10 MiB).
  const { readings, interval } = scripted(4 * MiB);
  readings.retained += 6 * MiB;
  assert.equal(interval(0), false);
  assert.equal(interval(0), false, "6 MiB over 100 MiB: past the floor, below a tenth");
  readings.retained += 5 * MiB;
  assert.equal(interval(0), true, "11 MiB: past a tenth");
});

test("a collection V8 ran itself lowers the point growth counts from", () => {
  const { readings, interval } = scripted(10 * MiB);
  readings.retained += 8 * MiB;
  interval(500);
  readings.retained -= 20 * MiB; // V8's own major GC: 12 MiB below the start
  interval(500);
  readings.retained += 15 * MiB; // 3 MiB above the start, 15 above the lowest point
  assert.equal(interval(0), false);
  assert.equal(interval(0), true);
});

test("in a node process without --expose-gc it frees a burst's promoted garbage and Buffers", async () => {
  const module = new URL("../src/idle-gc.js", import.meta.url).href;
  const script = `
    import { IdleGc, oldAndExternalBytes } from ${JSON.stringify(module)};
    const gc = new IdleGc({ growthBytes: 16 * 2 ** 20, intervalMs: 1000 });
    // A burst: objects and Buffers that live through several scavenges (promoted), then die.
    let held = [];
    for (let round = 0; round < 8; round++) {
      for (let i = 0; i < 40_000; i++) held.push({ i, s: "agent-" + round + "-" + i, b: Buffer.alloc(256) });
      await new Promise((r) => setImmediate(r));
    }
    held = undefined;
    const before = oldAndExternalBytes();
    // Idle: each sample follows a second without work (GC threads finishing the burst may
    // still make the first ones busy), then two more once it collected.
    const samples = [];
    for (let i = 0; i < 12 && samples.filter(Boolean).length === 0; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      samples.push(gc.check());
    }
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      samples.push(gc.check());
    }
    const after = oldAndExternalBytes();
    process.stdout.write(JSON.stringify({ before, after, samples, stats: gc.stats, globalGc: typeof globalThis.gc }));
  `;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--input-type=module", "-e", script],
    { timeout: 60_000 },
  );
  const r = JSON.parse(stdout) as {
    before: number;
    after: number;
    samples: boolean[];
    stats: { collections: number; freedBytes: number };
    globalGc: string;
  };
  assert.equal(r.stats.collections, 1, JSON.stringify(r));
  assert.equal(r.samples.filter(Boolean).length, 1);
  // 320,000 objects with 256-byte Buffers: far more than 40 MiB held before, little after.
  assert.ok(r.before - r.after > 40 * MiB, JSON.stringify(r));
  assert.ok(r.stats.freedBytes > 40 * MiB);
  assert.equal(r.globalGc, "undefined", "no gc global leaks into the program");
});

test("--idle-gc-bytes: 4 MiB by default, 0 turns it off, anything else is refused", () => {
  assert.equal(resolveSettings({}, {}).idleGcBytes, 4 * MiB);
  assert.equal(resolveSettings({ idleGcBytes: "0" }, {}).idleGcBytes, 0);
  assert.equal(resolveSettings({}, { OPAMP_GITOPS_IDLE_GC_BYTES: "1048576" }).idleGcBytes, MiB);
  for (const bad of ["-1", "1.5", "lots"])
    assert.throws(
      () => resolveSettings({ idleGcBytes: bad }, {}),
      (err: unknown) => err instanceof SettingsError && err.setting === "--idle-gc-bytes",
      bad,
    );
});
