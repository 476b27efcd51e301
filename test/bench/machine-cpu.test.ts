/**
 * bench:serve's "machine busy in the connect window" reads /proc/stat: a child that burns
 * CPU shows as busy time, and busy never exceeds the total.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { test } from "node:test";
import { machineCpuMs } from "../../bench/machine-cpu.js";

// Spins until it has used 400 ms of CPU itself (a loaded machine only makes that take longer).
const BURN =
  "const s = process.cpuUsage(); while (true) { const u = process.cpuUsage(s); if (u.user + u.system > 400000) break; }";

test("CPU processes burn shows as the machine's busy time, not its idle time", {
  skip: !existsSync("/proc/stat") && "no /proc/stat",
}, async () => {
  const before = machineCpuMs();
  // One per core at once: while they run little is idle, so reading idle time as busy (or the
  // reverse) could not reach cores × 400 ms.
  const cores = availableParallelism();
  const children = Array.from({ length: cores }, () =>
    spawn(process.execPath, ["-e", BURN], { stdio: "ignore" }),
  );
  await Promise.all(children.map((child) => once(child, "exit")));
  const after = machineCpuMs();
  const busy = after.busy - before.busy;
  const total = after.total - before.total;
  // cores × 400 ms burnt by the children (less a tick of rounding per core), whatever else ran.
  assert.ok(busy >= cores * 390, `busy ${busy} ms of ${total} ms on ${cores} cores`);
  assert.ok(total >= busy, `total ${total} ms, busy ${busy} ms`);
});
