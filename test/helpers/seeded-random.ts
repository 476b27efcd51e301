/**
 * A small seeded pseudo-random generator for tests that feed random inputs: the same seed gives
 * the same inputs on every run, so a failure can be replayed. The seed is TEST_SEED when set
 * (an unsigned 32-bit integer), else the caller's default; assertion messages should name it.
 */

/** Numbers, integers and bytes drawn from one 32-bit seed (xorshift32; never 0 inside). */
export class SeededRandom {
  readonly seed: number;
  #state: number;

  constructor(defaultSeed: number) {
    const fromEnv = process.env.TEST_SEED;
    this.seed = fromEnv === undefined ? defaultSeed >>> 0 : Number(fromEnv) >>> 0;
    this.#state = this.seed || 0x9e3779b9;
  }

  /** The next 32-bit unsigned value. */
  #next(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return this.#state;
  }

  /** A number in [0, 1). */
  random(): number {
    return this.#next() / 0x1_0000_0000;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  /** `n` random bytes. */
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.#next() & 0xff;
    return b;
  }
}
