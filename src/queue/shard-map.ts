/**
 * An immutable string-keyed map with cheap copy-on-write updates: the keys are spread over
 * 64 shards, and an update copies only the shards it touches. This keeps the rollout machine
 * pure (a step never mutates its input state) at O(N/64) per changed agent instead of O(N).
 */

const SHARDS = 64;

function shardOf(key: string): number {
  // FNV-1a over UTF-16 code units; only needs to spread keys, not resist attacks.
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % SHARDS;
}

/** The reads a map and its draft share, over the shards each holds. */
abstract class ShardReader<V> {
  protected abstract readonly shards: ReadonlyArray<ReadonlyMap<string, V>>;

  get(key: string): V | undefined {
    return this.shards[shardOf(key)]?.get(key);
  }

  has(key: string): boolean {
    return this.shards[shardOf(key)]?.has(key) ?? false;
  }

  *entries(): IterableIterator<[string, V]> {
    for (const shard of this.shards) yield* shard.entries();
  }

  *keys(): IterableIterator<string> {
    for (const shard of this.shards) yield* shard.keys();
  }
}

export class ShardMap<V> extends ShardReader<V> {
  protected readonly shards: ReadonlyArray<ReadonlyMap<string, V>>;
  readonly size: number;

  private constructor(shards: ReadonlyArray<ReadonlyMap<string, V>>, size: number) {
    super();
    this.shards = shards;
    this.size = size;
  }

  static empty<V>(): ShardMap<V> {
    return new ShardMap<V>(
      Array.from({ length: SHARDS }, () => new Map<string, V>()),
      0,
    );
  }

  static from<V>(entries: Iterable<readonly [string, V]>): ShardMap<V> {
    const draft = ShardMap.empty<V>().edit();
    for (const [k, v] of entries) draft.set(k, v);
    return draft.finish();
  }

  /** A draft that copies each shard on its first write; `finish()` returns the new map. */
  edit(): ShardMapDraft<V> {
    return new ShardMapDraft<V>(this.shards, this.size, (shards, size) => {
      return new ShardMap<V>(shards, size);
    });
  }
}

export class ShardMapDraft<V> extends ShardReader<V> {
  #base: ReadonlyArray<ReadonlyMap<string, V>>;
  protected readonly shards: Array<ReadonlyMap<string, V>>;
  readonly #copied = new Set<number>();
  readonly #make: (shards: ReadonlyArray<ReadonlyMap<string, V>>, size: number) => ShardMap<V>;
  size: number;

  constructor(
    base: ReadonlyArray<ReadonlyMap<string, V>>,
    size: number,
    make: (shards: ReadonlyArray<ReadonlyMap<string, V>>, size: number) => ShardMap<V>,
  ) {
    super();
    this.#base = base;
    this.shards = [...base];
    this.size = size;
    this.#make = make;
  }

  set(key: string, value: V): void {
    const shard = this.#writable(shardOf(key));
    if (!shard.has(key)) this.size++;
    shard.set(key, value);
  }

  delete(key: string): boolean {
    const i = shardOf(key);
    if (!this.shards[i]?.has(key)) return false;
    this.#writable(i).delete(key);
    this.size--;
    return true;
  }

  /** Drops every entry. */
  clear(): void {
    for (let i = 0; i < SHARDS; i++) {
      this.shards[i] = new Map();
      this.#copied.add(i);
    }
    this.size = 0;
  }

  /** The map as drafted so far; the draft stays usable (later writes copy again). */
  finish(): ShardMap<V> {
    this.#base = [...this.shards];
    this.#copied.clear();
    return this.#make(this.#base, this.size);
  }

  #writable(i: number): Map<string, V> {
    if (!this.#copied.has(i)) {
      this.shards[i] = new Map(this.#base[i]);
      this.#copied.add(i);
    }
    return this.shards[i] as Map<string, V>;
  }
}
