/**
 * bench:serve splits a connect's CPU into the event loops' and the other threads' (V8's
 * compiler and GC helpers, worker threads): read from /proc for a real child process whose
 * worker thread burns CPU while its main thread waits.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { treeCpuMs, treeMainThreadsCpuMs } from "../../bench/serve-load.js";

// The worker spins until the process has used 400 ms of CPU (not wall time: a loaded machine
// only makes it take longer); the main thread only waits for it.
const CHILD = `
const { Worker } = require("node:worker_threads");
const w = new Worker("const s = process.cpuUsage(); while (true) { const u = process.cpuUsage(s); if (u.user + u.system > 400000) break; }", { eval: true });
w.on("exit", () => { process.stdout.write("done\\n"); setTimeout(() => {}, 60000); });
`;

test("a worker thread's CPU counts in the tree, not in its event loop's", {
  skip: !existsSync("/proc/self/task") && "no /proc",
}, async () => {
  const child = spawn(process.execPath, ["-e", CHILD], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    await once(child.stdout, "data");
    const pid = child.pid as number;
    const all = treeCpuMs(pid);
    const main = treeMainThreadsCpuMs(pid);
    assert.ok(all >= 400, `the tree used ${all} ms`);
    assert.ok(main < all - 300, `event loop ${main} ms of ${all} ms`);
  } finally {
    child.kill();
  }
});
