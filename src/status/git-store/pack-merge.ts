/**
 * Merging packs into one, entry by entry, without inflating anything: an object already copied
 * from an earlier source is left out (packs fetched from a remote may hold objects the
 * writer's own packs hold too), and an OFS_DELTA gets the distance to where its base (or the
 * copy of it kept) now is.
 */
import { open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import {
  type EntryHeader,
  entriesInPackOrder,
  HashingPackFile,
  isWholeObject,
  ofsBytes,
  PACK_HEADER_BYTES,
  packHeader,
  readEntryHeader,
} from "./pack-format.js";
import type { PackIndex } from "./pack-index.js";
import { type IndexEntry, installPack, tempPackPath } from "./pack-write.js";

/** The entry header at `offset`, if the merger can copy the entry (whole object or OFS_DELTA). */
function mergeableEntry(pack: Buffer, offset: number): EntryHeader {
  const e = readEntryHeader(pack, offset);
  if (e.distance !== undefined) {
    if (e.distance <= 0 || e.distance > offset - PACK_HEADER_BYTES)
      throw new Error(`bad delta base offset at ${offset}`);
    return e;
  }
  if (!isWholeObject(e.type))
    throw new Error(
      `pack entry type ${e.type} at ${offset} cannot be merged (only whole objects and OFS_DELTA)`,
    );
  return e;
}

/**
 * Copies packs (their indexes given) into one new pack; returns its name. An object in more
 * than one source is copied once (the first copy; deltas against a later copy are pointed at
 * it). Entries must be whole objects or OFS_DELTA (a pack with REF_DELTA entries throws, and
 * nothing is installed). The sources are left in place: the caller reads the new pack back,
 * then removes them.
 */
export async function mergePacks(packDir: string, sources: readonly PackIndex[]): Promise<string> {
  const tmp = tempPackPath(packDir);
  const entries: IndexEntry[] = [];
  /** New offset of every object copied so far, by id. */
  const written = new Map<string, number>();
  const unique = new Set<string>();
  for (const src of sources)
    for (let i = 0; i < src.count; i++) unique.add(src.oidAt(i).toString("hex"));
  const file = new HashingPackFile(await open(tmp, "wx"));
  try {
    await file.write(packHeader(unique.size));
    for (const src of sources) {
      const pack = await readFile(join(packDir, src.name.replace(/\.idx$/, ".pack")));
      if (pack.length < 32 || pack.readUInt32BE(8) !== src.count)
        throw new Error(`${src.name}: pack and index counts differ`);
      /** Source offset -> new offset (of this entry, or of the copy kept). */
      const moved = new Map<number, number>();
      for (const { i, offset, end } of entriesInPackOrder(src, pack.length)) {
        const oid = src.oidAt(i).toString("hex");
        const kept = written.get(oid);
        if (kept !== undefined) {
          moved.set(offset, kept);
          continue;
        }
        const e = mergeableEntry(pack, offset);
        let entry: Buffer;
        if (e.distance === undefined) {
          entry = pack.subarray(offset, end);
        } else {
          const baseAt = offset - e.distance;
          const base = moved.get(baseAt);
          if (base === undefined) throw new Error(`${src.name}: no delta base at ${baseAt}`);
          entry = Buffer.concat([
            pack.subarray(offset, e.sizeEnd),
            ofsBytes(file.pos - base),
            pack.subarray(e.data, end),
          ]);
        }
        moved.set(offset, file.pos);
        written.set(oid, file.pos);
        entries.push({ oid: Buffer.from(oid, "hex"), crc: crc32(entry), offset: file.pos });
        await file.write(entry);
      }
    }
    if (entries.length !== unique.size) throw new Error("merged pack lost objects");
    const checksum = await file.finish();
    return await installPack(packDir, tmp, checksum, entries);
  } catch (err) {
    await file.close();
    await rm(tmp, { force: true });
    await rm(`${tmp}.idx`, { force: true });
    throw err;
  }
}
