/**
 * A Map bounded to `max` entries that evicts one entry at a time, the least recently used:
 * a Map keeps insertion order, so `get` moves a hit to the end and `set` past the bound drops
 * the first key. (Twenty lines of Map use; no dependency is worth it.)
 *
 * Not safe to share between concurrent writers that expect atomic read-modify-write; callers
 * serialise per key themselves (as the credential issuer does per agent).
 */
export class LruMap<K, V> {
  readonly #map = new Map<K, V>();

  /** `max`: the most entries kept (at least 1). */
  constructor(readonly max: number) {
    if (!(max >= 1)) throw new RangeError(`LruMap needs a bound of at least 1, not ${max}`);
  }

  get size(): number {
    return this.#map.size;
  }

  /** The value of `key`, now the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, value);
    return value;
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** Stores `value` as the most recently used; evicts the least recently used past `max`. */
  set(key: K, value: V): this {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.max) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
    return this;
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }
}
