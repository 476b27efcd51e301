/**
 * Rate-limited logging of one kind of event that a peer can cause at will (a dropped pub/sub
 * message, a refused agent message): each event is counted, and at most one line per
 * `intervalMs` is written, carrying the counts since the last line, so a flood costs one line
 * per interval instead of one per event.
 *
 * Contract:
 * - The first event after a quiet interval is written at once; later ones wait for the
 *   interval to end (a timer, unref'd: it keeps no process alive), then go out in one line.
 * - Counts are kept per key, in first-seen order, with the detail of the key's last event.
 *   At most `maxKeys` keys are held between lines; events of further keys are only counted
 *   (`omitted`), so memory stays bounded whatever the peer sends.
 * - `close()` writes what is pending and stops the timer; it is idempotent, and events after
 *   it are written at once (one line each), as nothing would write them later.
 * - Single-threaded: calls come from one event loop; `write` must not throw.
 */

/** Counts of one key since the last line. */
export interface LimitedEntry<D> {
  key: string;
  count: number;
  /** The detail given with the key's last event. */
  detail: D;
}

export interface LogLimiterOptions<D> {
  /** At most one line per this, ms. */
  intervalMs: number;
  /**
   * Writes one line. `entries`: the keys counted since the last line, in first-seen order;
   * `omitted`: events of keys beyond `maxKeys` (counted, not named).
   */
  write(entries: Array<LimitedEntry<D>>, omitted: number): void;
  /** Distinct keys held between lines. Default 100. */
  maxKeys?: number;
  /** Clock, ms. Default Date.now. */
  now?: () => number;
}

export class LogLimiter<D = undefined> {
  readonly #options: LogLimiterOptions<D>;
  #pending = new Map<string, LimitedEntry<D>>();
  #omitted = 0;
  #lastLine = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: LogLimiterOptions<D>) {
    this.#options = options;
  }

  /** Counts one event of `key`; writes a line now if the interval allows. */
  record(key: string, detail: D): void {
    const entry = this.#pending.get(key);
    if (entry) {
      entry.count++;
      entry.detail = detail;
    } else if (this.#pending.size < (this.#options.maxKeys ?? 100)) {
      this.#pending.set(key, { key, count: 1, detail });
    } else {
      this.#omitted++;
    }
    const now = (this.#options.now ?? Date.now)();
    const wait = this.#lastLine + this.#options.intervalMs - now;
    if (this.#closed || wait <= 0) this.flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.flush();
      }, wait);
      this.#timer.unref();
    }
  }

  /** Writes the pending counts now (nothing when there are none). */
  flush(): void {
    // An event may come due before the timer runs; the timer must not write a second line.
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.size === 0 && this.#omitted === 0) return;
    const entries = [...this.#pending.values()];
    const omitted = this.#omitted;
    this.#pending = new Map();
    this.#omitted = 0;
    this.#lastLine = (this.#options.now ?? Date.now)();
    this.#options.write(entries, omitted);
  }

  /** Writes what is pending and stops the timer. Idempotent. */
  close(): void {
    this.#closed = true;
    this.flush();
  }
}
