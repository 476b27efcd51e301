/**
 * Exponential backoff with a cap and jitter, the one retry formula of the service (an
 * unreachable remote, a Redis write, a status push).
 * Delay n (1-based) = min(max, initial × factor^(n−1)), then scaled by a random factor in
 * [1 − jitter, 1]. `reset()` after a success.
 */
export interface BackoffOptions {
  /** First delay in ms. Default 1 000. */
  initialMs?: number;
  /** Upper bound in ms. Default 300 000 (5 min). */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Fraction of the delay that is randomized away (0 = none). Default 0.2. */
  jitter?: number;
}

export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempts = 0;

  constructor(options: BackoffOptions = {}, random: () => number = Math.random) {
    this.#initial = options.initialMs ?? 1_000;
    this.#max = options.maxMs ?? 300_000;
    this.#factor = options.factor ?? 2;
    this.#jitter = options.jitter ?? 0.2;
    this.#random = random;
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.#attempts;
  }

  /** Records one failure and returns the delay before the next attempt, in ms. */
  next(): number {
    this.#attempts++;
    const raw = Math.min(this.#max, this.#initial * this.#factor ** (this.#attempts - 1));
    return Math.round(raw * (1 - this.#jitter * this.#random()));
  }

  reset(): void {
    this.#attempts = 0;
  }
}
