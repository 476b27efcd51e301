/**
 * The V8 settings `serve` gives its own process at start, before it allocates or compiles
 * much. Node does not accept these flags in NODE_OPTIONS, hence setting them here; each is
 * set unless node was started with a value of its own (`node --heap-growing-percent=0 …`
 * restores V8's choice), and worker threads share them (V8's flags are per process).
 * Figures: docs/performance.md.
 */
import { setFlagsFromString } from "node:v8";

/**
 * `--heap-growing-percent`: the old generation may grow to 1.5× what the last full GC left
 * before the next one (V8 picks up to 4×). With thousands of agents connecting, the garbage of
 * their handshakes (promoted while Redis round trips are in flight) made V8's own growth keep
 * 17–30 KB of committed heap per agent next to ~5–7 KB of live objects. bench:serve, 3,000
 * agents, 3 alternating runs per value: RSS per agent median 45.6 KB with V8's own growth,
 * 35.5 KB at 20 %, 30.6 KB at 50 %, 33.2 KB at 100 %; 20 % ran 53–78 full GCs during the
 * connect where 50 % ran 18–30. Read at each full GC.
 */
export const HEAP_GROWING_PERCENT = 50;

/**
 * `--max-inlined-bytecode-size-cumulative`: bytecode TurboFan inlines into one optimized
 * function, a quarter of V8's 920. Code run once per new agent (handshake, first report,
 * first save) is optimized while the first few thousand agents connect, on V8's helper
 * threads of the same 2 cores; smaller graphs compile faster. bench:serve, serve alone, 3,000
 * agents, 11 runs each, alternating: CPU per agent connected median 923 µs (843–983) at 230
 * against 1,093 (917–1,177) with V8's 920, lower in each of the 9 rounds that ran both; 115
 * and 460 read worse than 230 (1,053–1,297 and 977–1,083 µs); heartbeats within their spread.
 * Read at each optimizing compile.
 */
export const INLINED_BYTECODE_CUMULATIVE = 230;

/** What serve sets: V8 flag name (dashes) → value. */
export const SERVE_V8_FLAGS: Readonly<Record<string, number>> = {
  "heap-growing-percent": HEAP_GROWING_PERCENT,
  "max-inlined-bytecode-size-cumulative": INLINED_BYTECODE_CUMULATIVE,
};

/**
 * Sets each of `flags` for this process unless `execArgv` (node's own options; default
 * process.execArgv) names it (with dashes or underscores). Returns the flags set, as
 * `--name=value`. Call once, early.
 */
export function setServeV8Flags(
  execArgv: readonly string[] = process.execArgv,
  flags: Readonly<Record<string, number>> = SERVE_V8_FLAGS,
): string[] {
  const given = (name: string) => {
    const pattern = new RegExp(`^--${name.replaceAll("-", "[-_]")}(=|$)`);
    return execArgv.some((a) => pattern.test(a));
  };
  const set: string[] = [];
  for (const [name, value] of Object.entries(flags)) {
    if (given(name)) continue;
    const flag = `--${name}=${value}`;
    setFlagsFromString(flag);
    set.push(flag);
  }
  return set;
}
