/**
 * How far V8 lets the old generation grow past what the last full GC left, for `serve`.
 *
 * V8 picks that factor itself (up to 4×, larger when its GC is fast next to the program): with
 * thousands of agents connecting, the garbage of their handshakes (promoted while Redis round
 * trips are in flight) made it keep 17–30 KB of committed heap per agent next to ~5–7 KB of
 * live objects, with the Buffers that garbage holds. bench:serve, 3,000 agents, serve alone,
 * 3 alternating idle runs per value (docs/performance.md): RSS per agent median 45.6 KB
 * with V8's own growth, 35.5 KB at 20 %, 30.6 KB at 50 %, 33.2 KB at 100 %; CPU per agent
 * connected and per heartbeat within the runs' spread, but 20 % ran 53–78 full GCs during
 * the connect where 50 % ran 18–30, so 50 %.
 * So `serve` sets V8's `--heap-growing-percent` (the limit is (1 + percent/100) × the live old
 * generation) before it allocates much, unless node was started with a value of its own
 * (`node --heap-growing-percent=0 …` restores V8's own choice). Node does not accept the flag
 * in NODE_OPTIONS, hence setting it here.
 */
import { setFlagsFromString } from "node:v8";

/** The old generation may grow to 1.5× what the last full GC left before the next one. */
export const HEAP_GROWING_PERCENT = 50;

/**
 * Sets `--heap-growing-percent=<percent>` for this process unless `execArgv` (node's own
 * options; default process.execArgv) sets it. Returns the flag set, or undefined when
 * node's own value was kept. Call once, early (V8 reads the flag at each full GC).
 */
export function limitHeapGrowth(
  execArgv: readonly string[] = process.execArgv,
  percent = HEAP_GROWING_PERCENT,
): string | undefined {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return undefined;
  const flag = `--heap-growing-percent=${percent}`;
  setFlagsFromString(flag);
  return flag;
}
