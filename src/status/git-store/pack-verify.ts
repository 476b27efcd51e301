/**
 * Reads a pack back in full before the loose objects it replaces are deleted: every entry is
 * inflated, every delta applied to its base, every object hashed and compared with the id the
 * index gives it. A pack that fails is removed and nothing is deleted.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { inflateSync } from "node:zlib";
import { applyDelta } from "./delta.js";
import type { PackIndex } from "./pack-index.js";

const TYPES = ["", "commit", "tree", "blob", "tag"];

export async function verifyPack(packPath: string, idx: PackIndex): Promise<void> {
  const pack = await readFile(packPath);
  const trailer = createHash("sha1")
    .update(pack.subarray(0, pack.length - 20))
    .digest();
  if (!trailer.equals(pack.subarray(pack.length - 20))) throw new Error("pack checksum mismatch");
  if (pack.readUInt32BE(8) !== idx.count) throw new Error("pack and index counts differ");
  const order = Array.from({ length: idx.count }, (_, i) => ({
    i,
    offset: idx.offsetAt(i),
  })).sort((a, b) => a.offset - b.offset);
  const ends = new Map<number, number>();
  order.forEach((e, k) => {
    ends.set(e.offset, order[k + 1]?.offset ?? pack.length - 20);
  });
  const resolved = new Map<number, { type: string; content: Buffer }>();
  const uses = new Map<number, number>();
  const parsed = order.map(({ i, offset }) => {
    let p = offset;
    let c = pack[p++] as number;
    const type = (c >> 4) & 7;
    while (c & 0x80) c = pack[p++] as number;
    let base: number | undefined;
    if (type === 6) {
      c = pack[p++] as number;
      let ofs = c & 0x7f;
      while (c & 0x80) {
        c = pack[p++] as number;
        ofs = (ofs + 1) * 128 + (c & 0x7f);
      }
      base = offset - ofs;
      uses.set(base, (uses.get(base) ?? 0) + 1);
    } else if (type < 1 || type > 4) {
      throw new Error(`unsupported pack entry type ${type} at ${offset}`);
    }
    return { i, offset, type, base, data: p };
  });
  for (const e of parsed) {
    const raw = inflateSync(pack.subarray(e.data, ends.get(e.offset)));
    let obj: { type: string; content: Buffer };
    if (e.base !== undefined) {
      const base = resolved.get(e.base);
      if (!base) throw new Error(`delta base at ${e.base} not found before ${e.offset}`);
      obj = { type: base.type, content: applyDelta(base.content, raw) };
      const left = (uses.get(e.base) ?? 1) - 1;
      if (left <= 0) resolved.delete(e.base);
      else uses.set(e.base, left);
    } else {
      obj = { type: TYPES[e.type] as string, content: raw };
    }
    const oid = createHash("sha1")
      .update(`${obj.type} ${obj.content.length}\0`)
      .update(obj.content)
      .digest();
    if (!oid.equals(idx.oidAt(e.i))) throw new Error(`object at ${e.offset} does not match its id`);
    if (uses.has(e.offset)) resolved.set(e.offset, obj);
  }
}
