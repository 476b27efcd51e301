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
 * Retry intervals are drawn uniformly from [minRetrySeconds, maxRetrySeconds] (default 1–5 s)
 * so the shed agents return spread out. Single-threaded: no locking.
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
}

const SAMPLE_MS = 100;

export class LoadShedder {
  /** WebSockets upgraded and not yet answered once. */
  pendingSockets = 0;
  /** Counters since start (metrics, tests). */
  readonly stats = { shedConnections: 0, shedMessages: 0 };
  readonly #options: Required<Omit<SheddingOptions, "loopDelay">>;
  readonly #loopDelay: (() => number) | undefined;
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
    if (shed) this.stats.shedConnections++;
    return shed;
  }

  /** Whether the first message of a new WebSocket is to be answered UNAVAILABLE; counts it. */
  shedFirstMessage(): boolean {
    const shed = this.overloaded;
    if (shed) this.stats.shedMessages++;
    return shed;
  }

  /** A jittered retry interval, in whole seconds (HTTP Retry-After). */
  retryAfterSeconds(): number {
    const { minRetrySeconds: lo, maxRetrySeconds: hi } = this.#options;
    return lo + Math.floor(Math.random() * (hi - lo + 1));
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
