/**
 * Writing pack files (version 2) and their indexes (version 2), as `git index-pack` would
 * leave them: `objects/pack/pack-<checksum>.pack` and `.idx`, the pack renamed into place
 * first and the index last (a pack counts only once its index exists).
 *
 * Entries are whole objects or OFS_DELTA entries whose base was written earlier in the same
 * pack, so every pack is self-contained (what Git requires of packs on disk).
 * `mergePacks` copies packs into one entry by entry without inflating anything: an object
 * already copied from an earlier source is left out (packs fetched from a remote may hold
 * objects the writer's own packs hold too), and an OFS_DELTA gets the distance to where its
 * base (or the copy of it kept) now is.
 */
import { createHash, randomBytes } from "node:crypto";
import { type FileHandle, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { crc32, deflateSync } from "node:zlib";
import type { ObjectType } from "./objects.js";
import type { PackIndex } from "./pack-index.js";

const TYPE_CODE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };
const OFS_DELTA = 6;

function entryHeader(type: number, size: number): Buffer {
  const bytes: number[] = [];
  let c = (type << 4) | (size & 0x0f);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(c | 0x80);
    c = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(c);
  return Buffer.from(bytes);
}

function ofsBytes(distance: number): Buffer {
  const bytes = [distance & 0x7f];
  let ofs = Math.floor(distance / 128);
  while (ofs > 0) {
    ofs -= 1;
    bytes.unshift(0x80 | (ofs & 0x7f));
    ofs = Math.floor(ofs / 128);
  }
  return Buffer.from(bytes);
}

interface IndexEntry {
  oid: Buffer;
  crc: number;
  offset: number;
}

function buildIndex(entries: IndexEntry[], packChecksum: Buffer): Buffer {
  entries.sort((a, b) => Buffer.compare(a.oid, b.oid));
  for (let i = 1; i < entries.length; i++)
    if ((entries[i - 1] as IndexEntry).oid.equals((entries[i] as IndexEntry).oid))
      throw new Error(`object ${(entries[i] as IndexEntry).oid.toString("hex")} twice in a pack`);
  const n = entries.length;
  const big = entries.filter((e) => e.offset >= 0x80000000);
  const buf = Buffer.alloc(8 + 1024 + n * 28 + big.length * 8 + 40);
  buf.writeUInt32BE(0xff744f63, 0);
  buf.writeUInt32BE(2, 4);
  const fanout = new Array<number>(256).fill(0);
  for (const e of entries) fanout[e.oid[0] as number] = (fanout[e.oid[0] as number] as number) + 1;
  let acc = 0;
  for (let i = 0; i < 256; i++) {
    acc += fanout[i] as number;
    buf.writeUInt32BE(acc, 8 + i * 4);
  }
  let at = 8 + 1024;
  for (const e of entries) {
    e.oid.copy(buf, at);
    at += 20;
  }
  for (const e of entries) {
    buf.writeUInt32BE(e.crc >>> 0, at);
    at += 4;
  }
  let bigIndex = 0;
  for (const e of entries) {
    if (e.offset >= 0x80000000) buf.writeUInt32BE((0x80000000 | bigIndex++) >>> 0, at);
    else buf.writeUInt32BE(e.offset, at);
    at += 4;
  }
  for (const e of big) {
    buf.writeBigUInt64BE(BigInt(e.offset), at);
    at += 8;
  }
  packChecksum.copy(buf, at);
  at += 20;
  createHash("sha1").update(buf.subarray(0, at)).digest().copy(buf, at);
  return buf;
}

/** Streams a pack to a temporary file in `packDir`; `finish()` moves it into place. */
export class PackWriter {
  readonly #dir: string;
  readonly #tmp: string;
  readonly #hash = createHash("sha1");
  readonly #entries: IndexEntry[] = [];
  readonly #offsets = new Map<string, number>();
  #fh?: FileHandle;
  #pos = 0;
  /** Bytes not yet written to the file, and where they start. */
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;
  #filePos = 0;

  constructor(packDir: string) {
    this.#dir = packDir;
    this.#tmp = join(packDir, `tmp_pack_opamp_${randomBytes(6).toString("hex")}`);
  }

  async open(count: number): Promise<void> {
    this.#fh = await open(this.#tmp, "wx");
    const head = Buffer.alloc(12);
    head.write("PACK", 0, "latin1");
    head.writeUInt32BE(2, 4);
    head.writeUInt32BE(count, 8);
    await this.#write(head);
  }

  async #write(buf: Buffer): Promise<void> {
    this.#hash.update(buf);
    this.#buffered.push(buf);
    this.#bufferedBytes += buf.length;
    this.#pos += buf.length;
    if (this.#bufferedBytes >= 1 << 20) await this.#drain();
  }

  async #drain(): Promise<void> {
    if (this.#bufferedBytes === 0) return;
    const data = Buffer.concat(this.#buffered);
    this.#buffered = [];
    this.#bufferedBytes = 0;
    await (this.#fh as FileHandle).write(data, 0, data.length, this.#filePos);
    this.#filePos += data.length;
  }

  /** Offset of an object written to this pack, or undefined. */
  offsetOf(oid: string): number | undefined {
    return this.#offsets.get(oid);
  }

  /** Adds a whole object. */
  async addObject(oid: string, type: ObjectType, content: Uint8Array): Promise<void> {
    await this.#add(oid, entryHeader(TYPE_CODE[type], content.length), content);
  }

  /** Adds an object as a delta against `baseOid`, which must be in this pack already. */
  async addDelta(oid: string, baseOid: string, delta: Uint8Array): Promise<void> {
    const base = this.#offsets.get(baseOid);
    if (base === undefined) throw new Error(`delta base ${baseOid} is not in the pack`);
    const head = Buffer.concat([entryHeader(OFS_DELTA, delta.length), ofsBytes(this.#pos - base)]);
    await this.#add(oid, head, delta);
  }

  async #add(oid: string, head: Buffer, data: Uint8Array): Promise<void> {
    if (this.#offsets.has(oid)) throw new Error(`object ${oid} added twice`);
    const entry = Buffer.concat([head, deflateSync(data)]);
    this.#offsets.set(oid, this.#pos);
    this.#entries.push({ oid: Buffer.from(oid, "hex"), crc: crc32(entry), offset: this.#pos });
    await this.#write(entry);
  }

  get size(): number {
    return this.#pos + 20;
  }

  /** Writes the trailer and the index; returns the pack's name (`pack-<checksum>`). */
  async finish(): Promise<string> {
    const fh = this.#fh as FileHandle;
    await this.#drain();
    const checksum = this.#hash.digest();
    await fh.write(checksum, 0, 20, this.#pos);
    await fh.sync();
    await fh.close();
    return installPack(this.#dir, this.#tmp, checksum, this.#entries);
  }

  /** Removes the temporary file (after a failure). */
  async abort(): Promise<void> {
    await this.#fh?.close().catch(() => {});
    await rm(this.#tmp, { force: true });
  }
}

async function installPack(
  dir: string,
  tmpPack: string,
  checksum: Buffer,
  entries: IndexEntry[],
): Promise<string> {
  const name = `pack-${checksum.toString("hex")}`;
  const idx = buildIndex(entries, checksum);
  const tmpIdx = `${tmpPack}.idx`;
  const fh = await open(tmpIdx, "wx");
  await fh.write(idx, 0, idx.length, 0);
  await fh.sync();
  await fh.close();
  await rename(tmpPack, join(dir, `${name}.pack`));
  await rename(tmpIdx, join(dir, `${name}.idx`));
  return name;
}

/** An entry's type, where its compressed data starts, and (OFS_DELTA) its base offset. */
function parseEntry(pack: Buffer, offset: number): { type: number; data: number; base?: number } {
  let p = offset;
  let c = pack[p++] as number;
  const type = (c >> 4) & 7;
  while (c & 0x80) c = pack[p++] as number;
  if (type === OFS_DELTA) {
    c = pack[p++] as number;
    let ofs = c & 0x7f;
    while (c & 0x80) {
      c = pack[p++] as number;
      ofs = (ofs + 1) * 128 + (c & 0x7f);
    }
    if (ofs <= 0 || ofs > offset - 12) throw new Error(`bad delta base offset at ${offset}`);
    return { type, data: p, base: offset - ofs };
  }
  if (type < 1 || type > 4)
    throw new Error(
      `pack entry type ${type} at ${offset} cannot be merged (only whole objects and OFS_DELTA)`,
    );
  return { type, data: p };
}

/**
 * Copies packs (their indexes given) into one new pack; returns its name. An object in more
 * than one source is copied once (the first copy; deltas against a later copy are pointed at
 * it). Entries must be whole objects or OFS_DELTA (a pack with REF_DELTA entries throws, and
 * nothing is installed). The sources are left in place: the caller reads the new pack back,
 * then removes them.
 */
export async function mergePacks(packDir: string, sources: readonly PackIndex[]): Promise<string> {
  const tmp = join(packDir, `tmp_pack_opamp_${randomBytes(6).toString("hex")}`);
  const hash = createHash("sha1");
  const entries: IndexEntry[] = [];
  /** New offset of every object copied so far, by id. */
  const written = new Map<string, number>();
  const unique = new Set<string>();
  for (const src of sources)
    for (let i = 0; i < src.count; i++) unique.add(src.oidAt(i).toString("hex"));
  const fh = await open(tmp, "wx");
  let pos = 0;
  let filePos = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const emit = async (buf: Buffer) => {
    hash.update(buf);
    pending.push(buf);
    pendingBytes += buf.length;
    pos += buf.length;
    if (pendingBytes >= 1 << 20) await drain();
  };
  const drain = async () => {
    if (pendingBytes === 0) return;
    const data = Buffer.concat(pending);
    pending = [];
    pendingBytes = 0;
    await fh.write(data, 0, data.length, filePos);
    filePos += data.length;
  };
  try {
    const head = Buffer.alloc(12);
    head.write("PACK", 0, "latin1");
    head.writeUInt32BE(2, 4);
    head.writeUInt32BE(unique.size, 8);
    await emit(head);
    for (const src of sources) {
      const pack = await readFile(join(packDir, src.name.replace(/\.idx$/, ".pack")));
      if (pack.length < 32 || pack.readUInt32BE(8) !== src.count)
        throw new Error(`${src.name}: pack and index counts differ`);
      const order = Array.from({ length: src.count }, (_, i) => ({
        oid: src.oidAt(i).toString("hex"),
        offset: src.offsetAt(i),
      })).sort((a, b) => a.offset - b.offset);
      /** Source offset -> new offset (of this entry, or of the copy kept). */
      const moved = new Map<number, number>();
      for (const [k, { oid, offset }] of order.entries()) {
        const end = order[k + 1]?.offset ?? pack.length - 20;
        const kept = written.get(oid);
        if (kept !== undefined) {
          moved.set(offset, kept);
          continue;
        }
        const e = parseEntry(pack, offset);
        let entry: Buffer;
        if (e.base === undefined) {
          entry = pack.subarray(offset, end);
        } else {
          const base = moved.get(e.base);
          if (base === undefined) throw new Error(`${src.name}: no delta base at ${e.base}`);
          let h = offset;
          while ((pack[h] as number) & 0x80) h++;
          entry = Buffer.concat([
            pack.subarray(offset, h + 1),
            ofsBytes(pos - base),
            pack.subarray(e.data, end),
          ]);
        }
        moved.set(offset, pos);
        written.set(oid, pos);
        entries.push({ oid: Buffer.from(oid, "hex"), crc: crc32(entry), offset: pos });
        await emit(entry);
      }
    }
    if (entries.length !== unique.size) throw new Error("merged pack lost objects");
    await drain();
    const checksum = hash.digest();
    await fh.write(checksum, 0, 20, pos);
    await fh.sync();
    await fh.close();
    return await installPack(packDir, tmp, checksum, entries);
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    await rm(`${tmp}.idx`, { force: true });
    throw err;
  }
}
