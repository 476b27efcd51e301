/**
 * An immutable string-keyed map with cheap copy-on-write updates: a two-level trie of 32
 * branches of 32 leaves, each leaf a Map holding the keys that hash to it. An update copies the
 * root (32 slots, once per draft), the branch (32 slots) and the leaf it touches, so a step
 * stays pure (it never mutates its input state) at O(N/1024 + 32) per changed key instead of
 * O(N). With 64 flat shards, a group of 10,000 agents copied ~156 entries per changed agent
 * per batch: 27 µs of each agent's connect (bench:serve profile). `npm run bench:shard-map`
 * prints the cost per changed key and the heap per entry by size: at 10,000 members 32 × 32
 * holds no more than 64 flat shards did (64 × 64 took 34 B more per entry for half the copy). Leaves are made on
 * first write and dropped when emptied, so a small group holds few Maps.
 */

const FANOUT = 32;
type Leaf<V> = Map<string, V>;
type Branch<V> = Array<Leaf<V> | undefined>;
type Root<V> = ReadonlyArray<Branch<V> | undefined>;

/** FNV-1a over UTF-16 code units; only needs to spread keys, not resist attacks. */
function hashOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

// The top bits of FNV-1a are its best mixed: 5 for the branch, the next 5 for the leaf.
const branchOf = (h: number): number => h >>> 27;
const leafOf = (h: number): number => (h >>> 22) & (FANOUT - 1);

/** The reads a map and its draft share, over the root each holds. */
abstract class ShardReader<V> {
  protected abstract readonly root: Root<V>;

  #leaf(key: string): Leaf<V> | undefined {
    const h = hashOf(key);
    return this.root[branchOf(h)]?.[leafOf(h)];
  }

  get(key: string): V | undefined {
    return this.#leaf(key)?.get(key);
  }

  has(key: string): boolean {
    return this.#leaf(key)?.has(key) ?? false;
  }

  *entries(): IterableIterator<[string, V]> {
    for (const branch of this.root) {
      if (branch) for (const leaf of branch) if (leaf) yield* leaf.entries();
    }
  }

  *keys(): IterableIterator<string> {
    for (const branch of this.root) {
      if (branch) for (const leaf of branch) if (leaf) yield* leaf.keys();
    }
  }
}

export class ShardMap<V> extends ShardReader<V> {
  protected readonly root: Root<V>;
  readonly size: number;

  private constructor(root: Root<V>, size: number) {
    super();
    this.root = root;
    this.size = size;
  }

  static empty<V>(): ShardMap<V> {
    return new ShardMap<V>(new Array(FANOUT).fill(undefined), 0);
  }

  static from<V>(entries: Iterable<readonly [string, V]>): ShardMap<V> {
    const draft = ShardMap.empty<V>().edit();
    for (const [k, v] of entries) draft.set(k, v);
    return draft.finish();
  }

  /** A draft that copies each branch and leaf on its first write; `finish()` returns the new map. */
  edit(): ShardMapDraft<V> {
    return new ShardMapDraft<V>(this.root, this.size, (root, size) => new ShardMap<V>(root, size));
  }
}

export class ShardMapDraft<V> extends ShardReader<V> {
  protected readonly root: Array<Branch<V> | undefined>;
  /** Branches, and leaves (branch × FANOUT + leaf), this draft owns: written in place. */
  readonly #ownBranches = new Set<number>();
  readonly #ownLeaves = new Set<number>();
  readonly #make: (root: Root<V>, size: number) => ShardMap<V>;
  size: number;

  constructor(base: Root<V>, size: number, make: (root: Root<V>, size: number) => ShardMap<V>) {
    super();
    this.root = [...base];
    this.size = size;
    this.#make = make;
  }

  set(key: string, value: V): void {
    const leaf = this.#writable(hashOf(key));
    if (!leaf.has(key)) this.size++;
    leaf.set(key, value);
  }

  delete(key: string): boolean {
    const h = hashOf(key);
    if (!this.root[branchOf(h)]?.[leafOf(h)]?.has(key)) return false;
    const leaf = this.#writable(h);
    leaf.delete(key);
    // An emptied leaf is dropped: a group that shrank holds no empty Maps.
    if (leaf.size === 0) (this.root[branchOf(h)] as Branch<V>)[leafOf(h)] = undefined;
    this.size--;
    return true;
  }

  /** Drops every entry. */
  clear(): void {
    this.root.fill(undefined);
    this.#ownBranches.clear();
    this.#ownLeaves.clear();
    this.size = 0;
  }

  /** The map as drafted so far; the draft stays usable (later writes copy again). */
  finish(): ShardMap<V> {
    this.#ownBranches.clear();
    this.#ownLeaves.clear();
    return this.#make([...this.root], this.size);
  }

  #writable(h: number): Leaf<V> {
    const b = branchOf(h);
    const l = leafOf(h);
    let branch = this.root[b];
    if (!branch || !this.#ownBranches.has(b)) {
      branch = branch ? [...branch] : new Array(FANOUT).fill(undefined);
      this.root[b] = branch;
      this.#ownBranches.add(b);
    }
    const id = b * FANOUT + l;
    let leaf = branch[l];
    if (!leaf || !this.#ownLeaves.has(id)) {
      leaf = new Map(leaf);
      branch[l] = leaf;
      this.#ownLeaves.add(id);
    }
    return leaf;
  }
}
