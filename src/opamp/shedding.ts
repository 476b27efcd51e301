/**
 * Load shedding for reconnect storms (a replica or load balancer restart sends thousands of
 * agents at once). What the OpAMP port takes at a time is bounded; past that, agents are told
 * to come back later, each at a slightly different time (jitter), instead of all of them
 * queueing inside the process and timing out together.
 *
 * - Pending agents: WebSocket connections upgraded whose first message has not been answered
 *   yet, plus HTTP requests in flight. At `maxPendingAgents`, new connections get HTTP 503 with
 *   `Retry-After` (upgrades are refused before they complete).
 * - Event-loop delay (`maxLoopDelayMs`, 0: off): measured every 100 ms; while above the
 *   threshold new connections get 503 as well, and the first message of a new WebSocket is
 *   answered with ServerErrorResponse UNAVAILABLE and RetryInfo (OpAMP spec: the agent waits
 *   retry_after_nanoseconds before sending again). Agents already served keep being answered.
 *
 * Retry intervals are whole seconds drawn uniformly from a window that starts at
 * minRetrySeconds and widens with the storm, up to maxRetrySeconds (default 1–5 s): one more
 * second per maxPendingAgents / (number of seconds in the range) agents shed in this second
 * and the last (200 with the defaults). A few agents shed at the edge of the limit come back
 * after 1 s instead of waiting up to 5 for nothing; a storm's thousands spread over the whole
 * range, so each second brings back no more than about that step. Single-threaded: no locking.
 */

export interface SheddingOptions {
  /** Pending agents beyond which new ones are shed. Default 1000. */
  maxPendingAgents?: number;
  /** Event-loop delay above which new agents are shed, ms; 0: off (default). */
  maxLoopDelayMs?: number;
  minRetrySeconds?: number;
  maxRetrySeconds?: number;
  /**
   * Reads the event-loop delay, ms. Default: measured here every 100 ms (when
   * maxLoopDelayMs > 0). Tests pass their own to make the loop "late" on demand.
   */
  loopDelay?: () => number;
  /** Clock for counting recent sheds, ms. Default Date.now. */
  now?: () => number;
}

const SAMPLE_MS = 100;

export class LoadShedder {
  /** WebSockets upgraded and not yet answered once. */
  pendingSockets = 0;
  /** Counters since start (metrics, tests). */
  readonly stats = { shedConnections: 0, shedMessages: 0 };
  readonly #options: Required<Omit<SheddingOptions, "loopDelay" | "now">>;
  readonly #loopDelay: (() => number) | undefined;
  readonly #now: () => number;
  readonly #recent = new RecentCount();
  #delayMs = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: SheddingOptions = {}) {
    this.#options = {
      maxPendingAgents: 1000,
      maxLoopDelayMs: 0,
      minRetrySeconds: 1,
      maxRetrySeconds: 5,
      ...options,
    };
    this.#loopDelay = options.loopDelay;
    this.#now = options.now ?? Date.now;
    if (this.#options.maxLoopDelayMs > 0 && !this.#loopDelay) {
      let expected = Date.now() + SAMPLE_MS;
      this.#timer = setInterval(() => {
        const now = Date.now();
        this.#delayMs = Math.max(0, now - expected);
        expected = now + SAMPLE_MS;
      }, SAMPLE_MS);
      this.#timer.unref();
    }
  }

  /** The last measured event-loop delay, ms (0 when not measured). */
  get loopDelayMs(): number {
    return this.#loopDelay ? this.#loopDelay() : this.#delayMs;
  }

  /** Whether the event loop runs later than the threshold allows. */
  get overloaded(): boolean {
    return this.#options.maxLoopDelayMs > 0 && this.loopDelayMs > this.#options.maxLoopDelayMs;
  }

  /** Whether a new connection (`httpInflight` HTTP requests running) is to be shed; counts it. */
  shedConnection(httpInflight: number): boolean {
    const shed =
      this.overloaded || this.pendingSockets + httpInflight >= this.#options.maxPendingAgents;
    if (shed) {
      this.stats.shedConnections++;
      this.#recent.add(this.#now());
    }
    return shed;
  }

  /** Whether the first message of a new WebSocket is to be answered UNAVAILABLE; counts it. */
  shedFirstMessage(): boolean {
    const shed = this.overloaded;
    if (shed) {
      this.stats.shedMessages++;
      this.#recent.add(this.#now());
    }
    return shed;
  }

  /**
   * A jittered retry interval in whole seconds (HTTP Retry-After, RetryInfo), from a window
   * as wide as the recent sheds call for (see the file comment).
   */
  retryAfterSeconds(): number {
    const { minRetrySeconds: lo, maxRetrySeconds: hi, maxPendingAgents } = this.#options;
    const span = hi - lo + 1;
    const step = Math.max(1, Math.floor(maxPendingAgents / span));
    const window = Math.min(span, Math.max(1, Math.ceil(this.#recent.count(this.#now()) / step)));
    return lo + Math.floor(Math.random() * window);
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

/** Events in the current second and the one before it (a storm's recent size). */
class RecentCount {
  #second = 0;
  #current = 0;
  #previous = 0;

  add(nowMs: number): void {
    this.#roll(nowMs);
    this.#current++;
  }

  count(nowMs: number): number {
    this.#roll(nowMs);
    return this.#current + this.#previous;
  }

  #roll(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    if (second === this.#second) return;
    this.#previous = second === this.#second + 1 ? this.#current : 0;
    this.#second = second;
    this.#current = 0;
  }
}
