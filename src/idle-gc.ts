/**
 * One full garbage collection when `serve` turns idle after a burst.
 *
 * A connect burst or a reconnect storm leaves garbage that only a full GC frees: the
 * handshakes' objects promoted while their Redis round trips were in flight, and the
 * Buffers (socket reads, Redis replies) they hold outside V8's heap. A connected fleet then
 * allocates too slowly for V8 to run that GC for a long time, so the process keeps the
 * burst's memory (bench:serve, 3,000 agents: 3–4.6 KB of dead Buffers and ~4 KB of V8
 * garbage per agent next to ~7 KB of live objects, minutes later). Here the process samples
 * its own CPU time and what its old generation and Buffers hold; once it has been idle for
 * `idleIntervals` intervals and that grew since the lowest point seen (the last full
 * collection, V8's or this one's) by `growthRatio` of it or `growthBytes`, whichever is
 * larger, it runs one (V8's `gc()`, exposed for this
 * process only). What the allocator then gives back to the system depends on it: jemalloc
 * returns freed pages within seconds (README "Memory allocator"), glibc keeps most.
 *
 * Only the old generation and external memory count as growth: young-generation garbage is
 * collected by V8's scavenges anyway, and counting it would collect in full for nothing.
 * A busy process never collects here (V8's own schedule rules then).
 *
 * Concurrency: the check runs on the event loop every `intervalMs`; the collection pauses
 * the process (tens to a few hundred ms with tens of thousands of agents), only while it is
 * idle by the definition above.
 */
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

export interface IdleGcOptions {
  /**
   * Growth (bytes) of old generation + external memory that makes an idle process collect,
   * at least: the threshold is the larger of this and `growthRatio` of the lowest point.
   */
  growthBytes: number;
  /**
   * Growth as a fraction of what the old generation and external memory held at the lowest
   * point (about the live set) that makes an idle process collect, when above growthBytes:
   * a bigger fleet collects after proportionally more garbage (a full GC's pause grows with
   * the live set). Default 0.1.
   */
  growthRatio?: number;
  /** Sampling interval, ms. Default 1000. */
  intervalMs?: number;
  /**
   * CPU time of the process (all threads) per interval below which it counts as idle, as a
   * fraction of the interval (one core). Default 0.1.
   */
  idleCpu?: number;
  /** Idle intervals in a row before collecting. Default 2. */
  idleIntervals?: number;
  /** Runs a full collection. Default: V8's `gc()` (exposedGc). */
  collect?: () => void;
  /** Cumulative CPU time of the process, µs. Default: process.cpuUsage() user + system. */
  cpuMicros?: () => number;
  /** Bytes the old generation (large objects included) and external memory hold now. */
  retainedBytes?: () => number;
  /** Called after each collection: its pause (ms) and the retained bytes it freed. */
  onCollect?: (result: { pauseMs: number; freedBytes: number }) => void;
}

export class IdleGc {
  /** Collections run, their pauses (ms) and the retained bytes they freed, summed. */
  readonly stats = { collections: 0, pauseMs: 0, freedBytes: 0 };
  readonly #o: Required<IdleGcOptions>;
  #timer: NodeJS.Timeout | undefined;
  #lastCpu: number;
  #idleRun = 0;
  /** The lowest retainedBytes since the last collection (or start): growth counts from it. */
  #base: number;

  constructor({
    growthBytes,
    growthRatio = 0.1,
    intervalMs = 1000,
    idleCpu = 0.1,
    idleIntervals = 2,
    collect = exposedGc(),
    cpuMicros = () => {
      const u = process.cpuUsage();
      return u.user + u.system;
    },
    retainedBytes = oldAndExternalBytes,
    onCollect = () => {},
  }: IdleGcOptions) {
    this.#o = {
      growthBytes,
      growthRatio,
      intervalMs,
      idleCpu,
      idleIntervals,
      collect,
      cpuMicros,
      retainedBytes,
      onCollect,
    };
    this.#lastCpu = cpuMicros();
    this.#base = retainedBytes();
  }

  /** Starts sampling (the timer does not keep the process alive). Idempotent. */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.check(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Stops sampling. Idempotent. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * One sample, as the timer takes it every interval; returns whether it collected. A sample
   * whose CPU time since the previous one reached `idleCpu` of the interval restarts the idle
   * run.
   */
  check(): boolean {
    const cpu = this.#o.cpuMicros();
    const busy = cpu - this.#lastCpu >= this.#o.idleCpu * this.#o.intervalMs * 1000;
    this.#lastCpu = cpu;
    const retained = this.#o.retainedBytes();
    // V8 collected on its own: growth counts from the lowest point.
    if (retained < this.#base) this.#base = retained;
    if (busy) {
      this.#idleRun = 0;
      return false;
    }
    this.#idleRun++;
    const threshold = Math.max(this.#o.growthBytes, this.#o.growthRatio * this.#base);
    if (this.#idleRun < this.#o.idleIntervals || retained - this.#base < threshold) return false;
    const started = performance.now();
    this.#o.collect();
    const pauseMs = performance.now() - started;
    const after = this.#o.retainedBytes();
    this.#base = after;
    // The collection's own CPU time is not the process getting busy.
    this.#lastCpu = this.#o.cpuMicros();
    const freedBytes = Math.max(0, retained - after);
    this.stats.collections++;
    this.stats.pauseMs += pauseMs;
    this.stats.freedBytes += freedBytes;
    this.#o.onCollect({ pauseMs, freedBytes });
    return true;
  }
}

/** Old generation (large objects included) plus external memory (Buffers), bytes. */
export function oldAndExternalBytes(): number {
  let bytes = process.memoryUsage().external;
  for (const space of getHeapSpaceStatistics())
    if (space.space_name === "old_space" || space.space_name === "large_object_space")
      bytes += space.space_used_size;
  return bytes;
}

/**
 * V8's full collection: node's own `gc` when started with --expose-gc, else one exposed for
 * this call only (the flag is set while a fresh context is made, then cleared again, so no
 * other context sees a `gc` global).
 */
export function exposedGc(): () => void {
  const own = (globalThis as { gc?: () => void }).gc;
  if (typeof own === "function") return own;
  setFlagsFromString("--expose-gc");
  try {
    return runInNewContext("gc") as () => void;
  } finally {
    setFlagsFromString("--no-expose-gc");
  }
}
