/**
 * The pack file format (version 2) shared by the writer (pack-write.ts), the merger
 * (pack-merge.ts) and the verifier (pack-verify.ts): the 12-byte header, entry headers (type and
 * size), OFS_DELTA base offsets, the order of entries in a pack, and the writer that hashes
 * everything it writes for the 20-byte SHA-1 trailer.
 */
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import type { ObjectType } from "./objects.js";
import type { PackIndex } from "./pack-index.js";

/** Entry type codes of whole objects. */
export const TYPE_CODE: Readonly<Record<ObjectType, number>> = {
  commit: 1,
  tree: 2,
  blob: 3,
  tag: 4,
};
/** Object type by entry type code (codes 1–4). */
export const TYPE_NAME: readonly string[] = ["", "commit", "tree", "blob", "tag"];
/** A delta whose base is the entry a given distance earlier in the same pack. */
export const OFS_DELTA = 6;
/** Bytes of the pack header ("PACK", version, object count) and of the SHA-1 trailer. */
export const PACK_HEADER_BYTES = 12;
export const PACK_TRAILER_BYTES = 20;

/** True for the type codes of whole objects (commit, tree, blob, tag). */
export function isWholeObject(type: number): boolean {
  return type >= 1 && type <= 4;
}

/** The pack header of a version 2 pack holding `count` objects. */
export function packHeader(count: number): Buffer {
  const head = Buffer.alloc(PACK_HEADER_BYTES);
  head.write("PACK", 0, "latin1");
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(count, 8);
  return head;
}

/** An entry header: the type and the inflated size (bytes), 4 bits then 7 per byte. */
export function entryHeader(type: number, size: number): Buffer {
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

/** The OFS_DELTA distance (bytes back from the entry to its base) as Git encodes it. */
export function ofsBytes(distance: number): Buffer {
  const bytes = [distance & 0x7f];
  let ofs = Math.floor(distance / 128);
  while (ofs > 0) {
    ofs -= 1;
    bytes.unshift(0x80 | (ofs & 0x7f));
    ofs = Math.floor(ofs / 128);
  }
  return Buffer.from(bytes);
}

/** A parsed entry header. Offsets are byte positions in the pack. */
export interface EntryHeader {
  type: number;
  /** Where the type-and-size header ends (the OFS_DELTA distance or the data follows). */
  sizeEnd: number;
  /** Where the compressed data starts. */
  data: number;
  /** Size of the entry's data once inflated (an object's content, or a delta). */
  size: number;
  /** OFS_DELTA only: the distance back to the base entry (its offset is `offset - distance`). */
  distance?: number;
}

/** Reads the entry header at `offset`; checks nothing about the type or the distance. */
export function readEntryHeader(pack: Buffer, offset: number): EntryHeader {
  let p = offset;
  let c = pack[p++] as number;
  const type = (c >> 4) & 7;
  let size = c & 0x0f;
  for (let shift = 4; c & 0x80; shift += 7) {
    c = pack[p++] as number;
    size += (c & 0x7f) * 2 ** shift;
  }
  const sizeEnd = p;
  if (type !== OFS_DELTA) return { type, sizeEnd, data: p, size };
  c = pack[p++] as number;
  let distance = c & 0x7f;
  while (c & 0x80) {
    c = pack[p++] as number;
    distance = (distance + 1) * 128 + (c & 0x7f);
  }
  return { type, sizeEnd, data: p, distance, size };
}

/** A pack's entries in file order: index position, offset and end (the next entry's offset). */
export function entriesInPackOrder(
  idx: PackIndex,
  packLength: number,
): { i: number; offset: number; end: number }[] {
  const order = Array.from({ length: idx.count }, (_, i) => ({ i, offset: idx.offsetAt(i) })).sort(
    (a, b) => a.offset - b.offset,
  );
  return order.map((e, k) => ({
    ...e,
    end: order[k + 1]?.offset ?? packLength - PACK_TRAILER_BYTES,
  }));
}

/**
 * Writes a pack file front to back, hashing every byte for the trailer. Writes are buffered
 * and reach the file in 1 MiB batches. `pos` is the pack's length so far (bytes).
 * Not for concurrent use: each `write` must be awaited before the next.
 */
export class HashingPackFile {
  readonly #fh: FileHandle;
  readonly #hash = createHash("sha1");
  #pos = 0;
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;
  #filePos = 0;

  constructor(fh: FileHandle) {
    this.#fh = fh;
  }

  get pos(): number {
    return this.#pos;
  }

  async write(buf: Buffer): Promise<void> {
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
    await this.#fh.write(data, 0, data.length, this.#filePos);
    this.#filePos += data.length;
  }

  /** Writes what is buffered and the trailer, syncs and closes the file; returns the checksum. */
  async finish(): Promise<Buffer> {
    await this.#drain();
    const checksum = this.#hash.digest();
    await this.#fh.write(checksum, 0, PACK_TRAILER_BYTES, this.#pos);
    await this.#fh.sync();
    await this.#fh.close();
    return checksum;
  }

  /** Closes the file without finishing it (after a failure); never throws. */
  async close(): Promise<void> {
    await this.#fh.close().catch(() => {});
  }
}
