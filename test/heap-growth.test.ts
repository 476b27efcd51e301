/**
 * serve's heap growth limit (src/heap-growth.ts): a process that called limitHeapGrowth()
 * reserves far less heap than V8's own growth while garbage that lives long enough to be
 * promoted churns next to a steady live set (what thousands of connecting agents do), and
 * node's own --heap-growing-percent is kept (the way to opt out).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { promisify } from "node:util";
import { HEAP_GROWING_PERCENT, limitHeapGrowth } from "../src/heap-growth.js";

const run = promisify(execFile);
const MODULE = new URL("../src/heap-growth.js", import.meta.url).href;

/**
 * Peak V8 heap reserved (MiB) by a child node with `nodeArgs` that calls limitHeapGrowth(),
 * keeps ~20 MB live and churns ~150 MB of objects that survive two scavenges before dying.
 */
async function peakHeapMb(nodeArgs: string[]): Promise<{ peakMb: number; flag: string | null }> {
  const script = `
    import { getHeapStatistics } from "node:v8";
    import { limitHeapGrowth } from ${JSON.stringify(MODULE)};
    const flag = limitHeapGrowth() ?? null;
    const live = [];
    for (let i = 0; i < 200_000; i++) live.push({ a: i, b: "s" + i, c: [i, i] });
    let window = [];
    let peak = 0;
    for (let round = 0; round < 30; round++) {
      for (let i = 0; i < 50_000; i++) window.push({ x: i, y: "w" + round + "-" + i, z: [round] });
      if (window.length > 100_000) window = window.slice(50_000);
      peak = Math.max(peak, getHeapStatistics().total_heap_size);
    }
    process.stdout.write(JSON.stringify({ peakMb: peak / 2 ** 20, flag, live: live.length }));
  `;
  const { stdout } = await run(
    process.execPath,
    [...nodeArgs, "--input-type=module", "-e", script],
    { timeout: 120_000 },
  );
  return JSON.parse(stdout);
}

test("node's own --heap-growing-percent is kept; otherwise the limit is set", () => {
  assert.equal(limitHeapGrowth(["--heap-growing-percent=0"]), undefined);
  assert.equal(limitHeapGrowth(["--inspect", "--heap_growing_percent=50"]), undefined);
  // Setting it here is what serve does in its own process, so the test process may as well.
  assert.equal(limitHeapGrowth([]), `--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
});

test("with the limit, promoted garbage next to a live set grows the heap far less than V8's default growth", async (t) => {
  const limited = await peakHeapMb([]);
  const own = await peakHeapMb(["--heap-growing-percent=0"]);
  assert.equal(limited.flag, `--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  assert.equal(own.flag, null);
  t.diagnostic(
    `peak heap ${limited.peakMb.toFixed(0)} MiB limited vs ${own.peakMb.toFixed(0)} MiB`,
  );
  // Measured (node 20): ~127 MiB at 50 % (~115 at 20 %), ~250 MiB with V8's own growth.
  assert.ok(
    limited.peakMb < own.peakMb * 0.7,
    `peak heap ${limited.peakMb.toFixed(0)} MiB limited vs ${own.peakMb.toFixed(0)} MiB`,
  );
});
