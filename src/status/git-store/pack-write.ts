/**
 * Writing pack files (version 2) and their indexes (version 2), as `git index-pack` would
 * leave them: `objects/pack/pack-<checksum>.pack` and `.idx`, the pack renamed into place
 * first and the index last (a pack counts only once its index exists).
 *
 * Entries are whole objects or OFS_DELTA entries whose base was written earlier in the same
 * pack, so every pack is self-contained (what Git requires of packs on disk). Merging packs
 * is in pack-merge.ts.
 */
import { createHash, randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { deflateObject } from "./object-zlib.js";
import type { ObjectType } from "./objects.js";
import {
  entryHeader,
  HashingPackFile,
  OFS_DELTA,
  ofsBytes,
  PACK_TRAILER_BYTES,
  packHeader,
  TYPE_CODE,
} from "./pack-format.js";

/** An object's id, the CRC-32 of its entry and the entry's offset, for the index. */
export interface IndexEntry {
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
  readonly #entries: IndexEntry[] = [];
  readonly #offsets = new Map<string, number>();
  #file?: HashingPackFile;

  constructor(packDir: string) {
    this.#dir = packDir;
    this.#tmp = tempPackPath(packDir);
  }

  async open(count: number): Promise<void> {
    this.#file = new HashingPackFile(await open(this.#tmp, "wx"));
    await this.#file.write(packHeader(count));
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
    const distance = this.#opened.pos - base;
    const head = Buffer.concat([entryHeader(OFS_DELTA, delta.length), ofsBytes(distance)]);
    await this.#add(oid, head, delta);
  }

  get #opened(): HashingPackFile {
    return this.#file as HashingPackFile;
  }

  async #add(oid: string, head: Buffer, data: Uint8Array): Promise<void> {
    if (this.#offsets.has(oid)) throw new Error(`object ${oid} added twice`);
    const entry = Buffer.concat([head, deflateObject(data)]);
    const offset = this.#opened.pos;
    this.#offsets.set(oid, offset);
    this.#entries.push({ oid: Buffer.from(oid, "hex"), crc: crc32(entry), offset });
    await this.#opened.write(entry);
  }

  get size(): number {
    return (this.#file?.pos ?? 0) + PACK_TRAILER_BYTES;
  }

  /** Writes the trailer and the index; returns the pack's name (`pack-<checksum>`). */
  async finish(): Promise<string> {
    const checksum = await this.#opened.finish();
    return installPack(this.#dir, this.#tmp, checksum, this.#entries);
  }

  /** Removes the temporary file (after a failure). */
  async abort(): Promise<void> {
    await this.#file?.close();
    await rm(this.#tmp, { force: true });
  }
}

/** A new temporary pack file name in `packDir`. */
export function tempPackPath(packDir: string): string {
  return join(packDir, `tmp_pack_opamp_${randomBytes(6).toString("hex")}`);
}

/** Writes the index beside a finished temporary pack, then moves both into place. */
export async function installPack(
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
