/**
 * Reads a pack back in full before the loose objects it replaces are deleted: every entry is
 * inflated, every delta applied to its base, every object hashed and compared with the id the
 * index gives it. A pack that fails is removed and nothing is deleted.
 */
import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { PackFailedError } from "../errors.js";
import { applyDelta } from "./delta.js";
import { inflateObject } from "./object-zlib.js";
import {
  entriesInPackOrder,
  isWholeObject,
  PACK_TRAILER_BYTES,
  readEntryHeader,
  TYPE_NAME,
} from "./pack-format.js";
import { PackIndex } from "./pack-index.js";

export async function verifyPack(packPath: string, idx: PackIndex): Promise<void> {
  const pack = await readFile(packPath);
  const body = pack.subarray(0, pack.length - PACK_TRAILER_BYTES);
  const trailer = createHash("sha1").update(body).digest();
  if (!trailer.equals(pack.subarray(body.length))) throw new Error("pack checksum mismatch");
  if (pack.readUInt32BE(8) !== idx.count) throw new Error("pack and index counts differ");
  const resolved = new Map<number, { type: string; content: Buffer }>();
  const uses = new Map<number, number>();
  const parsed = entriesInPackOrder(idx, pack.length).map(({ i, offset, end }) => {
    const { type, data, distance, size } = readEntryHeader(pack, offset);
    let base: number | undefined;
    if (distance !== undefined) {
      base = offset - distance;
      uses.set(base, (uses.get(base) ?? 0) + 1);
    } else if (!isWholeObject(type)) {
      throw new Error(`unsupported pack entry type ${type} at ${offset}`);
    }
    return { i, offset, end, type, base, data, size };
  });
  for (const e of parsed) {
    const raw = inflateObject(pack.subarray(e.data, e.end), e.size);
    if (raw.length !== e.size)
      throw new Error(`entry at ${e.offset}: ${raw.length} bytes, header says ${e.size}`);
    let obj: { type: string; content: Buffer };
    if (e.base !== undefined) {
      const base = resolved.get(e.base);
      if (!base) throw new Error(`delta base at ${e.base} not found before ${e.offset}`);
      obj = { type: base.type, content: applyDelta(base.content, raw) };
      const left = (uses.get(e.base) ?? 1) - 1;
      if (left <= 0) resolved.delete(e.base);
      else uses.set(e.base, left);
    } else {
      obj = { type: TYPE_NAME[e.type] as string, content: raw };
    }
    const oid = createHash("sha1")
      .update(`${obj.type} ${obj.content.length}\0`)
      .update(obj.content)
      .digest();
    if (!oid.equals(idx.oidAt(e.i))) throw new Error(`object at ${e.offset} does not match its id`);
    if (uses.has(e.offset)) resolved.set(e.offset, obj);
  }
}

/** Verifies `<packDir>/<name>.pack`; removes the pack and its index (and throws) when it fails. */
export async function verifyOrRemovePack(packDir: string, name: string): Promise<void> {
  const idxPath = join(packDir, `${name}.idx`);
  try {
    await verifyPack(
      join(packDir, `${name}.pack`),
      new PackIndex(`${name}.idx`, await readFile(idxPath)),
    );
  } catch (err) {
    await rm(idxPath, { force: true });
    await rm(join(packDir, `${name}.pack`), { force: true });
    throw new PackFailedError(`the new pack ${name} did not read back`, err);
  }
}
