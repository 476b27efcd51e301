/**
 * The machine's CPU time, for benchmarks that share its cores between the server, the load
 * and Redis (Linux /proc/stat).
 */
import { readFileSync } from "node:fs";

/** Linux's clock ticks per second (USER_HZ) as /proc reports them. */
const TICKS_PER_SECOND = 100;

/**
 * CPU time of all cores since boot from /proc/stat's first line, ms: `busy` is every state
 * but idle and iowait, `total` every state (so `busy` / `total` over an interval is the share
 * of the machine that was working).
 */
export function machineCpuMs(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  // cpu user nice system idle iowait irq softirq steal (guest time is inside user already)
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  const ms = 1000 / TICKS_PER_SECOND;
  return { busy: (total - idle) * ms, total: total * ms };
}
