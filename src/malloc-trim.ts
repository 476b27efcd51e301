/**
 * Gives the C heap's free pages back to the OS: glibc's `malloc_trim(0)`, for `serve`.
 *
 * Why: every agent that connects leaves Buffers (socket reads, frames, Redis replies) that the
 * GC frees soon after, but glibc keeps the freed pages inside its arenas, and returns on its
 * own only what lies at the top of the heap. After a burst of connects that residue is most of
 * the gap between serve's RSS per agent and the opamp-go peer's (README, "Memory
 * allocator"). Nothing in Node calls malloc_trim, so it is called here through koffi (a
 * maintained FFI library with prebuilt binaries), on libuv's thread pool (koffi's async
 * call): the event loop never waits for it.
 *
 * When: a check every `intervalMs` (default 2 s); it trims when the event loop was mostly
 * idle since the last check (utilization under `busyAbove`, default 0.5), that is once a
 * burst is over: trimming during one hands back pages the burst faults in again at once (CPU
 * for nothing). A process busy for longer than `maxSkipMs` (default 60 s) is trimmed anyway.
 *
 * Contract: `startMallocTrim` returns undefined and does nothing where it cannot run (not
 * Linux with glibc, no koffi binary for the platform, `intervalMs` 0). Never two calls in
 * flight. Timers are unref'd: they keep no process alive. glibc locks each arena while
 * trimming it, so a thread allocating in that arena meanwhile waits (measured with 3,000
 * agents: 0.4–25 ms per call, most under 3 ms). `close()` is idempotent; a call in flight then
 * finishes on its own. The counters are process-wide (`mallocTrimStats`, read by /metrics).
 */
import { createRequire } from "node:module";

export interface MallocTrimOptions {
  /** Between two checks, ms; 0 turns trimming off. Default 2000. */
  intervalMs?: number;
  /** Event-loop utilization (0–1) since the last check at or above which it waits. Default 0.5. */
  busyAbove?: number;
  /** Longest time without a trim while the loop stays busy, ms. Default 60 000. */
  maxSkipMs?: number;
}

export interface MallocTrimStats {
  /** Calls that returned. */
  runs: number;
  /** Wall time of the calls on the thread pool, seconds. */
  seconds: number;
  /** Checks that did not trim because the event loop was busy. */
  skipped: number;
}

export interface MallocTrim {
  /** Trims once now, on the thread pool; resolves whether pages were given back. */
  trimNow(): Promise<boolean>;
  /** Stops the interval. Idempotent. */
  close(): void;
}

type TrimFunction = { async(pad: number, done: (err: unknown, result: number) => void): void };

const stats: MallocTrimStats = { runs: 0, seconds: 0, skipped: 0 };

/** The process's counters (zeros while no trimmer ran in this process). */
export function mallocTrimStats(): Readonly<MallocTrimStats> {
  return stats;
}

/** Starts trimming (see the file comment); undefined where it cannot run. */
export function startMallocTrim({
  intervalMs = 2000,
  busyAbove = 0.5,
  maxSkipMs = 60_000,
}: MallocTrimOptions = {}): MallocTrim | undefined {
  if (intervalMs <= 0) return undefined;
  const trim = loadTrim();
  if (!trim) return undefined;
  let inFlight: Promise<boolean> | undefined;
  const trimNow = (): Promise<boolean> => {
    inFlight ??= new Promise<boolean>((resolve) => {
      const start = performance.now();
      trim.async(0, (err, result) => {
        stats.seconds += (performance.now() - start) / 1000;
        stats.runs++;
        inFlight = undefined;
        resolve(!err && result === 1);
      });
    });
    return inFlight;
  };
  let lastTrimAt = performance.now();
  let loop = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.now();
    const since = performance.eventLoopUtilization(loop);
    loop = performance.eventLoopUtilization();
    if (inFlight) return;
    if (since.utilization >= busyAbove && now - lastTrimAt < maxSkipMs) {
      stats.skipped++;
      return;
    }
    lastTrimAt = now;
    void trimNow();
  }, intervalMs);
  timer.unref();
  return { trimNow, close: () => clearInterval(timer) };
}

/**
 * glibc's malloc_trim through koffi, or undefined where either is missing (musl has no
 * libc.so.6: loading it throws).
 */
function loadTrim(): TrimFunction | undefined {
  if (process.platform !== "linux") return undefined;
  try {
    // Loaded only here: koffi's native binary is an optional part of the install.
    const koffi = createRequire(import.meta.url)("koffi") as {
      load(path: string): { func(signature: string): TrimFunction };
    };
    return koffi.load("libc.so.6").func("int malloc_trim(size_t pad)");
  } catch {
    return undefined;
  }
}
