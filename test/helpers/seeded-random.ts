/**
 * The seeded pseudo-random generator of the tests that feed random inputs (the rollout machine's
 * random sequences, Git's delta format): the same seed gives the same inputs on every run, so a
 * failure can be replayed. RANDOM_SEED (an unsigned 32-bit integer) replays a seed; assertion
 * messages name the seed they used.
 */

/** mulberry32: a function returning numbers in [0, 1), the same sequence for the same seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Numbers, integers and bytes from one seed: RANDOM_SEED when set, else `defaultSeed`. */
export class SeededRandom {
  readonly seed: number;
  readonly random: () => number;

  constructor(defaultSeed: number) {
    const fromEnv = process.env.RANDOM_SEED;
    this.seed = fromEnv === undefined ? defaultSeed >>> 0 : Number(fromEnv) >>> 0;
    this.random = mulberry32(this.seed);
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  /** `n` random bytes. */
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}
