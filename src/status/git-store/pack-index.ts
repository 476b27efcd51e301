/**
 * Pack index files (`objects/pack/pack-*.idx`, version 2) read directly: which objects a
 * pack holds and where. Used to avoid writing a loose copy of an object a pack already has
 * (isomorphic-git only checks loose objects), and by the packer to merge packs.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

const MAGIC = 0xff744f63;

export class PackIndex {
  readonly name: string;
  readonly count: number;
  readonly #buf: Buffer;
  readonly #oidsAt: number;
  readonly #crcAt: number;
  readonly #offAt: number;
  readonly #bigAt: number;

  constructor(name: string, buf: Buffer) {
    if (buf.length < 8 + 1024 + 40 || buf.readUInt32BE(0) !== MAGIC || buf.readUInt32BE(4) !== 2)
      throw new Error(`${name} is not a version 2 pack index`);
    this.name = name;
    this.#buf = buf;
    this.count = buf.readUInt32BE(8 + 255 * 4);
    this.#oidsAt = 8 + 1024;
    this.#crcAt = this.#oidsAt + 20 * this.count;
    this.#offAt = this.#crcAt + 4 * this.count;
    this.#bigAt = this.#offAt + 4 * this.count;
  }

  /** The pack's own checksum (hex), as written at the end of the .pack file. */
  get packChecksum(): string {
    return this.#buf.subarray(this.#buf.length - 40, this.#buf.length - 20).toString("hex");
  }

  oidAt(i: number): Buffer {
    return this.#buf.subarray(this.#oidsAt + 20 * i, this.#oidsAt + 20 * i + 20);
  }

  crcAt(i: number): number {
    return this.#buf.readUInt32BE(this.#crcAt + 4 * i);
  }

  offsetAt(i: number): number {
    const v = this.#buf.readUInt32BE(this.#offAt + 4 * i);
    if ((v & 0x80000000) === 0) return v;
    const j = v & 0x7fffffff;
    return Number(this.#buf.readBigUInt64BE(this.#bigAt + 8 * j));
  }

  /** Index of `oid` (20 bytes), or -1. */
  find(oid: Buffer): number {
    const first = oid[0] as number;
    let lo = first === 0 ? 0 : this.#buf.readUInt32BE(8 + (first - 1) * 4);
    let hi = this.#buf.readUInt32BE(8 + first * 4);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.#buf.compare(
        oid,
        0,
        20,
        this.#oidsAt + 20 * mid,
        this.#oidsAt + 20 * mid + 20,
      );
      if (c === 0) return mid;
      if (c > 0) hi = mid;
      else lo = mid + 1;
    }
    return -1;
  }
}

/** The pack indexes of an object store, reloaded when the pack directory changes. */
export class PackIndexSet {
  readonly #dir: string;
  #indexes = new Map<string, PackIndex>();

  constructor(gitdir: string) {
    this.#dir = join(gitdir, "objects", "pack");
  }

  /** Re-lists the pack directory; loads new indexes and forgets removed ones. */
  async refresh(): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(this.#dir)).filter((n) => /^pack-[0-9a-f]+\.idx$/.test(n));
    } catch {
      names = [];
    }
    const next = new Map<string, PackIndex>();
    for (const n of names) {
      const known = this.#indexes.get(n);
      if (known) {
        next.set(n, known);
        continue;
      }
      try {
        next.set(n, new PackIndex(n, await readFile(join(this.#dir, n))));
      } catch {
        // Being written or removed by someone else: ignore until the next refresh.
      }
    }
    this.#indexes = next;
  }

  get indexes(): PackIndex[] {
    return [...this.#indexes.values()];
  }

  /** True when some pack holds the object (hex id). */
  has(oid: string): boolean {
    const raw = Buffer.from(oid, "hex");
    for (const idx of this.#indexes.values()) if (idx.find(raw) >= 0) return true;
    return false;
  }
}
